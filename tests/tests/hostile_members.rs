//! Hostile members and peers against real nodes: a split view signed with a member key, future-governance events from strangers, oversized gossip, and the errors users get.

use std::time::Duration;

use custody_tests::attack::{flag, gossip_attacker, publish_all};
use custody_tests::{node_binary, wait_for, Gossip, NodeSpec, TestNode};
use futures::StreamExt;
use ledger_core::crypto::SecretKey;
use ledger_core::dev::DevNetwork;
use ledger_core::writer::{sign, Signed};
use libp2p::{Multiaddr, PeerId, Swarm};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);
const T0: u64 = 1_780_000_000_000;

fn spec(member: &str, bootstrap: Vec<String>) -> NodeSpec {
    NodeSpec {
        member: Some(member.to_owned()),
        bootstrap,
        sync_secs: 1,
        ..NodeSpec::default()
    }
}

/// Three events of the monitor's feed, each branch with its own texts.
fn branch(name: &str) -> Vec<Signed> {
    let mut w = DevNetwork::standard().writer("monitor").expect("member");
    (0..3)
        .map(|i| w.append(flag(&format!("{name} {i}")), T0 + i))
        .collect()
}

fn submit_all(node: &TestNode, events: &[Signed]) {
    for e in events {
        let r = node.submit(&e.bytes);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// Attack: a member (its key stolen, or the member itself) shows one branch of its feed to one
/// group of nodes and another branch, at the same seqs, to another group. Before the fix, sync
/// asked for a feed only when the peer's head seq was higher, so the two groups kept different
/// state roots forever once connected.
#[test]
fn a_split_view_signed_with_a_member_key_heals_into_one_proven_fork() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let a0 = TestNode::start(&bin, &dir.path().join("a0"), &spec("mine-bw", vec![]));
    let a1 = TestNode::start(
        &bin,
        &dir.path().join("a1"),
        &spec("sorter-bw", vec![a0.p2p_addr().expect("addr")]),
    );
    let b0 = TestNode::start(&bin, &dir.path().join("b0"), &spec("exporter-bw", vec![]));
    let b1 = TestNode::start(
        &bin,
        &dir.path().join("b1"),
        &spec("authority-bw", vec![b0.p2p_addr().expect("addr")]),
    );
    // Side A sees two branches (x first), side B a third.
    let (x, w, y) = (branch("x"), branch("w"), branch("y"));
    submit_all(&a0, &x);
    submit_all(&a0, &w);
    submit_all(&b0, &y);
    wait_for("each side to hold its branches", DEADLINE, || {
        (a1.has_event(&x[2].id.to_hex())
            && a1.has_event(&w[2].id.to_hex())
            && b1.has_event(&y[2].id.to_hex()))
        .then_some(())
    });
    assert!(!a1.has_event(&y[0].id.to_hex()) && !b1.has_event(&x[0].id.to_hex()));
    let addr = b1.p2p_addr().expect("addr");
    let r = a1.post(
        "/v1/peers",
        "application/json",
        json!({ "addr": addr }).to_string().as_bytes(),
        Some(&a1.token),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let all = [&a0, &a1, &b0, &b1];
    for n in all {
        for e in x.iter().chain(&w).chain(&y) {
            wait_for("every node to hold every branch", DEADLINE, || {
                n.has_event(&e.id.to_hex()).then_some(())
            });
        }
        // Three events at each of seqs 1, 2 and 3: a fork proven at each.
        wait_for("the forks to be proven", DEADLINE, || {
            (n.status()["forks"] == 3).then_some(())
        });
        let ev = n.get_json(&format!("/v1/events/{}", x[0].id));
        assert_eq!(ev["reason"], "author-forked");
    }
    let root = a0.state_root();
    for n in all {
        assert_eq!(n.state_root(), root, "one state at {}", n.http);
    }
}

/// Attack: a stranger gossips well-signed events that cite a governance version no node knows
/// yet. Before the fix they were parked in the pending set (and written to disk) before
/// membership was checked, never woken and never penalised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_governance_events_from_strangers_are_refused_and_penalised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stranger = SecretKey::from_bytes(&[66; 32]);
    let template = DevNetwork::standard()
        .writer("mine-zw")
        .expect("member")
        .next_header(T0);
    let events: Vec<Vec<u8>> = (0..40u64)
        .map(|i| {
            let mut h = template.clone();
            h.author = format!("smuggler-{i}").parse().expect("slug");
            h.key = stranger.public();
            h.gov = 1_000 + i;
            sign(h, flag("future"), &stranger).bytes
        })
        .collect();
    let target = sent_until_banned(dir.path(), events).await;
    assert_eq!(target.status()["pending"], 0, "nothing parked");
    assert_eq!(target.status()["events"], 0);
}

/// Starts a node, gossips `messages` at it from a peer of its own until the node bans that peer
/// (within the deadline), and returns the node.
async fn sent_until_banned(dir: &std::path::Path, messages: Vec<Vec<u8>>) -> TestNode {
    let target = tokio::task::block_in_place(|| {
        TestNode::start(&node_binary!(), &dir.join("t"), &spec("mine-bw", vec![]))
    });
    let mut peer = attacker(&target).await;
    let id = *peer.local_peer_id();
    send(&mut peer, messages).await;
    let driver = tokio::spawn(async move {
        loop {
            peer.select_next_some().await;
        }
    });
    tokio::task::block_in_place(|| {
        wait_for("the sending peer to be banned", DEADLINE, || {
            banned(&target, &id).then_some(())
        });
    });
    driver.abort();
    target
}

/// Attack: gossip messages larger than an event. Before the fix they silently closed the
/// sender's gossip stream (cutting it off one way) and counted no fault; now each is refused
/// and counted, and repeated ones get the peer banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_gossip_is_counted_as_the_senders_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big: Vec<Vec<u8>> = (0..12u8)
        .map(|i| vec![i; ledger_core::codec::MAX_EVENT_BYTES + 5_000])
        .collect();
    let target = sent_until_banned(dir.path(), big).await;
    assert!(target.metric("custody_gossip_messages_total{result=\"reject\"}") >= 10.0);
}

/// `POST /v1/peers` to a port where nothing listens: 502, as docs/api.md promises (it said 200).
#[test]
fn dialling_a_closed_port_answers_502() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = TestNode::start(
        &node_binary!(),
        &dir.path().join("n"),
        &spec("mine-bw", vec![]),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let r = node.post(
        "/v1/peers",
        "application/json",
        json!({ "addr": format!("/ip4/127.0.0.1/tcp/{port}") })
            .to_string()
            .as_bytes(),
        Some(&node.token),
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "dial-failed");
}

/// Events released from the pending set are counted in `custody_ingested_total` (they were not).
#[test]
fn events_released_from_the_pending_set_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = TestNode::start(
        &node_binary!(),
        &dir.path().join("n"),
        &spec("mine-bw", vec![]),
    );
    let feed = branch("z");
    for e in feed.iter().rev() {
        let r = node.submit(&e.bytes);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(node.status()["events"], 3);
    assert_eq!(
        node.metric("custody_ingested_total{outcome=\"applied\"}"),
        3.0
    );
}

fn banned(node: &TestNode, peer: &PeerId) -> bool {
    node.status()["banned"]
        .as_array()
        .is_some_and(|b| b.iter().any(|p| p.as_str() == Some(&peer.to_string())))
}

async fn attacker(target: &TestNode) -> Swarm<Gossip> {
    let addr: Multiaddr = target.p2p_addr().expect("addr").parse().expect("multiaddr");
    let id: PeerId = target.status()["peer_id"]
        .as_str()
        .expect("peer id")
        .parse()
        .expect("peer id");
    gossip_attacker(addr, id).await
}

/// Publishes until the target bans the sender; at least 10 must go out.
async fn send(swarm: &mut Swarm<Gossip>, messages: Vec<Vec<u8>>) {
    let sent = publish_all(swarm, messages).await;
    assert!(sent >= 10, "only {sent} messages went out");
}

/// Attack: unauthenticated clients ask for `/v1/state` in a loop while the member acts. Before
/// the fix every request hashed the whole state under the store lock, holding up the writer;
/// now the root is computed at most once per commit, and the actions go through.
#[test]
fn a_flood_of_state_requests_hashes_the_state_at_most_once_per_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = TestNode::start(
        &node_binary!(),
        &dir.path().join("n"),
        &spec("mine-bw", vec![]),
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let actions = 30;
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 10_000 {
                    assert_eq!(node.get("/v1/state").status, 200);
                    n += 1;
                }
            });
        }
        for i in 0..actions {
            node.act_ok(&custody_tests::register("jwaneng", 100 + i));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let computed = node.metric("custody_state_root_computations_total");
    assert!(computed >= 1.0);
    assert!(
        computed <= (actions + 1) as f64,
        "{computed} computations for {actions} commits"
    );
    assert_eq!(node.status()["events"], actions);
}

/// Attack: one address opens many libp2p connections, each with a fresh identity, to take every
/// slot. Before the fix inbound and outbound shared one cap and nothing limited an address: the
/// node could no longer reach anyone. Now the address gets its share of inbound slots only, and
/// the node still dials out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let limits = [("max_inbound", 8), ("max_outbound", 4), ("max_per_ip", 4)];
    let (target, honest) = tokio::task::block_in_place(|| {
        let t = TestNode::start_with_limits(
            &bin,
            &dir.path().join("t"),
            &spec("mine-bw", vec![]),
            &limits,
        );
        let h = TestNode::start(&bin, &dir.path().join("h"), &spec("monitor", vec![]));
        (t, h)
    });
    let addr: Multiaddr = target.p2p_addr().expect("addr").parse().expect("multiaddr");
    let mut swarms = Vec::new();
    for _ in 0..20 {
        let mut s = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("transport")
            .with_behaviour(|_| libp2p::swarm::dummy::Behaviour)
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        s.dial(addr.clone()).expect("dial");
        swarms.push(s);
    }
    let driver = tokio::spawn(async move {
        let mut all = futures::stream::select_all(swarms.iter_mut().map(|s| s.by_ref()));
        while all.next().await.is_some() {}
    });
    tokio::task::block_in_place(|| {
        let peers = |n: &TestNode| n.status()["peers"].as_array().map_or(0, Vec::len);
        wait_for("the flood to take what it can", DEADLINE, || {
            (peers(&target) >= 4).then_some(())
        });
        assert!(
            peers(&target) <= 4,
            "{} peers from one address",
            peers(&target)
        );
        // The node still reaches an honest peer, and their states meet.
        let r = target.post(
            "/v1/peers",
            "application/json",
            json!({ "addr": honest.p2p_addr().expect("addr") })
                .to_string()
                .as_bytes(),
            Some(&target.token),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let id = honest.act_ok(&json!({ "kind": "flag", "target": { "member": "mine-zw" }, "code": "other", "text": "t" }));
        wait_for("the honest event at the target", DEADLINE, || {
            target.has_event(&id).then_some(())
        });
    });
    driver.abort();
}
