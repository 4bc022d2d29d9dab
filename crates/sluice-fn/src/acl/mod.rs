//! Access control lists: ordered L2–L4 rules, first match wins, classified
//! a vector of packets at a time.
//!
//! - [`rule`]: what a rule matches (IPv4/IPv6 prefixes, protocol under a
//!   mask, port ranges, TCP flags, ICMP type/code, DSCP, MACs, VLAN) and
//!   what is refused;
//! - [`key`]: the fields pulled out of a packet before the lookup;
//! - [`Acl`]: a built list; [`SharedAcl`]: the list workers read, swapped
//!   whole by the control plane;
//! - [`LinearScan`]: the reference the classifier is checked against;
//! - [`AclNode`]: `ip4-acl` / `ip6-acl` on a feature arc.
//!
//! # The algorithm, and why
//!
//! Separated cutting trees (`tree.rs`): the rules are split into a few
//! groups, each on a chunk of one field where every rule of the group has
//! a single value (for ClassBench-like lists: the top 16 bits of the
//! source for the rules with a source of /16 or longer, then the same of
//! the destination for most of the rest, then /8s), so a group's root is
//! a table indexed by that chunk and no rule is copied. The few rules wide
//! everywhere form a last group, cut 8 bits at a time with copies
//! (bounded). Entries that still hold many rules are cut again. Leaves
//! are blocks of four rules field by field (`block.rs`). A vector is
//! classified a group at a time: every packet's root entry is prefetched,
//! then read and its leaf prefetched, then the leaves are scanned, and the
//! smallest rule number any group matched wins — the linear scan's
//! answer, which the bench checks on the whole trace and the property
//! tests on random lists.
//!
//! Measured with `SLUICE_ACL_SHAPES=all cargo bench -p sluice-fn --bench
//! acl_peer` (gen-classbench.py seed 1, one million packets, vectors of
//! 256; AMD EPYC with AVX-512, 2.6 GHz TSC, 2 vCPUs shared with other
//! builds: load average 3.2–5.0 throughout, so every figure is the median
//! of three runs and compared as a ratio inside its run). Cycles per
//! packet:
//!
//! | rules | this tree (ratio to scalar, to default) | rte_acl scalar | rte_acl default (AVX-512) | tuple space | one cutting tree | one leaf of blocks | linear scan |
//! |---|---|---|---|---|---|---|---|
//! | 100 | 74 (0.70×, 1.11×) | 106 | 58 | 183 | 244* | 87 | 52 |
//! | 1,000 | 150 (1.03×, 1.45×) | 147 | 103 | 439 | 340 | 345 | 400 |
//! | 10,000 | 203 (0.49×, 0.93×) | 447 | 191 | 410 | 3,370* | — | — |
//!
//! (* measured before leaves compared the source address first, which
//! also sped those leaves up: at 1k rules the one-tree figure fell from
//! 1,071 to 340.) The 1k runs were taken at load 5.0–5.3, the others at
//! 3.2–4.5, hence rte_acl's own figures differing between rows.
//!
//! On a quieter moment (load 3) the same 10k-rule run gave 99 cycles a
//! packet against rte_acl's 239 scalar and 108 default (0.41×, 0.92×),
//! within the 120; under the load above the absolute figures
//! swing ±40 %, the ratios much less. Build: 0.1 ms (100 rules), 0.5 ms
//! (1k), 6–10 ms (10k); memory 1.4 MiB at 10k (6 groups, 9,282 leaf
//! blocks), under 0.1 MiB at 1k.
//!
//! Why the others lost:
//!
//! - tuple space search (`tuple.rs`, VPP's hash mode: a hash table per
//!   (source length, destination length)): 33–49 tuples here, and a
//!   packet that matches late or not at all probes them all — 2–3× this
//!   tree at every size;
//! - one cutting tree without groups (HiCuts-like, the same code with
//!   `max_groups: 1`): the 8 % of rules with a /0 source are copied into
//!   every child, so cuts stop making progress within the copy budget
//!   and leaves stay long — 2–3× slower at 1k, far worse at 10k;
//! - a linear scan wins at 100 rules on this trace (52 cycles: most rules
//!   fail on their first field, a predictable branch) and loses from 1k
//!   on (400); a single leaf of blocks (every rule scanned four at a
//!   time) costs 87 at 100 rules. The tree is kept at every size (one
//!   code path), at the price of ~20 cycles against the linear scan at
//!   100 rules — a switch to it for short lists is an easy later win;
//! - RFC was not built: its phase tables are indexed by the cross product
//!   of equivalence classes, and the 10k list alone has 9,051 distinct
//!   source and 9,442 distinct destination prefixes — a source ×
//!   destination table of about 8.5·10⁷ entries (≥ 170 MB) before the
//!   ports, against 1.4 MiB here;
//! - bit vectors: 10k rules make 1,250-byte vectors, five to AND per
//!   packet (≈100 cache lines), before the per-field lookups — not tried.
//!
//! What it does not do yet: it is 1.1–1.5× rte_acl's AVX-512 path at 100
//! and 1k rules (where a leaf of blocks costs more than DPDK's SIMD walk of
//! a small trie); the block compare does not use AVX-512 (the crate
//! forbids `unsafe`, and the build targets baseline x86-64).
//!
//! # Integration
//!
//! `sluice-control` reads `[[acl]]` lists from the configuration (a
//! [`RuleError`] is reported at its rule's line), builds each into an
//! [`Acl`] off the data path and hands workers one [`SharedAcl`] per
//! interface and direction. The nodes `ip4-acl-in` / `ip6-acl-in` stand
//! on the `ipN-unicast` feature arcs and `ip4-acl-out` / `ip6-acl-out`
//! on `ipN-output` ([`crate::features`]); `acl-deny` shows in `show
//! errors`; a `PermitReflect` match sets [`REFLECT`] for the firewall
//! after it on the arc. Replacing a list is [`SharedAcl::swap`] of a
//! freshly built [`Acl`]; nothing is paused.
//!
mod block;
pub mod key;
mod linear;
mod list;
mod node;
pub mod rule;
mod shared;
mod tree;
mod tuple;

pub use key::{Addr, Key, KeyError, L2Key, ip4_key, ip6_key, l2_key};
pub use linear::LinearScan;
pub use list::{Acl, MAX_BATCH, Match, NO_MATCH};
pub use node::{AclNode, Family, IP4_NAME, IP6_NAME, REFLECT, REWRITTEN_L2};
pub use rule::{Action, Masked, PortRange, Rule, RuleError, prefix};
pub use shared::SharedAcl;
pub use tree::{TreeConfig, TreeStats};
pub use tuple::TupleSpace;
