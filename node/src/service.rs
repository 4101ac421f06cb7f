//! The node's single writer: owns the store and the member's feed writer, and group-commits submissions.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{info, warn};

use ledger_core::admission::VerifiedEvent;
use ledger_core::admission::{self, verify_event, AdmissionError};
use ledger_core::bytes::{Digest, EventId, NetworkId};
use ledger_core::crypto::{KeyCache, SecretKey};
use ledger_core::ledger::Preview;
use ledger_core::ledger::{Fork, Ledger};
use ledger_core::rules::{Verdict, VoidReason};
use ledger_core::store::{Outcome, Refusal, Status, Store, StoreError, MAX_GROUP, PENDING_TTL};
use ledger_core::types::MemberId;
use ledger_core::writer::{FeedWriter, Signed};

use crate::actions::{Action, BodyError, UnknownParcel};
use crate::gov::{GovDraft, GovError, GovRequest};
use crate::metrics::Metrics;
use crate::witness::Cosign;

/// Most jobs waiting for the writer.
pub const JOB_QUEUE: usize = 4096;
/// Events gathered into one group when that many are waiting (one durable point per group).
pub const GROUP: usize = 1024;
/// Verified groups waiting for the writer.
pub const STAGES: usize = 2;
/// Most newly signed events waiting to be published.
pub const PUBLISH_QUEUE: usize = 1024;
/// Most reads of the store running at once (HTTP handlers and sync answers, on blocking threads).
pub const MAX_READERS: usize = 8;
/// Longest a read waits for its turn before it is refused as busy.
pub const READ_WAIT: Duration = Duration::from_secs(5);
/// How often the writer, when idle, retries opening a store closed by a failed write.
pub const IDLE_TICK: Duration = Duration::from_millis(500);
/// Shortest time between two computations of the state root (it hashes the whole state; a
/// client asking for it in a loop must not take the store from the writer).
pub const STATE_ROOT_INTERVAL: Duration = Duration::from_millis(250);
/// Most forks listed in a snapshot (and so in one sync heads answer).
pub const MAX_SNAPSHOT_FORKS: usize = 1024;

/// A feed head as sync exchanges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub author: MemberId,
    pub seq: u64,
    pub id: EventId,
    /// How many events of this author the node holds off its slots (after a fork): a peer
    /// holding fewer asks for them.
    pub off_slot: u64,
}

/// What readers see without taking the store: published by the writer after every durable point
/// (so it never shows what could be lost).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Events in the log.
    pub events: u64,
    pub feeds: usize,
    pub parcels: usize,
    pub pending: usize,
    pub gov: u64,
    /// False while a failed write keeps the store closed (it then shows nothing).
    pub healthy: bool,
    /// Every feed's head.
    pub heads: Arc<Vec<Head>>,
    /// Proven forks (at most [`MAX_SNAPSHOT_FORKS`]), so that peers can fetch the proofs.
    pub forks: Arc<Vec<Fork>>,
    pub fork_count: usize,
}

impl Snapshot {
    fn of(store: &Store) -> Snapshot {
        let l = store.ledger();
        let heads = l
            .feeds()
            .iter()
            .filter_map(|(author, f)| {
                f.head().map(|(seq, id)| Head {
                    author: author.clone(),
                    seq,
                    id,
                    off_slot: l.off_slot_len(author),
                })
            })
            .collect();
        Snapshot {
            events: store.len(),
            feeds: l.feeds().values().filter(|f| !f.ids.is_empty()).count(),
            parcels: l.parcels().len(),
            pending: l.pending_len(),
            gov: l.governance().latest(),
            healthy: store.is_healthy(),
            heads: Arc::new(heads),
            forks: Arc::new(l.forks().take(MAX_SNAPSHOT_FORKS).cloned().collect()),
            fork_count: l.fork_count(),
        }
    }
}

/// The store behind a lock: the writer takes it to commit, readers (HTTP, sync) to read.
pub type SharedStore = Arc<RwLock<Store>>;

/// Read access to the store (a poisoned lock still gives the last consistent state).
pub fn read(store: &SharedStore) -> RwLockReadGuard<'_, Store> {
    store
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(store: &SharedStore) -> RwLockWriteGuard<'_, Store> {
    store
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the service could not do what was asked (a fault, not a refusal of an event).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    #[error("the store failed: {0}")]
    Store(String),
    #[error("{0}")]
    DiskFull(String),
    #[error("the store is closed after a failed write and cannot be reopened yet: {0}")]
    Unavailable(String),
    #[error("the node is shutting down")]
    Closed,
    #[error("the node is overloaded; try again")]
    Busy,
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        if e.is_disk_full() {
            ServiceError::DiskFull(e.to_string())
        } else if matches!(e, StoreError::Poisoned) {
            ServiceError::Unavailable(e.to_string())
        } else {
            ServiceError::Store(e.to_string())
        }
    }
}

/// Why an action was not signed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActError {
    #[error("this node signs for no member (it has no member key)")]
    NoMember,
    #[error(transparent)]
    UnknownParcel(#[from] UnknownParcel),
    #[error(transparent)]
    InvalidField(crate::actions::InvalidField),
    /// A certificate number that resolves to no single certificate, or a value the parcels
    /// cannot fill in.
    #[error("{0}")]
    Unresolved(String),
    #[error("the rules refuse this action: {}", .0.name())]
    Refused(VoidReason),
    #[error("the action cannot be signed now: {0}")]
    NotNow(String),
    #[error(transparent)]
    Gov(#[from] GovError),
    #[error("no checkpoint cosigned: {0}")]
    Witness(crate::witness::WitnessError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<BodyError> for ActError {
    fn from(e: BodyError) -> ActError {
        match e {
            BodyError::UnknownParcel(e) => ActError::UnknownParcel(e),
            BodyError::InvalidField(e) => ActError::InvalidField(e),
            BodyError::Certificate(m) | BodyError::Unfilled(m) => ActError::Unresolved(m),
        }
    }
}

/// What a member asks its node to sign.
#[derive(Debug, Clone)]
pub enum Request {
    /// A custody action.
    Custody(Action),
    /// A governance proposal, endorsement, objection or submission.
    Gov(GovRequest),
    /// A checkpoint of this node's replica as of a cutoff, cosigned by its member (a witness);
    /// with a target, only if the replica makes exactly that checkpoint (another witness's).
    Checkpoint {
        cutoff: u64,
        target: Option<ledger_core::event::Checkpoint>,
    },
}

/// The governance record a signed event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovRecord {
    pub record: Digest,
    /// The version the record would make.
    pub version: u64,
}

/// A signed and stored action.
#[derive(Debug, Clone)]
pub struct Acted {
    pub event: EventId,
    pub verdict: Verdict,
    /// For a governance request: the record it is about.
    pub gov: Option<GovRecord>,
}

/// The result of one submitted event.
pub type Submitted = Result<Outcome, Refusal>;

/// Submitted events waiting for their group: how many, when they came, and who to tell.
type Waiting = (
    usize,
    Instant,
    oneshot::Sender<Result<Vec<Submitted>, ServiceError>>,
);

enum Job {
    Submit {
        events: Vec<Vec<u8>>,
        received: Instant,
        reply: oneshot::Sender<Result<Vec<Submitted>, ServiceError>>,
    },
    Act {
        action: Request,
        reply: oneshot::Sender<Result<Acted, ActError>>,
    },
}

/// A handle to the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Service {
    store: SharedStore,
    jobs: mpsc::Sender<Job>,
    network: NetworkId,
    member: Option<MemberId>,
    genesis: Arc<[u8]>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    readers: Arc<Semaphore>,
    /// The last state root: events count it covers, root, when it was computed.
    root: Arc<tokio::sync::Mutex<Option<(u64, Digest, Instant)>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Submit { events, .. } => write!(f, "Submit({} events)", events.len()),
            Job::Act { action, .. } => write!(f, "Act({action:?})"),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Service {
    /// Starts the writer thread. `publish` receives every event this node signs, for gossip.
    pub fn start(
        store: Store,
        member: Option<(MemberId, SecretKey)>,
        metrics: Arc<Metrics>,
        publish: mpsc::Sender<Vec<u8>>,
    ) -> Result<(Service, std::thread::JoinHandle<()>), StoreError> {
        let network = *store.ledger().network();
        let endorser = member
            .as_ref()
            .map(|(_, key)| SecretKey::from_bytes(&key.to_bytes()));
        if let Some((id, key)) = &member {
            warn_if_not_granted(store.ledger(), id, key);
        }
        let feed = member.map(|(id, key)| {
            let (ids, gov, last) = feed_state(store.ledger(), &id);
            FeedWriter::resume(network, id, key, &ids, gov, last)
        });
        let member = feed.as_ref().map(|f| f.author().clone());
        let genesis: Arc<[u8]> = ledger_core::codec::encode(store.ledger().genesis()).into();
        let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::of(&store)));
        let store = Arc::new(RwLock::new(store));
        let (tx, rx) = mpsc::channel(JOB_QUEUE);
        let writer = Writer {
            store: store.clone(),
            feed,
            endorser,
            metrics: metrics.clone(),
            publish,
            keys: KeyCache::default(),
            network,
            snapshot: snapshot_tx,
        };
        let (stage_tx, stage_rx) = std::sync::mpsc::sync_channel(STAGES);
        std::thread::Builder::new()
            .name("custody-verify".into())
            .spawn(move || verify_stage(rx, stage_tx, network))
            .map_err(StoreError::Io)?;
        let handle = std::thread::Builder::new()
            .name("custody-writer".into())
            .spawn(move || writer.run(stage_rx))
            .map_err(StoreError::Io)?;
        Ok((
            Service {
                store,
                jobs: tx,
                network,
                member,
                genesis,
                snapshot,
                readers: Arc::new(Semaphore::new(MAX_READERS)),
                root: Arc::new(tokio::sync::Mutex::new(None)),
                metrics,
            },
            handle,
        ))
    }

    /// The store, for reading on a blocking thread (prefer [`Service::read`]).
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The state as of the last durable point, without taking the store.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes at every durable point (for watches).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// The encoded genesis.
    pub fn genesis(&self) -> Arc<[u8]> {
        self.genesis.clone()
    }

    /// Runs `f` on the store on a blocking thread, at most [`MAX_READERS`] at once: async callers
    /// (the network loop, HTTP handlers) never block on the store lock.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(READ_WAIT, self.readers.clone().acquire_owned())
            .await
            .map_err(|_| ServiceError::Busy)?
            .map_err(|_| ServiceError::Closed)?;
        let store = self.store.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&read(&store))
        })
        .await
        .map_err(|_| ServiceError::Closed)?;
        Ok(out)
    }

    /// The state root of the stored events and how many they are: computed at most once per
    /// durable point and at most once per [`STATE_ROOT_INTERVAL`], one computation at a time.
    pub async fn state_root(&self) -> Result<(u64, Digest), ServiceError> {
        let mut cache = self.root.lock().await;
        let events = self.snapshot().events;
        if let Some((n, root, at)) = *cache {
            if n == events {
                return Ok((n, root));
            }
            tokio::time::sleep_until((at + STATE_ROOT_INTERVAL).into()).await;
        }
        let (n, root) = self
            .read(|store| (store.len(), store.ledger().state_root()))
            .await?;
        self.metrics
            .state_roots
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *cache = Some((n, root, Instant::now()));
        Ok((n, root))
    }

    /// The network id.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }

    /// The member this node signs for.
    pub fn member(&self) -> Option<&MemberId> {
        self.member.as_ref()
    }

    /// Hands events to the writer; returns once they are durable (or refused), one result each.
    pub async fn submit(&self, events: Vec<Vec<u8>>) -> Result<Vec<Submitted>, ServiceError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .try_send(Job::Submit {
                events,
                received: Instant::now(),
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ServiceError::Busy,
                mpsc::error::TrySendError::Closed(_) => ServiceError::Closed,
            })?;
        rx.await.map_err(|_| ServiceError::Closed)?
    }

    /// Builds, checks, signs and durably stores an action of this node's member.
    pub async fn act(&self, action: Action) -> Result<Acted, ActError> {
        self.request(Request::Custody(action)).await
    }

    /// Builds, checks, signs and durably stores a governance event of this node's member,
    /// acting under the newest governance version.
    pub async fn govern(&self, request: GovRequest) -> Result<Acted, ActError> {
        self.request(Request::Gov(request)).await
    }

    /// Checkpoints this node's replica and cosigns it as a `Witness` event, if its member has
    /// the witness duty and the checkpoint extends the last one it cosigned.
    pub async fn checkpoint(
        &self,
        cutoff: u64,
        target: Option<ledger_core::event::Checkpoint>,
    ) -> Result<Acted, ActError> {
        self.request(Request::Checkpoint { cutoff, target }).await
    }

    /// Keeps the checkpoints other witnesses cosigned that this replica makes too (to serve
    /// bundles of them); returns them.
    pub async fn adopt_checkpoints(
        &self,
    ) -> Result<Vec<ledger_core::event::Checkpoint>, ServiceError> {
        let found = self.read(crate::witness::adoptable).await?;
        let store = self.store.clone();
        let kept = tokio::task::spawn_blocking(move || {
            let mut store = write(&store);
            let mut kept = Vec::new();
            for (cp, heads, index) in found {
                let id = store.keep_checkpoint(&cp, &heads)?;
                store.remember_index(id, index);
                kept.push(cp);
            }
            Ok::<_, StoreError>(kept)
        })
        .await
        .map_err(|_| ServiceError::Busy)??;
        Ok(kept)
    }

    async fn request(&self, action: Request) -> Result<Acted, ActError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job::Act { action, reply })
            .await
            .map_err(|_| ServiceError::Closed)?;
        rx.await.map_err(|_| ServiceError::Closed)?
    }
}

/// Work for the writer, in arrival order: verified groups to commit, and actions.
enum Stage {
    Commit {
        submits: Vec<Waiting>,
        verified: Vec<Result<VerifiedEvent, AdmissionError>>,
    },
    Act {
        action: Request,
        reply: oneshot::Sender<Result<Acted, ActError>>,
    },
}

/// Groups waiting jobs and verifies their events on all cores, while the writer commits the
/// previous group: decoding and signature checks overlap with sled and fsync.
fn verify_stage(
    mut rx: mpsc::Receiver<Job>,
    stages: std::sync::mpsc::SyncSender<Stage>,
    network: NetworkId,
) {
    let keys = KeyCache::default();
    // The events of `submits`, in order.
    let flush = |submits: &mut Vec<Waiting>, events: &mut Vec<Vec<u8>>| -> bool {
        if submits.is_empty() {
            return true;
        }
        let verified = admission::verify_events_strict(events, &network, &keys);
        events.clear();
        stages
            .send(Stage::Commit {
                submits: std::mem::take(submits),
                verified,
            })
            .is_ok()
    };
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut events = jobs_events(&jobs);
        while events < GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    events += jobs_events(std::slice::from_ref(&job));
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut submits: Vec<Waiting> = Vec::new();
        let mut group: Vec<Vec<u8>> = Vec::new();
        for job in jobs {
            match job {
                Job::Submit {
                    events,
                    received,
                    reply,
                } => {
                    if events.len() + group.len() > MAX_GROUP && !flush(&mut submits, &mut group) {
                        return;
                    }
                    submits.push((events.len(), received, reply));
                    group.extend(events);
                }
                Job::Act { action, reply } => {
                    // Actions see the state after everything received before them.
                    if !flush(&mut submits, &mut group)
                        || stages.send(Stage::Act { action, reply }).is_err()
                    {
                        return;
                    }
                }
            }
        }
        if !flush(&mut submits, &mut group) {
            return;
        }
    }
}

struct Writer {
    store: SharedStore,
    feed: Option<FeedWriter>,
    /// The member key again, for signing endorsements (the feed writer keeps its own).
    endorser: Option<SecretKey>,
    metrics: Arc<Metrics>,
    publish: mpsc::Sender<Vec<u8>>,
    keys: KeyCache,
    network: NetworkId,
    snapshot: watch::Sender<Arc<Snapshot>>,
}

impl Writer {
    fn run(mut self, stages: std::sync::mpsc::Receiver<Stage>) {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            let stage = match stages.recv_timeout(IDLE_TICK) {
                Ok(stage) => stage,
                Err(RecvTimeoutError::Timeout) => {
                    self.recover();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Readers see a durable point before anyone is told of it: an acknowledged event is
            // already in the status, the watches and the pages.
            match stage {
                Stage::Commit { submits, verified } => self.commit(submits, verified),
                Stage::Act { action, reply } => {
                    let result = self.act(action);
                    self.publish_snapshot();
                    let _ = reply.send(result);
                }
            }
        }
        info!("writer stopped: no more jobs");
    }

    /// Publishes what readers may see: the state after the last durable point.
    fn publish_snapshot(&self) {
        let snapshot = Snapshot::of(&read(&self.store));
        self.snapshot.send_replace(Arc::new(snapshot));
    }

    /// When idle: drop pending events that waited too long, and reopen a store that a failed
    /// write closed (space may be back).
    fn recover(&self) {
        let mut store = write(&self.store);
        if store.is_healthy() {
            match store.expire_pending(PENDING_TTL) {
                Ok(0) => {}
                Ok(n) => {
                    info!(events = n, "dropped pending events that waited too long");
                    drop(store);
                    self.publish_snapshot();
                }
                Err(e) => warn!(error = %e, "expiring pending events failed"),
            }
            return;
        }
        match store.recover_if_needed() {
            Ok(()) => {
                info!(
                    events = store.len(),
                    "store reopened from disk after a failed write"
                );
                drop(store);
                self.publish_snapshot();
            }
            Err(e) => warn!(error = %e, "the store cannot be reopened yet"),
        }
    }

    /// Gossips what peers would not get otherwise: events released from the pending set (gossip
    /// did not forward them while they waited) and both events of every newly proven fork.
    fn spread(&self, results: &[Submitted]) {
        let store = read(&self.store);
        let mut ids: Vec<EventId> = Vec::new();
        for o in results.iter().flatten() {
            ids.extend(&o.unblocked);
            if let Some(f) = &o.fork {
                ids.extend([f.first, f.second]);
            }
        }
        for id in ids {
            if let Ok(Some(bytes)) = store.event_bytes(&id) {
                if self.publish.try_send(bytes).is_err() {
                    // Peers get it by sync; the queue stays bounded.
                    break;
                }
            }
        }
    }

    fn commit(
        &mut self,
        submits: Vec<Waiting>,
        verified: Vec<Result<VerifiedEvent, AdmissionError>>,
    ) {
        let results = match write(&self.store).append_verified(verified) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "store commit failed; nothing of it was kept");
                self.publish_snapshot();
                let e = ServiceError::from(e);
                for (_, _, reply) in submits {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };
        self.publish_snapshot();
        self.spread(&results);
        self.count_released(&results);
        let mut results = results.into_iter();
        for (count, received, reply) in submits {
            let mine: Vec<Submitted> = results.by_ref().take(count).collect();
            for r in &mine {
                self.count(r);
            }
            self.metrics
                .observe_ingest(received.elapsed().as_secs_f64());
            let _ = reply.send(Ok(mine));
        }
    }

    /// Counts the events that left the pending set and were stored, by verdict.
    fn count_released(&self, results: &[Submitted]) {
        use std::sync::atomic::Ordering::Relaxed;
        let store = read(&self.store);
        for id in results.iter().flatten().flat_map(|o| &o.unblocked) {
            match store.ledger().event(id).map(|m| m.verdict) {
                Some(Verdict::Applied) => self.metrics.events_applied.fetch_add(1, Relaxed),
                Some(Verdict::Void(_)) => self.metrics.events_void.fetch_add(1, Relaxed),
                None => 0,
            };
        }
    }

    fn count(&self, r: &Submitted) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.metrics;
        match r {
            Ok(Outcome {
                status: Status::Stored(Verdict::Applied),
                ..
            }) => m.events_applied.fetch_add(1, Relaxed),
            Ok(Outcome {
                status: Status::Stored(Verdict::Void(_)),
                ..
            }) => m.events_void.fetch_add(1, Relaxed),
            Ok(Outcome {
                status: Status::Duplicate,
                ..
            }) => m.events_duplicate.fetch_add(1, Relaxed),
            Ok(Outcome {
                status: Status::Pending(_),
                ..
            }) => m.events_pending.fetch_add(1, Relaxed),
            Err(_) => m.events_refused.fetch_add(1, Relaxed),
        };
    }

    fn act(&mut self, request: Request) -> Result<Acted, ActError> {
        use std::sync::atomic::Ordering::Relaxed;
        let time = now_ms();
        let (draft, gov, cosign) = match self.draft(request, time) {
            Ok(d) => d,
            Err(e) => {
                if matches!(e, ActError::Refused(_)) {
                    self.metrics.actions_refused.fetch_add(1, Relaxed);
                }
                return Err(e);
            }
        };
        if let Some(c) = &cosign {
            // The view is durable, and the checkpoint kept with its heads, before the
            // cosignature exists: a crash between them can lose a cosignature, never make this
            // witness cosign two inconsistent views, nor cosign one it cannot show the heads of.
            let mut store = write(&self.store);
            store
                .save_witness_state(&c.state)
                .map_err(ServiceError::from)?;
            let id = store
                .keep_checkpoint(&c.checkpoint, &c.heads)
                .map_err(ServiceError::from)?;
            store.remember_index(id, c.index.clone());
        }
        let out = write(&self.store)
            .append(&draft.bytes)
            .map_err(ServiceError::from)?;
        match out {
            Ok(Outcome {
                status: Status::Stored(verdict),
                id,
                ..
            }) => {
                if let Some(feed) = self.feed.as_mut() {
                    feed.advance(&draft, time);
                }
                self.metrics.actions_signed.fetch_add(1, Relaxed);
                if verdict == Verdict::Applied {
                    self.metrics.events_applied.fetch_add(1, Relaxed);
                } else {
                    self.metrics.events_void.fetch_add(1, Relaxed);
                }
                if self.publish.try_send(draft.bytes).is_err() {
                    warn!(event = %id, "publish queue full; peers will get the event by sync");
                }
                if cosign.is_some() {
                    self.metrics.checkpoints_cosigned.fetch_add(1, Relaxed);
                }

                Ok(Acted {
                    event: id,
                    verdict,
                    gov,
                })
            }
            Ok(other) => Err(ActError::NotNow(format!(
                "the store did not take the event: {other:?}"
            ))),
            Err(e) => Err(ActError::NotNow(e.to_string())),
        }
    }

    /// Builds the body of `request` against the current state, signs it as the feed's next
    /// event under the newest governance version, and checks it with a dry run of the rules.
    /// Refused when the rules would void it (unless the request accepts that void verdict).
    fn draft(
        &mut self,
        request: Request,
        time: u64,
    ) -> Result<(Signed, Option<GovRecord>, Option<Cosign>), ActError> {
        let feed = self.feed.as_mut().ok_or(ActError::NoMember)?;
        let store = read(&self.store);
        if !store.is_healthy() {
            return Err(ServiceError::from(StoreError::Poisoned).into());
        }
        let ledger = store.ledger();
        let stored_head = ledger.feed(feed.author()).and_then(|f| f.ids.last());
        if stored_head != feed.last() {
            // Events signed with this member's key reached the store from elsewhere (another
            // installation, a restored backup): continue the feed after them, never beside them.
            warn!(member = %feed.author(), "the member's feed grew outside this node; continuing after it");
            let (ids, gov, last) = feed_state(ledger, feed.author());
            feed.resync(&ids, gov, last);
        }
        // Act under the newest version: a member admitted or reinstated by governance acts at
        // once, and a governance record cites the version it extends.
        feed.set_gov(ledger.governance().latest());
        let mut cosign = None;
        let (body, gov, accept_void) = match request {
            Request::Custody(action) => (action.body(ledger, feed.author())?, None, None),
            Request::Checkpoint { cutoff, target } => {
                let stored = store.witness_state().map_err(ServiceError::from)?;
                let own = crate::witness::own_latest(&store, feed.author());
                let state = crate::witness::last_view(ledger, &stored, own.as_ref())
                    .map_err(ActError::Witness)?;
                let govern = crate::witness::govern_reader(&store);
                let c = crate::witness::prepare(
                    ledger,
                    feed.author(),
                    &state,
                    cutoff,
                    target.as_ref(),
                    govern,
                )
                .map_err(|e| {
                    if let crate::witness::WitnessError::Refused(_) = e {
                        use std::sync::atomic::Ordering::Relaxed;
                        self.metrics.checkpoints_refused.fetch_add(1, Relaxed);
                    }
                    ActError::Witness(e)
                })?;
                let body = c.body.clone();
                cosign = Some(c);
                (body, None, None)
            }
            Request::Gov(g) => {
                let key = self.endorser.as_ref().ok_or(ActError::NoMember)?;
                let GovDraft {
                    body,
                    record,
                    version,
                    accept_void,
                } = g.draft(ledger, feed.author(), key)?;
                body.check_shape()
                    .map_err(|e| ActError::InvalidField(crate::actions::InvalidField(e)))?;
                (body, Some(GovRecord { record, version }), accept_void)
            }
        };
        let draft = feed.draft(body, time);
        let verified = verify_event(&draft.bytes, &self.network, &self.keys).map_err(|e| {
            ActError::NotNow(format!("the node's own event is not admissible: {e}"))
        })?;
        match ledger.preview(&verified) {
            Ok(Verdict::Applied) => {}
            Ok(Verdict::Void(reason)) if Some(reason) == accept_void => {}
            Ok(Verdict::Void(reason)) => return Err(ActError::Refused(reason)),
            Err(Preview::Waiting(missing)) => {
                return Err(ActError::NotNow(format!(
                    "it depends on events this node does not have yet: {missing:?}"
                )))
            }
            Err(Preview::Duplicate) => return Err(ActError::NotNow("already stored".into())),
            Err(Preview::Refused(e)) => return Err(ActError::NotNow(e.to_string())),
        }
        Ok((draft, gov, cosign))
    }
}

/// Warns when the ledger does not (yet) give `member` the key `key`: the node still starts
/// (governance may admit the member, or grant the key, later), and its actions are refused
/// until then, each saying why.
fn warn_if_not_granted(ledger: &Ledger, member: &MemberId, key: &SecretKey) {
    let gov = ledger.governance();
    let granted = gov
        .latest_state()
        .members
        .get(member)
        .is_some_and(|m| m.keys.iter().any(|g| g.key == key.public()));
    if !granted {
        warn!(
            %member,
            key = %key.public(),
            version = gov.latest(),
            "this member does not hold this key at the newest governance version this node knows: its actions are refused until a governance record admits it or grants the key"
        );
    }
}

/// A feed's ids, the governance version and time of its last event.
fn feed_state(ledger: &Ledger, author: &MemberId) -> (Vec<EventId>, u64, u64) {
    ledger.feed(author).map_or((Vec::new(), 0, 0), |f| {
        let last = f.ids.last().and_then(|h| ledger.event(h));
        (
            f.ids.clone(),
            last.map_or(0, |m| m.gov),
            last.map_or(0, |m| m.time_ms),
        )
    })
}

fn jobs_events(jobs: &[Job]) -> usize {
    jobs.iter()
        .map(|j| {
            if let Job::Submit { events, .. } = j {
                events.len()
            } else {
                1
            }
        })
        .sum()
}
