//! Network benchmark: propagation latency across five nodes, gossip ingest rate at one node, and a node's peak RSS at 100,000 events.
//!
//! Run: `cargo bench -p custody-tests --bench network` (add `-- --quick` for a smaller run).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_tests::{
    gossip_peer, node_binary, register, start_network, wait_for, Gossip, NodeSpec, TestNode,
};
use futures::StreamExt;
use ledger_core::bytes::Digest;
use ledger_core::crypto::{event_message, verifying_key, SecretKey};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use libp2p::gossipsub::{self};
use libp2p::{Multiaddr, PeerId, Swarm};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn strict_1core() -> f64 {
    let key = SecretKey::from_bytes(&[5; 32]);
    let vk = verifying_key(&key.public()).expect("key");
    let net = Digest([1; 32]);
    let msgs: Vec<Vec<u8>> = (0..8000u32)
        .map(|i| [i.to_le_bytes().to_vec(), vec![7u8; 280]].concat())
        .collect();
    let sigs: Vec<_> = msgs
        .iter()
        .map(|m| ed25519_dalek::Signature::from_bytes(&key.sign_event(&net, m).0))
        .collect();
    let full: Vec<Vec<u8>> = msgs.iter().map(|m| event_message(&net, m)).collect();
    let mut rates = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for (m, s) in full.iter().zip(&sigs) {
            std::hint::black_box(vk.verify_strict(m, s).is_ok());
        }
        rates.push(msgs.len() as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    rates[1]
}

fn spec(member: Option<&str>, bootstrap: Vec<String>) -> NodeSpec {
    NodeSpec {
        member: member.map(str::to_owned),
        bootstrap,
        sync_secs: 2,
        ..NodeSpec::default()
    }
}

/// Polls a node's stored-event count every `every` until `stop`, calling `seen` with each reading.
fn poll_events(
    node: &TestNode,
    every: Duration,
    stop: Arc<AtomicBool>,
    mut seen: impl FnMut(u64) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let url = format!("http://{}/v1/status", node.http);
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(mut r) = agent.get(&url).call() {
                if let Ok(v) = r.body_mut().read_json::<serde_json::Value>() {
                    seen(v["events"].as_u64().unwrap_or(0));
                }
            }
            std::thread::sleep(every);
        }
    })
}

/// When each event count was first seen, shared with the watcher thread.
type Sightings = Arc<Mutex<Vec<(u64, Instant)>>>;

/// Records when each event count was first seen at `node`, polling every millisecond.
fn watch(node: &TestNode, stop: Arc<AtomicBool>) -> (std::thread::JoinHandle<()>, Sightings) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handle = poll_events(node, Duration::from_millis(1), stop, move |n| {
        let mut log = log.lock().expect("lock");
        if log.last().is_none_or(|(last, _)| n > *last) {
            log.push((n, Instant::now()));
        }
    });
    (handle, seen)
}

fn propagation(quick: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let members = [
        "mine-bw",
        "sorter-bw",
        "exporter-bw",
        "authority-bw",
        "monitor",
    ];
    let nodes = start_network(&node_binary!(), dir.path(), &members, 2);
    // Let the gossip mesh form (heartbeats every 500 ms).
    std::thread::sleep(Duration::from_secs(3));
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = nodes[1..].iter().map(|n| watch(n, stop.clone())).collect();
    let rate = 200.0;
    let count = if quick { 400 } else { 2000 };
    let start = Instant::now();
    let mut submitted = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        nodes[0].act_ok(&register("jwaneng", 100 + i as u64));
        submitted.push(t);
    }
    let achieved = count as f64 / start.elapsed().as_secs_f64();
    wait_for("all events everywhere", Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.status()["events"].as_u64() == Some(count as u64))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Vec<(u64, Instant)>> = watchers
        .into_iter()
        .map(|(w, seen)| {
            w.join().expect("watcher");
            std::mem::take(&mut *seen.lock().expect("lock"))
        })
        .collect();
    let mut latencies: Vec<f64> = (1..=count as u64)
        .map(|k| {
            let last = seen
                .iter()
                .map(|s| {
                    s.iter()
                        .find(|(n, _)| *n >= k)
                        .map(|(_, t)| *t)
                        .expect("seen")
                })
                .max()
                .expect("nodes");
            last.duration_since(submitted[k as usize - 1]).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "propagation  5 nodes, {count} actions at {achieved:.0}/s: submit to stored at the last node  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (targets p50 < 50, p99 < 250)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
}

async fn publisher(
    addr: Multiaddr,
    target: PeerId,
    topic: &gossipsub::IdentTopic,
) -> Swarm<Gossip> {
    // Configured as every node is (an interoperating implementation does the same).
    let config = custody_node::net::gossip_config().expect("config");
    gossip_peer(addr, target, topic, config).await
}

/// Signed registrations of four mines' feeds, interleaved.
fn events(n: usize) -> Vec<Vec<u8>> {
    let dev = DevNetwork::standard();
    let mut writers = [
        ("mine-bw", "jwaneng"),
        ("mine-zw", "marange"),
        ("mine-bw", "orapa"),
    ]
    .iter()
    .take(2)
    .map(|(m, s)| (dev.writer(m).expect("member"), *s))
    .collect::<Vec<_>>();
    (0..n)
        .map(|i| {
            let (w, site) = &mut writers[i % 2];
            let body = Body::Register(Register {
                site: site.parse().expect("site"),
                carats: 100 + i as u64,
                stones: 1,
                value_cents: Some(1000),
                seal: format!("S{i}"),
                extracted_on: "2026-01-01".parse().expect("date"),
            });
            w.append(body, 1_780_000_000_000 + i as u64).bytes
        })
        .collect()
}

/// Publishes `events` to `node` over gossip, keeping at most `window` unstored; returns events/s.
fn gossip_into(node: &TestNode, events: Vec<Vec<u8>>, window: u64) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let topic = custody_node::net::topic(&DevNetwork::standard().network());
    let addr: Multiaddr = node.p2p_addr().expect("addr").parse().expect("multiaddr");
    let target: PeerId = node.status()["peer_id"]
        .as_str()
        .expect("peer")
        .parse()
        .expect("peer");
    let base = node.status()["events"].as_u64().unwrap_or(0);
    let total = events.len() as u64;
    let stored = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stored = stored.clone();
        poll_events(node, Duration::from_millis(2), stop.clone(), move |n| {
            stored.store(n.saturating_sub(base), Ordering::Relaxed)
        })
    };
    let elapsed = runtime.block_on(async {
        let mut swarm = publisher(addr, target, &topic).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        let mut sent = 0u64;
        let mut queue = events.into_iter();
        let (mut last, mut progress) = (0, Instant::now());
        while stored.load(Ordering::Relaxed) < total {
            let now = stored.load(Ordering::Relaxed);
            if now > last {
                (last, progress) = (now, Instant::now());
            }
            assert!(
                progress.elapsed() < Duration::from_secs(30),
                "ingest stalled at {now} of {total}"
            );
            while sent < total && sent < stored.load(Ordering::Relaxed) + window {
                if let Some(e) = queue.next() {
                    let _ = swarm.behaviour_mut().publish(topic.clone(), e);
                    sent += 1;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(1), swarm.select_next_some()).await;
        }
        start.elapsed()
    });
    stop.store(true, Ordering::Relaxed);
    let _ = poller.join();
    total as f64 / elapsed.as_secs_f64()
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    println!(
        "custody network benchmark ({} cores{})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if quick { ", quick" } else { "" }
    );
    if run("propagation") {
        propagation(quick);
    }
    if run("ingest") {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = TestNode::start(
            &node_binary!(),
            &dir.path().join("sink"),
            &spec(None, vec![]),
        );
        let n = if quick { 5_000 } else { 20_000 };
        let evs = events(n);
        let reference = strict_1core();
        let cpu_before = cpu_seconds(node.pid());
        let per_s = gossip_into(&node, evs, 2048);
        let node_cpu = cpu_seconds(node.pid()) - cpu_before;
        let after = strict_1core();
        let reference = (reference + after) / 2.0;
        println!(
            "ingest       {n} events over gossip into one node: {per_s:.0} events/s, ratio {:.3} to verify_strict 1 core ({reference:.0}/s), target >= 0.7",
            per_s / reference
        );
        println!(
            "ingest       the node used {:.0} us of CPU per event (one signature check per event: the event's own; gossip carries none); the publisher shares the 2 cores",
            node_cpu / n as f64 * 1e6
        );
    }
    if run("rss") {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node = TestNode::start(
            &node_binary!(),
            &dir.path().join("big"),
            &spec(None, vec![]),
        );
        let n = if quick { 20_000 } else { 100_000 };
        let per_s = gossip_into(&node, events(n), 1024);
        let peak = peak_rss_kib(node.pid());
        println!(
            "rss          node holding {n} events (loaded at {per_s:.0}/s): peak RSS {:.1} MiB, now {:.1} MiB (target < 150 MiB)",
            peak as f64 / 1024.0,
            node.rss_kib() as f64 / 1024.0
        );
        node.terminate();
        let t = Instant::now();
        node.restart();
        let opened = t.elapsed();
        println!(
            "rss          the same node restarted (store opened, {n} events replayed from disk in {opened:.1?}): peak RSS {:.1} MiB",
            peak_rss_kib(node.pid()) as f64 / 1024.0
        );
    }
}
