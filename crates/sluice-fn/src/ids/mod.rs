//! Intrusion detection (vIDS): content rules matched over IPv4 and IPv6
//! payloads
//! with multi-pattern automata.
//!
//! - [`rule`]: a rule as the engine holds it (protocol, ports, contents
//!   with `nocase`, `offset`, `depth`);
//! - [`parse`](mod@parse): the rule file, a subset of Snort/Suricata syntax,
//!   anything else refused by name and line;
//! - [`set`]: the compiled set, rules grouped by (protocol, port), an
//!   Aho-Corasick automaton per group;
//! - `walk`: an automaton walked over four payloads in step;
//! - [`payload`]: protocol, ports and payload of a packet;
//! - [`alert`]: alert lines, the log they go to, the counters;
//! - [`IdsNode`]: `ip4-ids` and `ip6-ids`, detect or prevent, a vector
//!   at a time.
//!
//! # The automaton, and why
//!
//! Aho-Corasick DFAs from the `aho-corasick` crate, one per port group,
//! reporting every overlapping match (see [`set`]), walked by our own
//! loop over four payloads of the vector at once. A DFA costs one table
//! load a byte, but each load waits on the one before: one payload at a
//! time the walk is bound by load latency (about 4–5 cycles a byte even
//! with a DFA that fits in L1); four independent walks in step overlap
//! their latencies. Measured with `cargo bench -p sluice-fn --bench ids`
//! (1,000 generated rules: words, web-attack URL and header fragments,
//! random binary strings, mostly on TCP port 80, a tenth on any port;
//! IMIX traffic of HTTP text, TLS-like random bytes, DNS-like queries,
//! 305 payload bytes a packet on average, 2% carrying a rule's pattern;
//! AMD EPYC, 2.6 GHz TSC, 2 vCPUs shared with other builds, load average
//! 1.9–2.6; median of three runs of the per-vector median), cycles in
//! `ip4-ids`:
//!
//! | automata | memory | build | cycles/packet | cycles/payload byte |
//! |---|---|---|---|---|
//! | DFA, grouped by port (the default) | 15.5 MiB | 22 ms | 491 | 1.59 |
//! | contiguous NFA, grouped | 1.4 MiB | 5 ms | 4,777 | 15.4 |
//! | noncontiguous NFA, grouped | 2.6 MiB | 4 ms | 4,210 | 13.6 |
//! | DFA, every rule on any port (one group) | 7.9 MiB | 11 ms | 589 | 1.94 |
//!
//! The same rule set scanned one payload at a time costs 4.68 cycles a
//! byte, 1.59 a vector at a time (rows `scan` and `scan_vector`). Eight
//! lanes instead of four were slower (573 cycles a packet: registers
//! spill, and IMIX's many short payloads keep the lanes refilling).
//! Before the any-port rules were folded into each destination-port
//! group a port-80 packet ran two automata: 2,372 cycles a packet then
//! (one payload at a time, load 6), against 1,535 after. The NFAs follow
//! failure links byte by byte and gain little from the lanes; the DFA's
//! memory is the price of its speed, and the contiguous NFA the choice
//! where 16 MiB a rule set is too much ([`Engine`]).
//!
//! The crate's own searches over the same payloads, one automaton,
//! cycles a byte: at 1,000 patterns the DFA's overlapping iterator 5.2,
//! leftmost-first 5.0, the contiguous NFA 12.3, and the packed (Teddy)
//! searcher declines to build (it serves small sets); at 64 patterns
//! Teddy 1.03 and the leftmost-first DFA (with its prefilter) 1.13
//! against 3.9 for the overlapping DFA. Teddy and leftmost-first report
//! no overlapping matches, so they could hide the occurrence a rule's
//! offset/depth accepts behind one it refuses: a speed reference, not an
//! option. (As a screen in front of the overlapping walk they would be
//! sound — leftmost-first finds a match whenever any pattern occurs —
//! but at the hundreds of patterns a port group holds they are no
//! faster than the walk itself.)
//!
//! # Integration
//!
//! `sluice-control` wires it (`config::ids`, `features`): an `[ids]`
//! section names the rule file, mode, log rate and burst; the file is
//! parsed with [`parse_rules`] (its [`RuleError`] names the line) and
//! compiled into one [`RuleSet`] shared by every worker (`Arc`; it is
//! immutable) when the configuration is read; each worker gets an
//! [`IdsNode`] per family with a [`StderrLog`], placed after
//! `ipN-conntrack` (so fragments and invalid packets are gone) on the
//! ipN-unicast arc ([`IdsNode::on_arc`]); `show ids` reads the
//! [`IdsStats`]. A new rule file means new nodes (the per-rule counters
//! follow the set's order): a restart. Not yet: the metrics.

pub mod alert;
mod node;
pub mod parse;
pub mod payload;
pub mod rule;
pub mod set;
mod walk;

pub use alert::{Alert, AlertLog, IdsStats, StderrLog};
pub use node::{IP4_NAME, IP6_NAME, IdsConfig, IdsNode, Mode};
pub use parse::{RuleError, RuleErrorKind, parse_rule, parse_rules};
pub use rule::{Content, Ports, Proto, Rule};
pub use set::{Engine, Flow, RuleSet, Scratch, SetError};
