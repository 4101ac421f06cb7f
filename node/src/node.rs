//! Starting and stopping a whole node: store, writer, network and HTTP API, from a configuration.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libp2p::identity;
use tokio::sync::mpsc;
use tracing::{info, warn};

use ledger_core::bytes::{from_hex, to_hex};
use ledger_core::ledger::Limits;
use ledger_core::store::{Store, StoreError};

use crate::api::{router, AppState};
use crate::config::{api_token, read_small, write_private, Config, ConfigError};
use crate::http::HttpLimits;
use crate::metrics::Metrics;
use crate::net::{self, NetCommand, NetHandle};
use crate::service::{Service, PUBLISH_QUEUE};

/// How long shutdown waits for the writer to finish what it was given.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("network: {0}")]
    Net(String),
    #[error("HTTP API on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the writer did not stop within {SHUTDOWN_WAIT:?}")]
    StuckWriter,
}

/// Reads the node's libp2p key, creating one (mode 0600) if there is none.
pub fn node_key(path: &Path) -> Result<identity::Keypair, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    };
    if path.exists() {
        let text = read_small(path)?;
        let bytes = from_hex::<32>(String::from_utf8_lossy(&text).trim())
            .map_err(|e| invalid(e.to_string()))?;
        return identity::Keypair::ed25519_from_bytes(bytes).map_err(|e| invalid(e.to_string()));
    }
    let bytes: [u8; 32] = rand::random();
    write_private(path, format!("{}\n", to_hex(&bytes)).as_bytes())?;
    identity::Keypair::ed25519_from_bytes(bytes).map_err(|e| invalid(e.to_string()))
}

/// Runs a node until `shutdown` resolves, then stops accepting, lets the writer finish and
/// returns. Everything acknowledged before was durable already.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let genesis = config.read_genesis()?;
    // A member governance admitted (or whose key it rotated) is not in the genesis: the writer
    // checks the member and key against the newest governance version it knows instead.
    let member = config.member.clone().zip(config.read_member_key()?);
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ConfigError::Io {
        path: config.data_dir.clone(),
        source,
    })?;
    // A stale address file from an earlier run must not be mistaken for this run's.
    let _ = std::fs::remove_file(config.data_dir.join("http.addr"));
    let limits = Limits {
        max_pending_events: config.limits.max_pending_events,
        max_pending_per_author: config.limits.max_pending_per_author,
        ..Limits::default()
    };
    let store_dir = config.store_dir();
    let store =
        tokio::task::spawn_blocking(move || Store::open_or_create(&store_dir, &genesis, limits))
            .await
            .map_err(|e| NodeError::Net(format!("store task: {e}")))??;
    info!(events = store.len(), network = %store.ledger().network(), "store open; chains checked");
    let metrics = Arc::new(Metrics::default());
    let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
    let (service, writer) = Service::start(store, member, metrics.clone(), publish_tx)?;
    let key = node_key(&config.node_key_path())?;
    let (net, net_task) = net::start(
        key,
        &config.listen,
        &config.bootstrap,
        &config.limits,
        service.clone(),
        metrics.clone(),
        publish_rx,
    )
    .await
    .map_err(NodeError::Net)?;
    let token: Arc<str> = api_token(&config.token_path())?.into();
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|source| NodeError::Http {
            addr: config.http,
            source,
        })?;
    let http = listener.local_addr().map_err(|source| NodeError::Http {
        addr: config.http,
        source,
    })?;
    // Tell whoever started us where the API is (tests and scripts wait for this file). Written
    // beside and renamed, so that a reader never sees it half-written.
    let addr_file = config.data_dir.join("http.addr");
    let partial = config.data_dir.join("http.addr.partial");
    std::fs::write(&partial, http.to_string())
        .and_then(|()| std::fs::rename(&partial, &addr_file))
        .map_err(|source| ConfigError::Io {
            path: addr_file.clone(),
            source,
        })?;
    info!(%http, member = ?service.member(), "HTTP API listening");
    let witness = spawn_witness(
        service.clone(),
        config.limits.checkpoint_interval_secs,
        Gate {
            service: service.clone(),
            net: net.clone(),
            started_ms: crate::service::now_ms(),
            lone: config.bootstrap.is_empty(),
            opened: false,
        },
    );
    let state = AppState {
        service,
        net: net.clone(),
        metrics,
        token,
        bundle_index: crate::bundle::IndexCache::default(),
    };
    crate::http::serve(
        listener,
        router(state),
        HttpLimits::from_config(&config.limits),
        shutdown,
    )
    .await;
    info!("shutting down: HTTP stopped");
    if let Some(w) = witness {
        w.abort();
    }
    let _ = net.commands.send(NetCommand::Shutdown).await;
    let _ = net_task.await;
    // The writer stops once every handle to it is gone; wait for it to finish its last group.
    let joined = tokio::time::timeout(
        SHUTDOWN_WAIT,
        tokio::task::spawn_blocking(move || writer.join()),
    )
    .await;
    match joined {
        Ok(_) => {
            info!("stopped cleanly");
            Ok(())
        }
        Err(_) => {
            warn!("writer still busy at shutdown");
            Err(NodeError::StuckWriter)
        }
    }
}

/// Whether this node has caught up with the network since it started, so that its witness may
/// sign: a node restored from an old backup, signing first, would sign beside its own later
/// events (a fork of its own feed) and cosign its old replica. Once open it stays open.
struct Gate {
    service: Service,
    net: NetHandle,
    started_ms: u64,
    /// No bootstrap peer configured: a lone node may sign while no peer is connected.
    lone: bool,
    opened: bool,
}

impl Gate {
    /// True once a sync round since the start, with a peer holding this node's member's feed at
    /// least as far as this node does, found nothing this node lacked (a peer that knows less, an
    /// empty one, proves nothing); or for a lone node with no peer connected.
    fn open(&mut self) -> bool {
        if self.opened {
            return true;
        }
        let own = self.service.member().map_or(0, |m| {
            let snapshot = self.service.snapshot();
            snapshot
                .heads
                .iter()
                .find(|h| &h.author == m)
                .map_or(0, |h| h.seq)
        });
        let status = self.net.status();
        let caught_up = status
            .rounds
            .values()
            .any(|r| r.at_ms >= self.started_ms && r.missing == 0 && r.own_seq >= own);
        self.opened = caught_up || (self.lone && status.peers.is_empty());
        self.opened
    }
}

/// Checkpoints and cosigns the replica every `secs` seconds (0: never) while the node runs. A
/// refusal (no witness duty, or a view that does not extend the last one cosigned) is logged.
/// Every `secs`: a witness checkpoints its replica as of the newest cutoff and cosigns it; every
/// node keeps the checkpoints other witnesses cosigned that its replica makes too, and a witness
/// cosigns those as well (it may have been behind at its own turn).
/// A member signs nothing here until `gate` is open.
fn spawn_witness(
    service: Service,
    secs: u64,
    mut gate: Gate,
) -> Option<tokio::task::JoinHandle<()>> {
    if secs == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs));
        tick.tick().await;
        let mut warned = false;
        loop {
            tick.tick().await;
            let cutoff = crate::witness::cutoff(crate::service::now_ms(), secs);
            let open = gate.open();
            let sign = service.member().is_some() && open;
            if service.member().is_some() && !open && !warned {
                warn!(
                    "not cosigning yet: this node has not caught up with a peer since it started"
                );
                warned = true;
            }
            if sign {
                cosign(&service, cutoff, None).await;
            }
            match service.adopt_checkpoints().await {
                Ok(kept) => {
                    for cp in kept {
                        info!(
                            time = cp.time_ms,
                            "kept a checkpoint other witnesses cosigned"
                        );
                        if sign {
                            cosign(&service, cp.time_ms, Some(cp)).await;
                        }
                    }
                }
                Err(e) => warn!(error = %e, "could not look for cosigned checkpoints"),
            }
        }
    }))
}

/// Asks the service to cosign the checkpoint of `cutoff` (or exactly `target`), and logs why not.
async fn cosign(service: &Service, cutoff: u64, target: Option<ledger_core::event::Checkpoint>) {
    use crate::service::ActError;
    use crate::witness::WitnessError;
    match service.checkpoint(cutoff, target).await {
        Ok(acted) => info!(event = %acted.event, cutoff, "checkpoint cosigned"),
        // Nothing new, or not a witness: nothing to say every interval.
        Err(ActError::Witness(WitnessError::Cosigned | WitnessError::NoDuty(_))) => {}
        Err(e) => warn!(error = %e, cutoff, "no checkpoint cosigned"),
    }
}
