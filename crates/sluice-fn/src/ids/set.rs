//! A compiled rule set: rules grouped by (protocol, port), one
//! multi-pattern automaton per group over the groups' fast patterns.
//!
//! A rule with destination ports lives in the group of each of them, one
//! with only source ports in those source-port groups, one with neither in
//! its protocol's any-port group; `ip` rules count as any-port rules of
//! every protocol. Each destination-port group also holds its protocol's
//! any-port rules, so that a TCP or UDP packet runs one automaton — its
//! destination port's group, or the any-port group when its port has
//! none — plus its source port's group in the rare case there is one (a
//! rule for server replies). A rule is thus in at most one automaton a
//! packet runs, and a packet pays one pass over its payload for the
//! rules of its port instead of one for every pattern (measured: a
//! second pass for the any-port rules cost half as much again, bench
//! `ids`).
//!
//! Each automaton holds one pattern per distinct fast pattern (a rule's
//! longest content) and reports every occurrence, overlaps included
//! (`MatchKind::Standard`): a leftmost-only search could hide the one
//! occurrence that lies inside a rule's offset/depth behind another. A
//! group with any `nocase` content is built case-insensitive and its
//! case-sensitive patterns checked byte for byte at the hit. A hit then
//! checks the content's offset/depth, the rule's ports, and its other
//! contents by a plain scan of their windows.
//!
//! A vector is scanned together ([`RuleSet::scan_vector`]): its packets
//! sorted by automaton, and each automaton walked over [`LANES`]
//! payloads at once by our own loop (the crate's automata through its
//! `Automaton` trait, without prefilters), so that the table loads of
//! different payloads overlap.

use aho_corasick::automaton::Automaton;
use aho_corasick::{MatchKind, dfa, nfa};
use thiserror::Error;

use super::rule::{Ports, Proto, Rule};
pub use super::walk::LANES;
use super::walk::walk;

/// The automaton kind each group is built as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// A full DFA: one table lookup a byte, the fastest scan and the most
    /// memory (bench `ids`); the default.
    #[default]
    Dfa,
    /// A contiguous NFA: far smaller, a little slower.
    ContiguousNfa,
    /// A noncontiguous NFA: smallest build, slowest scan.
    NoncontiguousNfa,
}

/// Why a rule set cannot be built.
#[derive(Debug, Error)]
pub enum SetError {
    /// Two rules with one sid.
    #[error("sid {0} used twice")]
    DuplicateSid(u32),
    /// A rule without content, or with an empty one (the parser never
    /// makes either).
    #[error("rule sid {0} has no content or an empty one")]
    NoContent(u32),
    /// Ports on a rule for ICMP or any IP protocol.
    #[error("rule sid {0}: icmp and ip rules take no ports")]
    PortlessProto(u32),
    /// The automaton library refused a group (too large).
    #[error("automaton for {group}: {source}")]
    Build {
        /// Which group.
        group: String,
        /// The library's reason.
        source: aho_corasick::BuildError,
    },
}

/// The header fields a packet is grouped and checked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// IP protocol number.
    pub proto: u8,
    /// Source port (0 without ports).
    pub sport: u16,
    /// Destination port (0 without ports).
    pub dport: u16,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMP6: u8 = 58;

/// Index of a protocol's any-port group: tcp, udp, icmp, other.
fn proto_slot(proto: u8) -> usize {
    match proto {
        TCP => 0,
        UDP => 1,
        ICMP | ICMP6 => 2,
        _ => 3,
    }
}

/// Where a port group's key says the port is.
const DST: u32 = 1 << 16;

fn port_key(slot: usize, dst: bool, port: u16) -> u32 {
    ((slot as u32) << 17) | if dst { DST } else { 0 } | u32::from(port)
}

/// A group's automaton, of the kind the set was built with.
enum Aut {
    Dfa(dfa::DFA),
    Contiguous(nfa::contiguous::NFA),
    Noncontiguous(nfa::noncontiguous::NFA),
}

impl Aut {
    fn memory_usage(&self) -> usize {
        match self {
            Aut::Dfa(a) => a.memory_usage(),
            Aut::Contiguous(a) => a.memory_usage(),
            Aut::Noncontiguous(a) => a.memory_usage(),
        }
    }
}

struct Group {
    name: String,
    aut: Aut,
    /// By pattern id: the (rule, content) pairs with that fast pattern.
    targets: Vec<Vec<(u32, u16)>>,
    /// No rule of the group can match past this payload offset.
    max_end: usize,
}

/// A set of rules ready to scan with; immutable, shared by the workers.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Sorted by key: port groups.
    ports: Vec<(u32, u32)>,
    /// By protocol slot: the any-port group.
    any: [Option<u32>; 4],
    groups: Vec<Group>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// Per-worker scratch of [`RuleSet::scan_vector`], kept to spare an
/// allocation per vector.
#[derive(Debug, Default)]
pub struct Scratch {
    /// (group, packet): which automaton each packet runs.
    jobs: Vec<(u32, u32)>,
    /// (packet, pattern, end) of every automaton match of one group.
    raw: Vec<(u32, u32, u32)>,
    /// [`RuleSet::scan`]'s hits before they lose the packet number.
    pairs: Vec<(u32, u32)>,
}

impl RuleSet {
    /// Builds `rules` with the default engine.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, SetError> {
        RuleSet::with_engine(rules, Engine::default())
    }

    /// Builds `rules` with automata of kind `engine`.
    pub fn with_engine(rules: Vec<Rule>, engine: Engine) -> Result<RuleSet, SetError> {
        let mut sids = std::collections::HashSet::new();
        // Members of each group before building: key → rule indexes.
        let mut by_port: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        let mut by_proto: [Vec<u32>; 4] = Default::default();
        for (i, r) in rules.iter().enumerate() {
            if !sids.insert(r.sid) {
                return Err(SetError::DuplicateSid(r.sid));
            }
            if r.contents.is_empty() || r.contents.iter().any(|c| c.bytes.is_empty()) {
                return Err(SetError::NoContent(r.sid));
            }
            if matches!(r.proto, Proto::Icmp | Proto::Ip)
                && (r.sport != Ports::Any || r.dport != Ports::Any)
            {
                return Err(SetError::PortlessProto(r.sid));
            }
            let i = i as u32;
            let slots: &[usize] = match r.proto {
                Proto::Tcp => &[0],
                Proto::Udp => &[1],
                Proto::Icmp => &[2],
                Proto::Ip => &[0, 1, 2, 3],
            };
            for &slot in slots {
                match (&r.dport, &r.sport) {
                    (Ports::List(l), _) => {
                        for &p in l {
                            by_port.entry(port_key(slot, true, p)).or_default().push(i);
                        }
                    }
                    (Ports::Any, Ports::List(l)) => {
                        for &p in l {
                            by_port.entry(port_key(slot, false, p)).or_default().push(i);
                        }
                    }
                    (Ports::Any, Ports::Any) => by_proto[slot].push(i),
                }
            }
        }
        let mut groups = Vec::new();
        let mut ports = Vec::new();
        for (key, mut members) in by_port {
            if key & DST != 0 {
                members.extend_from_slice(&by_proto[(key >> 17) as usize]);
            }
            let name = format!(
                "{} {} port {}",
                ["tcp", "udp", "icmp", "ip"][(key >> 17) as usize],
                if key & DST != 0 { "dst" } else { "src" },
                key & 0xffff
            );
            ports.push((key, groups.len() as u32));
            groups.push(build_group(name, &rules, &members, engine)?);
        }
        let mut any = [None; 4];
        for (slot, members) in by_proto.iter().enumerate() {
            if !members.is_empty() {
                let name = format!("{} any port", ["tcp", "udp", "icmp", "ip"][slot]);
                any[slot] = Some(groups.len() as u32);
                groups.push(build_group(name, &rules, members, engine)?);
            }
        }
        Ok(RuleSet {
            rules,
            ports,
            any,
            groups,
        })
    }

    /// The rules, in the order given (a hit is an index into this).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of automata.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Heap bytes the automata take.
    pub fn memory_usage(&self) -> usize {
        self.groups.iter().map(|g| g.aut.memory_usage()).sum()
    }

    /// A scratch for this set's scans.
    pub fn scratch(&self) -> Scratch {
        Scratch::default()
    }

    /// The automata a packet of `flow` runs: its destination port's
    /// group (which holds the any-port rules) or else its protocol's
    /// any-port group, and its source port's group if there is one.
    fn groups_of(&self, flow: Flow) -> [Option<u32>; 2] {
        let slot = proto_slot(flow.proto);
        let ported = slot < 2;
        let key = |dst, port| {
            let key = port_key(slot, dst, port);
            self.ports
                .binary_search_by_key(&key, |&(k, _)| k)
                .ok()
                .map(|i| self.ports[i].1)
        };
        let main = match ported.then(|| key(true, flow.dport)) {
            Some(Some(g)) => Some(g),
            _ => self.any[slot],
        };
        [main, if ported { key(false, flow.sport) } else { None }]
    }

    /// Scans a vector: packet `i` of `flows[i]` with payload `payload(i)`.
    /// `hits` is filled with every (packet, rule index) that matches, each
    /// once, sorted.
    ///
    /// Packets are sorted by automaton, and each automaton walks
    /// [`LANES`] payloads at once: a DFA's walk is a chain of dependent
    /// table loads, one a byte, so a single payload waits on each load's
    /// latency while interleaved ones overlap theirs (bench `ids`: 1.6
    /// cycles a byte against 4.7 one payload at a time).
    pub fn scan_vector<'a>(
        &self,
        flows: &[Flow],
        payload: impl Fn(usize) -> &'a [u8],
        scratch: &mut Scratch,
        hits: &mut Vec<(u32, u32)>,
    ) {
        hits.clear();
        scratch.jobs.clear();
        for (i, &f) in flows.iter().enumerate() {
            for g in self.groups_of(f).into_iter().flatten() {
                scratch.jobs.push((g, i as u32));
            }
        }
        scratch.jobs.sort_unstable();
        let mut at = 0;
        while at < scratch.jobs.len() {
            let g = scratch.jobs[at].0;
            let run = scratch.jobs[at..]
                .iter()
                .take_while(|&&(h, _)| h == g)
                .count();
            let group = &self.groups[g as usize];
            let pkts = scratch.jobs[at..at + run].iter().map(|&(_, p)| p);
            let hay = |p: u32| {
                let b = payload(p as usize);
                &b[..b.len().min(group.max_end)]
            };
            scratch.raw.clear();
            match &group.aut {
                Aut::Dfa(a) => walk(a, pkts, hay, &mut scratch.raw),
                Aut::Contiguous(a) => walk(a, pkts, hay, &mut scratch.raw),
                Aut::Noncontiguous(a) => walk(a, pkts, hay, &mut scratch.raw),
            }
            // Occurrences of one pattern in one packet side by side: a
            // rule's costly checks (ports, its other contents) then run
            // once a packet, however often a payload repeats the pattern.
            scratch.raw.sort_unstable();
            let raw = &scratch.raw;
            let mut x = 0;
            while x < raw.len() {
                let (p, pattern, _) = raw[x];
                let n = raw[x..]
                    .iter()
                    .take_while(|h| h.0 == p && h.1 == pattern)
                    .count();
                let pl = payload(p as usize);
                let flow = flows[p as usize];
                for &(r, c) in &group.targets[pattern as usize] {
                    let placed = raw[x..x + n]
                        .iter()
                        .any(|&(_, _, end)| self.placed_at(r, c, pl, end as usize));
                    if placed && self.rest_holds(r, c, flow, pl) {
                        hits.push((p, r));
                    }
                }
                x += n;
            }
            at += run;
        }
        hits.sort_unstable();
        hits.dedup();
    }

    /// Appends to `hits` the index of every rule that matches `payload`
    /// of a packet of `flow`, each once, sorted (a vector of one).
    pub fn scan(&self, flow: Flow, payload: &[u8], scratch: &mut Scratch, hits: &mut Vec<u32>) {
        let mut pairs = std::mem::take(&mut scratch.pairs);
        self.scan_vector(&[flow], |_| payload, scratch, &mut pairs);
        hits.extend(pairs.iter().map(|&(_, r)| r));
        scratch.pairs = pairs;
    }

    /// Whether the automaton's match of rule `r`'s content `c` ending at
    /// `end` of `payload` lies where the content allows, in its case.
    #[inline]
    fn placed_at(&self, r: u32, c: u16, payload: &[u8], end: usize) -> bool {
        let content = &self.rules[r as usize].contents[usize::from(c)];
        end.checked_sub(content.bytes.len())
            .is_some_and(|start| content.placed(start) && content.equals_at(payload, start))
    }

    /// Whether the rest of rule `r` (its ports, its contents other than
    /// `c`) holds for a packet of `flow` with `payload`.
    fn rest_holds(&self, r: u32, c: u16, flow: Flow, payload: &[u8]) -> bool {
        let rule = &self.rules[r as usize];
        rule.sport.contains(flow.sport)
            && rule.dport.contains(flow.dport)
            && rule
                .contents
                .iter()
                .enumerate()
                .all(|(j, o)| j == usize::from(c) || o.found_in(payload))
    }
}

fn build_group(
    name: String,
    rules: &[Rule],
    members: &[u32],
    engine: Engine,
) -> Result<Group, SetError> {
    let nocase = members.iter().any(|&r| {
        let rule = &rules[r as usize];
        rule.contents[rule.fast_pattern()].nocase
    });
    let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut targets: Vec<Vec<(u32, u16)>> = Vec::new();
    let mut max_end = 0usize;
    for &r in members {
        let rule = &rules[r as usize];
        let fp = rule.fast_pattern();
        let c = &rule.contents[fp];
        let key = if nocase {
            c.bytes.to_ascii_lowercase()
        } else {
            c.bytes.clone()
        };
        let id = *index.entry(key.clone()).or_insert_with(|| {
            patterns.push(key);
            targets.push(Vec::new());
            patterns.len() - 1
        });
        targets[id].push((r, fp as u16));
        // Every content of the rule must lie in the scanned part only for
        // the fast pattern; the others are checked on the whole payload.
        max_end = max_end.max(match c.depth {
            Some(d) => usize::from(c.offset) + usize::from(d),
            None => usize::MAX,
        });
    }
    let err = |source| SetError::Build {
        group: name.clone(),
        source,
    };
    // No prefilter: it would make start states special, and [`walk`]
    // treats every special state as a match.
    let aut = match engine {
        Engine::Dfa => Aut::Dfa(
            dfa::DFA::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(nocase)
                .prefilter(false)
                .build(&patterns)
                .map_err(err)?,
        ),
        Engine::ContiguousNfa => Aut::Contiguous(
            nfa::contiguous::NFA::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(nocase)
                .prefilter(false)
                .build(&patterns)
                .map_err(err)?,
        ),
        Engine::NoncontiguousNfa => Aut::Noncontiguous(
            nfa::noncontiguous::NFA::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(nocase)
                .prefilter(false)
                .build(&patterns)
                .map_err(err)?,
        ),
    };
    Ok(Group {
        name,
        aut,
        targets,
        max_end,
    })
}

impl RuleSet {
    /// The groups' names and pattern counts, for `show`.
    pub fn group_sizes(&self) -> Vec<(String, usize)> {
        self.groups
            .iter()
            .map(|g| (g.name.clone(), g.targets.len()))
            .collect()
    }
}
