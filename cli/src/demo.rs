//! `custody demo`: a local network of real node processes on loopback, a scripted custody story, then the audit of the exported parcel and a replay of the whole log.
//!
//! Each node is this same executable run as `custody node-process`, with its own sled directory
//! in a temporary directory; it stops when the demo closes its standard input (or on SIGINT).
//! The story covers what the Kimberley Process is meant to catch: two mines in two countries, a
//! certified import into Botswana, a mix at the sorter, a handover the sorter refuses, a certified
//! export to Belgium with its import confirmation, and two attempts that must not count: an
//! uncertified export and a double dispatch, both signed with the exporter's own key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use custody_node::config::write_secret_key;
use custody_node::launch::{init, InitOptions};
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::codec;
use ledger_core::dev::{dev_key, DevNetwork};
use ledger_core::event::{Body, Dispatch, ParcelRef};
use ledger_core::types::Date;
use ledger_core::writer::FeedWriter;

use crate::act::{in_words, send, ActError};
use crate::client::Node;
use crate::inspect::{self, AuditFormat, Source};

/// The members the story needs, one node each.
pub const CAST: [&str; 9] = [
    "monitor",
    "mine-bw",
    "mine-zw",
    "sorter-bw",
    "exporter-bw",
    "importer-be",
    "authority-bw",
    "authority-zw",
    "authority-be",
];
/// Most nodes a demo starts.
pub const MAX_DEMO_NODES: usize = 16;
/// How long a node may take to start listening.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long an event may take to reach every node.
pub const SPREAD_DEADLINE: Duration = Duration::from_secs(20);

/// One running node of the demo.
#[derive(Debug)]
struct DemoNode {
    member: Option<String>,
    dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    api: Node,
    p2p: String,
}

impl DemoNode {
    fn stop(&mut self) {
        // Closing standard input asks the node to stop cleanly.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` until it gives a value or `deadline` passes (a node's files and HTTP answers are
/// all there is to wait on from another process).
fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn start_node(
    exe: &Path,
    root: &Path,
    genesis: &Path,
    member: Option<&str>,
    bootstrap: &[String],
    index: usize,
) -> anyhow::Result<DemoNode> {
    let name = member.map_or_else(|| format!("observer-{index}"), str::to_owned);
    let dir = root.join(&name);
    let key = match member {
        Some(m) => {
            let path = root.join(format!("{m}.key"));
            write_secret_key(&path, &dev_key(m))?;
            Some(path)
        }
        None => None,
    };
    let done = init(&InitOptions {
        dir: dir.clone(),
        genesis: Some(genesis.to_owned()),
        member: member.map(str::parse).transpose()?,
        key,
        http: "127.0.0.1:0".into(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap: bootstrap.to_vec(),
    })?;
    let log = std::fs::File::create(dir.join("node.log"))?;
    let mut child = Command::new(exe)
        .arg("node-process")
        .arg("--config")
        .arg(&done.config)
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let stdin = child.stdin.take();
    let data = dir.join("data");
    // A node that fails to start says why in its log: show its end with the error.
    let log_tail = |e: anyhow::Error, child: &mut Child| -> anyhow::Error {
        let exited = match child.try_wait() {
            Ok(Some(status)) => format!(" (it exited: {status})"),
            _ => String::new(),
        };
        let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
        let mut tail: Vec<&str> = log.lines().rev().take(10).collect();
        tail.reverse();
        anyhow::anyhow!("{e}{exited}; the end of its log:\n{}", tail.join("\n"))
    };
    let http = wait_for(&format!("{name} to listen"), START_DEADLINE, || {
        std::fs::read_to_string(data.join("http.addr"))
            .ok()
            .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
    })
    .map_err(|e| log_tail(e, &mut child))?;
    let token = std::fs::read_to_string(data.join("api-token"))?;
    let api = Node::new(&format!("http://{http}"), Some(token.trim().to_owned()));
    // The HTTP API can answer before libp2p has bound its listener: wait for both.
    let p2p = wait_for(
        &format!("{name} to listen on libp2p"),
        START_DEADLINE,
        || {
            api.get_json("/v1/status")
                .ok()
                .and_then(|s| s["listen"][0].as_str().map(str::to_owned))
        },
    )
    .map_err(|e| log_tail(e, &mut child))?;
    Ok(DemoNode {
        member: member.map(str::to_owned),
        dir,
        child,
        stdin,
        api,
        p2p,
    })
}

/// The running network and the story's bookkeeping.
struct Network {
    nodes: Vec<DemoNode>,
}

impl Network {
    fn node(&self, member: &str) -> anyhow::Result<&DemoNode> {
        self.nodes
            .iter()
            .find(|n| n.member.as_deref() == Some(member))
            .ok_or_else(|| anyhow::anyhow!("no node for {member}"))
    }

    /// Waits until every node has stored `event`.
    fn spread(&self, event: &EventId) -> anyhow::Result<()> {
        for n in &self.nodes {
            wait_for(
                &format!("event {event} to reach {}", n.dir.display()),
                SPREAD_DEADLINE,
                || n.api.get_json(&format!("/v1/events/{event}")).ok(),
            )?;
        }
        Ok(())
    }

    /// `member` acts through its node; the event must be applied and reach every node.
    fn act(&self, member: &str, action: Value, says: &str) -> anyhow::Result<EventId> {
        let answer =
            send(&self.node(member)?.api, &action).with_context(|| format!("{member}: {says}"))?;
        let event: EventId = answer["event"]
            .as_str()
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{member}: no event id in {answer}"))?;
        self.spread(&event)?;
        println!("  {member:<13} {says:<58} applied  {}", short(&event));
        Ok(event)
    }

    /// The current head of a parcel, as a node knows it.
    fn head(&self, member: &str, parcel: &ParcelId) -> anyhow::Result<EventId> {
        let p = self
            .node(member)?
            .api
            .get_json(&format!("/v1/parcels/{parcel}"))?;
        p["head"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("parcel {parcel} has no head"))
    }

    /// Signs a dispatch with `member`'s own key, outside its node's checks, and submits it: what a
    /// member bypassing its node would do. Returns the event id and the stored verdict.
    fn rogue_dispatch(
        &self,
        member: &str,
        dispatch: Dispatch,
    ) -> anyhow::Result<(EventId, String, Option<String>)> {
        let node = &self.node(member)?.api;
        let feed = node.get_json(&format!("/v1/feeds/{member}?from=1&limit=1000"))?;
        let ids: Vec<EventId> = feed["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["id"].as_str().and_then(|s| s.parse().ok()))
            .collect();
        let last_time = feed["events"]
            .as_array()
            .and_then(|e| e.last())
            .and_then(|e| e["time_ms"].as_u64())
            .unwrap_or(0);
        let network = DevNetwork::standard().network();
        let writer = FeedWriter::resume(
            network,
            member.parse()?,
            dev_key(member),
            &ids,
            0,
            last_time,
        );
        let signed = writer.draft(Body::Dispatch(dispatch), now_ms());
        let answer = node.post_event(&signed.bytes)?;
        self.spread(&signed.id)?;
        Ok((
            signed.id,
            answer["verdict"].as_str().unwrap_or("?").to_owned(),
            answer["reason"].as_str().map(str::to_owned),
        ))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn short(id: &impl std::fmt::Display) -> String {
    id.to_string().chars().take(12).collect()
}

fn parcel_of(event: &EventId, index: u32) -> ParcelId {
    ledger_core::rules::parcel_id(event, index)
}

/// Starts the network: the cast first (the monitor's node is everyone's bootstrap peer), then
/// any extra observer nodes.
fn start_network(exe: &Path, root: &Path, nodes: usize) -> anyhow::Result<Network> {
    let genesis = root.join("genesis.bin");
    std::fs::write(&genesis, codec::encode(&DevNetwork::standard().genesis()))?;
    let first = start_node(exe, root, &genesis, Some(CAST[0]), &[], 0)?;
    let bootstrap = vec![first.p2p.clone()];
    let mut started = vec![first];
    // Start the rest in parallel: each start is mostly waiting.
    let rest: Vec<Option<&str>> = CAST[1..]
        .iter()
        .map(|m| Some(*m))
        .chain(std::iter::repeat_n(None, nodes - CAST.len()))
        .collect();
    let results: Vec<anyhow::Result<DemoNode>> = std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let bootstrap = &bootstrap;
                let genesis = &genesis;
                s.spawn(move || start_node(exe, root, genesis, *m, bootstrap, i + 1))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a node start panicked")))
            })
            .collect()
    });
    for r in results {
        started.push(r?);
    }
    let network = Network { nodes: started };
    // Every node must see the others before the story starts: wait for each to have a peer.
    for n in &network.nodes {
        wait_for("the nodes to connect", START_DEADLINE, || {
            n.api
                .get_json("/v1/status")
                .ok()
                .filter(|s| s["peers"].as_array().is_some_and(|p| !p.is_empty()))
        })?;
    }
    Ok(network)
}

/// `custody demo`.
pub fn run(nodes: usize, keep_running: bool) -> anyhow::Result<()> {
    if !(CAST.len()..=MAX_DEMO_NODES).contains(&nodes) {
        bail!(
            "--nodes must be between {} (one node per member of the story: {}) and {MAX_DEMO_NODES}",
            CAST.len(),
            CAST.join(", ")
        );
    }
    let started = Instant::now();
    let exe = std::env::current_exe().context("finding this executable")?;
    let temp = tempfile::Builder::new()
        .prefix("custody-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let root = temp.path().to_owned();
    println!(
        "starting {nodes} nodes on loopback in {} (development keys: not for real use)",
        root.display()
    );
    let net = start_network(&exe, &root, nodes)?;
    println!(
        "network up in {:.1?}: {}",
        started.elapsed(),
        net.nodes
            .iter()
            .map(|n| format!(
                "{}={}",
                n.member.as_deref().unwrap_or("observer"),
                n.api.url().trim_start_matches("http://")
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let exported = story(&net)?;
    println!();
    println!("=== audit of the exported parcel, from the monitor's node: every signature, link and verdict checked locally ===");
    let monitor = Source::Node {
        node: net.node("monitor")?.api.clone(),
        pinned: None,
    };
    inspect::audit(&monitor, &exported.to_string(), AuditFormat::Text)?;
    println!();
    println!("=== replay of the whole log, from the monitor's node ===");
    let intact = inspect::replay(&monitor, false, false)?;
    if !intact {
        bail!("the demo's own log does not replay intact");
    }
    println!();
    println!("demo finished in {:.1?}", started.elapsed());
    if keep_running {
        let root = temp.keep();
        println!();
        println!(
            "the network keeps running (Ctrl-C stops it); its files stay in {}",
            root.display()
        );
        if let Some(n) = net.nodes.first() {
            println!(
                "explorer: open {}/parcel/{exported} in a browser (every node serves it)",
                n.api.url()
            );
        }
        for n in &net.nodes {
            println!(
                "  {:<13} --node {}  --token-file {}",
                n.member.as_deref().unwrap_or("observer"),
                n.api.url(),
                n.dir.join("data").join("api-token").display()
            );
        }
        let _ = std::io::stdout().flush();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    drop(net);
    Ok(())
}

/// The scripted story; returns the id of the exported parcel.
fn story(net: &Network) -> anyhow::Result<ParcelId> {
    let today = Date::from_unix_ms(now_ms());
    let expires = Date(today.0 + 90);
    println!();
    println!("=== the story ===");
    let r1 = net.act(
        "mine-bw",
        json!({"kind": "register", "site": "jwaneng", "carats": 100_000, "stones": 250,
               "value_cents": 15_000_000, "seal": "BW-J-0001", "extracted_on": today.to_string()}),
        "registers 1,000.00 ct at Jwaneng (BW)",
    )?;
    let bw = parcel_of(&r1, 0);
    let r2 = net.act(
        "mine-zw",
        json!({"kind": "register", "site": "marange", "carats": 60_000, "stones": 180,
               "value_cents": 7_200_000, "seal": "ZW-M-0417", "extracted_on": today.to_string()}),
        "registers 600.00 ct at Marange (ZW)",
    )?;
    let zw = parcel_of(&r2, 0);
    let (year, _, _) = today.ymd();
    net.act(
        "authority-zw",
        json!({"kind": "declare", "country": "ZW", "from": format!("{year}-01-01"),
               "to": format!("{year}-12-31"), "carats": 55_000}),
        "declares Zimbabwe's production this year: 550.00 ct",
    )?;
    net.act(
        "authority-zw",
        json!({"kind": "certify", "number": "ZW-2026-0117", "exporter": "mine-zw", "importer": "sorter-bw",
               "destination": "BW", "parcels": [zw], "total_carats": 60_000, "value_cents": 7_200_000,
               "origins": ["ZW"], "hs_code": "7102.10", "issued_on": today.to_string(),
               "expires_on": expires.to_string()}),
        "certifies the Marange parcel for export to Botswana",
    )?;
    net.act(
        "mine-zw",
        json!({"kind": "dispatch", "parcel": zw, "to": "sorter-bw", "certificate": "ZW-2026-0117", "seal": "ZW-M-0417"}),
        "dispatches it to sorter-bw with certificate ZW-2026-0117",
    )?;
    net.act(
        "sorter-bw",
        json!({"kind": "receive", "parcel": zw, "measured_carats": 60_000}),
        "receives 600.00 ct",
    )?;
    net.act(
        "authority-bw",
        json!({"kind": "confirm-import", "certificate": "ZW-2026-0117"}),
        "confirms the import of ZW-2026-0117",
    )?;
    net.act(
        "mine-bw",
        json!({"kind": "dispatch", "parcel": bw, "to": "sorter-bw", "seal": "BW-J-0001"}),
        "dispatches the Jwaneng parcel to sorter-bw",
    )?;
    net.act(
        "sorter-bw",
        json!({"kind": "reject", "parcel": bw, "reason": "seal number does not match the papers"}),
        "REJECTS it: seal number does not match the papers",
    )?;
    net.act(
        "mine-bw",
        json!({"kind": "dispatch", "parcel": bw, "to": "sorter-bw", "seal": "BW-J-0002"}),
        "dispatches it again under a new seal",
    )?;
    net.act(
        "sorter-bw",
        json!({"kind": "receive", "parcel": bw, "measured_carats": 99_950}),
        "receives it, weighing 999.50 ct of 1,000.00 declared",
    )?;
    let t = net.act(
        "sorter-bw",
        json!({"kind": "transform", "inputs": [bw, zw], "outputs": [
            {"carats": 159_000, "stones": 420, "value_cents": 22_000_000},
            {"carats": 500, "stones": 10}]}),
        "mixes both into 1,590.00 ct for export (and 5.00 ct rejects)",
    )?;
    let mix = parcel_of(&t, 0);
    net.act(
        "sorter-bw",
        json!({"kind": "dispatch", "parcel": mix, "to": "exporter-bw"}),
        "dispatches the mix to exporter-bw",
    )?;
    let received = net.act(
        "exporter-bw",
        json!({"kind": "receive", "parcel": mix, "measured_carats": 159_000}),
        "receives 1,590.00 ct",
    )?;
    net.act(
        "monitor",
        json!({"kind": "flag", "target": {"site": {"member": "mine-zw", "site": "marange"}},
               "code": "human-rights", "text": "reports of forced labour in the Marange fields"}),
        "flags the Marange site: human rights",
    )?;

    // An export without a certificate: the node refuses to sign it...
    let uncertified = json!({"kind": "dispatch", "parcel": mix, "to": "importer-be"});
    match send(&net.node("exporter-bw")?.api, &uncertified) {
        Err(ActError::Refused(why)) => println!(
            "  {:<13} {:<58} REFUSED  ({why})",
            "exporter-bw", "tries to export the mix to Belgium uncertified"
        ),
        Ok(v) => bail!("an uncertified export was signed: {v}"),
        Err(e) => return Err(e.into()),
    }
    // ...and signed with the exporter's own key behind its node's back, it is stored but void.
    let head = net.head("exporter-bw", &mix)?;
    let (rogue, verdict, reason) = net.rogue_dispatch(
        "exporter-bw",
        Dispatch {
            parcel: ParcelRef { parcel: mix, head },
            to: "importer-be".parse()?,
            certificate: None,
            seal: String::new(),
            deadline_ms: None,
        },
    )?;
    if reason.as_deref() != Some("uncertified") {
        bail!("the uncertified export signed outside the node was {verdict} ({reason:?}), not void(uncertified)");
    }
    println!(
        "  {:<13} {:<58} VOID     ({})  {}",
        "exporter-bw",
        "signs it anyway with its own key, outside its node",
        in_words("uncertified"),
        short(&rogue)
    );

    // A certificate that names only Botswana for a mix with Zimbabwean stones: refused, and
    // void if signed anyway.
    let only_bw = json!({"kind": "certify", "number": "BW-2026-0042", "exporter": "exporter-bw",
        "importer": "importer-be", "destination": "BE", "parcels": [mix], "origins": ["BW"],
        "hs_code": "7102.31", "issued_on": today.to_string(), "expires_on": expires.to_string()});
    match send(&net.node("authority-bw")?.api, &only_bw) {
        Err(ActError::Refused(why)) => println!(
            "  {:<13} {:<58} REFUSED  ({why})",
            "authority-bw", "tries to certify the mix as of Botswanan origin only"
        ),
        Ok(v) => bail!("a certificate hiding Zimbabwean stones was signed: {v}"),
        Err(e) => return Err(e.into()),
    }
    // The carats, value and origins left out are filled from the parcel: 1,590.00 ct, BW and ZW.
    net.act(
        "authority-bw",
        json!({"kind": "certify", "number": "BW-2026-0042", "exporter": "exporter-bw", "importer": "importer-be",
               "destination": "BE", "parcels": [mix], "hs_code": "7102.31",
               "issued_on": today.to_string(), "expires_on": expires.to_string()}),
        "certifies the mix for export to Belgium (filled in: origins BW, ZW)",
    )?;
    net.act(
        "exporter-bw",
        json!({"kind": "dispatch", "parcel": mix, "to": "importer-be", "certificate": "BW-2026-0042", "seal": "BW-X-7781"}),
        "exports it to importer-be with certificate BW-2026-0042",
    )?;
    // A second sale of the same parcel, citing the state before the export: a double dispatch.
    let (double, verdict, reason) = net.rogue_dispatch(
        "exporter-bw",
        Dispatch {
            parcel: ParcelRef {
                parcel: mix,
                head: received,
            },
            to: "sorter-bw".parse()?,
            certificate: None,
            seal: "BW-X-7782".into(),
            deadline_ms: None,
        },
    )?;
    if reason.as_deref() != Some("conflict") {
        bail!("the double dispatch was {verdict} ({reason:?}), not void(conflict)");
    }
    println!(
        "  {:<13} {:<58} VOID     ({})  {}",
        "exporter-bw",
        "sells the same parcel again to sorter-bw (double dispatch)",
        in_words("conflict"),
        short(&double)
    );
    net.act(
        "importer-be",
        json!({"kind": "receive", "parcel": mix, "measured_carats": 159_000}),
        "receives 1,590.00 ct in Antwerp",
    )?;
    net.act(
        "authority-be",
        json!({"kind": "confirm-import", "certificate": "BW-2026-0042"}),
        "confirms the import of BW-2026-0042",
    )?;
    Ok(mix)
}
