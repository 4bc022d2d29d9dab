//! Every kind of output, read by tshark with checksum validation on.

use std::path::PathBuf;
use std::process::Command;

use sluice_io::pcap::PcapWriter;

use super::support::*;

/// A program a test needs. Missing: under CI the test fails, elsewhere it
/// is skipped with a note.
fn require(program: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is missing: scripts/test-all installs it (as root)"
        );
        eprintln!("skipping: {program} is not installed");
    }
    found
}

/// Every kind of frame the host functions make, each with what tshark
/// should call its top protocol.
fn every_output(b: &mut Bufs) -> Vec<(Vec<u8>, &'static str)> {
    let mut out = Vec::new();
    let mut p = b.packet(&echo4(PEER4, ME4, 64, &payload(3000)));
    icmp4::echo_reply(&mut p).unwrap();
    out.push((framed(0x0800, &b.take(p)), "icmp"));
    for kind in KINDS4 {
        for n in [8, 1400] {
            let mut p = b.packet(&udp4(PEER4, FAR4, 1, n));
            icmp4::error(&mut p, kind, ME4).unwrap();
            out.push((framed(0x0800, &b.take(p)), "icmp"));
        }
    }
    let mut p = b.packet(&echo6(PEER6, ME6, &payload(3000)));
    icmp6::echo_reply(&mut p, ME6).unwrap();
    out.push((framed(0x86dd, &b.take(p)), "icmpv6"));
    for kind in KINDS6 {
        for n in [8, 1400] {
            let mut p = b.packet(&udp6(PEER6, FAR6, 1, n));
            icmp6::error(&mut p, kind, ME6).unwrap();
            out.push((framed(0x86dd, &b.take(p)), "icmpv6"));
        }
    }
    let mut p = b.empty();
    arp::request(&mut p, ME_MAC, ME4, PEER4).unwrap();
    out.push((b.take(p), "arp"));
    let mut p = b.empty();
    arp::gratuitous(&mut p, ME_MAC, ME4).unwrap();
    out.push((b.take(p), "arp"));
    let mut p = b.empty();
    arp::request(&mut p, PEER_MAC, PEER4, ME4).unwrap();
    arp::reply(&mut p, ME_MAC, ME4).unwrap();
    out.push((b.take(p), "arp"));
    for src in [ME6, Ipv6Addr::UNSPECIFIED] {
        let mut p = b.empty();
        nd::solicit(&mut p, ME_MAC, src, PEER6).unwrap();
        out.push((b.take(p), "icmpv6"));
    }
    for src in [PEER6, Ipv6Addr::UNSPECIFIED] {
        let mut p = b.empty();
        nd::solicit(&mut p, PEER_MAC, src, ME6).unwrap();
        nd::advertise(&mut p, ME_MAC, ME6).unwrap();
        out.push((b.take(p), "icmpv6"));
    }
    out
}

#[test]
fn tshark_reads_every_output_without_malformed_or_bad_checksum() {
    if !require("tshark") {
        return;
    }
    let mut b = Bufs::new();
    let frames = every_output(&mut b);
    let file = std::env::temp_dir().join(format!("sluice-host-{}.pcap", std::process::id()));
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Remove(file.clone());
    let mut w = PcapWriter::create(&file, 65535).unwrap();
    for (f, _) in &frames {
        w.write(f).unwrap();
    }
    w.flush().unwrap();
    drop(w);

    // IPv4 header checksums are checked only on request; ICMP and ICMPv6
    // checksums always are (they have no preference). Status 1 is "good".
    let t = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"])
        .args(["-e", "frame.protocols"])
        .args(["-e", "ip.checksum.status"])
        .args(["-e", "icmp.checksum.status"])
        .args(["-e", "icmpv6.checksum.status"])
        .args(["-e", "_ws.expert.severity"])
        .args(["-e", "_ws.malformed", "-e", "_ws.expert.message"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&t.stdout);
    assert!(
        t.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&t.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), frames.len(), "{out}");
    // Expert severities: 0x800000 is an error (malformed, bad checksum).
    const ERROR_SEVERITY: u32 = 0x80_0000;
    for (line, (_, proto)) in lines.iter().zip(&frames) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 7, "{line}");
        assert!(
            f[0].split(':').any(|p| p == *proto),
            "{proto} missing: {line}"
        );
        assert!(!f[0].contains("malformed") && f[5].is_empty(), "{line}");
        assert!(f[0].ends_with(":data") || !f[0].contains(":udp"), "{line}");
        for status in [f[1], f[2], f[3]] {
            assert!(
                status.split(',').all(|s| s.is_empty() || s == "1"),
                "checksum not good: {line}"
            );
        }
        match *proto {
            "icmp" => assert!(f[2].starts_with('1') && f[1].starts_with('1'), "{line}"),
            "icmpv6" => assert!(f[3].starts_with('1'), "{line}"),
            _ => {}
        }
        for sev in f[4].split(',').filter(|s| !s.is_empty()) {
            let sev: u32 = sev.parse().unwrap_or(u32::MAX);
            assert!(sev < ERROR_SEVERITY, "expert error: {line}");
        }
    }

    // And the human-readable decode has no complaint either.
    let v = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-o", "ip.check_checksum:TRUE", "-V"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success());
    for bad in [
        "Malformed",
        "[Checksum Status: Bad]",
        "incorrect",
        "Expert Info (Error",
    ] {
        assert!(!text.contains(bad), "tshark says {bad}:\n{text}");
    }
}
