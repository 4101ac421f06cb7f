//! The signed event envelope, every body kind, and the field-shape checks that admission applies to them.

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, NetworkId, ParcelId, PublicKeyBytes, SignatureBytes};
pub use crate::event_kp::{Declare, DeclareScope, HsCode, KpCertificate};
use crate::types::{
    check_text, Country, Date, Member, MemberId, Policy, Role, Site, SiteId, MAX_SLUG_LEN,
    MAX_TEXT_LEN,
};

/// Most parcels one transform may consume or create.
pub const MAX_TRANSFORM_PARCELS: usize = 256;
/// Most parcels one certificate may cover (each cited with its head, 64 bytes: the most fit in
/// an event with room to spare).
pub const MAX_CERTIFICATE_PARCELS: usize = 512;
/// Most origin countries one certificate may name.
pub const MAX_CERTIFICATE_ORIGINS: usize = 64;
/// Most endorsements or cosignatures one governance record or checkpoint may carry.
pub const MAX_ENDORSEMENTS: usize = 256;
/// Most roles, sites or keys one member may have.
pub const MAX_MEMBER_ITEMS: usize = 256;
/// Largest carat amount (hundredths of a carat) accepted in one field: 10^13 ct, far beyond any parcel.
pub const MAX_CARATS: u64 = 1_000_000_000_000_000;
/// Largest value (US cents) accepted in one field: 10^13 USD, far beyond any parcel or shipment.
pub const MAX_VALUE_CENTS: u64 = 1_000_000_000_000_000;

// The amounts of one transform or certificate, summed, fit in a u64 with room to spare.
const _: () = assert!(
    MAX_CARATS as u128 * MAX_CERTIFICATE_PARCELS as u128 <= u64::MAX as u128
        && MAX_VALUE_CENTS as u128 * MAX_CERTIFICATE_PARCELS as u128 <= u64::MAX as u128
        && MAX_TRANSFORM_PARCELS <= MAX_CERTIFICATE_PARCELS
);

/// The signed header of every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The network (hash of its genesis) this event belongs to.
    pub network: NetworkId,
    /// The member whose feed this event extends.
    pub author: MemberId,
    /// The key that signed this event; must be the member's key for `seq`.
    pub key: PublicKeyBytes,
    /// Position in the author's feed, from 1.
    pub seq: u64,
    /// Id of the author's event `seq - 1`; all zero for `seq == 1`.
    pub prev: EventId,
    /// RFC 6962 root of the author's feed before this event (ids of `1..seq` as leaves).
    pub feed_root: Digest,
    /// Governance version this event acts under; never lower than the previous event's.
    pub gov: u64,
    /// Claimed wall time in milliseconds since the UNIX epoch; non-decreasing in a feed.
    pub time_ms: u64,
}

/// A parcel and the event its author believes is the parcel's current head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelRef {
    pub parcel: ParcelId,
    pub head: EventId,
}

/// A new parcel registered at one of the author's mine sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub site: SiteId,
    /// Hundredths of a carat.
    pub carats: u64,
    pub stones: u32,
    /// US cents.
    pub value_cents: Option<u64>,
    pub seal: String,
    pub extracted_on: Date,
}

/// One output of a transform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewParcel {
    /// Hundredths of a carat.
    pub carats: u64,
    pub stones: u32,
    /// US cents.
    pub value_cents: Option<u64>,
    pub seal: String,
}

/// A split, merge or sort: consumes parcels the author holds and creates new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transform {
    pub inputs: Vec<ParcelRef>,
    pub outputs: Vec<NewParcel>,
}

/// A parcel sent to another member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub parcel: ParcelRef,
    pub to: MemberId,
    /// The `Certify` event covering this shipment; required across borders.
    pub certificate: Option<EventId>,
    pub seal: String,
    /// When the recipient must have received it (UNIX ms); the policy default when absent.
    pub deadline_ms: Option<u64>,
}

/// The named recipient takes the parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receive {
    /// `head` is the dispatch.
    pub parcel: ParcelRef,
    /// Hundredths of a carat, as weighed on receipt.
    pub measured_carats: u64,
    pub seal_intact: bool,
    pub note: String,
}

/// The named recipient refuses the parcel; it returns to the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub parcel: ParcelRef,
    pub reason: String,
}

/// A Kimberley Process certificate issued by the exporter's national authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certify {
    pub number: String,
    pub exporter: MemberId,
    pub importer: MemberId,
    pub destination: Country,
    /// The parcels covered, each at the head the authority saw (so the verdict reads exactly
    /// that state of each parcel, in any delivery order).
    pub parcels: Vec<ParcelRef>,
    /// Hundredths of a carat.
    pub total_carats: u64,
    /// US cents.
    pub value_cents: u64,
    pub origins: Vec<Country>,
    pub issued_on: Date,
    pub expires_on: Date,
}

/// The importer's authority confirms receipt of a certified shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmImport {
    pub certificate: EventId,
    pub note: String,
}

/// Why a parcel leaves the rough trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetireCause {
    Cut,
    Lost,
    Destroyed,
}

/// The custodian takes a parcel out of the rough trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retire {
    pub parcel: ParcelRef,
    pub cause: RetireCause,
    pub note: String,
}

/// What a flag is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagTarget {
    Site { member: MemberId, site: SiteId },
    Member(MemberId),
    Parcel(ParcelId),
    Event(EventId),
}

/// The reason code of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagCode {
    Smuggling,
    Laundering,
    ForgedCertificate,
    HumanRights,
    Embargo,
    MassDiscrepancy,
    Other,
}

impl FlagCode {
    /// The stable name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            FlagCode::Smuggling => "smuggling",
            FlagCode::Laundering => "laundering",
            FlagCode::ForgedCertificate => "forged-certificate",
            FlagCode::HumanRights => "human-rights",
            FlagCode::Embargo => "embargo",
            FlagCode::MassDiscrepancy => "mass-discrepancy",
            FlagCode::Other => "other",
        }
    }
}

/// A signed observation by a monitor or authority; no one can remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub target: FlagTarget,
    pub code: FlagCode,
    pub text: String,
}

/// What an embargo covers: every parcel with an origin share from that country, that member's
/// sites, or that one site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbargoTarget {
    Country(Country),
    Site { member: MemberId, site: SiteId },
    Member(MemberId),
}

/// One governance action. The variant order is the encoding's tag order and must never change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GovAction {
    /// A new member, with its first keys (the first grant signs from seq 1).
    Admit(Member),
    /// New name, roles and sites for a member (chamber, country and keys change otherwise).
    Update {
        member: MemberId,
        name: String,
        roles: Vec<Role>,
        sites: Vec<Site>,
    },
    /// The member's events after `last_valid_seq` are void until it is reinstated.
    Suspend {
        member: MemberId,
        last_valid_seq: u64,
        reason: String,
    },
    /// Ends a suspension: the member's events citing this version or a later one count again.
    Reinstate { member: MemberId, reason: String },
    /// A key for a member that has none in force (after a revocation), signing from `from_seq`.
    AddKey {
        member: MemberId,
        key: PublicKeyBytes,
        from_seq: u64,
    },
    /// The member's key in force signs up to `last_valid_seq`; `key` signs from the next seq.
    RotateKey {
        member: MemberId,
        key: PublicKeyBytes,
        last_valid_seq: u64,
    },
    /// `key` signs nothing after `last_valid_seq`, and no key replaces it.
    RevokeKey {
        member: MemberId,
        key: PublicKeyBytes,
        last_valid_seq: u64,
    },
    /// Parcels with an origin in `target` may not be certified or exported across a border
    /// from `from` until `until` (open-ended when absent).
    SetEmbargo {
        target: EmbargoTarget,
        from: Date,
        until: Option<Date>,
        reason: String,
    },
    /// Ends the embargo in force on `target` on date `on`.
    LiftEmbargo {
        target: EmbargoTarget,
        on: Date,
        reason: String,
    },
    /// A new policy: quorum per chamber, tolerances, certificate validity.
    SetPolicy(Policy),
}

/// A member key's signature over (network, version, prev, action) of a proposed governance record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    pub member: MemberId,
    pub key: PublicKeyBytes,
    pub signature: SignatureBytes,
}

/// Signs a proposed governance record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorse {
    pub version: u64,
    pub prev: Digest,
    pub action: GovAction,
    pub endorsement: Endorsement,
}

/// Objects to a proposed governance record, named by its record id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// The record id: SHA-256 over (network, version, prev, action), see `crypto::record_id`.
    pub record: Digest,
    pub reason: String,
}

/// The next governance record, carrying its endorsements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Govern {
    pub version: u64,
    pub prev: Digest,
    pub action: GovAction,
    pub endorsements: Vec<Endorsement>,
}

/// A statement of every feed head at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub network: NetworkId,
    pub time_ms: u64,
    pub gov: u64,
    /// RFC 6962 root over the feed heads (author, seq, head id, feed root), sorted by author
    /// (see `checkpoint::feeds_root`).
    pub feeds_root: Digest,
    pub feeds: u64,
    /// RFC 6962 root over the covered parcels' leaves, sorted by parcel: each commits to the
    /// covered events naming the parcel (see `parcel_index`).
    pub parcels_root: Digest,
    pub parcels: u64,
}

/// A cosignature of a checkpoint by another witness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosignature {
    pub member: MemberId,
    pub key: PublicKeyBytes,
    pub signature: SignatureBytes,
}

/// A checkpoint cosigned by the author (the event's own signature) and any further witnesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    pub checkpoint: Checkpoint,
    pub cosignatures: Vec<Cosignature>,
}

/// Every kind of event body. The variant order is the encoding's tag order and must never change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Body {
    Register(Register),
    Transform(Transform),
    Dispatch(Dispatch),
    Receive(Receive),
    Reject(Reject),
    Certify(Certify),
    ConfirmImport(ConfirmImport),
    Retire(Retire),
    Flag(Flag),
    Endorse(Endorse),
    Object(Object),
    Govern(Govern),
    Witness(Witness),
    // Kinds added later go at the end, so the encodings of the kinds above do not change.
    Declare(Declare),
    KpCertificate(KpCertificate),
}

/// The kind of a body, for counters and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Register,
    Transform,
    Dispatch,
    Receive,
    Reject,
    Certify,
    ConfirmImport,
    Retire,
    Flag,
    Endorse,
    Object,
    Govern,
    Witness,
    Declare,
}

impl Kind {
    /// The kebab-case name used in JSON and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Transform => "transform",
            Kind::Dispatch => "dispatch",
            Kind::Receive => "receive",
            Kind::Reject => "reject",
            Kind::Certify => "certify",
            Kind::ConfirmImport => "confirm-import",
            Kind::Retire => "retire",
            Kind::Flag => "flag",
            Kind::Endorse => "endorse",
            Kind::Object => "object",
            Kind::Govern => "govern",
            Kind::Witness => "witness",
            Kind::Declare => "declare",
        }
    }
}

/// Why an event's fields have an impossible shape (an admission failure: such an event is never stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("{0} must be a slug: 1 to {MAX_SLUG_LEN} characters of a-z, 0-9 and '-', not starting with '-' (ids are lower case)")]
    Slug(&'static str),
    #[error("{0} must be a country code: two upper-case letters (ISO 3166-1 alpha-2)")]
    Country(&'static str),
    #[error("{0} is not a valid date")]
    Date(&'static str),
    #[error("{0} is longer than the text limit of {MAX_TEXT_LEN} bytes")]
    Text(&'static str),
    #[error("{field} has {len} items, more than {max}")]
    TooMany {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A carat amount (hundredths of a carat) outside `min..=max` (`min` is 0 for a receipt's weight).
    #[error("{field} is {value} hundredths of a carat; it must be between {min} and {max}")]
    Carats {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    /// A value (US cents) above [`MAX_VALUE_CENTS`].
    #[error("{field} is {value} US cents; it must be at most {max}")]
    ValueCents {
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("the same parcel appears twice in {0}")]
    DuplicateParcel(&'static str),
    #[error("seq must start at 1, and prev must be zero exactly for seq 1")]
    FirstLink,
}

fn text(s: &str, field: &'static str) -> Result<(), ShapeError> {
    check_text(s).map_err(|_| ShapeError::Text(field))
}

fn slug_ok(ok: bool, field: &'static str) -> Result<(), ShapeError> {
    if ok {
        Ok(())
    } else {
        Err(ShapeError::Slug(field))
    }
}

fn count(len: usize, max: usize, field: &'static str) -> Result<(), ShapeError> {
    if len == 0 {
        return Err(ShapeError::Empty(field));
    }
    if len > max {
        return Err(ShapeError::TooMany { field, len, max });
    }
    Ok(())
}

/// Checks a carat amount against `min..=MAX_CARATS`.
fn carats_from(min: u64, value: u64, field: &'static str) -> Result<(), ShapeError> {
    if value < min || value > MAX_CARATS {
        return Err(ShapeError::Carats {
            field,
            value,
            min,
            max: MAX_CARATS,
        });
    }
    Ok(())
}

/// Checks the weight of a parcel: at least a hundredth of a carat, at most [`MAX_CARATS`].
fn carats(value: u64, field: &'static str) -> Result<(), ShapeError> {
    carats_from(1, value, field)
}

/// Checks a value, if one is declared, against [`MAX_VALUE_CENTS`].
fn value_cents(value: Option<u64>, field: &'static str) -> Result<(), ShapeError> {
    match value {
        Some(value) if value > MAX_VALUE_CENTS => Err(ShapeError::ValueCents {
            field,
            value,
            max: MAX_VALUE_CENTS,
        }),
        _ => Ok(()),
    }
}

fn date(d: Date, field: &'static str) -> Result<(), ShapeError> {
    if d.is_valid() {
        Ok(())
    } else {
        Err(ShapeError::Date(field))
    }
}

fn member_shape(m: &Member) -> Result<(), ShapeError> {
    slug_ok(m.id.is_valid(), "member.id")?;
    text(&m.name, "member.name")?;
    if !m.country.is_valid() {
        return Err(ShapeError::Country("member.country"));
    }
    count(m.roles.len(), MAX_MEMBER_ITEMS, "member.roles")?;
    count(m.keys.len(), MAX_MEMBER_ITEMS, "member.keys")?;
    sites_shape(&m.sites)
}

impl Header {
    /// Checks the header fields that need no other event.
    pub fn check_shape(&self) -> Result<(), ShapeError> {
        slug_ok(self.author.is_valid(), "author")?;
        if self.seq == 0 || ((self.seq == 1) != (self.prev == Digest::default())) {
            return Err(ShapeError::FirstLink);
        }
        Ok(())
    }
}

impl Body {
    /// The kind of this body.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Register(_) => Kind::Register,
            Body::Transform(_) => Kind::Transform,
            Body::Dispatch(_) => Kind::Dispatch,
            Body::Receive(_) => Kind::Receive,
            Body::Reject(_) => Kind::Reject,
            Body::Certify(_) => Kind::Certify,
            Body::ConfirmImport(_) => Kind::ConfirmImport,
            Body::Retire(_) => Kind::Retire,
            Body::Flag(_) => Kind::Flag,
            Body::Endorse(_) => Kind::Endorse,
            Body::Object(_) => Kind::Object,
            Body::Govern(_) => Kind::Govern,
            Body::Witness(_) => Kind::Witness,
            Body::Declare(_) => Kind::Declare,
            // A certificate whatever its version: judged and reported as one kind.
            Body::KpCertificate(_) => Kind::Certify,
        }
    }

    /// The certificate this body issues, of either version.
    pub fn certificate(&self) -> Option<&Certify> {
        match self {
            Body::Certify(c) => Some(c),
            Body::KpCertificate(k) => Some(&k.certify),
            _ => None,
        }
    }

    /// The parcels and heads this body cites, in body order.
    pub fn parcel_refs(&self) -> Vec<ParcelRef> {
        match self {
            Body::Certify(c) => c.parcels.clone(),
            Body::KpCertificate(k) => k.certify.parcels.clone(),
            Body::Transform(t) => t.inputs.clone(),
            Body::Dispatch(Dispatch { parcel, .. })
            | Body::Receive(Receive { parcel, .. })
            | Body::Reject(Reject { parcel, .. })
            | Body::Retire(Retire { parcel, .. }) => vec![*parcel],
            _ => Vec::new(),
        }
    }

    /// Events that must be known before this body's verdict can be computed (beyond the feed's `prev`).
    pub fn dependencies(&self) -> Vec<EventId> {
        let mut deps: Vec<EventId> = self.parcel_refs().iter().map(|r| r.head).collect();
        match self {
            Body::Dispatch(Dispatch {
                certificate: Some(c),
                ..
            }) => deps.push(*c),
            Body::ConfirmImport(c) => deps.push(c.certificate),
            _ => {}
        }
        deps.sort();
        deps.dedup();
        deps
    }

    /// Checks the field shapes that need no other event: lengths, slugs, dates, amounts.
    pub fn check_shape(&self) -> Result<(), ShapeError> {
        match self {
            Body::Register(r) => {
                slug_ok(r.site.is_valid(), "site")?;
                carats(r.carats, "carats")?;
                value_cents(r.value_cents, "value_cents")?;
                text(&r.seal, "seal")?;
                date(r.extracted_on, "extracted_on")
            }
            Body::Transform(t) => transform_shape(t),
            Body::Dispatch(d) => {
                slug_ok(d.to.is_valid(), "to")?;
                text(&d.seal, "seal")
            }
            Body::Receive(r) => {
                carats_from(0, r.measured_carats, "measured_carats")?;
                text(&r.note, "note")
            }
            Body::Reject(r) => text(&r.reason, "reason"),
            Body::Certify(c) => certify_shape(c),
            Body::ConfirmImport(c) => text(&c.note, "note"),
            Body::Retire(r) => text(&r.note, "note"),
            Body::Flag(f) => flag_shape(f),
            Body::Endorse(e) => {
                gov_action_shape(&e.action)?;
                slug_ok(e.endorsement.member.is_valid(), "endorsement.member")
            }
            Body::Object(o) => text(&o.reason, "reason"),
            Body::Govern(g) => {
                gov_action_shape(&g.action)?;
                if g.endorsements.len() > MAX_ENDORSEMENTS {
                    return Err(ShapeError::TooMany {
                        field: "endorsements",
                        len: g.endorsements.len(),
                        max: MAX_ENDORSEMENTS,
                    });
                }
                Ok(())
            }
            Body::KpCertificate(k) => certify_shape(&k.certify),
            Body::Declare(d) => declare_shape(d),
            Body::Witness(w) => {
                if w.cosignatures.len() > MAX_ENDORSEMENTS {
                    return Err(ShapeError::TooMany {
                        field: "cosignatures",
                        len: w.cosignatures.len(),
                        max: MAX_ENDORSEMENTS,
                    });
                }
                Ok(())
            }
        }
    }
}

fn transform_shape(t: &Transform) -> Result<(), ShapeError> {
    count(t.inputs.len(), MAX_TRANSFORM_PARCELS, "inputs")?;
    count(t.outputs.len(), MAX_TRANSFORM_PARCELS, "outputs")?;
    let mut seen: Vec<&ParcelId> = t.inputs.iter().map(|r| &r.parcel).collect();
    seen.sort();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(ShapeError::DuplicateParcel("inputs"));
    }
    for o in &t.outputs {
        carats(o.carats, "outputs.carats")?;
        value_cents(o.value_cents, "outputs.value_cents")?;
        text(&o.seal, "outputs.seal")?;
    }
    Ok(())
}

fn certify_shape(c: &Certify) -> Result<(), ShapeError> {
    text(&c.number, "number")?;
    if c.number.is_empty() {
        return Err(ShapeError::Empty("number"));
    }
    slug_ok(c.exporter.is_valid(), "exporter")?;
    slug_ok(c.importer.is_valid(), "importer")?;
    if !c.destination.is_valid() {
        return Err(ShapeError::Country("destination"));
    }
    count(c.parcels.len(), MAX_CERTIFICATE_PARCELS, "parcels")?;
    count(c.origins.len(), MAX_CERTIFICATE_ORIGINS, "origins")?;
    if c.origins.iter().any(|o| !o.is_valid()) {
        return Err(ShapeError::Country("origins"));
    }
    let mut seen: Vec<&ParcelId> = c.parcels.iter().map(|r| &r.parcel).collect();
    seen.sort();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(ShapeError::DuplicateParcel("parcels"));
    }
    carats(c.total_carats, "total_carats")?;
    value_cents(Some(c.value_cents), "value_cents")?;
    date(c.issued_on, "issued_on")?;
    date(c.expires_on, "expires_on")
}

fn declare_shape(d: &Declare) -> Result<(), ShapeError> {
    match &d.scope {
        DeclareScope::Country(c) if !c.is_valid() => return Err(ShapeError::Country("scope")),
        DeclareScope::Country(_) => {}
        DeclareScope::Site { member, site } => {
            slug_ok(member.is_valid(), "scope.member")?;
            slug_ok(site.is_valid(), "scope.site")?;
        }
    }
    date(d.from, "from")?;
    date(d.to, "to")?;
    if d.to < d.from {
        return Err(ShapeError::Date("to (before from)"));
    }
    carats_from(0, d.carats, "carats")?;
    carats_from(0, d.stock_carats, "stock_carats")?;
    value_cents(d.value_cents, "value_cents")
}

fn flag_shape(f: &Flag) -> Result<(), ShapeError> {
    match &f.target {
        FlagTarget::Site { member, site } => {
            slug_ok(member.is_valid(), "target.member")?;
            slug_ok(site.is_valid(), "target.site")?;
        }
        FlagTarget::Member(m) => slug_ok(m.is_valid(), "target.member")?,
        FlagTarget::Parcel(_) | FlagTarget::Event(_) => {}
    }
    text(&f.text, "text")
}

fn sites_shape(sites: &[Site]) -> Result<(), ShapeError> {
    if sites.len() > MAX_MEMBER_ITEMS {
        return Err(ShapeError::TooMany {
            field: "sites",
            len: sites.len(),
            max: MAX_MEMBER_ITEMS,
        });
    }
    for s in sites {
        slug_ok(s.id.is_valid(), "site.id")?;
        text(&s.name, "site.name")?;
        text(&s.region, "site.region")?;
        if !s.country.is_valid() {
            return Err(ShapeError::Country("site.country"));
        }
    }
    Ok(())
}

fn embargo_target_shape(t: &EmbargoTarget) -> Result<(), ShapeError> {
    match t {
        EmbargoTarget::Country(c) if !c.is_valid() => Err(ShapeError::Country("target")),
        EmbargoTarget::Country(_) => Ok(()),
        EmbargoTarget::Site { member, site } => {
            slug_ok(member.is_valid(), "target.member")?;
            slug_ok(site.is_valid(), "target.site")
        }
        EmbargoTarget::Member(m) => slug_ok(m.is_valid(), "target.member"),
    }
}

fn gov_action_shape(a: &GovAction) -> Result<(), ShapeError> {
    match a {
        GovAction::Admit(m) => member_shape(m),
        GovAction::Update {
            member,
            name,
            roles,
            sites,
        } => {
            slug_ok(member.is_valid(), "member")?;
            text(name, "name")?;
            count(roles.len(), MAX_MEMBER_ITEMS, "roles")?;
            sites_shape(sites)
        }
        GovAction::Suspend { member, reason, .. } | GovAction::Reinstate { member, reason } => {
            slug_ok(member.is_valid(), "member")?;
            text(reason, "reason")
        }
        GovAction::AddKey { member, .. }
        | GovAction::RotateKey { member, .. }
        | GovAction::RevokeKey { member, .. } => slug_ok(member.is_valid(), "member"),
        GovAction::SetEmbargo {
            target,
            from,
            until,
            reason,
        } => {
            embargo_target_shape(target)?;
            date(*from, "from")?;
            if let Some(u) = until {
                date(*u, "until")?;
            }
            text(reason, "reason")
        }
        GovAction::LiftEmbargo { target, on, reason } => {
            embargo_target_shape(target)?;
            date(*on, "on")?;
            text(reason, "reason")
        }
        GovAction::SetPolicy(_) => Ok(()),
    }
}

/// The signed part of an event, in encoding order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub header: Header,
    pub body: Body,
}

/// The event as it travels: its encoding is the payload's encoding followed by the 64 signature bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEvent {
    pub header: Header,
    pub body: Body,
    pub signature: SignatureBytes,
}
