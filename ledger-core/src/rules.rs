//! The custody rules: given the ledger state and one admitted event, its verdict and what it changes.
//!
//! Every check reads only the event, the governance state it cites, and the state recorded at the
//! events it depends on (the parcel heads and certificates it cites, which are processed first).
//! That is what makes a verdict independent of delivery order.

use crate::admission::VerifiedEvent;
use crate::bytes::{EventId, ParcelId};
use crate::crypto::{sha256, PARCEL_ID_CONTEXT};
use crate::event::{
    Body, Certify, Declare, DeclareScope, Dispatch, ParcelRef, Register, Transform,
};
use crate::governance::GovState;
use crate::origin::Origin;
use crate::types::{Country, Date, Member, MemberId, Role};
use crate::view::{AtHead, CitedView};

pub use crate::verdict::{ParcelState, Verdict, VoidReason};

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
    /// The declared extraction date (registrations only).
    pub extracted_on: Option<Date>,
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

/// Checks that `author` is the one entitled to act on `r.parcel` at `r.head`, and returns the
/// parcel there.
fn entitled<'a>(
    view: &CitedView<'a>,
    r: &ParcelRef,
    author: &MemberId,
) -> Result<AtHead<'a>, VoidReason> {
    let at = view.at_head(r).ok_or(VoidReason::UnknownParcel)?;
    let who = at.state.entitled().ok_or(VoidReason::ParcelClosed)?;
    if who != author {
        return Err(match at.state {
            ParcelState::InTransit { .. } => VoidReason::NotRecipient,
            _ => VoidReason::NotCustodian,
        });
    }
    // Only `author` could have moved the parcel on from this head, in an earlier event of its feed.
    require(!at.moved_on, VoidReason::Conflict)?;
    Ok(at)
}

fn held_by_author<'a>(
    view: &CitedView<'a>,
    r: &ParcelRef,
    author: &MemberId,
) -> Result<AtHead<'a>, VoidReason> {
    // Acting as holder: whoever else is entitled, the author is not the custodian.
    let not_custodian = |e| {
        if e == VoidReason::NotRecipient {
            VoidReason::NotCustodian
        } else {
            e
        }
    };
    let at = entitled(view, r, author).map_err(not_custodian)?;
    match at.state {
        ParcelState::Held { .. } => Ok(at),
        // The recipient must receive a parcel before acting on it as its holder.
        _ => Err(VoidReason::NotCustodian),
    }
}

fn in_transit_to_author(
    view: &CitedView,
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
    match entitled(view, r, author).map_err(not_recipient)?.state {
        ParcelState::InTransit { from, .. } => Ok(from),
        _ => Err(VoidReason::NotRecipient),
    }
}

fn check_certificate(view: &CitedView, ev: &VerifiedEvent, d: &Dispatch) -> Result<(), VoidReason> {
    let gov = view.gov();
    let Some(cert_id) = d.certificate else {
        return Err(VoidReason::Uncertified);
    };
    let cert: &Certify = view.certificate(&cert_id).ok_or(VoidReason::Uncertified)?;
    let recipient = gov.members.get(&d.to).ok_or(VoidReason::UnknownMember)?;
    let fits = cert.exporter == ev.header().author
        && cert.importer == d.to
        && cert.destination == recipient.country
        && cert.parcels.iter().any(|r| r.parcel == d.parcel.parcel)
        && Date::from_unix_ms(ev.header().time_ms) <= cert.expires_on;
    require(fits, VoidReason::Uncertified)
}

/// A transform: the author holds every input, and the outputs weigh no more than the inputs.
fn transform(
    view: &CitedView,
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
        inputs.push(held_by_author(view, r, &author.id)?);
    }
    // The inputs weigh what was last weighed (a receipt), not what was declared before it.
    // Summed exactly in u128: no count of u64 amounts a transform can hold overflows it.
    let carats_in: u128 = inputs.iter().map(|a| u128::from(a.mass)).sum();
    let carats_out: u128 = t.outputs.iter().map(|o| u128::from(o.carats)).sum();
    require(carats_out <= carats_in, VoidReason::MassGain)?;
    // At most the inputs' weight, which the shape bounds keep within u64; saturate regardless.
    let loss = u64::try_from(carats_in - carats_out).unwrap_or(u64::MAX);
    let mix: Vec<(&Origin, u64)> = inputs.iter().map(|a| (&a.parcel.origin, a.mass)).collect();
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
            extracted_on: None,
        })
        .collect();
    Ok(Effect::Transform {
        consumed: parents,
        created,
        loss,
    })
}

/// Most a certificate's declared carats may differ from the mass of the parcels it covers, in
/// parts per million of that mass (scales disagree in the last digit; more is a false weight).
pub const CERTIFICATE_CARATS_TOLERANCE_PPM: u64 = 1_000;

/// A certificate: the author's country exports, to an importer in the destination country,
/// parcels that exist at the heads it cites, none with an origin under an embargo in force; it
/// declares what those parcels weigh and where they come from, under a number its author has
/// not used before.
fn certify(
    view: &CitedView,
    author: &Member,
    ev: &VerifiedEvent,
    c: &Certify,
) -> Result<Effect, VoidReason> {
    let gov = view.gov();
    let exporter = gov
        .members
        .get(&c.exporter)
        .ok_or(VoidReason::UnknownMember)?;
    let importer = gov
        .members
        .get(&c.importer)
        .ok_or(VoidReason::UnknownMember)?;
    require(exporter.country == author.country, VoidReason::WrongCountry)?;
    let validity = i64::from(gov.policy.certificate_validity_days);
    require(
        importer.country == c.destination
            && importer.country != exporter.country
            && c.issued_on <= c.expires_on
            && i64::from(c.expires_on.0) - i64::from(c.issued_on.0) <= validity,
        VoidReason::CertificateMismatch,
    )?;
    require(
        !view.certificate_number_used(&author.id, &c.number),
        VoidReason::CertificateNumberReused,
    )?;
    certified_goods(view, ev, c)?;
    Ok(Effect::Certificate)
}

/// The goods a certificate covers: no origin under an embargo, the declared carats within
/// [`CERTIFICATE_CARATS_TOLERANCE_PPM`] of their mass as last weighed, and exactly their origin
/// countries declared (one for a single-origin shipment; every country of a mixed one).
fn certified_goods(view: &CitedView, ev: &VerifiedEvent, c: &Certify) -> Result<(), VoidReason> {
    let days = [c.issued_on, Date::from_unix_ms(ev.header().time_ms)];
    let mut mass: u128 = 0;
    let mut countries: Vec<Country> = Vec::new();
    for r in &c.parcels {
        let at = view.at_head(r).ok_or(VoidReason::CertificateMismatch)?;
        if embargoed(view, &at.parcel.origin, &days) {
            return Err(VoidReason::Embargoed);
        }
        mass += u128::from(at.mass);
        countries.extend(at.parcel.origin.by_country().into_iter().map(|(c, _)| c));
    }
    let declared = u128::from(c.total_carats);
    let off = declared.abs_diff(mass);
    require(
        off * 1_000_000 <= mass * u128::from(CERTIFICATE_CARATS_TOLERANCE_PPM),
        VoidReason::CertificateCarats,
    )?;
    countries.sort_unstable();
    countries.dedup();
    let mut origins = c.origins.clone();
    origins.sort_unstable();
    origins.dedup();
    require(origins == countries, VoidReason::CertificateOrigin)
}

/// True when an embargo of the binding governance state covers `origin` on one of `days`.
fn embargoed(view: &CitedView, origin: &Origin, days: &[Date]) -> bool {
    view.binding()
        .embargoes
        .iter()
        .any(|e| days.iter().any(|d| e.in_force(*d)) && e.covers(origin))
}

/// A registration at one of the author's own sites: a new parcel, 100% that site.
fn register(author: &Member, ev: &VerifiedEvent, r: &Register) -> Result<Effect, VoidReason> {
    let site = author.site(&r.site).ok_or(VoidReason::NotOwnSite)?;
    Ok(Effect::Create(vec![Creation {
        id: parcel_id(ev.id(), 0),
        carats: r.carats,
        stones: r.stones,
        value_cents: r.value_cents,
        seal: r.seal.clone(),
        parents: Vec::new(),
        origin: Origin::single(author.id.clone(), site.id.clone(), site.country),
        extracted_on: Some(r.extracted_on),
    }]))
}

/// A dispatch: the author holds the parcel; across a border the parcel's origin must be under
/// no embargo in force and a certificate must cover the shipment.
fn dispatch(
    view: &CitedView,
    author: &Member,
    ev: &VerifiedEvent,
    d: &Dispatch,
) -> Result<Effect, VoidReason> {
    let parcel = held_by_author(view, &d.parcel, &author.id)?.parcel;
    require(d.to != author.id, VoidReason::SelfDispatch)?;
    let recipient = view
        .gov()
        .members
        .get(&d.to)
        .ok_or(VoidReason::UnknownMember)?;
    let cross_border = recipient.country != author.country;
    let today = [Date::from_unix_ms(ev.header().time_ms)];
    if cross_border && embargoed(view, &parcel.origin, &today) {
        return Err(VoidReason::Embargoed);
    }
    if cross_border || d.certificate.is_some() {
        check_certificate(view, ev, d)?;
    }
    Ok(Effect::Move {
        parcel: d.parcel.parcel,
        state: ParcelState::InTransit {
            from: author.id.clone(),
            to: d.to.clone(),
            dispatch: *ev.id(),
        },
        measured_carats: None,
    })
}

/// A production declaration: by an authority of the country it covers (for a site, the site's
/// country; the site must exist).
fn declare(gov: &GovState, author: &Member, d: &Declare) -> Result<Effect, VoidReason> {
    let country = match &d.scope {
        DeclareScope::Country(c) => *c,
        DeclareScope::Site { member, site } => {
            let owner = gov.members.get(member).ok_or(VoidReason::UnknownMember)?;
            owner.site(site).ok_or(VoidReason::NotOwnSite)?.country
        }
    };
    require(country == author.country, VoidReason::WrongCountry)?;
    Ok(Effect::Record)
}

/// The decision that binds every event whatever version it cites: its author must not be
/// suspended at its seq. (A key governance no longer assigns to its seq is placement's: such an
/// event holds no slot and is never judged here.)
fn binding(view: &CitedView, ev: &VerifiedEvent) -> Result<(), VoidReason> {
    let h = ev.header();
    require(
        view.binding()
            .suspension_of(&h.author, h.seq, h.gov)
            .is_none(),
        VoidReason::Suspended,
    )
}

/// The verdict on `ev` and, when applied, its effect. The event's feed links, key and
/// dependencies have been checked by the ledger already.
pub fn judge(view: &CitedView, ev: &VerifiedEvent) -> Result<Effect, VoidReason> {
    let gov = view.gov();
    let h = ev.header();
    let author_id = &h.author;
    let author = gov
        .members
        .get(author_id)
        .ok_or(VoidReason::UnknownMember)?;
    if view.author_forked(author_id, h.seq) {
        return Err(VoidReason::AuthorForked);
    }
    binding(view, ev)?;
    let role = |r: Role| require(author.has_role(r), VoidReason::WrongRole);
    match ev.body() {
        Body::Register(r) => {
            role(Role::Mine)?;
            register(author, ev, r)
        }
        Body::Transform(t) => transform(view, author, ev, t),
        Body::Dispatch(d) => dispatch(view, author, ev, d),
        Body::Receive(r) => {
            in_transit_to_author(view, &r.parcel, author_id)?;
            Ok(Effect::Move {
                parcel: r.parcel.parcel,
                state: ParcelState::Held {
                    by: author_id.clone(),
                },
                measured_carats: Some(r.measured_carats),
            })
        }
        Body::Reject(r) => {
            let from = in_transit_to_author(view, &r.parcel, author_id)?;
            Ok(Effect::Move {
                parcel: r.parcel.parcel,
                state: ParcelState::Held { by: from },
                measured_carats: None,
            })
        }
        Body::Retire(r) => {
            held_by_author(view, &r.parcel, author_id)?;
            Ok(Effect::Move {
                parcel: r.parcel.parcel,
                state: ParcelState::Retired { cause: r.cause },
                measured_carats: None,
            })
        }
        Body::Certify(c) => {
            role(Role::Authority)?;
            certify(view, author, ev, c)
        }
        Body::KpCertificate(k) => {
            role(Role::Authority)?;
            certify(view, author, ev, &k.certify)
        }
        Body::Declare(d) => {
            role(Role::Authority)?;
            declare(gov, author, d)
        }
        Body::ConfirmImport(c) => {
            role(Role::Authority)?;
            let cert = view
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
        Body::Govern(g) => view
            .chain()
            .judge_carrier(h.gov, g)
            .map(|()| Effect::Record),
    }
}
