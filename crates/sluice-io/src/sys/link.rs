//! A kernel network device seen through interface ioctls: index, MAC, MTU,
//! admin and carrier state.
//!
//! The ioctls go through a socket made where the device lives, so a
//! [`Link`] opened inside a network namespace keeps talking to that
//! namespace's device after the caller's thread has left it.

use std::os::fd::{AsFd, OwnedFd};

use sluice_wire::MacAddr;

use super::{Context, KernelError, ioctl, socket};
use crate::LinkState;

/// A kernel network device.
#[derive(Debug)]
pub struct Link {
    name: String,
    index: u32,
    ctl: OwnedFd,
}

fn ifreq(name: &str) -> Result<libc::ifreq, KernelError> {
    let bytes = name.as_bytes();
    if bytes.is_empty()
        || bytes.len() >= libc::IFNAMSIZ
        || bytes.contains(&0)
        || bytes.contains(&b'/')
    {
        return Err(KernelError::other(
            format!("device name {name:?}"),
            format!(
                "must be 1 to {} bytes without '/' or NUL",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    // SAFETY: ifreq is a C struct of integers and a union of them; zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

impl Link {
    /// Opens the device called `name` in the calling thread's namespace.
    pub fn open(name: &str) -> Result<Link, KernelError> {
        let ctl = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)
            .context(|| "opening a control socket".to_string())?;
        let mut req = ifreq(name)?;
        // SAFETY: SIOCGIFINDEX reads the name and writes the index of an ifreq.
        unsafe { ioctl(ctl.as_fd(), libc::SIOCGIFINDEX as _, &mut req) }
            .context(|| format!("finding device {name}"))?;
        // SAFETY: SIOCGIFINDEX filled the index member of the union.
        let index = unsafe { req.ifr_ifru.ifru_ifindex } as u32;
        Ok(Link {
            name: name.to_string(),
            index,
            ctl,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's kernel index, as it was when opened.
    pub fn index(&self) -> u32 {
        self.index
    }

    fn flags(&self) -> Result<libc::c_int, KernelError> {
        let mut req = ifreq(&self.name)?;
        // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of an ifreq.
        unsafe { ioctl(self.ctl.as_fd(), libc::SIOCGIFFLAGS as _, &mut req) }
            .context(|| format!("reading flags of {}", self.name))?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        Ok(unsafe { req.ifr_ifru.ifru_flags } as libc::c_int)
    }

    fn set_flags(&self, flags: libc::c_int) -> Result<(), KernelError> {
        let mut req = ifreq(&self.name)?;
        req.ifr_ifru.ifru_flags = flags as libc::c_short;
        // SAFETY: SIOCSIFFLAGS reads the name and the flags of an ifreq.
        unsafe { ioctl(self.ctl.as_fd(), libc::SIOCSIFFLAGS as _, &mut req) }
            .context(|| format!("setting flags of {}", self.name))
            .map(drop)
    }

    /// Up (admin up with carrier), down (admin down or no carrier), or
    /// [`LinkState::Gone`] when the device has
    /// been deleted (or replaced by another of the same name).
    pub fn state(&self) -> LinkState {
        let mut req = match ifreq(&self.name) {
            Ok(r) => r,
            Err(_) => return LinkState::Gone,
        };
        // SAFETY: as in `open`.
        if unsafe { ioctl(self.ctl.as_fd(), libc::SIOCGIFINDEX as _, &mut req) }.is_err()
            // SAFETY: SIOCGIFINDEX succeeded and filled the index.
            || unsafe { req.ifr_ifru.ifru_ifindex } as u32 != self.index
        {
            return LinkState::Gone;
        }
        match self.flags() {
            Err(_) => LinkState::Gone,
            Ok(f) if f & libc::IFF_UP == 0 => LinkState::Down,
            Ok(f) if f & libc::IFF_RUNNING == 0 => LinkState::Down,
            Ok(_) => LinkState::Up,
        }
    }

    /// Sets the device administratively up or down.
    pub fn set_up(&self, up: bool) -> Result<(), KernelError> {
        let f = self.flags()?;
        let f = if up {
            f | libc::IFF_UP
        } else {
            f & !libc::IFF_UP
        };
        self.set_flags(f)
    }

    /// The device's MAC address.
    pub fn mac(&self) -> Result<MacAddr, KernelError> {
        let mut req = ifreq(&self.name)?;
        // SAFETY: SIOCGIFHWADDR reads the name and writes a sockaddr.
        unsafe { ioctl(self.ctl.as_fd(), libc::SIOCGIFHWADDR as _, &mut req) }
            .context(|| format!("reading MAC of {}", self.name))?;
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
        let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *d = *s as u8;
        }
        Ok(MacAddr(mac))
    }

    /// The device's MTU.
    pub fn mtu(&self) -> Result<u32, KernelError> {
        let mut req = ifreq(&self.name)?;
        // SAFETY: SIOCGIFMTU reads the name and writes the MTU of an ifreq.
        unsafe { ioctl(self.ctl.as_fd(), libc::SIOCGIFMTU as _, &mut req) }
            .context(|| format!("reading MTU of {}", self.name))?;
        // SAFETY: SIOCGIFMTU filled the mtu member of the union.
        Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
    }

    /// Sets the device's MTU.
    pub fn set_mtu(&self, mtu: u32) -> Result<(), KernelError> {
        let mut req = ifreq(&self.name)?;
        req.ifr_ifru.ifru_mtu = mtu.min(i32::MAX as u32) as libc::c_int;
        // SAFETY: SIOCSIFMTU reads the name and the MTU of an ifreq.
        unsafe { ioctl(self.ctl.as_fd(), libc::SIOCSIFMTU as _, &mut req) }
            .context(|| format!("setting MTU of {} to {mtu}", self.name))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_with_zero_mac() {
        let lo = Link::open("lo").unwrap();
        assert_eq!(lo.name(), "lo");
        assert!(lo.index() > 0);
        assert_eq!(lo.mac().unwrap(), MacAddr([0; 6]));
        assert!(lo.mtu().unwrap() >= 1500);
        assert!(matches!(lo.state(), LinkState::Up | LinkState::Down));
    }

    #[test]
    fn bad_and_missing_names_are_errors() {
        assert!(Link::open("").is_err());
        assert!(Link::open("a/b").is_err());
        assert!(Link::open("name-far-too-long-for-linux").is_err());
        let e = Link::open("sluice-none0").unwrap_err();
        assert!(e.is_gone(), "{e}");
    }
}
