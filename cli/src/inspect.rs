//! `custody replay`, `custody audit parcel` and `custody export`: read a whole log, verify and replay it locally, and report.
//!
//! Nothing here takes a node's word: the node (or a file) only supplies bytes. Every signature
//! and link is checked and every verdict recomputed by `ledger_core::replay`, and the audit and
//! findings come from that local state. A log read from a node is first saved to a temporary
//! file, so that both passes of a replay (a fork found late needs two) read the same log. The
//! node's genesis is fetched once, and a log is replayed under the `--genesis` pin itself when
//! one is given, so that the node cannot show the check one genesis and the replay another.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use ledger_core::audit::{audit_parcel, Audit};
use ledger_core::audit_gov::GovernanceContext;
use ledger_core::bytes::ParcelId;
use ledger_core::export::{self, write_record, ExportReader};
use ledger_core::findings::{all_findings, carats_text, parcel_findings, Finding};
use ledger_core::governance::{decode_genesis, network_id};
use ledger_core::ledger::Ledger;
use ledger_core::origin::SHARE_UNITS;
use ledger_core::replay::{replay_stream, ReplayOptions, Replayed, Report, SignatureCheck};
use ledger_core::rules::{ParcelState, Verdict};
use ledger_core::types::{Date, Genesis};

use crate::client::{Node, MAX_GENESIS_ANSWER};
use crate::keys::read_genesis;

/// Where a log comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A node's export, replayed under the genesis the node serves, or under `pinned` when given
    /// (after checking that the node serves exactly that one).
    Node {
        node: Node,
        pinned: Option<Pinned>,
    },
    File {
        export: PathBuf,
        genesis: PathBuf,
    },
}

/// A genesis document the user named with `--genesis`, read from `path`.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub genesis: Genesis,
    pub path: PathBuf,
}

/// A log saved locally with its genesis, ready to replay.
#[derive(Debug)]
pub struct LocalLog {
    pub path: PathBuf,
    pub genesis: Genesis,
    /// Keeps a downloaded log's temporary file alive.
    _temp: Option<tempfile::TempPath>,
}

fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let target = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(len, target);
    let style = if len.is_some() {
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
    } else {
        ProgressStyle::with_template("{msg:>10} {spinner} {bytes} ({bytes_per_sec})")
    };
    if let Ok(style) = style {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Counts bytes read into a progress bar.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Streams a node's export into `out` in the export format, checking its framing; returns the
/// number of events and bytes.
fn download(node: &Node, out: &mut impl Write) -> anyhow::Result<(u64, u64)> {
    let stream = node.get_stream("/v1/export")?;
    let bar = progress(None, "download");
    let reader = ExportReader::new(BufReader::new(Counted {
        inner: stream,
        bar: bar.clone(),
    }));
    let mut events = 0u64;
    let mut bytes = 0u64;
    for record in reader {
        let record = record.with_context(|| format!("reading the export of {}", node.url()))?;
        write_record(out, &record.bytes)?;
        events += 1;
        bytes += 4 + record.bytes.len() as u64;
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok((events, bytes))
}

/// Fetches the genesis a node runs on.
pub fn node_genesis(node: &Node) -> anyhow::Result<Genesis> {
    let bytes = node.get_bytes("/v1/genesis", MAX_GENESIS_ANSWER)?;
    decode_genesis(&bytes).context("the node's genesis document is invalid")
}

/// Refuses a node that serves another genesis than the pinned one.
pub fn check_pin(node: &Node, pin: &Pinned, served: &Genesis) -> anyhow::Result<()> {
    if &pin.genesis != served {
        bail!(
            "the node at {} runs network {}, not {} of {}",
            node.url(),
            network_id(served),
            network_id(&pin.genesis),
            pin.path.display()
        );
    }
    Ok(())
}

impl Source {
    /// Makes the log available locally.
    pub fn fetch(&self) -> anyhow::Result<LocalLog> {
        match self {
            Source::File { export, genesis } => {
                if !export.is_file() {
                    bail!("{} is not a file", export.display());
                }
                Ok(LocalLog {
                    path: export.clone(),
                    genesis: read_genesis(genesis)?,
                    _temp: None,
                })
            }
            Source::Node { node, pinned } => {
                // Fetched once: a hostile node could serve the pinned genesis to a check and
                // another one to the replay.
                let served = node_genesis(node)?;
                let genesis = match pinned {
                    Some(pin) => {
                        check_pin(node, pin, &served)?;
                        pin.genesis.clone()
                    }
                    None => served,
                };
                let temp = tempfile::NamedTempFile::new().context("creating a temporary file")?;
                let (file, path) = temp.into_parts();
                let mut out = BufWriter::new(file);
                download(node, &mut out)?;
                drop(out);
                Ok(LocalLog {
                    path: path.to_path_buf(),
                    genesis,
                    _temp: Some(path),
                })
            }
        }
    }
}

/// How many records an export file holds (a sizing hint for the replay; 0 if unreadable).
fn count_records(path: &Path, len: u64) -> usize {
    File::open(path)
        .map(|f| export::count_records(BufReader::with_capacity(1 << 16, f), len))
        .unwrap_or(0)
}

/// Verifies and replays a local log with a progress bar.
pub fn replay_log(log: &LocalLog, signatures: SignatureCheck) -> anyhow::Result<Replayed> {
    let len = std::fs::metadata(&log.path)
        .with_context(|| format!("reading {}", log.path.display()))?
        .len();
    let bar = progress(Some(len), "replay");
    let path = log.path.clone();
    let options = ReplayOptions {
        signatures,
        expected_events: count_records(&log.path, len),
        ..ReplayOptions::default()
    };
    let opened_bar = bar.clone();
    let replayed = replay_stream(&log.genesis, options, move || {
        opened_bar.set_position(0);
        let file = File::open(&path).map_err(|e| {
            ledger_core::replay::ReplayError::Source(format!("{}: {e}", path.display()))
        })?;
        Ok(ExportReader::new(BufReader::with_capacity(
            1 << 20,
            Counted {
                inner: file,
                bar: opened_bar.clone(),
            },
        )))
    })?;
    bar.finish_and_clear();
    Ok(replayed)
}

/// UNIX milliseconds as an ISO 8601 UTC time.
pub fn iso_time(ms: u64) -> String {
    let in_day = ms % 86_400_000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        Date::from_unix_ms(ms),
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60
    )
}

fn verdict_parts(v: Verdict) -> (&'static str, Option<&'static str>) {
    match v {
        Verdict::Applied => ("applied", None),
        Verdict::Void(r) => ("void", Some(r.name())),
    }
}

fn share(units: u64) -> f64 {
    units as f64 / SHARE_UNITS as f64
}

fn percent(units: u64) -> String {
    format!("{:.2}%", units as f64 * 100.0 / SHARE_UNITS as f64)
}

fn short(id: &impl std::fmt::Display) -> String {
    id.to_string().chars().take(12).collect()
}

fn findings_json(findings: &[Finding]) -> Value {
    json!(findings
        .iter()
        .map(|f| json!({"code": f.code.name(), "detail": f.detail, "event": f.event, "parcels": f.parcels}))
        .collect::<Vec<_>>())
}

/// The replay summary, as `custody replay --json` prints it (documented in docs/cli.md).
pub fn summary_json(genesis: &Genesis, r: &Replayed) -> Value {
    let report: &Report = &r.report;
    let mut parcels: BTreeMap<&str, u64> = BTreeMap::new();
    for p in r.ledger.parcels() {
        *parcels.entry(p.state().name()).or_default() += 1;
    }
    let mut findings: BTreeMap<&str, u64> = BTreeMap::new();
    for f in all_findings(&r.ledger) {
        *findings.entry(f.code.name()).or_default() += 1;
    }
    json!({
        "network": network_id(genesis),
        "events": report.stored,
        "authors": report.authors,
        "applied": report.applied,
        "void": report.void,
        "forks": report.forks.len(),
        "admission_failures": report.admission_failures,
        "parcels": parcels,
        "findings": findings,
        "intact": report.intact(),
        "empty": report.events == 0,
        "first_failure": report.first_failure.as_ref().map(|f| json!({
            "index": f.index, "offset": f.offset, "event": f.event, "reason": f.reason, "detail": f.detail,
        })),
        "state_root": report.state_root,
        "input": {"records": report.events, "duplicates": report.duplicates},
    })
}

/// Prints the replay summary for a person.
pub fn print_summary(summary: &Value) {
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    let map = |k: &str| -> String {
        summary[k]
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "none".to_owned())
    };
    println!(
        "network             {}",
        summary["network"].as_str().unwrap_or("?")
    );
    println!(
        "events              {} (read {} records, {} duplicates)",
        n("events"),
        summary["input"]["records"],
        summary["input"]["duplicates"]
    );
    println!("authors             {}", n("authors"));
    println!("applied             {}", n("applied"));
    println!("void                {}", map("void"));
    println!("forks               {}", n("forks"));
    println!("admission failures  {}", map("admission_failures"));
    println!("parcels             {}", map("parcels"));
    println!("findings            {}", map("findings"));
    println!(
        "state root          {}",
        summary["state_root"].as_str().unwrap_or("?")
    );
    if summary["empty"].as_bool() == Some(true) && summary["intact"].as_bool() == Some(true) {
        println!("intact              the log is empty: it holds no event, so nothing was checked");
    } else if summary["intact"].as_bool() == Some(true) {
        println!("intact              yes: every signature, link and dependency checks out");
    } else {
        let f = &summary["first_failure"];
        println!("intact              NO");
        if !f.is_null() {
            let at = match f["offset"].as_u64() {
                Some(o) => format!("record {} (byte {o})", f["index"]),
                None => format!("record {}", f["index"]),
            };
            let event = f["event"]
                .as_str()
                .map(|e| format!(", event {e}"))
                .unwrap_or_default();
            println!(
                "first broken        {at}{event}: {} ({})",
                f["reason"].as_str().unwrap_or("?"),
                f["detail"].as_str().unwrap_or("")
            );
        }
    }
}

/// The audit of one parcel, as `custody audit parcel --json` prints it (documented in docs/cli.md).
pub fn audit_json(ledger: &Ledger, audit: &Audit, findings: &[Finding]) -> Value {
    json!({
        "network": ledger.network(),
        "parcel": audit.parcel,
        "state": audit.state.name(),
        "custodian": audit.custodian,
        "carats": audit.carats,
        "declared_carats": audit.declared_carats,
        "origin": audit.origin.iter().map(|s| json!({
            "site": s.site, "member": s.member, "country": s.country, "share": share(s.units), "units": s.units,
        })).collect::<Vec<_>>(),
        "origin_countries": audit.origin_countries.iter().map(|(c, u)| json!({
            "country": c, "share": share(*u), "units": u,
        })).collect::<Vec<_>>(),
        "ancestry": audit.ancestry.iter().map(|a| json!({
            "parcel": a.parcel, "carats": a.carats, "mass": a.mass, "stones": a.stones,
            "extracted_on": a.extracted_on.map(|d| d.to_string()), "created_by": a.created_by,
            "parents": a.parents, "state": a.state.name(),
        })).collect::<Vec<_>>(),
        "history": audit.history.iter().map(|h| {
            let (verdict, reason) = verdict_parts(h.verdict);
            json!({
                "event": h.event, "kind": h.kind, "author": h.author, "seq": h.seq,
                "time": iso_time(h.time_ms), "verdict": verdict, "reason": reason,
            })
        }).collect::<Vec<_>>(),
        "findings": findings_json(findings),
        "governance": audit.governance,
        "truncated": audit.truncated,
    })
}

fn state_words(state: &ParcelState) -> String {
    match state {
        ParcelState::Held { by } => format!("held by {by}"),
        ParcelState::InTransit { from, to, .. } => format!("in transit from {from} to {to}"),
        ParcelState::Consumed { by } => format!("consumed by {}", short(by)),
        ParcelState::Retired { cause } => format!("retired ({cause:?})").to_lowercase(),
    }
}

/// How one parcel came to be, in words.
fn made(ledger: &Ledger, id: &ParcelId) -> String {
    let Some(p) = ledger.parcel(id) else {
        return String::new();
    };
    let created = p.transitions().first().map(|t| t.event);
    let meta = created.and_then(|e| ledger.event(&e));
    match (meta, p.parents.is_empty()) {
        (Some(m), true) => {
            let site = p
                .origin
                .shares()
                .first()
                .map(|s| format!(" at {} ({})", s.site, s.country))
                .unwrap_or_default();
            let extracted = p
                .extracted_on
                .map(|d| format!(", extracted on {d}"))
                .unwrap_or_default();
            format!(
                "registered by {}{site} on {}{extracted}",
                m.author,
                Date::from_unix_ms(m.time_ms)
            )
        }
        (Some(m), false) => format!(
            "made by {} on {} from {} parcels",
            m.author,
            Date::from_unix_ms(m.time_ms),
            p.parents.len()
        ),
        (None, _) => "origin unknown".to_owned(),
    }
}

fn print_tree(
    ledger: &Ledger,
    id: &ParcelId,
    prefix: &str,
    last: bool,
    root: bool,
    shown: &mut BTreeSet<ParcelId>,
) {
    let Some(p) = ledger.parcel(id) else {
        return;
    };
    let (branch, next) = if root {
        ("", "")
    } else if last {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    };
    let again = !shown.insert(*id);
    println!(
        "  {prefix}{branch}{} {:>12}  {}  [{}]{}",
        short(id),
        carats_text(p.mass()),
        made(ledger, id),
        state_words(&p.state()),
        if again { "  (shown above)" } else { "" }
    );
    if again {
        return;
    }
    let child_prefix = format!("{prefix}{next}");
    for (i, parent) in p.parents.iter().enumerate() {
        print_tree(
            ledger,
            parent,
            &child_prefix,
            i + 1 == p.parents.len(),
            false,
            shown,
        );
    }
}

/// Prints the audit for a person.
pub fn print_audit(ledger: &Ledger, audit: &Audit, findings: &[Finding]) {
    println!("parcel {}", audit.parcel);
    let declared = if audit.declared_carats == audit.carats {
        String::new()
    } else {
        format!(
            " (as weighed; declared {})",
            carats_text(audit.declared_carats)
        )
    };
    println!(
        "  {}{declared}  {}{}",
        carats_text(audit.carats),
        state_words(&audit.state),
        match (&audit.custodian, &audit.state) {
            (Some(c), ParcelState::InTransit { .. }) => format!(", custodian {c}"),
            _ => String::new(),
        }
    );
    println!(
        "  verified locally: every signature, link and verdict recomputed (network {})",
        ledger.network()
    );
    println!();
    println!("origin by site:");
    for s in &audit.origin {
        println!(
            "  {:>8}  {} ({}, {})",
            percent(s.units),
            s.site,
            s.member,
            s.country
        );
    }
    println!("origin by country:");
    for (c, u) in &audit.origin_countries {
        println!("  {:>8}  {c}", percent(*u));
    }
    println!();
    println!("ancestry ({} parcels):", audit.ancestry.len());
    print_tree(ledger, &audit.parcel, "", true, true, &mut BTreeSet::new());
    println!();
    println!("history ({} events):", audit.history.len());
    for h in &audit.history {
        let (verdict, reason) = verdict_parts(h.verdict);
        let verdict = match reason {
            Some(r) => format!("VOID ({r})"),
            None => verdict.to_owned(),
        };
        let kind = serde_json::to_value(h.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "  {}  {:<14} {:<15} {:<26} {}",
            iso_time(h.time_ms),
            h.author.as_str(),
            kind,
            verdict,
            short(&h.event)
        );
    }
    println!();
    print_governance(&audit.governance);
    println!();
    if findings.is_empty() {
        println!("findings: none");
    } else {
        println!("findings ({}):", findings.len());
        for f in findings {
            println!("  {:<22} {}", f.code.name(), f.detail);
        }
    }
    if audit.truncated {
        println!();
        println!("(the ancestry was larger than the audit limit and was cut)");
    }
}

/// The governance context of an audit: who admitted the authors, key cuts and suspensions, keys
/// of events that no longer count, and embargoes over the origins.
fn print_governance(g: &GovernanceContext) {
    println!("governance (version {} in force):", g.version);
    for a in &g.authors {
        let admitted = match a.admitted_in {
            Some(0) => "founding member".to_owned(),
            Some(v) => format!("admitted by version {v}"),
            None => "not a member".to_owned(),
        };
        println!("  {:<14} {admitted}", a.member.as_str());
        for (key, cut) in &a.key_cuts {
            println!(
                "  {:<14}   key {} signs nothing after seq {} (version {})",
                "",
                key.short(),
                cut.last_valid_seq,
                cut.version
            );
        }
        for s in &a.suspensions {
            let until = s.reinstated.map_or_else(
                || "not reinstated".to_owned(),
                |v| format!("reinstated by version {v}"),
            );
            println!(
                "  {:<14}   suspended after seq {} by version {} ({until}): {}",
                "", s.last_valid_seq, s.version, s.reason
            );
        }
    }
    for k in g.keys.iter().filter(|k| !k.valid) {
        println!(
            "  event {} was signed with a key governance cut",
            short(&k.event)
        );
    }
    for e in &g.embargoes {
        let end = e
            .end()
            .map_or_else(|| "no end".to_owned(), |d| d.to_string());
        println!(
            "  embargo on {} from {} to {end}: {}",
            e.target_text(),
            e.from,
            e.reason
        );
    }
}

/// The ancestry as a Graphviz digraph: parcels as nodes, an edge from each input to what it became.
pub fn audit_dot(audit: &Audit) -> String {
    let mut out = String::from(
        "digraph custody {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for a in &audit.ancestry {
        let label = format!(
            "{}\\n{}\\n{}",
            short(&a.parcel),
            carats_text(a.carats),
            state_words(&a.state).replace('"', "'")
        );
        let style = if a.parcel == audit.parcel {
            ", style=bold"
        } else {
            ""
        };
        out.push_str(&format!("  \"{}\" [label=\"{label}\"{style}];\n", a.parcel));
        for parent in &a.parents {
            out.push_str(&format!("  \"{parent}\" -> \"{}\";\n", a.parcel));
        }
    }
    out.push_str("}\n");
    out
}

/// `custody audit parcel`.
pub fn audit(source: &Source, parcel: &str, format: AuditFormat) -> anyhow::Result<bool> {
    let id: ParcelId = parcel
        .parse()
        .map_err(|e| anyhow::anyhow!("{parcel:?} is not a parcel id (64 hex characters): {e}"))?;
    let log = source.fetch()?;
    let replayed = replay_log(&log, SignatureCheck::Strict)?;
    if !replayed.report.intact() {
        let summary = summary_json(&log.genesis, &replayed);
        print_summary(&summary);
        bail!("the log is not intact; an audit of it would not be sound");
    }
    let ledger = &replayed.ledger;
    let Some(audit) = audit_parcel(ledger, &id) else {
        bail!("unknown parcel {id}: no stored event created it");
    };
    let findings = parcel_findings(ledger, &audit);
    match format {
        AuditFormat::Text => print_audit(ledger, &audit, &findings),
        AuditFormat::Json => println!("{}", audit_json(ledger, &audit, &findings)),
        AuditFormat::Dot => print!("{}", audit_dot(&audit)),
    }
    Ok(true)
}

/// How an audit is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    Text,
    Json,
    Dot,
}

/// `custody replay`: returns whether the log is intact.
pub fn replay(source: &Source, json_out: bool, strict: bool) -> anyhow::Result<bool> {
    let log = source.fetch()?;
    let signatures = if strict {
        SignatureCheck::Strict
    } else {
        SignatureCheck::Batch
    };
    let replayed = replay_log(&log, signatures)?;
    let summary = summary_json(&log.genesis, &replayed);
    if json_out {
        println!("{summary}");
    } else {
        print_summary(&summary);
    }
    Ok(replayed.report.intact())
}

/// `custody export`.
pub fn export(node: &Node, out: &Path, json_out: bool) -> anyhow::Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let (file, path) = temp.into_parts();
    let mut w = BufWriter::new(file);
    let (events, bytes) = download(node, &mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    path.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    if json_out {
        println!(
            "{}",
            json!({"file": out.display().to_string(), "events": events, "bytes": bytes})
        );
    } else {
        println!("wrote {events} events ({bytes} bytes) to {}", out.display());
    }
    Ok(())
}
