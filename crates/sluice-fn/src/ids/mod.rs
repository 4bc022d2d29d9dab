//! Intrusion detection (vIDS): content rules matched over IPv4 payloads
//! with multi-pattern automata.
//!
//! - [`rule`]: a rule as the engine holds it (protocol, ports, contents
//!   with `nocase`, `offset`, `depth`);
//! - [`parse`](mod@parse): the rule file, a subset of Snort/Suricata syntax,
//!   anything else refused by name and line;
//! - [`set`]: the compiled set, rules grouped by (protocol, port), an
//!   Aho-Corasick automaton per group;
//! - [`payload`]: protocol, ports and payload of a packet;
//! - [`alert`]: alert lines, the log they go to, the counters;
//! - [`IdsNode`]: `ip4-ids`, detect or prevent, a vector at a time.
//!
//! # Integration (not wired yet)
//!
//! `sluice-control` has to: read an `[ids]` section (rule file path,
//! mode, log rate and burst), parse the file with [`parse_rules`] (its
//! [`RuleError`] names the line) and build one [`RuleSet`] shared by
//! every worker (`Arc`; it is immutable); build an [`IdsNode`] per worker
//! with a [`StderrLog`] (or the daemon's log) and place it after
//! `ip4-conntrack` (so fragments and invalid packets are gone) on the
//! ip4-unicast arc; publish [`IdsStats`] to `show` and the metrics. A new
//! rule file means new nodes (the per-rule counters follow the set's
//! order). IPv6 is not scanned yet.

pub mod alert;
mod node;
pub mod parse;
pub mod payload;
pub mod rule;
pub mod set;

pub use alert::{Alert, AlertLog, IdsStats, StderrLog};
pub use node::{IP4_NAME, IdsConfig, IdsNode, Mode};
pub use parse::{RuleError, RuleErrorKind, parse_rule, parse_rules};
pub use rule::{Content, Ports, Proto, Rule};
pub use set::{Engine, Flow, RuleSet, Scratch, SetError};
