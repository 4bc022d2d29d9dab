//! The Linux calls that the kernel-facing drivers share, behind safe
//! functions: sockets and their options, shared ring mappings, interface
//! ioctls, network namespaces, readiness waits.
//!
//! Every `unsafe` block of the crate lives under this module. The drivers
//! above it see owned file descriptors, bounds-checked mappings and typed
//! errors.

pub mod bpf;
pub mod link;
pub mod memif;
pub mod mmap;
pub mod netns;
pub mod tun;
pub mod unix;
pub mod vhost;
pub mod xdp;

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A call into the kernel that failed, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct KernelError {
    /// What was being done, e.g. `binding AF_XDP socket to veth0 queue 0`.
    pub what: String,
    /// The kernel's answer.
    #[source]
    pub source: io::Error,
}

impl KernelError {
    /// An error with a message of its own (no errno behind it).
    pub fn other(what: impl Into<String>, why: impl Into<String>) -> KernelError {
        KernelError {
            what: what.into(),
            source: io::Error::other(why.into()),
        }
    }

    /// Whether the kernel said the device is gone (`ENODEV`, `ENXIO`).
    pub fn is_gone(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::ENODEV) | Some(libc::ENXIO)
        )
    }
}

/// Adds what was being done to an `io::Result`.
pub trait Context<T> {
    /// Wraps the error with `what()`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T, KernelError>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, KernelError> {
        self.map_err(|source| KernelError {
            what: what(),
            source,
        })
    }
}

/// Turns a C return value into a result, reading `errno` on -1.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], for calls that return a size.
pub(crate) fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Plain data that the kernel reads and writes: any bit pattern is a valid
/// value, and there is no padding the kernel could leak into or that Rust
/// could assume zero.
///
/// # Safety
/// Implement only for `repr(C)` structs of integers (and arrays of them).
pub unsafe trait Pod: Copy + 'static {
    /// The all-zero value.
    fn zeroed() -> Self {
        // SAFETY: Pod types accept any bit pattern, zero included.
        unsafe { MaybeUninit::<Self>::zeroed().assume_init() }
    }
}

// SAFETY: integers accept any bit pattern.
unsafe impl Pod for libc::c_int {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::xdp_mmap_offsets {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::xdp_umem_reg {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::xdp_statistics {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::tpacket_req3 {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::tpacket_stats_v3 {}
// SAFETY: a repr(C) struct of integers and an address array.
unsafe impl Pod for libc::packet_mreq {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::fanout_args {}

/// Opens a socket (close-on-exec).
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor is new and ours.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a file (close-on-exec is added to `flags`): device nodes,
/// namespace files.
pub fn open(path: &std::ffi::CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid C string; the returned descriptor is ours.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt` with a plain-data value.
pub fn set_opt<T: Pod>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt` into a plain-data value. Fails if the kernel's answer is
/// shorter than `T` (an older kernel's smaller struct).
pub fn get_opt<T: Pod>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    let mut value = T::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `value`, writable for the call.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    })?;
    if (len as usize) < size_of::<T>() {
        return Err(io::Error::other(format!(
            "kernel answered {len} bytes for a {}-byte option",
            size_of::<T>()
        )));
    }
    Ok(value)
}

/// `bind` with a plain-data socket address.
pub fn bind<T: Pod>(fd: BorrowedFd<'_>, addr: &T) -> io::Result<()> {
    // SAFETY: the pointer and length describe `addr`, which outlives the call.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

// SAFETY: a repr(C) socket address of integers.
unsafe impl Pod for libc::sockaddr_ll {}
// SAFETY: a repr(C) socket address of integers.
unsafe impl Pod for libc::sockaddr_xdp {}

/// `sendto` with no data and no address: the kick that tells the kernel
/// to look at a transmit ring. `EAGAIN`, `EBUSY` and `ENOBUFS` mean it is
/// busy and will be kicked again; they are not errors.
pub fn kick_tx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a null buffer of length 0 and no address are valid arguments.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    match cvt_size(r) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::EINTR)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `recvfrom` with no buffer: the kick that tells the kernel to refill a
/// receive ring (AF_XDP's need-wakeup). `EAGAIN` is not an error.
pub fn kick_rx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a null buffer of length 0 and no address are valid arguments.
    let r = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    match cvt_size(r) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads one datagram or frame into `buf` without blocking; `Ok(None)` when
/// there is none.
pub fn read_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: the pointer and length describe `buf`, writable for the call.
    let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    match cvt_size(r) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bufs` as one frame (a gathering write); `Ok(None)` when the
/// device would block.
pub fn writev_nonblocking(
    fd: BorrowedFd<'_>,
    bufs: &[std::io::IoSlice<'_>],
) -> io::Result<Option<usize>> {
    // SAFETY: IoSlice is ABI-compatible with iovec; the slices outlive the call.
    let r = unsafe {
        libc::writev(
            fd.as_raw_fd(),
            bufs.as_ptr().cast(),
            bufs.len().min(libc::c_int::MAX as usize) as libc::c_int,
        )
    };
    match cvt_size(r) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Puts a descriptor in non-blocking mode.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we borrow; no memory is passed.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// `ioctl` with a pointer to plain data.
///
/// # Safety
/// `request` must be an ioctl that reads and/or writes exactly a `T`.
pub unsafe fn ioctl<T>(
    fd: BorrowedFd<'_>,
    request: libc::c_ulong,
    arg: &mut T,
) -> io::Result<libc::c_int> {
    // SAFETY: the caller vouches that `request` takes a `T`; the pointer is
    // valid for reads and writes for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) })
}

/// `ioctl` with an integer argument.
pub fn ioctl_int(
    fd: BorrowedFd<'_>,
    request: libc::c_ulong,
    arg: libc::c_ulong,
) -> io::Result<libc::c_int> {
    // SAFETY: the argument is passed by value; the kernel reads no memory of ours.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) })
}

pub use sluice_graph::worker::wait_readable;
