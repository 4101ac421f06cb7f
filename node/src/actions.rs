//! Actions as the HTTP API takes them (JSON), turned into event bodies against the current ledger state.

use serde::{Deserialize, Serialize};

use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{
    Body, Certify, ConfirmImport, Dispatch, Flag, FlagCode, FlagTarget, NewParcel, ParcelRef,
    Receive, Register, Reject, Retire, RetireCause, ShapeError, Transform,
};
use ledger_core::ledger::Ledger;
use ledger_core::types::{Country, Date, MemberId, SiteId};

use crate::service::ActError;

/// An action a member asks its node to sign. Parcels are named by id; the node cites each
/// parcel's current head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    Register {
        site: SiteId,
        carats: u64,
        #[serde(default)]
        stones: u32,
        #[serde(default)]
        value_cents: Option<u64>,
        #[serde(default)]
        seal: String,
        extracted_on: Date,
    },
    Transform {
        inputs: Vec<ParcelId>,
        outputs: Vec<Output>,
    },
    Dispatch {
        parcel: ParcelId,
        to: MemberId,
        #[serde(default)]
        certificate: Option<EventId>,
        #[serde(default)]
        seal: String,
        #[serde(default)]
        deadline_ms: Option<u64>,
    },
    Receive {
        parcel: ParcelId,
        measured_carats: u64,
        #[serde(default = "yes")]
        seal_intact: bool,
        #[serde(default)]
        note: String,
    },
    Reject {
        parcel: ParcelId,
        #[serde(default)]
        reason: String,
    },
    /// The fields of a certificate, as in the event; the node cites each parcel's current head.
    Certify(CertifyAction),
    ConfirmImport {
        certificate: EventId,
        #[serde(default)]
        note: String,
    },
    Retire {
        parcel: ParcelId,
        cause: RetireCause,
        #[serde(default)]
        note: String,
    },
    Flag {
        target: FlagTarget,
        code: FlagCode,
        #[serde(default)]
        text: String,
    },
}

fn yes() -> bool {
    true
}

/// A certificate as the API takes it: parcels by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyAction {
    pub number: String,
    pub exporter: MemberId,
    pub importer: MemberId,
    pub destination: Country,
    pub parcels: Vec<ParcelId>,
    /// Hundredths of a carat.
    pub total_carats: u64,
    /// US cents.
    pub value_cents: u64,
    pub origins: Vec<Country>,
    pub issued_on: Date,
    pub expires_on: Date,
}

/// One output of a transform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub carats: u64,
    #[serde(default)]
    pub stones: u32,
    #[serde(default)]
    pub value_cents: Option<u64>,
    #[serde(default)]
    pub seal: String,
}

impl CertifyAction {
    /// The certificate, citing each parcel's current head.
    fn certificate(self, ledger: &Ledger) -> Result<Certify, UnknownParcel> {
        Ok(Certify {
            number: self.number,
            exporter: self.exporter,
            importer: self.importer,
            destination: self.destination,
            parcels: self
                .parcels
                .into_iter()
                .map(|p| head(ledger, p))
                .collect::<Result<_, _>>()?,
            total_carats: self.total_carats,
            value_cents: self.value_cents,
            origins: self.origins,
            issued_on: self.issued_on,
            expires_on: self.expires_on,
        })
    }
}

/// An action names a parcel the ledger does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown parcel {0}")]
pub struct UnknownParcel(pub ParcelId);

/// An action field an event cannot hold (out of its bounds, too long, not a slug, ...): the
/// event shape check's refusal of the body built from the action, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the action has an invalid field: {0}")]
pub struct InvalidField(pub ShapeError);

/// Why an action cannot become an event body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    UnknownParcel(#[from] UnknownParcel),
    #[error(transparent)]
    InvalidField(#[from] InvalidField),
}

impl From<BodyError> for ActError {
    fn from(e: BodyError) -> ActError {
        match e {
            BodyError::UnknownParcel(e) => ActError::UnknownParcel(e),
            BodyError::InvalidField(e) => ActError::InvalidField(e),
        }
    }
}

fn head(ledger: &Ledger, parcel: ParcelId) -> Result<ParcelRef, UnknownParcel> {
    ledger
        .parcel(&parcel)
        .map(|p| ParcelRef {
            parcel,
            head: *p.head(),
        })
        .ok_or(UnknownParcel(parcel))
}

impl Action {
    /// The body this action becomes, citing each parcel's current head; refused if a parcel is
    /// unknown or a field fails the event shape check (which admission would refuse anyway).
    pub fn body(self, ledger: &Ledger) -> Result<Body, BodyError> {
        let body = self.build(ledger)?;
        body.check_shape().map_err(InvalidField)?;
        Ok(body)
    }

    fn build(self, ledger: &Ledger) -> Result<Body, UnknownParcel> {
        Ok(match self {
            Action::Register {
                site,
                carats,
                stones,
                value_cents,
                seal,
                extracted_on,
            } => Body::Register(Register {
                site,
                carats,
                stones,
                value_cents,
                seal,
                extracted_on,
            }),
            Action::Transform { inputs, outputs } => Body::Transform(Transform {
                inputs: inputs
                    .into_iter()
                    .map(|p| head(ledger, p))
                    .collect::<Result<_, _>>()?,
                outputs: outputs
                    .into_iter()
                    .map(|o| NewParcel {
                        carats: o.carats,
                        stones: o.stones,
                        value_cents: o.value_cents,
                        seal: o.seal,
                    })
                    .collect(),
            }),
            Action::Dispatch {
                parcel,
                to,
                certificate,
                seal,
                deadline_ms,
            } => Body::Dispatch(Dispatch {
                parcel: head(ledger, parcel)?,
                to,
                certificate,
                seal,
                deadline_ms,
            }),
            Action::Receive {
                parcel,
                measured_carats,
                seal_intact,
                note,
            } => Body::Receive(Receive {
                parcel: head(ledger, parcel)?,
                measured_carats,
                seal_intact,
                note,
            }),
            Action::Reject { parcel, reason } => Body::Reject(Reject {
                parcel: head(ledger, parcel)?,
                reason,
            }),
            Action::Certify(c) => Body::Certify(c.certificate(ledger)?),
            Action::ConfirmImport { certificate, note } => {
                Body::ConfirmImport(ConfirmImport { certificate, note })
            }
            Action::Retire {
                parcel,
                cause,
                note,
            } => Body::Retire(Retire {
                parcel: head(ledger, parcel)?,
                cause,
                note,
            }),
            Action::Flag { target, code, text } => Body::Flag(Flag { target, code, text }),
        })
    }
}
