//! custody-node: the participant daemon (init, run, and a one-node development network).

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Parser, Subcommand};

use custody_node::config::write_secret_key;
use custody_node::launch::{self, InitOptions};
use ledger_core::dev::dev_key;
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

fn init(opts: &InitOptions) -> anyhow::Result<PathBuf> {
    let done = launch::init(opts)?;
    if done.dev_genesis {
        println!("no --genesis: using the embedded development genesis (not for real use)");
    }
    if let (Some(key), Some(member)) = (&done.generated_key, &opts.member) {
        println!(
            "generated member key; public key {key} must be listed for {member} in the genesis"
        );
    }
    println!("wrote {}", done.config.display());
    println!("peer id  {}", done.peer_id);
    for a in &done.addresses {
        println!("address  {a}");
    }
    if done.addresses.iter().any(|a| a.contains("/0.0.0.0/")) {
        println!("(other operators put this address in their bootstrap list, with 0.0.0.0 replaced by this host's address)");
    }
    Ok(done.config)
}

fn dev_setup(dir: &Path, http: &str) -> anyhow::Result<PathBuf> {
    let config = dir.join("config.toml");
    if config.exists() {
        return Ok(config);
    }
    std::fs::create_dir_all(dir)?;
    let key = dir.join("dev-member.key");
    write_secret_key(&key, &dev_key("mine-bw"))?;
    init(&InitOptions {
        dir: dir.to_owned(),
        genesis: None,
        member: Some("mine-bw".parse()?),
        key: Some(key),
        http: http.to_owned(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap: vec![],
    })
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
            init(&InitOptions {
                dir: dir.clone(),
                genesis: genesis.clone(),
                member: member.clone(),
                key: key.clone(),
                http: http.clone(),
                listen: listen.clone(),
                bootstrap: bootstrap.clone(),
            })?;
            return Ok(());
        }
        (Some(Command::Run { config }), false) => config.clone(),
        (None, true) => dev_setup(&cli.dir, &cli.http)?,
        (None, false) => bail!("nothing to do: give --dev, or a command (init, run); see --help"),
        (Some(_), true) => bail!("--dev runs on its own; do not combine it with a command"),
    };
    launch::serve(&config_path, false)?;
    Ok(())
}
