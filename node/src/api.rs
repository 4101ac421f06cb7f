//! The HTTP/JSON API: status, actions, governance, events, parcels, feeds and their proofs, export and metrics. Errors are `{code, message}`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::warn;

use ledger_core::admission::{decode_event, AdmissionError};
use ledger_core::audit::audit_parcel;
use ledger_core::bytes::{to_hex, EventId, ParcelId};
use ledger_core::codec::MAX_EVENT_BYTES;
use ledger_core::event::GovAction;
use ledger_core::export::write_record;
use ledger_core::feed_tree::FeedProofError;
use ledger_core::ledger::{Ledger, Missing};
use ledger_core::origin::percent;
use ledger_core::rules::Verdict;
use ledger_core::store::{Outcome, Refusal, Status, Store};
use ledger_core::types::MemberId;

use crate::actions::Action;
use crate::gov::{chain_json, find_json, GovError, GovRequest, MAX_GOV_PAGE};
use crate::metrics::Metrics;
use crate::net::NetHandle;
use crate::service::{read, ActError, Acted, Service, ServiceError, SharedStore};
use ledger_core::checkpoint::{checkpoint_id, FeedHead};
use ledger_core::event::Checkpoint;

/// Largest request body accepted.
pub const MAX_HTTP_BODY: usize = MAX_EVENT_BYTES + 4096;
/// Most events one feed page returns.
pub const MAX_PAGE: u64 = 1000;
/// Most events one history answer carries.
pub const MAX_HISTORY_EVENTS: usize = 10_000;
/// Events read per store lock while exporting: one piece is held per export (at most this many
/// times `MAX_EVENT_BYTES`), and read only when the client has taken the one before.
pub const EXPORT_PIECE: usize = 256;
/// Most exports streamed at once by this process; one more is answered 503 `busy`.
pub const MAX_CONCURRENT_EXPORTS: usize = 4;

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Service,
    pub net: NetHandle,
    pub metrics: Arc<Metrics>,
    pub token: Arc<str>,
    /// The parcel index of the checkpoint bundles were last served of.
    pub bundle_index: crate::bundle::IndexCache,
}

/// An API error: a 4xx (or 5xx for faults) status and a JSON body `{code, message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", what)
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

fn body_rejection(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "too-large",
            format!("request body is larger than {MAX_HTTP_BODY} bytes"),
        )
    } else if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        ApiError::new(status, "unsupported-media-type", text)
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", text)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        body_rejection(r.status(), r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        body_rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            ServiceError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                e.to_string(),
            ),
            ServiceError::Store(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store-fault",
                e.to_string(),
            ),
            ServiceError::DiskFull(_) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "disk-full", e.to_string())
            }
            ServiceError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<ActError> for ApiError {
    fn from(e: ActError) -> Self {
        match e {
            ActError::NoMember => ApiError::new(StatusCode::CONFLICT, "no-member", e.to_string()),
            ActError::UnknownParcel(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown-parcel", e.to_string())
            }
            ActError::Refused(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", e.to_string())
            }
            ActError::InvalidField(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                e.to_string(),
            ),
            ActError::Unresolved(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unresolved",
                e.to_string(),
            ),
            ActError::NotNow(_) | ActError::Witness(_) => {
                ApiError::new(StatusCode::CONFLICT, "not-now", e.to_string())
            }
            ActError::Gov(g) => g.into(),
            ActError::Service(s) => s.into(),
        }
    }
}

impl From<FeedProofError> for ApiError {
    fn from(e: FeedProofError) -> Self {
        match e {
            FeedProofError::UnknownAuthor(_) | FeedProofError::SizeBeyondFeed { .. } => {
                ApiError::not_found(e.to_string())
            }
            FeedProofError::SeqOutOfRange { .. } | FeedProofError::SizesReversed { .. } => {
                ApiError::bad_request(e.to_string())
            }
        }
    }
}

impl From<GovError> for ApiError {
    fn from(e: GovError) -> Self {
        let (status, code) = match e {
            GovError::UnknownRecord(_) => (StatusCode::NOT_FOUND, "unknown-proposal"),
            GovError::Superseded { .. } => (StatusCode::CONFLICT, "superseded"),
            GovError::Ahead { .. } => (StatusCode::CONFLICT, "not-now"),
            GovError::AlreadyEndorsed { .. } => (StatusCode::CONFLICT, "already-endorsed"),
            GovError::NoQuorum { .. } => (StatusCode::CONFLICT, "no-quorum"),
            GovError::InvalidAction { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-action"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The API router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(crate::explorer::home))
        .route("/search", get(crate::explorer::search))
        .route("/parcel/{id}", get(crate::explorer::parcel))
        .route("/member/{id}", get(crate::explorer::member))
        .route("/network", get(crate::explorer_pages::network))
        .route("/governance", get(crate::explorer_pages::governance))
        .route("/stats", get(crate::explorer_pages::statistics))
        .route("/v1/status", get(status))
        .route("/v1/state", get(state_root))
        .route("/v1/genesis", get(genesis))
        .route("/v1/actions", post(actions))
        .route("/v1/actions/preview", post(crate::signing::preview))
        .route("/v1/signing-context", get(crate::signing::context))
        .route("/v1/gov", get(gov_chain))
        .route("/v1/gov/proposals", post(gov_propose))
        .route("/v1/gov/proposals/{record}", get(gov_proposal))
        .route("/v1/gov/proposals/{record}/endorse", post(gov_endorse))
        .route("/v1/gov/proposals/{record}/object", post(gov_object))
        .route("/v1/gov/proposals/{record}/submit", post(gov_submit))
        .route("/v1/events", post(submit_event))
        .route("/v1/events/{id}", get(event))
        .route("/v1/parcels/{id}", get(parcel))
        .route("/v1/parcels/{id}/history", get(history))
        .route("/v1/parcels/{id}/bundle", get(crate::bundle::bundle))
        .route("/v1/parcels/{id}/epcis", get(crate::epcis::parcel_epcis))
        .route("/v1/feeds", get(feeds))
        .route("/v1/feeds/{author}", get(feed))
        .route("/v1/checkpoints/latest", get(latest_checkpoint))
        .route("/v1/checkpoints/unmatched", get(unmatched_checkpoints))
        .route("/v1/checkpoints/{id}", get(checkpoint))
        .route("/v1/feeds/{author}/inclusion", get(feed_inclusion))
        .route("/v1/feeds/{author}/consistency", get(feed_consistency))
        .route("/v1/peers", post(dial))
        .route("/v1/export", get(export))
        .route("/v1/watch", get(crate::watch::watch))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_HTTP_BODY))
        .with_state(state)
}

pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing bearer token",
            )
        })?;
    // Constant-time comparison.
    let (a, b) = (given.as_bytes(), state.token.as_bytes());
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong bearer token",
        ))
    }
}

fn parse_id(text: &str, what: &str) -> ApiResult<EventId> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("{what} {text:?}: {e}")))
}

fn verdict_json(v: Verdict) -> (&'static str, Option<&'static str>) {
    match v {
        Verdict::Applied => ("applied", None),
        Verdict::Void(r) => ("void", Some(r.name())),
    }
}

/// An event as JSON: metadata, verdict, exact bytes (hex) and decoded header and body.
fn event_json(ledger: &Ledger, store: &Store, id: &EventId) -> ApiResult<Value> {
    let bytes = store
        .event_bytes(id)
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store-fault",
                e.to_string(),
            )
        })?
        .ok_or_else(|| ApiError::not_found(format!("unknown event {id}")))?;
    let decoded = decode_event(&bytes, ledger.network()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store-fault",
            e.to_string(),
        )
    })?;
    let meta = ledger.event(id);
    let (verdict, reason) = meta.map_or(("unknown", None), |m| verdict_json(m.verdict));
    Ok(json!({
        "id": id,
        "author": decoded.header().author,
        "seq": decoded.header().seq,
        "kind": meta.map(|m| m.kind.name()),
        "time_ms": decoded.header().time_ms,
        "verdict": verdict,
        "reason": reason,
        "header": decoded.header(),
        "body": decoded.body(),
        "raw": to_hex(&bytes),
    }))
}

async fn status(State(s): State<AppState>) -> Json<Value> {
    let net = s.net.status();
    let snap = s.service.snapshot();
    Json(json!({
        "network": s.service.network(),
        "member": s.service.member(),
        "peer_id": net.peer_id,
        "listen": net.listen,
        "peers": net.peers,
        "banned": net.banned,
        // The last anti-entropy round with each connected peer.
        "sync": net.rounds.iter().filter(|(p, _)| net.peers.contains(p)).collect::<std::collections::BTreeMap<_, _>>(),
        "events": snap.events,
        "feeds": snap.feeds,
        "parcels": snap.parcels,
        "pending": snap.pending,
        "forks": snap.fork_count,
        "gov": snap.gov,
        "healthy": snap.healthy,
    }))
}

async fn genesis(State(s): State<AppState>) -> Response {
    let bytes = s.service.genesis().to_vec();
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

async fn state_root(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let (events, root) = s.service.state_root().await?;
    Ok(Json(json!({ "events": events, "state_root": root })))
}

async fn actions(
    State(s): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<Action>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let Json(action) = payload?;
    let acted = s.service.act(action).await?;
    let (verdict, reason) = verdict_json(acted.verdict);
    Ok(Json(
        json!({ "event": acted.event, "verdict": verdict, "reason": reason }),
    ))
}

/// A governance proposal: the action to make the version after the newest.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeBody {
    pub action: GovAction,
}

/// An objection to a proposal.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectBody {
    pub reason: String,
}

/// Query of a submission.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// Sign the record even when its endorsements do not meet the quorum.
    #[serde(default)]
    pub force: bool,
}

/// Query of the governance chain: a page of versions.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChainQuery {
    pub from: Option<u64>,
    pub limit: Option<u64>,
}

/// The answer to a governance request: the record, the event signed and its verdict.
fn gov_reply(acted: &Acted) -> Json<Value> {
    let (verdict, reason) = verdict_json(acted.verdict);
    Json(json!({
        "record": acted.gov.map(|g| g.record),
        "version": acted.gov.map(|g| g.version),
        "event": acted.event,
        "verdict": verdict,
        "reason": reason,
    }))
}

/// Signs a governance request (the caller has checked the token).
async fn gov_request(s: &AppState, request: GovRequest) -> ApiResult<Json<Value>> {
    let acted = s.service.govern(request).await?;
    Ok(gov_reply(&acted))
}

async fn gov_chain(
    State(s): State<AppState>,
    query: Result<Query<ChainQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(MAX_GOV_PAGE);
    if limit == 0 || limit > MAX_GOV_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={MAX_GOV_PAGE}"
        )));
    }
    let from = q.from.unwrap_or(0);
    let value = s
        .service
        .read(move |store| chain_json(store.ledger(), from, limit))
        .await?;
    Ok(Json(value))
}

async fn gov_proposal(
    State(s): State<AppState>,
    Path(record): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = parse_id(&record, "record id")?;
    let value = s
        .service
        .read(move |store| find_json(store.ledger(), &record))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown-proposal",
                GovError::UnknownRecord(record).to_string(),
            )
        })?;
    Ok(Json(value))
}

async fn gov_propose(
    State(s): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<ProposeBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let Json(body) = payload?;
    gov_request(&s, GovRequest::Propose(body.action)).await
}

async fn gov_endorse(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(record): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let record = parse_id(&record, "record id")?;
    gov_request(&s, GovRequest::Endorse(record)).await
}

async fn gov_object(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(record): Path<String>,
    payload: Result<Json<ObjectBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let record = parse_id(&record, "record id")?;
    let Json(body) = payload?;
    let request = GovRequest::Object {
        record,
        reason: body.reason,
    };
    gov_request(&s, request).await
}

async fn gov_submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(record): Path<String>,
    query: Result<Query<SubmitQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let record = parse_id(&record, "record id")?;
    let Query(q) = query?;
    let request = GovRequest::Submit {
        record,
        force: q.force,
    };
    gov_request(&s, request).await
}

fn status_json(outcome: &Outcome) -> Value {
    match &outcome.status {
        Status::Stored(v) => {
            let (verdict, reason) = verdict_json(*v);
            json!({ "event": outcome.id, "status": "stored", "verdict": verdict, "reason": reason })
        }
        Status::Duplicate => json!({ "event": outcome.id, "status": "duplicate" }),
        Status::Pending(missing) => json!({
            "event": outcome.id,
            "status": "pending",
            "missing": missing.iter().map(|m| match m {
                Missing::Event(id) => id.to_hex(),
                Missing::Gov(v) => format!("gov:{v}"),
            }).collect::<Vec<_>>(),
        }),
    }
}

async fn submit_event(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let body = body?;
    let mut results = s.service.submit(vec![body.to_vec()]).await?;
    match results.pop() {
        Some(Ok(outcome)) => {
            if let Status::Stored(_) = outcome.status {
                // Others learn of it at once rather than at the next anti-entropy round.
                let _ = s
                    .net
                    .commands
                    .try_send(crate::net::NetCommand::Publish(body.to_vec()));
            }
            Ok(Json(status_json(&outcome)))
        }
        Some(Err(Refusal::Admission(e))) => Err(inadmissible(&e)),
        Some(Err(Refusal::PendingFull(e))) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            e.to_string(),
        )),
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no result",
        )),
    }
}

fn inadmissible(e: &AdmissionError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "inadmissible",
        format!("{}: {e}", e.reason()),
    )
}

async fn event(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "event id")?;
    let value = s
        .service
        .read(move |store| event_json(store.ledger(), store, &id))
        .await??;
    Ok(Json(value))
}

fn parcel_json(ledger: &Ledger, id: &ParcelId) -> ApiResult<Value> {
    let p = ledger
        .parcel(id)
        .ok_or_else(|| ApiError::not_found(format!("unknown parcel {id}")))?;
    Ok(json!({
        "parcel": p.id,
        "state": p.state().name(),
        "detail": p.state(),
        "custodian": p.state().custodian(),
        "carats": p.carats,
        "stones": p.stones,
        "value_cents": p.value_cents,
        "seal": p.seal,
        "head": p.head(),
        "parents": p.parents,
        "measured_carats": p.measured_carats(),
        "mass": p.mass(),
        "origin": p.origin.shares().iter().map(|o| json!({
            "member": o.member, "site": o.site, "country": o.country, "share": percent(o.units), "units": o.units,
        })).collect::<Vec<_>>(),
        "origin_countries": p.origin.by_country().iter().map(|(c, u)| json!({
            "country": c, "share": percent(*u), "units": u,
        })).collect::<Vec<_>>(),
        "events": p.events(),
    }))
}

async fn parcel(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "parcel id")?;
    let value = s
        .service
        .read(move |store| parcel_json(store.ledger(), &id))
        .await??;
    Ok(Json(value))
}

async fn history(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "parcel id")?;
    let value = s
        .service
        .read(move |store| history_json(store, &id))
        .await??;
    Ok(Json(value))
}

fn history_json(store: &Store, id: &ParcelId) -> ApiResult<Value> {
    let ledger = store.ledger();
    let audit = audit_parcel(ledger, id)
        .ok_or_else(|| ApiError::not_found(format!("unknown parcel {id}")))?;
    // A bounded answer (the store is held while it is built): the earliest events first.
    let events = audit
        .history
        .iter()
        .take(MAX_HISTORY_EVENTS)
        .map(|h| event_json(ledger, store, &h.event))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(json!({
        "parcel": parcel_json(ledger, id)?,
        "ancestry": audit.ancestry,
        "truncated": audit.truncated || audit.history.len() > MAX_HISTORY_EVENTS,
        "events": events,
    }))
}

async fn feeds(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let list = s
        .service
        .read(|store| -> Vec<Value> {
            store
                .ledger()
                .feeds()
                .iter()
                .filter_map(|(author, f)| {
                    f.head().map(|(seq, head)| json!({ "author": author, "seq": seq, "head": head, "root": f.root(), "forked_at": f.forked_at }))
                })
                .collect()
        })
        .await?;
    Ok(Json(json!({ "feeds": list })))
}

/// Query of a feed page.
#[derive(Debug, Deserialize, Serialize)]
pub struct Page {
    pub from: Option<u64>,
    pub limit: Option<u64>,
}

async fn feed(
    State(s): State<AppState>,
    Path(author): Path<String>,
    query: Result<Query<Page>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(page) = query?;
    let author: MemberId = author
        .parse()
        .map_err(|e| ApiError::bad_request(format!("author: {e}")))?;
    let from = page.from.unwrap_or(1).max(1);
    let limit = page.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={MAX_PAGE}"
        )));
    }
    let value = s
        .service
        .read(move |store| {
            let ledger = store.ledger();
            let f = ledger
                .feed(&author)
                .ok_or_else(|| ApiError::not_found(format!("no feed for {author}")))?;
            let events = f
                .ids
                .iter()
                .skip(usize::try_from(from - 1).unwrap_or(usize::MAX))
                .take(limit as usize)
                .map(|id| event_json(ledger, store, id))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok::<_, ApiError>(
                json!({ "author": author, "seq": f.ids.len(), "from": from, "events": events }),
            )
        })
        .await??;
    Ok(Json(value))
}

/// Query of an inclusion proof: the event's seq, in the feed's first `size` events (its current
/// length if absent).
#[derive(Debug, Deserialize, Serialize)]
pub struct InclusionQuery {
    pub seq: Option<u64>,
    pub size: Option<u64>,
}

/// Query of a consistency proof: from the feed's first `from` events to its first `to` (its
/// current length if absent).
#[derive(Debug, Deserialize, Serialize)]
pub struct ConsistencyQuery {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

fn author_of(author: &str) -> ApiResult<MemberId> {
    author
        .parse()
        .map_err(|e| ApiError::bad_request(format!("author: {e}")))
}

/// The length of `author`'s feed in `store`, or 404.
fn feed_len(store: &Store, author: &MemberId) -> ApiResult<u64> {
    Ok(store
        .ledger()
        .feed(author)
        .ok_or(FeedProofError::UnknownAuthor(author.clone()))?
        .ids
        .len() as u64)
}

async fn feed_inclusion(
    State(s): State<AppState>,
    Path(author): Path<String>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let author = author_of(&author)?;
    let seq = q.seq.ok_or_else(|| {
        ApiError::bad_request("seq is required: the seq of the event to prove (1 or more)")
    })?;
    let proof = s
        .service
        .read(move |store| {
            let size = match q.size {
                Some(size) => size,
                None => feed_len(store, &author)?,
            };
            Ok::<_, ApiError>(store.inclusion_proof(&author, seq, size)?)
        })
        .await??;
    Ok(Json(json!(proof)))
}

async fn feed_consistency(
    State(s): State<AppState>,
    Path(author): Path<String>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let author = author_of(&author)?;
    let from = q.from.ok_or_else(|| {
        ApiError::bad_request("from is required: the older feed size (0 or more)")
    })?;
    let proof = s
        .service
        .read(move |store| {
            let to = match q.to {
                Some(to) => to,
                None => feed_len(store, &author)?,
            };
            Ok::<_, ApiError>(store.consistency_proof(&author, from, to)?)
        })
        .await??;
    Ok(Json(json!(proof)))
}

/// A peer address to dial.
#[derive(Debug, Deserialize, Serialize)]
pub struct Dial {
    pub addr: String,
}

async fn dial(
    State(s): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<Dial>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let Json(d) = payload?;
    let addr = d
        .addr
        .parse()
        .map_err(|e| ApiError::bad_request(format!("address: {e}")))?;
    s.net
        .dial(addr)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "dial-failed", e))?;
    Ok(Json(json!({ "dialing": d.addr })))
}

/// Slots of the exports being streamed.
static EXPORTS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_EXPORTS);

/// An export under way: the next log position, the end it stops at, and its slot.
struct Exporting {
    store: SharedStore,
    from: u64,
    end: u64,
    _slot: SemaphorePermit<'static>,
}

impl Exporting {
    /// The next piece of records, or `None` at the end. Short blocking work: one store read.
    fn next_piece(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.from >= self.end {
            return Ok(None);
        }
        let want =
            usize::try_from(self.end - self.from).map_or(EXPORT_PIECE, |n| n.min(EXPORT_PIECE));
        let piece = read(&self.store)
            .log_range(self.from, want)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if piece.is_empty() {
            return Err(std::io::Error::other(format!(
                "the log ends at position {} of {}",
                self.from, self.end
            )));
        }
        self.from += piece.len() as u64;
        let mut chunk = Vec::with_capacity(piece.iter().map(|e| e.len() + 4).sum());
        for e in &piece {
            write_record(&mut chunk, e)?;
        }
        Ok(Some(chunk))
    }
}

/// The log as it is when the export starts (later events are not included), streamed piece by
/// piece as the client reads; a client that goes away drops the stream and with it its slot.
async fn export(State(s): State<AppState>) -> ApiResult<Response> {
    let slot = EXPORTS.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{MAX_CONCURRENT_EXPORTS} exports are being streamed, the most at once; try again when one has finished"),
        )
    })?;
    let store = s.service.store().clone();
    let end = read(&store).len();
    let exporting = Exporting {
        store,
        from: 0,
        end,
        _slot: slot,
    };
    let stream = futures::stream::unfold(Some(exporting), |state| async move {
        let mut exporting = state?;
        match exporting.next_piece() {
            Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(exporting))),
            Ok(None) => None,
            Err(e) => {
                warn!(error = %e, "export stopped");
                Some((Err(e), None))
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn metrics(State(s): State<AppState>) -> Response {
    let snap = s.service.snapshot();
    let text = s.metrics.render(
        snap.events,
        snap.pending,
        snap.feeds,
        snap.parcels,
        snap.fork_count,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A kept checkpoint as JSON: its id, the statement, and the feed heads it states.
fn checkpoint_json(cp: &Checkpoint, heads: &[FeedHead]) -> Value {
    json!({
        "id": checkpoint_id(cp),
        "checkpoint": cp,
        "heads": heads,
    })
}

/// `GET /v1/checkpoints/latest`: the newest checkpoint this node keeps (404 before its first).
async fn latest_checkpoint(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let kept = s
        .service
        .read(|store| store.latest_checkpoint())
        .await?
        .map_err(ServiceError::from)?;
    let (cp, heads) =
        kept.ok_or_else(|| ApiError::not_found("no checkpoint kept yet: witnesses produce them"))?;
    Ok(Json(checkpoint_json(&cp, &heads)))
}

/// `GET /v1/checkpoints/unmatched`: checkpoints witnesses cosigned that this replica does not
/// make for their cutoff (a split view, events withheld from this node, or backdated events).
async fn unmatched_checkpoints(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let now = crate::service::now_ms();
    let found = s
        .service
        .read(move |store| crate::witness::unmatched(store, now))
        .await?;
    Ok(Json(json!({ "unmatched": found })))
}

/// `GET /v1/checkpoints/{id}`: a kept checkpoint by id.
async fn checkpoint(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "checkpoint id")?;
    let kept = s
        .service
        .read(move |store| store.checkpoint(&id))
        .await?
        .map_err(ServiceError::from)?;
    let (cp, heads) =
        kept.ok_or_else(|| ApiError::not_found(format!("no checkpoint {id} kept")))?;
    Ok(Json(checkpoint_json(&cp, &heads)))
}
