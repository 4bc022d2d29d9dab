//! L2 switching: bridge domains with MAC learning and aging, static MACs,
//! flooding with split horizon, 802.1Q tag rewrite per port, cross-connects
//! and the bridge virtual interface (BVI).
//!
//! ```text
//! <port>-input → l2-input ─┬→ <port>-output                 (known unicast)
//!                          ├→ l2-output → <port>-output     (port rewrites tags)
//!                          ├→ l2-flood → (copies) as above  (unknown, broadcast, multicast)
//!                          └→ ethernet-input                (to the BVI, meta.rx_if = BVI)
//! ip4-rewrite → l2-bvi-output → (as l2-input, ingress port = BVI)
//! l2-age (input node: the aging scan, no packets)
//! ```
//!
//! One [`L2State`] (configuration and the bridges' MAC tables) is shared by
//! every worker; each worker's graph gets its own nodes from [`nodes`].
//! Lookups in a MAC table are plain loads; learning uses compare-and-swap
//! (see [`table`]).
//!
//! Interfaces reach `l2-input` with `meta.rx_if` set and the frame starting
//! at its Ethernet header: an interface in L2 mode has its input node send
//! to `l2-input` rather than `ethernet-input`. A BVI is an interface of the
//! interface table (for its MAC) whose output node is `l2-bvi-output`.

mod age;
mod config;
mod flood;
mod input;
mod output;
mod state;
pub mod table;
mod vtr;

use std::sync::Arc;

use sluice_graph::Node;

pub use age::L2Age;
pub use config::{
    BridgeDomain, BridgePort, L2Config, L2ConfigError, MAX_AGING, StaticMac, XConnect,
};
pub use flood::L2Flood;
pub use input::{L2BviOutput, L2Input};
pub use output::L2Output;
pub use state::{L2State, MacEntry, TICKS_PER_SECOND};
pub use table::MacTable;
pub use vtr::VlanRewrite;

/// `l2-input`.
pub const INPUT: &str = input::NAME;
/// `l2-flood`.
pub const FLOOD: &str = flood::NAME;
/// `l2-output`.
pub const OUTPUT: &str = output::NAME;
/// `l2-bvi-output`.
pub const BVI_OUTPUT: &str = input::BVI_OUTPUT;
/// `l2-age`.
pub const AGE: &str = age::NAME;

/// The names of the L2 nodes.
pub const NODE_NAMES: &[&str] = &[INPUT, FLOOD, OUTPUT, BVI_OUTPUT, AGE];

/// Every L2 node for one worker's graph, on the shared `state`. When some
/// bridge has a BVI the graph must also have `ethernet-input`.
pub fn nodes(state: &Arc<L2State>) -> Vec<Box<dyn Node>> {
    vec![
        Box::new(L2Input::new(state)),
        Box::new(L2Flood::new(state)),
        Box::new(L2Output::new(state)),
        Box::new(L2BviOutput::new(state)),
        Box::new(L2Age::new(state)),
    ]
}
