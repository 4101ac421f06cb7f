//! Replay: verify and apply a set of events given in any order, or an export stream, and report on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::admission::{self, AdmissionError, VerifiedEvent};
use crate::bytes::{Digest, EventId, NetworkId};
use crate::crypto::KeyCache;
use crate::export::{ExportError, Record};
use crate::governance::{network_id, GenesisError, Governance};
use crate::ledger::{Fork, Knowledge, Ledger, Limits, Processed, ProvenSlots, Step};
use crate::rules::Verdict;
use crate::types::Genesis;

/// Events verified together (and so held in memory at once) during replay.
pub const REPLAY_CHUNK: usize = 8192;
/// Default pending bounds during replay: a log may arrive in any order, so they are larger than a node's.
pub const REPLAY_LIMITS: Limits = Limits {
    max_pending_events: 1 << 20,
    max_pending_bytes: 512 * 1024 * 1024,
    max_pending_per_author: 1 << 20,
    max_pending_bytes_per_author: 512 * 1024 * 1024,
};

/// How signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureCheck {
    /// `verify_batch` in batches on all cores (a failing batch is re-checked one by one with `verify_strict`).
    Batch,
    /// `verify_strict` on every signature, on all cores.
    Strict,
}

/// Replay settings.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    pub signatures: SignatureCheck,
    pub limits: Limits,
    /// How many events the input holds, if known (at most [`MAX_EXPECTED_EVENTS`] is used): the
    /// ledger's tables are sized once instead of doubling, which spares the copy of the old
    /// table that doubling holds for a moment.
    pub expected_events: usize,
}

/// The most events a replay sizes its tables for in advance.
pub const MAX_EXPECTED_EVENTS: usize = 64 * 1024 * 1024;

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            signatures: SignatureCheck::Batch,
            limits: REPLAY_LIMITS,
            expected_events: 0,
        }
    }
}

/// The first event that failed an integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Position of the record in the input (0-based).
    pub index: u64,
    /// Byte offset of the record in an export stream, when read from one.
    pub offset: Option<u64>,
    /// The event id, when the bytes decoded far enough to have one.
    pub event: Option<EventId>,
    /// Stable reason name (`bad-signature`, `truncated`, `missing-dependency`, ...).
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Records read.
    pub events: u64,
    /// Distinct events stored.
    pub stored: u64,
    /// Records that repeated an event already seen.
    pub duplicates: u64,
    /// Authors with at least one stored event.
    pub authors: u64,
    pub applied: u64,
    /// Void events by reason name.
    pub void: BTreeMap<String, u64>,
    pub forks: Vec<Fork>,
    /// Records refused at admission, by reason name (including events whose dependencies never came).
    pub admission_failures: BTreeMap<String, u64>,
    /// The first record that failed, in input order.
    pub first_failure: Option<Failure>,
    /// The stream could not be read to its end.
    pub stream_error: Option<String>,
    /// Digest of the resulting state (verdicts, parcels, feeds, forks): equal digests, equal states.
    pub state_root: Digest,
}

impl Report {
    /// True when every record was admitted, every dependency was found and the stream was whole.
    pub fn intact(&self) -> bool {
        self.admission_failures.is_empty() && self.stream_error.is_none()
    }
}

/// The state and report of a replay.
#[derive(Debug)]
pub struct Replayed {
    pub ledger: Ledger,
    pub report: Report,
}

/// A fault that stops a replay (as opposed to a bad event, which is reported).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error("cannot open the event source: {0}")]
    Source(String),
}

struct Pass {
    ledger: Ledger,
    duplicates: u64,
    failures: BTreeMap<String, u64>,
    first_failure: Option<Failure>,
    stream_error: Option<String>,
    records: u64,
    /// Where each pending event came from, to locate it if it never resolves or fails later.
    positions: HashMap<EventId, (u64, Option<u64>)>,
    recompute: bool,
}

impl Pass {
    fn new(
        genesis: &Genesis,
        known: &Knowledge,
        options: ReplayOptions,
    ) -> Result<Pass, ReplayError> {
        let mut ledger = Ledger::with_knowledge(
            genesis.clone(),
            options.limits,
            &known.forks,
            known.governance.as_ref(),
        )?;
        ledger.set_replay_mode();
        ledger.reserve(options.expected_events.min(MAX_EXPECTED_EVENTS));
        Ok(Pass {
            ledger,
            duplicates: 0,
            failures: BTreeMap::new(),
            first_failure: None,
            stream_error: None,
            records: 0,
            positions: HashMap::new(),
            recompute: false,
        })
    }

    fn fail(
        &mut self,
        at: (u64, Option<u64>),
        event: Option<EventId>,
        reason: &str,
        detail: String,
    ) {
        *self.failures.entry(reason.to_owned()).or_default() += 1;
        let candidate = Failure {
            index: at.0,
            offset: at.1,
            event,
            reason: reason.to_owned(),
            detail,
        };
        if self
            .first_failure
            .as_ref()
            .is_none_or(|f| candidate.index < f.index)
        {
            self.first_failure = Some(candidate);
        }
    }

    fn apply(&mut self, chunk: VerifiedChunk, offsets: bool) {
        self.records += chunk.results.len() as u64;
        let refused = chunk.refused_ids;
        for (i, ((index, offset), result)) in
            chunk.positions.into_iter().zip(chunk.results).enumerate()
        {
            let at = (index, offsets.then_some(offset));
            match result {
                Err(e) => self.fail(at, refused.get(&i).copied(), e.reason(), e.to_string()),
                Ok(ev) => self.offer(ev, at),
            }
        }
        if let Some(e) = chunk.stream_error {
            let (reason, at) = match &e {
                ExportError::Oversized { index, offset, .. } => {
                    ("oversized", (*index, Some(*offset)))
                }
                ExportError::Truncated { index, offset } => ("truncated", (*index, Some(*offset))),
                ExportError::Io(_) => ("io", (self.records, None)),
            };
            self.stream_error = Some(e.to_string());
            self.fail(at, None, reason, e.to_string());
        }
    }

    fn offer(&mut self, ev: VerifiedEvent, at: (u64, Option<u64>)) {
        let id = *ev.id();
        match self.ledger.offer(ev) {
            Err(full) => self.fail(at, Some(id), "pending-full", full.to_string()),
            Ok(processed) => {
                for (i, p) in processed.into_iter().enumerate() {
                    let pos = if i == 0 {
                        at
                    } else {
                        self.positions.get(p.event.id()).copied().unwrap_or(at)
                    };
                    self.outcome(p, pos);
                }
            }
        }
    }

    fn outcome(&mut self, p: Processed, at: (u64, Option<u64>)) {
        let id = *p.event.id();
        match p.outcome {
            Err(e) => {
                self.positions.remove(&id);
                self.fail(at, Some(id), e.reason(), e.to_string());
            }
            Ok(Step::Duplicate) => self.duplicates += 1,
            Ok(Step::Pending(_)) => {
                self.positions.entry(id).or_insert(at);
            }
            Ok(Step::Stored { recompute, .. }) => {
                self.positions.remove(&id);
                self.recompute |= recompute;
            }
        }
    }

    fn finish(mut self) -> Replayed {
        for (id, missing) in self.ledger.pending_report() {
            let at = self.positions.get(&id).copied().unwrap_or((u64::MAX, None));
            self.fail(
                at,
                Some(id),
                "missing-dependency",
                format!(
                    "waits for {}, which the log does not hold",
                    missing
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let ledger = self.ledger;
        let mut report = Report {
            events: self.records,
            duplicates: self.duplicates,
            admission_failures: self.failures,
            first_failure: self.first_failure,
            stream_error: self.stream_error,
            ..Report::default()
        };
        for meta in ledger.events().values() {
            report.stored += 1;
            match meta.verdict {
                Verdict::Applied => report.applied += 1,
                Verdict::Void(r) => *report.void.entry(r.name().to_owned()).or_default() += 1,
            }
        }
        report.authors = ledger
            .feeds()
            .values()
            .filter(|f| !f.ids.is_empty())
            .count() as u64;
        report.forks = ledger.forks().cloned().collect();
        report.state_root = ledger.state_root();
        Replayed { ledger, report }
    }
}

/// A piece of records after admission, with where each came from.
struct VerifiedChunk {
    positions: Vec<(u64, u64)>,
    results: Vec<Result<VerifiedEvent, AdmissionError>>,
    /// For each refused record whose bytes decode: the id its payload gives (a record whose
    /// signature alone is broken still names its event).
    refused_ids: HashMap<usize, EventId>,
    /// The stream broke after these records.
    stream_error: Option<ExportError>,
}

fn verify_piece(
    records: Vec<Record>,
    network: &NetworkId,
    keys: &KeyCache,
    check: SignatureCheck,
) -> VerifiedChunk {
    let (positions, bytes): (Vec<(u64, u64)>, Vec<Vec<u8>>) = records
        .into_iter()
        .map(|r| ((r.index, r.offset), r.bytes))
        .unzip();
    let results = match check {
        SignatureCheck::Batch => admission::verify_events_local(&bytes, network, keys),
        SignatureCheck::Strict => bytes
            .iter()
            .map(|b| admission::verify_event(b, network, keys))
            .collect(),
    };
    let refused_ids = results
        .iter()
        .zip(&bytes)
        .enumerate()
        .filter(|(_, (r, _))| r.is_err())
        .filter_map(|(i, (_, b))| Some((i, *admission::decode_event(b, network).ok()?.id())))
        .collect();
    VerifiedChunk {
        positions,
        results,
        refused_ids,
        stream_error: None,
    }
}

/// The shared state of one pass's workers.
struct Pipeline<I> {
    /// The source, the number of pieces taken from it, and whether it is exhausted.
    source: Mutex<(I, usize, bool)>,
    /// Verified pieces waiting to be applied, by piece number.
    done: Mutex<BTreeMap<usize, VerifiedChunk>>,
    ready: Condvar,
}

impl<I: Iterator<Item = Result<Record, ExportError>>> Pipeline<I> {
    /// Takes the next piece of records from the source: its number, records and any stream error.
    fn take(&self) -> Option<(usize, Vec<Record>, Option<ExportError>)> {
        let mut src = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        if src.2 {
            return None;
        }
        let mut records = Vec::with_capacity(PIECE);
        let mut error = None;
        while records.len() < PIECE {
            match src.0.next() {
                Some(Ok(r)) => records.push(r),
                Some(Err(e)) => {
                    error = Some(e);
                    src.2 = true;
                    break;
                }
                None => {
                    src.2 = true;
                    break;
                }
            }
        }
        let n = src.1;
        src.1 += 1;
        Some((n, records, error))
    }

    fn put(&self, n: usize, chunk: VerifiedChunk) {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(n, chunk);
        self.ready.notify_all();
    }

    fn pieces_taken(&self) -> (usize, bool) {
        let src = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        (src.1, src.2)
    }
}

/// Records verified together as one piece (one `verify_batch` call).
const PIECE: usize = crate::crypto::VERIFY_BATCH;
/// Most verified pieces waiting to be applied (bounds memory).
const MAX_WAITING_PIECES: usize = REPLAY_CHUNK / PIECE;

/// Verifies on every core and applies in input order on the calling thread. The calling thread is
/// one of the workers: when the next piece in order is verified it applies it, otherwise it
/// verifies a piece itself, so there are never more busy threads than cores.
fn run<I>(
    genesis: &Genesis,
    options: ReplayOptions,
    offsets: bool,
    mut open: impl FnMut() -> Result<I, ReplayError>,
) -> Result<Replayed, ReplayError>
where
    I: Iterator<Item = Result<Record, ExportError>> + Send,
{
    let keys = KeyCache::default();
    let network = network_id(genesis);
    let helpers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16)
        - 1;
    let mut known = Knowledge::default();
    loop {
        let mut pass = Pass::new(genesis, &known, options)?;
        let pipeline = Pipeline {
            source: Mutex::new((open()?, 0, false)),
            done: Mutex::new(BTreeMap::new()),
            ready: Condvar::new(),
        };
        let verify = |n: usize, records: Vec<Record>, error: Option<ExportError>| {
            let mut chunk = verify_piece(records, &network, &keys, options.signatures);
            chunk.stream_error = error;
            pipeline.put(n, chunk);
        };
        std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| loop {
                    {
                        // Wait while enough verified pieces are already waiting to be applied.
                        let mut done = pipeline.done.lock().unwrap_or_else(PoisonError::into_inner);
                        while done.len() >= MAX_WAITING_PIECES {
                            done = pipeline
                                .ready
                                .wait(done)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                    match pipeline.take() {
                        Some((n, records, error)) => verify(n, records, error),
                        None => break,
                    }
                });
            }
            let mut next = 0usize;
            loop {
                let ready = pipeline
                    .done
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&next);
                if let Some(chunk) = ready {
                    pipeline.ready.notify_all();
                    pass.apply(chunk, offsets);
                    next += 1;
                    continue;
                }
                if let Some((n, records, error)) = pipeline.take() {
                    verify(n, records, error);
                    continue;
                }
                // Nothing left to take: wait for the helpers' pieces, or stop when all are applied.
                let (taken, exhausted) = pipeline.pieces_taken();
                if exhausted && next >= taken {
                    break;
                }
                let mut done = pipeline.done.lock().unwrap_or_else(PoisonError::into_inner);
                while !done.contains_key(&next) {
                    done = pipeline
                        .ready
                        .wait(done)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        });
        if !pass.recompute {
            return Ok(pass.finish());
        }
        // A fork or a governance record voided events already applied: replay again with every
        // fork and the governance chain known from the start.
        known = known.after(&pass.ledger);
    }
}

/// Replays a set of events given in any order.
pub fn replay_events(
    genesis: &Genesis,
    events: &[Vec<u8>],
    options: ReplayOptions,
) -> Result<Replayed, ReplayError> {
    run(genesis, options, false, || {
        Ok(events.iter().zip(0u64..).map(|(b, index)| {
            Ok(Record {
                index,
                offset: 0,
                bytes: b.clone(),
            })
        }))
    })
}

/// Replays an export stream. `open` is called once per pass (a log with a fork found late is read twice).
pub fn replay_stream<I>(
    genesis: &Genesis,
    options: ReplayOptions,
    open: impl FnMut() -> Result<I, ReplayError>,
) -> Result<Replayed, ReplayError>
where
    I: Iterator<Item = Result<Record, ExportError>> + Send,
{
    run(genesis, options, true, open)
}

/// Feeds already-verified events, in any order, to a fresh ledger with an unbounded pending set
/// (two passes when a fork is found late). Returns the ledger and every outcome in processing order.
pub fn rebuild_ledger(
    genesis: &Genesis,
    known_forks: &[Fork],
    events: impl FnMut() -> Vec<VerifiedEvent>,
) -> Result<(Ledger, Vec<Processed>), GenesisError> {
    let known = Knowledge {
        forks: known_forks.to_vec(),
        governance: None,
    };
    rebuild_with(genesis, known, events)
}

/// [`rebuild_ledger`], starting from what is known already (the governance chain of the same
/// set of events, so that a key cut or an embargo binds from the start and one pass is enough).
pub fn rebuild_with(
    genesis: &Genesis,
    known: Knowledge,
    events: impl FnMut() -> Vec<VerifiedEvent>,
) -> Result<(Ledger, Vec<Processed>), GenesisError> {
    rebuild(genesis, known, None, events)
}

/// [`rebuild_ledger`] for a proof bundle's events: placed by their proofs (`slots`), not by
/// their feeds' prefixes; `chain` is the governance of `genesis` (made once, the genesis checked
/// then).
pub fn rebuild_proven(
    genesis: &Genesis,
    chain: &Governance,
    slots: &ProvenSlots,
    events: impl FnMut() -> Vec<VerifiedEvent>,
) -> Result<(Ledger, Vec<Processed>), GenesisError> {
    let known = Knowledge {
        forks: Vec::new(),
        governance: Some(chain.clone()),
    };
    rebuild(genesis, known, Some(slots), events)
}

fn rebuild(
    genesis: &Genesis,
    mut known: Knowledge,
    slots: Option<&ProvenSlots>,
    mut events: impl FnMut() -> Vec<VerifiedEvent>,
) -> Result<(Ledger, Vec<Processed>), GenesisError> {
    let unbounded = Limits {
        max_pending_events: usize::MAX,
        max_pending_bytes: usize::MAX,
        max_pending_per_author: usize::MAX,
        max_pending_bytes_per_author: usize::MAX,
    };
    loop {
        let mut ledger = Ledger::with_knowledge(
            genesis.clone(),
            unbounded,
            &known.forks,
            known.governance.as_ref(),
        )?;
        ledger.set_replay_mode();
        if let Some(slots) = slots {
            ledger.set_proven_slots(slots.clone());
        }
        let mut order = Vec::new();
        let mut recompute = false;
        for ev in events() {
            // The pending set is unbounded here, so `offer` cannot refuse.
            let Ok(processed) = ledger.offer(ev) else {
                continue;
            };
            for p in processed {
                if let Ok(Step::Stored { recompute: r, .. }) = &p.outcome {
                    recompute |= *r;
                }
                order.push(p);
            }
        }
        if !recompute {
            return Ok((ledger, order));
        }
        known = known.after(&ledger);
    }
}
