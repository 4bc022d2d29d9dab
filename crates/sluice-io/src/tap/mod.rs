//! TAP interfaces: the Linux host stack, or a container's network
//! namespace, as a Sluice interface.
//!
//! Sluice makes the TAP (or attaches to a persistent one of that name),
//! optionally inside a named namespace, where the host then sees an
//! ordinary Ethernet device to address and route. Frames cross with a
//! virtio-net header, so the host may leave checksums half done and hand
//! over TCP segments of up to 64 KiB, as it would to a NIC with offloads:
//! far fewer crossings for a bulk transfer. The receive half finishes that
//! work ([`crate::offload::receive`]), so the graph only sees wire frames;
//! the transmit half writes wire frames with complete checksums and an
//! empty header.
//!
//! A TAP has no batched read or write: a burst is one `readv` per frame
//! until the queue is empty, and one `writev` per packet (chained jumbo
//! segments gathered). Both halves share one descriptor, each owned by its
//! own node ([`TapRx`] by `<name>-input`, [`TapTx`] by `<name>-output`).
//!
//! When the device is deleted, or set down, reads and writes fail: the
//! halves mark the [`LinkStatus`] and look at the device again at most
//! every [`LINK_CHECK`], not on every poll.
//!
//! A namespace deleted by name (`ip netns del`) is not destroyed while
//! Sluice holds its TAP: the descriptor keeps it, and the TAP in it,
//! alive and working, though nothing can enter it any more. The halves
//! notice the name is gone (or now names another namespace) and report the
//! link [`LinkState::Gone`]; the namespace goes when the interface is
//! closed.

mod rx;
mod tx;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use rx::{TapRx, TapRxStats};
pub use tx::TapTx;

use crate::sys::link::Link;
use crate::sys::tun::{self, OFFLOAD_CSUM, OFFLOAD_TSO4, OFFLOAD_TSO6, TapInfo};
use crate::sys::{Context, netns};
use crate::{KernelError, LinkState, LinkStatus};

/// Length of the virtio-net header before every frame (its 10-byte form:
/// `num_buffers` means nothing to a TAP).
pub const VNET_HDR_LEN: usize = crate::offload::VnetHdr::LEN;

/// How often a half looks at the device while it is up (to notice it was
/// set down), and while it is down or failing (to notice it came back).
pub const LINK_CHECK: Duration = Duration::from_millis(100);

/// Most queues of a multi-queue TAP (the kernel's limit).
pub const MAX_QUEUES: usize = 256;

/// How to make or attach a TAP.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The device's name (at most 15 bytes).
    pub name: String,
    /// The network namespace (`ip netns` name) the device lives in; `None`
    /// for Sluice's own.
    pub netns: Option<String>,
    /// An MTU to set, or `None` to keep the device's (1500 for a new one).
    pub mtu: Option<u32>,
    /// Let the host hand over partial checksums and 64 KiB TCP segments
    /// (the default). Off, the host finishes every frame itself.
    pub offload: bool,
    /// Where the link state is reported, shared with `show interface`.
    pub status: Arc<LinkStatus>,
}

impl TapConfig {
    /// A TAP called `name` in Sluice's namespace, offloads on.
    pub fn new(name: &str) -> TapConfig {
        TapConfig {
            name: name.to_string(),
            netns: None,
            mtu: None,
            offload: true,
            status: LinkStatus::new(),
        }
    }

    /// The same TAP, in namespace `netns`.
    pub fn in_netns(mut self, netns: &str) -> TapConfig {
        self.netns = Some(netns.to_string());
        self
    }
}

/// An open TAP, shared by its two halves.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    link: Link,
    info: TapInfo,
    offloads: u32,
    netns: Option<String>,
    /// The namespace's identity when the TAP was made in it.
    netns_id: Option<NetnsId>,
    status: Arc<LinkStatus>,
}

/// A namespace file's device and inode: the same pair is the same
/// namespace.
type NetnsId = (u64, u64);

/// The identity of the namespace `ip netns` calls `name`, if any.
fn netns_id(name: &str) -> Option<NetnsId> {
    let m = std::fs::metadata(format!("/run/netns/{name}")).ok()?;
    Some((m.dev(), m.ino()))
}

impl Tap {
    /// Makes the TAP `config.name` (or attaches to a persistent one), in
    /// `config.netns` if set, asks for the virtio-net header and offloads,
    /// sets the MTU if asked, and sets the device up. The kernel side's
    /// addresses and MAC are the host's business.
    pub fn open(config: &TapConfig) -> Result<(TapRx, TapTx), KernelError> {
        Tap::open_queue(config, false)
    }

    /// Makes (or attaches to) a multi-queue TAP with `queues` queues: one
    /// descriptor each, the kernel spreading the host's flows over them by
    /// hash, so that as many workers can each own a queue. One queue is a
    /// plain TAP. A persistent TAP made without multi-queue cannot take
    /// more than one.
    pub fn open_queues(
        config: &TapConfig,
        queues: usize,
    ) -> Result<Vec<(TapRx, TapTx)>, KernelError> {
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(KernelError::other(
                format!("TAP {}", config.name),
                format!("{queues} queues: a TAP has 1 to {MAX_QUEUES}"),
            ));
        }
        (0..queues)
            .map(|_| Tap::open_queue(config, queues > 1))
            .collect()
    }

    fn open_queue(config: &TapConfig, multi_queue: bool) -> Result<(TapRx, TapTx), KernelError> {
        let offloads = if config.offload {
            OFFLOAD_CSUM | OFFLOAD_TSO4 | OFFLOAD_TSO6
        } else {
            0
        };
        let name = config.name.as_str();
        // The descriptor and the link's control socket are both made
        // inside the namespace and stay bound to it afterwards.
        let (fd, info, link) = netns::run_in(config.netns.as_deref(), || {
            let (fd, info) = tun::open_tap(name, multi_queue)?;
            if !info.vnet_hdr {
                return Err(KernelError::other(
                    format!("TAP {name}"),
                    "the kernel did not turn on the virtio-net header",
                ));
            }
            tun::set_vnet_hdr(fd.as_fd(), VNET_HDR_LEN)
                .context(|| format!("setting the virtio-net header of TAP {name}"))?;
            tun::set_offload(fd.as_fd(), offloads)
                .context(|| format!("setting offloads {offloads:#x} of TAP {name}"))?;
            let link = Link::open(name)?;
            if let Some(mtu) = config.mtu {
                link.set_mtu(mtu)?;
            }
            link.set_up(true)?;
            Ok((fd, info, link))
        })?;
        let netns_id = match config.netns.as_deref() {
            Some(ns) => Some(netns_id(ns).ok_or_else(|| {
                KernelError::other(format!("network namespace {ns}"), "deleted while opening")
            })?),
            None => None,
        };
        config.status.set(settled_state(&link));
        let tap = Arc::new(Tap {
            fd,
            link,
            info,
            offloads,
            netns: config.netns.clone(),
            netns_id,
            status: config.status.clone(),
        });
        Ok((TapRx::new(tap.clone()), TapTx::new(tap)))
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        self.link.name()
    }

    /// The namespace the device lives in (`None`: Sluice's own).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The kernel device, for its index, MAC and MTU.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Whether the device was there before Sluice and stays after it.
    pub fn persistent(&self) -> bool {
        self.info.persistent
    }

    /// The offloads the host may use (`TUN_F_*`), 0 for none.
    pub fn offloads(&self) -> u32 {
        self.offloads
    }

    /// The link state the halves last saw.
    pub fn status(&self) -> &Arc<LinkStatus> {
        &self.status
    }

    /// The device's state now, asking the kernel.
    fn state_now(&self) -> LinkState {
        match (&self.netns, self.netns_id) {
            (Some(ns), Some(id)) if netns_id(ns) != Some(id) => LinkState::Gone,
            _ => self.link.state(),
        }
    }
}

/// How long opening waits for a device just set up to say it runs.
const SETTLE: Duration = Duration::from_millis(1500);

/// The device's state once the kernel has caught up: a persistent TAP
/// gets its carrier when attached, but shows running only after the
/// kernel's link-watch work has run, up to a second later (it is rate
/// limited per device).
fn settled_state(link: &Link) -> LinkState {
    let end = Instant::now() + SETTLE;
    loop {
        let state = link.state();
        if state != LinkState::Down || Instant::now() >= end {
            return state;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One half's view of the link: whether to touch the descriptor now.
///
/// Only the kernel's answers gate I/O: a failed read or write rests the
/// descriptor for a [`LINK_CHECK`], and a device gone rests it for good. A
/// device merely reported down is still tried: its reads find nothing
/// (as an idle one's do) and its first write fails, which rests it.
#[derive(Debug)]
struct LinkWatch {
    /// When to look at the device again, to keep the status current.
    next_check: Instant,
    /// No I/O before this (after a failure).
    rest_until: Option<Instant>,
}

impl LinkWatch {
    fn new() -> LinkWatch {
        LinkWatch {
            next_check: Instant::now() + LINK_CHECK,
            rest_until: None,
        }
    }

    /// Whether to read or write now. Refreshes the status every
    /// [`LINK_CHECK`]. A device gone is gone for good: its descriptor is
    /// detached even if one of the same name comes back.
    fn usable(&mut self, tap: &Tap) -> bool {
        if tap.status.state() == LinkState::Gone {
            return false;
        }
        let now = Instant::now();
        if now >= self.next_check {
            self.next_check = now + LINK_CHECK;
            let state = tap.state_now();
            tap.status.set(state);
            if state == LinkState::Gone {
                return false;
            }
        }
        match self.rest_until {
            Some(t) if now < t => false,
            _ => {
                self.rest_until = None;
                true
            }
        }
    }

    /// A read or write failed: find out why, and rest the descriptor.
    fn fault(&mut self, tap: &Tap, err: &io::Error) {
        let state = match err.raw_os_error() {
            // The device was deleted under the descriptor.
            Some(libc::EBADFD) | Some(libc::ENODEV) | Some(libc::ENXIO) => LinkState::Gone,
            _ => match tap.state_now() {
                // The kernel refused I/O on a device it calls up: down
                // until it says otherwise.
                LinkState::Up => LinkState::Down,
                s => s,
            },
        };
        tap.status.set(state);
        let now = Instant::now();
        self.next_check = now + LINK_CHECK;
        self.rest_until = Some(now + LINK_CHECK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_starts_here_with_offloads_and_up() {
        let c = TapConfig::new("tap0");
        assert_eq!((c.netns.as_deref(), c.mtu, c.offload), (None, None, true));
        assert_eq!(c.status.state(), LinkState::Up);
        assert_eq!(c.in_netns("ns1").netns.as_deref(), Some("ns1"));
    }

    #[test]
    fn bad_names_fail_before_any_device_is_touched() {
        let e = Tap::open(&TapConfig::new("a/b")).unwrap_err();
        assert!(e.to_string().contains("TAP name"), "{e}");
        let e = Tap::open(&TapConfig::new("t").in_netns("../x")).unwrap_err();
        assert!(e.to_string().contains("namespace"), "{e}");
    }
}
