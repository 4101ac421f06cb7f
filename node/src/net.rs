//! libp2p networking: gossip of events, a request-response sync protocol, anti-entropy, peer penalties.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    connection_limits, identify, identity, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol,
    Swarm,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use ledger_core::admission::{event_id, SIGNATURE_LEN};
use ledger_core::bytes::{EventId, NetworkId};
use ledger_core::codec::{self, MAX_EVENT_BYTES, MAX_GENESIS_BYTES};
use ledger_core::crypto::sha256;
use ledger_core::ledger::Missing;
use ledger_core::store::{Outcome, Refusal, Status};
use ledger_core::types::MemberId;

use crate::config::LimitsConfig;
use crate::metrics::Metrics;
use crate::service::{read, Service, Submitted};

/// Most events in one sync response.
pub const MAX_SYNC_BATCH: u32 = 256;
/// Largest encoded sync request.
pub const MAX_SYNC_REQUEST: usize = 64 * 1024;
/// Largest encoded sync response (events are added until the next would pass this).
pub const MAX_SYNC_RESPONSE: usize = MAX_GENESIS_BYTES;
/// Largest gossip message: one event plus protobuf framing.
pub const MAX_TRANSMIT: usize = MAX_EVENT_BYTES + 1024;
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
/// The sync protocol's name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/custody/sync/1");

/// A feed head as sync exchanges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub author: MemberId,
    pub seq: u64,
    pub id: EventId,
}

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Every feed head.
    Heads,
    /// Events `from..from+limit` of one feed.
    Feed {
        author: MemberId,
        from: u64,
        limit: u32,
    },
    /// Events by id.
    Events { ids: Vec<EventId> },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    Heads(Vec<Head>),
    Events(Vec<Vec<u8>>),
    Refused(String),
}

/// Length-prefixed, size-limited bincode framing of sync messages.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncRequest> {
        let buf = read_frame(io, MAX_SYNC_REQUEST).await?;
        codec::decode(&buf, MAX_SYNC_REQUEST).map_err(invalid)
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncResponse> {
        let buf = read_frame(io, MAX_SYNC_RESPONSE).await?;
        codec::decode(&buf, MAX_SYNC_RESPONSE).map_err(invalid)
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> std::io::Result<()> {
        write_frame(io, &codec::encode(&req)).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> std::io::Result<()> {
        write_frame(io, &codec::encode(&res)).await
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    limits: connection_limits::Behaviour,
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

/// What the rest of the node can ask of the network task.
#[derive(Debug)]
pub enum NetCommand {
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
}

/// A handle to the network task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    pub commands: mpsc::Sender<NetCommand>,
    pub status: Arc<Mutex<NetStatus>>,
}

impl NetHandle {
    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(NetCommand::Dial(addr, tx))
            .await
            .map_err(|_| "network task stopped".to_owned())?;
        rx.await.map_err(|_| "network task stopped".to_owned())?
    }

    /// A copy of the current status.
    pub fn status(&self) -> NetStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Results of background work, returned to the event loop.
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
    Synced {
        peer: PeerId,
        request: SyncRequest,
        received: usize,
        missing: Vec<EventId>,
    },
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
    let max_connections = limits.max_connections;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("transport: {e}"))?
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .validate_messages()
                .validation_mode(ValidationMode::Strict)
                .message_id_fn(|m| message_id(&m.data))
                .max_transmit_size(MAX_TRANSMIT)
                .heartbeat_interval(Duration::from_millis(500))
                // Duplicates are cheap for the store to recognise; a long cache only costs memory.
                .duplicate_cache_time(DUPLICATE_CACHE)
                .build()
                .map_err(|e| format!("gossipsub config: {e}"))?;
            let gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
            let sync = request_response::Behaviour::with_codec(
                SyncCodec,
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(64),
            );
            let identify =
                identify::Behaviour::new(identify::Config::new("/custody/1".into(), key.public()));
            let limits = connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(max_connections))
                    .with_max_established_per_peer(Some(2))
                    .with_max_pending_incoming(Some(32)),
            );
            Ok(Behaviour {
                gossipsub,
                sync,
                identify,
                limits,
            })
        })
        .map_err(|e| format!("behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
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
        ban_order: std::collections::VecDeque::new(),
        max_faults: limits.max_peer_faults,
        requests: HashMap::new(),
        done_tx,
        sync_interval: Duration::from_secs(limits.sync_interval_secs.max(1)),
        gossip: Vec::new(),
        validating: 0,
    };
    let task = tokio::spawn(event_loop.run(command_rx, publish, done_rx));
    Ok((NetHandle { commands, status }, task))
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
    ban_order: std::collections::VecDeque<PeerId>,
    max_faults: u32,
    requests: HashMap<OutboundRequestId, SyncRequest>,
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
                Some(bytes) = publish.recv() => {
                    if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), bytes) {
                        debug!(error = %e, "publish: peers will get the event by sync");
                    }
                }
                Some(d) = done.recv() => self.on_done(d),
                command = commands.recv() => match command {
                    Some(NetCommand::Dial(addr, reply)) => {
                        let _ = reply.send(self.swarm.dial(addr).map_err(|e| e.to_string()));
                    }
                    Some(NetCommand::Publish(bytes)) => {
                        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), bytes) {
                            debug!(error = %e, "publish: peers will get the event by sync");
                        }
                    }
                    Some(NetCommand::Shutdown) | None => break,
                },
                _ = tick.tick() => self.anti_entropy(),
                _ = batch_tick.tick(), if !self.gossip.is_empty() => self.validate_gossip(),
            }
        }
        info!("network task stopped");
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
            self.request(peer, SyncRequest::Heads);
        }
    }

    fn request(&mut self, peer: PeerId, request: SyncRequest) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, request.clone());
        self.requests.insert(id, request);
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
                ..
            } => {
                if self.banned.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, "connected; comparing heads");
                    self.request(peer_id, SyncRequest::Heads);
                }
                self.publish_status();
            }
            SwarmEvent::ConnectionClosed { .. } => self.publish_status(),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let response = self.answer(request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let request = self.requests.remove(&request_id);
                    self.on_response(peer, request, response);
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure {
                    peer,
                    request_id,
                    error,
                    ..
                },
            )) => {
                self.requests.remove(&request_id);
                debug!(%peer, %error, "sync request failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::InboundFailure { peer, error, .. },
            )) => {
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    self.fault(peer, "malformed sync request");
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        if self.banned.contains(&source) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Reject);
            return;
        }
        if self.validating + self.gossip.len() >= MAX_VALIDATING {
            // Too much being validated: do not forward this one; sync will bring it if it matters.
            self.metrics
                .gossip_ignored
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
            return;
        }
        self.gossip.push((id, source, data));
        if self.gossip.len() >= GOSSIP_BATCH {
            self.validate_gossip();
        }
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
                    let (acceptance, missing, fault) = match results.as_ref().map(|r| r.get(i)) {
                        Ok(Some(Ok(Outcome {
                            status: Status::Stored(_),
                            ..
                        }))) => (MessageAcceptance::Accept, Vec::new(), false),
                        Ok(Some(Ok(Outcome {
                            status: Status::Pending(missing),
                            ..
                        }))) => (MessageAcceptance::Ignore, missing_events(missing), false),
                        Ok(Some(Err(Refusal::Admission(e)))) if e.blames_sender() => {
                            (MessageAcceptance::Reject, Vec::new(), true)
                        }
                        _ => (MessageAcceptance::Ignore, Vec::new(), false),
                    };
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
        use std::sync::atomic::Ordering::Relaxed;
        match done {
            Done::Validated(verdicts) => {
                self.validating = self.validating.saturating_sub(verdicts.len());
                for Validated {
                    id,
                    source,
                    acceptance,
                    missing,
                    fault,
                } in verdicts
                {
                    match acceptance {
                        MessageAcceptance::Accept => {
                            self.metrics.gossip_accepted.fetch_add(1, Relaxed)
                        }
                        MessageAcceptance::Reject => {
                            self.metrics.gossip_rejected.fetch_add(1, Relaxed)
                        }
                        MessageAcceptance::Ignore => {
                            self.metrics.gossip_ignored.fetch_add(1, Relaxed)
                        }
                    };
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, acceptance);
                    if fault {
                        self.fault(source, "peer sent an event that admission refuses");
                    }
                    if !missing.is_empty() && !self.banned.contains(&source) {
                        self.request(source, SyncRequest::Events { ids: missing });
                    }
                }
            }
            Done::Synced {
                peer,
                request,
                received,
                missing,
            } => {
                if let SyncRequest::Feed {
                    author,
                    from,
                    limit,
                } = request
                {
                    if received as u32 == limit {
                        self.request(
                            peer,
                            SyncRequest::Feed {
                                author,
                                from: from + limit as u64,
                                limit,
                            },
                        );
                    }
                }
                if !missing.is_empty() {
                    self.request(peer, SyncRequest::Events { ids: missing });
                }
            }
        }
    }

    /// Answers a sync request from the local store, within the batch and size limits.
    fn answer(&self, request: SyncRequest) -> SyncResponse {
        let store = read(self.service.store());
        let ledger = store.ledger();
        match request {
            SyncRequest::Heads => SyncResponse::Heads(
                ledger
                    .feeds()
                    .iter()
                    .filter_map(|(author, f)| {
                        f.head().map(|(seq, id)| Head {
                            author: author.clone(),
                            seq,
                            id,
                        })
                    })
                    .collect(),
            ),
            SyncRequest::Feed {
                author,
                from,
                limit,
            } => {
                let Some(feed) = ledger.feed(&author) else {
                    return SyncResponse::Events(Vec::new());
                };
                let from = from.max(1);
                let ids = feed
                    .ids
                    .iter()
                    .skip((from - 1) as usize)
                    .take(limit.min(MAX_SYNC_BATCH) as usize);
                SyncResponse::Events(collect_events(&store, ids))
            }
            SyncRequest::Events { ids } => {
                if ids.len() > MAX_SYNC_BATCH as usize {
                    return SyncResponse::Refused(format!("more than {MAX_SYNC_BATCH} ids"));
                }
                SyncResponse::Events(collect_events(&store, ids.iter()))
            }
        }
    }

    fn on_response(&mut self, peer: PeerId, request: Option<SyncRequest>, response: SyncResponse) {
        let Some(request) = request else { return };
        match response {
            SyncResponse::Heads(heads) => {
                let wanted: Vec<SyncRequest> = {
                    let store = read(self.service.store());
                    let ledger = store.ledger();
                    heads
                        .into_iter()
                        .filter_map(|h| {
                            let have = ledger.feed(&h.author).map_or(0, |f| f.ids.len() as u64);
                            let known = ledger.event(&h.id).is_some();
                            (h.seq > have
                                && !known
                                && ledger
                                    .governance()
                                    .at(0)
                                    .is_some_and(|g| g.members.contains_key(&h.author)))
                            .then(|| SyncRequest::Feed {
                                author: h.author,
                                from: have + 1,
                                limit: MAX_SYNC_BATCH,
                            })
                        })
                        .collect()
                };
                for r in wanted {
                    self.request(peer, r);
                }
            }
            SyncResponse::Events(events) => {
                let limit = match &request {
                    SyncRequest::Feed { limit, .. } => *limit as usize,
                    SyncRequest::Events { ids } => ids.len(),
                    SyncRequest::Heads => 0,
                };
                if events.len() > limit.min(MAX_SYNC_BATCH as usize) {
                    self.fault(peer, "sync response larger than asked");
                    return;
                }
                self.metrics
                    .sync_events_received
                    .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let service = self.service.clone();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let received = events.len();
                    let missing = match service.submit(events).await {
                        Ok(results) => results.iter().flat_map(pending_missing).collect(),
                        Err(e) => {
                            warn!(error = %e, "storing synced events failed");
                            return;
                        }
                    };
                    let _ = done
                        .send(Done::Synced {
                            peer,
                            request,
                            received,
                            missing,
                        })
                        .await;
                });
            }
            SyncResponse::Refused(why) => debug!(%peer, %why, "sync request refused"),
        }
    }
}

fn collect_events<'a>(
    store: &ledger_core::store::Store,
    ids: impl Iterator<Item = &'a EventId>,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut size = 64usize;
    for id in ids {
        let Ok(Some(bytes)) = store.event_bytes(id) else {
            continue;
        };
        size += bytes.len() + 16;
        if size > MAX_SYNC_RESPONSE {
            break;
        }
        out.push(bytes);
    }
    out
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
