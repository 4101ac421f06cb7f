//! Turning an [`Action`] into an event body: each named parcel cited at its current head, a
//! certificate number resolved to its event, and a certificate's carats, value and origins
//! filled from its parcels when the action leaves them out.
//!
//! What it needs of the ledger is the [`Context`]: a node's own ledger, or the signing context
//! a node exports for `custody sign` on a machine without a node.

use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{
    Body, Certify, ConfirmImport, Declare, Dispatch, Flag, KpCertificate, NewParcel, ParcelRef,
    Receive, Register, Reject, Retire, ShapeError, Transform,
};
use ledger_core::ledger::Ledger;
use ledger_core::types::{Country, MemberId};
use serde::{Deserialize, Serialize};

use crate::actions::{Action, CertRef, CertifyAction};

/// A parcel as an action sees it: the head to cite, and (for certificates) what it weighs,
/// is worth and comes from at that head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelAt {
    pub parcel: ParcelId,
    pub head: EventId,
    /// Hundredths of a carat: the last weight measured on receipt, else the declared one.
    pub mass: u64,
    pub value_cents: Option<u64>,
    /// The countries its stones come from.
    pub countries: Vec<Country>,
}

/// An applied certificate as an action sees it, to resolve a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertAt {
    pub event: EventId,
    pub number: String,
    pub exporter: MemberId,
    pub importer: MemberId,
    pub destination: Country,
}

/// What building a body needs to know.
pub trait Context {
    /// A parcel at its current head.
    fn parcel(&self, id: &ParcelId) -> Option<ParcelAt>;
    /// The applied certificates under `number`.
    fn certificates_numbered(&self, number: &str) -> Vec<CertAt>;
}

impl Context for Ledger {
    fn parcel(&self, id: &ParcelId) -> Option<ParcelAt> {
        let p = Ledger::parcel(self, id)?;
        Some(ParcelAt {
            parcel: *id,
            head: *p.head(),
            mass: p.mass(),
            value_cents: p.value_cents,
            countries: p.origin.by_country().into_iter().map(|(c, _)| c).collect(),
        })
    }

    fn certificates_numbered(&self, number: &str) -> Vec<CertAt> {
        let mut out: Vec<CertAt> = self
            .certificates()
            .filter(|(_, c)| c.number == number)
            .map(|(id, c)| cert_at(*id, c))
            .collect();
        out.sort_by_key(|c| c.event);
        out
    }
}

/// A certificate as [`CertAt`].
pub fn cert_at(event: EventId, c: &Certify) -> CertAt {
    CertAt {
        event,
        number: c.number.clone(),
        exporter: c.exporter.clone(),
        importer: c.importer.clone(),
        destination: c.destination,
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
    /// A certificate number that names no applied certificate, or more than one.
    #[error("{0}")]
    Certificate(String),
    /// A value the action leaves to be filled from the parcels, which they cannot give.
    #[error("{0}")]
    Unfilled(String),
}

fn head(ctx: &impl Context, parcel: ParcelId) -> Result<ParcelRef, UnknownParcel> {
    ctx.parcel(&parcel)
        .map(|p| ParcelRef {
            parcel,
            head: p.head,
        })
        .ok_or(UnknownParcel(parcel))
}

fn heads(ctx: &impl Context, parcels: Vec<ParcelId>) -> Result<Vec<ParcelRef>, UnknownParcel> {
    parcels.into_iter().map(|p| head(ctx, p)).collect()
}

/// The certificate `r` names: an id as is; a number resolved among the applied certificates
/// under it, keeping those `fits` when there are several.
fn certificate(
    ctx: &impl Context,
    r: CertRef,
    fits: impl Fn(&CertAt) -> bool,
) -> Result<EventId, BodyError> {
    let number = match r {
        CertRef::Id(id) => return Ok(id),
        CertRef::Number(n) => n,
    };
    let all = ctx.certificates_numbered(&number);
    let fitting: Vec<&CertAt> = all.iter().filter(|c| fits(c)).collect();
    match (all.len(), fitting.as_slice()) {
        (0, _) => Err(BodyError::Certificate(format!(
            "no applied certificate is numbered {number:?}; check the number, or give the certificate's event id"
        ))),
        (1, _) => Ok(all[0].event),
        (_, [one]) => Ok(one.event),
        _ => Err(BodyError::Certificate(format!(
            "{} applied certificates are numbered {number:?} ({}); give the event id of the one you mean",
            all.len(),
            all.iter().map(|c| c.event.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A certificate, citing each parcel's current head; what it leaves out filled from them.
fn certify(ctx: &impl Context, c: CertifyAction) -> Result<KpCertificate, BodyError> {
    let parcels: Vec<ParcelAt> = c
        .parcels
        .iter()
        .map(|p| ctx.parcel(p).ok_or(UnknownParcel(*p)))
        .collect::<Result<_, _>>()?;
    let mass: u128 = parcels.iter().map(|p| u128::from(p.mass)).sum();
    let total_carats = match c.total_carats {
        Some(t) => t.0,
        None => u64::try_from(mass).map_err(|_| {
            BodyError::Unfilled("the parcels weigh more than one certificate may declare".into())
        })?,
    };
    let value_cents = match c.value_cents {
        Some(v) => v,
        None => parcels
            .iter()
            .map(|p| p.value_cents)
            .sum::<Option<u64>>()
            .ok_or_else(|| {
                BodyError::Unfilled("not every parcel declares a value: give --value-cents".into())
            })?,
    };
    let mut origins = c.origins;
    if origins.is_empty() {
        origins = parcels.iter().flat_map(|p| p.countries.clone()).collect();
        origins.sort_unstable();
        origins.dedup();
    }
    Ok(KpCertificate {
        certify: Certify {
            number: c.number,
            exporter: c.exporter,
            importer: c.importer,
            destination: c.destination,
            parcels: parcels
                .iter()
                .map(|p| ParcelRef {
                    parcel: p.parcel,
                    head: p.head,
                })
                .collect(),
            total_carats,
            value_cents,
            origins,
            issued_on: c.issued_on,
            expires_on: c.expires_on,
        },
        hs_code: c.hs_code,
    })
}

impl Action {
    /// The body this action becomes when `author` signs it, citing each parcel's current head;
    /// refused if a parcel or certificate is unknown or a field fails the event shape check
    /// (which admission would refuse anyway).
    pub fn body(self, ctx: &impl Context, author: &MemberId) -> Result<Body, BodyError> {
        let body = self.build(ctx, author)?;
        body.check_shape().map_err(InvalidField)?;
        Ok(body)
    }

    fn build(self, ctx: &impl Context, author: &MemberId) -> Result<Body, BodyError> {
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
                carats: carats.0,
                stones,
                value_cents,
                seal,
                extracted_on,
            }),
            Action::Transform { inputs, outputs } => Body::Transform(Transform {
                inputs: heads(ctx, inputs)?,
                outputs: outputs
                    .into_iter()
                    .map(|o| NewParcel {
                        carats: o.carats.0,
                        stones: o.stones,
                        value_cents: o.value_cents,
                        seal: o.seal,
                    })
                    .collect(),
            }),
            Action::Dispatch {
                parcel,
                to,
                certificate: cert,
                seal,
                deadline_ms,
            } => Body::Dispatch(Dispatch {
                parcel: head(ctx, parcel)?,
                certificate: cert
                    .map(|r| certificate(ctx, r, |c| &c.exporter == author && c.importer == to))
                    .transpose()?,
                to,
                seal,
                deadline_ms,
            }),
            Action::Receive {
                parcel,
                measured_carats,
                seal_intact,
                note,
            } => Body::Receive(Receive {
                parcel: head(ctx, parcel)?,
                measured_carats: measured_carats.0,
                seal_intact,
                note,
            }),
            Action::Reject { parcel, reason } => Body::Reject(Reject {
                parcel: head(ctx, parcel)?,
                reason,
            }),
            Action::Certify(c) => Body::KpCertificate(certify(ctx, c)?),
            Action::ConfirmImport {
                certificate: r,
                note,
            } => Body::ConfirmImport(ConfirmImport {
                certificate: certificate(ctx, r, |_| true)?,
                note,
            }),
            Action::Retire {
                parcel,
                cause,
                note,
            } => Body::Retire(Retire {
                parcel: head(ctx, parcel)?,
                cause,
                note,
            }),
            Action::Flag { target, code, text } => Body::Flag(Flag {
                target: target
                    .target()
                    .ok_or_else(|| BodyError::Unfilled("a flag needs exactly one target".into()))?,
                code,
                text,
            }),
            Action::Declare(d) => Body::Declare(Declare {
                scope: d.scope().ok_or_else(|| {
                    BodyError::Unfilled(
                        "a declaration covers either a --country or a --site".into(),
                    )
                })?,
                from: d.from,
                to: d.to,
                carats: d.carats.0,
                value_cents: d.value_cents,
                stock_carats: d.stock_carats.0,
            }),
        })
    }

    /// How many parcels the body creates if it applies (their ids follow from the event id).
    pub fn creates(&self) -> usize {
        match self {
            Action::Register { .. } => 1,
            Action::Transform { outputs, .. } => outputs.len(),
            _ => 0,
        }
    }
}
