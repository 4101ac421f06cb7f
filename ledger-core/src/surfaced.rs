//! Late registration by checkpoint: a registration whose claimed time is older, by more than the
//! policy tolerates, than a cosigned checkpoint that stated its author's feed short of it. The
//! stone surfaced after the witnesses' view of that time: backdated, however its dates read.
//!
//! The evidence is an earlier checkpoint's `Witness` events and its head proof for the author,
//! which the node that kept that checkpoint's heads can give; the log alone does not keep them,
//! so a full replay does not see this finding (docs/bundle.md).

use serde::{Deserialize, Serialize};

use crate::bundle::{cosigners, BundleError};
use crate::bytes::EventId;
use crate::checkpoint::{verify_head, HeadProof};
use crate::crypto::KeyCache;
use crate::event::{Body, Kind};
use crate::findings::{Finding, FindingCode};
use crate::ledger::{Ledger, ProvenSlots};
use crate::types::Date;

/// Evidence that one registration surfaced late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Surfaced {
    /// The registration (a proven event of the bundle).
    pub registration: EventId,
    /// `Witness` events cosigning the earlier checkpoint (they carry it).
    pub witnesses: Vec<Vec<u8>>,
    /// The author's head in that checkpoint: below the registration's seq.
    pub head: HeadProof,
}

/// The findings `evidence` proves, each checked: cosigned by `need` witnesses, the head proven
/// in the checkpoint, short of the registration, and the checkpoint later than the registration's
/// claimed time by more than the policy's `late_registration_ms`.
pub(crate) fn surfaced_late(
    ledger: &Ledger,
    evidence: &[Surfaced],
    slots: &ProvenSlots,
    need: usize,
    keys: &KeyCache,
) -> Result<Vec<Finding>, BundleError> {
    let tolerance = ledger
        .governance()
        .latest_state()
        .policy
        .late_registration_ms;
    let mut out = Vec::new();
    for (index, s) in evidence.iter().enumerate() {
        let bad = |detail: String| BundleError::BadSurfaced { index, detail };
        let meta = ledger
            .event(&s.registration)
            .filter(|m| slots.proven.contains(&s.registration) && m.kind == Kind::Register)
            .ok_or_else(|| {
                bad("the registration is not a proven registration of the bundle".into())
            })?;
        let cp =
            match s.witnesses.first().map(|b| {
                crate::admission::decode_event(b, ledger.network()).map(|d| d.body().clone())
            }) {
                Some(Ok(Body::Witness(w))) => w.checkpoint,
                _ => return Err(bad("no witness event carries the checkpoint".into())),
            };
        let got = cosigners(ledger, &cp, &s.witnesses, keys)
            .map_err(|(i, d)| bad(format!("witness event {i}: {d}")))?;
        if got.len() < need {
            return Err(bad(format!("{} cosignatures, {need} required", got.len())));
        }
        verify_head(ledger.network(), &cp, &s.head).map_err(|e| bad(e.to_string()))?;
        let short = s.head.head.author == meta.author && s.head.head.seq < meta.seq;
        let late = cp.time_ms.saturating_sub(meta.time_ms);
        if !short || late <= tolerance {
            return Err(bad(
                "the checkpoint does not leave the registration out long after its claimed time"
                    .into(),
            ));
        }
        let parcel = crate::rules::parcel_id(&s.registration, 0);
        out.push(Finding {
            code: FindingCode::LateRegistration,
            detail: format!(
                "parcel {parcel} claims registration on {}, but a checkpoint cosigned for {} stated {}'s feed without it: it surfaced at least {} days after its claimed date (tolerance {} days)",
                Date::from_unix_ms(meta.time_ms),
                Date::from_unix_ms(cp.time_ms),
                meta.author,
                late / 86_400_000,
                tolerance / 86_400_000
            ),
            event: Some(s.registration),
            parcels: vec![parcel],
            members: Vec::new(),
            sites: Vec::new(),
            embargo: None,
        });
    }
    Ok(out)
}
