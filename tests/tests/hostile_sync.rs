//! A hostile peer on the sync protocol: it claims a huge head and answers with events whose signatures fail, and answers requests by id with events nobody asked for.

use std::time::Duration;

use custody_node::sync::{Head, SyncCodec, SyncRequest, SyncResponse, SYNC_PROTOCOL};
use custody_tests::{node_binary, NodeSpec, TestNode};
use futures::StreamExt;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};

const DEADLINE: Duration = Duration::from_secs(60);

fn register(i: u64) -> Body {
    Body::Register(Register {
        site: "marange".parse().expect("site"),
        carats: 10 + i,
        stones: 1,
        value_cents: None,
        seal: String::new(),
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

/// A page of mine-zw's feed with every signature broken (the bytes still decode).
fn forged_page(n: u64) -> Vec<Vec<u8>> {
    let mut w = DevNetwork::standard().writer("mine-zw").expect("member");
    (0..n)
        .map(|i| {
            let mut e = w.append(register(i), 1_780_000_000_000 + i).bytes;
            let last = e.len() - 1;
            e[last] ^= 0x55;
            e
        })
        .collect()
}

/// Attack: claim a head far ahead and answer every page with bad signatures. Before the fix the
/// node ignored refusals in sync answers and paged on while `received == limit`: endless
/// `verify_strict` work for the price of one lie, and no penalty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_answering_sync_with_forged_events_is_banned_and_cannot_drive_endless_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = tokio::task::block_in_place(|| {
        let spec = NodeSpec {
            member: Some("mine-bw".into()),
            bootstrap: vec![],
            sync_secs: 1,
        };
        TestNode::start(&node_binary!(), &dir.path().join("n"), &spec)
    });
    let addr: Multiaddr = node.p2p_addr().expect("addr").parse().expect("multiaddr");
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
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
        .build();
    let me: PeerId = *swarm.local_peer_id();
    swarm.dial(addr).expect("dial");
    let page = forged_page(256);
    let (mut heads_asked, mut pages_asked, mut by_id_asked) = (0u32, 0u32, 0u32);
    let is_banned = || {
        tokio::task::block_in_place(|| {
            node.status()["banned"]
                .as_array()
                .is_some_and(|b| b.iter().any(|p| p.as_str() == Some(&me.to_string())))
        })
    };
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    let run = async {
        loop {
            let event = tokio::select! {
                e = swarm.select_next_some() => e,
                _ = poll.tick() => {
                    if is_banned() {
                        break;
                    }
                    continue;
                }
            };
            let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = event
            else {
                continue;
            };
            let answer = match request {
                SyncRequest::Heads => {
                    heads_asked += 1;
                    SyncResponse::Heads {
                        heads: vec![Head {
                            author: "mine-zw".parse().expect("slug"),
                            seq: 1_000_000,
                            id: ledger_core::bytes::Digest([7; 32]),
                        }],
                        forks: vec![],
                    }
                }
                SyncRequest::Feed { .. } => {
                    pages_asked += 1;
                    SyncResponse::Events(page.clone())
                }
                SyncRequest::Events { .. } => {
                    by_id_asked += 1;
                    SyncResponse::Events(page[..4].to_vec())
                }
            };
            let _ = swarm.behaviour_mut().send_response(channel, answer);
        }
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the forging peer is banned within the deadline");
    // One page per heads answer at most: a refused page stops the paging at once.
    assert!(heads_asked >= 1);
    assert!(
        pages_asked <= heads_asked,
        "{pages_asked} pages for {heads_asked} heads answers"
    );
    assert_eq!(by_id_asked, 0);
    tokio::task::block_in_place(|| {
        assert_eq!(node.status()["events"], 0);
        assert_eq!(node.status()["pending"], 0);
    });
}
