//! Real nodes on loopback: propagation to five nodes, catch-up by sync, partitions healing, and --dev.

use std::time::Duration;

use custody_tests::{
    node_binary, register, registered_parcel, start_network, wait_everywhere, wait_for, NodeSpec,
    TestNode,
};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use serde_json::{json, Value};

const CONVERGE: Duration = Duration::from_secs(60);

fn spec(member: Option<&str>, bootstrap: Vec<String>) -> NodeSpec {
    NodeSpec {
        member: member.map(str::to_owned),
        bootstrap,
        sync_secs: 1,
        ..NodeSpec::default()
    }
}

fn heads(node: &TestNode) -> Value {
    node.get_json("/v1/feeds")["feeds"].clone()
}

#[test]
fn an_action_reaches_all_five_nodes_and_their_states_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let members = [
        "mine-bw",
        "sorter-bw",
        "exporter-bw",
        "authority-bw",
        "monitor",
    ];
    let nodes = start_network(&node_binary!(), dir.path(), &members, 1);
    // A registration at the mine, a dispatch to the sorter, and the sorter's receipt at its own node.
    let reg = nodes[0].act_ok(&register("jwaneng", 500));
    let parcel = registered_parcel(&reg);
    let dis = nodes[0].act_ok(&json!({ "kind": "dispatch", "parcel": parcel, "to": "sorter-bw" }));
    wait_for("the dispatch at the sorter's node", CONVERGE, || {
        nodes[1].has_event(&dis).then_some(())
    });
    let rec =
        nodes[1].act_ok(&json!({ "kind": "receive", "parcel": parcel, "measured_carats": 500 }));
    for id in [&reg, &dis, &rec] {
        wait_everywhere(&nodes, id, CONVERGE);
    }
    // A Botswanan certificate at the authority's node lets the sorter ship across the border.
    let (issued, expires) = custody_tests::certificate_dates();
    let cert = nodes[3].act_ok(&json!({
        "kind": "certify", "number": "KP-BW-0001", "exporter": "sorter-bw", "importer": "importer-be",
        "destination": "BE", "parcels": [parcel], "total_carats": 500, "value_cents": 90000,
        "origins": ["BW"], "hs_code": "7102.10", "issued_on": issued, "expires_on": expires,
    }));
    wait_for("the certificate at the sorter's node", CONVERGE, || {
        nodes[1].has_event(&cert).then_some(())
    });
    let export = nodes[1].act_ok(
        &json!({ "kind": "dispatch", "parcel": parcel, "to": "importer-be", "certificate": cert }),
    );
    for id in [&cert, &export] {
        wait_everywhere(&nodes, id, CONVERGE);
    }
    let reference = heads(&nodes[0]);
    let parcel_state = nodes[0].get_json(&format!("/v1/parcels/{parcel}"));
    assert_eq!(
        (
            parcel_state["state"].as_str(),
            parcel_state["custodian"].as_str()
        ),
        (Some("in-transit"), Some("sorter-bw"))
    );
    for n in &nodes[1..] {
        assert_eq!(heads(n), reference);
        assert_eq!(n.get_json(&format!("/v1/parcels/{parcel}")), parcel_state);
        assert_eq!(n.state_root(), nodes[0].state_root());
    }
}

#[test]
fn a_node_started_after_two_thousand_events_catches_up_by_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let early = TestNode::start(&bin, &dir.path().join("early"), &spec(None, vec![]));
    // 2,000 events of five mines' feeds, signed here and handed to the first node over HTTP.
    let dev = DevNetwork::standard();
    let mut writers: Vec<_> = ["mine-bw", "mine-zw"]
        .iter()
        .map(|m| dev.writer(m).expect("member"))
        .collect();
    let sites = ["jwaneng", "marange"];
    for i in 0..2000u64 {
        let w = i as usize % writers.len();
        let body = Body::Register(Register {
            site: sites[w].parse().expect("site"),
            carats: 100 + i,
            stones: 1,
            value_cents: None,
            seal: format!("S{i}"),
            extracted_on: "2026-01-01".parse().expect("date"),
        });
        let s = writers[w].append(body, 1_780_000_000_000 + i);
        let r = early.submit(&s.bytes);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(early.status()["events"], 2000);
    let late = TestNode::start(
        &bin,
        &dir.path().join("late"),
        &spec(None, vec![early.p2p_addr().expect("address")]),
    );
    wait_for("the late node to hold 2,000 events", CONVERGE, || {
        (late.status()["events"] == 2000).then_some(())
    });
    assert_eq!(late.state_root(), early.state_root());
    assert_eq!(heads(&late), heads(&early));
    assert!(late.metric("custody_sync_events_total") >= 2000.0);
}

#[test]
fn partitioned_groups_keep_working_and_converge_when_reconnected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let a0 = TestNode::start(&bin, &dir.path().join("a0"), &spec(Some("mine-bw"), vec![]));
    let a1 = TestNode::start(
        &bin,
        &dir.path().join("a1"),
        &spec(Some("sorter-bw"), vec![a0.p2p_addr().expect("addr")]),
    );
    let b0 = TestNode::start(&bin, &dir.path().join("b0"), &spec(Some("mine-zw"), vec![]));
    let b1 = TestNode::start(
        &bin,
        &dir.path().join("b1"),
        &spec(Some("monitor"), vec![b0.p2p_addr().expect("addr")]),
    );
    let side_a: Vec<String> = (0..5)
        .map(|i| a0.act_ok(&register("jwaneng", 100 + i)))
        .collect();
    let side_b: Vec<String> = (0..5)
        .map(|i| b0.act_ok(&register("marange", 200 + i)))
        .collect();
    for id in &side_a {
        wait_for("side A to converge", CONVERGE, || {
            a1.has_event(id).then_some(())
        });
    }
    for id in &side_b {
        wait_for("side B to converge", CONVERGE, || {
            b1.has_event(id).then_some(())
        });
    }
    // Cut off from each other: neither side has the other's events.
    assert!(!b1.has_event(&side_a[0]) && !a1.has_event(&side_b[0]));
    // Heal: one node dials across.
    let addr = b1.p2p_addr().expect("addr");
    let r = a1.post(
        "/v1/peers",
        "application/json",
        json!({ "addr": addr }).to_string().as_bytes(),
        Some(&a1.token),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let all = [&a0, &a1, &b0, &b1];
    for id in side_a.iter().chain(&side_b) {
        for n in all {
            wait_for("every node to hold every event", CONVERGE, || {
                n.has_event(id).then_some(())
            });
        }
    }
    let root = a0.state_root().clone();
    for n in all {
        assert_eq!(n.status()["events"], 10);
        assert_eq!(n.state_root(), root);
    }
}

#[test]
fn dev_mode_starts_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(node_binary!())
        .args(["--dev", "--http", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start --dev");
    let addr_file = dir.path().join("custody-dev/data/http.addr");
    let http = wait_for("--dev to listen", Duration::from_secs(30), || {
        std::fs::read_to_string(&addr_file)
            .ok()
            .filter(|s| !s.is_empty())
    });
    let status: Value = ureq::get(&format!("http://{http}/v1/status"))
        .call()
        .expect("status")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(status["member"], "mine-bw");
    assert_eq!(status["events"], 0);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let exit = wait_for("--dev to exit", Duration::from_secs(30), || {
        child.try_wait().ok().flatten()
    });
    assert!(exit.success(), "{exit}");
}
