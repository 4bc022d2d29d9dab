//! The `vhost-user` interface in the configuration: its keys, their
//! refusals (with line and key), and the running configuration written
//! back.

use sluice_control::config::{Config, Driver};

const BASE: &str = "[[interface]]\nname = \"vm0\"\ndriver = \"vhost-user\"\n";

fn refused(src: &str, line: usize, key: &str) -> String {
    let e = Config::parse(src)
        .expect_err("should be refused")
        .to_string();
    assert!(
        e.contains(&format!("line {line}")),
        "not at line {line}: {e}"
    );
    assert!(e.contains(key), "does not name `{key}`: {e}");
    e
}

#[test]
fn vhost_user_keys_are_read_with_their_defaults() {
    let c = Config::parse(&format!("{BASE}socket = \"/run/vm0.sock\"\n")).unwrap();
    match &c.interfaces[0].driver {
        Driver::VhostUser(v) => {
            assert_eq!(v.socket, "/run/vm0.sock");
            assert!(!v.client && !v.interrupt);
            assert_eq!(v.queues, 1);
        }
        other => panic!("not vhost-user: {other:?}"),
    }
    let c = Config::parse(&format!(
        "{BASE}socket = \"/run/vm0.sock\"\nrole = \"client\"\nqueues = 4\nrx-mode = \"interrupt\"\n"
    ))
    .unwrap();
    match &c.interfaces[0].driver {
        Driver::VhostUser(v) => {
            assert!(v.client && v.interrupt);
            assert_eq!(v.queues, 4);
        }
        other => panic!("not vhost-user: {other:?}"),
    }
    assert_eq!(c.interfaces[0].driver.kind(), "vhost-user");
}

#[test]
fn bad_vhost_user_values_are_refused_with_line_and_key() {
    let e = refused(BASE, 3, "interface[0].socket");
    assert!(e.contains("needs `socket`"), "{e}");
    refused(&format!("{BASE}socket = \"\"\n"), 4, "interface[0].socket");
    refused(
        &format!("{BASE}socket = \"abstract:vm\"\n"),
        4,
        "interface[0].socket",
    );
    let long = "/x".repeat(60);
    refused(
        &format!("{BASE}socket = \"{long}\"\n"),
        4,
        "interface[0].socket",
    );
    let s = format!("{BASE}socket = \"/run/vm0.sock\"\n");
    let e = refused(&format!("{s}role = \"listen\"\n"), 5, "interface[0].role");
    assert!(e.contains("\"server\""), "{e}");
    refused(&format!("{s}queues = 0\n"), 5, "interface[0].queues");
    refused(&format!("{s}queues = 129\n"), 5, "interface[0].queues");
    refused(
        &format!("{s}rx-mode = \"adaptive\"\n"),
        5,
        "interface[0].rx-mode",
    );
    // memif's keys, and a ring size (the guest sizes its rings).
    for k in [
        "id = 1",
        "secret = \"x\"",
        "buffer-size = 2048",
        "ring-size = 256",
    ] {
        let e = refused(&format!("{s}{k}\n"), 5, "interface[0].");
        assert!(e.contains("a vhost-user interface takes no"), "{k}: {e}");
    }
    // `role` is memif's and vhost-user's only.
    let e = refused(
        "[[interface]]\nname = \"s0\"\ndriver = \"sink\"\nrole = \"client\"\n",
        4,
        "interface[0].role",
    );
    assert!(e.contains("a sink interface takes no `role`"), "{e}");
}

#[test]
fn vhost_user_interfaces_are_written_back_as_read() {
    for src in [
        format!("{BASE}socket = \"/run/vm0.sock\"\n"),
        format!(
            "{BASE}socket = \"/run/vm0.sock\"\nrole = \"client\"\nqueues = 2\nrx-mode = \"interrupt\"\n"
        ),
    ] {
        let first = Config::parse(&src).unwrap();
        let text = first.to_toml();
        let second = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(first, second, "{text}");
        assert!(text.contains("driver = \"vhost-user\""), "{text}");
    }
}
