//! Offline signing end to end (issue 11): a national authority signs a certificate with a key
//! that never touches a networked machine, and a monitor reproduces a double dispatch signed
//! outside any node; both are submitted to real nodes and judged there.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use custody_tests::{
    certificate_dates, cli_binary, node_binary, registered_parcel, start_network, today,
    wait_everywhere, TestNode,
};
use ledger_core::dev::dev_key;

const SPREAD: Duration = Duration::from_secs(20);

/// Runs `custody` with `args`; returns (exit code, stdout, stderr).
fn custody(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cli_binary!())
        .args(args)
        .env_remove("CUSTODY_TOKEN")
        .env_remove("CUSTODY_NODE")
        .output()
        .expect("run custody");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(args: &[&str], code: i32) -> Value {
    let (got, stdout, stderr) = custody(args);
    assert_eq!(got, code, "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn url(n: &TestNode) -> String {
    format!("http://{}", n.http)
}

fn token(n: &TestNode) -> String {
    n.dir.join("data/api-token").display().to_string()
}

/// Saves `member`'s signing context from `node`, naming `parcels`, and returns its path.
fn context(node: &TestNode, member: &str, parcels: &[&str], file: &std::path::Path) -> String {
    let path = file.display().to_string();
    let url = url(node);
    let mut args = vec!["--node", &url, "context", "--member", member];
    for p in parcels {
        args.extend(["--parcel", p]);
    }
    args.extend(["--out", &path]);
    let (code, out, err) = custody(&args);
    assert_eq!(code, 0, "{out}{err}");
    path
}

/// Signs offline: `--node` points nowhere, to show no node is asked.
fn sign(key: &str, ctx: &str, out: &str, action: &[&str]) -> Value {
    let mut args = vec![
        "--node",
        "http://127.0.0.1:1",
        "--json",
        "sign",
        "--key",
        key,
        "--context",
        ctx,
        "--out",
        out,
    ];
    args.extend_from_slice(action);
    json_of(&args, 0)
}

fn submit(node: &TestNode, file: &str, code: i32) -> Value {
    json_of(
        &[
            "--node",
            &url(node),
            "--token-file",
            &token(node),
            "--json",
            "submit",
            file,
        ],
        code,
    )
}

#[test]
fn events_signed_offline_are_submitted_and_judged_by_real_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_network(
        &node_binary!(),
        dir.path(),
        &["mine-bw", "authority-bw", "importer-be", "sorter-bw"],
        1,
    );
    let [mine, authority, importer, _sorter] = &nodes[..] else {
        panic!("four nodes");
    };
    let offline = dir.path().join("offline");
    std::fs::create_dir_all(&offline).expect("dir");
    let key_of = |member: &str| {
        let path = offline.join(format!("{member}.key"));
        custody_node::config::write_secret_key(&path, &dev_key(member)).expect("key file");
        path.display().to_string()
    };
    let f = |name: &str| offline.join(name).display().to_string();

    let reg = mine.act_ok(&serde_json::json!({
        "kind": "register", "site": "jwaneng", "carats": 150_000, "value_cents": 9_000_000,
        "extracted_on": today(),
    }));
    let parcel = registered_parcel(&reg);
    wait_everywhere(&nodes, &reg, SPREAD);

    // The authority signs the certificate on a machine with no node, from a context file.
    let ctx = context(
        authority,
        "authority-bw",
        &[&parcel],
        &offline.join("auth.ctx"),
    );
    let (issued, expires) = certificate_dates();
    let cert = sign(
        &key_of("authority-bw"),
        &ctx,
        &f("cert.event"),
        &[
            "certify",
            "--number",
            "BW-2026-0100",
            "--exporter",
            "mine-bw",
            "--importer",
            "importer-be",
            "--destination",
            "BE",
            "--parcel",
            &parcel,
            "--hs-code",
            "7102.10",
            "--issued-on",
            &issued,
            "--expires-on",
            &expires,
        ],
    );
    assert_eq!(cert["body"]["body"]["certify"]["total_carats"], 150_000);
    let submitted = submit(authority, &f("cert.event"), 0);
    assert_eq!(
        (&submitted["status"], &submitted["verdict"]),
        (&Value::from("stored"), &Value::from("applied")),
        "{submitted}"
    );
    let cert_id = submitted["event"].as_str().expect("event").to_owned();
    assert_eq!(cert["event"], cert_id.as_str());
    wait_everywhere(&nodes, &cert_id, SPREAD);
    // The authority's node signs its member's next event after the offline one: no fork.
    let confirm_elsewhere = authority.act_ok(&serde_json::json!({
        "kind": "flag", "target": {"parcel": parcel}, "code": "other", "text": "offline certificate checked",
    }));
    let feed = authority.get_json("/v1/feeds/authority-bw");
    assert_eq!(feed["events"].as_array().map(Vec::len), Some(2), "{feed}");
    assert_eq!(authority.get_json("/v1/status")["forks"], 0);
    wait_everywhere(&nodes, &confirm_elsewhere, SPREAD);

    // The mine exports under the certificate, cited by number.
    let first = mine.act_ok(&serde_json::json!({
        "kind": "dispatch", "parcel": parcel, "to": "importer-be", "certificate": "BW-2026-0100",
    }));
    wait_everywhere(&nodes, &first, SPREAD);
    // A monitor reproduces a second sale of the same parcel from the state before the export,
    // signed outside any node with the mine's key: the node would never sign it.
    let ctx = context(
        importer,
        "mine-bw",
        &[&format!("{parcel}@{reg}")],
        &offline.join("mine.ctx"),
    );
    let double = sign(
        &key_of("mine-bw"),
        &ctx,
        &f("double.event"),
        &["dispatch", "--parcel", &parcel, "--to", "sorter-bw"],
    );
    let stored = submit(importer, &f("double.event"), 1);
    assert_eq!(
        (&stored["status"], &stored["verdict"], &stored["reason"]),
        (
            &Value::from("stored"),
            &Value::from("void"),
            &Value::from("conflict")
        ),
        "{stored}"
    );
    let double_id = double["event"].as_str().expect("event").to_owned();
    wait_everywhere(&nodes, &double_id, SPREAD);
    // The audit's history shows the attempt, void (conflict), and the export applied.
    let audit = json_of(
        &[
            "--node",
            &url(mine),
            "--json",
            "audit",
            "parcel",
            &parcel,
            "--full",
        ],
        0,
    );
    let verdict_of = |id: &str| {
        audit["history"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["event"] == id)
            .map(|h| (h["verdict"].clone(), h["reason"].clone()))
    };
    assert_eq!(
        verdict_of(&double_id),
        Some((Value::from("void"), Value::from("conflict"))),
        "{audit}"
    );
    assert_eq!(
        verdict_of(&first),
        Some((Value::from("applied"), Value::Null))
    );
    // A context file that is not one, and an event file that is not one, are refused clearly.
    std::fs::write(f("junk"), b"{}").expect("write");
    let (code, _, err) = custody(&[
        "sign",
        "--key",
        &key_of("mine-bw"),
        "--context",
        &f("junk"),
        "--out",
        &f("x"),
        "retire",
        "--parcel",
        &parcel,
        "--cause",
        "cut",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a signing context"), "{err}");
    let (code, _, err) = custody(&[
        "--node",
        &url(mine),
        "--token-file",
        &token(mine),
        "submit",
        &f("junk"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused"), "{err}");
}
