//! Kimberley Process statistics from a verified ledger, per country and optionally for one year:
//! production (registered and declared), exports and imports by certificate (carats, value,
//! US$ per carat), certificates issued and confirmed, and findings by code. Monitors compare
//! them with the official KP tables.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::DeclareScope;
use crate::findings::{Finding, FindingCode};
use crate::ledger::Ledger;
use crate::production::declarations;
use crate::types::{Country, Date, MemberId};

/// Carats (hundredths) and value (US cents) of a trade flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub carats: u128,
    pub value_cents: u128,
    /// Certificates making it up.
    pub certificates: u64,
}

impl Flow {
    fn add(&mut self, carats: u64, value_cents: u64) {
        self.carats += u128::from(carats);
        self.value_cents += u128::from(value_cents);
        self.certificates += 1;
    }
    /// US dollars per carat, if any carats moved.
    pub fn usd_per_carat(&self) -> Option<f64> {
        (self.carats > 0).then(|| self.value_cents as f64 / self.carats as f64)
    }
}

/// One country's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CountryStats {
    /// Hundredths of a carat registered at the country's mine sites (by extraction date).
    pub registered_carats: u128,
    /// Hundredths of a carat of production its authority declared (by the period's first day):
    /// the country's own declarations, or else the sum of its sites'.
    pub declared_carats: u128,
    pub exports: Flow,
    pub imports: Flow,
    pub certificates_issued: u64,
    /// Issued certificates with at least one applied import confirmation.
    pub certificates_confirmed: u64,
    /// Findings about the country (see [`finding_country`]), by code name.
    pub findings: BTreeMap<&'static str, u64>,
}

/// Statistics of a whole log, or of one year of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub year: Option<u32>,
    pub countries: BTreeMap<Country, CountryStats>,
}

fn in_year(year: Option<u32>, day: Date) -> bool {
    year.is_none_or(|y| day.ymd().0 == y)
}

/// The country of a member at the newest governance version.
fn country_of(ledger: &Ledger, member: &MemberId) -> Option<Country> {
    let gov = ledger.governance().latest_state();
    gov.members.get(member).map(|m| m.country)
}

/// The country a finding is about: the site's, else the member's it names, else its event
/// author's.
pub fn finding_country(ledger: &Ledger, f: &Finding) -> Option<Country> {
    let site = f.sites.first().and_then(|(m, s)| {
        let gov = ledger.governance().latest_state();
        gov.members.get(m)?.site(s).map(|s| s.country)
    });
    site.or_else(|| f.members.first().and_then(|m| country_of(ledger, m)))
        .or_else(|| {
            let author = &ledger.event(f.event.as_ref()?)?.author;
            country_of(ledger, author)
        })
}

/// The statistics of `ledger` for `year` (every year when `None`), with `findings` (the ledger's
/// findings, as `all_findings` gives them) counted per country.
pub fn stats(ledger: &Ledger, year: Option<u32>, findings: &[Finding]) -> Stats {
    let mut out: BTreeMap<Country, CountryStats> = BTreeMap::new();
    for p in ledger.parcels().filter(|p| p.parents.is_empty()) {
        let (Some(day), Some(share)) = (p.extracted_on, p.origin.shares().first()) else {
            continue;
        };
        if in_year(year, day) {
            out.entry(share.country).or_default().registered_carats += u128::from(p.carats);
        }
    }
    declared(ledger, year, &mut out);
    for (id, c) in ledger.certificates() {
        if !in_year(year, c.issued_on) {
            continue;
        }
        if let Some(from) = country_of(ledger, &c.exporter) {
            let e = out.entry(from).or_default();
            e.exports.add(c.total_carats, c.value_cents);
            e.certificates_issued += 1;
            let confirmed = ledger
                .notes()
                .confirmations
                .get(id)
                .is_some_and(|v| !v.is_empty());
            e.certificates_confirmed += u64::from(confirmed);
        }
        out.entry(c.destination)
            .or_default()
            .imports
            .add(c.total_carats, c.value_cents);
    }
    for f in findings {
        let day = f
            .event
            .and_then(|e| ledger.event(&e))
            .map(|m| Date::from_unix_ms(m.time_ms));
        if year.is_some() && !day.is_some_and(|d| in_year(year, d)) {
            continue;
        }
        if let Some(c) = finding_country(ledger, f) {
            *out.entry(c)
                .or_default()
                .findings
                .entry(f.code.name())
                .or_default() += 1;
        }
    }
    Stats {
        year,
        countries: out,
    }
}

/// Declared production per country: a country's own declarations where it made any, else the
/// sum of its sites'.
fn declared(ledger: &Ledger, year: Option<u32>, out: &mut BTreeMap<Country, CountryStats>) {
    let mut whole: BTreeMap<Country, u128> = BTreeMap::new();
    let mut sites: BTreeMap<Country, u128> = BTreeMap::new();
    let gov = ledger.governance().latest_state();
    for (_, d) in declarations(ledger) {
        if !in_year(year, d.from) {
            continue;
        }
        match &d.scope {
            DeclareScope::Country(c) => *whole.entry(*c).or_default() += u128::from(d.carats),
            DeclareScope::Site { member, site } => {
                if let Some(s) = gov.members.get(member).and_then(|m| m.site(site)) {
                    *sites.entry(s.country).or_default() += u128::from(d.carats);
                }
            }
        }
    }
    for (c, carats) in sites {
        whole.entry(c).or_insert(carats);
    }
    for (c, carats) in whole {
        out.entry(c).or_default().declared_carats = carats;
    }
}

/// Every finding code's name, for table columns.
pub fn finding_codes() -> Vec<&'static str> {
    FindingCode::ALL
        .into_iter()
        .map(FindingCode::name)
        .collect()
}
