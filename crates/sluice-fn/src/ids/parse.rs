//! The rule file: a subset of Snort/Suricata rule syntax, one rule a line.
//!
//! ```text
//! # comment
//! alert tcp any any -> any 80 (msg:"passwd fetch"; content:"GET /etc/passwd"; nocase; depth:64; sid:1001; rev:2;)
//! alert udp any any -> any [53,5353] (msg:"odd query"; content:"|00 01|evil|03|com"; offset:12; sid:1002;)
//! ```
//!
//! Accepted: the action `alert`; protocols `tcp`, `udp`, `icmp`, `ip`;
//! addresses `any` only (address matching is the ACL's job); ports `any`,
//! a number, or a list `[80,8080]` (`icmp` and `ip` take `any` only);
//! direction `->`; options `msg`, `content` (with `|hex|` runs and `\"`,
//! `\\`, `\;` escapes), and its modifiers `nocase`, `offset`, `depth`,
//! then `sid` (required, unique) and `rev`. Anything else — another
//! action, `<>`, a negation, a variable, a port range, `pcre`, `flow`,
//! `distance`, ... — is refused with its name and line: a rule that
//! silently matched more or less than it says would be worse than none.

use thiserror::Error;

use super::rule::{Content, Ports, Proto, Rule};

/// What is wrong with a rule line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleErrorKind {
    /// An action other than `alert`.
    #[error("action `{0}` is not supported (only `alert`)")]
    Action(String),
    /// An unknown protocol word.
    #[error("protocol `{0}` is not supported (tcp, udp, icmp, ip)")]
    Proto(String),
    /// An address other than `any`.
    #[error("address `{0}` is not supported (only `any`)")]
    Address(String),
    /// A port that is not `any`, a number or a list of numbers.
    #[error("port `{0}`: {1}")]
    Port(String, &'static str),
    /// Ports on a protocol without ports.
    #[error("protocol `{0}` has no ports: use `any`")]
    PortlessProto(&'static str),
    /// A direction other than `->`.
    #[error("direction `{0}` is not supported (only `->`)")]
    Direction(String),
    /// The line's shape is wrong.
    #[error("{0}")]
    Syntax(&'static str),
    /// An option the engine does not implement.
    #[error("option `{0}` is not supported")]
    Option(String),
    /// An option's value is malformed.
    #[error("option `{0}`: {1}")]
    Value(&'static str, String),
    /// A content modifier with no content before it.
    #[error("`{0}` must follow a `content`")]
    Orphan(&'static str),
    /// A required option is missing.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// The same option twice where only one makes sense.
    #[error("`{0}` given twice")]
    Twice(&'static str),
    /// A sid already used.
    #[error("sid {sid} already used on line {first}")]
    DuplicateSid {
        /// The sid.
        sid: u32,
        /// Where it was first used.
        first: usize,
    },
}

/// A rule line refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {kind}")]
pub struct RuleError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: RuleErrorKind,
}

/// Parses a rule file; the first bad line refuses the whole file.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleError> {
    let mut rules = Vec::new();
    let mut sids: std::collections::HashMap<u32, usize> = Default::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let s = raw.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let rule = parse_rule(s).map_err(|kind| RuleError { line, kind })?;
        if let Some(&first) = sids.get(&rule.sid) {
            return Err(RuleError {
                line,
                kind: RuleErrorKind::DuplicateSid {
                    sid: rule.sid,
                    first,
                },
            });
        }
        sids.insert(rule.sid, line);
        rules.push(rule);
    }
    Ok(rules)
}

/// Parses one rule (no comment, no blank).
pub fn parse_rule(s: &str) -> Result<Rule, RuleErrorKind> {
    use RuleErrorKind as E;
    let open = s.find('(').ok_or(E::Syntax("no `(` opening the options"))?;
    let body = s[open + 1..]
        .trim_end()
        .strip_suffix(')')
        .ok_or(E::Syntax("the options must end the line with `)`"))?;
    let head: Vec<&str> = s[..open].split_whitespace().collect();
    let [action, proto, src, sport, dir, dst, dport] = head[..] else {
        return Err(E::Syntax(
            "expected `alert PROTO SRC SPORT -> DST DPORT (OPTIONS)`",
        ));
    };
    if action != "alert" {
        return Err(E::Action(action.into()));
    }
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" => Proto::Icmp,
        "ip" => Proto::Ip,
        p => return Err(E::Proto(p.into())),
    };
    for a in [src, dst] {
        if a != "any" {
            return Err(E::Address(a.into()));
        }
    }
    if dir != "->" {
        return Err(E::Direction(dir.into()));
    }
    let sport = ports(sport)?;
    let dport = ports(dport)?;
    if matches!(proto, Proto::Icmp | Proto::Ip) && (sport != Ports::Any || dport != Ports::Any) {
        return Err(E::PortlessProto(proto.as_str()));
    }
    let mut rule = Rule {
        sid: 0,
        rev: 0,
        msg: String::new(),
        proto,
        sport,
        dport,
        contents: Vec::new(),
    };
    let (mut have_msg, mut have_sid, mut have_rev) = (false, false, false);
    for opt in options(body)? {
        let (name, value) = opt;
        match name {
            "msg" => {
                once(&mut have_msg, "msg")?;
                rule.msg = quoted(value, "msg")?;
            }
            "content" => {
                let v = value.ok_or(E::Value("content", "needs a value".into()))?;
                if v.trim_start().starts_with('!') {
                    return Err(E::Option("content:!".into()));
                }
                rule.contents
                    .push(Content::new(content_bytes(&quoted(Some(v), "content")?)?));
            }
            "nocase" => {
                if value.is_some() {
                    return Err(E::Value("nocase", "takes no value".into()));
                }
                last(&mut rule, "nocase")?.nocase = true;
            }
            "offset" => {
                let n = number(value, "offset")?;
                let c = last(&mut rule, "offset")?;
                c.offset = u16::try_from(n)
                    .map_err(|_| E::Value("offset", format!("{n} is past any payload")))?;
            }
            "depth" => {
                let n = number(value, "depth")?;
                let c = last(&mut rule, "depth")?;
                let d = u16::try_from(n)
                    .map_err(|_| E::Value("depth", format!("{n} is past any payload")))?;
                if usize::from(d) < c.bytes.len() {
                    return Err(E::Value(
                        "depth",
                        format!("{d} is shorter than its content ({})", c.bytes.len()),
                    ));
                }
                c.depth = Some(d);
            }
            "sid" => {
                once(&mut have_sid, "sid")?;
                rule.sid = u32::try_from(number(value, "sid")?)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(E::Value("sid", "must be 1 to 4294967295".into()))?;
            }
            "rev" => {
                once(&mut have_rev, "rev")?;
                rule.rev = u32::try_from(number(value, "rev")?)
                    .map_err(|_| E::Value("rev", "too large".into()))?;
            }
            other => return Err(E::Option(other.into())),
        }
    }
    if rule.contents.is_empty() {
        return Err(E::Missing("content"));
    }
    if !have_sid {
        return Err(E::Missing("sid"));
    }
    if !have_msg {
        return Err(E::Missing("msg"));
    }
    Ok(rule)
}

fn once(seen: &mut bool, name: &'static str) -> Result<(), RuleErrorKind> {
    if std::mem::replace(seen, true) {
        return Err(RuleErrorKind::Twice(name));
    }
    Ok(())
}

fn last<'a>(rule: &'a mut Rule, name: &'static str) -> Result<&'a mut Content, RuleErrorKind> {
    rule.contents.last_mut().ok_or(RuleErrorKind::Orphan(name))
}

fn number(value: Option<&str>, name: &'static str) -> Result<u64, RuleErrorKind> {
    let v = value.ok_or(RuleErrorKind::Value(name, "needs a number".into()))?;
    v.trim()
        .parse()
        .map_err(|_| RuleErrorKind::Value(name, format!("`{}` is not a number", v.trim())))
}

fn ports(s: &str) -> Result<Ports, RuleErrorKind> {
    use RuleErrorKind as E;
    if s == "any" {
        return Ok(Ports::Any);
    }
    let why = if s.starts_with('$') {
        Some("variables are not supported")
    } else if s.contains('!') {
        Some("negation is not supported")
    } else if s.contains(':') {
        Some("ranges are not supported")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(E::Port(s.into(), why));
    }
    let inner = match s.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or(E::Port(s.into(), "unclosed list"))?,
        None => s,
    };
    let mut list = Vec::new();
    for p in inner.split(',') {
        list.push(
            p.trim()
                .parse::<u16>()
                .map_err(|_| E::Port(s.into(), "not a port number"))?,
        );
    }
    list.sort_unstable();
    list.dedup();
    Ok(Ports::List(list))
}

/// Splits `name[:value]; ...`, honouring quotes and backslash escapes.
fn options(body: &str) -> Result<Vec<(&str, Option<&str>)>, RuleErrorKind> {
    let mut out = Vec::new();
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // One option runs to the first `;` outside quotes.
        let start = i;
        let (mut in_q, mut esc) = (false, false);
        while i < b.len() {
            let c = b[i];
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_q = !in_q;
            } else if c == b';' && !in_q {
                break;
            }
            i += 1;
        }
        if in_q {
            return Err(RuleErrorKind::Syntax("unclosed quote"));
        }
        let opt = body[start..i].trim();
        i += 1;
        if opt.is_empty() {
            continue;
        }
        out.push(match opt.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (opt, None),
        });
    }
    Ok(out)
}

/// The text between the quotes of `value`, escapes resolved.
fn quoted(value: Option<&str>, name: &'static str) -> Result<String, RuleErrorKind> {
    let v = value.ok_or(RuleErrorKind::Value(name, "needs a quoted value".into()))?;
    let inner = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| v.len() >= 2)
        .ok_or(RuleErrorKind::Value(
            name,
            "must be in double quotes".into(),
        ))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('"' | '\\' | ';' | ':')) => out.push(e),
                _ => {
                    return Err(RuleErrorKind::Value(
                        name,
                        "`\\` escapes only `\"`, `\\`, `;` and `:`".into(),
                    ));
                }
            }
        } else if c == '"' {
            return Err(RuleErrorKind::Value(name, "unescaped `\"` inside".into()));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A content string's bytes: text as is, `|41 42|` runs as hex.
fn content_bytes(s: &str) -> Result<Vec<u8>, RuleErrorKind> {
    let bad = |why: &str| RuleErrorKind::Value("content", why.into());
    let mut out = Vec::with_capacity(s.len());
    let mut parts = s.split('|');
    let mut hex = false;
    let mut pieces = 0usize;
    for part in parts.by_ref() {
        pieces += 1;
        if hex {
            let digits: Vec<u8> = part.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
            if !digits.len().is_multiple_of(2) {
                return Err(bad("odd number of hex digits between `|`"));
            }
            for pair in digits.chunks(2) {
                let hi = (pair[0] as char).to_digit(16);
                let lo = (pair[1] as char).to_digit(16);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(bad("non-hex digit between `|`")),
                }
            }
        } else {
            out.extend_from_slice(part.as_bytes());
        }
        hex = !hex;
    }
    if pieces.is_multiple_of(2) {
        return Err(bad("unclosed `|`"));
    }
    if out.is_empty() {
        return Err(bad("empty pattern"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_runs_and_text_mix() {
        assert_eq!(
            content_bytes("a|00 FF|b||c").unwrap(),
            vec![b'a', 0, 0xff, b'b', b'c']
        );
        assert!(content_bytes("a|0").is_err());
        assert!(content_bytes("a|0g|").is_err());
        assert!(content_bytes("|0|").is_err());
        assert!(content_bytes("||").is_err());
    }

    #[test]
    fn quoted_semicolons_do_not_split_options() {
        let r = parse_rule(r#"alert tcp any any -> any any (msg:"a;b"; content:"x\;y"; sid:5;)"#)
            .unwrap();
        assert_eq!(r.msg, "a;b");
        assert_eq!(r.contents[0].bytes, b"x;y");
    }
}
