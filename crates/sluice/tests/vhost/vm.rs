//! A real VM: QEMU (TCG) with a Linux guest using its stock virtio-net
//! driver, attached to `sluice run` by vhost-user, routed by Sluice to a
//! Linux host in a network namespace on AF_PACKET:
//!
//! ```text
//!  guest 10.9.1.2 ──vhost-user── vm0 10.9.1.1 [Sluice] h0 10.9.2.1 ──veth── host 10.9.2.2
//! ```
//!
//! The guest is built here, from the Debian packages `linux-image-cloud-amd64`
//! (its kernel and virtio modules) and `busybox-static`: an initramfs whose
//! `/init` loads the modules, configures `eth0`, serves a file over HTTP,
//! pings the host, fetches a file from it, prints the checksums, and then
//! pings the host once a second for ever, printing whether it answered.
//! Its console is QEMU's standard output, read line by line.
//!
//! Checked: pings both ways; a 1 MiB file each way with matching MD5;
//! then Sluice killed under the running guest (the guest sees its link
//! go), started again, and connectivity back by itself: QEMU reconnects
//! (`reconnect=1`) and, having no ring state to fetch from a dead back
//! end ("vhost VQ 0 ring restore failed" on its console), restarts its
//! rings at the used index; Sluice takes its used index from guest
//! memory too. Pings both ways and a file again.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_testnet::{ChildGuard, Host, ci, require, require_root};

use super::{Dir, sluice_ctl, sluice_run, wait_for};

/// The guest's virtio modules, in the order they load.
const MODULES: [&str; 8] = [
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
];

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp /sbin /usr/bin /usr/sbin /www
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m" || echo "GUEST-FAIL insmod $m"; done
n=0
while ! ip link show eth0 >/dev/null 2>&1; do
  n=$((n+1)); [ $n -gt 100 ] && echo "GUEST-FAIL no eth0" && poweroff -f
  sleep 0.1
done
ip link set lo up
ip link set eth0 up
ip addr add 10.9.1.2/24 dev eth0
ip route add default via 10.9.1.1
dd if=/dev/urandom of=/www/g bs=1024 count=1024 2>/dev/null
echo "GUEST-SUM $(md5sum /www/g)"
httpd -p 8080 -h /www
n=0
until ping -c1 -W1 10.9.2.2 >/dev/null 2>&1; do n=$((n+1)); [ $n -gt 30 ] && break; done
if ping -c 3 -W 2 10.9.2.2 >/dev/null; then echo GUEST-PING-OK; else echo GUEST-PING-FAIL; fi
if wget -q -O /tmp/f http://10.9.2.2:8080/file; then echo "GUEST-GOT $(md5sum /tmp/f)"; else echo GUEST-WGET-FAIL; fi
while true; do
  if ping -c1 -W1 10.9.2.2 >/dev/null 2>&1; then echo GUEST-LINK-OK; else echo GUEST-LINK-DOWN; fi
  sleep 1
done
"#;

/// A `newc` cpio archive (what the kernel unpacks as its initramfs).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            ino: 1,
        }
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, (0, 0), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// The cloud kernel in `/boot` and its modules directory, if installed.
fn cloud_kernel() -> Option<(PathBuf, PathBuf)> {
    let boot = std::fs::read_dir("/boot").ok()?;
    let mut kernels: Vec<PathBuf> = boot
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-") && n.ends_with("-cloud-amd64"))
        })
        .collect();
    kernels.sort();
    let k = kernels.pop()?;
    let version = k
        .file_name()?
        .to_str()?
        .strip_prefix("vmlinuz-")?
        .to_string();
    let modules = PathBuf::from("/lib/modules").join(version);
    modules.is_dir().then_some((k, modules))
}

/// Builds the guest's initramfs at `path`.
fn initramfs(path: &Path, modules: &Path, busybox: &Path) {
    let mut c = Cpio::new();
    for d in [
        "bin",
        "dev",
        "lib",
        "lib/modules",
        "proc",
        "sys",
        "tmp",
        "www",
    ] {
        c.dir(d);
    }
    // The console the kernel opens for init.
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("bin/busybox", 0o755, &std::fs::read(busybox).unwrap());
    c.file("init", 0o755, INIT.as_bytes());
    for (i, m) in MODULES.iter().enumerate() {
        let file = modules.join(m);
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Named so that the shell's glob loads them in order.
        let name = Path::new(m).file_name().unwrap().to_string_lossy();
        c.file(&format!("lib/modules/{i}-{name}"), 0o644, &bytes);
    }
    std::fs::write(path, c.finish()).unwrap();
}

/// Whether `elf` is a 64-bit ELF executable with no program interpreter
/// (`PT_INTERP`): linked statically, so it runs alone in the guest.
fn is_static_elf(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
    };
    if !elf.starts_with(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return false;
    };
    (0..count).all(|i| {
        let at = phoff + i * size;
        elf.get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != 3)
    })
}

/// QEMU's console, line by line, with every line kept for a failure
/// message.
struct Console {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Console {
    /// The first line from now on containing `what`, within `secs`.
    fn expect(&mut self, what: &str, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        let tail = self.seen.len().saturating_sub(40);
        panic!(
            "the guest did not say {what:?} in {secs} s; its console:\n{}",
            self.seen[tail..].join("\n")
        );
    }
}

fn md5(path: &Path) -> String {
    let o = Command::new("md5sum").arg(path).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.split_whitespace().next().unwrap_or_default().to_string()
}

/// The MD5 after `marker` in a `... <marker> <md5>  <file>` line (the
/// firmware's escape codes may come before the marker on the line).
fn sum_in(line: &str, marker: &str) -> String {
    let after = line
        .find(marker)
        .map_or("", |at| &line[at + marker.len()..]);
    after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Pings `ip` from the host three times; all must answer.
fn host_pings(host: &Host, ip: &str) {
    let out = host
        .ns
        .output(&["ping", "-c", "3", "-i", "0.3", "-W", "3", ip]);
    assert!(
        out.status.success(),
        "the host's pings of {ip}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The host fetches the guest's file; its MD5 must be `want`.
fn host_fetches(host: &Host, busybox: &Path, dir: &Path, want: &str) {
    let got = dir.join("from-guest");
    let _ = std::fs::remove_file(&got);
    let out = host.ns.output(&[
        busybox.to_str().unwrap(),
        // (No `-T`: busybox 1.35's wget crashes with a timeout set.)
        "wget",
        "-q",
        "-O",
        got.to_str().unwrap(),
        "http://10.9.1.2:8080/g",
    ]);
    assert!(
        out.status.success(),
        "the host could not fetch the guest's file ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(md5(&got), want, "the guest's file arrived changed");
}

fn config(sock: &Path, device: &str) -> String {
    format!(
        "[[interface]]\nname = \"vm0\"\ndriver = \"vhost-user\"\nsocket = \"{}\"\naddress = [\"10.9.1.1/24\"]\n\n\
         [[interface]]\nname = \"h0\"\ndriver = \"af-packet\"\ndevice = \"{device}\"\naddress = [\"10.9.2.1/24\"]\n",
        sock.display()
    )
}

#[test]
fn a_qemu_guest_reaches_a_host_through_sluice_and_survives_a_restart_needs_root() {
    if !require_root() || !require("qemu-system-x86_64") || !require("busybox") {
        return;
    }
    if !require("md5sum") || !require("ping") {
        return;
    }
    let Some((kernel, modules)) = cloud_kernel() else {
        assert!(
            !ci(),
            "no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64"
        );
        eprintln!("skipped: no cloud kernel (linux-image-cloud-amd64)");
        return;
    };
    let started = Instant::now();
    let busybox = PathBuf::from(
        String::from_utf8_lossy(
            &Command::new("which")
                .arg("busybox")
                .output()
                .unwrap()
                .stdout,
        )
        .trim(),
    );
    assert!(
        std::fs::read(&busybox).is_ok_and(|b| is_static_elf(&b)),
        "{} is linked dynamically: the guest needs busybox-static",
        busybox.display()
    );
    let dir = Dir::new("svm");
    let initrd = dir.0.join("initrd.cpio");
    initramfs(&initrd, &modules, &busybox);

    // The host, serving a file of 1 MiB.
    let host = Host::new("10.9.2.2/24", "10.9.2.1", "fd09:2::2/64", "fd09:2::1");
    let www = dir.0.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut data = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::File::create(www.join("file"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    let host_sum = md5(&www.join("file"));
    let _httpd = host.ns.spawn(&[
        busybox.to_str().unwrap(),
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        www.to_str().unwrap(),
    ]);

    let (sock, ctl) = (dir.0.join("vm0.sock"), dir.0.join("ctl.sock"));
    let cfg = dir.0.join("c.toml");
    std::fs::write(&cfg, config(&sock, &host.link.outer)).unwrap();
    let log = dir.0.join("sluice.log");
    let sluice = sluice_run(&cfg, &ctl, &log);
    assert!(wait_for(&[&sock, &ctl], 10), "vhost-user socket not made");

    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "256",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
            "-kernel",
            kernel.to_str().unwrap(),
            "-initrd",
            initrd.to_str().unwrap(),
            "-append",
            "console=ttyS0 panic=-1 quiet",
            "-object",
            "memory-backend-memfd,id=mem,size=256M,share=on",
            "-numa",
            "node,memdev=mem",
            // Reconnects (every second) when Sluice goes away.
            "-chardev",
            &format!("socket,id=c0,path={},reconnect=1", sock.display()),
            "-netdev",
            "type=vhost-user,id=n0,chardev=c0",
            // vectors=0: QEMU 7.2 under TCG crashes starting vhost-user
            // with MSI-X (see the peers notes).
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,vectors=0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(qemu.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(qemu.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
    }
    let _qemu = ChildGuard(qemu);
    let mut console = Console {
        lines,
        seen: Vec::new(),
    };

    // Up, and both ways.
    let guest_sum = sum_in(&console.expect("GUEST-SUM", 60), "GUEST-SUM");
    assert_eq!(
        guest_sum.len(),
        32,
        "the guest made no file:\n{}",
        console.seen.join("\n")
    );
    console.expect("GUEST-PING-OK", 40);
    let got = console.expect("GUEST-GOT", 40);
    assert_eq!(
        sum_in(&got, "GUEST-GOT"),
        host_sum,
        "the host's file arrived changed"
    );
    host_pings(&host, "10.9.1.2");
    host_fetches(&host, &busybox, &dir.0, &guest_sum);
    let shown = sluice_ctl(&ctl, "show interface");
    assert!(shown.contains("vhost-user up"), "{shown}");

    // Sluice killed under the running guest, and started again.
    drop(sluice);
    console.expect("GUEST-LINK-DOWN", 20);
    let sluice = sluice_run(&cfg, &ctl, &log);
    assert!(wait_for(&[&sock], 10), "vhost-user socket not made again");
    console.expect("GUEST-LINK-OK", 30);
    host_pings(&host, "10.9.1.2");
    host_fetches(&host, &busybox, &dir.0, &guest_sum);
    let shown = sluice_ctl(&ctl, "show interface");
    assert!(shown.contains("vhost-user up"), "{shown}");
    drop(sluice);
    if std::env::var_os("SLUICE_VM_CONSOLE").is_some() {
        eprintln!("{}", console.seen.join("\n"));
    }
    eprintln!("guest test took {:.1} s", started.elapsed().as_secs_f64());
}
