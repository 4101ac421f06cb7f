//! A hostile libp2p peer: garbage, oversized messages, bad signatures, non-members and duplicate floods.

use std::time::Duration;

use custody_tests::{gossip_peer, node_binary, register, wait_for, Gossip, NodeSpec, TestNode};
use futures::StreamExt;
use ledger_core::crypto::SecretKey;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use ledger_core::writer::sign;
use libp2p::gossipsub::{self, IdentTopic, MessageId, ValidationMode};
use libp2p::{Multiaddr, PeerId, Swarm};

const DEADLINE: Duration = Duration::from_secs(60);

fn register_body(i: u64) -> Body {
    Body::Register(Register {
        site: "jwaneng".parse().expect("site"),
        carats: 10 + i,
        stones: 1,
        value_cents: None,
        seal: String::new(),
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

/// Invalid events: garbage, broken signatures, and well-signed events by keys no member has.
fn poison() -> Vec<Vec<u8>> {
    let dev = DevNetwork::standard();
    let mut out = Vec::new();
    for i in 0..5u8 {
        out.push(vec![i; 100 + i as usize]);
    }
    let mut w = dev.writer("mine-zw").expect("member");
    for i in 0..5 {
        let mut e = w.append(register_body(i), 1_780_000_000_000 + i).bytes;
        let n = e.len();
        e[n - 5] ^= 0x10;
        out.push(e);
    }
    let stranger = SecretKey::from_bytes(&[66; 32]);
    for (i, author) in ["mine-zw", "smuggler"].iter().enumerate() {
        let mut h = dev
            .writer("mine-zw")
            .expect("member")
            .next_header(1_780_000_000_000);
        h.author = author.parse().expect("slug");
        h.key = stranger.public();
        out.push(sign(h, register_body(100 + i as u64), &stranger).bytes);
    }
    out
}

fn rand_id() -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes().to_vec()
}

/// A raw libp2p peer on the network's topic: no validation, a large transmit size, and message
/// ids of its own so that it can repeat itself. Returns once `target` has subscribed.
async fn hostile_peer(addr: Multiaddr, target: PeerId, topic: &IdentTopic) -> Swarm<Gossip> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .max_transmit_size(1 << 20)
        .message_id_fn(|_| MessageId::from(rand_id()))
        .build()
        .expect("config");
    gossip_peer(addr, target, topic, config).await
}

/// Publishes each message and drives the swarm a little after each; returns how many went out.
async fn send(swarm: &mut Swarm<Gossip>, topic: &IdentTopic, messages: Vec<Vec<u8>>) -> usize {
    let mut sent = 0;
    for m in messages {
        if swarm.behaviour_mut().publish(topic.clone(), m).is_ok() {
            sent += 1;
        }
        let _ = tokio::time::timeout(Duration::from_millis(2), swarm.select_next_some()).await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_is_refused_penalised_and_does_not_disturb_honest_peers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let (target, honest) = tokio::task::block_in_place(|| {
        let spec = NodeSpec {
            member: Some("mine-bw".into()),
            bootstrap: vec![],
            sync_secs: 1,
            ..NodeSpec::default()
        };
        let target = TestNode::start(&bin, &dir.path().join("target"), &spec);
        let spec = NodeSpec {
            member: Some("monitor".into()),
            bootstrap: vec![target.p2p_addr().expect("addr")],
            sync_secs: 1,
            ..NodeSpec::default()
        };
        let honest = TestNode::start(&bin, &dir.path().join("honest"), &spec);
        (target, honest)
    });
    let topic = custody_node::net::topic(&DevNetwork::standard().network());
    let addr: Multiaddr = target.p2p_addr().expect("addr").parse().expect("multiaddr");
    let target_id: PeerId = target.status()["peer_id"]
        .as_str()
        .expect("peer id")
        .parse()
        .expect("peer id");
    let before = target.status()["events"].as_u64().expect("count");

    // An oversized message, from a peer of its own (the target drops the stream it came on).
    let mut big = hostile_peer(addr.clone(), target_id, &topic).await;
    assert_eq!(send(&mut big, &topic, vec![vec![7u8; 300_000]]).await, 1);

    // A flood of duplicates of one valid event (kept once), then invalid events until banned.
    let mut hostile = hostile_peer(addr, target_id, &topic).await;
    let hostile_id = *hostile.local_peer_id();
    let valid = DevNetwork::standard()
        .writer("mine-zw")
        .expect("member")
        .append(register_body(999), 1_780_000_000_000)
        .bytes;
    let flood: Vec<Vec<u8>> = std::iter::repeat_n(valid, 300).collect();
    assert_eq!(send(&mut hostile, &topic, flood).await, 300);
    let sent = send(&mut hostile, &topic, poison()).await;
    assert!(sent >= 10, "the poison went out ({sent} messages)");
    let driver = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hostile.select_next_some() => {}
                _ = big.select_next_some() => {}
            }
        }
    });

    tokio::task::block_in_place(|| {
        // Penalised: banned after repeated invalid messages.
        wait_for("the hostile peer to be banned", DEADLINE, || {
            target.status()["banned"]
                .as_array()?
                .iter()
                .any(|b| b.as_str() == Some(&hostile_id.to_string()))
                .then_some(())
        });
        assert!(target.metric("custody_peers_banned_total") >= 1.0);
        assert!(target.metric("custody_gossip_messages_total{result=\"reject\"}") >= 10.0);
        // Nothing of the poison was stored; the one valid event was, once.
        let after = target.status()["events"].as_u64().expect("count");
        assert_eq!(after, before + 1);
        // Nothing invalid was forwarded: the honest node holds exactly what the target holds.
        wait_for("the honest node to match the target", DEADLINE, || {
            (honest.state_root() == target.state_root()).then_some(())
        });
        assert_eq!(
            honest.metric("custody_gossip_messages_total{result=\"reject\"}"),
            0.0
        );
        // The target keeps serving honest peers.
        let id = target.act_ok(&register("jwaneng", 77));
        wait_for("the honest node to get a new event", DEADLINE, || {
            honest.has_event(&id).then_some(())
        });
        // Memory stayed bounded.
        let rss = target.rss_kib();
        assert!(rss < 200 * 1024, "RSS {rss} KiB");
    });
    driver.abort();
}
