//! Alerts: counted always, logged as one structured line each while the
//! worker's log budget lasts.
//!
//! A flood of matching packets must not become a flood of log lines
//! (the log would cost more than the forwarding, and drown the first,
//! useful alerts), so each node logs through a token bucket and counts
//! what the bucket refused; the per-rule counters see every alert.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// One alert, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert<'a> {
    /// The rule's sid.
    pub sid: u32,
    /// The rule's revision.
    pub rev: u32,
    /// The rule's message.
    pub msg: &'a str,
    /// IP protocol number.
    pub proto: u8,
    /// Source address and port (`[v6]:port` when printed).
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Whether the packet was dropped (prevent mode).
    pub dropped: bool,
    /// The worker that saw it.
    pub worker: usize,
}

impl fmt::Display for Alert<'_> {
    /// `ids-alert sid=1001 rev=2 action=drop proto=6 src=10.0.0.1:40000
    /// dst=192.0.2.7:80 worker=0 msg="..."`: key=value pairs a log
    /// shipper splits on spaces, the free text last and quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ids-alert sid={} rev={} action={} proto={} src={} dst={} worker={} msg=\"",
            self.sid,
            self.rev,
            if self.dropped { "drop" } else { "alert" },
            self.proto,
            self.src,
            self.dst,
            self.worker,
        )?;
        for c in self.msg.chars() {
            match c {
                '"' | '\\' => write!(f, "\\{c}")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Where a node's alert lines go.
pub trait AlertLog: Send {
    /// Records one alert (already past the rate limit).
    fn log(&mut self, alert: &Alert<'_>);
}

/// Alert lines on standard error, for the daemon's log.
#[derive(Debug, Default)]
pub struct StderrLog;

impl AlertLog for StderrLog {
    fn log(&mut self, alert: &Alert<'_>) {
        // A log that cannot be written loses the line, not the packet.
        let _ = writeln!(std::io::stderr().lock(), "{alert}");
    }
}

/// A node's counters, read by anyone without locks; one writer.
#[derive(Debug)]
pub struct IdsStats {
    /// By rule index of the node's set: alerts raised.
    pub per_rule: Vec<AtomicU64>,
    /// The set's sids, by rule index (to print counters by sid).
    pub sids: Vec<u32>,
    /// Packets whose payload was scanned.
    pub scanned: AtomicU64,
    /// Payload bytes scanned.
    pub bytes: AtomicU64,
    /// Packets not scanned (truncated, non-first fragments).
    pub unscanned: AtomicU64,
    /// Alerts raised (a packet matching two rules raises two).
    pub alerts: AtomicU64,
    /// Alert lines written.
    pub logged: AtomicU64,
    /// Alert lines the rate limit held back.
    pub suppressed: AtomicU64,
}

#[inline(always)]
pub(super) fn add(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl IdsStats {
    pub(super) fn new(sids: Vec<u32>) -> IdsStats {
        IdsStats {
            per_rule: sids.iter().map(|_| AtomicU64::new(0)).collect(),
            sids,
            scanned: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            unscanned: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Alerts raised by the rule `sid` (0 for a sid not in the set).
    pub fn by_sid(&self, sid: u32) -> u64 {
        self.sids
            .iter()
            .position(|&s| s == sid)
            .map_or(0, |i| self.per_rule[i].load(Ordering::Relaxed))
    }

    /// Reads a counter.
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_quotes_the_message_and_escapes_what_would_break_it() {
        let a = Alert {
            sid: 7,
            rev: 1,
            msg: "say \"hi\"\n",
            proto: 6,
            src: "10.0.0.1:1234".parse().unwrap(),
            dst: "[2001:db8::1]:80".parse().unwrap(),
            dropped: true,
            worker: 3,
        };
        assert_eq!(
            a.to_string(),
            "ids-alert sid=7 rev=1 action=drop proto=6 src=10.0.0.1:1234 \
             dst=[2001:db8::1]:80 worker=3 msg=\"say \\\"hi\\\"\\u{a}\""
        );
    }
}
