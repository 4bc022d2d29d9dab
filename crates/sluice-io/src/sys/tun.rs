//! TAP devices through `/dev/net/tun`: make or attach one, ask for the
//! virtio-net header and the offloads that come with it, and read a frame
//! into several buffers at once.
//!
//! A TAP is made in the network namespace of the thread that opens
//! `/dev/net/tun` (the kernel takes the namespace at `open`, not at
//! `TUNSETIFF`), so a TAP meant for a namespace is opened inside
//! [`super::netns::run_in`].

use std::ffi::CStr;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{Context, KernelError, cvt_size, ioctl, ioctl_int, open};

/// The clone device every TUN/TAP is opened through.
pub const TUN_PATH: &CStr = c"/dev/net/tun";

/// Offloads the reader takes (`TUNSETOFFLOAD`): partial checksums.
pub const OFFLOAD_CSUM: u32 = libc::TUN_F_CSUM;
/// Offloads the reader takes: TCP over IPv4 segments up to 64 KiB.
pub const OFFLOAD_TSO4: u32 = libc::TUN_F_TSO4;
/// Offloads the reader takes: TCP over IPv6 segments up to 64 KiB.
pub const OFFLOAD_TSO6: u32 = libc::TUN_F_TSO6;

/// What a TAP looked like once attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapInfo {
    /// The device outlives its descriptors (`ip tuntap add`, or
    /// `TUNSETPERSIST`): it was there before and stays after.
    pub persistent: bool,
    /// Frames carry a virtio-net header.
    pub vnet_hdr: bool,
}

fn check_name(name: &str) -> Result<(), KernelError> {
    let b = name.as_bytes();
    // The kernel would take '%' as a template and pick a name of its own,
    // which the caller would then not find; whitespace, '/' and ':' it
    // refuses anyway, with a less telling EINVAL.
    let bad = b.is_empty()
        || b.len() >= libc::IFNAMSIZ
        || name == "."
        || name == ".."
        || b.iter()
            .any(|&c| c == 0 || c == b'/' || c == b':' || c == b'%' || c.is_ascii_whitespace());
    if bad {
        return Err(KernelError::other(
            format!("TAP name {name:?}"),
            format!(
                "must be 1 to {} bytes, without '/', ':', '%', spaces or NUL",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    Ok(())
}

fn tap_ifreq(name: &str, flags: libc::c_int) -> libc::ifreq {
    // SAFETY: ifreq is a C struct of integers and a union of them; zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    req
}

/// Makes the TAP `name` in the calling thread's namespace, or attaches to
/// the one there (a persistent TAP, or a multi-queue TAP's next queue).
/// The descriptor is non-blocking; frames read and written through it
/// start with a virtio-net header. A TAP made here is not persistent: it
/// goes away with its last descriptor.
pub fn open_tap(name: &str, multi_queue: bool) -> Result<(OwnedFd, TapInfo), KernelError> {
    check_name(name)?;
    let fd = open(TUN_PATH, libc::O_RDWR | libc::O_NONBLOCK).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) => {
                " (no TUN/TAP support: load the tun module, or create /dev/net/tun)"
            }
            Some(libc::EACCES) | Some(libc::EPERM) => " (needs CAP_NET_ADMIN)",
            _ => "",
        };
        KernelError {
            what: format!("opening {}{hint}", TUN_PATH.to_string_lossy()),
            source: e,
        }
    })?;
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
    if multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    let mut req = tap_ifreq(name, flags);
    // SAFETY: TUNSETIFF reads the name and flags of an ifreq and writes back
    // the name the device got.
    unsafe { ioctl(fd.as_fd(), libc::TUNSETIFF as _, &mut req) }.map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EINVAL) => {
                " (a device of that name exists and is not a TAP, or its \
                 multi-queue setting differs)"
            }
            Some(libc::EBUSY) => " (another process holds this single-queue TAP)",
            Some(libc::EPERM) => " (needs CAP_NET_ADMIN, or the TAP's owner)",
            _ => "",
        };
        KernelError {
            what: format!("making or attaching TAP {name}{why}"),
            source: e,
        }
    })?;
    let info = tap_info(fd.as_fd()).context(|| format!("reading flags of TAP {name}"))?;
    Ok((fd, info))
}

/// The TAP's flags as the kernel sees them (`TUNGETIFF`).
pub fn tap_info(fd: BorrowedFd<'_>) -> io::Result<TapInfo> {
    let mut req = tap_ifreq("", 0);
    // SAFETY: TUNGETIFF writes the name and flags of an ifreq.
    unsafe { ioctl(fd, libc::TUNGETIFF as _, &mut req) }?;
    // SAFETY: TUNGETIFF filled the flags member of the union.
    let flags = libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags }) & 0xffff;
    Ok(TapInfo {
        persistent: flags & libc::IFF_PERSIST != 0,
        vnet_hdr: flags & libc::IFF_VNET_HDR != 0,
    })
}

/// Sets the length of the virtio-net header before each frame (10, or 12
/// with `num_buffers`) and makes it little-endian whatever the host (it
/// already is on a little-endian one).
pub fn set_vnet_hdr(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let mut len =
        libc::c_int::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: TUNSETVNETHDRSZ reads an int.
    unsafe { ioctl(fd, libc::TUNSETVNETHDRSZ as _, &mut len) }?;
    let mut le: libc::c_int = 1;
    // SAFETY: TUNSETVNETLE reads an int.
    match unsafe { ioctl(fd, libc::TUNSETVNETLE as _, &mut le) } {
        // Kernels without cross-endian support refuse it; a little-endian
        // host needs it not.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && cfg!(target_endian = "little") => {
            Ok(())
        }
        r => r.map(drop),
    }
}

/// Tells the kernel which offloads the reader completes itself
/// ([`OFFLOAD_CSUM`], [`OFFLOAD_TSO4`], [`OFFLOAD_TSO6`]); 0 for none, so
/// that every frame read is finished.
pub fn set_offload(fd: BorrowedFd<'_>, offloads: u32) -> io::Result<()> {
    // TUNSETOFFLOAD takes the flags by value.
    ioctl_int(fd, libc::TUNSETOFFLOAD as _, libc::c_ulong::from(offloads)).map(drop)
}

/// Reads one frame scattered over `bufs` without blocking; `Ok(None)` when
/// there is none. A frame longer than the buffers is cut short (the
/// caller sees the buffers full).
pub fn readv_nonblocking(
    fd: BorrowedFd<'_>,
    bufs: &mut [IoSliceMut<'_>],
) -> io::Result<Option<usize>> {
    // SAFETY: IoSliceMut is ABI-compatible with iovec; each slice is
    // writable and outlives the call.
    let r = unsafe {
        libc::readv(
            fd.as_raw_fd(),
            bufs.as_mut_ptr().cast(),
            bufs.len().min(libc::c_int::MAX as usize) as libc::c_int,
        )
    };
    match cvt_size(r) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_the_kernel() {
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "tap%d",
            "a b",
            "name-far-too-long-x",
        ] {
            let e = open_tap(n, false).unwrap_err();
            assert!(e.to_string().contains("TAP name"), "{n:?}: {e}");
        }
    }
}
