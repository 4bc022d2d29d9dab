//! A network function in a few lines: attach to Sluice over memif and send
//! every frame back with its MAC addresses swapped.
//!
//! `cargo run -p sluice-io --example reflector -- /run/sluice/memif.sock [ID] [SECONDS]`
//! (a Sluice interface `driver = "memif"` serves that socket).

use std::time::{Duration, Instant};

use sluice_io::memif::MemifPort;

fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args
        .next()
        .unwrap_or_else(|| "/run/sluice/memif.sock".to_string());
    let id = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let seconds = args.next().and_then(|a| a.parse::<u64>().ok());
    let mut port = match MemifPort::connect(&socket, id) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("reflector: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut report = Instant::now();
    while seconds.is_none_or(|s| start.elapsed() < Duration::from_secs(s)) {
        sent += port.reflect(|frame| {
            let d = frame.data_mut();
            if d.len() >= 12 {
                for i in 0..6 {
                    d.swap(i, i + 6);
                }
            }
            true
        }) as u64;
        if report.elapsed() >= Duration::from_secs(1) {
            println!(
                "reflector: {} frames back, {}",
                sent,
                if port.is_connected() {
                    "connected"
                } else {
                    "waiting for sluice"
                }
            );
            report = Instant::now();
        }
    }
}
