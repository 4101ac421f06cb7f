//! Feed proofs over HTTP on real nodes: inclusion and consistency proofs verified with ledger-core
//! against the `feed_root` every event signs and the feed head's root, at the author's node and a
//! peer; bad queries get 400 naming the fix, what the node does not hold 404.

use std::time::Duration;

use custody_tests::{node_binary, register, start_network, wait_everywhere, TestNode};
use ledger_core::admission::decode_event;
use ledger_core::bytes::{Digest, EventId};
use ledger_core::dev::DevNetwork;
use ledger_core::feed_tree::{ConsistencyProof, InclusionProof};
use ledger_core::merkle::empty_root;

/// How long an event may take to reach the other node.
const DEADLINE: Duration = Duration::from_secs(30);
/// Events the mine signs.
const EVENTS: u64 = 11;

/// The feed of mine-bw at `node`: each event's id and, by size, the feed's root (size s < n from
/// the `feed_root` signed by event s + 1, size n from the head's entry in `/v1/feeds`).
fn feed(node: &TestNode) -> (Vec<EventId>, Vec<Digest>) {
    let network = DevNetwork::standard().network();
    let page = node.get_json("/v1/feeds/mine-bw?limit=1000");
    let mut ids = Vec::new();
    let mut roots = Vec::new();
    for ev in page["events"].as_array().expect("events") {
        let id: EventId = ev["id"].as_str().expect("id").parse().expect("hex");
        let bytes = node.event_bytes(&id.to_hex());
        let decoded = decode_event(&bytes, &network).expect("decodes");
        roots.push(decoded.header().feed_root);
        ids.push(id);
    }
    let heads = node.get_json("/v1/feeds");
    let head = heads["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .find(|f| f["author"] == "mine-bw")
        .expect("mine-bw's feed");
    assert_eq!(head["seq"], ids.len() as u64);
    roots.push(head["root"].as_str().expect("root").parse().expect("hex"));
    (ids, roots)
}

fn inclusion(node: &TestNode, query: &str) -> InclusionProof {
    let v = node.get_json(&format!("/v1/feeds/mine-bw/inclusion?{query}"));
    serde_json::from_value(v).expect("an inclusion proof")
}

fn consistency(node: &TestNode, query: &str) -> ConsistencyProof {
    let v = node.get_json(&format!("/v1/feeds/mine-bw/consistency?{query}"));
    serde_json::from_value(v).expect("a consistency proof")
}

/// Every event is proved in the feed at every later size, against the roots the feed's own
/// events signed; every two sizes are proved consistent.
fn check_proofs(node: &TestNode, ids: &[EventId], roots: &[Digest]) {
    let n = ids.len() as u64;
    for (seq, id) in (1..).zip(ids) {
        for size in seq..=n {
            let p = inclusion(node, &format!("seq={seq}&size={size}"));
            assert_eq!((p.leaf_index, p.size), (seq - 1, size));
            let root = &roots[size as usize];
            assert!(p.verify(id, size, root), "seq {seq} in {size}");
            // Another event's id does not pass for this one.
            assert!(!p.verify(&ids[(seq as usize) % ids.len()], size, root));
        }
        // Without a size: at the head.
        let head = inclusion(node, &format!("seq={seq}"));
        assert!(
            head.verify(id, n, &roots[n as usize]),
            "seq {seq} at the head"
        );
    }
    for from in 0..=n {
        for to in from..=n {
            let c = consistency(node, &format!("from={from}&to={to}"));
            let (r1, r2) = (&roots[from as usize], &roots[to as usize]);
            assert!(c.verify((from, r1), (to, r2)), "{from} to {to}");
        }
    }
    let c = consistency(node, "from=3");
    assert!(c.verify((3, &roots[3]), (n, &roots[n as usize])));
    assert_eq!(roots[0], empty_root());
}

/// `path` is answered `status` with `code`, and the message contains `hint`.
fn refused(node: &TestNode, path: &str, status: u16, code: &str, hint: &str) {
    let r = node.get(path);
    let v = r.json();
    assert_eq!(
        (r.status, v["code"].as_str()),
        (status, Some(code)),
        "{path}: {v}"
    );
    let message = v["message"].as_str().expect("message");
    assert!(
        message.contains(hint),
        "{path}: {message:?} should say {hint:?}"
    );
}

#[test]
fn proofs_from_either_node_verify_against_the_signed_feed_roots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_network(&node_binary!(), dir.path(), &["mine-bw", "monitor"], 1);
    let mut last = String::new();
    for i in 0..EVENTS {
        last = nodes[0].act_ok(&register("jwaneng", 100 + i));
    }
    wait_everywhere(&nodes, &last, DEADLINE);
    let (ids, roots) = feed(&nodes[0]);
    assert_eq!(ids.len() as u64, EVENTS);
    for node in &nodes {
        assert_eq!(feed(node), (ids.clone(), roots.clone()), "same feed");
        check_proofs(node, &ids, &roots);
    }
    let node = &nodes[1];
    let base = "/v1/feeds/mine-bw";
    for (query, hint) in [
        ("inclusion", "seq is required"),
        ("inclusion?seq=abc", "seq"),
        ("inclusion?seq=-1", "seq"),
        ("inclusion?seq=99999999999999999999", "seq"),
        ("inclusion?seq=0", "ask for a seq from 1"),
        ("inclusion?seq=5&size=3", "ask for a seq from 1"),
        ("consistency", "from is required"),
        ("consistency?from=x", "from"),
        ("consistency?from=5&to=3", "the older size comes first"),
    ] {
        refused(node, &format!("{base}/{query}"), 400, "bad-request", hint);
    }
    let beyond = format!("ask for a size up to {EVENTS}");
    let past = EVENTS + 1;
    refused(
        node,
        &format!("{base}/inclusion?seq=1&size={past}"),
        404,
        "not-found",
        &beyond,
    );
    refused(
        node,
        &format!("{base}/inclusion?seq={past}&size={past}"),
        404,
        "not-found",
        &beyond,
    );
    refused(
        node,
        &format!("{base}/consistency?from=1&to={past}"),
        404,
        "not-found",
        &beyond,
    );
    refused(
        node,
        &format!("{base}/consistency?from={past}"),
        400,
        "bad-request",
        "older size",
    );
    for what in ["inclusion?seq=1", "consistency?from=0"] {
        let path = format!("/v1/feeds/nobody/{what}");
        refused(node, &path, 404, "not-found", "no feed for nobody");
        let path = format!("/v1/feeds/Not%20A%20Slug/{what}");
        refused(node, &path, 400, "bad-request", "author");
    }
}
