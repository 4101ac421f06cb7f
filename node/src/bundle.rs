//! Serving proof bundles: `GET /v1/parcels/{id}/bundle`, one parcel's audit as of the newest
//! checkpoint this node keeps, with the `Witness` events that cosign it.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use ledger_core::admission::decode_event;
use ledger_core::bundle::{build, BuildError};
use ledger_core::bundle_select::SelectError;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{Body, Checkpoint};
use ledger_core::store::Store;
use ledger_core::witness::has_witness_duty;

use crate::api::{ApiError, ApiResult, AppState};
use crate::service::ServiceError;

/// How far back in each witness's feed the `Witness` events of a checkpoint are looked for
/// (a witness signs one right after it keeps the checkpoint).
pub const WITNESS_LOOKBACK: u64 = 64;

/// `GET /v1/parcels/{id}/bundle`: the parcel's proof bundle (docs/bundle.md), as bytes.
pub async fn bundle(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id: ParcelId = id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("parcel id {id:?}: {e}")))?;
    let bytes = s
        .service
        .read(move |store| bundle_bytes(store, &id))
        .await??;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

fn bundle_bytes(store: &Store, id: &ParcelId) -> ApiResult<Vec<u8>> {
    let (cp, heads) = store
        .latest_checkpoint()
        .map_err(ServiceError::from)?
        .ok_or_else(|| {
            ApiError::not_found(
                "this node keeps no checkpoint: ask a witness node (one whose member has the witness duty)",
            )
        })?;
    let witnesses = witness_events(store, &cp);
    let read = |e: &EventId| store.event_bytes(e).ok().flatten();
    let bundle = build(store.ledger(), &cp, &heads, witnesses, id, read).map_err(|e| match e {
        BuildError::Select(SelectError::UnknownParcel(_)) => ApiError::not_found(e.to_string()),
        BuildError::Select(SelectError::NotCovered(_)) => {
            ApiError::new(StatusCode::CONFLICT, "not-covered", e.to_string())
        }
        BuildError::Select(SelectError::TooLarge) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too-large", e.to_string())
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fault",
            other.to_string(),
        ),
    })?;
    Ok(bundle.encode())
}

/// The `Witness` events near the head of every witness's feed whose checkpoint is `cp`.
fn witness_events(store: &Store, cp: &Checkpoint) -> Vec<Vec<u8>> {
    let ledger = store.ledger();
    let gov = ledger.governance().latest_state();
    let mut out = Vec::new();
    for member in gov.members.keys().filter(|m| has_witness_duty(gov, m)) {
        let Some(feed) = ledger.feed(member) else {
            continue;
        };
        let len = feed.ids.len() as u64;
        for seq in (len.saturating_sub(WITNESS_LOOKBACK) + 1..=len).rev() {
            let Some(bytes) = feed
                .slot(seq)
                .and_then(|e| store.event_bytes(e).ok().flatten())
            else {
                continue;
            };
            let cosigns = decode_event(&bytes, ledger.network())
                .is_ok_and(|d| matches!(d.body(), Body::Witness(w) if &w.checkpoint == cp));
            if cosigns {
                out.push(bytes);
                break;
            }
        }
    }
    out
}
