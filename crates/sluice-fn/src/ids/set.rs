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

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};
use thiserror::Error;

use super::rule::{Ports, Proto, Rule};

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

impl Engine {
    fn kind(self) -> AhoCorasickKind {
        match self {
            Engine::Dfa => AhoCorasickKind::DFA,
            Engine::ContiguousNfa => AhoCorasickKind::ContiguousNFA,
            Engine::NoncontiguousNfa => AhoCorasickKind::NoncontiguousNFA,
        }
    }
}

/// Why a rule set cannot be built.
#[derive(Debug, Error)]
pub enum SetError {
    /// Two rules with one sid.
    #[error("sid {0} used twice")]
    DuplicateSid(u32),
    /// A rule without content (the parser never makes one).
    #[error("rule sid {0} has no content")]
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

/// Index of a protocol's any-port group: tcp, udp, icmp, other.
fn proto_slot(proto: u8) -> usize {
    match proto {
        TCP => 0,
        UDP => 1,
        ICMP => 2,
        _ => 3,
    }
}

/// Where a port group's key says the port is.
const DST: u32 = 1 << 16;

fn port_key(slot: usize, dst: bool, port: u16) -> u32 {
    ((slot as u32) << 17) | if dst { DST } else { 0 } | u32::from(port)
}

struct Group {
    name: String,
    ac: AhoCorasick,
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

/// Per-worker scratch of [`RuleSet::scan`]: which rules already fired
/// for the packet at hand, without clearing an array per packet.
#[derive(Debug, Default)]
pub struct Scratch {
    stamp: u32,
    seen: Vec<u32>,
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
            if r.contents.is_empty() {
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
        self.groups.iter().map(|g| g.ac.memory_usage()).sum()
    }

    /// A scratch sized for this set.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            stamp: 0,
            seen: vec![0; self.rules.len()],
        }
    }

    fn port_group(&self, slot: usize, dst: bool, port: u16) -> Option<&Group> {
        let key = port_key(slot, dst, port);
        self.ports
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()
            .map(|i| &self.groups[self.ports[i].1 as usize])
    }

    /// Appends to `hits` the index of every rule that matches `payload`
    /// of a packet of `flow`, each once, in no particular order.
    pub fn scan(&self, flow: Flow, payload: &[u8], scratch: &mut Scratch, hits: &mut Vec<u32>) {
        if scratch.seen.len() != self.rules.len() {
            *scratch = self.scratch();
        }
        scratch.stamp = scratch.stamp.wrapping_add(1);
        if scratch.stamp == 0 {
            // Wrapped: old stamps could collide with new ones.
            scratch.seen.fill(0);
            scratch.stamp = 1;
        }
        let slot = proto_slot(flow.proto);
        let ported = slot < 2;
        // The destination port's group holds the any-port rules too.
        let main = match ported.then(|| self.port_group(slot, true, flow.dport)) {
            Some(Some(g)) => Some(g),
            _ => self.any[slot].map(|g| &self.groups[g as usize]),
        };
        if let Some(g) = main {
            self.run(g, flow, payload, scratch, hits);
        }
        if ported && let Some(g) = self.port_group(slot, false, flow.sport) {
            self.run(g, flow, payload, scratch, hits);
        }
    }

    #[inline]
    fn run(
        &self,
        g: &Group,
        flow: Flow,
        payload: &[u8],
        scratch: &mut Scratch,
        hits: &mut Vec<u32>,
    ) {
        let hay = &payload[..payload.len().min(g.max_end)];
        // Standard match semantics (set at build) make the overlapping
        // search infallible.
        for m in g.ac.find_overlapping_iter(Input::new(hay)) {
            for &(r, c) in &g.targets[m.pattern().as_usize()] {
                if scratch.seen[r as usize] == scratch.stamp {
                    continue;
                }
                let rule = &self.rules[r as usize];
                let content = &rule.contents[usize::from(c)];
                if !content.placed(m.start())
                    || !content.equals_at(hay, m.start())
                    || !rule.sport.contains(flow.sport)
                    || !rule.dport.contains(flow.dport)
                {
                    continue;
                }
                let others = rule
                    .contents
                    .iter()
                    .enumerate()
                    .all(|(j, o)| j == usize::from(c) || o.found_in(payload));
                if others {
                    scratch.seen[r as usize] = scratch.stamp;
                    hits.push(r);
                }
            }
        }
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
    let ac = AhoCorasickBuilder::new()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(nocase)
        .kind(Some(engine.kind()))
        .build(&patterns)
        .map_err(|source| SetError::Build {
            group: name.clone(),
            source,
        })?;
    Ok(Group {
        name,
        ac,
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
