//! libp2p networking: gossip of events (no gossip-level signature), sync and anti-entropy, peer penalties and connection limits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{connection_limits, identify, identity, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use ledger_core::admission::{event_id, SIGNATURE_LEN};
use ledger_core::bytes::{EventId, NetworkId};
use ledger_core::codec::MAX_EVENT_BYTES;
use ledger_core::crypto::sha256;
use ledger_core::ledger::Missing;
use ledger_core::store::{Outcome, Refusal, Status};

use crate::config::LimitsConfig;
use crate::ip_limit::IpLimit;
use crate::metrics::Metrics;
use crate::service::{Service, Submitted};
pub use crate::sync::{
    Head, SyncCodec, SyncRequest, SyncResponse, MAX_SYNC_BATCH, MAX_SYNC_REQUEST,
    MAX_SYNC_RESPONSE, SYNC_PROTOCOL,
};

/// Largest gossip message we let through to validation: one event plus protobuf framing.
pub const MAX_TRANSMIT: usize = MAX_EVENT_BYTES + 1024;
/// Largest gossip frame libp2p reads at all. Messages between [`MAX_TRANSMIT`] and this are
/// decoded, refused and counted as the sender's fault, instead of silently closing its stream.
pub const MAX_GOSSIP_FRAME: usize = 4 * MAX_TRANSMIT;
/// Most commands waiting for the network task.
pub const COMMAND_QUEUE: usize = 1024;
/// Most gossip messages being validated at once; beyond it new ones are ignored (not forwarded).
pub const MAX_VALIDATING: usize = 2048;
/// Most peers whose faults are counted, and most peers kept banned.
pub const MAX_TRACKED_PEERS: usize = 4096;
/// Gossip messages handed to the writer at once.
pub const GOSSIP_BATCH: usize = 256;
/// Longest a gossip message waits to be batched with others.
pub const GOSSIP_BATCH_WAIT: Duration = Duration::from_millis(4);
/// How long gossip remembers message ids it has seen.
pub const DUPLICATE_CACHE: Duration = Duration::from_secs(10);
/// Most sync requests of ours in flight at once (all peers).
pub const MAX_SYNC_IN_FLIGHT: usize = 256;
/// Most pages of one feed fetched from one peer per anti-entropy round: a peer claiming a huge
/// head cannot keep this node verifying forever; the next round goes on from there.
pub const MAX_SYNC_PAGES: u32 = 64;
/// Most event ids remembered as asked for and not yet answered (no id is asked twice at once).
pub const MAX_WANTED: usize = 8192;
/// Longest a dial asked for over the API waits for the connection.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most dials asked for over the API that wait for their outcome at once.
pub const MAX_DIALS_WAITING: usize = 64;

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    limits: connection_limits::Behaviour,
    ip_limit: IpLimit,
}

/// The gossip message id of event bytes: the event id (or a hash of bytes too short to be an event).
pub fn message_id(data: &[u8]) -> MessageId {
    let id = if data.len() > SIGNATURE_LEN {
        event_id(&data[..data.len() - SIGNATURE_LEN])
    } else {
        sha256(&[data])
    };
    MessageId::from(id.as_bytes().to_vec())
}

/// The gossip topic of a network.
pub fn topic(network: &NetworkId) -> IdentTopic {
    IdentTopic::new(format!("custody/events/{network}"))
}

/// The gossipsub configuration every custody node (and any interoperating implementation) uses:
/// no gossip-level signature, author or sequence number (StrictNoSign; every event carries its
/// author's signature already), the event id as message id, validation by the application.
pub fn gossip_config() -> Result<gossipsub::Config, String> {
    gossipsub::ConfigBuilder::default()
        .validate_messages()
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|m| message_id(&m.data))
        .max_transmit_size(MAX_GOSSIP_FRAME)
        .heartbeat_interval(Duration::from_millis(500))
        // Duplicates are cheap for the store to recognise; a long cache only costs memory.
        .duplicate_cache_time(DUPLICATE_CACHE)
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))
}

/// What the rest of the node can ask of the network task.
#[derive(Debug)]
pub enum NetCommand {
    /// Dial an address; the reply comes once the connection is established or has failed.
    Dial(Multiaddr, oneshot::Sender<Result<(), String>>),
    /// Gossip an event this node has stored (e.g. one signed elsewhere and posted over HTTP).
    Publish(Vec<u8>),
    Shutdown,
}

/// What the network task shares for status pages.
#[derive(Debug, Default, Clone, Serialize)]
pub struct NetStatus {
    pub peer_id: String,
    pub listen: Vec<String>,
    pub peers: Vec<String>,
    pub banned: Vec<String>,
    /// The last anti-entropy round with each peer: when (UNIX ms), and how many of the peer's
    /// events (or fork records, governance versions) this node lacked then.
    pub rounds: std::collections::BTreeMap<String, SyncRound>,
}

/// One anti-entropy round's outcome with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SyncRound {
    pub at_ms: u64,
    pub missing: usize,
    /// How far the peer holds this node's member's own feed (0 for none, or no member).
    pub own_seq: u64,
}

/// A handle to the network task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    pub commands: mpsc::Sender<NetCommand>,
    pub status: Arc<Mutex<NetStatus>>,
}

impl NetHandle {
    /// Dials an address and waits (at most [`DIAL_TIMEOUT`]) until it is connected or failed.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(NetCommand::Dial(addr, tx))
            .await
            .map_err(|_| "network task stopped".to_owned())?;
        match tokio::time::timeout(DIAL_TIMEOUT, rx).await {
            Ok(reply) => reply.map_err(|_| "network task stopped".to_owned())?,
            Err(_) => Err(format!("no connection within {DIAL_TIMEOUT:?}")),
        }
    }

    /// A copy of the current status.
    pub fn status(&self) -> NetStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The verdict of gossip validation on one message.
struct Validated {
    id: MessageId,
    source: PeerId,
    acceptance: MessageAcceptance,
    missing: Vec<EventId>,
    fault: bool,
}

/// Results of background work, returned to the event loop.
enum Done {
    Validated(Vec<Validated>),
    /// Events a peer sent in answer to `request` were stored (or refused).
    Synced {
        peer: PeerId,
        request: SyncRequest,
        page: u32,
        /// Every event was new and stored: paging through a feed may go on.
        all_new: bool,
        received: usize,
        refused: usize,
        missing: Vec<EventId>,
    },
    /// What to ask a peer for after comparing its heads with ours, and how far the peer holds
    /// this node's member's feed.
    Wanted(PeerId, Vec<SyncRequest>, u64),
    /// An answer to a peer's request, read from the store off the event loop.
    Answer(ResponseChannel<SyncResponse>, SyncResponse),
}

/// Starts the network task. Returns its handle and join handle.
pub async fn start(
    key: identity::Keypair,
    listen: &[String],
    bootstrap: &[String],
    limits: &LimitsConfig,
    service: Service,
    metrics: Arc<Metrics>,
    publish: mpsc::Receiver<Vec<u8>>,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), String> {
    let network = *service.network();
    let mut swarm = build_swarm(key, limits)?;
    let topic = topic(&network);
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| format!("subscribe: {e}"))?;
    for addr in listen {
        let addr: Multiaddr = addr
            .parse()
            .map_err(|e| format!("listen address {addr}: {e}"))?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| format!("listen on {addr}: {e}"))?;
    }
    for addr in bootstrap {
        let addr: Multiaddr = addr
            .parse()
            .map_err(|e| format!("bootstrap address {addr}: {e}"))?;
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "cannot dial bootstrap peer");
        }
    }
    let status = Arc::new(Mutex::new(NetStatus {
        peer_id: swarm.local_peer_id().to_string(),
        ..NetStatus::default()
    }));
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (done_tx, done_rx) = mpsc::channel(MAX_VALIDATING);
    let event_loop = EventLoop {
        swarm,
        topic,
        service,
        metrics,
        status: status.clone(),
        faults: HashMap::new(),
        banned: HashSet::new(),
        ban_order: VecDeque::new(),
        max_faults: limits.max_peer_faults,
        requests: HashMap::new(),
        wanted: HashSet::new(),
        dials: HashMap::new(),
        done_tx,
        sync_interval: Duration::from_secs(limits.sync_interval_secs.max(1)),
        gossip: Vec::new(),
        validating: 0,
    };
    let task = tokio::spawn(event_loop.run(command_rx, publish, done_rx));
    Ok((NetHandle { commands, status }, task))
}

fn build_swarm(key: identity::Keypair, limits: &LimitsConfig) -> Result<Swarm<Behaviour>, String> {
    let limits = limits.clone();
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("transport: {e}"))?
        .with_behaviour(|key| {
            let gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config()?)?;
            let sync = request_response::Behaviour::with_codec(
                SyncCodec,
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(64),
            );
            let identify =
                identify::Behaviour::new(identify::Config::new("/custody/1".into(), key.public()));
            let limits_behaviour = connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(limits.max_connections))
                    .with_max_established_incoming(Some(limits.max_inbound))
                    .with_max_established_outgoing(Some(limits.max_outbound))
                    .with_max_established_per_peer(Some(2))
                    .with_max_pending_incoming(Some(32))
                    .with_max_pending_outgoing(Some(32)),
            );
            Ok(Behaviour {
                gossipsub,
                sync,
                identify,
                limits: limits_behaviour,
                ip_limit: IpLimit::new(limits.max_per_ip),
            })
        })
        .map_err(|e| format!("behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build())
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    topic: IdentTopic,
    service: Service,
    metrics: Arc<Metrics>,
    status: Arc<Mutex<NetStatus>>,
    faults: HashMap<PeerId, u32>,
    banned: HashSet<PeerId>,
    /// Banned peers, oldest first (the set is bounded by [`MAX_TRACKED_PEERS`]).
    ban_order: VecDeque<PeerId>,
    max_faults: u32,
    /// Our sync requests in flight, with the page number of feed requests.
    requests: HashMap<OutboundRequestId, (SyncRequest, u32)>,
    /// Event ids asked for and not answered yet (bounded by [`MAX_WANTED`]).
    wanted: HashSet<EventId>,
    /// Dials asked for over the API, waiting for their outcome.
    dials: HashMap<ConnectionId, oneshot::Sender<Result<(), String>>>,
    done_tx: mpsc::Sender<Done>,
    sync_interval: Duration,
    /// Gossip messages waiting to be handed to the writer together.
    gossip: Vec<(MessageId, PeerId, Vec<u8>)>,
    /// Gossip messages handed to the writer and not yet judged.
    validating: usize,
}

impl EventLoop {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<NetCommand>,
        mut publish: mpsc::Receiver<Vec<u8>>,
        mut done: mpsc::Receiver<Done>,
    ) {
        let mut tick = tokio::time::interval(self.sync_interval);
        let mut batch_tick = tokio::time::interval(GOSSIP_BATCH_WAIT);
        batch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(bytes) = publish.recv() => self.publish(bytes),
                Some(d) = done.recv() => self.on_done(d),
                command = commands.recv() => match command {
                    Some(NetCommand::Dial(addr, reply)) => self.dial(addr, reply),
                    Some(NetCommand::Publish(bytes)) => self.publish(bytes),
                    Some(NetCommand::Shutdown) | None => break,
                },
                _ = tick.tick() => self.anti_entropy(),
                _ = batch_tick.tick(), if !self.gossip.is_empty() => self.validate_gossip(),
            }
        }
        info!("network task stopped");
    }

    fn publish(&mut self, bytes: Vec<u8>) {
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            debug!(error = %e, "publish: peers will get the event by sync");
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<(), String>>) {
        let opts = DialOpts::unknown_peer_id().address(addr).build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Err(e) => {
                let _ = reply.send(Err(e.to_string()));
            }
            Ok(()) if self.dials.len() < MAX_DIALS_WAITING => {
                self.dials.insert(id, reply);
            }
            // Too many waiting: say the dial started, without waiting for its outcome.
            Ok(()) => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn publish_status(&self) {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.peers = self
            .swarm
            .connected_peers()
            .map(|p| p.to_string())
            .collect();
        s.banned = self.banned.iter().map(|p| p.to_string()).collect();
        self.metrics
            .peers_connected
            .store(s.peers.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn anti_entropy(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.request(peer, SyncRequest::Heads, 0);
        }
    }

    /// Sends a sync request unless too many are in flight (anti-entropy asks again later);
    /// returns whether it went out.
    fn request(&mut self, peer: PeerId, request: SyncRequest, page: u32) -> bool {
        if self.requests.len() >= MAX_SYNC_IN_FLIGHT || self.banned.contains(&peer) {
            return false;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, request.clone());
        self.requests.insert(id, (request, page));
        true
    }

    /// Asks `peer` for events by id, at most [`MAX_SYNC_BATCH`] per request, never an id already
    /// asked for and not answered.
    fn request_events(&mut self, peer: PeerId, ids: Vec<EventId>) {
        let mut fresh: Vec<EventId> = ids
            .into_iter()
            .filter(|id| !self.wanted.contains(id))
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        for chunk in fresh.chunks(MAX_SYNC_BATCH as usize) {
            if self.wanted.len() + chunk.len() > MAX_WANTED {
                return;
            }
            let ids = chunk.to_vec();
            if self.request(peer, SyncRequest::Events { ids: ids.clone() }, 0) {
                self.wanted.extend(ids);
            }
        }
    }

    fn fault(&mut self, peer: PeerId, what: &str) {
        if self.faults.len() >= MAX_TRACKED_PEERS && !self.faults.contains_key(&peer) {
            // Keep counting for connected peers only; forget those that left.
            let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
            self.faults.retain(|p, _| connected.contains(p));
        }
        let n = self.faults.entry(peer).or_default();
        *n += 1;
        warn!(%peer, faults = *n, "{what}");
        if *n >= self.max_faults && self.banned.insert(peer) {
            self.ban(peer);
        }
    }

    fn ban(&mut self, peer: PeerId) {
        warn!(%peer, "banning peer");
        self.faults.remove(&peer);
        self.ban_order.push_back(peer);
        if self.ban_order.len() > MAX_TRACKED_PEERS {
            // Forget the oldest ban rather than grow without bound.
            if let Some(old) = self.ban_order.pop_front() {
                self.banned.remove(&old);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .remove_blacklisted_peer(&old);
            }
        }
        self.metrics
            .peers_banned
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        self.publish_status();
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = format!("{address}/p2p/{}", self.swarm.local_peer_id());
                info!(address = %full, "listening");
                self.status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .listen
                    .push(full);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                connection_id,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                if self.banned.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, "connected; comparing heads");
                    let _ = self.request(peer_id, SyncRequest::Heads, 0);
                }
                self.publish_status();
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            SwarmEvent::ConnectionClosed { .. } => self.publish_status(),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            _ => {}
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.answer(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((request, page)) = self.requests.remove(&request_id) {
                        self.on_response(peer, request, page, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((request, _)) = self.requests.remove(&request_id) {
                    self.forget_wanted(&request);
                }
                if matches!(error, request_response::OutboundFailure::Io(_)) {
                    // The answer did not decode or was over its size limit.
                    self.fault(peer, "malformed sync response");
                } else {
                    debug!(%peer, %error, "sync request failed");
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    self.fault(peer, "malformed sync request");
                }
            }
            _ => {}
        }
    }

    fn forget_wanted(&mut self, request: &SyncRequest) {
        if let SyncRequest::Events { ids } = request {
            for id in ids {
                self.wanted.remove(id);
            }
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        let verdict = if self.banned.contains(&source) {
            Some(MessageAcceptance::Reject)
        } else if data.len() > MAX_EVENT_BYTES {
            self.fault(source, "oversized gossip message");
            Some(MessageAcceptance::Reject)
        } else if self.validating + self.gossip.len() >= MAX_VALIDATING {
            // Too much being validated: do not forward this one; sync will bring it if it matters.
            Some(MessageAcceptance::Ignore)
        } else {
            None
        };
        if let Some(acceptance) = verdict {
            self.count_gossip(&acceptance);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, acceptance);
            return;
        }
        self.gossip.push((id, source, data));
        if self.gossip.len() >= GOSSIP_BATCH {
            self.validate_gossip();
        }
    }

    fn count_gossip(&self, acceptance: &MessageAcceptance) {
        use std::sync::atomic::Ordering::Relaxed;
        match acceptance {
            MessageAcceptance::Accept => self.metrics.gossip_accepted.fetch_add(1, Relaxed),
            MessageAcceptance::Reject => self.metrics.gossip_rejected.fetch_add(1, Relaxed),
            MessageAcceptance::Ignore => self.metrics.gossip_ignored.fetch_add(1, Relaxed),
        };
    }

    /// Hands the gossip messages gathered so far to the writer as one submission.
    fn validate_gossip(&mut self) {
        if self.gossip.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.gossip);
        self.validating += batch.len();
        let service = self.service.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let (heads, data): (Vec<(MessageId, PeerId)>, Vec<Vec<u8>>) = batch
                .into_iter()
                .map(|(id, source, data)| ((id, source), data))
                .unzip();
            let results = service.submit(data).await;
            let verdicts = heads
                .into_iter()
                .enumerate()
                .map(|(i, (id, source))| {
                    let result = results.as_ref().ok().and_then(|r| r.get(i));
                    let (acceptance, missing, fault) = judge_gossip(result);
                    Validated {
                        id,
                        source,
                        acceptance,
                        missing,
                        fault,
                    }
                })
                .collect();
            let _ = done.send(Done::Validated(verdicts)).await;
        });
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Validated(verdicts) => self.on_validated(verdicts),
            Done::Synced {
                peer,
                request,
                page,
                all_new,
                received,
                refused,
                missing,
            } => {
                self.forget_wanted(&request);
                if refused > 0 {
                    self.fault(peer, "sync answer holds events that admission refuses");
                } else if let Some(next) = next_page(&request, received, all_new) {
                    if page + 1 < MAX_SYNC_PAGES {
                        let _ = self.request(peer, next, page + 1);
                    }
                }
                if !missing.is_empty() && !self.banned.contains(&peer) {
                    self.request_events(peer, missing);
                }
            }
            Done::Wanted(peer, requests, own_seq) => {
                let missing = requests
                    .iter()
                    .map(|r| match r {
                        SyncRequest::Events { ids } => ids.len(),
                        _ => 1,
                    })
                    .sum();
                let at_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                self.status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .rounds
                    .insert(
                        peer.to_string(),
                        SyncRound {
                            at_ms,
                            missing,
                            own_seq,
                        },
                    );
                for r in requests {
                    match r {
                        SyncRequest::Events { ids } => self.request_events(peer, ids),
                        other => {
                            let _ = self.request(peer, other, 0);
                        }
                    }
                }
            }
            Done::Answer(channel, response) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
        }
    }

    fn on_validated(&mut self, verdicts: Vec<Validated>) {
        self.validating = self.validating.saturating_sub(verdicts.len());
        for v in verdicts {
            self.count_gossip(&v.acceptance);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&v.id, &v.source, v.acceptance);
            if v.fault {
                self.fault(v.source, "peer sent an event that admission refuses");
            }
            if !v.missing.is_empty() && !self.banned.contains(&v.source) {
                self.request_events(v.source, v.missing);
            }
        }
    }

    /// Answers a sync request: heads from the snapshot at once; events read from the store on a
    /// blocking thread, so the event loop never waits for the store.
    fn answer(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        if self.banned.contains(&peer) {
            return;
        }
        let response = match request {
            SyncRequest::Heads => {
                let snapshot = self.service.snapshot();
                SyncResponse::Heads {
                    heads: snapshot.heads.to_vec(),
                    forks: snapshot.forks.to_vec(),
                }
            }
            SyncRequest::Events { ids } if ids.len() > MAX_SYNC_BATCH as usize => {
                SyncResponse::Refused(format!("more than {MAX_SYNC_BATCH} ids"))
            }
            request => {
                let service = self.service.clone();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let response = service
                        .read(move |store| crate::sync::answer_from_store(store, request))
                        .await
                        .unwrap_or_else(|e| SyncResponse::Refused(e.to_string()));
                    let _ = done.send(Done::Answer(channel, response)).await;
                });
                return;
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response);
    }

    fn on_response(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        page: u32,
        response: SyncResponse,
    ) {
        match response {
            SyncResponse::Heads { heads, forks } => {
                let own_seq = self
                    .service
                    .member()
                    .and_then(|m| heads.iter().find(|h| &h.author == m))
                    .map_or(0, |h| h.seq);
                let service = self.service.clone();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let wanted = service
                        .read(move |store| crate::sync::wanted(store.ledger(), &heads, &forks))
                        .await;
                    if let Ok(wanted) = wanted {
                        let _ = done.send(Done::Wanted(peer, wanted, own_seq)).await;
                    }
                });
            }
            SyncResponse::Events(events) => {
                if let Err(why) = crate::sync::check_answer(&request, &events) {
                    self.forget_wanted(&request);
                    self.fault(peer, &format!("bad sync answer: {why}"));
                    return;
                }
                self.metrics
                    .sync_events_received
                    .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.store_synced(peer, request, page, events);
            }
            SyncResponse::Refused(why) => {
                self.forget_wanted(&request);
                debug!(%peer, %why, "sync request refused");
            }
        }
    }

    fn store_synced(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        page: u32,
        events: Vec<Vec<u8>>,
    ) {
        let service = self.service.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let results = match service.submit(events).await {
                Ok(results) => results,
                Err(e) => {
                    // Still report back, so the ids asked for are forgotten and asked again later.
                    warn!(error = %e, "storing synced events failed");
                    Vec::new()
                }
            };
            // Nothing stored counts as nothing received: no next page.
            let received = results.len();
            let refused = results
                .iter()
                .filter(|r| matches!(r, Err(Refusal::Admission(e)) if e.blames_sender()))
                .count();
            let stored = |r: &Submitted| {
                matches!(
                    r,
                    Ok(Outcome {
                        status: Status::Stored(_),
                        ..
                    })
                )
            };
            let all_new = results.iter().all(stored);
            let missing = results.iter().flat_map(pending_missing).collect();
            let _ = done
                .send(Done::Synced {
                    peer,
                    request,
                    page,
                    all_new,
                    received,
                    refused,
                    missing,
                })
                .await;
        });
    }
}

/// The next page after a full one: of a feed while every event was new; of the events off the
/// slots (listed by seq and id, the same order at every node) whether or not any was new, since
/// what this node lacks may lie further on. Never past [`MAX_SYNC_PAGES`] in one round (the
/// caller checks).
fn next_page(request: &SyncRequest, received: usize, all_new: bool) -> Option<SyncRequest> {
    match request {
        SyncRequest::Feed {
            author,
            from,
            limit,
        } if all_new && received as u32 == *limit => Some(SyncRequest::Feed {
            author: author.clone(),
            from: from + u64::from(*limit),
            limit: *limit,
        }),
        SyncRequest::OffSlot {
            author,
            from,
            limit,
        } if received as u32 == *limit => Some(SyncRequest::OffSlot {
            author: author.clone(),
            from: from + u64::from(*limit),
            limit: *limit,
        }),
        _ => None,
    }
}

/// What gossip validation does with one message: accept (stored), ignore (waiting, or not
/// judged), or reject it and count a fault when admission refuses its bytes.
fn judge_gossip(result: Option<&Submitted>) -> (MessageAcceptance, Vec<EventId>, bool) {
    match result {
        Some(Ok(Outcome {
            status: Status::Stored(_),
            ..
        })) => (MessageAcceptance::Accept, Vec::new(), false),
        Some(Ok(Outcome {
            status: Status::Pending(missing),
            ..
        })) => (MessageAcceptance::Ignore, missing_events(missing), false),
        Some(Err(Refusal::Admission(e))) if e.blames_sender() => {
            (MessageAcceptance::Reject, Vec::new(), true)
        }
        _ => (MessageAcceptance::Ignore, Vec::new(), false),
    }
}

fn missing_events(missing: &[Missing]) -> Vec<EventId> {
    missing
        .iter()
        .filter_map(|m| {
            if let Missing::Event(id) = m {
                Some(*id)
            } else {
                None
            }
        })
        .take(MAX_SYNC_BATCH as usize)
        .collect()
}

fn pending_missing(r: &Submitted) -> Vec<EventId> {
    match r {
        Ok(Outcome {
            status: Status::Pending(missing),
            ..
        }) => missing_events(missing),
        _ => Vec::new(),
    }
}
