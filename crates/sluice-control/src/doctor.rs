//! `sluice doctor`: what this host offers the forwarder, checked before it
//! runs, one actionable line a finding.
//!
//! Each check says what it found and, when something is missing or wrong,
//! what to do about it. Checks only read (or open and close a socket); a
//! configuration, when given, adds checks of its interfaces and cores.

use std::fmt;
use std::path::Path;

use crate::config::{Config, Driver};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// All good.
    Ok,
    /// Works, slower or less safe than it could.
    Warn,
    /// Will not work as configured.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// What was checked.
    pub what: String,
    /// What was found, and what to do.
    pub says: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{tag}  {:<22} {}", self.what, self.says)
    }
}

fn finding(level: Level, what: &str, says: impl Into<String>) -> Finding {
    Finding {
        level,
        what: what.to_string(),
        says: says.into(),
    }
}

/// A number from a `Key: value` line of a /proc file.
fn proc_value(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn huge_pages(buffers: u32) -> Finding {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let free = proc_value(&meminfo, "HugePages_Free:").unwrap_or(0);
    let size_kb = proc_value(&meminfo, "Hugepagesize:").unwrap_or(2048);
    let need = (u64::from(buffers) * 2304).div_ceil(size_kb * 1024);
    if free >= need {
        finding(
            Level::Ok,
            "huge pages",
            format!("{free} free, the pool needs {need}"),
        )
    } else {
        finding(
            Level::Warn,
            "huge pages",
            format!(
                "{free} free, the pool needs {need}: it will use normal pages (slower); \
                 `echo {need} > /proc/sys/vm/nr_hugepages` as root"
            ),
        )
    }
}

fn memlock() -> Finding {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .unwrap_or("");
    let soft = line.split_whitespace().nth(3).unwrap_or("?");
    if soft == "unlimited" || soft.parse::<u64>().is_ok_and(|v| v >= 256 << 20) {
        finding(Level::Ok, "memlock limit", soft.to_string())
    } else {
        finding(
            Level::Warn,
            "memlock limit",
            format!(
                "{soft} bytes: buffers cannot be locked in memory (they may be swapped); \
                 `ulimit -l unlimited` or LimitMEMLOCK=infinity in the service"
            ),
        )
    }
}

fn cpu() -> Finding {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("")
        .to_string();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let missing: Vec<&str> = ["sse4_2", "popcnt", "avx2", "constant_tsc"]
        .into_iter()
        .filter(|f| !has(f))
        .collect();
    if missing.is_empty() {
        finding(Level::Ok, "cpu", "sse4.2, popcnt, avx2, constant TSC")
    } else {
        finding(
            Level::Warn,
            "cpu",
            format!(
                "missing {}: slower lookups; cycle counts are not time without constant_tsc",
                missing.join(", ")
            ),
        )
    }
}

fn socket_dir(socket: &Path) -> Finding {
    use std::os::unix::fs::PermissionsExt;
    let Some(dir) = socket.parent() else {
        return finding(Level::Fail, "control socket", "no directory in the path");
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => finding(
            Level::Warn,
            "control socket",
            format!(
                "{} is open to others (mode {:o}): `chmod 700 {}`",
                dir.display(),
                m.permissions().mode() & 0o777,
                dir.display()
            ),
        ),
        Ok(_) => finding(
            Level::Ok,
            "control socket",
            format!("{} is owner-only", dir.display()),
        ),
        Err(_) if is_root() => finding(
            Level::Ok,
            "control socket",
            format!("{} will be made, owner-only", dir.display()),
        ),
        Err(_) => finding(
            Level::Warn,
            "control socket",
            format!(
                "{} is missing and only root can make it: run as root or give --socket",
                dir.display()
            ),
        ),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| proc_value(&s, "Uid:"))
        == Some(0)
}

fn af_xdp() -> Finding {
    match sluice_io::sys::xdp::probe() {
        Ok(()) => finding(
            Level::Ok,
            "af-xdp",
            "AF_XDP sockets and BPF maps can be made",
        ),
        Err(e) => finding(
            Level::Fail,
            "af-xdp",
            format!("{e}: run as root (or with CAP_BPF and CAP_NET_ADMIN)"),
        ),
    }
}

fn interface(name: &str, driver: &Driver) -> Option<Finding> {
    let k = driver.kernel()?;
    if matches!(driver, Driver::Tap(_)) {
        return Some(if Path::new("/dev/net/tun").exists() {
            finding(Level::Ok, name, "tap: /dev/net/tun is there")
        } else {
            finding(
                Level::Fail,
                name,
                "tap: no /dev/net/tun (`modprobe tun`, or give the container the device)",
            )
        });
    }
    let link = match sluice_io::sys::netns::run_in(k.netns.as_deref(), || {
        sluice_io::sys::link::Link::open(&k.device)
    }) {
        Ok(l) => l,
        Err(e) => return Some(finding(Level::Fail, name, format!("{e}"))),
    };
    let mtu = link.mtu().unwrap_or(0);
    if matches!(driver, Driver::AfXdp(_)) {
        if mtu > 2030 {
            return Some(finding(
                Level::Fail,
                name,
                format!(
                    "af-xdp on {} with MTU {mtu}: frames must fit one 2 KiB buffer; `ip link set {} mtu 1500`",
                    k.device, k.device
                ),
            ));
        }
        let rxq = std::fs::read_dir(format!("/sys/class/net/{}/queues", k.device))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count()
            })
            .unwrap_or(0);
        if rxq > 0 && (k.queues as usize) > rxq {
            return Some(finding(
                Level::Fail,
                name,
                format!(
                    "af-xdp asks {} queues of {}, which has {rxq}",
                    k.queues, k.device
                ),
            ));
        }
    }
    Some(finding(
        Level::Ok,
        name,
        format!("{} {} found, MTU {mtu}", driver.kind(), k.device),
    ))
}

fn cores(config: &Config) -> Option<Finding> {
    if config.cores.is_empty() {
        return None;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut seen = std::collections::HashSet::new();
    for &c in &config.cores {
        if c >= n {
            return Some(finding(
                Level::Fail,
                "cores",
                format!("core {c} does not exist (this host has 0..{n})"),
            ));
        }
        if !seen.insert(c) {
            return Some(finding(
                Level::Warn,
                "cores",
                format!("core {c} is given to two workers: they will share it"),
            ));
        }
    }
    Some(finding(
        Level::Ok,
        "cores",
        format!("{:?} of 0..{n}", config.cores),
    ))
}

/// Every check, for a host and (optionally) a configuration.
pub fn check(config: Option<&Config>, socket: &Path) -> Vec<Finding> {
    let mut out = vec![
        huge_pages(config.map_or(32768, |c| c.buffers)),
        memlock(),
        cpu(),
        socket_dir(socket),
    ];
    let wants_xdp = config.is_none_or(|c| {
        c.interfaces
            .iter()
            .any(|i| matches!(i.driver, Driver::AfXdp(_)))
    });
    if wants_xdp {
        out.push(af_xdp());
    }
    if let Some(c) = config {
        out.extend(
            c.interfaces
                .iter()
                .filter_map(|i| interface(&i.name, &i.driver)),
        );
        out.extend(cores(c));
    }
    out
}
