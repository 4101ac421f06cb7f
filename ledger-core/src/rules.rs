//! The custody rules: given the ledger state and one admitted event, its verdict and what it changes.
//!
//! Every check reads only the event, the governance state it cites, and the state recorded at the
//! events it depends on (the parcel heads and certificates it cites, which are processed first).
//! That is what makes a verdict independent of delivery order.

use serde::{Deserialize, Serialize};

use crate::admission::VerifiedEvent;
use crate::bytes::{EventId, ParcelId};
use crate::crypto::{sha256, PARCEL_ID_CONTEXT};
use crate::event::{Body, Certify, Dispatch, ParcelRef, RetireCause, Transform};
use crate::governance::GovState;
use crate::ledger::Ledger;
use crate::origin::Origin;
use crate::types::{Date, Member, MemberId, Role};

/// Why a stored event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VoidReason {
    /// The author lacks the role this kind of event needs.
    WrongRole,
    /// A registration at a site that is not one of the author's.
    NotOwnSite,
    /// The author does not hold the parcel at the cited head.
    NotCustodian,
    /// A receipt or rejection by someone other than the dispatch's recipient.
    NotRecipient,
    /// The cited head was already acted on by an earlier event of the same feed (e.g. a double dispatch).
    Conflict,
    /// The parcel was consumed or retired at the cited head.
    ParcelClosed,
    /// The cited head is not an applied event on that parcel.
    UnknownParcel,
    /// A transform whose outputs weigh more than its inputs.
    MassGain,
    /// A cross-border dispatch without a valid certificate for it.
    Uncertified,
    /// A certificate or import confirmation that does not fit the shipment or members it names.
    CertificateMismatch,
    /// A certificate or confirmation by an authority of the wrong country.
    WrongCountry,
    /// A named member does not exist at the cited governance version.
    UnknownMember,
    /// A dispatch to oneself.
    SelfDispatch,
    /// The author's feed is forked at or before this event.
    AuthorForked,
    /// Governance records take effect with the governance issue; until then they are kept, void.
    Unsupported,
}

impl VoidReason {
    /// Every reason, for reports.
    pub const ALL: [VoidReason; 15] = [
        VoidReason::WrongRole,
        VoidReason::NotOwnSite,
        VoidReason::NotCustodian,
        VoidReason::NotRecipient,
        VoidReason::Conflict,
        VoidReason::ParcelClosed,
        VoidReason::UnknownParcel,
        VoidReason::MassGain,
        VoidReason::Uncertified,
        VoidReason::CertificateMismatch,
        VoidReason::WrongCountry,
        VoidReason::UnknownMember,
        VoidReason::SelfDispatch,
        VoidReason::AuthorForked,
        VoidReason::Unsupported,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            VoidReason::WrongRole => "wrong-role",
            VoidReason::NotOwnSite => "not-own-site",
            VoidReason::NotCustodian => "not-custodian",
            VoidReason::NotRecipient => "not-recipient",
            VoidReason::Conflict => "conflict",
            VoidReason::ParcelClosed => "parcel-closed",
            VoidReason::UnknownParcel => "unknown-parcel",
            VoidReason::MassGain => "mass-gain",
            VoidReason::Uncertified => "uncertified",
            VoidReason::CertificateMismatch => "certificate-mismatch",
            VoidReason::WrongCountry => "wrong-country",
            VoidReason::UnknownMember => "unknown-member",
            VoidReason::SelfDispatch => "self-dispatch",
            VoidReason::AuthorForked => "author-forked",
            VoidReason::Unsupported => "unsupported",
        }
    }

    /// The reason in words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            VoidReason::WrongRole => "the author does not have the role this kind of event needs",
            VoidReason::NotOwnSite => "the registration names a site that is not the author's",
            VoidReason::NotCustodian => "the author does not hold the parcel",
            VoidReason::NotRecipient => {
                "only the recipient of the dispatch may receive or reject it"
            }
            VoidReason::Conflict => {
                "the parcel was already acted on from that state (e.g. a double dispatch)"
            }
            VoidReason::ParcelClosed => "the parcel was already consumed or retired",
            VoidReason::UnknownParcel => "no applied event created or moved this parcel as cited",
            VoidReason::MassGain => "the outputs weigh more than the inputs",
            VoidReason::Uncertified => {
                "a cross-border dispatch needs a valid certificate covering the parcel"
            }
            VoidReason::CertificateMismatch => {
                "the certificate does not fit the shipment or members it names"
            }
            VoidReason::WrongCountry => "an authority of another country issued or confirmed it",
            VoidReason::UnknownMember => "a member it names does not exist",
            VoidReason::SelfDispatch => "a member cannot dispatch to itself",
            VoidReason::AuthorForked => {
                "the author signed two events for one feed slot before this"
            }
            VoidReason::Unsupported => "governance records take effect in a later version",
        }
    }

    /// The reason with this stable name.
    pub fn from_name(name: &str) -> Option<VoidReason> {
        VoidReason::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The verdict on a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Applied,
    Void(VoidReason),
}

/// Where a parcel is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParcelState {
    Held {
        by: MemberId,
    },
    InTransit {
        from: MemberId,
        to: MemberId,
        dispatch: EventId,
    },
    Consumed {
        by: EventId,
    },
    Retired {
        cause: RetireCause,
    },
}

impl ParcelState {
    /// The one member entitled to act on the parcel in this state.
    pub fn entitled(&self) -> Option<&MemberId> {
        match self {
            ParcelState::Held { by } => Some(by),
            ParcelState::InTransit { to, .. } => Some(to),
            ParcelState::Consumed { .. } | ParcelState::Retired { .. } => None,
        }
    }
    /// The member responsible for the parcel now (holder, or sender while in transit).
    pub fn custodian(&self) -> Option<&MemberId> {
        match self {
            ParcelState::Held { by } => Some(by),
            ParcelState::InTransit { from, .. } => Some(from),
            _ => None,
        }
    }
    /// A short name: held, in-transit, consumed, retired.
    pub fn name(&self) -> &'static str {
        match self {
            ParcelState::Held { .. } => "held",
            ParcelState::InTransit { .. } => "in-transit",
            ParcelState::Consumed { .. } => "consumed",
            ParcelState::Retired { .. } => "retired",
        }
    }
}

/// A parcel created by an event.
#[derive(Debug, Clone)]
pub struct Creation {
    pub id: ParcelId,
    pub carats: u64,
    pub stones: u32,
    pub value_cents: Option<u64>,
    pub seal: String,
    pub parents: Vec<ParcelId>,
    pub origin: Origin,
}

/// What an applied event changes.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Recorded, no parcel moves (flags, endorsements, objections, witnesses, import confirmations).
    Record,
    /// New parcels held by the author.
    Create(Vec<Creation>),
    /// Inputs consumed and outputs created, `loss` carats lost on the way.
    Transform {
        consumed: Vec<ParcelId>,
        created: Vec<Creation>,
        loss: u64,
    },
    /// One parcel changes state.
    Move {
        parcel: ParcelId,
        state: ParcelState,
        measured_carats: Option<u64>,
    },
    /// A certificate comes into force.
    Certificate,
}

/// The id of output `index` of event `event`.
pub fn parcel_id(event: &EventId, index: u32) -> ParcelId {
    sha256(&[PARCEL_ID_CONTEXT, event.as_bytes(), &index.to_le_bytes()])
}

fn require(ok: bool, reason: VoidReason) -> Result<(), VoidReason> {
    if ok {
        Ok(())
    } else {
        Err(reason)
    }
}

/// Checks that `author` is the one entitled to act on `r.parcel` at `r.head`, and returns the state there.
fn entitled(ledger: &Ledger, r: &ParcelRef, author: &MemberId) -> Result<ParcelState, VoidReason> {
    let parcel = ledger.parcel(&r.parcel).ok_or(VoidReason::UnknownParcel)?;
    let at_head = parcel.state_at(&r.head).ok_or(VoidReason::UnknownParcel)?;
    let who = at_head.entitled().ok_or(VoidReason::ParcelClosed)?;
    if who != author {
        return Err(match at_head {
            ParcelState::InTransit { .. } => VoidReason::NotRecipient,
            _ => VoidReason::NotCustodian,
        });
    }
    // Only `author` could have moved the parcel on from this head, in an earlier event of its feed.
    require(*parcel.head() == r.head, VoidReason::Conflict)?;
    Ok(at_head)
}

fn held_by_author(ledger: &Ledger, r: &ParcelRef, author: &MemberId) -> Result<(), VoidReason> {
    // Acting as holder: whoever else is entitled, the author is not the custodian.
    let not_custodian = |e| {
        if e == VoidReason::NotRecipient {
            VoidReason::NotCustodian
        } else {
            e
        }
    };
    match entitled(ledger, r, author).map_err(not_custodian)? {
        ParcelState::Held { .. } => Ok(()),
        // The recipient must receive a parcel before acting on it as its holder.
        _ => Err(VoidReason::NotCustodian),
    }
}

fn in_transit_to_author(
    ledger: &Ledger,
    r: &ParcelRef,
    author: &MemberId,
) -> Result<MemberId, VoidReason> {
    // Receiving or rejecting: anyone but the named recipient is refused as such.
    let not_recipient = |e| {
        if e == VoidReason::NotCustodian {
            VoidReason::NotRecipient
        } else {
            e
        }
    };
    match entitled(ledger, r, author).map_err(not_recipient)? {
        ParcelState::InTransit { from, .. } => Ok(from.clone()),
        _ => Err(VoidReason::NotRecipient),
    }
}

fn check_certificate(
    ledger: &Ledger,
    gov: &GovState,
    ev: &VerifiedEvent,
    d: &Dispatch,
) -> Result<(), VoidReason> {
    let Some(cert_id) = d.certificate else {
        return Err(VoidReason::Uncertified);
    };
    let cert: &Certify = ledger
        .certificate(&cert_id)
        .ok_or(VoidReason::Uncertified)?;
    let recipient = gov.members.get(&d.to).ok_or(VoidReason::UnknownMember)?;
    let fits = cert.exporter == ev.header().author
        && cert.importer == d.to
        && cert.destination == recipient.country
        && cert.parcels.contains(&d.parcel.parcel)
        && Date::from_unix_ms(ev.header().time_ms) <= cert.expires_on;
    require(fits, VoidReason::Uncertified)
}

/// A transform: the author holds every input, and the outputs weigh no more than the inputs.
fn transform(
    ledger: &Ledger,
    author: &Member,
    ev: &VerifiedEvent,
    t: &Transform,
) -> Result<Effect, VoidReason> {
    require(
        author.has_role(Role::Sorter)
            || author.has_role(Role::Exporter)
            || author.has_role(Role::Mine),
        VoidReason::WrongRole,
    )?;
    let mut inputs = Vec::with_capacity(t.inputs.len());
    for r in &t.inputs {
        held_by_author(ledger, r, &author.id)?;
        let p = ledger.parcel(&r.parcel).ok_or(VoidReason::UnknownParcel)?;
        inputs.push(p);
    }
    // Summed exactly in u128: no count of u64 amounts a transform can hold overflows it.
    let carats_in: u128 = inputs.iter().map(|p| u128::from(p.carats)).sum();
    let carats_out: u128 = t.outputs.iter().map(|o| u128::from(o.carats)).sum();
    require(carats_out <= carats_in, VoidReason::MassGain)?;
    // At most the inputs' weight, which the shape bounds keep within u64; saturate regardless.
    let loss = u64::try_from(carats_in - carats_out).unwrap_or(u64::MAX);
    let mix: Vec<(&Origin, u64)> = inputs.iter().map(|p| (&p.origin, p.carats)).collect();
    let origin = Origin::mix(&mix);
    let parents: Vec<ParcelId> = t.inputs.iter().map(|r| r.parcel).collect();
    let created = t
        .outputs
        .iter()
        .zip(0u32..)
        .map(|(o, i)| Creation {
            id: parcel_id(ev.id(), i),
            carats: o.carats,
            stones: o.stones,
            value_cents: o.value_cents,
            seal: o.seal.clone(),
            parents: parents.clone(),
            origin: origin.clone(),
        })
        .collect();
    Ok(Effect::Transform {
        consumed: parents,
        created,
        loss,
    })
}

/// A certificate: the author's country exports, to an importer in the destination country.
fn certify(gov: &GovState, author: &Member, c: &Certify) -> Result<Effect, VoidReason> {
    let exporter = gov
        .members
        .get(&c.exporter)
        .ok_or(VoidReason::UnknownMember)?;
    let importer = gov
        .members
        .get(&c.importer)
        .ok_or(VoidReason::UnknownMember)?;
    require(exporter.country == author.country, VoidReason::WrongCountry)?;
    require(
        importer.country == c.destination
            && importer.country != exporter.country
            && c.issued_on <= c.expires_on,
        VoidReason::CertificateMismatch,
    )?;
    Ok(Effect::Certificate)
}

/// The verdict on `ev` and, when applied, its effect. The event's feed links, key and
/// dependencies have been checked by the ledger already.
pub fn judge(ledger: &Ledger, gov: &GovState, ev: &VerifiedEvent) -> Result<Effect, VoidReason> {
    let h = ev.header();
    let author_id = &h.author;
    let author = gov
        .members
        .get(author_id)
        .ok_or(VoidReason::UnknownMember)?;
    if ledger.is_forked_at(author_id, h.seq) {
        return Err(VoidReason::AuthorForked);
    }
    let role = |r: Role| require(author.has_role(r), VoidReason::WrongRole);
    match ev.body() {
        Body::Register(r) => {
            role(Role::Mine)?;
            let site = author.site(&r.site).ok_or(VoidReason::NotOwnSite)?;
            Ok(Effect::Create(vec![Creation {
                id: parcel_id(ev.id(), 0),
                carats: r.carats,
                stones: r.stones,
                value_cents: r.value_cents,
                seal: r.seal.clone(),
                parents: Vec::new(),
                origin: Origin::single(author.id.clone(), site.id.clone(), site.country),
            }]))
        }
        Body::Transform(t) => transform(ledger, author, ev, t),
        Body::Dispatch(d) => {
            held_by_author(ledger, &d.parcel, author_id)?;
            require(&d.to != author_id, VoidReason::SelfDispatch)?;
            let recipient = gov.members.get(&d.to).ok_or(VoidReason::UnknownMember)?;
            if recipient.country != author.country || d.certificate.is_some() {
                check_certificate(ledger, gov, ev, d)?;
            }
            Ok(Effect::Move {
                parcel: d.parcel.parcel,
                state: ParcelState::InTransit {
                    from: author_id.clone(),
                    to: d.to.clone(),
                    dispatch: *ev.id(),
                },
                measured_carats: None,
            })
        }
        Body::Receive(r) => {
            in_transit_to_author(ledger, &r.parcel, author_id)?;
            Ok(Effect::Move {
                parcel: r.parcel.parcel,
                state: ParcelState::Held {
                    by: author_id.clone(),
                },
                measured_carats: Some(r.measured_carats),
            })
        }
        Body::Reject(r) => {
            let from = in_transit_to_author(ledger, &r.parcel, author_id)?;
            Ok(Effect::Move {
                parcel: r.parcel.parcel,
                state: ParcelState::Held { by: from },
                measured_carats: None,
            })
        }
        Body::Retire(r) => {
            held_by_author(ledger, &r.parcel, author_id)?;
            Ok(Effect::Move {
                parcel: r.parcel.parcel,
                state: ParcelState::Retired { cause: r.cause },
                measured_carats: None,
            })
        }
        Body::Certify(c) => {
            role(Role::Authority)?;
            certify(gov, author, c)
        }
        Body::ConfirmImport(c) => {
            role(Role::Authority)?;
            let cert = ledger
                .certificate(&c.certificate)
                .ok_or(VoidReason::CertificateMismatch)?;
            require(cert.destination == author.country, VoidReason::WrongCountry)?;
            Ok(Effect::Record)
        }
        Body::Flag(_) => {
            require(
                author.has_role(Role::Monitor) || author.has_role(Role::Authority),
                VoidReason::WrongRole,
            )?;
            Ok(Effect::Record)
        }
        Body::Endorse(_) | Body::Object(_) | Body::Witness(_) => Ok(Effect::Record),
        Body::Govern(_) => Err(VoidReason::Unsupported),
    }
}
