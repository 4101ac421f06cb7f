//! `POST /v1/actions` with fields an event cannot hold: 422 `invalid-field` naming the field and its bound, nothing signed; the CLI prints that message.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use custody_tests::{cli_binary, node_binary, register, wait_for, NodeSpec, TestNode};
use ledger_core::event::{MAX_CARATS, MAX_VALUE_CENTS};

/// How long one run of the CLI may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// Text one byte over the limit of every free-text field.
fn too_long() -> String {
    "x".repeat(ledger_core::types::MAX_TEXT_LEN + 1)
}

/// The words of a message, without the punctuation that follows them.
fn words(message: &str) -> Vec<&str> {
    message
        .split_whitespace()
        .map(|w| w.trim_end_matches([':', ';', ',']))
        .collect()
}

/// `action` is refused with 422 `invalid-field`, naming `field` (and `bound`, when given).
fn refused(node: &TestNode, action: &Value, field: &str, bound: Option<&str>) {
    let r = node.act(action);
    let v = r.json();
    assert_eq!(
        (r.status, v["code"].as_str()),
        (422, Some("invalid-field")),
        "{action}: {v}"
    );
    let message = v["message"].as_str().unwrap_or("");
    assert!(
        words(message).contains(&field),
        "{action}: the message {message:?} should name {field}"
    );
    if let Some(bound) = bound {
        assert!(
            message.contains(bound),
            "{action}: the message {message:?} should name the bound {bound}"
        );
    }
}

/// A register action with `field` set to `value`.
fn register_with(field: &str, value: Value) -> Value {
    let mut a = register("jwaneng", 100);
    a[field] = value;
    a
}

/// A certificate for `parcel` with `field` set to `value`.
fn certify_with(parcel: &str, field: &str, value: Value) -> Value {
    let (issued, expires) = custody_tests::certificate_dates();
    let mut a = json!({
        "kind": "certify", "number": "KP-BW-1", "exporter": "exporter-bw", "importer": "importer-be",
        "destination": "BE", "parcels": [parcel], "total_carats": 100, "value_cents": 100,
        "origins": ["BW"], "hs_code": "7102.10", "issued_on": issued, "expires_on": expires,
    });
    a[field] = value;
    a
}

#[test]
fn every_field_out_of_its_bounds_gets_422_naming_it_and_a_valid_action_still_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("mine-bw".into()),
        ..NodeSpec::default()
    };
    let node = TestNode::start(&node_binary!(), dir.path(), &spec);
    let first = node.act_ok(&register("jwaneng", 100));
    let parcel = custody_tests::registered_parcel(&first);
    let p = parcel.as_str();
    let limit = MAX_CARATS.to_string();
    let value_limit = MAX_VALUE_CENTS.to_string();
    let text_limit = ledger_core::types::MAX_TEXT_LEN.to_string();
    let (carats, value) = (Some(limit.as_str()), Some(value_limit.as_str()));
    let text = Some(text_limit.as_str());
    let long = too_long();

    // register
    refused(&node, &register_with("carats", json!(0)), "carats", carats);
    refused(
        &node,
        &register_with("carats", json!(u64::MAX)),
        "carats",
        carats,
    );
    refused(
        &node,
        &register_with("carats", json!(MAX_CARATS + 1)),
        "carats",
        carats,
    );
    refused(
        &node,
        &register_with("value_cents", json!(u64::MAX)),
        "value_cents",
        value,
    );
    refused(&node, &register_with("seal", json!(long)), "seal", text);
    refused(
        &node,
        &register_with("site", json!("Jwaneng Pit")),
        "site",
        None,
    );

    // transform
    let transform = |inputs: Value, outputs: Value| json!({"kind": "transform", "inputs": inputs, "outputs": outputs});
    refused(
        &node,
        &transform(json!([]), json!([{"carats": 1}])),
        "inputs",
        None,
    );
    refused(
        &node,
        &transform(json!([p, p]), json!([{"carats": 1}])),
        "inputs",
        None,
    );
    refused(&node, &transform(json!([p]), json!([])), "outputs", None);
    let many: Vec<Value> = (0..257).map(|_| json!({"carats": 1})).collect();
    refused(
        &node,
        &transform(json!([p]), json!(many)),
        "outputs",
        Some("256"),
    );
    refused(
        &node,
        &transform(json!([p]), json!([{"carats": 0}])),
        "outputs.carats",
        carats,
    );
    refused(
        &node,
        &transform(json!([p]), json!([{"carats": 1, "value_cents": u64::MAX}])),
        "outputs.value_cents",
        value,
    );
    refused(
        &node,
        &transform(json!([p]), json!([{"carats": 1, "seal": long}])),
        "outputs.seal",
        text,
    );

    // dispatch, receive, reject, retire
    let dispatch = json!({"kind": "dispatch", "parcel": p, "to": "Sorter BW"});
    refused(&node, &dispatch, "to", None);
    let dispatch = json!({"kind": "dispatch", "parcel": p, "to": "sorter-bw", "seal": long});
    refused(&node, &dispatch, "seal", text);
    let receive = json!({"kind": "receive", "parcel": p, "measured_carats": u64::MAX});
    refused(&node, &receive, "measured_carats", carats);
    let receive = json!({"kind": "receive", "parcel": p, "measured_carats": 100, "note": long});
    refused(&node, &receive, "note", text);
    refused(
        &node,
        &json!({"kind": "reject", "parcel": p, "reason": long}),
        "reason",
        text,
    );
    refused(
        &node,
        &json!({"kind": "retire", "parcel": p, "cause": "cut", "note": long}),
        "note",
        text,
    );

    // certify
    refused(&node, &certify_with(p, "number", json!("")), "number", None);
    refused(
        &node,
        &certify_with(p, "number", json!(long)),
        "number",
        text,
    );
    refused(
        &node,
        &certify_with(p, "exporter", json!("Exporter")),
        "exporter",
        None,
    );
    refused(
        &node,
        &certify_with(p, "importer", json!("import er")),
        "importer",
        None,
    );
    refused(
        &node,
        &certify_with(p, "parcels", json!([])),
        "parcels",
        None,
    );
    refused(
        &node,
        &certify_with(p, "parcels", json!([p, p])),
        "parcels",
        None,
    );
    // No origins is not an error: the node fills them from the parcels.
    refused(
        &node,
        &certify_with(p, "origins", json!(vec!["BW"; 65])),
        "origins",
        Some("64"),
    );
    refused(
        &node,
        &certify_with(p, "total_carats", json!(0)),
        "total_carats",
        carats,
    );
    refused(
        &node,
        &certify_with(p, "total_carats", json!(MAX_CARATS + 1)),
        "total_carats",
        carats,
    );
    refused(
        &node,
        &certify_with(p, "value_cents", json!(u64::MAX)),
        "value_cents",
        value,
    );

    // confirm-import, flag
    let confirm = json!({"kind": "confirm-import", "certificate": first, "note": long});
    refused(&node, &confirm, "note", text);
    let flag = |target: Value, text: &str| json!({"kind": "flag", "target": target, "code": "other", "text": text});
    refused(&node, &flag(json!({"parcel": p}), &long), "text", text);
    refused(
        &node,
        &flag(json!({"member": "Mine BW"}), "x"),
        "target.member",
        None,
    );
    refused(
        &node,
        &flag(json!({"site": {"member": "mine-bw", "site": "Pit 1"}}), "x"),
        "target.site",
        None,
    );

    // Nothing refused was signed: a valid action at the bounds is applied as the feed's second event.
    let mut at_bounds = register("jwaneng", MAX_CARATS);
    at_bounds["value_cents"] = json!(MAX_VALUE_CENTS);
    let second = node.act_ok(&at_bounds);
    assert!(node.has_event(&second));
    assert_eq!(node.status()["events"], 2);
}

/// Kills the CLI if the test gives up on it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs the CLI against `node` within the deadline; returns the exit code and stderr.
fn custody(dir: &Path, node: &TestNode, args: &[&str]) -> (Option<i32>, String) {
    let err = dir.join("cli-stderr");
    let mut child = Running(
        Command::new(cli_binary!())
            .args(["--node", &format!("http://{}", node.http)])
            .args(args)
            .env("CUSTODY_TOKEN", &node.token)
            .env_remove("CUSTODY_NODE")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&err).expect("stderr file"),
            ))
            .spawn()
            .expect("run custody"),
    );
    let status = wait_for("the CLI to finish", DEADLINE, || {
        child.0.try_wait().expect("wait")
    });
    (status.code(), std::fs::read_to_string(err).expect("stderr"))
}

#[test]
fn the_cli_prints_the_field_the_node_refused_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("mine-bw".into()),
        ..NodeSpec::default()
    };
    let node = TestNode::start(&node_binary!(), &dir.path().join("node"), &spec);
    let register = [
        "register",
        "--site",
        "jwaneng",
        "--extracted-on",
        "2026-03-03",
    ];
    let max = u64::MAX.to_string();
    for (carats, value, field, limit) in [
        ("0", "1", "carats", MAX_CARATS),
        ("1", max.as_str(), "value_cents", MAX_VALUE_CENTS),
    ] {
        let args = [&register[..], &["--carats", carats, "--value-cents", value]].concat();
        let (code, stderr) = custody(dir.path(), &node, &args);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("invalid field: {field} "))
                && stderr.contains(&limit.to_string()),
            "{stderr}"
        );
    }
    assert_eq!(node.status()["events"], 0);
}
