//! Production against exports: what a producing country's certificates exported of its own
//! origin, and the
//! declarations of production those exports exceed (the pattern that had the Republic of Congo
//! expelled from the Kimberley Process in 2004).

use std::collections::BTreeMap;

use crate::bytes::EventId;
use crate::event::{Certify, Declare, DeclareScope};
use crate::ledger::Ledger;
use crate::origin::{Origin, SHARE_UNITS};
use crate::types::{Country, Date};

/// A declaration that exports of its origin in its period exceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excess {
    /// The declaration in force for its scope and period (the latest one for them).
    pub declaration: EventId,
    pub declared: Declare,
    /// Hundredths of a carat of that origin that certificates issued in the period exported.
    pub exported: u128,
    /// The certificates that exported some of it, by id.
    pub certificates: Vec<EventId>,
}

/// Parts of [`SHARE_UNITS`] of `origin` that `scope` covers.
pub fn share_of(origin: &Origin, scope: &DeclareScope) -> u64 {
    origin
        .shares()
        .iter()
        .filter(|s| match scope {
            DeclareScope::Country(c) => s.country == *c,
            DeclareScope::Site { member, site } => s.member == *member && s.site == *site,
        })
        .map(|s| s.units)
        .sum()
}

/// Hundredths of a carat of `scope`'s origin that certificate `c` covers: each parcel's mass at
/// the head the certificate cites, times the parcel's share from that origin.
pub fn exported_by(ledger: &Ledger, c: &Certify, scope: &DeclareScope) -> u128 {
    c.parcels
        .iter()
        .filter_map(|r| {
            let p = ledger.parcel(&r.parcel)?;
            let mass = p.mass_at(&r.head).unwrap_or(p.carats);
            let units = share_of(&p.origin, scope);
            Some(u128::from(mass) * u128::from(units) / u128::from(SHARE_UNITS))
        })
        .sum()
}

/// The declaration in force for each (scope, period): the latest by claimed time, then id (a
/// later declaration for the same scope and period corrects an earlier one).
pub fn declarations(ledger: &Ledger) -> Vec<(EventId, &Declare)> {
    let mut latest: BTreeMap<(&DeclareScope, Date, Date), (u64, EventId, &Declare)> =
        BTreeMap::new();
    for (id, d) in &ledger.state().declarations {
        let time = ledger.event(id).map_or(0, |m| m.time_ms);
        let slot = latest
            .entry((&d.scope, d.from, d.to))
            .or_insert((time, *id, d));
        if (time, *id) > (slot.0, slot.1) {
            *slot = (time, *id, d);
        }
    }
    latest.into_values().map(|(_, id, d)| (id, d)).collect()
}

/// The country a declaration's scope is in (a site's, at the newest governance version).
fn scope_country(ledger: &Ledger, scope: &DeclareScope) -> Option<Country> {
    match scope {
        DeclareScope::Country(c) => Some(*c),
        DeclareScope::Site { member, site } => {
            let gov = ledger.governance().latest_state();
            gov.members.get(member)?.site(site).map(|s| s.country)
        }
    }
}

/// Every declaration whose period's exports of its origin exceed its production plus stock.
/// Exports are those of the producing country: certificates its authority issued for an
/// exporter there, counting the share of the declared origin (a later re-export of the same
/// stones by another country is that country's trade, not more production).
pub fn excesses(ledger: &Ledger) -> Vec<Excess> {
    let gov = ledger.governance().latest_state();
    let exporter_country = |c: &Certify| gov.members.get(&c.exporter).map(|m| m.country);
    let mut certs: Vec<(&EventId, &Certify)> = ledger.certificates().collect();
    certs.sort_by_key(|(id, _)| **id);
    let mut out = Vec::new();
    for (declaration, d) in declarations(ledger) {
        let home = scope_country(ledger, &d.scope);
        let mut exported: u128 = 0;
        let mut certificates = Vec::new();
        let of_period = certs.iter().filter(|(_, c)| {
            d.covers(c.issued_on) && home.is_some() && exporter_country(c) == home
        });
        for (id, c) in of_period {
            let carats = exported_by(ledger, c, &d.scope);
            if carats > 0 {
                exported += carats;
                certificates.push(**id);
            }
        }
        let allowed = u128::from(d.carats) + u128::from(d.stock_carats);
        if exported > allowed {
            out.push(Excess {
                declaration,
                declared: d.clone(),
                exported,
                certificates,
            });
        }
    }
    out
}
