//! custody: the command line over ledger-core and the node API (keys, genesis, actions, governance, audit, replay, export, demo).

mod act;
mod bundle;
mod checkpoint;
mod client;
mod demo;
mod epcis;
mod gov;
mod inspect;
mod keys;
mod offline;
mod stats;
mod status;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use act::ActError;
use client::{ClientError, Node};
use custody_node::actions::Action;
use inspect::{AuditFormat, Source};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Largest token file read.
const MAX_TOKEN_FILE: u64 = 4096;

/// Exit status: the command did what was asked and everything checked out.
const EXIT_OK: u8 = 0;
/// Exit status: a refusal, a void verdict, an unknown parcel, or a log that is not intact.
const EXIT_NO: u8 = 1;
/// Exit status: bad arguments or input files (clap uses 2 as well).
const EXIT_USAGE: u8 = 2;
/// Exit status: the node could not be reached.
const EXIT_UNREACHABLE: u8 = 3;

/// custody: a permissioned, append-only chain-of-custody log for rough diamonds.
///
/// Reads (audit, replay, export) trust nothing from the node but bytes: every signature, link and
/// verdict is checked locally. Actions are signed by your node for its member.
#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    after_help = "Examples:\n  custody demo\n  custody audit parcel 3f2a... --node http://127.0.0.1:7300\n  custody replay --file log.export --genesis genesis.bin\n  CUSTODY_TOKEN=$(cat node/data/api-token) custody register --site jwaneng --carats 1250.00 --extracted-on 2026-03-02\n\nExit status: 0 ok, 1 refused / void / not intact / unknown, 2 bad arguments or files, 3 node unreachable."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// The node's HTTP API.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:7300",
        env = "CUSTODY_NODE"
    )]
    node: String,
    /// File holding the node's API token (for actions); or set CUSTODY_TOKEN.
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Print JSON (documented in docs/cli.md) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Print the time taken and the peak memory (RSS) to stderr at the end.
    #[arg(long, global = true)]
    stats: bool,
    /// For actions: print the event body the node would sign (certificate values filled from
    /// its parcels, numbers resolved), and sign nothing.
    #[arg(long, global = true)]
    dry_run: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Member keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Genesis documents.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    #[command(flatten)]
    Act(Action),
    /// Governance through your node: propose, endorse, object, submit, show.
    #[command(
        subcommand,
        after_help = "Examples:\n  custody gov show\n  custody gov propose suspend --member mine-zw --last-valid-seq 12 --reason \"licence withdrawn\"\n  custody gov endorse 3f2a...\n  custody gov submit 3f2a..."
    )]
    Gov(gov::GovCommand),
    /// Audit one parcel: its whole ancestry, origin shares, history with verdicts, findings.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Verify and replay a whole log locally, and summarise it; exit 1 if it is not intact.
    #[command(
        after_help = "Examples:\n  custody replay --node http://127.0.0.1:7300\n  custody replay --file log.export --genesis genesis.bin --json"
    )]
    Replay {
        #[command(flatten)]
        source: SourceArgs,
        /// Check every signature with verify_strict (slower) instead of batch verification.
        #[arg(long)]
        strict: bool,
    },
    /// Verify a node's newest checkpoint and remember it: refuse a node that shows an older or
    /// inconsistent one than this client saw before (a rollback); exit 1 then.
    #[command(
        after_help = "Examples:\n  custody checkpoint --node http://127.0.0.1:7300\n  custody checkpoint --state ./checkpoints.json --json"
    )]
    Checkpoint {
        /// The state file (default: $XDG_STATE_HOME/custody/checkpoints.json, else
        /// ~/.local/state/custody/checkpoints.json).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Verify a parcel's proof bundle offline, with no node: its events, their inclusion in the
    /// checkpoint, the witnesses' cosignatures; then print the parcel's audit as of it.
    #[command(
        after_help = "Example:\n  custody verify-bundle parcel.bundle --genesis genesis.bin --witnesses 2"
    )]
    VerifyBundle {
        /// The bundle file (from `custody audit parcel ID --bundle FILE`).
        file: PathBuf,
        /// The network's genesis document.
        #[arg(long)]
        genesis: PathBuf,
        /// Witness cosignatures required of the checkpoint (default: the policy's value).
        #[arg(long, value_name = "K")]
        witnesses: Option<usize>,
        /// Print the ancestry as a Graphviz digraph.
        #[arg(long, conflicts_with = "json")]
        dot: bool,
    },
    /// Kimberley Process statistics per country from a verified replay: production
    /// (registered, declared), exports and imports (carats, US$, US$/ct), certificates issued
    /// and confirmed, findings by code.
    #[command(
        after_help = "Examples:\n  custody stats --year 2026\n  custody stats --file log.export --genesis genesis.bin --csv > kp-2026.csv"
    )]
    Stats {
        #[command(flatten)]
        source: SourceArgs,
        /// Only this calendar year (by extraction date, certificate issue date, period start).
        #[arg(long)]
        year: Option<u32>,
        /// Print CSV: one row per country, a column per finding code.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Follow new events (or findings) as they arrive; reconnects by itself and never misses
    /// or repeats one across a reconnect or a node restart.
    #[command(
        after_help = "Examples:\n  custody watch --origin ZW --finding embargoed-origin\n  custody watch --member exporter-bw --json"
    )]
    Watch {
        /// Events on this parcel.
        #[arg(long)]
        parcel: Option<String>,
        /// Events by, to or about this member.
        #[arg(long)]
        member: Option<String>,
        /// Events on parcels of this origin: a country (ZW) or a site (mine-zw/marange).
        #[arg(long)]
        origin: Option<String>,
        /// Print findings of this code (or `any`) instead of events.
        #[arg(long)]
        finding: Option<String>,
        /// Stop after this many items.
        #[arg(long)]
        max: Option<u64>,
        /// Resume after this item id (`P.K`, as printed with --json); by default, from now on.
        #[arg(long)]
        after: Option<String>,
    },
    /// A node at a glance: network, member, peers, events, pending, newest checkpoint, and
    /// whether it is in sync with its peers; exit 1 when it is behind a peer or unhealthy.
    #[command(after_help = "Example:\n  custody status --node http://127.0.0.1:7300")]
    Status,
    /// Save what `custody sign` needs to sign a member's next event offline: its feed position,
    /// the parcels and certificate numbers the action will name.
    #[command(
        after_help = "Example:\n  custody context --member authority-bw --parcel 3f2a... --out authority-bw.context"
    )]
    Context {
        /// The member who will sign.
        #[arg(long)]
        member: String,
        /// A parcel the action names (repeat): ID at its current head, or ID@HEAD at an earlier
        /// event on it (to reproduce an attempt from that state, e.g. a double dispatch).
        #[arg(long = "parcel")]
        parcels: Vec<String>,
        /// A certificate number the action names (repeat).
        #[arg(long = "certificate")]
        certificates: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Build and sign an action as your member's next event, offline, from a signing context:
    /// no node is needed, and the key never touches a networked machine.
    #[command(
        after_help = "Example:\n  custody sign --key authority-bw.key --context authority-bw.context --out cert.event \\\n    certify --number BW-2026-0042 --exporter exporter-bw --importer importer-be --destination BE \\\n    --parcel 3f2a... --hs-code 7102.31 --issued-on 2026-04-01 --expires-on 2026-06-30"
    )]
    Sign {
        /// The member's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The signing context (from `custody context`).
        #[arg(long)]
        context: PathBuf,
        /// Where to write the signed event.
        #[arg(long)]
        out: PathBuf,
        #[command(subcommand)]
        action: Action,
    },
    /// Post a signed event (from `custody sign`) to a node; exit 1 unless it applied (a void
    /// event is stored all the same: the attempt is on record).
    #[command(after_help = "Example:\n  custody submit cert.event --node http://127.0.0.1:7300")]
    Submit {
        /// The event file.
        file: PathBuf,
    },
    /// Save a node's whole log to a file in the export format.
    #[command(
        after_help = "Example:\n  custody export --node http://127.0.0.1:7300 --out log.export"
    )]
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Start a local network, run a scripted custody story, print the audit and the replay.
    #[command(after_help = "Example:\n  custody demo\n  custody demo --nodes 12 --keep-running")]
    Demo {
        /// Nodes to start: one per member of the story (9), plus observers up to 16.
        #[arg(long, default_value_t = demo::CAST.len())]
        nodes: usize,
        /// Keep the network running after the story (Ctrl-C stops it).
        #[arg(long)]
        keep_running: bool,
    },
    /// Run a node of `custody demo` (internal).
    #[command(hide = true)]
    NodeProcess {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a member key.
    #[command(
        after_help = "Examples:\n  custody key new --out mine-bw.key\n  custody key new > mine-bw.key"
    )]
    New {
        /// Write the secret key here (mode 0600); otherwise it goes to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a key file's public key and fingerprint.
    #[command(after_help = "Example:\n  custody key show mine-bw.key")]
    Show { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Write a genesis document from a members file (format in docs/cli.md).
    #[command(
        after_help = "Example:\n  custody genesis new --members members.toml --out genesis.bin"
    )]
    New {
        #[arg(long)]
        members: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Show a genesis: members, chambers, roles, policy and network id.
    #[command(after_help = "Example:\n  custody genesis show genesis.bin")]
    Show { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Audit one parcel, verified locally: by default from its proof bundle, as of the node's
    /// newest cosigned checkpoint (checked against the newest one this client saw: no rollback);
    /// with --full (or --file) by replaying the whole log.
    #[command(
        after_help = "Examples:\n  custody audit parcel 3f2a...\n  custody audit parcel 3f2a... --bundle parcel.bundle --witnesses 2\n  custody audit parcel 3f2a... --full --dot | dot -Tsvg > parcel.svg\n  custody audit parcel 3f2a... --file log.export --genesis genesis.bin --json\n  custody audit parcel 3f2a... --epcis > parcel.epcis.json"
    )]
    Parcel {
        /// The parcel id (64 hex characters).
        id: String,
        #[command(flatten)]
        source: SourceArgs,
        /// Print the ancestry as a Graphviz digraph.
        #[arg(long, conflicts_with = "json")]
        dot: bool,
        /// Replay the node's whole log instead of verifying the parcel's bundle: as of the newest
        /// event, every event checked, not only those bearing on the parcel.
        #[arg(long, conflicts_with_all = ["bundle", "witnesses"])]
        full: bool,
        /// Also write the verified bundle to FILE (for `custody verify-bundle`).
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        bundle: Option<PathBuf>,
        /// Witness cosignatures required of the checkpoint (default: the policy's value).
        #[arg(long, value_name = "K", conflicts_with = "file")]
        witnesses: Option<usize>,
        /// The state file of checkpoints seen (as for `custody checkpoint`).
        #[arg(long, conflicts_with = "file")]
        state: Option<PathBuf>,
        /// Print the parcel's lineage as a GS1 EPCIS 2.0 JSON-LD document (from a full replay).
        #[arg(long, conflicts_with_all = ["dot", "bundle", "witnesses"])]
        epcis: bool,
    },
}

/// Where to read a log: a node (the default, --node), or an export file with its genesis.
#[derive(Debug, Clone, Args)]
struct SourceArgs {
    /// An export file (from `custody export`) instead of a node.
    #[arg(long, requires = "genesis")]
    file: Option<PathBuf>,
    /// The network's genesis document (needed with --file; with a node, pins the network).
    #[arg(long)]
    genesis: Option<PathBuf>,
}

/// An argument or input file that is wrong (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn token(common: &Common) -> anyhow::Result<Option<String>> {
    if let Some(path) = &common.token_file {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TOKEN_FILE).read_to_string(&mut text))
            .map_err(|e| Usage(format!("--token-file {}: {e}", path.display())))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(std::env::var("CUSTODY_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned()))
}

fn source(common: &Common, args: &SourceArgs) -> anyhow::Result<Source> {
    match (&args.file, &args.genesis) {
        (Some(export), Some(genesis)) => Ok(Source::File {
            export: export.clone(),
            genesis: genesis.clone(),
        }),
        (Some(_), None) => {
            Err(Usage("--file needs --genesis FILE (the network's genesis document)".into()).into())
        }
        (None, pinned) => {
            let pinned = match pinned {
                Some(path) => Some(inspect::Pinned {
                    genesis: keys::read_genesis(path).map_err(|e| Usage(format!("{e:#}")))?,
                    path: path.clone(),
                }),
                None => None,
            };
            Ok(Source::Node {
                node: Node::new(&common.node, None),
                pinned,
            })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let common = &cli.common;
    match cli.command {
        Command::Key(KeyCommand::New { out }) => keys::key_new(out.as_deref(), common.json)?,
        Command::Key(KeyCommand::Show { file }) => {
            keys::key_show(&file, common.json).map_err(|e| Usage(format!("{e:#}")))?
        }
        Command::Genesis(GenesisCommand::New { members, out }) => {
            keys::genesis_new(&members, &out, common.json).map_err(|e| Usage(format!("{e:#}")))?
        }
        Command::Genesis(GenesisCommand::Show { file }) => {
            keys::genesis_show(&file, common.json).map_err(|e| Usage(format!("{e:#}")))?
        }
        Command::Act(action) => {
            let node = Node::new(&common.node, token(common)?);
            act::run(&node, &action, common.json, common.dry_run)?;
        }
        Command::Gov(cmd) => {
            let node = Node::new(&common.node, token(common)?);
            gov::run(&node, &cmd, common.json)?;
        }
        Command::Audit(AuditCommand::Parcel {
            id,
            source: src,
            dot,
            full,
            bundle: save,
            witnesses,
            state,
            epcis: as_epcis,
        }) => {
            let Ok(parcel) = id.parse::<ledger_core::bytes::ParcelId>() else {
                return Err(Usage(format!("{id:?} is not a parcel id (64 hex characters)")).into());
            };
            if as_epcis {
                epcis::run(&source(common, &src)?, &parcel)?;
                return Ok(EXIT_OK);
            }
            let format = audit_format(common.json, dot);
            match source(common, &src)? {
                Source::Node { node, pinned } if !full => {
                    let genesis = inspect::node_genesis(&node)?;
                    if let Some(pin) = &pinned {
                        inspect::check_pin(&node, pin, &genesis)?;
                    }
                    let state = state_file(state)?;
                    bundle::audit(&bundle::Request {
                        node: &node,
                        genesis,
                        parcel,
                        state: &state,
                        witnesses,
                        save: save.as_deref(),
                        format,
                    })?;
                }
                other => {
                    inspect::audit(&other, &id, format)?;
                }
            }
        }
        Command::VerifyBundle {
            file,
            genesis,
            witnesses,
            dot,
        } => {
            let genesis = keys::read_genesis(&genesis).map_err(|e| Usage(format!("{e:#}")))?;
            bundle::verify_file(&file, &genesis, witnesses, audit_format(common.json, dot))?;
        }
        Command::Replay {
            source: src,
            strict,
        } => {
            if !inspect::replay(&source(common, &src)?, common.json, strict)? {
                return Ok(EXIT_NO);
            }
        }
        Command::Checkpoint { state } => {
            let state = state_file(state)?;
            checkpoint::run(&Node::new(&common.node, None), &state, common.json)?;
        }
        Command::Stats {
            source: src,
            year,
            csv,
        } => {
            let format = match (common.json, csv) {
                (true, _) => stats::StatsFormat::Json,
                (false, true) => stats::StatsFormat::Csv,
                (false, false) => stats::StatsFormat::Text,
            };
            stats::run(&source(common, &src)?, year, format)?;
        }
        Command::Watch {
            parcel,
            member,
            origin,
            finding,
            max,
            after,
        } => {
            let filter = watch::Filter {
                parcel,
                member,
                origin,
                finding,
            };
            watch::run(&common.node, &filter, common.json, max, after)?;
        }
        Command::Status => {
            if !status::run(&Node::new(&common.node, None), common.json)? {
                return Ok(EXIT_NO);
            }
        }
        Command::Context {
            member,
            parcels,
            certificates,
            out,
        } => offline::save_context(
            &Node::new(&common.node, None),
            &member,
            &parcels,
            &certificates,
            &out,
        )?,
        Command::Sign {
            key,
            context,
            out,
            action,
        } => {
            let ctx = offline::read_context(&context).map_err(|e| Usage(format!("{e:#}")))?;
            offline::sign_offline(&key, &ctx, action, &out, common.json)?;
        }
        Command::Submit { file } => {
            let node = Node::new(&common.node, token(common)?);
            if !offline::submit(&node, &file, common.json)? {
                return Ok(EXIT_NO);
            }
        }
        Command::Export { out } => {
            inspect::export(&Node::new(&common.node, None), &out, common.json)?;
        }
        Command::Demo {
            nodes,
            keep_running,
        } => demo::run(nodes, keep_running)?,
        Command::NodeProcess { config } => custody_node::launch::serve(&config, true)
            .with_context(|| format!("node of {}", config.display()))?,
    }
    Ok(EXIT_OK)
}

fn audit_format(json: bool, dot: bool) -> AuditFormat {
    match (json, dot) {
        (true, _) => AuditFormat::Json,
        (false, true) => AuditFormat::Dot,
        (false, false) => AuditFormat::Text,
    }
}

/// The checkpoint state file: `--state`, else the default place.
fn state_file(state: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(state
        .or_else(checkpoint::default_state)
        .ok_or_else(|| Usage("no state file: give --state FILE (no HOME set)".into()))?)
}

/// The exit status for an error.
fn status_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<Usage>().is_some() || cause.downcast_ref::<gov::BadArgs>().is_some()
        {
            return EXIT_USAGE;
        }
        match cause.downcast_ref::<ClientError>() {
            Some(ClientError::Unreachable { .. }) => return EXIT_UNREACHABLE,
            Some(_) => return EXIT_NO,
            None => {}
        }
        match cause.downcast_ref::<ActError>() {
            Some(ActError::Client(ClientError::Unreachable { .. })) => return EXIT_UNREACHABLE,
            Some(ActError::InvalidField(_)) => return EXIT_USAGE,
            Some(_) => return EXIT_NO,
            None => {}
        }
    }
    EXIT_NO
}

/// The process's peak resident memory in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    let stats = cli.common.stats;
    let result = run(cli);
    if stats {
        eprintln!(
            "stats: {:.3} s, peak RSS {}",
            started.elapsed().as_secs_f64(),
            peak_rss_kib().map_or_else(
                || "unknown".to_owned(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0)
            )
        );
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("custody: {e:#}");
            ExitCode::from(status_of(&e))
        }
    }
}
