//! Crash loop: SIGKILL at random points while actions and raw events stream in; after every restart each acknowledged event is there and the store's chain check passed.
//!
//! CI runs `CRASH_CYCLES_CI` cycles; `CUSTODY_CRASH_CYCLES=1000 cargo test -p
//! custody-tests --test crash_loop` runs the long form (figures in docs/benchmarks.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custody_tests::{node_binary, NodeSpec, TestNode};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Flag, FlagCode, FlagTarget};
use ledger_core::writer::FeedWriter;
use rand::{Rng, SeedableRng};

/// Cycles in CI.
const CRASH_CYCLES_CI: u64 = 20;
/// Longest a cycle streams before the kill.
const MAX_RUN: Duration = Duration::from_millis(300);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Posts `body` to `path`; the event id if the node acknowledged it (200 with an `event`).
fn post(
    agent: &ureq::Agent,
    node: &(String, String),
    path: &str,
    ct: &str,
    body: &[u8],
) -> Option<String> {
    let mut r = agent
        .post(&format!("http://{}{path}", node.0))
        .header("authorization", &format!("Bearer {}", node.1))
        .header("content-type", ct)
        .send(body)
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let v: serde_json::Value = r.body_mut().read_json().ok()?;
    v["event"].as_str().map(str::to_owned)
}

/// Raw events of another member's feed, signed here and posted to `/v1/events`. An event whose
/// answer was lost in a crash is posted again first, so the feed never skips a seq.
struct Raw {
    writer: FeedWriter,
    unacked: Option<Vec<u8>>,
    n: u64,
}

impl Raw {
    fn next(&mut self) -> Vec<u8> {
        if let Some(b) = &self.unacked {
            return b.clone();
        }
        self.n += 1;
        let body = Body::Flag(Flag {
            target: FlagTarget::Member("mine-bw".parse().expect("slug")),
            code: FlagCode::Other,
            text: format!("raw {}", self.n),
        });
        let bytes = self.writer.append(body, 1_780_000_000_000 + self.n).bytes;
        self.unacked = Some(bytes.clone());
        bytes
    }
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_event() {
    let cycles: u64 = std::env::var("CUSTODY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CRASH_CYCLES_CI);
    let seed: u64 = std::env::var("CUSTODY_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash loop: {cycles} cycles, seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("monitor".into()),
        bootstrap: vec![],
        sync_secs: 1,
        ..NodeSpec::default()
    };
    let mut node = TestNode::start(&node_binary!(), &dir.path().join("n"), &spec);
    let acked = Mutex::new(Vec::<String>::new());
    let mut raw = Raw {
        writer: DevNetwork::standard().writer("mine-bw").expect("member"),
        unacked: None,
        n: 0,
    };
    let started = Instant::now();
    for cycle in 0..cycles {
        let run = Duration::from_micros(rng.gen_range(1_000..MAX_RUN.as_micros() as u64));
        let target = (node.http.clone(), node.token.clone());
        let stop = AtomicBool::new(false);
        let before = acked.lock().expect("lock").len();
        std::thread::scope(|s| {
            s.spawn(|| {
                let agent = agent();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = serde_json::json!({ "kind": "flag", "target": { "member": "mine-zw" },
                        "code": "other", "text": format!("cycle {cycle} action {i}") });
                    match post(&agent, &target, "/v1/actions", "application/json", body.to_string().as_bytes()) {
                        Some(id) => acked.lock().expect("lock").push(id),
                        None => return,
                    }
                }
            });
            s.spawn(|| {
                let agent = agent();
                while !stop.load(Ordering::Relaxed) {
                    let bytes = raw.next();
                    match post(
                        &agent,
                        &target,
                        "/v1/events",
                        "application/octet-stream",
                        &bytes,
                    ) {
                        Some(id) => {
                            raw.unacked = None;
                            acked.lock().expect("lock").push(id);
                        }
                        None => return,
                    }
                }
            });
            std::thread::sleep(run);
            node.kill();
            stop.store(true, Ordering::Relaxed);
        });
        node.restart();
        let acked = acked.lock().expect("lock");
        for id in &acked[before..] {
            assert!(
                node.has_event(id),
                "cycle {cycle} (seed {seed}): acknowledged {id} lost"
            );
        }
        let stored = node.status()["events"].as_u64().expect("count");
        assert!(
            stored >= acked.len() as u64,
            "cycle {cycle}: {stored} stored < {} acked",
            acked.len()
        );
        assert_eq!(
            node.status()["forks"],
            0,
            "cycle {cycle}: the node forked a feed"
        );
    }
    let acked = acked.into_inner().expect("lock");
    for id in &acked {
        assert!(node.has_event(id), "acknowledged {id} lost");
    }
    eprintln!(
        "crash loop: {cycles} cycles, {} acknowledged events, all present, in {:.1} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
