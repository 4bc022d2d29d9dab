//! The route and address files of `dpdk-test-fib`, shared by the FIB
//! benchmarks: made once into `target/fib-peer/` by DPDK's own generator,
//! so that Sluice and DPDK are measured on the same data.

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_fn::fib::{Key, lpm::MAX_VALUE};

const D4: &str =
    "16:2%,17:1%,18:2%,19:3%,20:4%,21:5%,22:9%,23:8%,24:60%,25:1%,26:1%,27:1%,28:1%,29:1%,30:1%";
const D6: &str = "29:2%,32:10%,36:3%,40:5%,44:5%,45:3%,46:3%,47:5%,48:50%,56:5%,64:5%,128:4%";
pub struct Family {
    pub name: &'static str,
    pub v6: bool,
    pub routes: usize,
    pub groups_dpdk: u32,
    pub mem_mib: u32,
    pub dist: &'static str,
}

pub const V4: Family = Family {
    name: "v4",
    v6: false,
    routes: 1_000_000,
    groups_dpdk: 262_144,
    mem_mib: 4096,
    dist: D4,
};
pub const V6: Family = Family {
    name: "v6",
    v6: true,
    routes: 500_000,
    groups_dpdk: 2_000_000,
    mem_mib: 6144,
    dist: D6,
};

pub fn dir() -> PathBuf {
    let d = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("fib-peer");
    std::fs::create_dir_all(&d).expect("create target/fib-peer");
    d
}

pub fn dpdk(f: &Family, args: &[String]) -> Option<String> {
    let mut a = vec![
        "--no-huge".to_string(),
        "-m".into(),
        f.mem_mib.to_string(),
        "--no-pci".into(),
        "-l".into(),
        "1".into(),
        "--".into(),
    ];
    if f.v6 {
        a.push("-6".into());
    }
    a.extend_from_slice(args);
    let out = Command::new("dpdk-test-fib").args(&a).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Makes the route and address files with DPDK's generator; `None` when
/// `dpdk-test-fib` is not installed.
pub fn files(f: &Family) -> Option<(PathBuf, PathBuf)> {
    let d = dir();
    let routes = d.join(format!("routes{}.txt", f.name));
    let ips = d.join(format!("ips{}.txt", f.name));
    if !(routes.exists() && ips.exists()) {
        dpdk(
            f,
            &[
                "-n".into(),
                f.routes.to_string(),
                "-l".into(),
                "1000000".into(),
                "-g".into(),
                f.groups_dpdk.to_string(),
                "-d".into(),
                f.dist.into(),
                "-r".into(),
                "50".into(),
                "-w".into(),
                routes.display().to_string(),
                "-u".into(),
                ips.display().to_string(),
            ],
        )?;
    }
    (routes.exists() && ips.exists()).then_some((routes, ips))
}

/// DPDK's cycles per lookup (rte_fib, rte_lpm) on the files.
pub fn dpdk_lookup(f: &Family, routes: &Path, ips: &Path) -> Option<(f64, f64)> {
    let out = dpdk(
        f,
        &[
            "-f".into(),
            routes.display().to_string(),
            "-t".into(),
            ips.display().to_string(),
            "-g".into(),
            f.groups_dpdk.to_string(),
            "-c".into(),
        ],
    )?;
    let grab = |what: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((grab("AVG FIB lookup")?, grab("AVG LPM lookup")?))
}

/// An address as the trie keys it, parsed from DPDK's files.
pub trait Addr: Key {
    fn parse(s: &str) -> Option<Self>;
}

impl Addr for u32 {
    fn parse(s: &str) -> Option<u32> {
        s.parse::<Ipv4Addr>().ok().map(u32::from)
    }
}

impl Addr for u128 {
    fn parse(s: &str) -> Option<u128> {
        s.parse::<Ipv6Addr>().ok().map(u128::from)
    }
}

pub fn load<K: Addr>(routes: &Path, ips: &Path) -> (Vec<(K, u8, u32)>, Vec<K>) {
    let text = std::fs::read_to_string(routes).expect("read routes");
    let r = text
        .lines()
        .filter_map(|l| {
            let (p, nh) = l.split_once(' ')?;
            let (a, len) = p.split_once('/')?;
            let nh: u64 = nh.trim().parse().ok()?;
            Some((
                K::parse(a)?,
                len.parse().ok()?,
                (nh % u64::from(MAX_VALUE)) as u32 + 1,
            ))
        })
        .collect();
    let text = std::fs::read_to_string(ips).expect("read ips");
    let a = text.lines().filter_map(|l| K::parse(l.trim())).collect();
    (r, a)
}
