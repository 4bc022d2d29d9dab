//! Sleeping until an input's descriptor turns readable.

use std::os::fd::RawFd;
use std::time::Duration;

/// Waits until one of `fds` is readable or `timeout` passes. Errors (a
/// descriptor closed under us, a signal) end the wait early: the caller
/// polls its inputs next, which is always safe.
pub(crate) fn readable(fds: &[RawFd], timeout: Duration) {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: the pointer and count describe `polls`, which is writable and
    // outlives the call; poll reads and writes nothing else.
    unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
}
