//! What an operator sees first: `custody-node init` prints the peer id and the address others
//! bootstrap from, and `custody status` says where a node stands and whether it is in sync.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use custody_tests::{cli_binary, node_binary, start_network, wait_for};

fn run(bin: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env_remove("CUSTODY_NODE")
        .env_remove("CUSTODY_TOKEN")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn init_prints_the_peer_id_and_the_address_to_bootstrap_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("n");
    let (code, out, err) = run(
        &node_binary!(),
        &[
            "init",
            "--dir",
            &d.display().to_string(),
            "--member",
            "mine-bw",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let peer = out
        .lines()
        .find_map(|l| l.strip_prefix("peer id  "))
        .unwrap_or_else(|| panic!("no peer id in {out}"));
    assert!(peer.starts_with("12D3"), "{peer}");
    let address = out
        .lines()
        .find_map(|l| l.strip_prefix("address  "))
        .unwrap_or_else(|| panic!("no address in {out}"));
    assert!(
        address.starts_with("/ip4/") && address.ends_with(&format!("/p2p/{peer}")),
        "{address}"
    );
}

#[test]
fn status_says_where_a_node_stands_and_whether_it_is_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_network(&node_binary!(), dir.path(), &["mine-bw", "monitor"], 1);
    let reg = nodes[0].act_ok(&serde_json::json!({
        "kind": "register", "site": "jwaneng", "carats": 100, "extracted_on": "2026-03-03",
    }));
    let url = format!("http://{}", nodes[1].http);
    let status = || -> (i32, Value) {
        let (code, out, err) = run(&cli_binary!(), &["--node", &url, "--json", "status"]);
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        (code, v)
    };
    // Once a sync round with the peer finds nothing missing, the monitor's node is in sync.
    let (code, v) = wait_for(
        "the monitor's node in sync",
        Duration::from_secs(30),
        || {
            let (code, v) = status();
            (v["in_sync"] == "yes" && v["status"]["events"] == 1).then_some((code, v))
        },
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"]["member"], "monitor");
    assert_eq!(v["status"]["peers"].as_array().map(Vec::len), Some(1));
    assert!(nodes[1].has_event(&reg));
    // The text names every field an operator looks for.
    let (code, text, _) = run(&cli_binary!(), &["--node", &url, "status"]);
    assert_eq!(code, 0, "{text}");
    for field in [
        "network",
        "member",
        "peer id",
        "peers",
        "events",
        "pending",
        "checkpoint",
        "in sync",
    ] {
        assert!(text.contains(field), "status lacks {field}: {text}");
    }
    // A node that cannot be reached: exit 3.
    let (code, _, err) = run(&cli_binary!(), &["--node", "http://127.0.0.1:1", "status"]);
    assert_eq!(code, 3, "{err}");
}
