//! Setting up a node directory (`init`) and running a node process until SIGINT or SIGTERM, shared by `custody-node` and `custody demo`.

use std::path::{Path, PathBuf};

use ledger_core::bytes::PublicKeyBytes;
use ledger_core::codec;
use ledger_core::crypto::SecretKey;
use ledger_core::dev::DevNetwork;
use ledger_core::types::MemberId;

use crate::config::{api_token, write_secret_key, Config, ConfigError};
use crate::node::{node_key, run, NodeError};

/// What `init` is to set up.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Directory of the node (config.toml and data).
    pub dir: PathBuf,
    /// Genesis document to copy; the embedded development genesis if `None`.
    pub genesis: Option<PathBuf>,
    /// The member the node signs for.
    pub member: Option<MemberId>,
    /// The member's key file to copy; a new key is generated when absent.
    pub key: Option<PathBuf>,
    /// HTTP API address.
    pub http: String,
    /// libp2p listen addresses (the default when empty).
    pub listen: Vec<String>,
    /// Bootstrap peers.
    pub bootstrap: Vec<String>,
}

/// What `init` did.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub config: PathBuf,
    /// The embedded development genesis was written (no `--genesis`).
    pub dev_genesis: bool,
    /// A member key was generated; its public key must be listed in the genesis.
    pub generated_key: Option<PublicKeyBytes>,
    /// The node's libp2p peer id (from its identity key).
    pub peer_id: String,
    /// The addresses other operators dial (`bootstrap`): each listen address with `/p2p/PEER`.
    pub addresses: Vec<String>,
}

/// Why a node could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |source| LaunchError::Io { what, source }
}

/// Writes a node directory: config.toml, the genesis, the member key, the node's libp2p key and
/// the API token (both mode 0600). Keeps what is already there.
pub fn init(opts: &InitOptions) -> Result<Initialized, LaunchError> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let genesis_path = dir.join("genesis.bin");
    let mut dev_genesis = false;
    match &opts.genesis {
        Some(g) => {
            std::fs::copy(g, &genesis_path).map_err(io(format!("copying {}", g.display())))?;
        }
        None if !genesis_path.exists() => {
            std::fs::write(
                &genesis_path,
                codec::encode(&DevNetwork::standard().genesis()),
            )
            .map_err(io(format!("writing {}", genesis_path.display())))?;
            dev_genesis = true;
        }
        None => {}
    }
    let mut config = Config::new(PathBuf::from("data"), PathBuf::from("genesis.bin"));
    config.http = opts
        .http
        .parse()
        .map_err(|e| LaunchError::Invalid(format!("HTTP address {}: {e}", opts.http)))?;
    if !opts.listen.is_empty() {
        config.listen = opts.listen.clone();
    }
    config.bootstrap = opts.bootstrap.clone();
    let mut generated_key = None;
    if let Some(member) = &opts.member {
        let key_path = dir.join("member.key");
        match &opts.key {
            Some(k) => {
                std::fs::copy(k, &key_path).map_err(io(format!("copying {}", k.display())))?;
            }
            None if !key_path.exists() => {
                let k = SecretKey::generate();
                write_secret_key(&key_path, &k)?;
                generated_key = Some(k.public());
            }
            None => {}
        }
        config.member = Some(member.clone());
        config.member_key = Some(PathBuf::from("member.key"));
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
    let loaded = Config {
        data_dir: data,
        ..config.clone()
    };
    api_token(&loaded.token_path())?;
    let peer_id = node_key(&loaded.node_key_path())?
        .public()
        .to_peer_id()
        .to_string();
    let addresses = config
        .listen
        .iter()
        .map(|a| format!("{a}/p2p/{peer_id}"))
        .collect();
    let path = dir.join("config.toml");
    config.save(&path)?;
    Ok(Initialized {
        config: path,
        dev_genesis,
        generated_key,
        peer_id,
        addresses,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

/// Resolves when standard input reaches its end (the parent that started this node closed it
/// or went away).
async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Runs the node of `config_path` in this process until SIGINT or SIGTERM (or, with
/// `stop_on_stdin_eof`, until standard input closes): structured logs on stderr (`RUST_LOG`, or
/// the config's `log`), a multi-threaded runtime, a clean stop.
pub fn serve(config_path: &Path, stop_on_stdin_eof: bool) -> Result<(), LaunchError> {
    let config = Config::load(config_path)?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.clone());
    // A second subscriber in one process is refused; the first one stays, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    let stop = async move {
        if stop_on_stdin_eof {
            tokio::select! {
                _ = shutdown_signal() => {},
                _ = stdin_closed() => {},
            }
        } else {
            shutdown_signal().await;
        }
    };
    runtime.block_on(run(config, stop))?;
    Ok(())
}
