//! Hostile parties for tests and the soak: a gossip peer that sends what admission refuses, and a sync peer that answers with forged events.

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};

use custody_node::sync::{Head, SyncCodec, SyncRequest, SyncResponse, SYNC_PROTOCOL};
use ledger_core::crypto::SecretKey;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Flag, FlagCode, FlagTarget, Register};
use ledger_core::writer::sign;

use crate::{gossip_peer, Gossip};

/// A flag on `mine-zw` with `text`.
pub fn flag(text: &str) -> Body {
    Body::Flag(Flag {
        target: FlagTarget::Member("mine-zw".parse().expect("slug")),
        code: FlagCode::Other,
        text: text.to_owned(),
    })
}

/// A raw gossip peer (configured as nodes are, but it sends anything) connected to the node at
/// `addr` with peer id `target`.
pub async fn gossip_attacker(addr: Multiaddr, target: PeerId) -> Swarm<Gossip> {
    let topic = custody_node::net::topic(&DevNetwork::standard().network());
    let config = libp2p::gossipsub::ConfigBuilder::default()
        .validation_mode(libp2p::gossipsub::ValidationMode::Anonymous)
        .max_transmit_size(1 << 20)
        .message_id_fn(|m| custody_node::net::message_id(&m.data))
        .build()
        .expect("config");
    gossip_peer(addr, target, &topic, config).await
}

/// Publishes messages until the target stops listening (it bans the sender); returns how many
/// went out.
pub async fn publish_all(swarm: &mut Swarm<Gossip>, messages: Vec<Vec<u8>>) -> usize {
    let topic = custody_node::net::topic(&DevNetwork::standard().network());
    let mut sent = 0;
    for m in messages {
        if swarm.behaviour_mut().publish(topic.clone(), m).is_err() {
            break;
        }
        sent += 1;
        let _ = tokio::time::timeout(Duration::from_millis(5), swarm.select_next_some()).await;
    }
    sent
}

/// Everything admission must refuse: garbage, oversized messages, broken signatures, a stranger
/// under a member's name, and strangers citing governance versions no one knows. `salt` makes
/// each call's messages new (gossip drops what it has seen).
pub fn poison(salt: u64) -> Vec<Vec<u8>> {
    let dev = DevNetwork::standard();
    let mut out: Vec<Vec<u8>> = (0..4u8)
        .map(|i| {
            let mut g = vec![i; 100 + i as usize];
            g.extend(salt.to_le_bytes());
            g
        })
        .collect();
    out.push(vec![
        (salt % 251) as u8;
        ledger_core::codec::MAX_EVENT_BYTES + 1_000
    ]);
    let mut w = dev.writer("mine-zw").expect("member");
    for i in 0..4 {
        let mut e = w
            .append(flag(&format!("bad {salt} {i}")), 1_780_000_000_000 + i)
            .bytes;
        let n = e.len();
        e[n - 5] ^= 0x10;
        out.push(e);
    }
    let stranger = SecretKey::from_bytes(&[66; 32]);
    let template = dev
        .writer("mine-zw")
        .expect("member")
        .next_header(1_780_000_000_000);
    for i in 0..4u64 {
        let mut h = template.clone();
        h.author = format!("smuggler-{i}").parse().expect("slug");
        h.key = stranger.public();
        h.gov = 1_000 + salt + i;
        out.push(sign(h, flag(&format!("future {salt}")), &stranger).bytes);
    }
    out
}

/// A page of `mine-zw`'s feed with every signature broken (the bytes still decode).
pub fn forged_page(n: u64) -> Vec<Vec<u8>> {
    let mut w = DevNetwork::standard().writer("mine-zw").expect("member");
    (0..n)
        .map(|i| {
            let body = Body::Register(Register {
                site: "marange".parse().expect("site"),
                carats: 10 + i,
                stones: 1,
                value_cents: None,
                seal: String::new(),
                extracted_on: "2026-01-01".parse().expect("date"),
            });
            let mut e = w.append(body, 1_780_000_000_000 + i).bytes;
            let last = e.len() - 1;
            e[last] ^= 0x55;
            e
        })
        .collect()
}

/// A peer on the sync protocol that claims a head far ahead for `mine-zw` and answers every
/// request with forged events.
pub fn forging_sync_peer() -> Swarm<request_response::Behaviour<SyncCodec>> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                SyncCodec,
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// The forging peer's answer to one request.
pub fn forged_answer(request: &SyncRequest, page: &[Vec<u8>]) -> SyncResponse {
    match request {
        SyncRequest::Heads => SyncResponse::Heads {
            heads: vec![Head {
                author: "mine-zw".parse().expect("slug"),
                seq: 1_000_000,
                id: ledger_core::bytes::Digest([7; 32]),
                off_slot: 0,
            }],
            forks: vec![],
        },
        SyncRequest::Feed { .. } | SyncRequest::OffSlot { .. } => {
            SyncResponse::Events(page.to_vec())
        }
        SyncRequest::Events { .. } => SyncResponse::Events(page[..4.min(page.len())].to_vec()),
    }
}

/// Drives a forging sync peer for `time`, answering every request it gets.
pub async fn run_forging_sync_peer(
    swarm: &mut Swarm<request_response::Behaviour<SyncCodec>>,
    time: Duration,
) {
    let page = forged_page(64);
    let _ = tokio::time::timeout(time, async {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = swarm.select_next_some().await
            {
                let answer = forged_answer(&request, &page);
                let _ = swarm.behaviour_mut().send_response(channel, answer);
            }
        }
    })
    .await;
}
