//! The vocabulary of the rules: verdicts, void reasons and the states a parcel can be in.

use serde::{Deserialize, Serialize};

use crate::bytes::EventId;
use crate::event::RetireCause;
use crate::types::MemberId;

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
    /// Signed with a key that governance revoked or rotated away before this seq.
    RevokedKey,
    /// The author is suspended from before this seq.
    Suspended,
    /// A certificate covering, or a cross-border dispatch of, a parcel with an origin under an
    /// embargo in force.
    Embargoed,
    /// A governance record that is not for the version right after the one its event cites.
    GovWrongVersion,
    /// A governance record that extends a version other than the one in force at its number.
    GovSuperseded,
    /// A governance action that cannot apply to the version it extends.
    GovInvalidAction,
    /// A governance record whose endorsements do not meet the quorum of the version it extends.
    NoQuorum,
    /// One of two or more records for one version that each met the quorum.
    GovForked,
    /// A certificate whose declared carats differ from its parcels' mass beyond the tolerance.
    CertificateCarats,
    /// A certificate whose declared origin countries are not its parcels' origin countries.
    CertificateOrigin,
    /// A certificate under a number its author's country already used.
    CertificateNumberReused,
}

impl VoidReason {
    /// Every reason, for reports.
    pub const ALL: [VoidReason; 25] = [
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
        VoidReason::RevokedKey,
        VoidReason::Suspended,
        VoidReason::Embargoed,
        VoidReason::GovWrongVersion,
        VoidReason::GovSuperseded,
        VoidReason::GovInvalidAction,
        VoidReason::NoQuorum,
        VoidReason::GovForked,
        VoidReason::CertificateCarats,
        VoidReason::CertificateOrigin,
        VoidReason::CertificateNumberReused,
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
            VoidReason::RevokedKey => "revoked-key",
            VoidReason::Suspended => "suspended",
            VoidReason::Embargoed => "embargoed",
            VoidReason::GovWrongVersion => "gov-wrong-version",
            VoidReason::GovSuperseded => "gov-superseded",
            VoidReason::GovInvalidAction => "gov-invalid-action",
            VoidReason::NoQuorum => "no-quorum",
            VoidReason::GovForked => "gov-forked",
            VoidReason::CertificateCarats => "certificate-carats",
            VoidReason::CertificateOrigin => "certificate-origin",
            VoidReason::CertificateNumberReused => "certificate-number-reused",
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
            VoidReason::RevokedKey => {
                "signed with a key that governance revoked or rotated away before this seq"
            }
            VoidReason::Suspended => "the author was suspended before this seq",
            VoidReason::Embargoed => {
                "a parcel it covers or ships has an origin under an embargo in force"
            }
            VoidReason::GovWrongVersion => {
                "a governance record must be for the version after the one its event acts under"
            }
            VoidReason::GovSuperseded => {
                "the record extends a governance version that is not the one in force"
            }
            VoidReason::GovInvalidAction => {
                "the governance action cannot apply to the version it extends"
            }
            VoidReason::NoQuorum => {
                "the endorsements do not meet the quorum of every chamber at the version it extends"
            }
            VoidReason::GovForked => {
                "another record for the same version also met the quorum: neither is in force"
            }
            VoidReason::CertificateCarats => {
                "the certificate's declared carats are not what its parcels weigh (as last weighed)"
            }
            VoidReason::CertificateOrigin => {
                "the certificate's origin countries are not its parcels' origin countries (a mixed shipment lists every one)"
            }
            VoidReason::CertificateNumberReused => {
                "the issuing authority already used this certificate number"
            }
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
