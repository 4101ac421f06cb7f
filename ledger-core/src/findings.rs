//! Findings: what an audit flags for a human to look at (DESIGN.md section 4.3), computed from the ledger state alone.
//!
//! Verdicts say whether an event changed anything; findings say what looks wrong in what did:
//! flags raised by monitors and authorities, mass lost in a transform above the policy tolerance,
//! receipts that disagree with the declared weight or found the seal broken, dispatches not
//! received by their deadline, value-per-carat jumps through a transform, certificate numbers used
//! twice, and authors who equivocated. They are a pure function of the ledger state, so every node
//! and every replay of the same events finds the same ones. "Now" for deadlines is the latest
//! claimed time of any stored event, not the clock of the machine running the audit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::bytes::{EventId, ParcelId};
use crate::event::{DeclareScope, FlagTarget};
use crate::governance::Embargo;
use crate::ledger::{Fork, Ledger, Parcel};
use crate::origin::{percent, OriginShare};
use crate::production::excesses;
use crate::rules::ParcelState;
use crate::types::{Date, MemberId, SiteId};

/// The kind of a finding; its name is stable (JSON, summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A monitor or an authority flagged a parcel, member, site or event.
    Flagged,
    /// A transform lost more mass than the policy tolerates.
    MassLoss,
    /// A receipt weighed something other than what the parcel weighed when dispatched.
    ReceiptMismatch,
    /// A receipt found the seal broken.
    BrokenSeal,
    /// A dispatch was not received by its deadline.
    OverdueDispatch,
    /// A transform output is worth far more per carat than its inputs.
    ValueJump,
    /// A certificate number was used by more than one certificate.
    DuplicateCertificate,
    /// An author signed two different events for one feed slot.
    Equivocation,
    /// Part of a parcel's origin is under an embargo governance set (in force or lifted).
    EmbargoedOrigin,
    /// A parcel registered long after its declared extraction date.
    LateRegistration,
    /// Certificates of a period exported more of an origin than its declared production and stock.
    ExportsAboveProduction,
}

impl FindingCode {
    /// Every code, in order (table columns).
    pub const ALL: [FindingCode; 11] = [
        FindingCode::Flagged,
        FindingCode::MassLoss,
        FindingCode::ReceiptMismatch,
        FindingCode::BrokenSeal,
        FindingCode::OverdueDispatch,
        FindingCode::ValueJump,
        FindingCode::DuplicateCertificate,
        FindingCode::Equivocation,
        FindingCode::EmbargoedOrigin,
        FindingCode::LateRegistration,
        FindingCode::ExportsAboveProduction,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            FindingCode::Flagged => "flagged",
            FindingCode::MassLoss => "mass-loss",
            FindingCode::ReceiptMismatch => "receipt-mismatch",
            FindingCode::BrokenSeal => "broken-seal",
            FindingCode::OverdueDispatch => "overdue-dispatch",
            FindingCode::ValueJump => "value-jump",
            FindingCode::DuplicateCertificate => "duplicate-certificate",
            FindingCode::Equivocation => "equivocation",
            FindingCode::EmbargoedOrigin => "embargoed-origin",
            FindingCode::LateRegistration => "late-registration",
            FindingCode::ExportsAboveProduction => "exports-above-production",
        }
    }
}

/// Findings that rest on the whole log (every certificate of a period, every declaration), which a
/// parcel's proof bundle does not carry: a bundle's audit cannot find them, and says so.
pub const LOG_WIDE: [FindingCode; 1] = [FindingCode::ExportsAboveProduction];

/// One finding and what it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    /// One line for a human.
    pub detail: String,
    /// The event it rests on, if one.
    pub event: Option<EventId>,
    /// Parcels it concerns.
    pub parcels: Vec<ParcelId>,
    /// Members it is about (a flagged member, an equivocating author): an audit shows it when one
    /// of them authored an event of the parcel's history.
    pub members: Vec<MemberId>,
    /// Mine sites it concerns, as (member, site).
    pub sites: Vec<(MemberId, SiteId)>,
    /// For an embargoed origin: the embargo and the parcel's share under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo: Option<EmbargoedShare>,
}

/// An embargo over part of a parcel's origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbargoedShare {
    pub embargo: Embargo,
    /// The parcel's share from the embargoed origin, in parts of `SHARE_UNITS`.
    pub share_units: u64,
}

impl Finding {
    fn new(code: FindingCode, detail: String) -> Finding {
        Finding {
            code,
            detail,
            event: None,
            parcels: Vec::new(),
            members: Vec::new(),
            sites: Vec::new(),
            embargo: None,
        }
    }
}

/// A transform's input and output parcels.
type InputsOutputs = (Vec<ParcelId>, Vec<ParcelId>);

/// Hundredths of a carat as text: `159000` is `1590.00 ct`.
pub fn carats_text(hundredths: u64) -> String {
    format!("{}.{:02} ct", hundredths / 100, hundredths % 100)
}

/// The latest claimed time of any stored event: "now" for the deadlines of a whole log.
pub fn latest_time(ledger: &Ledger) -> u64 {
    ledger
        .events()
        .values()
        .map(|m| m.time_ms)
        .max()
        .unwrap_or(0)
}

/// The parcels the parcel-by-parcel findings look at: every parcel, or a set (an audit's
/// ancestry and the transforms around it), so that one parcel's findings cost its ancestry, not
/// the whole log.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    All,
    Parcels(&'a HashSet<ParcelId>),
}

impl<'a> Scope<'a> {
    fn parcels(self, ledger: &'a Ledger) -> Box<dyn Iterator<Item = &'a Parcel> + 'a> {
        match self {
            Scope::All => Box::new(ledger.parcels()),
            Scope::Parcels(set) => Box::new(set.iter().filter_map(|p| ledger.parcel(p))),
        }
    }
}

/// An audit's scope: its ancestry, the other outputs of the transforms that made its parcels,
/// and the outputs of a transform that consumed one of them.
fn audit_scope(ledger: &Ledger, audit: &Audit) -> HashSet<ParcelId> {
    let mut set: HashSet<ParcelId> = audit.ancestry.iter().map(|a| a.parcel).collect();
    let mut makers: Vec<EventId> = Vec::new();
    for p in audit
        .ancestry
        .iter()
        .filter_map(|a| ledger.parcel(&a.parcel))
    {
        if !p.parents.is_empty() {
            makers.push(*p.created_by());
        }
        if let ParcelState::Consumed { by } = p.state() {
            makers.push(by);
        }
    }
    for t in makers {
        let outputs = (0u32..).map(|i| crate::rules::parcel_id(&t, i));
        set.extend(outputs.take_while(|o| ledger.parcel(o).is_some()));
    }
    set
}

/// Every finding of the whole ledger, in a deterministic order (by code, then detail), with
/// deadlines judged as of the latest claimed time of any stored event.
pub fn all_findings(ledger: &Ledger) -> Vec<Finding> {
    all_findings_at(ledger, latest_time(ledger))
}

/// Every finding of the whole ledger, with deadlines judged as of `now` (UNIX ms; a proof
/// bundle's audit judges them as of its checkpoint's time).
pub fn all_findings_at(ledger: &Ledger, now: u64) -> Vec<Finding> {
    findings_in(ledger, now, Scope::All)
}

/// The findings of `scope` (the parcel-by-parcel ones of its parcels only; embargoed origins
/// only for every parcel), sorted.
fn findings_in(ledger: &Ledger, now: u64, scope: Scope) -> Vec<Finding> {
    let mut out = Vec::new();
    flag_findings(ledger, &mut out);
    transform_findings(ledger, scope, &mut out);
    receipt_findings(ledger, &mut out);
    overdue_findings(ledger, now, scope, &mut out);
    certificate_findings(ledger, &mut out);
    late_registrations(ledger, scope, &mut out);
    production_findings(ledger, &mut out);
    if let Scope::All = scope {
        for p in ledger.parcels().filter(|p| {
            matches!(
                p.state(),
                ParcelState::Held { .. } | ParcelState::InTransit { .. }
            )
        }) {
            out.extend(embargo_findings(ledger, p));
        }
    }
    for fork in first_forks(ledger) {
        let mut f = Finding::new(
            FindingCode::Equivocation,
            format!(
                "{} signed two events for seq {} ({} and {}); its feed is void from there",
                fork.author, fork.seq, fork.first, fork.second
            ),
        );
        f.event = Some(fork.first);
        f.members = vec![fork.author.clone()];
        out.push(f);
    }
    out.sort_by(|a, b| (a.code, &a.detail).cmp(&(b.code, &b.detail)));
    out
}

/// Each equivocating author's first proven fork (its feed is void from there; later forks add
/// nothing a reader can act on, and a proof bundle carries only the first).
pub fn first_forks(ledger: &Ledger) -> impl Iterator<Item = &Fork> {
    let mut last: Option<&MemberId> = None;
    // Forks come by (author, seq): the first of each author is its lowest.
    ledger.forks().filter(move |f| {
        let first = last != Some(&f.author);
        last = Some(&f.author);
        first
    })
}

fn flag_findings(ledger: &Ledger, out: &mut Vec<Finding>) {
    for (id, flag) in &ledger.notes().flags {
        let by = ledger
            .event(id)
            .map_or_else(|| "?".to_owned(), |m| m.author.to_string());
        let code = flag.code.name();
        let mut f = Finding::new(FindingCode::Flagged, String::new());
        let what = match &flag.target {
            FlagTarget::Parcel(p) => {
                f.parcels.push(*p);
                format!("parcel {p}")
            }
            FlagTarget::Member(m) => {
                f.members.push(m.clone());
                format!("member {m}")
            }
            FlagTarget::Site { member, site } => {
                f.sites.push((member.clone(), site.clone()));
                format!("site {site} of {member}")
            }
            FlagTarget::Event(e) => {
                f.event = Some(*e);
                format!("event {e}")
            }
        };
        f.detail = format!("{by} flagged {what} for {code}: {}", flag.text);
        if f.event.is_none() {
            f.event = Some(*id);
        }
        out.push(f);
    }
}

/// Amounts summed for a report: saturating, so that no amount a ledger holds can overflow it
/// (the shape bounds keep real sums far below `u64::MAX`).
fn report_total(amounts: impl IntoIterator<Item = u64>) -> u64 {
    amounts.into_iter().fold(0, u64::saturating_add)
}

/// Whether a transform lost more than `tolerance_ppm` of `carats_in` (`loss` of it).
fn mass_lost(loss: u64, carats_in: u64, tolerance_ppm: u32) -> bool {
    // Widened: u64 times at most 10^6 or a u32 cannot overflow u128.
    carats_in > 0
        && u128::from(loss) * 1_000_000 > u128::from(carats_in) * u128::from(tolerance_ppm)
}

/// Whether an output worth `value` cents for `carats` is worth more than `pct`% of its inputs'
/// value per carat (`value_in` cents for `carats_in`): `value / carats > pct/100 * value_in /
/// carats_in`, in integers. The products saturate, so extreme amounts cannot overflow.
pub fn value_jumps(value: u64, carats: u64, value_in: u64, carats_in: u64, pct: u32) -> bool {
    if carats == 0 || carats_in == 0 {
        return false;
    }
    let output = u128::from(value)
        .saturating_mul(u128::from(carats_in))
        .saturating_mul(100);
    let inputs = u128::from(value_in)
        .saturating_mul(u128::from(carats))
        .saturating_mul(u128::from(pct));
    output > inputs
}

/// Transforms: inputs and outputs grouped by the transform event, in event order.
fn transforms(ledger: &Ledger, scope: Scope) -> Vec<(EventId, InputsOutputs)> {
    let mut transforms: HashMap<EventId, InputsOutputs> = HashMap::new();
    for p in scope.parcels(ledger) {
        if p.parents.is_empty() {
            continue;
        }
        if let Some(created) = p.transitions().first() {
            let t = transforms.entry(created.event).or_default();
            t.1.push(p.id);
            if t.0.is_empty() {
                t.0 = p.parents.clone();
            }
        }
    }
    let mut transforms: Vec<(EventId, InputsOutputs)> = transforms.into_iter().collect();
    transforms.sort_by_key(|(id, _)| *id);
    for (_, (_, outputs)) in &mut transforms {
        outputs.sort();
    }
    transforms
}

fn transform_findings(ledger: &Ledger, scope: Scope, out: &mut Vec<Finding>) {
    let policy = &ledger.genesis().policy;
    let parcels_of = |ids: &[ParcelId]| -> Vec<(u64, Option<u64>)> {
        ids.iter()
            .filter_map(|id| ledger.parcel(id).map(|p| (p.carats, p.value_cents)))
            .collect()
    };
    for (event, (inputs, outputs)) in transforms(ledger, scope) {
        // An input weighs what it was last weighed before the transform consumed it.
        let ins: Vec<(u64, Option<u64>)> = inputs
            .iter()
            .filter_map(|id| ledger.parcel(id))
            .map(|p| (p.mass_at(&event).unwrap_or(p.carats), p.value_cents))
            .collect();
        let outs = parcels_of(&outputs);
        let carats_in = report_total(ins.iter().map(|(c, _)| *c));
        let carats_out = report_total(outs.iter().map(|(c, _)| *c));
        let loss = carats_in.saturating_sub(carats_out);
        if mass_lost(loss, carats_in, policy.mass_loss_tolerance_ppm) {
            let mut f = Finding::new(
                FindingCode::MassLoss,
                format!(
                    "transform {event} lost {} of {} ({:.2}%, tolerance {:.2}%)",
                    carats_text(loss),
                    carats_text(carats_in),
                    loss as f64 * 100.0 / carats_in as f64,
                    f64::from(policy.mass_loss_tolerance_ppm) / 10_000.0
                ),
            );
            f.event = Some(event);
            f.parcels = inputs.iter().chain(&outputs).copied().collect();
            out.push(f);
        }
        // Value per carat of the inputs, when every input declares a value.
        let Some(values) = ins.iter().map(|(_, v)| *v).collect::<Option<Vec<u64>>>() else {
            continue;
        };
        let value_in = report_total(values);
        for (id, (c, v)) in outputs.iter().zip(&outs) {
            let Some(v) = v else {
                continue;
            };
            if value_jumps(*v, *c, value_in, carats_in, policy.value_jump_pct) {
                let mut f = Finding::new(
                    FindingCode::ValueJump,
                    format!(
                        "parcel {id} from transform {event} is declared at {:.2} USD/ct, its inputs at {:.2} USD/ct (limit {}%)",
                        *v as f64 / *c as f64,
                        value_in as f64 / carats_in as f64,
                        policy.value_jump_pct
                    ),
                );
                f.event = Some(event);
                f.parcels = vec![*id];
                out.push(f);
            }
        }
    }
}

fn receipt_findings(ledger: &Ledger, out: &mut Vec<Finding>) {
    let notes = ledger.notes();
    for (id, (parcel, expected, measured)) in &notes.receipt_mismatches {
        let mut f = Finding::new(
            FindingCode::ReceiptMismatch,
            format!(
                "receipt {id} of parcel {parcel} weighed {}, dispatched at {}; the parcel now weighs what was weighed",
                carats_text(*measured),
                carats_text(*expected)
            ),
        );
        f.event = Some(*id);
        f.parcels = vec![*parcel];
        out.push(f);
    }
    for (id, parcel) in &notes.broken_seals {
        let mut f = Finding::new(
            FindingCode::BrokenSeal,
            format!("receipt {id} of parcel {parcel} found the seal broken"),
        );
        f.event = Some(*id);
        f.parcels = vec![*parcel];
        out.push(f);
    }
}

fn overdue_findings(ledger: &Ledger, now: u64, scope: Scope, out: &mut Vec<Finding>) {
    let policy = &ledger.genesis().policy;
    let notes = ledger.notes();
    let mut overdue: Vec<(EventId, ParcelId, MemberId, MemberId, u64)> = scope
        .parcels(ledger)
        .filter_map(|p| match &p.state() {
            ParcelState::InTransit { from, to, dispatch } => {
                let sent = ledger.event(dispatch)?.time_ms;
                let deadline = notes
                    .deadlines
                    .get(dispatch)
                    .copied()
                    .unwrap_or_else(|| sent.saturating_add(policy.transit_deadline_ms));
                (now > deadline).then(|| (*dispatch, p.id, from.clone(), to.clone(), deadline))
            }
            _ => None,
        })
        .collect();
    overdue.sort_by_key(|o| o.0);
    for (dispatch, parcel, from, to, deadline) in overdue {
        let mut f = Finding::new(
            FindingCode::OverdueDispatch,
            format!(
                "parcel {parcel} dispatched by {from} to {to} ({dispatch}) is not received {} h after its deadline",
                (now - deadline) / 3_600_000
            ),
        );
        f.event = Some(dispatch);
        f.parcels = vec![parcel];
        out.push(f);
    }
}

fn certificate_findings(ledger: &Ledger, out: &mut Vec<Finding>) {
    let mut numbers: BTreeMap<&str, Vec<EventId>> = BTreeMap::new();
    let mut certs: Vec<(&EventId, &crate::event::Certify)> = ledger.certificates().collect();
    certs.sort_by_key(|(id, _)| **id);
    for (id, c) in &certs {
        numbers.entry(c.number.as_str()).or_default().push(**id);
    }
    for (number, ids) in numbers.into_iter().filter(|(_, ids)| ids.len() > 1) {
        for id in &ids[1..] {
            let mut f = Finding::new(
                FindingCode::DuplicateCertificate,
                format!(
                    "certificate number {number} is used by {} certificates (also {})",
                    ids.len(),
                    ids[0]
                ),
            );
            f.event = Some(*id);
            if let Some(c) = ledger.certificate(id) {
                f.parcels = c.parcels.iter().map(|r| r.parcel).collect();
            }
            out.push(f);
        }
    }
}

/// Declared production (and stock) that the certificates of its period exported more of.
fn production_findings(ledger: &Ledger, out: &mut Vec<Finding>) {
    for x in excesses(ledger) {
        let d = &x.declared;
        let mut f = Finding::new(
            FindingCode::ExportsAboveProduction,
            format!(
                "certificates issued {} to {} exported {} of {} origin; declared production {} plus stock {} (declaration {})",
                d.from,
                d.to,
                carats_text(u64::try_from(x.exported).unwrap_or(u64::MAX)),
                d.scope,
                carats_text(d.carats),
                carats_text(d.stock_carats),
                x.declaration
            ),
        );
        f.event = Some(x.declaration);
        f.parcels = x
            .certificates
            .iter()
            .filter_map(|id| ledger.certificate(id))
            .flat_map(|c| c.parcels.iter().map(|r| r.parcel))
            .collect();
        f.parcels.sort_unstable();
        f.parcels.dedup();
        if let DeclareScope::Site { member, site } = &d.scope {
            f.sites = vec![(member.clone(), site.clone())];
        }
        out.push(f);
    }
}

/// Registrations claimed (by the event's time) more than the policy's `late_registration_ms`
/// after the extraction date they declare: stones that surface long after they were mined are
/// how smuggled or stockpiled goods enter a clean chain.
fn late_registrations(ledger: &Ledger, scope: Scope, out: &mut Vec<Finding>) {
    let tolerance = ledger
        .governance()
        .latest_state()
        .policy
        .late_registration_ms;
    for p in scope.parcels(ledger) {
        let Some(late) = registered_late(ledger, p) else {
            continue;
        };
        let (Some(extracted), Some(meta)) = (p.extracted_on, ledger.event(p.created_by())) else {
            continue;
        };
        let mut f = Finding::new(
            FindingCode::LateRegistration,
            format!(
                "parcel {} registered on {}, {} days after its declared extraction on {} \
                 (tolerance {} days)",
                p.id,
                Date::from_unix_ms(meta.time_ms),
                late / 86_400_000,
                extracted,
                tolerance / 86_400_000
            ),
        );
        // About this parcel only (not its site: a mine's every late registration would
        // otherwise show in the audit of every parcel from that site, without bound).
        f.event = Some(*p.created_by());
        f.parcels = vec![p.id];
        out.push(f);
    }
}

/// How long after its declared extraction date a parcel was registered (ms), when that is
/// more than the policy tolerates.
pub fn registered_late(ledger: &Ledger, p: &Parcel) -> Option<u64> {
    let tolerance = ledger
        .governance()
        .latest_state()
        .policy
        .late_registration_ms;
    let extracted = p.extracted_on?;
    let meta = ledger.event(p.created_by())?;
    let extracted_ms = u64::from(extracted.0).saturating_mul(86_400_000);
    let late = meta.time_ms.saturating_sub(extracted_ms);
    (late > tolerance).then_some(late)
}

/// One finding per embargo (set by governance, in force or lifted) that covers part of the
/// parcel's origin, with the embargo's dates and reason and the parcel's share under it.
pub fn embargo_findings(ledger: &Ledger, parcel: &Parcel) -> Vec<Finding> {
    let gov = ledger.governance().latest_state();
    gov.embargoes
        .iter()
        .filter_map(|e| {
            let covered: Vec<&OriginShare> = parcel
                .origin
                .shares()
                .iter()
                .filter(|s| e.covers_share(s))
                .collect();
            let units: u64 = covered.iter().map(|s| s.units).sum();
            if units == 0 {
                return None;
            }
            let until = e
                .end()
                .map_or_else(|| "no end".to_owned(), |d| d.to_string());
            let mut f = Finding::new(
                FindingCode::EmbargoedOrigin,
                format!(
                    "{} of parcel {} comes from {}, under embargo from {} to {until}: {}",
                    percent(units),
                    parcel.id,
                    e.target_text(),
                    e.from,
                    e.reason
                ),
            );
            f.parcels = vec![parcel.id];
            f.sites = covered
                .iter()
                .map(|s| (s.member.clone(), s.site.clone()))
                .collect();
            f.embargo = Some(EmbargoedShare {
                embargo: e.clone(),
                share_units: units,
            });
            Some(f)
        })
        .collect()
}

/// The findings that concern one audited parcel: its ancestry, the events of its history, their
/// authors, and the mine sites of its origin.
pub fn parcel_findings(ledger: &Ledger, audit: &Audit) -> Vec<Finding> {
    parcel_findings_at(ledger, audit, latest_time(ledger))
}

/// [`parcel_findings`] with deadlines judged as of `now`.
pub fn parcel_findings_at(ledger: &Ledger, audit: &Audit, now: u64) -> Vec<Finding> {
    let parcels: BTreeSet<ParcelId> = audit.ancestry.iter().map(|a| a.parcel).collect();
    let events: BTreeSet<EventId> = audit.history.iter().map(|h| h.event).collect();
    let members: BTreeSet<&MemberId> = audit.history.iter().map(|h| &h.author).collect();
    let sites: BTreeSet<(&MemberId, &SiteId)> =
        audit.origin.iter().map(|s| (&s.member, &s.site)).collect();
    let scope = audit_scope(ledger, audit);
    let mut out: Vec<Finding> = findings_in(ledger, now, Scope::Parcels(&scope))
        .into_iter()
        .filter(|f| f.code != FindingCode::EmbargoedOrigin)
        .filter(|f| {
            f.parcels.iter().any(|p| parcels.contains(p))
                || f.event.is_some_and(|e| events.contains(&e))
                || f.members.iter().any(|m| members.contains(m))
                || f.sites.iter().any(|(m, s)| sites.contains(&(m, s)))
        })
        .collect();
    // The audited parcel's own embargoed origin, whatever its state.
    if let Some(p) = ledger.parcel(&audit.parcel) {
        out.extend(embargo_findings(ledger, p));
    }
    out.sort_by(|a, b| (a.code, &a.detail).cmp(&(b.code, &b.detail)));
    out
}
