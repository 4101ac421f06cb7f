//! Crashes and bad input over HTTP: nothing acknowledged is lost, and bad requests get the documented errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_tests::{node_binary, register, registered_parcel, wait_for, NodeSpec, TestNode};
use serde_json::json;

fn mine() -> NodeSpec {
    NodeSpec {
        member: Some("mine-bw".into()),
        bootstrap: vec![],
        sync_secs: 1,
        ..NodeSpec::default()
    }
}

#[test]
fn sigkill_during_submissions_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = TestNode::start(&node_binary!(), &dir.path().join("n"), &mine());
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Four clients submit as fast as they can; every acknowledged event id is recorded.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (acked, stop) = (acked.clone(), stop.clone());
            let (http, token) = (node.http.clone(), node.token.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = register("jwaneng", 1000 * c + i).to_string();
                    let Ok(mut r) = agent
                        .post(&format!("http://{http}/v1/actions"))
                        .header("authorization", &format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .send(body.as_bytes())
                    else {
                        return;
                    };
                    if r.status() == 200 {
                        if let Ok(v) = r.body_mut().read_json::<serde_json::Value>() {
                            if let Some(id) = v["event"].as_str() {
                                acked.lock().expect("lock").push(id.to_owned());
                            }
                        }
                    }
                }
            })
        })
        .collect();
    wait_for("300 acknowledged events", Duration::from_secs(60), || {
        (acked.lock().expect("lock").len() >= 300).then_some(())
    });
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let acked = acked.lock().expect("lock").clone();
    node.restart();
    let status = node.status();
    assert!(status["events"].as_u64().expect("count") >= acked.len() as u64);
    for id in &acked {
        assert!(node.has_event(id), "acknowledged event {id} lost");
    }
    assert_eq!(
        node.log().matches("chains checked").count(),
        2,
        "the restart opened the store and its chain check passed"
    );
    // The feed continues where it stopped: the next action links to the last stored event.
    node.act_ok(&register("jwaneng", 7));
}

#[test]
fn bad_http_input_gets_the_documented_errors_and_the_node_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = TestNode::start(&node_binary!(), &dir.path().join("n"), &mine());
    let code = |r: &custody_tests::Reply| {
        r.json()["code"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let token = node.token.clone();
    // Malformed JSON.
    let r = node.post(
        "/v1/actions",
        "application/json",
        b"{\"kind\": \"register\",",
        Some(&token),
    );
    assert_eq!((r.status, code(&r).as_str()), (400, "bad-request"));
    // Well-formed JSON that is no action.
    let r = node.post(
        "/v1/actions",
        "application/json",
        b"{\"kind\": \"teleport\"}",
        Some(&token),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // Missing and wrong token.
    let body = register("jwaneng", 5).to_string();
    let r = node.post("/v1/actions", "application/json", body.as_bytes(), None);
    assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"));
    let r = node.post(
        "/v1/actions",
        "application/json",
        body.as_bytes(),
        Some("not-the-token"),
    );
    assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"));
    // Oversized body.
    let big = vec![b' '; custody_node::api::MAX_HTTP_BODY + 10];
    let r = node.post("/v1/events", "application/octet-stream", &big, Some(&token));
    assert_eq!((r.status, code(&r).as_str()), (413, "too-large"));
    // Garbage event bytes.
    let r = node.post(
        "/v1/events",
        "application/octet-stream",
        b"garbage",
        Some(&token),
    );
    assert_eq!((r.status, code(&r).as_str()), (422, "inadmissible"));
    // Unknown parcel, malformed id, unknown endpoint.
    let unknown = "ab".repeat(32);
    let r = node.get(&format!("/v1/parcels/{unknown}"));
    assert_eq!((r.status, code(&r).as_str()), (404, "not-found"));
    let r = node.get("/v1/parcels/xyz");
    assert_eq!((r.status, code(&r).as_str()), (400, "bad-request"));
    let r = node.get("/v1/nothing");
    assert_eq!(r.status, 404);
    let r = node.get("/v1/feeds/mine-bw?limit=0");
    assert_eq!(r.status, 400);
    // An action on an unknown parcel, and one the rules refuse: dispatching what the member does not hold.
    let r = node.act(&json!({ "kind": "dispatch", "parcel": unknown, "to": "sorter-bw" }));
    assert_eq!((r.status, code(&r).as_str()), (404, "unknown-parcel"));
    let reg = node.act_ok(&register("jwaneng", 50));
    let parcel = registered_parcel(&reg);
    node.act_ok(&json!({ "kind": "dispatch", "parcel": parcel, "to": "sorter-bw" }));
    let r = node.act(&json!({ "kind": "dispatch", "parcel": parcel, "to": "exporter-bw" }));
    assert_eq!(
        (r.status, code(&r).as_str()),
        (422, "refused"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or("")
        .contains("not-custodian"));
    let r = node.act(&register("marange", 5));
    assert_eq!((r.status, code(&r).as_str()), (422, "refused"));
    // The node carries on: the refused actions took no feed slot, and it still signs.
    let next = node.act_ok(&register("orapa", 9));
    assert_eq!(node.get_json(&format!("/v1/events/{next}"))["seq"], 3);
    assert_eq!(node.status()["events"], 3);
}
