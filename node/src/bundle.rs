//! Serving proof bundles: `GET /v1/parcels/{id}/bundle`, one parcel's audit as of the newest
//! checkpoint this node keeps, with the `Witness` events that cosign it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use ledger_core::audit::audit_parcel;
use ledger_core::bundle::{build, BuildError};
use ledger_core::bundle_select::SelectError;
use ledger_core::bytes::{Digest, EventId, ParcelId};
use ledger_core::checkpoint::{checkpoint_id, head_proof, FeedHead};
use ledger_core::event::Checkpoint;
use ledger_core::parcel_index::ParcelIndex;
use ledger_core::store::Store;
use ledger_core::surfaced::Surfaced;
use ledger_core::types::MemberId;
use serde::Deserialize;

use crate::api::{ApiError, ApiResult, AppState};
use crate::service::ServiceError;
use crate::witness::{recent_witness_events, witness_events_of};

/// Query of a bundle: how many witnesses must have cosigned its checkpoint.
#[derive(Debug, Deserialize)]
pub struct BundleQuery {
    witnesses: Option<usize>,
}

/// `GET /v1/parcels/{id}/bundle[?witnesses=K]`: the parcel's proof bundle (docs/bundle.md), as
/// bytes, as of the newest kept checkpoint that K witnesses cosigned (by default the policy's
/// `witnesses_required`).
pub async fn bundle(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<BundleQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    let id: ParcelId = id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("parcel id {id:?}: {e}")))?;
    let cache = s.bundle_index.clone();
    let bytes = s
        .service
        .read(move |store| bundle_bytes(store, &cache, &id, q.witnesses))
        .await??;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// The parcel index of the checkpoint bundles were last served of, when the store does not
/// remember it (a checkpoint older than the newest kept, or kept before a restart): built once
/// per checkpoint, since it covers every parcel.
#[derive(Debug, Clone, Default)]
pub struct IndexCache(Arc<Mutex<Option<CachedIndex>>>);

/// A checkpoint's id and its parcel index.
type CachedIndex = (Digest, Arc<ParcelIndex>);

impl IndexCache {
    /// The index of checkpoint `id` with `heads`, built from `store` unless cached.
    fn get(&self, store: &Store, id: Digest, heads: &[FeedHead]) -> Arc<ParcelIndex> {
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((at, index)) if *at == id => index.clone(),
            _ => {
                let index = Arc::new(ParcelIndex::build(store.ledger(), heads));
                *cached = Some((id, index.clone()));
                index
            }
        }
    }
}

fn bundle_bytes(
    store: &Store,
    cache: &IndexCache,
    id: &ParcelId,
    witnesses: Option<usize>,
) -> ApiResult<Vec<u8>> {
    let policy = &store.ledger().governance().latest_state().policy;
    let need = witnesses.unwrap_or(policy.witnesses_required as usize);
    let (cp, heads, witnesses) = cosigned(store, need)?;
    let cp_id = checkpoint_id(&cp);
    let index = store
        .parcel_index(&cp_id)
        .unwrap_or_else(|| cache.get(store, cp_id, &heads));
    let read = |e: &EventId| store.event_bytes(e).ok().flatten();
    let bundle =
        build(store.ledger(), &cp, &heads, &index, witnesses, id, read).map_err(|e| match e {
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
    let mut bundle = bundle;
    bundle.surfaced = surfaced(store, id, need);
    Ok(bundle.encode())
}

/// Most kept checkpoints searched for one that states a registering mine's feed.
pub const MAX_LATE_SEARCH: usize = 64;

/// Evidence that registrations of the parcel's ancestry surfaced late: the oldest kept
/// checkpoint later than a registration's claimed time plus the policy's tolerance that states
/// the mine's feed, cosigned by `need` witnesses, when it stated the feed short of the
/// registration.
fn surfaced(store: &Store, parcel: &ParcelId, need: usize) -> Vec<Surfaced> {
    let ledger = store.ledger();
    let tolerance = ledger
        .governance()
        .latest_state()
        .policy
        .late_registration_ms;
    let Some(audit) = audit_parcel(ledger, parcel) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in audit.ancestry.iter().filter(|a| a.parents.is_empty()) {
        let Some(meta) = ledger.event(&a.created_by) else {
            continue;
        };
        // The first checkpoint late enough that states the mine's feed: short of the
        // registration, it is evidence; holding it, none later is.
        let after = meta.time_ms.saturating_add(tolerance);
        let kept = store
            .checkpoints_after(after, MAX_LATE_SEARCH)
            .unwrap_or_default();
        let Some((cp, head)) = kept
            .into_iter()
            .find_map(|(cp, heads)| head_proof(&heads, &meta.author).ok().map(|h| (cp, h)))
        else {
            continue;
        };
        if head.head.seq >= meta.seq {
            continue;
        }
        let witnesses = witness_events_of(store, &cp);
        if witnesses.len() >= need && !witnesses.is_empty() {
            out.push(Surfaced {
                registration: a.created_by,
                witnesses,
                head,
            });
        }
    }
    out
}

/// A checkpoint, the `Witness` events cosigning it, and their authors.
type Cosigners = (Checkpoint, Vec<Vec<u8>>, BTreeSet<MemberId>);

/// The newest checkpoint this node keeps that `need` witnesses cosigned, with its heads and the
/// `Witness` events cosigning it.
fn cosigned(store: &Store, need: usize) -> ApiResult<(Checkpoint, Vec<FeedHead>, Vec<Vec<u8>>)> {
    let mut by_checkpoint: BTreeMap<(u64, Digest), Cosigners> = BTreeMap::new();
    for (author, bytes, cp) in recent_witness_events(store) {
        let entry = by_checkpoint
            .entry((cp.time_ms, checkpoint_id(&cp)))
            .or_insert_with(|| (cp, Vec::new(), BTreeSet::new()));
        if entry.2.insert(author) {
            entry.1.push(bytes);
        }
    }
    let mut kept_any = false;
    for ((_, id), (cp, events, authors)) in by_checkpoint.into_iter().rev() {
        let Some((_, heads)) = store.checkpoint(&id).map_err(ServiceError::from)? else {
            continue;
        };
        kept_any = true;
        if authors.len() >= need {
            return Ok((cp, heads, events));
        }
    }
    Err(if kept_any {
        ApiError::new(
            StatusCode::CONFLICT,
            "too-few-cosignatures",
            format!("no checkpoint kept here is cosigned by {need} witnesses yet: ask again later, or for fewer (?witnesses=K)"),
        )
    } else {
        ApiError::not_found(
            "this node keeps no cosigned checkpoint yet: witness nodes cosign one every checkpoint interval, and every node keeps those its replica makes too",
        )
    })
}
