//! A hostile peer on the sync protocol: it claims a huge head and answers with events whose signatures fail, and answers requests by id with events nobody asked for.

use std::time::Duration;

use custody_node::sync::SyncRequest;
use custody_tests::attack::{forged_answer, forged_page, forging_sync_peer};
use custody_tests::{node_binary, NodeSpec, TestNode};
use futures::StreamExt;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};

const DEADLINE: Duration = Duration::from_secs(60);

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
            ..NodeSpec::default()
        };
        TestNode::start(&node_binary!(), &dir.path().join("n"), &spec)
    });
    let addr: Multiaddr = node.p2p_addr().expect("addr").parse().expect("multiaddr");
    let mut swarm = forging_sync_peer();
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
            match request {
                SyncRequest::Heads => heads_asked += 1,
                SyncRequest::Feed { .. } | SyncRequest::OffSlot { .. } => pages_asked += 1,
                SyncRequest::Events { .. } => by_id_asked += 1,
            }
            let answer = forged_answer(&request, &page);
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
