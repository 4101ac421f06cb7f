//! Node metrics, rendered in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (seconds) of the ingest latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Counters and gauges of one node; cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_applied: AtomicU64,
    pub events_void: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_pending: AtomicU64,
    pub events_refused: AtomicU64,
    pub gossip_accepted: AtomicU64,
    pub gossip_rejected: AtomicU64,
    pub gossip_ignored: AtomicU64,
    pub sync_events_received: AtomicU64,
    pub peers_connected: AtomicU64,
    pub peers_banned: AtomicU64,
    pub actions_signed: AtomicU64,
    pub actions_refused: AtomicU64,
    pub checkpoints_cosigned: AtomicU64,
    pub checkpoints_refused: AtomicU64,
    pub state_roots: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one ingest latency (from receipt to durable).
    pub fn observe_ingest(&self, seconds: f64) {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    /// The Prometheus text exposition, with the ledger gauges given by the caller.
    pub fn render(
        &self,
        stored: u64,
        pending: usize,
        feeds: usize,
        parcels: usize,
        forks: usize,
    ) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let get = |a: &AtomicU64| a.load(Relaxed);
        line(
            "custody_events_stored",
            "gauge",
            "Events in the local log.",
            &[("", stored)],
        );
        line(
            "custody_events_pending",
            "gauge",
            "Events waiting for a dependency.",
            &[("", pending as u64)],
        );
        line(
            "custody_feeds",
            "gauge",
            "Feeds with at least one event.",
            &[("", feeds as u64)],
        );
        line(
            "custody_parcels",
            "gauge",
            "Parcels known.",
            &[("", parcels as u64)],
        );
        line(
            "custody_forks",
            "gauge",
            "Proven forks.",
            &[("", forks as u64)],
        );
        line(
            "custody_ingested_total",
            "counter",
            "Events handed to the store, by outcome.",
            &[
                ("{outcome=\"applied\"}", get(&self.events_applied)),
                ("{outcome=\"void\"}", get(&self.events_void)),
                ("{outcome=\"duplicate\"}", get(&self.events_duplicate)),
                ("{outcome=\"pending\"}", get(&self.events_pending)),
                ("{outcome=\"refused\"}", get(&self.events_refused)),
            ],
        );
        line(
            "custody_gossip_messages_total",
            "counter",
            "Gossip messages, by validation result.",
            &[
                ("{result=\"accept\"}", get(&self.gossip_accepted)),
                ("{result=\"reject\"}", get(&self.gossip_rejected)),
                ("{result=\"ignore\"}", get(&self.gossip_ignored)),
            ],
        );
        line(
            "custody_sync_events_total",
            "counter",
            "Events received by sync.",
            &[("", get(&self.sync_events_received))],
        );
        line(
            "custody_peers",
            "gauge",
            "Connected peers.",
            &[("", get(&self.peers_connected))],
        );
        line(
            "custody_peers_banned_total",
            "counter",
            "Peers banned for invalid messages.",
            &[("", get(&self.peers_banned))],
        );
        line(
            "custody_state_root_computations_total",
            "counter",
            "Times the whole state was hashed for /v1/state (at most once per commit).",
            &[("", get(&self.state_roots))],
        );
        line(
            "custody_actions_total",
            "counter",
            "Actions signed for the member, by result.",
            &[
                ("{result=\"signed\"}", get(&self.actions_signed)),
                ("{result=\"refused\"}", get(&self.actions_refused)),
            ],
        );
        line(
            "custody_checkpoints_total",
            "counter",
            "Checkpoints of this node's replica: cosigned, or refused by the witness check (a view that does not extend the last one cosigned).",
            &[
                ("{result=\"cosigned\"}", get(&self.checkpoints_cosigned)),
                ("{result=\"refused\"}", get(&self.checkpoints_refused)),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP custody_ingest_latency_seconds Time from receipt to durable.\n# TYPE custody_ingest_latency_seconds histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "custody_ingest_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "custody_ingest_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "custody_ingest_latency_seconds_sum {}",
            get(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "custody_ingest_latency_seconds_count {count}");
        out
    }
}
