//! The durable log on sled 0.34: exact event bytes plus derived indexes, committed atomically, fsynced before acknowledgement.
//!
//! One sled tree holds every keyspace under a one-byte prefix, so one event's append and all its
//! index updates go into one `apply_batch`, which sled applies atomically. Keyspaces:
//!
//! | prefix | keyspace        | key                    | value                         | derived? |
//! |--------|-----------------|------------------------|-------------------------------|----------|
//! | `m`    | meta            | name                   | network id, genesis, schema   | no       |
//! | `l`    | log (journal)   | u64 position (BE)      | exact event bytes, in storing order | no |
//! | `q`    | pending         | event id               | exact event bytes             | no       |
//! | `k`    | evidence        | author 0x00 seq (BE)   | `Fork`                        | yes      |
//!
//! Event bytes live once, in the append-only log keyed by position (appends go to the right edge
//! of sled's tree, which is cheap). Each sled insert costs several microseconds, so an event
//! writes one row: its log entry. Verdicts, feeds, parcels and the index from event id to log
//! position are state in memory, recomputed from the log on open and never written (decisions
//! D17, D22). A group commit (one durable
//! point) is written as several batches of at most `SLED_BATCH_EVENTS` events, because sled's
//! memory grows much faster than linearly with the size of one batch; every event lands whole, so
//! a crash between two batches leaves a log prefix that opens like any other.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::admission::{self, AdmissionError, VerifiedEvent};
use crate::bytes::{Digest, EventId, NetworkId};
use crate::checkpoint::{checkpoint_id, FeedHead, MAX_CHECKPOINT_FEEDS};
use crate::codec;
use crate::crypto::KeyCache;
use crate::event::Checkpoint;
use crate::evidence::ForkProof;
use crate::export::write_record;
use crate::feed_tree::{
    feed_consistency, feed_inclusion, ConsistencyProof, FeedProofError, InclusionProof,
};
use crate::governance::{decode_genesis, network_id, GenesisError};
use crate::ledger::{Fork, Knowledge, Ledger, Limits, Missing, PendingFull, Processed, Step};
use crate::replay::rebuild_with;
use crate::rules::Verdict;
use crate::types::{Genesis, MemberId, MAX_SLUG_LEN};
use crate::witness::WitnessState;

/// Version of the on-disk layout.
pub const SCHEMA_VERSION: u32 = 3;
/// How long opening waits for sled's file lock held by a store just dropped in this process.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// sled's page cache (its default is 1 GiB; the ledger state lives in memory already).
pub const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Most events in one sled batch within a group (a group may span several batches).
pub const SLED_BATCH_EVENTS: usize = 64;
/// Log entries read and signature-checked together when a store is opened.
pub const LOAD_CHUNK: usize = 4096;
/// Most events committed in one group (one durable point).
pub const MAX_GROUP: usize = 4096;
/// Free space the store keeps on its filesystem: a write that would leave less is refused with
/// [`StoreError::DiskFull`] before anything changes, in memory or on disk. sled writes a group's
/// bytes again in its log segments and may start a new segment, hence the margin.
pub const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;
/// A group may take this many times its event bytes on disk (sled's log, its page rewrites).
pub const WRITE_AMPLIFICATION: u64 = 4;
/// How long an event may wait in the pending set for what it misses before it is dropped (it
/// comes back by sync if it was worth keeping).
pub const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Most checkpoints a store keeps; the oldest go first.
pub const MAX_KEPT_CHECKPOINTS: usize = 4096;

const META: u8 = b'm';
/// Kept checkpoints with their heads, by (time, id): not derived from the log.
const CHECKPOINTS: u8 = b'c';
/// The time key of each kept checkpoint, by id.
const CHECKPOINT_IDS: u8 = b'i';
const LOG: u8 = b'l';
const PENDING: u8 = b'q';
const EVIDENCE: u8 = b'k';
/// Keyspaces that can be rebuilt from the log (and `pending`) alone.
const DERIVED: [u8; 1] = [EVIDENCE];
/// Keyspaces of schemas 1 and 2 (feed slots, parcel rows, the event index) that schema 3 no
/// longer writes.
const OLD_KEYSPACES: [u8; 3] = [b'f', b'p', b'e'];

/// A raw key-value row of the store.
pub type Row = (Vec<u8>, Vec<u8>);

/// A fault of the store itself (I/O, corruption); not a judgement on an event.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("store at {path} belongs to network {found}, not {expected}")]
    WrongNetwork {
        path: PathBuf,
        expected: NetworkId,
        found: NetworkId,
    },
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error("no custody store at {0} (create one first)")]
    Missing(PathBuf),
    #[error("a write failed earlier and the store could not be reopened from disk yet; it retries at the next write")]
    Poisoned,
    #[error("the disk is full: nothing of this write was kept; free space and the store resumes by itself ({0})")]
    DiskFull(io::Error),
    #[error("group of {0} events is larger than {MAX_GROUP}")]
    GroupTooLarge(usize),
}

impl StoreError {
    /// True for a write that failed because the disk (or the file-size limit) is full.
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::DiskFull(_) => return true,
            StoreError::Io(e) => e,
            StoreError::Sled(sled::Error::Io(e)) => e,
            _ => return false,
        };
        io.kind() == io::ErrorKind::StorageFull
            || io.kind() == io::ErrorKind::QuotaExceeded
            || io.kind() == io::ErrorKind::FileTooLarge
            || matches!(io.raw_os_error(), Some(28 | 27 | 122))
    }

    /// The disk-full case as its own variant, for callers that report it apart.
    fn classified(self) -> StoreError {
        if self.is_disk_full() && !matches!(self, StoreError::DiskFull(_)) {
            let message = self.to_string();
            StoreError::DiskFull(io::Error::new(io::ErrorKind::StorageFull, message))
        } else {
            self
        }
    }
}

/// Why an event was not taken (an expected refusal, not a fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    #[error(transparent)]
    PendingFull(#[from] PendingFull),
}

/// What became of an event handed to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Durable, with this verdict.
    Stored(Verdict),
    /// Already known.
    Duplicate,
    /// Durable in the pending set, waiting for these.
    Pending(Vec<Missing>),
}

/// The outcome for one event handed to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: EventId,
    pub status: Status,
    /// Pending events that this one unblocked and that are now stored too.
    pub unblocked: Vec<EventId>,
    /// A fork this event proved.
    pub fork: Option<Fork>,
}

/// How far a commit goes before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// sled `flush()` and then `fdatasync` of sled's data file and new blob files: survives power loss.
    Fsync,
    /// sled `flush()` only: survives a process crash, not necessarily power loss (benchmarks compare).
    FlushOnly,
}

/// The open sled instance: dropped whole and opened again after a failed write.
#[derive(Debug)]
struct Disk {
    db: sled::Db,
    log: sled::Tree,
    data_file: File,
}

/// The durable custody log of one node.
///
/// The in-memory state never runs ahead of disk for a reader: a commit that fails (a full disk,
/// an I/O error) is rolled back by reopening the store from disk before the store is used again,
/// so what a failed write changed in memory is gone (DESIGN.md section 8).
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// `None` only after a failed write whose reopening failed too (retried at the next write).
    disk: Option<Disk>,
    synced_blobs: HashSet<std::ffi::OsString>,
    ledger: Ledger,
    keys: KeyCache,
    log_next: u64,
    /// Where each stored event's bytes are in the log.
    positions: HashMap<EventId, u64>,
    durability: Durability,
    limits: Limits,
    /// Free space kept on the filesystem ([`MIN_FREE_BYTES`] unless set).
    min_free: u64,
    /// When each pending event was first seen waiting (since this store was opened).
    pending_since: HashMap<EventId, std::time::Instant>,
    /// How many checkpoints are kept (counted once, when the first is kept after opening).
    kept_checkpoints: Option<usize>,
    /// The parcel index of the newest checkpoint kept with one (memory only: rebuilt on demand).
    parcel_index: Option<(Digest, std::sync::Arc<crate::parcel_index::ParcelIndex>)>,
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn slot_key(prefix: u8, author: &MemberId, seq: u64) -> Vec<u8> {
    key(
        prefix,
        &[author.as_str().as_bytes(), &[0], &seq.to_be_bytes()],
    )
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

impl Store {
    /// Creates a store for the network of `genesis` at `path`, or opens the one there (which must
    /// belong to the same network).
    pub fn open_or_create(
        path: &Path,
        genesis: &Genesis,
        limits: Limits,
    ) -> Result<Store, StoreError> {
        let db = open_sled(path)?;
        let log = db.open_tree("log")?;
        let network = network_id(genesis);
        match log.get(key(META, &[b"network"]))? {
            Some(found) => {
                let found = Digest(
                    found
                        .as_ref()
                        .try_into()
                        .map_err(|_| corrupt("meta network is not 32 bytes"))?,
                );
                if found != network {
                    return Err(StoreError::WrongNetwork {
                        path: path.to_owned(),
                        expected: network,
                        found,
                    });
                }
            }
            None => {
                let mut b = sled::Batch::default();
                b.insert(key(META, &[b"network"]), network.as_bytes().to_vec());
                b.insert(key(META, &[b"genesis"]), codec::encode(genesis));
                b.insert(
                    key(META, &[b"schema"]),
                    SCHEMA_VERSION.to_le_bytes().to_vec(),
                );
                log.apply_batch(b)?;
                db.flush()?;
                File::open(path.join("db"))?.sync_all()?;
                File::open(path)?.sync_all()?;
            }
        }
        Store::from_db(path, db, log, limits)
    }

    /// Opens an existing store, checks every stored chain and rebuilds the in-memory state from it.
    pub fn open(path: &Path, limits: Limits) -> Result<Store, StoreError> {
        if !path.join("db").exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let db = open_sled(path)?;
        let log = db.open_tree("log")?;
        Store::from_db(path, db, log, limits)
    }

    fn from_db(
        path: &Path,
        db: sled::Db,
        log: sled::Tree,
        limits: Limits,
    ) -> Result<Store, StoreError> {
        let genesis_bytes = log
            .get(key(META, &[b"genesis"]))?
            .ok_or_else(|| StoreError::Missing(path.to_owned()))?;
        let genesis = decode_genesis(&genesis_bytes)?;
        let schema = log
            .get(key(META, &[b"schema"]))?
            .ok_or_else(|| corrupt("no schema version"))?;
        if schema.as_ref() == 1u32.to_le_bytes() || schema.as_ref() == 2u32.to_le_bytes() {
            migrate_to_schema_3(&db, &log)?;
        } else if schema.as_ref() != SCHEMA_VERSION.to_le_bytes() {
            return Err(corrupt(format!(
                "schema {:?} is not {SCHEMA_VERSION}",
                schema.as_ref()
            )));
        }
        let data_file = File::open(path.join("db"))?;
        let forks = read_forks(&log)?;
        let ledger = Ledger::with_known_forks(genesis, limits, &forks)?;
        let mut store = Store {
            path: path.to_owned(),
            disk: Some(Disk { db, log, data_file }),
            synced_blobs: HashSet::new(),
            ledger,
            keys: KeyCache::default(),
            log_next: 0,
            positions: HashMap::new(),
            durability: Durability::Fsync,
            limits,
            min_free: MIN_FREE_BYTES,
            pending_since: HashMap::new(),
            kept_checkpoints: None,
            parcel_index: None,
        };
        store.load()?;
        if store.ledger.needs_recompute() {
            // A governance record in the log reaches events before it (a key cut, a
            // suspension, an embargo): rebuild with the chain known from the start.
            store.rebuild()?;
        }
        Ok(store)
    }

    /// Sets how far commits go before they are acknowledged.
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// The directory of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The in-memory state, always equal to the durable one.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The log position of a stored event.
    pub fn position(&self, id: &EventId) -> Option<u64> {
        self.positions.get(id).copied()
    }

    /// Number of stored events (log entries).
    pub fn len(&self) -> u64 {
        self.log_next
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.log_next == 0
    }

    /// Replays the log into the in-memory ledger: every entry's signature (batch verification),
    /// id, links and order are checked again, and the verdicts, feeds, parcels and the position
    /// index are recomputed. Anything that does not check out is corruption.
    fn load(&mut self) -> Result<(), StoreError> {
        let network = *self.ledger.network();
        let mut log_len = 0u64;
        let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(LOAD_CHUNK);
        let mut entries = self.tree()?.scan_prefix([LOG]);
        loop {
            // Read a chunk of the log, then check all its signatures at once (batch verification
            // on all cores): the log holds no other copy of an event to catch a changed byte with.
            chunk.clear();
            let first = log_len;
            for item in entries.by_ref().take(LOAD_CHUNK) {
                let (k, bytes) = item?;
                let pos = log_position(&k)?;
                if pos != log_len {
                    return Err(corrupt(format!(
                        "log skips from position {log_len} to {pos}"
                    )));
                }
                log_len += 1;
                chunk.push(bytes.to_vec());
            }
            if chunk.is_empty() {
                break;
            }
            let verified = admission::verify_events(&chunk, &network, &self.keys);
            for (pos, ev) in (first..).zip(verified) {
                let ev = ev.map_err(|e| corrupt(format!("log position {pos}: {e}")))?;
                self.load_one(ev, pos)?;
            }
        }
        self.log_next = log_len;
        let pending: Vec<sled::IVec> = self
            .tree()?
            .scan_prefix([PENDING])
            .values()
            .collect::<Result<_, _>>()?;
        for bytes in pending {
            let ev = admission::from_store(&bytes, &network)
                .map_err(|e| corrupt(format!("pending event: {e}")))?;
            self.ledger.offer(ev).map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(())
    }

    /// Applies one logged event during [`Store::load`]: it must be stored at once, in log order.
    fn load_one(&mut self, ev: VerifiedEvent, pos: u64) -> Result<(), StoreError> {
        let processed = self.ledger.offer(ev).map_err(|e| corrupt(e.to_string()))?;
        for p in processed {
            let pid = *p.event.id();
            match p.outcome {
                Ok(Step::Stored { .. }) => {
                    if self.positions.insert(pid, pos).is_some() {
                        return Err(corrupt(format!("event {pid} is logged twice")));
                    }
                }
                Ok(other) => {
                    return Err(corrupt(format!(
                        "logged event {pid} did not apply in log order: {other:?}"
                    )))
                }
                Err(e) => {
                    return Err(corrupt(format!(
                        "logged event {pid} fails its chain check: {e}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Admits (`verify_strict`), judges and durably stores one event; returns after it is durable.
    pub fn append(&mut self, bytes: &[u8]) -> Result<Result<Outcome, Refusal>, StoreError> {
        let ev = match admission::verify_event(bytes, self.ledger.network(), &self.keys) {
            Ok(ev) => ev,
            Err(e) => return Ok(Err(e.into())),
        };
        let out = self.append_verified(vec![Ok(ev)])?;
        // `append_verified` gives exactly one result per input.
        #[allow(clippy::expect_used)]
        Ok(out.into_iter().next().expect("one result per input"))
    }

    /// Group commit: admits (`verify_strict` on all cores), judges and stores up to [`MAX_GROUP`]
    /// events with one durable point; returns one result per input, in order, after that point.
    pub fn append_batch(
        &mut self,
        events: &[Vec<u8>],
    ) -> Result<Vec<Result<Outcome, Refusal>>, StoreError> {
        if events.len() > MAX_GROUP {
            return Err(StoreError::GroupTooLarge(events.len()));
        }
        let verified = admission::verify_events_strict(events, self.ledger.network(), &self.keys);
        self.append_verified(verified)
    }

    /// Sustained group-commit ingest: while one group commits here, the next is decoded and
    /// verified (`verify_strict`) on worker threads. `on_group` gets each group's results, in
    /// input order, once that group is durable.
    pub fn ingest<G>(
        &mut self,
        groups: G,
        mut on_group: impl FnMut(Vec<Result<Outcome, Refusal>>),
    ) -> Result<(), StoreError>
    where
        G: Iterator<Item = Vec<Vec<u8>>> + Send,
    {
        let network = *self.ledger.network();
        let keys = KeyCache::default();
        std::thread::scope(|scope| {
            // One verified group waits while another commits: memory stays bounded.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let keys = &keys;
            scope.spawn(move || {
                for group in groups {
                    if group.len() > MAX_GROUP {
                        let _ = tx.send(Err(StoreError::GroupTooLarge(group.len())));
                        return;
                    }
                    if tx
                        .send(Ok(admission::verify_events_strict(&group, &network, keys)))
                        .is_err()
                    {
                        return;
                    }
                }
            });
            for verified in rx {
                on_group(self.append_verified(verified?)?);
            }
            Ok(())
        })
    }

    /// Judges and stores events already admitted (for callers that verify outside a lock);
    /// one durable point for all of them.
    pub fn append_verified(
        &mut self,
        events: Vec<Result<VerifiedEvent, AdmissionError>>,
    ) -> Result<Vec<Result<Outcome, Refusal>>, StoreError> {
        if events.len() > MAX_GROUP {
            return Err(StoreError::GroupTooLarge(events.len()));
        }
        self.recover_if_needed()?;
        let bytes: u64 = events
            .iter()
            .flatten()
            .map(|ev| ev.bytes().len() as u64)
            .sum();
        self.ensure_room(bytes)?;
        let mut results = Vec::with_capacity(events.len());
        let mut stored: Vec<(VerifiedEvent, Option<Fork>)> = Vec::new();
        let mut newly_pending: Vec<VerifiedEvent> = Vec::new();
        let mut left_pending: Vec<EventId> = Vec::new();
        let mut recompute = false;
        for ev in events {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    results.push(Err(Refusal::Admission(e)));
                    continue;
                }
            };
            let processed = match self.ledger.offer(ev) {
                Ok(p) => p,
                Err(full) => {
                    results.push(Err(Refusal::PendingFull(full)));
                    continue;
                }
            };
            let mut outcome: Option<Result<Outcome, Refusal>> = None;
            for (
                i,
                Processed {
                    event,
                    outcome: step,
                },
            ) in processed.into_iter().enumerate()
            {
                let id = *event.id();
                if i > 0 {
                    left_pending.push(id);
                }
                let status = match step {
                    Ok(Step::Stored {
                        verdict,
                        fork,
                        recompute: r,
                    }) => {
                        recompute |= r;
                        stored.push((event, fork.clone()));
                        if i > 0 {
                            if let Some(Ok(o)) = outcome.as_mut() {
                                o.unblocked.push(id);
                            }
                        }
                        Ok((Status::Stored(verdict), fork))
                    }
                    Ok(Step::Duplicate) => Ok((Status::Duplicate, None)),
                    Ok(Step::Pending(missing)) => {
                        if i == 0 {
                            newly_pending.push(event);
                        }
                        Ok((Status::Pending(missing), None))
                    }
                    Err(e) => Err(Refusal::Admission(e)),
                };
                if i == 0 {
                    outcome = Some(status.map(|(status, fork)| Outcome {
                        id,
                        status,
                        unblocked: Vec::new(),
                        fork,
                    }));
                }
            }
            if let Some(o) = outcome {
                results.push(o);
            }
        }
        let batch = if recompute {
            let batch = match self.recompute_batch(&stored, &newly_pending, &left_pending) {
                Ok(b) => vec![b],
                Err(e) => return Err(self.roll_back(e)),
            };
            // The recomputed state may void events of this very group: report their final verdicts.
            for o in results.iter_mut().flatten() {
                if let (Status::Stored(v), Some(meta)) = (&mut o.status, self.ledger.event(&o.id)) {
                    *v = meta.verdict;
                }
            }
            batch
        } else {
            self.incremental_batches(&stored, &newly_pending, &left_pending)
        };
        self.commit(batch)?;
        Ok(results)
    }

    /// Applies the batches in order, then makes them durable (one durable point for all). On
    /// failure, memory is rolled back to what is on disk.
    fn commit(&mut self, batches: Vec<sled::Batch>) -> Result<(), StoreError> {
        let res = batches
            .into_iter()
            .try_for_each(|b| self.tree()?.apply_batch(b).map_err(StoreError::from))
            .and_then(|()| self.durable());
        res.map_err(|e| self.roll_back(e))
    }

    /// Makes everything applied so far durable.
    fn durable(&mut self) -> Result<(), StoreError> {
        let disk = self.disk.as_ref().ok_or(StoreError::Poisoned)?;
        disk.db.flush()?;
        if self.durability == Durability::Fsync {
            disk.data_file.sync_data()?;
            self.sync_new_blobs()?;
        }
        Ok(())
    }

    /// Drops the events that have waited in the pending set for `ttl` or longer (counted from
    /// when this store first saw them waiting), durably first; returns how many.
    pub fn expire_pending(&mut self, ttl: std::time::Duration) -> Result<usize, StoreError> {
        self.recover_if_needed()?;
        let now = std::time::Instant::now();
        let waiting: HashSet<EventId> = self.ledger.pending().map(|ev| *ev.id()).collect();
        self.pending_since.retain(|id, _| waiting.contains(id));
        for id in waiting {
            self.pending_since.entry(id).or_insert(now);
        }
        let old: Vec<EventId> = self
            .pending_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= ttl)
            .map(|(id, _)| *id)
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let mut b = sled::Batch::default();
        for id in &old {
            b.remove(key(PENDING, &[id.as_bytes()]));
        }
        self.commit(vec![b])?;
        for id in &old {
            self.ledger.drop_pending(id);
            self.pending_since.remove(id);
        }
        Ok(old.len())
    }

    /// Sets the free space kept on the filesystem (tests set 0 to reach a real `ENOSPC`).
    pub fn set_min_free(&mut self, bytes: u64) {
        self.min_free = bytes;
    }

    /// Refuses a write of `bytes` event bytes that would leave less than the kept free space,
    /// before anything changes.
    fn ensure_room(&self, bytes: u64) -> Result<(), StoreError> {
        if self.min_free == 0 {
            return Ok(());
        }
        let fs = rustix::fs::statvfs(&self.path).map_err(io::Error::from)?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        let needed = self
            .min_free
            .saturating_add(bytes.saturating_mul(WRITE_AMPLIFICATION));
        if free < needed {
            return Err(StoreError::DiskFull(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("{free} bytes free on the store's filesystem, {needed} needed"),
            )));
        }
        Ok(())
    }

    /// The sled tree, unless a failed write left the store closed.
    fn tree(&self) -> Result<&sled::Tree, StoreError> {
        self.disk
            .as_ref()
            .map(|d| &d.log)
            .ok_or(StoreError::Poisoned)
    }

    /// True when the store is open and its memory equals its disk; false after a failed write
    /// that could not be rolled back yet (reads then show an empty ledger, never lost writes).
    pub fn is_healthy(&self) -> bool {
        self.disk.is_some()
    }

    /// A write failed: what it changed in memory (and in sled's cache) may not be on disk. Drop
    /// the sled instance and open the store again from disk, so that memory equals disk; if that
    /// fails too, keep nothing in memory and retry at the next write. Returns `error`.
    fn roll_back(&mut self, error: StoreError) -> StoreError {
        self.disk = None;
        // A failed reopen leaves the store closed and empty; the next write retries it.
        let _ = self.recover_if_needed();
        error.classified()
    }

    /// Reopens the store from disk if a failed write closed it; the state in memory is replaced
    /// by the durable one.
    pub fn recover_if_needed(&mut self) -> Result<(), StoreError> {
        if self.disk.is_some() {
            return Ok(());
        }
        // Until the reopen succeeds, nothing that might not be on disk stays in memory.
        let genesis = self.ledger.genesis().clone();
        self.ledger = Ledger::new(genesis, self.limits)?;
        self.positions.clear();
        self.log_next = 0;
        let (durability, min_free) = (self.durability, self.min_free);
        *self = Store::open(&self.path, self.limits)?;
        self.durability = durability;
        self.min_free = min_free;
        Ok(())
    }

    /// sled writes oversized pages to files under `blobs/` without syncing them.
    fn sync_new_blobs(&mut self) -> Result<(), StoreError> {
        let dir = self.path.join("blobs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !self.synced_blobs.contains(&name) {
                if let Ok(f) = File::open(dir.join(&name)) {
                    f.sync_all()?;
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&dir)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }

    /// Appends a stored event to the log (in batch `b`) and indexes its position in memory.
    fn log_event(&mut self, b: &mut sled::Batch, ev: &VerifiedEvent) {
        let pos = self.log_next;
        b.insert(key(LOG, &[&pos.to_be_bytes()]), ev.bytes().as_ref());
        self.positions.insert(*ev.id(), pos);
        self.log_next += 1;
    }

    /// The rows of a group, as several sled batches of at most [`SLED_BATCH_EVENTS`] events
    /// each (sled's memory grows much faster than linearly with the size of one batch). Every
    /// event's rows, including the removal of its pending copy, are in one batch, so each event
    /// lands whole and the log stays a prefix of the group if a crash comes between two batches.
    fn incremental_batches(
        &mut self,
        stored: &[(VerifiedEvent, Option<Fork>)],
        newly_pending: &[VerifiedEvent],
        left_pending: &[EventId],
    ) -> Vec<sled::Batch> {
        let was_pending: HashSet<&EventId> = left_pending.iter().collect();
        let stored_ids: HashSet<&EventId> = stored.iter().map(|(ev, _)| ev.id()).collect();
        let mut first = sled::Batch::default();
        for id in left_pending.iter().filter(|id| !stored_ids.contains(id)) {
            first.remove(key(PENDING, &[id.as_bytes()]));
        }
        for ev in newly_pending {
            first.insert(key(PENDING, &[ev.id().as_bytes()]), ev.bytes().as_ref());
        }
        let mut batches = vec![first];
        for chunk in stored.chunks(SLED_BATCH_EVENTS) {
            let mut b = sled::Batch::default();
            for (ev, fork) in chunk {
                self.log_event(&mut b, ev);
                if was_pending.contains(ev.id()) {
                    b.remove(key(PENDING, &[ev.id().as_bytes()]));
                }
                if let Some(f) = fork {
                    b.insert(slot_key(EVIDENCE, &f.author, f.seq), codec::encode(f));
                }
            }
            batches.push(b);
        }
        batches
    }

    /// A fork voided events already applied: recompute the whole state with the fork known and
    /// rewrite every derived keyspace in the same atomic batch as the new events.
    fn recompute_batch(
        &mut self,
        stored: &[(VerifiedEvent, Option<Fork>)],
        newly_pending: &[VerifiedEvent],
        left_pending: &[EventId],
    ) -> Result<sled::Batch, StoreError> {
        let mut logged = self.logged_events()?;
        let first_new = self.log_next;
        logged.extend(
            stored
                .iter()
                .zip(first_new..)
                .map(|((ev, _), pos)| (pos, ev.clone())),
        );
        // The new events take the next positions; anything the rewrite appends comes after them.
        self.log_next = first_new + stored.len() as u64;
        let pending: Vec<VerifiedEvent> = self.ledger.pending().cloned().collect();
        let mut b = self.rewrite(&logged, pending)?;
        for (pos, ev) in &logged[first_new as usize..] {
            b.insert(key(LOG, &[&pos.to_be_bytes()]), ev.bytes().as_ref());
        }
        for id in left_pending {
            b.remove(key(PENDING, &[id.as_bytes()]));
        }
        for ev in newly_pending {
            if self.ledger.event(ev.id()).is_none() {
                b.insert(key(PENDING, &[ev.id().as_bytes()]), ev.bytes().as_ref());
            }
        }
        Ok(b)
    }

    /// Every event in the log with its position.
    fn logged_events(&self) -> Result<Vec<(u64, VerifiedEvent)>, StoreError> {
        let network = *self.ledger.network();
        let mut out = Vec::with_capacity(self.log_next as usize);
        for item in self.tree()?.scan_prefix([LOG]) {
            let (k, bytes) = item?;
            let pos = log_position(&k)?;
            out.push((
                pos,
                admission::from_store(&bytes, &network).map_err(|e| corrupt(e.to_string()))?,
            ));
        }
        Ok(out)
    }

    /// Recomputes the state from the logged events (in any order) and the pending ones, and returns
    /// a batch that replaces every derived keyspace with it; the in-memory ledger is replaced too.
    fn rewrite(
        &mut self,
        logged: &[(u64, VerifiedEvent)],
        pending: Vec<VerifiedEvent>,
    ) -> Result<sled::Batch, StoreError> {
        let genesis = self.ledger.genesis().clone();
        let positions: std::collections::HashMap<EventId, u64> =
            logged.iter().map(|(p, ev)| (*ev.id(), *p)).collect();
        // The chain the current (stale) ledger ended with is the one of this set of events; its
        // forks may rest on key cuts it learned late, so they are found again.
        let known = Knowledge {
            forks: Vec::new(),
            governance: Some(self.ledger.governance().clone()),
        };
        let (mut rebuilt, order) = rebuild_with(&genesis, known, || {
            logged
                .iter()
                .map(|(_, ev)| ev.clone())
                .chain(pending.iter().cloned())
                .collect()
        })?;
        rebuilt.set_limits(self.limits);
        let mut b = sled::Batch::default();
        for prefix in DERIVED {
            for k in self.tree()?.scan_prefix([prefix]).keys() {
                b.remove(k?);
            }
        }
        self.ledger = rebuilt;
        self.positions.clear();
        for ev in &pending {
            if self.ledger.event(ev.id()).is_some() {
                b.remove(key(PENDING, &[ev.id().as_bytes()]));
            }
        }
        for p in &order {
            if let Ok(Step::Stored { .. }) = p.outcome {
                match positions.get(p.event.id()) {
                    Some(pos) => {
                        self.positions.insert(*p.event.id(), *pos);
                    }
                    // A pending event that the rebuild could store after all: append it to the log.
                    None => self.log_event(&mut b, &p.event),
                }
            }
        }
        for f in self.ledger.forks() {
            b.insert(slot_key(EVIDENCE, &f.author, f.seq), codec::encode(f));
        }
        for ev in self.ledger.pending() {
            b.insert(key(PENDING, &[ev.id().as_bytes()]), ev.bytes().as_ref());
        }
        Ok(b)
    }

    /// Rebuilds every derived keyspace (event index with verdicts, evidence) from the log and the pending events alone, in one atomic, durable batch.
    pub fn rebuild(&mut self) -> Result<(), StoreError> {
        self.recover_if_needed()?;
        let network = *self.ledger.network();
        let logged = self.logged_events()?;
        let mut pending = Vec::new();
        for bytes in self.tree()?.scan_prefix([PENDING]).values() {
            pending.push(
                admission::from_store(&bytes?, &network).map_err(|e| corrupt(e.to_string()))?,
            );
        }
        let batch = self.rewrite(&logged, pending)?;
        self.commit(vec![batch])
    }

    /// The exact bytes of a stored event.
    pub fn event_bytes(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(pos) = self.positions.get(id) else {
            return Ok(None);
        };
        let bytes = self
            .tree()?
            .get(key(LOG, &[&pos.to_be_bytes()]))?
            .ok_or_else(|| corrupt(format!("event {id} indexed at a missing log position")))?;
        Ok(Some(bytes.to_vec()))
    }

    /// The portable proof of a fork this store holds: the exact bytes of both events.
    pub fn fork_proof(&self, fork: &Fork) -> Result<Option<ForkProof>, StoreError> {
        match (
            self.event_bytes(&fork.first)?,
            self.event_bytes(&fork.second)?,
        ) {
            (Some(first), Some(second)) => Ok(Some(ForkProof { first, second })),
            _ => Ok(None),
        }
    }

    /// The inclusion proof of `author`'s event at `seq` in the first `size` events of its feed,
    /// from the feed tree kept in memory (no pass over the feed).
    pub fn inclusion_proof(
        &self,
        author: &MemberId,
        seq: u64,
        size: u64,
    ) -> Result<InclusionProof, FeedProofError> {
        let feed = self
            .ledger
            .feed(author)
            .ok_or_else(|| FeedProofError::UnknownAuthor(author.clone()))?;
        feed_inclusion(author, feed.tree(), seq, size)
    }

    /// The consistency proof between the first `old_size` and the first `new_size` events of
    /// `author`'s feed, from the feed tree kept in memory.
    pub fn consistency_proof(
        &self,
        author: &MemberId,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, FeedProofError> {
        let feed = self
            .ledger
            .feed(author)
            .ok_or_else(|| FeedProofError::UnknownAuthor(author.clone()))?;
        feed_consistency(author, feed.tree(), old_size, new_size)
    }

    /// Up to `limit` events of the log from position `from` on, in log order (for exporting in
    /// pieces without holding the store for the whole export).
    pub fn log_range(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let start = key(LOG, &[&from.to_be_bytes()]);
        let end = key(LOG, &[&u64::MAX.to_be_bytes()]);
        self.tree()?
            .range(start..=end)
            .values()
            .take(limit)
            .map(|v| Ok(v?.to_vec()))
            .collect()
    }

    /// Keeps a checkpoint and the heads it states, durably (the oldest beyond
    /// [`MAX_KEPT_CHECKPOINTS`] are dropped in the same batch). Returns its id.
    /// Remembers the parcel index of checkpoint `id` (built with it), for serving bundles.
    pub fn remember_index(
        &mut self,
        id: Digest,
        index: std::sync::Arc<crate::parcel_index::ParcelIndex>,
    ) {
        self.parcel_index = Some((id, index));
    }

    /// The remembered parcel index of checkpoint `id`, if it is the one remembered.
    pub fn parcel_index(
        &self,
        id: &Digest,
    ) -> Option<std::sync::Arc<crate::parcel_index::ParcelIndex>> {
        self.parcel_index
            .as_ref()
            .filter(|(at, _)| at == id)
            .map(|(_, index)| index.clone())
    }

    pub fn keep_checkpoint(
        &mut self,
        cp: &Checkpoint,
        heads: &[FeedHead],
    ) -> Result<Digest, StoreError> {
        self.recover_if_needed()?;
        let id = checkpoint_id(cp);
        let value = codec::encode(&(cp, heads));
        self.ensure_room(value.len() as u64)?;
        let time_key = key(CHECKPOINTS, &[&cp.time_ms.to_be_bytes(), id.as_bytes()]);
        let mut b = sled::Batch::default();
        b.insert(time_key.clone(), value);
        b.insert(key(CHECKPOINT_IDS, &[id.as_bytes()]), time_key.clone());
        let kept = match self.kept_checkpoints {
            Some(n) => n,
            None => self.tree()?.scan_prefix([CHECKPOINTS]).count(),
        };
        let new = !self.tree()?.contains_key(&time_key)?;
        let dropped = (kept + usize::from(new)).saturating_sub(MAX_KEPT_CHECKPOINTS);
        for item in self.tree()?.scan_prefix([CHECKPOINTS]).keys().take(dropped) {
            let old = item?;
            if let Some(old_id) = old.get(9..) {
                b.remove(key(CHECKPOINT_IDS, &[old_id]));
            }
            b.remove(old);
        }
        self.commit(vec![b])?;
        self.kept_checkpoints = Some(kept + usize::from(new) - dropped);
        Ok(id)
    }

    /// The witness's last cosigned view (empty before its first cosignature).
    pub fn witness_state(&self) -> Result<WitnessState, StoreError> {
        match self.tree()?.get(key(META, &[b"witness"]))? {
            None => Ok(WitnessState::default()),
            Some(v) => codec::decode(&v, MAX_CHECKPOINT_BYTES)
                .map_err(|e| corrupt(format!("witness state: {e}"))),
        }
    }

    /// Persists the witness's view durably. A witness calls this before it releases the
    /// cosignature, so a crash never lets it cosign a view inconsistent with one it cosigned.
    pub fn save_witness_state(&mut self, state: &WitnessState) -> Result<(), StoreError> {
        self.recover_if_needed()?;
        let value = codec::encode(state);
        self.ensure_room(value.len() as u64)?;
        let mut b = sled::Batch::default();
        b.insert(key(META, &[b"witness"]), value);
        self.commit(vec![b])
    }

    /// A kept checkpoint and its heads, by id.
    pub fn checkpoint(&self, id: &Digest) -> Result<Option<KeptCheckpoint>, StoreError> {
        let Some(time_key) = self.tree()?.get(key(CHECKPOINT_IDS, &[id.as_bytes()]))? else {
            return Ok(None);
        };
        self.tree()?
            .get(time_key)?
            .map(|v| decode_checkpoint(&v))
            .transpose()
    }

    /// The oldest `limit` kept checkpoints later than `time_ms`, oldest first, with their heads.
    pub fn checkpoints_after(
        &self,
        time_ms: u64,
        limit: usize,
    ) -> Result<Vec<KeptCheckpoint>, StoreError> {
        let from = key(CHECKPOINTS, &[&time_ms.saturating_add(1).to_be_bytes()]);
        self.tree()?
            .range(from..[CHECKPOINTS + 1].to_vec())
            .values()
            .take(limit)
            .map(|v| decode_checkpoint(&v?))
            .collect()
    }

    /// The newest kept checkpoint (by its time) and its heads.
    pub fn latest_checkpoint(&self) -> Result<Option<KeptCheckpoint>, StoreError> {
        self.tree()?
            .scan_prefix([CHECKPOINTS])
            .values()
            .next_back()
            .transpose()?
            .map(|v| decode_checkpoint(&v))
            .transpose()
    }

    /// Writes the whole log in the export format, in log order; returns the number of events.
    pub fn export(&self, out: &mut impl Write) -> Result<u64, StoreError> {
        let mut n = 0;
        for bytes in self.tree()?.scan_prefix([LOG]).values() {
            write_record(out, &bytes?)?;
            n += 1;
        }
        Ok(n)
    }

    /// Every derived row, sorted; for checking that a rebuild reproduces the indexes.
    pub fn derived_rows(&self) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        for prefix in DERIVED {
            for item in self.tree()?.scan_prefix([prefix]) {
                let (k, v) = item?;
                rows.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(rows)
    }
}

/// Opens sled with no background flusher: durability comes from our own flush and fsync at each
/// commit, and without the flusher thread a dropped store releases its file lock at once.
///
/// sled's helper threads of an instance dropped in this process can hold the file lock for a few
/// milliseconds more; a lock error is retried until [`LOCK_WAIT`] has passed (there is no event
/// to wait on for a file lock), so a real second owner is still reported.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return Ok(other?),
        }
    }
}

/// The position in a log key.
fn log_position(k: &[u8]) -> Result<u64, StoreError> {
    let pos = k
        .get(1..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .ok_or_else(|| corrupt("log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(pos))
}

/// Schema 1 also wrote feed slots, parcel rows and an event index (and a `group-open` marker while
/// a group's batches landed), schema 2 the event index; schema 3 recomputes all of them from the
/// log on open (decisions D17, D22).
fn migrate_to_schema_3(db: &sled::Db, log: &sled::Tree) -> Result<(), StoreError> {
    let mut b = sled::Batch::default();
    for prefix in OLD_KEYSPACES {
        for k in log.scan_prefix([prefix]).keys() {
            b.remove(k?);
        }
    }
    b.remove(key(META, &[b"group-open"]));
    b.insert(
        key(META, &[b"schema"]),
        SCHEMA_VERSION.to_le_bytes().to_vec(),
    );
    log.apply_batch(b)?;
    db.flush()?;
    Ok(())
}

fn read_forks(log: &sled::Tree) -> Result<Vec<Fork>, StoreError> {
    log.scan_prefix([EVIDENCE])
        .values()
        .map(|v| {
            let v = v?;
            codec::decode(&v, codec::MAX_EVENT_BYTES).map_err(|e| corrupt(format!("evidence: {e}")))
        })
        .collect()
}

/// A kept checkpoint and the heads it states.
pub type KeptCheckpoint = (Checkpoint, Vec<FeedHead>);

fn decode_checkpoint(bytes: &[u8]) -> Result<KeptCheckpoint, StoreError> {
    codec::decode(bytes, MAX_CHECKPOINT_BYTES).map_err(|e| corrupt(format!("kept checkpoint: {e}")))
}

/// Largest encoded kept checkpoint (its heads at most `MAX_CHECKPOINT_FEEDS`).
const MAX_CHECKPOINT_BYTES: usize =
    256 + MAX_CHECKPOINT_FEEDS * (MAX_SLUG_LEN + 8 + 8 + 32 + 32 + 8);
