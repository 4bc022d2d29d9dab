//! Unix-domain sequenced-packet sockets that carry descriptors
//! (`SCM_RIGHTS`), eventfds and sealed memfds: what a shared-memory
//! interface's control channel and its peer's memory are made of.
//!
//! Descriptors received from a peer become [`OwnedFd`]s the moment they
//! arrive, so that every path that rejects a message closes them.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{cvt, cvt_size};

/// Where a Unix socket lives.
#[derive(Debug, Clone, Copy)]
pub enum UnixAddr<'a> {
    /// A file in the filesystem.
    Path(&'a Path),
    /// A name in the abstract namespace (no file; Linux only). The
    /// address is as long as the name, no NUL padding, as DPDK's
    /// `socket-abstract=yes` spells it (an abstract name's length is part
    /// of it).
    Abstract(&'a [u8]),
}

impl UnixAddr<'_> {
    fn sockaddr(&self) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
        // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
        let mut sa: libc::sockaddr_un = unsafe { zeroed() };
        sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let (bytes, start) = match self {
            UnixAddr::Path(p) => (p.as_os_str().as_bytes(), 0),
            UnixAddr::Abstract(name) => (*name, 1),
        };
        // The path needs its NUL; the abstract name its leading NUL.
        if bytes.is_empty() || bytes.len() + 1 > sa.sun_path.len() || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "Unix socket name must be 1..{} bytes without NUL",
                    sa.sun_path.len() - 1
                ),
            ));
        }
        for (d, s) in sa.sun_path[start..].iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = match self {
            UnixAddr::Path(_) => size_of::<libc::sockaddr_un>(),
            UnixAddr::Abstract(_) => size_of::<libc::sa_family_t>() + 1 + bytes.len(),
        };
        Ok((sa, len as libc::socklen_t))
    }
}

/// A non-blocking `AF_UNIX` `SOCK_SEQPACKET` socket (close-on-exec).
pub fn seqpacket() -> io::Result<OwnedFd> {
    super::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK, 0)
}

/// A non-blocking `AF_UNIX` `SOCK_STREAM` socket (close-on-exec): what
/// vhost-user speaks on.
pub fn stream() -> io::Result<OwnedFd> {
    super::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)
}

/// Binds a Unix socket.
pub fn bind_unix(fd: BorrowedFd<'_>, addr: UnixAddr<'_>) -> io::Result<()> {
    let (sa, len) = addr.sockaddr()?;
    // SAFETY: the pointer and length describe `sa`, which outlives the call.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    })
    .map(drop)
}

/// Connects a Unix socket (blocking or not, as the socket is).
pub fn connect_unix(fd: BorrowedFd<'_>, addr: UnixAddr<'_>) -> io::Result<()> {
    let (sa, len) = addr.sockaddr()?;
    // SAFETY: the pointer and length describe `sa`, which outlives the call.
    cvt(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    })
    .map(drop)
}

/// Starts listening.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we borrow.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// Accepts one connection, non-blocking and close-on-exec; `Ok(None)`
/// when none waits.
pub fn accept(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    // SAFETY: no address is asked for; the returned descriptor is new and ours.
    let r = unsafe {
        libc::accept4(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    match cvt(r) {
        // SAFETY: `fd` was just accepted and nothing else owns it.
        Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => Ok(None),
        // The peer gave up before we accepted: nothing to accept.
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A control buffer for up to 28 descriptors (more than any protocol
/// here sends: memif one, vhost-user eight), aligned for `cmsghdr`. The
/// kernel closes descriptors that do not fit and says so with
/// `MSG_CTRUNC`; every one that fits becomes an [`OwnedFd`].
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

/// One message read from a sequenced-packet socket.
#[derive(Debug)]
pub struct Received {
    /// Bytes of the message (at most the buffer's length).
    pub len: usize,
    /// The descriptors that came with it, now ours.
    pub fds: Vec<OwnedFd>,
    /// The message or its descriptors did not fit and were cut.
    pub truncated: bool,
}

/// Reads one message and the descriptors it carries, without blocking;
/// `Ok(None)` when none waits. A message of length 0 with no descriptor
/// is the peer's end of stream.
pub fn recv_with_fds(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<Received>> {
    let mut cmsg = CmsgBuf([0; 128]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.0.len() as _;
    // SAFETY: `msg` points at `iov` (describing `buf`) and `cmsg`, all
    // writable and alive for the call.
    let r = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    let len = match cvt_size(r) {
        Ok(n) => n,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `msg_control` with `msg_controllen` bytes
    // of well-formed control messages; the CMSG macros walk exactly those.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / size_of::<libc::c_int>() {
                    let raw = data
                        .add(i * size_of::<libc::c_int>())
                        .cast::<libc::c_int>()
                        .read_unaligned();
                    // The kernel installed this descriptor for us; owning it
                    // at once means an error path cannot leak it.
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
    Ok(Some(Received {
        len,
        fds,
        truncated,
    }))
}

/// Sends one message, with one descriptor if given, without blocking
/// (a control channel whose peer does not read is a broken peer).
pub fn send_with_fd(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    pass: Option<BorrowedFd<'_>>,
) -> io::Result<usize> {
    match pass {
        Some(p) => send_with_fds(fd, bytes, &[p]),
        None => send_with_fds(fd, bytes, &[]),
    }
}

/// Sends one message with up to 28 descriptors, without blocking.
pub fn send_with_fds(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    pass: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let mut cmsg = CmsgBuf([0; 128]);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !pass.is_empty() {
        let payload = size_of_val(pass) as u32;
        // SAFETY: CMSG_SPACE is a size computation.
        let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
        if space > cmsg.0.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many descriptors for one message",
            ));
        }
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `cmsg` holds at least `space` bytes, aligned for cmsghdr,
        // so the first header and its payload of `pass.len()` ints fit.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload) as _;
            let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
            for (i, p) in pass.iter().enumerate() {
                data.add(i).write_unaligned(p.as_raw_fd());
            }
        }
    }
    // SAFETY: `msg` points at `iov` (describing `bytes`, only read) and
    // `cmsg`, alive for the call.
    cvt_size(unsafe {
        libc::sendmsg(
            fd.as_raw_fd(),
            &msg,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// A new eventfd (close-on-exec, non-blocking), counter at zero.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor is new and ours.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: `fd` was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter (a wake-up). A full counter
/// (`EAGAIN`: the reader is far behind) already means "wake up".
pub fn eventfd_kick(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: the pointer and length describe `one`, alive for the call.
    let r = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    match cvt_size(r) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads and clears an eventfd's counter; 0 when it was already clear.
pub fn eventfd_drain(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut v = [0u8; 8];
    match super::read_nonblocking(fd, &mut v)? {
        Some(8) => Ok(u64::from_ne_bytes(v)),
        _ => Ok(0),
    }
}

/// Whether `fd` is an eventfd (what the kernel's `/proc` says it is).
pub fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|t| t.as_os_str().as_bytes() == b"anon_inode:[eventfd]")
}

/// A memory file of `size` bytes, sealed against shrinking and growing
/// (so that whoever maps it can trust its size) and against further seals.
pub fn sealed_memfd(name: &str, size: u64) -> io::Result<OwnedFd> {
    let name = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `name` is a valid C string; the returned descriptor is ours.
    let fd = cvt(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscall on our descriptor.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) })?;
    add_seals(
        fd.as_fd(),
        libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
    )?;
    Ok(fd)
}

/// Adds seals to a memory file.
pub fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl with an integer argument; no memory is passed.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// The seals of a file: 0 for a file that cannot be sealed (not a memfd,
/// or a hugetlbfs file).
pub fn seals(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: fcntl without argument; no memory is passed.
    match cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) }) {
        Ok(s) => Ok(s),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(0),
        Err(e) => Err(e),
    }
}

/// A file's size and whether it is a regular file (memfds and hugetlbfs
/// files are).
pub fn file_size(fd: BorrowedFd<'_>) -> io::Result<(u64, bool)> {
    // SAFETY: stat is plain data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { zeroed() };
    // SAFETY: the pointer describes `st`, writable for the call.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok((
        st.st_size as u64,
        st.st_mode & libc::S_IFMT == libc::S_IFREG,
    ))
}
