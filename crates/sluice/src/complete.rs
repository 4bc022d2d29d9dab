//! The commands `sluice ctl` knows, as word patterns: the help text and the
//! interactive prompt's Tab completion are both read from here, so they
//! cannot drift apart from each other.
//!
//! A pattern word is a literal (`show`), alternatives (`up|down`), or a
//! placeholder in capitals (`NAME`, `PREFIX`); `[...]` marks an optional
//! group of words. Completion offers the literals that fit the words typed so far,
//! and for `NAME` / `NODE` the live interface and node names.

/// Every command, as the operator types it.
pub const COMMANDS: &[&str] = &[
    "show interface",
    "show runtime",
    "show threads",
    "show errors",
    "show ip fib [table N]",
    "show ip neighbors",
    "show l2fib",
    "show bridge-domain",
    "show graph",
    "show buffers",
    "show running-config",
    "show acl",
    "show conntrack",
    "show ids",
    "show features",
    "show version",
    "show trace",
    "trace add NODE N",
    "pcap trace rx|tx [tx] max N [intfc NAME] file FILE",
    "pcap trace off",
    "show pcap",
    "clear trace",
    "clear runtime",
    "clear interfaces",
    "ip route add PREFIX [via ADDR] [via-mac MAC] dev NAME [table N]",
    "ip route add PREFIX drop|prohibit|unreachable [table N]",
    "ip route del PREFIX [table N]",
    "ip neighbor add NAME IP MAC",
    "ip neighbor del NAME IP",
    "set interface state NAME up|down",
    "set interface ip address NAME ADDR/LEN [del]",
    "diff FILE",
    "apply FILE",
];

/// The one-line summary of every command, for the error an unknown one
/// gets.
pub fn help() -> String {
    COMMANDS.join(" | ")
}

/// What a pattern word stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot<'a> {
    /// One of these words.
    Words(&'a str),
    /// An interface name.
    Interface,
    /// A graph node name.
    Node,
    /// Anything (an address, a number, a file).
    Value,
}

fn slot(word: &str) -> Slot<'_> {
    match word {
        "NAME" => Slot::Interface,
        "NODE" => Slot::Node,
        w if w.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => Slot::Value,
        w => Slot::Words(w),
    }
}

/// Every word sequence a pattern allows: each `[...]` group present or
/// absent, in order.
fn variants(pattern: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![Vec::new()];
    let mut group: Option<Vec<&str>> = None;
    for w in pattern.split_whitespace() {
        match (group.as_mut(), w.strip_prefix('[')) {
            (None, Some(first)) => {
                let first = first.trim_end_matches(']');
                if w.ends_with(']') {
                    out = with_optional(out, &[first]);
                } else {
                    group = Some(vec![first]);
                }
            }
            (Some(g), _) if w.ends_with(']') => {
                g.push(w.trim_end_matches(']'));
                let g = group.take().unwrap_or_default();
                out = with_optional(out, &g);
            }
            (Some(g), _) => g.push(w),
            (None, None) => out.iter_mut().for_each(|v| v.push(w)),
        }
    }
    out
}

/// Each sequence of `seqs` without and with `group` after it.
fn with_optional<'a>(seqs: Vec<Vec<&'a str>>, group: &[&'a str]) -> Vec<Vec<&'a str>> {
    seqs.into_iter()
        .flat_map(|v| {
            let mut longer = v.clone();
            longer.extend_from_slice(group);
            [v, longer]
        })
        .collect()
}

/// Whether `typed` fits `slot` (a placeholder takes anything).
fn fits(slot: Slot<'_>, typed: &str) -> bool {
    match slot {
        Slot::Words(alts) => alts.split('|').any(|a| a == typed),
        _ => true,
    }
}

/// The live names completion offers for placeholders.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// Interface names.
    pub interfaces: Vec<String>,
    /// Node names (for `trace add`, input nodes are what make sense).
    pub nodes: Vec<String>,
}

/// The candidates for the word being typed at the end of `line`: the
/// complete words before it must fit a pattern; the last (possibly empty)
/// word is the prefix to complete. Sorted, without repeats.
pub fn complete(line: &str, names: &Names) -> Vec<String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let partial = if line.is_empty() || line.ends_with(char::is_whitespace) {
        ""
    } else {
        words.pop().unwrap_or("")
    };
    let mut out: Vec<String> = Vec::new();
    for p in COMMANDS.iter().flat_map(|c| variants(c)) {
        if p.len() <= words.len() {
            continue;
        }
        if !words.iter().zip(&p).all(|(w, s)| fits(slot(s), w)) {
            continue;
        }
        let candidates: Vec<&str> = match slot(p[words.len()]) {
            Slot::Words(alts) => alts.split('|').collect(),
            Slot::Interface => names.interfaces.iter().map(String::as_str).collect(),
            Slot::Node => names.nodes.iter().map(String::as_str).collect(),
            Slot::Value => Vec::new(),
        };
        out.extend(
            candidates
                .into_iter()
                .filter(|c| c.starts_with(partial))
                .map(String::from),
        );
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            interfaces: vec!["pg0".into(), "sink0".into(), "sink1".into()],
            nodes: vec!["pg0-input".into()],
        }
    }

    #[test]
    fn first_words_and_their_continuations() {
        let n = names();
        assert_eq!(
            complete("", &n),
            [
                "apply", "clear", "diff", "ip", "pcap", "set", "show", "trace"
            ]
        );
        assert_eq!(complete("sh", &n), ["show"]);
        assert_eq!(complete("show i", &n), ["ids", "interface", "ip"]);
        assert_eq!(complete("show ip ", &n), ["fib", "neighbors"]);
        assert_eq!(complete("show ip fib ", &n), ["table"]);
        assert_eq!(complete("clear ", &n), ["interfaces", "runtime", "trace"]);
        assert_eq!(complete("pcap trace ", &n), ["off", "rx", "tx"]);
        assert_eq!(
            complete("pcap trace rx max 10 intfc ", &n),
            ["pg0", "sink0", "sink1"]
        );
    }

    #[test]
    fn placeholders_complete_from_the_running_names() {
        let n = names();
        assert_eq!(
            complete("set interface state ", &n),
            ["pg0", "sink0", "sink1"]
        );
        assert_eq!(complete("set interface state si", &n), ["sink0", "sink1"]);
        assert_eq!(complete("set interface state sink0 ", &n), ["down", "up"]);
        assert_eq!(complete("trace add ", &n), ["pg0-input"]);
        assert_eq!(
            complete("ip route add 10.0.0.0/8 ", &n),
            ["dev", "drop", "prohibit", "unreachable", "via", "via-mac"]
        );
        assert_eq!(
            complete("ip route add 10.0.0.0/8 via 10.0.0.1 ", &n),
            ["dev", "via-mac"]
        );
        assert_eq!(
            complete("ip route add 10.0.0.0/8 via 10.0.0.1 dev s", &n),
            ["sink0", "sink1"]
        );
    }

    #[test]
    fn optional_groups_make_every_combination() {
        assert_eq!(
            variants("ip route del PREFIX [table N]"),
            [
                vec!["ip", "route", "del", "PREFIX"],
                vec!["ip", "route", "del", "PREFIX", "table", "N"]
            ]
        );
        assert_eq!(variants("a [b] c [d e]").len(), 4);
        assert_eq!(variants("a [b] c [d e]")[3], ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn nothing_for_what_does_not_fit_or_free_values() {
        let n = names();
        assert!(complete("shw ", &n).is_empty());
        assert!(
            complete("ip route del ", &n).is_empty(),
            "a prefix is typed"
        );
        assert!(complete("show version ", &n).is_empty());
    }

    #[test]
    fn every_command_in_the_help_parses_with_sample_values() {
        // Fill each pattern's placeholders with values of the right shape
        // and keep only what is needed: the parser must accept every one
        // (so help and completion never offer what `ctl` refuses).
        let dir = std::env::temp_dir().join(format!("sluice-complete-{}", std::process::id()));
        std::fs::write(&dir, "").unwrap();
        let file = dir.display().to_string();
        for (pattern, words) in COMMANDS
            .iter()
            .flat_map(|c| variants(c).into_iter().map(move |v| (c, v)))
        {
            let required: Vec<String> = words
                .into_iter()
                .map(|w| match w {
                    "NAME" => "pg0".to_string(),
                    "NODE" => "pg0-input".to_string(),
                    "N" => "3".to_string(),
                    "PREFIX" => "10.0.0.0/8".to_string(),
                    "ADDR" | "IP" => "10.0.0.1".to_string(),
                    "ADDR/LEN" => "10.0.0.1/24".to_string(),
                    "MAC" => "02:00:00:00:00:01".to_string(),
                    "FILE" => file.clone(),
                    alts => alts.split('|').next().unwrap_or(alts).to_string(),
                })
                .collect();
            crate::ctl::parse(&required)
                .unwrap_or_else(|e| panic!("`{}` (from `{pattern}`): {e}", required.join(" ")));
        }
        let _ = std::fs::remove_file(&dir);
    }
}
