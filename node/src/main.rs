//! custody-node: the participant daemon (init, run, and a one-node development network).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use custody_node::config::{api_token, write_secret_key, Config};
use custody_node::node::{node_key, run};
use ledger_core::codec;
use ledger_core::crypto::SecretKey;
use ledger_core::dev::{dev_key, DevNetwork};
use ledger_core::types::MemberId;

/// A custody participant node: gossips signed custody events over libp2p, stores them durably,
/// catches up by itself, and serves an HTTP API on loopback.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  custody-node --dev\n  custody-node init --dir node1 --genesis genesis.bin --member mine-bw --key mine-bw.key\n  custody-node run --config node1/config.toml"
)]
struct Cli {
    /// Run a one-node development network with an embedded genesis in ./custody-dev (or --dir).
    #[arg(long)]
    dev: bool,
    /// Directory for --dev.
    #[arg(long, default_value = "custody-dev", requires = "dev")]
    dir: PathBuf,
    /// HTTP API address for --dev.
    #[arg(long, default_value = custody_node::config::DEFAULT_HTTP, requires = "dev")]
    http: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a configuration and generate what is missing (node key, API token, member key).
    Init {
        /// Directory of the node (config.toml and data).
        #[arg(long)]
        dir: PathBuf,
        /// Genesis document; the embedded development genesis if absent.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// The member this node signs for.
        #[arg(long)]
        member: Option<MemberId>,
        /// The member's key file (hex); a new key is generated if --member is given without it.
        #[arg(long)]
        key: Option<PathBuf>,
        /// HTTP API address.
        #[arg(long, default_value = custody_node::config::DEFAULT_HTTP)]
        http: String,
        /// libp2p listen address (repeatable).
        #[arg(long)]
        listen: Vec<String>,
        /// Bootstrap peer address (repeatable).
        #[arg(long)]
        bootstrap: Vec<String>,
    },
    /// Run a node from its configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
}

fn init(
    dir: &Path,
    genesis: Option<&Path>,
    member: Option<MemberId>,
    key: Option<&Path>,
    http: &str,
    listen: Vec<String>,
    bootstrap: Vec<String>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let genesis_path = dir.join("genesis.bin");
    match genesis {
        Some(g) => {
            std::fs::copy(g, &genesis_path).with_context(|| format!("copying {}", g.display()))?;
        }
        None if !genesis_path.exists() => {
            std::fs::write(
                &genesis_path,
                codec::encode(&DevNetwork::standard().genesis()),
            )?;
            println!("no --genesis: using the embedded development genesis (not for real use)");
        }
        None => {}
    }
    let mut config = Config::new(PathBuf::from("data"), PathBuf::from("genesis.bin"));
    config.http = http.parse().with_context(|| format!("--http {http}"))?;
    if !listen.is_empty() {
        config.listen = listen;
    }
    config.bootstrap = bootstrap;
    if let Some(member) = member {
        let key_path = dir.join("member.key");
        match key {
            Some(k) => {
                std::fs::copy(k, &key_path).with_context(|| format!("copying {}", k.display()))?;
            }
            None if !key_path.exists() => {
                let k = SecretKey::generate();
                write_secret_key(&key_path, &k)?;
                println!("generated member key; public key {} must be listed for {member} in the genesis", k.public());
            }
            None => {}
        }
        config.member = Some(member);
        config.member_key = Some(PathBuf::from("member.key"));
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let loaded = Config {
        data_dir: data,
        ..config.clone()
    };
    api_token(&loaded.token_path())?;
    node_key(&loaded.node_key_path())?;
    let path = dir.join("config.toml");
    config.save(&path)?;
    println!("wrote {}", path.display());
    Ok(path)
}

fn dev_setup(dir: &Path, http: &str) -> anyhow::Result<PathBuf> {
    let config = dir.join("config.toml");
    if config.exists() {
        return Ok(config);
    }
    std::fs::create_dir_all(dir)?;
    let key = dir.join("dev-member.key");
    write_secret_key(&key, &dev_key("mine-bw"))?;
    init(
        dir,
        None,
        Some("mine-bw".parse()?),
        Some(&key),
        http,
        vec!["/ip4/127.0.0.1/tcp/0".into()],
        vec![],
    )
}

async fn shutdown_signal() {
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config_path = match (&cli.command, cli.dev) {
        (
            Some(Command::Init {
                dir,
                genesis,
                member,
                key,
                http,
                listen,
                bootstrap,
            }),
            false,
        ) => {
            init(
                dir,
                genesis.as_deref(),
                member.clone(),
                key.as_deref(),
                http,
                listen.clone(),
                bootstrap.clone(),
            )?;
            return Ok(());
        }
        (Some(Command::Run { config }), false) => config.clone(),
        (None, true) => dev_setup(&cli.dir, &cli.http)?,
        (None, false) => bail!("nothing to do: give --dev, or a command (init, run); see --help"),
        (Some(_), true) => bail!("--dev runs on its own; do not combine it with a command"),
    };
    let config = Config::load(&config_path)?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, shutdown_signal()))?;
    Ok(())
}
