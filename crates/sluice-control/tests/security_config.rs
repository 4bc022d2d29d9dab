//! `[[acl]]`, `[conntrack]` and the interfaces' `acl-in`, `acl-out` and
//! `firewall`: what parses into what, every refusal with its line and key,
//! the round trip through `show running-config`, and the plan of a change.

use std::time::Duration;

use sluice_control::config::plan::{Live, plan};
use sluice_control::config::{Config, ConfigError, Firewall};
use sluice_fn::acl::{Action, Masked, PortRange, prefix};

const GOOD: &str = r#"[[acl]]
name = "web"
default = "deny"
rule = [
  { action = "permit", dst = "10.1.0.0/16", protocol = "tcp", dst-port = 80 },
  { action = "permit-reflect", src = "10.0.0.0/8", protocol = "udp", src-port = "1024-65535" },
  { action = "deny", src = "2001:db8::/32", protocol = "icmpv6", icmp-type = 128 },
  { action = "permit", protocol = 47, dscp = 46, vlan = 10, src-mac = "02:00:00:00:00:09" },
]

[[acl]]
name = "out"

[conntrack]
capacity = 4096
tick-ms = 10
[conntrack.timeouts]
established = 600
syn-sent = 5

[[interface]]
name = "in0"
driver = "pg"
acl-in = "web"
firewall = "inside"

[[interface]]
name = "out0"
driver = "sink"
acl-out = "out"
firewall = "outside"
"#;

#[track_caller]
fn refused(src: &str, line: usize, key: &str) -> String {
    match Config::parse(src) {
        Ok(_) => panic!("`{key}` on line {line} parsed:\n{src}"),
        Err(ConfigError::Value {
            line: l,
            key: k,
            message,
        }) => {
            assert_eq!((l, k.as_str()), (line, key), "{message}\n{src}");
            message
        }
        Err(e) => panic!("not a value error: {e}"),
    }
}

#[test]
fn acls_conntrack_and_features_parse_into_what_they_say() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.acls.len(), 2);
    let web = &c.acls[0];
    assert_eq!(web.default, Action::Deny);
    assert_eq!(web.rules.len(), 4);
    let r = &web.rules[0];
    assert_eq!(r.action, Action::Permit);
    assert_eq!(r.dst, prefix("10.1.0.0/16"));
    assert_eq!(r.proto, Some(Masked::exactly(6)));
    assert_eq!(r.dport, PortRange::exactly(80));
    let r = &web.rules[1];
    assert_eq!(r.action, Action::PermitReflect);
    assert_eq!(r.sport, PortRange::new(1024, 65535));
    assert_eq!(r.proto, Some(Masked::exactly(17)));
    assert_eq!(web.rules[2].icmp_type, Some(128));
    assert_eq!(web.rules[3].proto, Some(Masked::exactly(47)));
    assert_eq!(web.rules[3].vlan, Some(10));
    // A list without rules or default: deny everything.
    assert_eq!(c.acls[1].default, Action::Deny);
    assert!(c.acls[1].rules.is_empty());
    let ct = c.conntrack.as_ref().unwrap();
    assert_eq!(ct.capacity, 4096);
    assert_eq!(ct.tick, Duration::from_millis(10));
    assert_eq!(ct.timeouts.established, Duration::from_secs(600));
    assert_eq!(ct.timeouts.syn_sent, Duration::from_secs(5));
    assert_eq!(ct.timeouts.echo, Duration::from_secs(30), "the default");
    assert_eq!(c.features[0].acl_in.as_deref(), Some("web"));
    assert_eq!(c.features[0].firewall, Some(Firewall::Inside));
    assert_eq!(c.features[1].acl_out.as_deref(), Some("out"));
    assert_eq!(c.features[1].firewall, Some(Firewall::Outside));
}

#[test]
fn the_running_config_round_trips() {
    let first = Config::parse(GOOD).unwrap();
    let text = first.to_toml();
    let second = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(first, second, "{text}");
    assert_eq!(second.to_toml(), text, "writing is stable");
    assert!(text.contains("acl-in = \"web\""), "{text}");
    assert!(text.contains("firewall = \"outside\""), "{text}");
    assert!(text.contains("[conntrack.timeouts]"), "{text}");
}

#[test]
fn every_bad_value_is_refused_with_its_line_and_key() {
    let acl = |rule: &str| format!("[[acl]]\nname = \"a\"\nrule = [\n  {rule},\n]\n");
    let m = refused(&acl(r#"{ action = "allow" }"#), 4, "acl[0].rule[0].action");
    assert!(m.contains("permit-reflect"), "{m}");
    refused(
        &acl(r#"{ action = "deny", src = "10.0.0/8" }"#),
        4,
        "acl[0].rule[0].src",
    );
    refused(
        &acl(r#"{ action = "deny", protocol = "gre" }"#),
        4,
        "acl[0].rule[0].protocol",
    );
    refused(
        &acl(r#"{ action = "deny", protocol = 300 }"#),
        4,
        "acl[0].rule[0].protocol",
    );
    refused(
        &acl(r#"{ action = "deny", dst-port = "90-80" }"#),
        4,
        "acl[0].rule[0].dst-port",
    );
    refused(
        &acl(r#"{ action = "deny", src-port = 70000 }"#),
        4,
        "acl[0].rule[0].src-port",
    );
    refused(
        &acl(r#"{ action = "deny", dscp = 64 }"#),
        4,
        "acl[0].rule[0].dscp",
    );
    refused(
        &acl(r#"{ action = "deny", src-mac = "nope" }"#),
        4,
        "acl[0].rule[0].src-mac",
    );
    // Checked by the classifier's own rules, reported at the rule.
    let m = refused(
        &acl(r#"{ action = "deny", dst = "10.0.0.1/8" }"#),
        4,
        "acl[0].rule[0]",
    );
    assert!(m.contains("host bits"), "{m}");
    let m = refused(
        &acl(r#"{ action = "deny", src = "10.0.0.0/8", dst = "2001:db8::/32" }"#),
        4,
        "acl[0].rule[0]",
    );
    assert!(m.contains("families"), "{m}");
    let m = refused(
        &acl(r#"{ action = "deny", icmp-type = 8 }"#),
        4,
        "acl[0].rule[0]",
    );
    assert!(m.contains("protocol"), "{m}");
    // Unknown keys are refused by the parser, with their line.
    assert!(matches!(
        Config::parse(&acl(r#"{ action = "deny", port = 80 }"#)),
        Err(ConfigError::Syntax(m)) if m.contains("line 4")
    ));
    refused(
        "[[acl]]\nname = \"a\"\n[[acl]]\nname = \"a\"\n",
        4,
        "acl[1].name",
    );
    refused("[[acl]]\nname = \"a b\"\n", 2, "acl[0].name");
    refused(
        "[[acl]]\nname = \"a\"\ndefault = \"drop\"\n",
        3,
        "acl[0].default",
    );

    let itf = |extra: &str| format!("[[interface]]\nname = \"p\"\ndriver = \"pg\"\n{extra}\n");
    let m = refused(&itf("acl-in = \"nope\""), 4, "interface[0].acl-in");
    assert!(m.contains("no acl is called `nope`"), "{m}");
    refused(&itf("acl-out = \"nope\""), 4, "interface[0].acl-out");
    let m = refused(&itf("firewall = \"inside\""), 4, "interface[0].firewall");
    assert!(m.contains("[conntrack]"), "{m}");
    refused(
        &format!("[conntrack]\n{}", itf("firewall = \"dmz\"")),
        5,
        "interface[0].firewall",
    );
    // Features stand on the routed path, not on a bridge port.
    let bridged = "[[acl]]\nname = \"a\"\n[[interface]]\nname = \"p\"\ndriver = \"pg\"\nacl-in = \"a\"\n\
                   [[interface]]\nname = \"s\"\ndriver = \"sink\"\n\
                   [[bridge]]\nid = 1\nport = [{ interface = \"p\" }, { interface = \"s\" }]\n";
    let m = refused(bridged, 6, "interface[0].acl-in");
    assert!(m.contains("bvi"), "{m}");

    refused("[conntrack]\ncapacity = 0\n", 2, "conntrack.capacity");
    refused(
        "[conntrack]\ncapacity = 4294967296\n",
        2,
        "conntrack.capacity",
    );
    refused("[conntrack]\ntick-ms = 0\n", 2, "conntrack.tick-ms");
    refused(
        "[conntrack]\n[conntrack.timeouts]\nestablished = 0\n",
        3,
        "conntrack.timeouts.established",
    );
    // 30 days at 1 ms ticks overruns the table's tick circle: its own
    // check, reported at the key.
    let m = refused(
        "[conntrack]\ntick-ms = 1\n[conntrack.timeouts]\nclose = 1\nestablished = 2592000\n",
        5,
        "conntrack.timeouts.established",
    );
    assert!(m.contains("out of range"), "{m}");
}

#[test]
fn a_plan_makes_lists_and_features_live_and_the_tables_a_restart() {
    let old = Config::parse(GOOD).unwrap();
    let rules_changed = GOOD.replace("dst-port = 80", "dst-port = 443");
    let new = Config::parse(&rules_changed).unwrap();
    let p = plan(&old, &new, 1);
    assert_eq!(p.live(), [Live::Acl { name: "web".into() }]);
    assert_eq!(p.restarts().count(), 0);

    let moved = GOOD.replace("acl-out = \"out\"", "acl-out = \"web\"");
    let p = plan(&old, &Config::parse(&moved).unwrap(), 1);
    assert_eq!(
        p.live(),
        [Live::Features {
            interface: "out0".into()
        }]
    );
    assert!(
        p.text()
            .contains("features acl-out out, firewall outside -> acl-out web, firewall outside"),
        "{}",
        p.text()
    );

    let bigger = GOOD.replace("capacity = 4096", "capacity = 8192");
    let p = plan(&old, &Config::parse(&bigger).unwrap(), 1);
    assert_eq!(p.restarts().count(), 1, "{}", p.text());
}
