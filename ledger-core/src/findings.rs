//! Findings: what an audit flags for a human to look at (DESIGN.md section 4.3), computed from the ledger state alone.
//!
//! Verdicts say whether an event changed anything; findings say what looks wrong in what did:
//! flags raised by monitors and authorities, mass lost in a transform above the policy tolerance,
//! receipts that disagree with the declared weight or found the seal broken, dispatches not
//! received by their deadline, value-per-carat jumps through a transform, certificate numbers used
//! twice, and authors who equivocated. They are a pure function of the ledger state, so every node
//! and every replay of the same events finds the same ones. "Now" for deadlines is the latest
//! claimed time of any stored event, not the clock of the machine running the audit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::bytes::{EventId, ParcelId};
use crate::event::FlagTarget;
use crate::ledger::Ledger;
use crate::rules::ParcelState;
use crate::types::{MemberId, SiteId};

/// The kind of a finding; its name is stable (JSON, summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A monitor or an authority flagged a parcel, member, site or event.
    Flagged,
    /// A transform lost more mass than the policy tolerates.
    MassLoss,
    /// A receipt weighed something other than the declared weight.
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
}

impl FindingCode {
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
        }
    }
}

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
        }
    }
}

/// A transform's input and output parcels.
type InputsOutputs = (Vec<ParcelId>, Vec<ParcelId>);

/// Hundredths of a carat as text: `159000` is `1590.00 ct`.
pub fn carats_text(hundredths: u64) -> String {
    format!("{}.{:02} ct", hundredths / 100, hundredths % 100)
}

/// Every finding of the whole ledger, in a deterministic order (by code, then detail).
pub fn all_findings(ledger: &Ledger) -> Vec<Finding> {
    let policy = &ledger.genesis().policy;
    let notes = ledger.notes();
    let mut out = Vec::new();
    let author_of = |id: &EventId| ledger.event(id).map(|m| m.author.clone());

    for (id, flag) in &notes.flags {
        let by = author_of(id).map_or_else(|| "?".to_owned(), |a| a.to_string());
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

    // Transforms: inputs and outputs grouped by the transform event.
    let mut transforms: HashMap<EventId, InputsOutputs> = HashMap::new();
    for p in ledger.parcels() {
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
    for (event, (inputs, mut outputs)) in transforms {
        outputs.sort();
        let parcels_of = |ids: &[ParcelId]| -> Vec<(u64, Option<u64>)> {
            ids.iter()
                .filter_map(|id| ledger.parcel(id).map(|p| (p.carats, p.value_cents)))
                .collect()
        };
        let ins = parcels_of(&inputs);
        let outs = parcels_of(&outputs);
        let carats_in: u64 = ins.iter().map(|(c, _)| c).sum();
        let carats_out: u64 = outs.iter().map(|(c, _)| c).sum();
        let loss = carats_in.saturating_sub(carats_out);
        if carats_in > 0
            && u128::from(loss) * 1_000_000
                > u128::from(carats_in) * u128::from(policy.mass_loss_tolerance_ppm)
        {
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
        // Value per carat of the inputs, when every input declares a value. Declared values are
        // not bounded, so they are summed and multiplied in u128, saturating.
        let values_in: Option<u128> = ins.iter().map(|(_, v)| v.map(u128::from)).sum();
        if let (Some(value_in), true) = (values_in, carats_in > 0) {
            for (id, (c, v)) in outputs.iter().zip(&outs) {
                let (Some(v), true) = (v, *c > 0) else {
                    continue;
                };
                // v / c > pct/100 * value_in / carats_in, in integers.
                let declared = u128::from(*v)
                    .saturating_mul(u128::from(carats_in))
                    .saturating_mul(100);
                let limit = value_in
                    .saturating_mul(u128::from(*c))
                    .saturating_mul(u128::from(policy.value_jump_pct));
                if declared > limit {
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

    for (id, (parcel, declared, measured)) in &notes.receipt_mismatches {
        let mut f = Finding::new(
            FindingCode::ReceiptMismatch,
            format!(
                "receipt {id} of parcel {parcel} weighed {}, declared {}",
                carats_text(*measured),
                carats_text(*declared)
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

    let now = ledger
        .events()
        .values()
        .map(|m| m.time_ms)
        .max()
        .unwrap_or(0);
    let mut overdue: Vec<(EventId, ParcelId, MemberId, MemberId, u64)> = ledger
        .parcels()
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
                f.parcels = c.parcels.clone();
            }
            out.push(f);
        }
    }

    for fork in ledger.forks() {
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

/// The findings that concern one audited parcel: its ancestry, the events of its history, their
/// authors, and the mine sites of its origin.
pub fn parcel_findings(ledger: &Ledger, audit: &Audit) -> Vec<Finding> {
    let parcels: BTreeSet<ParcelId> = audit.ancestry.iter().map(|a| a.parcel).collect();
    let events: BTreeSet<EventId> = audit.history.iter().map(|h| h.event).collect();
    let members: BTreeSet<&MemberId> = audit.history.iter().map(|h| &h.author).collect();
    let sites: BTreeSet<(&MemberId, &SiteId)> =
        audit.origin.iter().map(|s| (&s.member, &s.site)).collect();
    all_findings(ledger)
        .into_iter()
        .filter(|f| {
            f.parcels.iter().any(|p| parcels.contains(p))
                || f.event.is_some_and(|e| events.contains(&e))
                || f.members.iter().any(|m| members.contains(m))
                || f.sites.iter().any(|(m, s)| sites.contains(&(m, s)))
        })
        .collect()
}
