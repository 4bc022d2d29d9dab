//! The XDP program that steers a device's frames to AF_XDP sockets, and
//! the map it reads, loaded and attached by Sluice itself.
//!
//! The program is six instructions — look the receive queue up in an
//! XSKMAP and redirect there, or pass the frame to the kernel when no
//! socket serves that queue — so it is assembled here rather than compiled
//! by clang and loaded by libbpf: no C toolchain, no object file to ship,
//! and nothing left behind. It is attached through a BPF link, whose file
//! descriptor Sluice holds: when Sluice exits, however it exits, the
//! kernel detaches the program.

use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::KernelError;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `enum xdp_action`: hand the frame to the kernel's stack.
const XDP_PASS: i32 = 2;
/// `bpf_redirect_map` helper number.
const FUNC_REDIRECT_MAP: i32 = 51;
/// `struct xdp_md`: offset of `rx_queue_index`.
const XDP_MD_RX_QUEUE: i16 = 16;

/// One eBPF instruction: opcode, registers, offset, immediate.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    code as u64
        | ((dst as u64 | (src as u64) << 4) << 8)
        | (off as u16 as u64) << 16
        | (imm as u32 as u64) << 32
}

/// `r2 = ctx->rx_queue_index; r1 = &map; r3 = XDP_PASS;
/// return bpf_redirect_map(r1, r2, r3)`: the last argument is the action
/// when the queue has no socket.
fn redirect_program(map_fd: i32) -> [u64; 6] {
    [
        insn(0x61, 2, 1, XDP_MD_RX_QUEUE, 0),   // ldx w r2, [r1 + 16]
        insn(0x18, 1, 1, 0, map_fd),            // ld_imm64 r1, map (pseudo map fd)
        insn(0, 0, 0, 0, 0),                    //   (upper half of the immediate)
        insn(0xb7, 3, 0, 0, XDP_PASS),          // mov64 r3, XDP_PASS
        insn(0x85, 0, 0, 0, FUNC_REDIRECT_MAP), // call bpf_redirect_map
        insn(0x95, 0, 0, 0, 0),                 // exit
    ]
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// The `bpf` system call with one of the attribute structs above.
///
/// # Safety
/// `attr` must be the attribute struct that `cmd` reads, with every
/// pointer in it valid for the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: the caller vouches for the attribute; its size is passed, so
    // the kernel reads no further.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor; it is ours alone.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn name16(s: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    for (d, c) in n[..15].iter_mut().zip(s.bytes()) {
        *d = c;
    }
    n
}

/// An XSKMAP: receive queue → AF_XDP socket.
#[derive(Debug)]
pub struct XskMap {
    fd: OwnedFd,
    entries: u32,
}

impl XskMap {
    /// A map for queues `0..entries`.
    pub fn new(entries: u32) -> Result<XskMap, KernelError> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries.max(1),
            map_name: name16("sluice_xsks"),
            ..Default::default()
        };
        // SAFETY: BPF_MAP_CREATE reads a MapCreateAttr, which has no pointers.
        let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }.map_err(|source| KernelError {
            what: "creating the XSKMAP (needs root or CAP_BPF)".into(),
            source,
        })?;
        Ok(XskMap {
            fd: owned(fd),
            entries: entries.max(1),
        })
    }

    /// Steers queue `queue` to the socket `xsk`.
    pub fn insert(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<(), KernelError> {
        if queue >= self.entries {
            return Err(KernelError::other(
                format!("steering queue {queue} to AF_XDP"),
                format!("the map has {} queues", self.entries),
            ));
        }
        let key = queue;
        let value = xsk.as_raw_fd() as u32;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            ..Default::default()
        };
        // SAFETY: BPF_MAP_UPDATE_ELEM reads a MapElemAttr whose key and
        // value point at 4-byte locals alive for the call.
        unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }
            .map(drop)
            .map_err(|source| KernelError {
                what: format!("steering queue {queue} to its AF_XDP socket"),
                source,
            })
    }

    /// Stops steering queue `queue` (its frames go to the kernel again).
    pub fn remove(&self, queue: u32) {
        let key = queue;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            ..Default::default()
        };
        // SAFETY: BPF_MAP_DELETE_ELEM reads a MapElemAttr whose key points
        // at a 4-byte local alive for the call. A missing entry is fine.
        let _ = unsafe { bpf(BPF_MAP_DELETE_ELEM, &mut attr) };
    }
}

/// How the XDP program runs on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpHook {
    /// In the driver, before an skb is made (veth, most NICs).
    Driver,
    /// After the skb is made (any device; slower).
    Generic,
}

/// The redirect program attached to a device; detached on drop.
#[derive(Debug)]
pub struct XdpAttachment {
    _link: OwnedFd,
    _prog: OwnedFd,
    hook: XdpHook,
}

impl XdpAttachment {
    /// Where the program runs.
    pub fn hook(&self) -> XdpHook {
        self.hook
    }
}

fn load_program(map: &XskMap) -> Result<OwnedFd, KernelError> {
    let insns = redirect_program(map.fd.as_raw_fd());
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 1 << 16];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name16("sluice_xsk"),
        expected_attach_type: BPF_XDP,
        ..Default::default()
    };
    // SAFETY: BPF_PROG_LOAD reads a ProgLoadAttr whose instruction, license
    // and log pointers point at locals alive for the call (the log with its
    // true length).
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(KernelError {
                what: format!(
                    "loading the XDP redirect program (verifier: {})",
                    String::from_utf8_lossy(&log[..end]).trim()
                ),
                source,
            })
        }
    }
}

/// Loads the redirect program and attaches it to device `ifindex`: in the
/// driver if the device can, else generic; `hook` forces one.
pub fn attach_redirect(
    ifindex: u32,
    map: &XskMap,
    hook: Option<XdpHook>,
) -> Result<XdpAttachment, KernelError> {
    let prog = load_program(map)?;
    let tries: &[XdpHook] = match hook {
        Some(h) => match h {
            XdpHook::Driver => &[XdpHook::Driver],
            XdpHook::Generic => &[XdpHook::Generic],
        },
        None => &[XdpHook::Driver, XdpHook::Generic],
    };
    let mut last = None;
    for &h in tries {
        let mut attr = LinkCreateAttr {
            prog_fd: prog.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: match h {
                XdpHook::Driver => XDP_FLAGS_DRV_MODE,
                XdpHook::Generic => XDP_FLAGS_SKB_MODE,
            },
        };
        // SAFETY: BPF_LINK_CREATE reads a LinkCreateAttr, which has no pointers.
        match unsafe { bpf(BPF_LINK_CREATE, &mut attr) } {
            Ok(link) => {
                return Ok(XdpAttachment {
                    _link: owned(link),
                    _prog: prog,
                    hook: h,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(KernelError {
        what: format!(
            "attaching the XDP program to device {ifindex} (is another XDP program attached?)"
        ),
        source: last.unwrap_or_else(|| std::io::Error::other("no attach mode tried")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        // exit: opcode 0x95, nothing else.
        assert_eq!(insn(0x95, 0, 0, 0, 0), 0x95);
        // ldx w r2, [r1 + 16]: regs byte 0x12, offset 16.
        assert_eq!(insn(0x61, 2, 1, 16, 0), 0x0010_1261);
        // mov64 r3, -1: immediate in the top half.
        assert_eq!(insn(0xb7, 3, 0, 0, -1), 0xffff_ffff_0000_03b7);
    }
}
