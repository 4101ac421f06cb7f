//! `custody stats`: Kimberley Process statistics per country from a verified replay, as a
//! table, JSON or CSV, to set beside the official KP tables.

use anyhow::bail;
use serde_json::{json, Value};

use ledger_core::amount::Carats;
use ledger_core::findings::all_findings;
use ledger_core::replay::SignatureCheck;
use ledger_core::stats::{finding_codes, stats, CountryStats, Flow, Stats};

use crate::inspect::{print_summary, replay_log, summary_json, Source};

/// How the statistics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    Text,
    Json,
    Csv,
}

fn carats(c: u128) -> String {
    match u64::try_from(c) {
        Ok(c) => Carats(c).to_string(),
        Err(_) => format!("{}.{:02}", c / 100, c % 100),
    }
}

fn usd(cents: u128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn per_carat(f: &Flow) -> String {
    f.usd_per_carat()
        .map_or_else(String::new, |v| format!("{v:.2}"))
}

fn flow_json(f: &Flow) -> Value {
    json!({
        "carats": carats(f.carats), "value_usd": usd(f.value_cents),
        "usd_per_carat": f.usd_per_carat().map(|v| format!("{v:.2}")), "certificates": f.certificates,
    })
}

/// The statistics as JSON (documented in docs/cli.md).
pub fn stats_json(s: &Stats) -> Value {
    let countries: Vec<Value> = s
        .countries
        .iter()
        .map(|(c, x)| {
            json!({
                "country": c, "registered_carats": carats(x.registered_carats),
                "declared_carats": carats(x.declared_carats), "exports": flow_json(&x.exports),
                "imports": flow_json(&x.imports), "certificates_issued": x.certificates_issued,
                "certificates_confirmed": x.certificates_confirmed, "findings": x.findings,
            })
        })
        .collect();
    json!({ "year": s.year, "countries": countries })
}

/// One CSV row per country; a column per finding code.
pub fn stats_csv(s: &Stats) -> String {
    let codes = finding_codes();
    let mut out = String::from(
        "country,registered_carats,declared_carats,export_carats,export_usd,export_usd_per_carat,import_carats,import_usd,import_usd_per_carat,certificates_issued,certificates_confirmed",
    );
    for code in &codes {
        out.push(',');
        out.push_str(code);
    }
    out.push('\n');
    for (c, x) in &s.countries {
        out.push_str(&row(&c.to_string(), x, &codes));
    }
    out
}

/// A country's figures as table cells, in the order of the CSV header and the text table.
fn cells(country: &str, x: &CountryStats) -> Vec<String> {
    vec![
        country.to_owned(),
        carats(x.registered_carats),
        carats(x.declared_carats),
        carats(x.exports.carats),
        usd(x.exports.value_cents),
        per_carat(&x.exports),
        carats(x.imports.carats),
        usd(x.imports.value_cents),
        per_carat(&x.imports),
        x.certificates_issued.to_string(),
        x.certificates_confirmed.to_string(),
    ]
}

fn row(country: &str, x: &CountryStats, codes: &[&str]) -> String {
    let mut cells = cells(country, x);
    cells.extend(
        codes
            .iter()
            .map(|c| x.findings.get(c).copied().unwrap_or(0).to_string()),
    );
    cells.join(",") + "\n"
}

/// Widths of the text table's columns (the country, then the figures).
const WIDTHS: [usize; 11] = [4, 14, 14, 14, 14, 9, 14, 14, 9, 6, 9];

fn line(cells: &[String]) -> String {
    let mut out = format!("{:<w$}", cells[0], w = WIDTHS[0]);
    for (c, w) in cells[1..].iter().zip(&WIDTHS[1..]) {
        out.push_str(&format!(" {c:>w$}"));
    }
    out
}

fn print_text(s: &Stats) {
    match s.year {
        Some(y) => println!("KP statistics for {y}, from a verified replay"),
        None => println!("KP statistics, every year, from a verified replay"),
    }
    let header = [
        "",
        "registered ct",
        "declared ct",
        "export ct",
        "export US$",
        "US$/ct",
        "import ct",
        "import US$",
        "US$/ct",
        "certs",
        "confirmed",
    ];
    println!("{}", line(&header.map(str::to_owned)));
    for (c, x) in &s.countries {
        println!("{}", line(&cells(&c.to_string(), x)));
        if !x.findings.is_empty() {
            let list: Vec<String> = x.findings.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("     findings: {}", list.join(", "));
        }
    }
}

/// `custody stats`: refuses a log that is not intact (its figures would not be sound).
pub fn run(source: &Source, year: Option<u32>, format: StatsFormat) -> anyhow::Result<()> {
    let log = source.fetch()?;
    let replayed = replay_log(&log, SignatureCheck::Batch)?;
    if !replayed.report.intact() {
        print_summary(&summary_json(&log.genesis, &replayed));
        bail!("the log is not intact; statistics of it would not be sound");
    }
    let ledger = &replayed.ledger;
    let s = stats(ledger, year, &all_findings(ledger));
    match format {
        StatsFormat::Json => println!("{}", stats_json(&s)),
        StatsFormat::Csv => print!("{}", stats_csv(&s)),
        StatsFormat::Text => print_text(&s),
    }
    Ok(())
}
