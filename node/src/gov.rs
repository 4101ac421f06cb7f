//! Governance through the node: proposals, endorsements, objections and submissions turned into
//! event bodies against the newest governance version, and the chain and its proposals as JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use ledger_core::bytes::{Digest, PublicKeyBytes};
use ledger_core::crypto::SecretKey;
use ledger_core::event::{Body, Endorse, GovAction, Govern, Object};
use ledger_core::governance::{ActionError, GovState, Governance, Record, Version};
use ledger_core::ledger::Ledger;
use ledger_core::proposals::Proposal;
use ledger_core::quorum::Tally;
use ledger_core::record::endorse;
use ledger_core::rules::VoidReason;
use ledger_core::types::MemberId;

/// Most governance versions one `GET /v1/gov` answer shows (each with its whole state); page
/// with `from`.
pub const MAX_GOV_PAGE: u64 = 100;
/// Most open proposals, objections of one record, or events of one proposal listed in one
/// answer (a member may sign as many as its feed holds; the answer stays bounded).
pub const MAX_GOV_LIST: usize = 256;

/// A governance request to the node's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovRequest {
    /// Propose `action` as the version after the newest, endorsing it.
    Propose(GovAction),
    /// Endorse a known proposal.
    Endorse(Digest),
    /// Object to a known proposal or record.
    Object { record: Digest, reason: String },
    /// Submit a known proposal with every endorsement gathered; `force` signs it even when the
    /// endorsements do not meet the quorum (it is then stored void `no-quorum`).
    Submit { record: Digest, force: bool },
}

/// Why a governance request was not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovError {
    #[error("no proposal or governance record {0} is known to this node (a proposal is an endorse event; check the id, or wait until it reaches this node)")]
    UnknownRecord(Digest),
    #[error("proposal {record} is for governance version {version}, but version {latest} is the newest in force: it was superseded; propose the action again to extend version {latest}")]
    Superseded {
        record: Digest,
        version: u64,
        latest: u64,
    },
    #[error("proposal {record} extends governance version {base}, which this node does not have yet (its newest is {latest}); try again once it has arrived")]
    Ahead {
        record: Digest,
        base: u64,
        latest: u64,
    },
    #[error("this node's member {member} has endorsed proposal {record} already")]
    AlreadyEndorsed { member: MemberId, record: Digest },
    #[error("the endorsements of proposal {record} do not meet the quorum of governance version {base}: short of {shortfall}; gather more endorsements, or submit with ?force=true to record it anyway (it is then void no-quorum)")]
    NoQuorum {
        record: Digest,
        base: u64,
        shortfall: String,
    },
    #[error("the action cannot apply to governance version {latest}: {error}")]
    InvalidAction { latest: u64, error: ActionError },
}

/// A governance body ready to sign, with the record it is about.
#[derive(Debug, Clone)]
pub struct GovDraft {
    pub body: Body,
    pub record: Digest,
    /// The version the record would make.
    pub version: u64,
    /// A void verdict the caller accepts (a forced submission's `no-quorum`).
    pub accept_void: Option<VoidReason>,
}

/// The newest version and its id.
fn newest(gov: &Governance) -> (u64, Digest) {
    let latest = gov.latest();
    let id = gov.version(latest).map_or_else(Digest::default, |v| v.id);
    (latest, id)
}

/// The proposal named `record`, if it extends the newest version.
fn open_proposal<'a>(ledger: &'a Ledger, record: &Digest) -> Result<&'a Proposal, GovError> {
    let p = ledger
        .proposals()
        .get(record)
        .ok_or(GovError::UnknownRecord(*record))?;
    let (latest, id) = newest(ledger.governance());
    let base = p.version.saturating_sub(1);
    if base > latest {
        return Err(GovError::Ahead {
            record: *record,
            base,
            latest,
        });
    }
    if p.version != latest + 1 || p.prev != id {
        return Err(GovError::Superseded {
            record: *record,
            version: p.version,
            latest,
        });
    }
    Ok(p)
}

/// The endorsements of a proposal, by member, as a record counts them.
fn endorsement_keys(p: &Proposal) -> BTreeMap<MemberId, BTreeSet<PublicKeyBytes>> {
    let mut out: BTreeMap<MemberId, BTreeSet<PublicKeyBytes>> = BTreeMap::new();
    for (member, key) in p.endorsements.keys() {
        out.entry(member.clone()).or_default().insert(*key);
    }
    out
}

/// The tally of a proposal against the version it extends, if the chain has that version.
pub fn proposal_tally(gov: &Governance, p: &Proposal) -> Option<Tally> {
    gov.tally(&Record {
        id: p.id,
        version: p.version,
        prev: p.prev,
        action: p.action.clone(),
        endorsements: endorsement_keys(p),
        carriers: BTreeSet::new(),
    })
}

/// Refuses a second endorsement of one proposal by the same member and key (proposing a record
/// that is proposed already endorses it).
fn not_endorsed(
    p: Option<&Proposal>,
    member: &MemberId,
    key: &SecretKey,
    record: Digest,
) -> Result<(), GovError> {
    let public = key.public();
    if p.is_some_and(|p| p.endorsements.contains_key(&(member.clone(), public))) {
        return Err(GovError::AlreadyEndorsed {
            member: member.clone(),
            record,
        });
    }
    Ok(())
}

impl GovRequest {
    /// The body this request becomes for `member` (signing endorsements with `key`), against
    /// the ledger's newest governance version.
    pub fn draft(
        self,
        ledger: &Ledger,
        member: &MemberId,
        key: &SecretKey,
    ) -> Result<GovDraft, GovError> {
        let gov = ledger.governance();
        let (latest, prev) = newest(gov);
        let endorsed = |version, prev, action: GovAction, record| {
            let endorsement = endorse(key, member.clone(), &record);
            Body::Endorse(Endorse {
                version,
                prev,
                action,
                endorsement,
            })
        };
        match self {
            GovRequest::Propose(action) => {
                let version = latest + 1;
                gov.latest_state()
                    .apply(version, &action)
                    .map_err(|error| GovError::InvalidAction { latest, error })?;
                let record = gov.record_id(version, &prev, &action);
                not_endorsed(ledger.proposals().get(&record), member, key, record)?;
                Ok(GovDraft {
                    body: endorsed(version, prev, action, record),
                    record,
                    version,
                    accept_void: None,
                })
            }
            GovRequest::Endorse(record) => {
                let p = open_proposal(ledger, &record)?;
                not_endorsed(Some(p), member, key, record)?;
                Ok(GovDraft {
                    body: endorsed(p.version, p.prev, p.action.clone(), record),
                    record,
                    version: p.version,
                    accept_void: None,
                })
            }
            GovRequest::Object { record, reason } => object(ledger, record, reason),
            GovRequest::Submit { record, force } => submit(ledger, record, force),
        }
    }
}

fn object(ledger: &Ledger, record: Digest, reason: String) -> Result<GovDraft, GovError> {
    let version = match (
        ledger.proposals().get(&record),
        ledger.governance().record(&record),
    ) {
        (Some(p), _) => p.version,
        (None, Some(r)) => r.version,
        (None, None) => return Err(GovError::UnknownRecord(record)),
    };
    Ok(GovDraft {
        body: Body::Object(Object { record, reason }),
        record,
        version,
        accept_void: None,
    })
}

fn submit(ledger: &Ledger, record: Digest, force: bool) -> Result<GovDraft, GovError> {
    let p = open_proposal(ledger, &record)?;
    let base = p.version - 1;
    let met = proposal_tally(ledger.governance(), p);
    match met {
        Some(t) if !t.met() && !force => {
            return Err(GovError::NoQuorum {
                record,
                base,
                shortfall: t.shortfall(),
            })
        }
        _ => {}
    }
    Ok(GovDraft {
        body: Body::Govern(Govern {
            version: p.version,
            prev: p.prev,
            action: p.action.clone(),
            endorsements: p.endorsement_list(),
        }),
        record,
        version: p.version,
        accept_void: force.then_some(VoidReason::NoQuorum),
    })
}

/// A tally as JSON, with whether it is met and what is missing.
fn tally_json(t: &Tally) -> Value {
    json!({
        "government": t.government,
        "government_needed": t.government_needed,
        "industry": t.industry,
        "industry_needed": t.industry_needed,
        "civil_society": t.civil_society,
        "civil_society_needed": t.civil_society_needed,
        "met": t.met(),
        "shortfall": t.shortfall(),
        "counted": t.counted,
        "ignored": t.ignored.iter().map(|(m, why)| json!({ "member": m, "why": why })).collect::<Vec<_>>(),
    })
}

/// Endorsers as `[{member, key}]`.
fn endorsers_json<'a>(list: impl Iterator<Item = (&'a MemberId, &'a PublicKeyBytes)>) -> Value {
    Value::Array(
        list.take(MAX_GOV_LIST)
            .map(|(member, key)| json!({ "member": member, "key": key }))
            .collect(),
    )
}

/// The objections to a record, as `[{member, reason, event}]`.
fn objections_json(ledger: &Ledger, record: &Digest) -> Value {
    Value::Array(
        ledger
            .proposals()
            .objections(record)
            .take(MAX_GOV_LIST)
            .map(|o| json!({ "member": o.member, "reason": o.reason, "event": o.event }))
            .collect(),
    )
}

/// A governance state: members with their keys (and which are revoked), suspensions,
/// embargoes and policy.
pub fn state_json(state: &GovState) -> Value {
    let members: Vec<Value> = state
        .members
        .values()
        .map(|m| {
            let keys: Vec<Value> = m
                .keys
                .iter()
                .map(|g| {
                    json!({
                        "key": g.key,
                        "from_seq": g.from_seq,
                        "revoked": state.revoked.get(&g.key),
                    })
                })
                .collect();
            json!({
                "id": m.id, "name": m.name, "chamber": m.chamber, "country": m.country,
                "roles": m.roles, "sites": m.sites, "keys": keys,
                "current_key": state.current_key(&m.id),
                "suspended": state.is_suspended(&m.id),
            })
        })
        .collect();
    json!({
        "members": members,
        "suspensions": state.suspensions,
        "embargoes": state.embargoes,
        "policy": state.policy,
    })
}

/// Where a record stands: `in-force`, `forked`, `open` (it extends the newest version),
/// `ahead` (it extends a version this node does not have) or `superseded`.
fn status(gov: &Governance, record: &Digest, version: u64, prev: &Digest) -> &'static str {
    let (latest, newest_id) = newest(gov);
    if gov.version(version).is_some_and(|v| v.id == *record) {
        "in-force"
    } else if gov
        .forks()
        .any(|f| f.version == version && f.records.contains(record))
    {
        "forked"
    } else if version == latest + 1 && *prev == newest_id {
        "open"
    } else if version > latest + 1 {
        "ahead"
    } else {
        "superseded"
    }
}

/// A proposal: its action, status, endorsements, the events carrying them, objections, tally.
pub fn proposal_json(ledger: &Ledger, p: &Proposal) -> Value {
    let gov = ledger.governance();
    json!({
        "record": p.id,
        "version": p.version,
        "prev": p.prev,
        "action": p.action,
        "status": status(gov, &p.id, p.version, &p.prev),
        "endorsements": endorsers_json(p.endorsements.keys().map(|(m, k)| (m, k))),
        "events": p.events.iter().take(MAX_GOV_LIST).collect::<Vec<_>>(),
        "objections": objections_json(ledger, &p.id),
        "tally": proposal_tally(gov, p).as_ref().map(tally_json),
    })
}

/// A record known only from `govern` events (no endorse event proposed it), as a proposal.
fn record_json(ledger: &Ledger, r: &Record) -> Value {
    let gov = ledger.governance();
    json!({
        "record": r.id,
        "version": r.version,
        "prev": r.prev,
        "action": r.action,
        "status": status(gov, &r.id, r.version, &r.prev),
        "endorsements": endorsers_json(r.endorsements.iter().flat_map(|(m, ks)| ks.iter().map(move |k| (m, k)))),
        "events": r.carriers.iter().take(MAX_GOV_LIST).collect::<Vec<_>>(),
        "objections": objections_json(ledger, &r.id),
        "tally": gov.tally(r).as_ref().map(tally_json),
    })
}

/// A proposal or record by id, or `None` when the node knows neither.
pub fn find_json(ledger: &Ledger, record: &Digest) -> Option<Value> {
    if let Some(p) = ledger.proposals().get(record) {
        return Some(proposal_json(ledger, p));
    }
    ledger
        .governance()
        .record(record)
        .map(|r| record_json(ledger, r))
}

/// One version of the chain: its record's action, endorsers (with the tally), the events that
/// carry it, the objections to it, and the state it made.
fn version_json(ledger: &Ledger, number: u64, v: &Version) -> Value {
    let gov = ledger.governance();
    let record = (number > 0).then(|| gov.record(&v.id)).flatten();
    json!({
        "version": number,
        "id": v.id,
        "action": record.map(|r| &r.action),
        "endorsers": record.map_or(Value::Array(Vec::new()), |r| endorsers_json(
            r.endorsements.iter().flat_map(|(m, ks)| ks.iter().map(move |k| (m, k))))),
        "tally": record.and_then(|r| gov.tally(r)).as_ref().map(tally_json),
        "events": record.map(|r| r.carriers.iter().take(MAX_GOV_LIST).collect::<Vec<_>>()),
        "objections": objections_json(ledger, &v.id),
        "state": state_json(&v.state),
    })
}

/// The chain from version `from` (at most `limit` versions), the state in force, the open
/// proposals (at most [`MAX_GOV_LIST`]) and the governance forks.
pub fn chain_json(ledger: &Ledger, from: u64, limit: u64) -> Value {
    let gov = ledger.governance();
    let versions: Vec<Value> = gov
        .versions()
        .iter()
        .enumerate()
        .skip(usize::try_from(from).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(n, v)| version_json(ledger, n as u64, v))
        .collect();
    let (latest, id) = newest(gov);
    let open: Vec<&Proposal> = ledger
        .proposals()
        .all()
        .filter(|p| p.version == latest + 1 && p.prev == id)
        .collect();
    json!({
        "network": ledger.network(),
        "latest": latest,
        "from": from,
        "versions": versions,
        "state": state_json(gov.latest_state()),
        "proposals": open.iter().take(MAX_GOV_LIST).map(|p| proposal_json(ledger, p)).collect::<Vec<_>>(),
        "proposals_truncated": open.len() > MAX_GOV_LIST,
        "forks": gov.forks().take(MAX_GOV_LIST).collect::<Vec<_>>(),
    })
}
