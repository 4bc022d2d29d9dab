//! How big a connection table is and how long its sessions live.

use std::time::Duration;

use thiserror::Error;

use super::table::MAX_CAPACITY;
use super::tcp::TcpState;

/// Idle timeouts per state: a session with no packet for this long goes.
///
/// The defaults are shorter than Linux's where Linux's would let dead
/// connections fill a forwarder's table: ESTABLISHED is one hour (Linux:
/// five days; firewalls commonly use one hour, and an application that
/// idles longer keeps its connection up with keepalives, whose Linux
/// default of two hours is itself configurable), the handshake states
/// 30 s (Linux: 120 s and 60 s) since a half-open session is what a SYN
/// flood is made of. The closing states keep Linux's values: they guard
/// the last segments and retransmissions of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// SYN_SENT (Linux 120 s).
    pub syn_sent: Duration,
    /// SYN_RECV (Linux 60 s).
    pub syn_recv: Duration,
    /// ESTABLISHED (Linux 5 days).
    pub established: Duration,
    /// FIN_WAIT (Linux 120 s).
    pub fin_wait: Duration,
    /// CLOSE_WAIT (Linux 60 s).
    pub close_wait: Duration,
    /// LAST_ACK (Linux 30 s).
    pub last_ack: Duration,
    /// TIME_WAIT (Linux 120 s).
    pub time_wait: Duration,
    /// CLOSE, after a RST (Linux 10 s).
    pub close: Duration,
    /// UDP and other datagrams with no reply yet (Linux 30 s).
    pub datagram: Duration,
    /// UDP and other datagrams answered (Linux 120 s for a stream).
    pub datagram_replied: Duration,
    /// ICMP echo (Linux 30 s).
    pub echo: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let s = Duration::from_secs;
        Timeouts {
            syn_sent: s(30),
            syn_recv: s(30),
            established: s(3600),
            fin_wait: s(120),
            close_wait: s(60),
            last_ack: s(30),
            time_wait: s(120),
            close: s(10),
            datagram: s(30),
            datagram_replied: s(120),
            echo: s(30),
        }
    }
}

impl Timeouts {
    /// The timeout of a TCP state.
    pub fn tcp(&self, s: TcpState) -> Duration {
        match s {
            TcpState::SynSent => self.syn_sent,
            TcpState::SynRecv => self.syn_recv,
            TcpState::Established => self.established,
            TcpState::FinWait => self.fin_wait,
            TcpState::CloseWait => self.close_wait,
            TcpState::LastAck => self.last_ack,
            TcpState::TimeWait => self.time_wait,
            TcpState::Close => self.close,
        }
    }

    fn all(&self) -> [(&'static str, Duration); 11] {
        [
            ("syn-sent", self.syn_sent),
            ("syn-recv", self.syn_recv),
            ("established", self.established),
            ("fin-wait", self.fin_wait),
            ("close-wait", self.close_wait),
            ("last-ack", self.last_ack),
            ("time-wait", self.time_wait),
            ("close", self.close),
            ("datagram", self.datagram),
            ("datagram-replied", self.datagram_replied),
            ("echo", self.echo),
        ]
    }
}

/// A connection table's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtConfig {
    /// Sessions the table holds at most (memory is allocated for all of
    /// them at creation: 156 bytes a session).
    pub capacity: u32,
    /// Zones (tenants or VRFs), numbered from 0.
    pub zones: u16,
    /// Sessions each zone may hold, unless `zone_limits` says otherwise.
    pub zone_limit: u32,
    /// Per-zone limits: (zone, limit).
    pub zone_limits: Vec<(u16, u32)>,
    /// The timer wheel's tick: timeouts are rounded up to it.
    pub tick: Duration,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Sessions expired per vector at most, besides those found expired
    /// by a lookup (the rest wait for the next vector or poll).
    pub expire_budget: usize,
    /// Seed of the key hash (0: one from the clock at creation).
    pub seed: u64,
}

impl Default for CtConfig {
    fn default() -> CtConfig {
        CtConfig {
            capacity: 1 << 20,
            zones: 1,
            zone_limit: u32::MAX,
            zone_limits: Vec::new(),
            tick: Duration::from_millis(100),
            timeouts: Timeouts::default(),
            expire_budget: 256,
            seed: 0,
        }
    }
}

/// A configuration the table refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CtConfigError {
    /// Capacity 0 or above [`MAX_CAPACITY`].
    #[error("capacity {0} is out of range (1 to {MAX_CAPACITY})")]
    Capacity(u32),
    /// No zones.
    #[error("a table needs at least one zone")]
    NoZones,
    /// A limit for a zone the table does not have.
    #[error("zone {zone} has a limit but the table has {zones} zones")]
    Zone {
        /// The zone named.
        zone: u16,
        /// Zones the table has.
        zones: u16,
    },
    /// A tick of 0 or of more than a second.
    #[error("tick {0:?} is out of range (1 ms to 1 s)")]
    Tick(Duration),
    /// A timeout shorter than a tick, of more than 30 days, or of 2^30
    /// ticks or more.
    #[error(
        "timeout `{name}` of {value:?} is out of range (one tick to 30 days, under 2^30 ticks)"
    )]
    Timeout {
        /// Which one.
        name: &'static str,
        /// Its value.
        value: Duration,
    },
    /// An expiry budget of 0 (sessions would never leave).
    #[error("the expiry budget must be at least 1")]
    Budget,
}

impl CtConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), CtConfigError> {
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(CtConfigError::Capacity(self.capacity));
        }
        if self.zones == 0 {
            return Err(CtConfigError::NoZones);
        }
        if let Some(&(zone, _)) = self.zone_limits.iter().find(|(z, _)| *z >= self.zones) {
            return Err(CtConfigError::Zone {
                zone,
                zones: self.zones,
            });
        }
        if self.tick < Duration::from_millis(1) || self.tick > Duration::from_secs(1) {
            return Err(CtConfigError::Tick(self.tick));
        }
        for (name, value) in self.timeouts.all() {
            // Deadlines live on a 32-bit circle of ticks: half of it is
            // the furthest a deadline may lie ahead.
            let ticks = value.as_millis() / self.tick.as_millis().max(1);
            if value < self.tick || value > Duration::from_secs(30 * 86_400) || ticks >= 1 << 30 {
                return Err(CtConfigError::Timeout { name, value });
            }
        }
        if self.expire_budget == 0 {
            return Err(CtConfigError::Budget);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_what_is_wrong() {
        assert_eq!(CtConfig::default().validate(), Ok(()));
        let c = |f: fn(&mut CtConfig)| {
            let mut c = CtConfig::default();
            f(&mut c);
            c.validate()
        };
        assert_eq!(c(|c| c.capacity = 0), Err(CtConfigError::Capacity(0)));
        assert_eq!(c(|c| c.zones = 0), Err(CtConfigError::NoZones));
        assert_eq!(
            c(|c| c.zone_limits = vec![(1, 5)]),
            Err(CtConfigError::Zone { zone: 1, zones: 1 })
        );
        assert!(matches!(
            c(|c| c.timeouts.close = Duration::from_millis(10)),
            Err(CtConfigError::Timeout { name: "close", .. })
        ));
        // 30 days at 1 ms ticks does not fit the tick circle.
        assert!(matches!(
            c(|c| {
                c.tick = Duration::from_millis(1);
                c.timeouts.established = Duration::from_secs(30 * 86_400);
            }),
            Err(CtConfigError::Timeout {
                name: "established",
                ..
            })
        ));
        assert_eq!(c(|c| c.expire_budget = 0), Err(CtConfigError::Budget));
    }
}
