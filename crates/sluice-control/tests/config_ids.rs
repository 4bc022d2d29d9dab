//! `[ids]` and the interfaces' `ids`: what parses into what, every refusal
//! with its line and key (a bad rule also with the rule file's line), the
//! round trip through `show running-config`, and the plan of a change.

use std::path::{Path, PathBuf};

use sluice_control::config::plan::{Live, plan};
use sluice_control::config::{Config, ConfigError};
use sluice_fn::ids::Mode;

const RULES: &str = "\
# two rules
alert tcp any any -> any 80 (msg:\"passwd fetch\"; content:\"/etc/passwd\"; sid:1001; rev:2;)
alert udp any any -> any any (msg:\"evil\"; content:\"evil\"; nocase; sid:1002;)
";

/// A rule file of its own for each test (tests run in parallel).
fn rule_file(test: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-config-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}.rules"));
    std::fs::write(&path, text).unwrap();
    path
}

fn config(rules: &Path, extra_ids: &str, if_keys: &str) -> String {
    format!(
        r#"[ids]
rules = "{}"
{extra_ids}

[[interface]]
name = "in0"
driver = "pg"
{if_keys}

[[interface]]
name = "out0"
driver = "sink"
"#,
        rules.display()
    )
}

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
fn the_ids_section_and_the_interface_key_parse_into_what_they_say() {
    let f = rule_file("parse", RULES);
    let c = Config::parse(&config(
        &f,
        "mode = \"prevent\"\nlog-per-second = 5\nlog-burst = 7",
        "ids = true",
    ))
    .unwrap();
    let ids = c.ids.as_ref().expect("[ids] parsed");
    assert_eq!(ids.rules_file, f);
    let sids: Vec<u32> = ids.rules.rules().iter().map(|r| r.sid).collect();
    assert_eq!(sids, [1001, 1002]);
    assert_eq!(ids.rules.rules()[0].msg, "passwd fetch");
    assert_eq!(ids.alerting.mode, Mode::Prevent);
    assert_eq!(ids.alerting.log_per_second, 5);
    assert_eq!(ids.alerting.log_burst, 7);
    assert!(c.features[0].ids);
    assert!(!c.features[1].ids);

    // Detect is the default; `ids = false` is the same as no key.
    let c = Config::parse(&config(&f, "", "ids = false")).unwrap();
    let ids = c.ids.as_ref().unwrap();
    assert_eq!(ids.alerting.mode, Mode::Detect);
    assert!(c.features.iter().all(|f| !f.ids && f.is_empty()));
}

#[test]
fn the_running_config_round_trips() {
    let f = rule_file("round-trip", RULES);
    let first = Config::parse(&config(
        &f,
        "mode = \"prevent\"\nlog-per-second = 5",
        "ids = true",
    ))
    .unwrap();
    let text = first.to_toml();
    assert!(text.contains("[ids]"), "{text}");
    assert!(text.contains("mode = \"prevent\""), "{text}");
    assert!(text.contains("ids = true"), "{text}");
    let second = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(second, first);
    assert_eq!(second.to_toml(), text, "writing is stable");

    // Without [ids], nothing about it is written.
    let plain = Config::parse("[[interface]]\nname = \"a\"\ndriver = \"sink\"\n").unwrap();
    assert!(!plain.to_toml().contains("ids"), "{}", plain.to_toml());
}

#[test]
fn every_bad_value_is_refused_with_its_line_and_key() {
    let f = rule_file("refusals", RULES);
    let m = refused(&config(&f, "mode = \"block\"", ""), 3, "ids.mode");
    assert!(m.contains("`block`") && m.contains("prevent"), "{m}");
    refused(&config(&f, "log-burst = -1", ""), 3, "ids.log-burst");
    refused(
        &config(&f, "log-per-second = 2000000", ""),
        3,
        "ids.log-per-second",
    );

    // `ids = true` with no rules to run.
    let src = "[[interface]]\nname = \"a\"\ndriver = \"pg\"\nids = true\n";
    let m = refused(src, 4, "interface[0].ids");
    assert!(m.contains("[ids]"), "{m}");

    // A rule file that cannot be read names the file.
    let missing = f.with_file_name("no-such.rules");
    let m = refused(&config(&missing, "", ""), 2, "ids.rules");
    assert!(m.contains("no-such.rules"), "{m}");

    // A bad rule: the configuration's line and key, and the rule file's
    // line and what the parser said.
    let bad = rule_file(
        "bad-rule",
        "# fine so far\n\
         alert tcp any any -> any 80 (msg:\"a\"; content:\"x\"; sid:1;)\n\
         alert tcp any any -> any 80 (msg:\"b\"; content:\"y\"; pcre:\"/y/\"; sid:2;)\n",
    );
    let m = refused(&config(&bad, "", ""), 2, "ids.rules");
    assert!(m.contains("line 3") && m.contains("pcre"), "{m}");
    assert!(m.contains("bad-rule.rules"), "{m}");

    // A file with comments only would watch for nothing.
    let empty = rule_file("empty", "# nothing\n\n");
    let m = refused(&config(&empty, "", ""), 2, "ids.rules");
    assert!(m.contains("no rule"), "{m}");

    // Not on a switched port: features stand on the routed path.
    let src = format!(
        r#"[ids]
rules = "{}"

[[interface]]
name = "a"
driver = "pg"
ids = true

[[interface]]
name = "b"
driver = "sink"

[[xconnect]]
from = "a"
to = "b"
"#,
        f.display()
    );
    let m = refused(&src, 7, "interface[0].ids");
    assert!(m.contains("switches frames"), "{m}");
}

#[test]
fn a_plan_makes_the_interface_key_live_and_the_rules_a_restart() {
    let f = rule_file("plan", RULES);
    let old = Config::parse(&config(&f, "", "")).unwrap();
    let on = Config::parse(&config(&f, "", "ids = true")).unwrap();
    let p = plan(&old, &on, 1);
    assert_eq!(
        p.live(),
        [Live::Features {
            interface: "in0".into()
        }]
    );
    assert_eq!(p.restarts().count(), 0, "{}", p.text());
    assert!(p.text().contains("features none -> ids"), "{}", p.text());

    let prevent = Config::parse(&config(&f, "mode = \"prevent\"", "")).unwrap();
    let p = plan(&old, &prevent, 1);
    assert_eq!(p.restarts().count(), 1, "{}", p.text());
    assert!(p.text().contains("ids"), "{}", p.text());

    // The same file name with other rules in it is a change too.
    let g = rule_file("plan-other", RULES);
    let before = Config::parse(&config(&g, "", "")).unwrap();
    std::fs::write(&g, RULES.replace("sid:1002", "sid:1003")).unwrap();
    let after = Config::parse(&config(&g, "", "")).unwrap();
    assert_eq!(plan(&before, &after, 1).restarts().count(), 1);

    // Adding [ids] is a restart as well.
    let none = Config::parse(
        "[[interface]]\nname = \"in0\"\ndriver = \"pg\"\n\n[[interface]]\nname = \"out0\"\ndriver = \"sink\"\n",
    )
    .unwrap();
    assert_eq!(plan(&none, &old, 1).restarts().count(), 1);
}
