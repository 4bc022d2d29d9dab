//! The driver trait and the nodes that put a driver in the graph.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use sluice_buf::BufCache;
use sluice_graph::iface::{IfCounters, IfIndex};
use sluice_graph::{Cx, ErrorSpec, FRAME_SIZE, Frame, InputState, Next, Node, NodeSpec};

use crate::capture::{Direction, PacketCapture};

/// What a receive burst found; the same as an input node's state.
pub type RxState = InputState;

/// One queue of an interface, owned by one worker.
pub trait Driver: Send {
    /// Receives up to `max` packets into `out`.
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        let _ = (buffers, out, max);
        InputState::Done
    }

    /// Transmits every packet of `packets`, leaving it empty: sent packets
    /// and packets that could not be sent are both freed. Returns how many
    /// could not be sent.
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        let n = packets.len();
        buffers.free_all(packets);
        n
    }

    /// Pushes out whatever the driver buffers (a file writer), at stop.
    fn flush(&mut self) {}

    /// Packets dropped on receive since the last call (by the kernel for
    /// a full ring, or by the driver for no buffer or a bad frame), for
    /// the interface's `rx-drops` counter.
    fn take_rx_drops(&mut self) -> u64 {
        0
    }

    /// A descriptor that becomes readable when packets wait, for a worker
    /// that has been idle to sleep on instead of spinning.
    fn wait_fd(&self) -> Option<RawFd> {
        None
    }
}

/// A boxed driver is a driver: a worker's queues of whichever kind.
impl<D: Driver + ?Sized> Driver for Box<D> {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        (**self).rx_burst(buffers, out, max)
    }

    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        (**self).tx_burst(buffers, packets)
    }

    fn flush(&mut self) {
        (**self).flush();
    }

    fn take_rx_drops(&mut self) -> u64 {
        (**self).take_rx_drops()
    }

    fn wait_fd(&self) -> Option<RawFd> {
        (**self).wait_fd()
    }
}

/// Several queues of one interface served by one worker, as one driver:
/// receive polls each in turn; transmit uses the first.
#[derive(Debug)]
pub struct Queues<D> {
    queues: Vec<D>,
    next: usize,
}

impl<D: Driver> Queues<D> {
    /// Wraps the queues (at least one).
    pub fn new(queues: Vec<D>) -> Queues<D> {
        Queues { queues, next: 0 }
    }
}

impl<D: Driver> Driver for Queues<D> {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        let n = self.queues.len();
        let mut busy = 0;
        for k in 0..n {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            let q = (self.next + k) % n;
            if let InputState::Busy(got) = self.queues[q].rx_burst(buffers, out, room) {
                busy += got;
            }
        }
        self.next = (self.next + 1) % n.max(1);
        if busy > 0 {
            InputState::Busy(busy)
        } else {
            InputState::Idle
        }
    }

    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        match self.queues.first_mut() {
            Some(q) => q.tx_burst(buffers, packets),
            None => {
                let n = packets.len();
                buffers.free_all(packets);
                n
            }
        }
    }

    fn flush(&mut self) {
        self.queues.iter_mut().for_each(|q| q.flush());
    }

    fn take_rx_drops(&mut self) -> u64 {
        self.queues.iter_mut().map(|q| q.take_rx_drops()).sum()
    }

    /// Only a single queue can be slept on; several are polled (with
    /// the worker's short naps when idle).
    fn wait_fd(&self) -> Option<RawFd> {
        match self.queues.as_slice() {
            [q] => q.wait_fd(),
            _ => None,
        }
    }
}

/// The state of an interface's link as its driver last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Up with carrier: packets flow.
    Up = 0,
    /// Administratively down, or no carrier.
    Down = 1,
    /// The kernel device behind the interface no longer exists.
    Gone = 2,
}

/// An interface's link state and how often it went down, written by its
/// drivers (on any worker) and read by `show interface`.
#[derive(Debug, Default)]
pub struct LinkStatus {
    state: AtomicU8,
    downs: AtomicU64,
    /// Set administratively down (`set interface state X down`): nothing
    /// is received or sent, whatever the link.
    admin_down: std::sync::atomic::AtomicBool,
}

impl LinkStatus {
    /// A status that starts up.
    pub fn new() -> Arc<LinkStatus> {
        Arc::new(LinkStatus::default())
    }

    /// The state last set.
    pub fn state(&self) -> LinkState {
        match self.state.load(Ordering::Relaxed) {
            0 => LinkState::Up,
            1 => LinkState::Down,
            _ => LinkState::Gone,
        }
    }

    /// Sets the state; a change away from up counts as one `down`.
    pub fn set(&self, state: LinkState) {
        let old = self.state.swap(state as u8, Ordering::Relaxed);
        if old == LinkState::Up as u8 && state != LinkState::Up {
            self.downs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many times the link left the up state.
    pub fn downs(&self) -> u64 {
        self.downs.load(Ordering::Relaxed)
    }

    /// Sets the interface administratively up or down.
    pub fn set_admin_up(&self, up: bool) {
        self.admin_down.store(!up, Ordering::Relaxed);
    }

    /// Whether the interface is administratively up.
    pub fn admin_up(&self) -> bool {
        !self.admin_down.load(Ordering::Relaxed)
    }

    /// What `show interface` says: `up`, `down`, `gone`, or `admin-down`.
    pub fn describe(&self) -> &'static str {
        if !self.admin_up() {
            return "admin-down";
        }
        match self.state() {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Gone => "gone",
        }
    }
}

/// `<interface>-input`: polls a driver and sends what it receives to
/// `ethernet-input` (or another next node).
pub struct InterfaceInput<D: Driver> {
    name: String,
    next: String,
    driver: D,
    index: IfIndex,
    counters: Arc<Vec<IfCounters>>,
    burst: usize,
    frame: Frame,
    /// The driver has said it is done.
    done: bool,
    status: Option<Arc<LinkStatus>>,
    capture: Option<Arc<PacketCapture>>,
}

impl<D: Driver> InterfaceInput<D> {
    /// Follows `status`: nothing is received while it is admin-down.
    pub fn with_status(mut self, status: Arc<LinkStatus>) -> Self {
        self.status = Some(status);
        self
    }

    /// Hands what it receives to `capture` when that wants it
    /// (`pcap trace rx`).
    pub fn with_capture(mut self, capture: Arc<PacketCapture>) -> Self {
        self.capture = Some(capture);
        self
    }

    fn admin_down(&self) -> bool {
        self.status.as_ref().is_some_and(|s| !s.admin_up())
    }

    /// An input node `<interface>-input` for interface `index`, receiving
    /// bursts of up to `burst` packets (capped at a vector).
    pub fn new(
        interface: &str,
        index: IfIndex,
        driver: D,
        counters: Arc<Vec<IfCounters>>,
        burst: usize,
        next: &str,
    ) -> Self {
        InterfaceInput {
            name: input_node_name(interface),
            next: next.to_string(),
            driver,
            index,
            counters,
            burst: burst.clamp(1, FRAME_SIZE),
            frame: Frame::new(),
            done: false,
            status: None,
            capture: None,
        }
    }
}

impl<D: Driver> Node for InterfaceInput<D> {
    fn spec(&self) -> NodeSpec {
        NodeSpec::input(self.name.clone(), &[self.next.as_str()], &[])
    }

    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        if self.done {
            return InputState::Done;
        }
        if self.admin_down() {
            return InputState::Idle;
        }
        let state = self
            .driver
            .rx_burst(cx.buffers, &mut self.frame, self.burst);
        let drops = self.driver.take_rx_drops();
        if drops > 0
            && let Some(c) = self.counters.get(self.index as usize)
        {
            c.rx_drops.add(drops);
        }
        if self.frame.is_empty() {
            return match state {
                InputState::Busy(_) => InputState::Idle,
                s => s,
            };
        }
        let mut bytes = 0u64;
        for pkt in self.frame.iter_mut() {
            bytes += pkt.total_len() as u64;
            pkt.meta_mut().rx_if = self.index;
        }
        let n = self.frame.len();
        if let Some(c) = self.counters.get(self.index as usize) {
            c.rx_packets.add(n as u64);
            c.rx_bytes.add(bytes);
        }
        if let Some(cap) = &self.capture
            && cap.wants(Direction::Rx, self.index)
        {
            cap.take(&self.frame);
        }
        out.send_all(0, &mut self.frame);
        // A driver that ends with packets in hand says so on the next
        // poll, so that these are counted as received.
        self.done = state == InputState::Done;
        InputState::Busy(n)
    }

    fn stop(&mut self, cx: &mut Cx<'_>) {
        cx.buffers.free_all(&mut self.frame);
    }

    fn wait_fd(&self) -> Option<RawFd> {
        if self.done || self.admin_down() {
            None
        } else {
            self.driver.wait_fd()
        }
    }
}

const TX_ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("tx-error", "packets the interface could not transmit"),
    ErrorSpec::info(
        "admin-down",
        "dropped: the interface is administratively down",
    ),
];

/// `<interface>-output`: hands a vector to a driver's transmit.
pub struct InterfaceOutput<D: Driver> {
    name: String,
    driver: D,
    index: IfIndex,
    counters: Arc<Vec<IfCounters>>,
    status: Option<Arc<LinkStatus>>,
    capture: Option<Arc<PacketCapture>>,
}

impl<D: Driver> InterfaceOutput<D> {
    /// An output node `<interface>-output` for interface `index`.
    pub fn new(interface: &str, index: IfIndex, driver: D, counters: Arc<Vec<IfCounters>>) -> Self {
        InterfaceOutput {
            name: output_node_name(interface),
            driver,
            index,
            counters,
            status: None,
            capture: None,
        }
    }

    /// Follows `status`: packets for it are dropped, counted, while it is
    /// admin-down.
    pub fn with_status(mut self, status: Arc<LinkStatus>) -> Self {
        self.status = Some(status);
        self
    }

    /// Hands what it sends to `capture` when that wants it (`pcap trace
    /// tx`).
    pub fn with_capture(mut self, capture: Arc<PacketCapture>) -> Self {
        self.capture = Some(capture);
        self
    }
}

/// The name of an interface's input node.
pub fn input_node_name(interface: &str) -> String {
    format!("{interface}-input")
}

/// The name of an interface's output node.
pub fn output_node_name(interface: &str) -> String {
    format!("{interface}-output")
}

impl<D: Driver> Node for InterfaceOutput<D> {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(self.name.clone(), &[], TX_ERRORS)
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        if self.status.as_ref().is_some_and(|s| !s.admin_up()) {
            out.count(1, input.len() as u64);
            cx.buffers.free_all(input);
            return;
        }
        let n = input.len() as u64;
        let bytes: u64 = input.iter().map(|p| p.total_len() as u64).sum();
        if let Some(cap) = &self.capture
            && cap.wants(Direction::Tx, self.index)
        {
            cap.take(input);
        }
        let failed = self.driver.tx_burst(cx.buffers, input) as u64;
        // A driver that left packets behind has not freed them: the
        // dispatcher frees them as `unhandled`, so nothing leaks.
        if failed > 0 {
            out.count(0, failed);
        }
        if let Some(c) = self.counters.get(self.index as usize) {
            c.tx_packets.add(n - failed.min(n));
            c.tx_bytes.add(bytes);
            c.tx_errors.add(failed);
        }
    }

    fn stop(&mut self, _cx: &mut Cx<'_>) {
        self.driver.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_status_counts_each_fall() {
        let s = LinkStatus::new();
        assert_eq!(s.state(), LinkState::Up);
        s.set(LinkState::Down);
        s.set(LinkState::Gone);
        assert_eq!((s.state(), s.downs()), (LinkState::Gone, 1));
        s.set(LinkState::Up);
        s.set(LinkState::Down);
        assert_eq!(s.downs(), 2);
    }
}
