//! Network namespaces by name (`ip netns add NAME` makes `/run/netns/NAME`).
//!
//! A socket or device opened inside a namespace stays there, whichever
//! thread uses it afterwards; so the work is done on a short-lived thread
//! that enters the namespace, and the caller's own thread never moves.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{Context, KernelError, cvt, open};

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

fn open_netns(name: &str) -> Result<OwnedFd, KernelError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return Err(KernelError::other(
            format!("network namespace {name:?}"),
            "not a valid namespace name",
        ));
    }
    let path = CString::new(format!("{NETNS_DIR}/{name}"))
        .map_err(|_| KernelError::other("network namespace", "name has a NUL"))?;
    open(&path, libc::O_RDONLY)
        .context(|| format!("opening network namespace {name} ({NETNS_DIR}/{name})"))
}

/// Runs `f` inside the network namespace `name` and returns what it
/// returns. `None` runs it here, in the caller's namespace.
pub fn run_in<T: Send>(
    name: Option<&str>,
    f: impl FnOnce() -> Result<T, KernelError> + Send,
) -> Result<T, KernelError> {
    let Some(name) = name else { return f() };
    let ns = open_netns(name)?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a namespace descriptor we own; it moves only
            // this thread, which ends when `f` returns.
            cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })
                .context(|| format!("entering network namespace {name}"))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(KernelError::other(
                format!("network namespace {name}"),
                "the work inside it panicked",
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused() {
        for n in ["", "a/b", "..", "."] {
            assert!(run_in(Some(n), || Ok(())).is_err(), "{n:?}");
        }
        assert!(run_in(Some("sluice-no-such-ns"), || Ok(())).is_err());
        assert_eq!(run_in(None, || Ok(7)).unwrap(), 7);
    }
}
