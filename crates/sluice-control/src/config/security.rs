//! Access lists, connection tracking, and the features each interface
//! runs them as: the `[[acl]]` tables, `[conntrack]`, and an interface's
//! `acl-in`, `acl-out` and `firewall` keys.
//!
//! ```toml
//! [[acl]]
//! name = "web"
//! default = "deny"
//! rule = [
//!   { action = "permit", dst = "10.1.0.0/16", protocol = "tcp", dst-port = 80 },
//!   { action = "permit-reflect", src = "10.0.0.0/8", protocol = "udp", src-port = "1024-65535" },
//! ]
//!
//! [conntrack]
//! capacity = 65536          # sessions per worker and address family
//! [conntrack.timeouts]      # seconds
//! established = 3600
//!
//! [[interface]]
//! name = "inside"
//! acl-in = "web"            # ip4-acl-in / ip6-acl-in on its unicast arcs
//! firewall = "inside"       # ipN-conntrack on its unicast arcs; opens new flows
//! ```
//!
//! `firewall = "outside"` tracks the interface's traffic and lets in only
//! what belongs to a known connection, or what an ACL on the way
//! permitted with `permit-reflect`; `"inside"` lets new flows start.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_fn::acl::{Action, Masked, PortRange, Rule, prefix};
use sluice_fn::{Acl, CtConfig};
use toml::Spanned;

use super::{Checker, ConfigError, IntOrStr};

/// One named access list.
#[derive(Debug, Clone, PartialEq)]
pub struct AclConfig {
    /// Its name, which interfaces refer to.
    pub name: String,
    /// What a packet no rule matches gets.
    pub default: Action,
    /// The rules, first match wins.
    pub rules: Vec<Rule>,
}

impl AclConfig {
    /// The list built for the classifier (checked at parse: cannot fail
    /// for a parsed configuration).
    pub fn build(&self) -> Result<Acl, sluice_fn::RuleError> {
        Acl::new(self.rules.clone(), self.default)
    }
}

/// What the stateful firewall lets start on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firewall {
    /// New flows may start from here.
    Inside,
    /// Only flows already known, or reflected by an ACL, come in.
    Outside,
}

impl Firewall {
    /// The word in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Firewall::Inside => "inside",
            Firewall::Outside => "outside",
        }
    }
}

/// The features one interface runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfFeatures {
    /// The ACL on its receive (unicast) arcs.
    pub acl_in: Option<String>,
    /// The ACL on its transmit (output) arcs.
    pub acl_out: Option<String>,
    /// Connection tracking on its receive arcs, and its side.
    pub firewall: Option<Firewall>,
    /// Intrusion detection on its receive arcs.
    pub ids: bool,
}

impl IfFeatures {
    /// Whether it runs nothing.
    pub fn is_empty(&self) -> bool {
        *self == IfFeatures::default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAcl {
    name: Spanned<String>,
    default: Option<Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawAclRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAclRule {
    action: Spanned<String>,
    src: Option<Spanned<String>>,
    dst: Option<Spanned<String>>,
    protocol: Option<Spanned<IntOrStr>>,
    src_port: Option<Spanned<IntOrStr>>,
    dst_port: Option<Spanned<IntOrStr>>,
    icmp_type: Option<Spanned<i64>>,
    icmp_code: Option<Spanned<i64>>,
    dscp: Option<Spanned<i64>>,
    src_mac: Option<Spanned<String>>,
    dst_mac: Option<Spanned<String>>,
    vlan: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawConntrack {
    capacity: Option<Spanned<i64>>,
    tick_ms: Option<Spanned<i64>>,
    #[serde(default)]
    timeouts: RawTimeouts,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTimeouts {
    syn_sent: Option<Spanned<i64>>,
    syn_recv: Option<Spanned<i64>>,
    established: Option<Spanned<i64>>,
    fin_wait: Option<Spanned<i64>>,
    close_wait: Option<Spanned<i64>>,
    last_ack: Option<Spanned<i64>>,
    time_wait: Option<Spanned<i64>>,
    close: Option<Spanned<i64>>,
    datagram: Option<Spanned<i64>>,
    datagram_replied: Option<Spanned<i64>>,
    echo: Option<Spanned<i64>>,
}

/// The timeouts by their configuration names, for reading and writing.
fn timeouts_mut(t: &mut sluice_fn::conntrack::Timeouts) -> [(&'static str, &mut Duration); 11] {
    [
        ("syn-sent", &mut t.syn_sent),
        ("syn-recv", &mut t.syn_recv),
        ("established", &mut t.established),
        ("fin-wait", &mut t.fin_wait),
        ("close-wait", &mut t.close_wait),
        ("last-ack", &mut t.last_ack),
        ("time-wait", &mut t.time_wait),
        ("close", &mut t.close),
        ("datagram", &mut t.datagram),
        ("datagram-replied", &mut t.datagram_replied),
        ("echo", &mut t.echo),
    ]
}

impl RawTimeouts {
    fn by_name(&self) -> [Option<&Spanned<i64>>; 11] {
        [
            self.syn_sent.as_ref(),
            self.syn_recv.as_ref(),
            self.established.as_ref(),
            self.fin_wait.as_ref(),
            self.close_wait.as_ref(),
            self.last_ack.as_ref(),
            self.time_wait.as_ref(),
            self.close.as_ref(),
            self.datagram.as_ref(),
            self.datagram_replied.as_ref(),
            self.echo.as_ref(),
        ]
    }
}

/// `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, or a number.
fn protocol(v: &IntOrStr) -> Result<u8, String> {
    match v {
        IntOrStr::Int(n) => u8::try_from(*n).map_err(|_| format!("{n} is not a protocol (0-255)")),
        IntOrStr::Str(s) => match s.as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "icmpv6" => Ok(58),
            "sctp" => Ok(132),
            other => other.parse::<u8>().map_err(|_| {
                format!("`{other}`: use tcp, udp, icmp, icmpv6, sctp or a number (0-255)")
            }),
        },
    }
}

fn protocol_word(p: u8) -> IntOrText {
    match p {
        6 => IntOrText::Text("tcp".into()),
        17 => IntOrText::Text("udp".into()),
        1 => IntOrText::Text("icmp".into()),
        58 => IntOrText::Text("icmpv6".into()),
        132 => IntOrText::Text("sctp".into()),
        n => IntOrText::Int(u64::from(n)),
    }
}

/// `80` or `"1024-65535"`.
fn port_range(v: &IntOrStr) -> Result<PortRange, String> {
    let p = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("`{s}` is not a port (0-65535)"))
    };
    let (lo, hi) = match v {
        IntOrStr::Int(n) => {
            let n = u16::try_from(*n).map_err(|_| format!("{n} is not a port (0-65535)"))?;
            (n, n)
        }
        IntOrStr::Str(s) => match s.split_once('-') {
            Some((a, b)) => (p(a)?, p(b)?),
            None => (p(s)?, p(s)?),
        },
    };
    if lo > hi {
        return Err(format!("{lo}-{hi} is empty (low above high)"));
    }
    Ok(PortRange::new(lo, hi))
}

fn port_words(r: PortRange) -> Option<IntOrText> {
    match (r.is_any(), r.lo == r.hi) {
        (true, _) => None,
        (false, true) => Some(IntOrText::Int(u64::from(r.lo))),
        (false, false) => Some(IntOrText::Text(format!("{}-{}", r.lo, r.hi))),
    }
}

fn action(c: &Checker<'_>, v: &Spanned<String>, key: String) -> Result<Action, ConfigError> {
    match v.get_ref().as_str() {
        "permit" => Ok(Action::Permit),
        "deny" => Ok(Action::Deny),
        "permit-reflect" => Ok(Action::PermitReflect),
        other => c.err(
            v.span(),
            key,
            format!("`{other}`: use \"permit\", \"deny\" or \"permit-reflect\""),
        ),
    }
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Permit => "permit",
        Action::Deny => "deny",
        Action::PermitReflect => "permit-reflect",
    }
}

fn rule(
    c: &Checker<'_>,
    r: &RawAclRule,
    key: &dyn Fn(&str) -> String,
) -> Result<Rule, ConfigError> {
    let mut rule = Rule::any(action(c, &r.action, key("action"))?);
    let pfx = |v: &Spanned<String>, k: &str| {
        prefix(v.get_ref()).map_or_else(
            || {
                c.err(
                    v.span(),
                    key(k),
                    format!(
                        "`{}` is not a prefix like 10.0.0.0/8 or 2001:db8::/32",
                        v.get_ref()
                    ),
                )
            },
            Ok,
        )
    };
    if let Some(v) = &r.src {
        rule.src = Some(pfx(v, "src")?);
    }
    if let Some(v) = &r.dst {
        rule.dst = Some(pfx(v, "dst")?);
    }
    if let Some(v) = &r.protocol {
        rule.proto = Some(Masked::exactly(c.parsed(v, key("protocol"), protocol)?));
    }
    if let Some(v) = &r.src_port {
        rule.sport = c.parsed(v, key("src-port"), port_range)?;
    }
    if let Some(v) = &r.dst_port {
        rule.dport = c.parsed(v, key("dst-port"), port_range)?;
    }
    if let Some(v) = &r.icmp_type {
        rule.icmp_type = Some(c.int(v, &key("icmp-type"), 0, 255)?);
    }
    if let Some(v) = &r.icmp_code {
        rule.icmp_code = Some(c.int(v, &key("icmp-code"), 0, 255)?);
    }
    if let Some(v) = &r.dscp {
        rule.dscp = Some(c.int(v, &key("dscp"), 0, 63)?);
    }
    if let Some(v) = &r.src_mac {
        rule.src_mac = Some(c.mac(v, &key("src-mac"))?);
    }
    if let Some(v) = &r.dst_mac {
        rule.dst_mac = Some(c.mac(v, &key("dst-mac"))?);
    }
    if let Some(v) = &r.vlan {
        rule.vlan = Some(c.int(v, &key("vlan"), 0, 4095)?);
    }
    Ok(rule)
}

/// The `[[acl]]` tables, each list checked whole by building it.
pub(super) fn acls(c: &Checker<'_>, raw: &[RawAcl]) -> Result<Vec<AclConfig>, ConfigError> {
    let mut out: Vec<AclConfig> = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let key = |k: &str| format!("acl[{i}].{k}");
        let name = a.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return c.err(
                a.name.span(),
                key("name"),
                format!("`{name}`: use letters, digits and - _ ."),
            );
        }
        if out.iter().any(|o| o.name == name) {
            return c.err(
                a.name.span(),
                key("name"),
                format!("acl `{name}` is defined twice"),
            );
        }
        let default = match &a.default {
            Some(v) => action(c, v, key("default"))?,
            None => Action::Deny,
        };
        let mut rules = Vec::new();
        for (j, r) in a.rule.iter().enumerate() {
            let rkey = |k: &str| format!("acl[{i}].rule[{j}].{k}");
            rules.push(rule(c, r, &rkey)?);
        }
        let acl = AclConfig {
            name,
            default,
            rules,
        };
        if let Err(e) = acl.build() {
            // The error names the rule by position; point at its line.
            let j = match e {
                sluice_fn::RuleError::PrefixLength { index, .. }
                | sluice_fn::RuleError::HostBits { index, .. }
                | sluice_fn::RuleError::MixedFamilies { index }
                | sluice_fn::RuleError::EmptyRange { index, .. }
                | sluice_fn::RuleError::NeedsProtocol { index, .. }
                | sluice_fn::RuleError::IcmpWithPorts { index }
                | sluice_fn::RuleError::OutOfRange { index, .. } => index,
            };
            let span = a.rule.get(j).map_or(a.name.span(), |r| r.action.span());
            return c.err(span, format!("acl[{i}].rule[{j}]"), e.to_string());
        }
        out.push(acl);
    }
    Ok(out)
}

/// `[conntrack]`, checked by the table's own rules.
pub(super) fn conntrack(c: &Checker<'_>, raw: &RawConntrack) -> Result<CtConfig, ConfigError> {
    let mut ct = CtConfig::default();
    if let Some(v) = &raw.capacity {
        ct.capacity = c.int(v, "conntrack.capacity", 1, i64::from(u32::MAX))?;
    }
    if let Some(v) = &raw.tick_ms {
        ct.tick = Duration::from_millis(c.int(v, "conntrack.tick-ms", 1, 1000)?);
    }
    let given = raw.timeouts.by_name();
    for ((name, slot), v) in timeouts_mut(&mut ct.timeouts).into_iter().zip(given) {
        if let Some(v) = v {
            let secs: u64 = c.int(v, &format!("conntrack.timeouts.{name}"), 1, 30 * 86_400)?;
            *slot = Duration::from_secs(secs);
        }
    }
    if let Err(e) = ct.validate() {
        let (key, span) = match &e {
            sluice_fn::conntrack::CtConfigError::Timeout { name, .. } => {
                let k = timeouts_mut(&mut ct.timeouts.clone())
                    .iter()
                    .position(|(n, _)| n == name)
                    .unwrap_or(0);
                (
                    format!("conntrack.timeouts.{name}"),
                    given[k].map(|v| v.span()),
                )
            }
            sluice_fn::conntrack::CtConfigError::Tick(_) => (
                "conntrack.tick-ms".into(),
                raw.tick_ms.as_ref().map(|v| v.span()),
            ),
            _ => (
                "conntrack.capacity".into(),
                raw.capacity.as_ref().map(|v| v.span()),
            ),
        };
        return c.err(span.unwrap_or_default(), key, e.to_string());
    }
    Ok(ct)
}

/// An interface's `acl-in`, `acl-out` and `firewall`.
#[allow(clippy::too_many_arguments)]
pub(super) fn interface_features(
    c: &Checker<'_>,
    acl_in: Option<&Spanned<String>>,
    acl_out: Option<&Spanned<String>>,
    firewall: Option<&Spanned<String>>,
    acls: &[AclConfig],
    conntrack: bool,
    switched: bool,
    key: &dyn Fn(&str) -> String,
) -> Result<IfFeatures, ConfigError> {
    let mut f = IfFeatures::default();
    for (k, v, slot) in [
        ("acl-in", acl_in, &mut f.acl_in),
        ("acl-out", acl_out, &mut f.acl_out),
    ] {
        let Some(v) = v else { continue };
        if !acls.iter().any(|a| a.name == *v.get_ref()) {
            return c.err(
                v.span(),
                key(k),
                format!("no acl is called `{}`", v.get_ref()),
            );
        }
        *slot = Some(v.get_ref().clone());
    }
    if let Some(v) = firewall {
        f.firewall = Some(match v.get_ref().as_str() {
            "inside" => Firewall::Inside,
            "outside" => Firewall::Outside,
            other => {
                return c.err(
                    v.span(),
                    key("firewall"),
                    format!("`{other}`: use \"inside\" or \"outside\""),
                );
            }
        });
        if !conntrack {
            return c.err(
                v.span(),
                key("firewall"),
                "the firewall tracks connections: add a [conntrack] section (its capacity, at least)",
            );
        }
    }
    if switched {
        let given = [
            ("acl-in", acl_in),
            ("acl-out", acl_out),
            ("firewall", firewall),
        ];
        if let Some((k, Some(v))) = given.into_iter().find(|(_, v)| v.is_some()) {
            return c.err(
                v.span(),
                key(k),
                "this interface switches frames (a bridge port or cross-connect); features stand on the routed path: give them to its bvi",
            );
        }
    }
    Ok(f)
}

/// Either spelling of a number or word in the written configuration.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum IntOrText {
    Int(u64),
    Text(String),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct OutAcl {
    name: String,
    default: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rule: Vec<OutAclRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutAclRule {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<IntOrText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<IntOrText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_port: Option<IntOrText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dscp: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
}

pub(super) fn acl_out(a: &AclConfig) -> OutAcl {
    OutAcl {
        name: a.name.clone(),
        default: action_word(a.default),
        rule: a
            .rules
            .iter()
            .map(|r| OutAclRule {
                action: action_word(r.action),
                src: r.src.map(|p| p.to_string()),
                dst: r.dst.map(|p| p.to_string()),
                // Only whole protocols are read from a configuration.
                protocol: r.proto.map(|p| protocol_word(p.value)),
                src_port: port_words(r.sport),
                dst_port: port_words(r.dport),
                icmp_type: r.icmp_type,
                icmp_code: r.icmp_code,
                dscp: r.dscp,
                src_mac: r.src_mac.map(|m| m.to_string()),
                dst_mac: r.dst_mac.map(|m| m.to_string()),
                vlan: r.vlan,
            })
            .collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct OutConntrack {
    capacity: u32,
    tick_ms: u64,
    timeouts: std::collections::BTreeMap<&'static str, u64>,
}

pub(super) fn conntrack_out(ct: &CtConfig) -> OutConntrack {
    let mut t = ct.timeouts;
    OutConntrack {
        capacity: ct.capacity,
        tick_ms: ct.tick.as_millis() as u64,
        timeouts: timeouts_mut(&mut t)
            .into_iter()
            .map(|(n, d)| (n, d.as_secs()))
            .collect(),
    }
}
