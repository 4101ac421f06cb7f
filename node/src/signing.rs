//! Signing outside the node: a preview of the body an action becomes, and the signing context
//! (feed position, parcel heads, certificates) that `custody sign` builds events from on a
//! machine with no node.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use ledger_core::bytes::{NetworkId, ParcelId};
use ledger_core::event::Body;
use ledger_core::ledger::Ledger;
use ledger_core::types::MemberId;
use ledger_core::writer::FeedPosition;

use crate::action_body::{cert_at, CertAt, Context, ParcelAt};
use crate::actions::Action;
use crate::api::{authorize, ApiError, ApiResult, AppState};
use crate::service::ActError;

/// Most parcels one signing context carries (a certificate covers at most this many).
pub const MAX_CONTEXT_PARCELS: usize = ledger_core::event::MAX_CERTIFICATE_PARCELS;
/// Most certificate numbers one signing context resolves.
pub const MAX_CONTEXT_CERTIFICATES: usize = 64;

/// What `custody sign` needs to build and sign one member's next event offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningContext {
    pub network: NetworkId,
    pub member: MemberId,
    pub position: FeedPosition,
    /// The parcels the action may name, at their current heads.
    pub parcels: Vec<ParcelAt>,
    /// The applied certificates under the numbers the action may name.
    pub certificates: Vec<CertAt>,
}

impl Context for SigningContext {
    fn parcel(&self, id: &ParcelId) -> Option<ParcelAt> {
        self.parcels.iter().find(|p| &p.parcel == id).cloned()
    }
    fn certificates_numbered(&self, number: &str) -> Vec<CertAt> {
        self.certificates
            .iter()
            .filter(|c| c.number == number)
            .cloned()
            .collect()
    }
}

/// Query of a signing context: the member, and comma-separated parcel ids and certificate numbers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextQuery {
    pub member: MemberId,
    #[serde(default)]
    pub parcels: String,
    #[serde(default)]
    pub certificates: String,
}

/// A parcel of a signing context: `ID` at its current head, or `ID@HEAD` at an earlier applied
/// event on it (to reproduce an attempt from that state, such as a double dispatch).
fn parcel_at(ledger: &Ledger, spec: &str) -> ApiResult<ParcelAt> {
    let (id, head) = match spec.split_once('@') {
        Some((id, head)) => (id, Some(head)),
        None => (spec, None),
    };
    let parse = |text: &str, what: &str| {
        text.parse::<ParcelId>()
            .map_err(|e| ApiError::bad_request(format!("{what} {text:?}: {e}")))
    };
    let parcel = parse(id, "parcel id")?;
    let mut at = Context::parcel(ledger, &parcel)
        .ok_or_else(|| ApiError::not_found(format!("unknown parcel {parcel}")))?;
    if let Some(head) = head {
        let head = parse(head, "head")?;
        let p = ledger
            .parcel(&parcel)
            .ok_or_else(|| ApiError::not_found("unknown parcel"))?;
        at.mass = p.mass_at(&head).ok_or_else(|| {
            ApiError::not_found(format!("{head} is no applied event on parcel {parcel}"))
        })?;
        at.head = head;
    }
    Ok(at)
}

/// The signing context of `q.member` from `ledger`.
fn context_of(ledger: &Ledger, q: ContextQuery) -> ApiResult<SigningContext> {
    let ids: Vec<&str> = q.parcels.split(',').filter(|s| !s.is_empty()).collect();
    let numbers: Vec<&str> = q
        .certificates
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() > MAX_CONTEXT_PARCELS || numbers.len() > MAX_CONTEXT_CERTIFICATES {
        return Err(ApiError::bad_request(format!(
            "a signing context holds at most {MAX_CONTEXT_PARCELS} parcels and {MAX_CONTEXT_CERTIFICATES} certificate numbers"
        )));
    }
    if !ledger
        .governance()
        .latest_state()
        .members
        .contains_key(&q.member)
    {
        return Err(ApiError::not_found(format!("no member {}", q.member)));
    }
    let parcels = ids
        .into_iter()
        .map(|spec| parcel_at(ledger, spec))
        .collect::<ApiResult<Vec<_>>>()?;
    let certificates = numbers
        .iter()
        .flat_map(|n| ledger.certificates().filter(move |(_, c)| c.number == *n))
        .map(|(id, c)| cert_at(*id, c))
        .collect();
    Ok(SigningContext {
        network: *ledger.network(),
        position: FeedPosition::of(ledger, &q.member),
        member: q.member,
        parcels,
        certificates,
    })
}

/// `GET /v1/signing-context?member=M&parcels=P1,P2&certificates=N1`: public data only (the
/// feed's position, parcel heads, certificates), so no token.
pub async fn context(
    State(s): State<AppState>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> ApiResult<Json<SigningContext>> {
    let Query(q) = query?;
    let ctx = s
        .service
        .read(move |store| context_of(store.ledger(), q))
        .await??;
    Ok(Json(ctx))
}

/// A body as JSON for people: its kind, its fields, and an HS code as written.
pub fn body_json(body: &Body) -> Value {
    let inner = serde_json::to_value(body)
        .ok()
        .and_then(|v| v.as_object().and_then(|o| o.values().next().cloned()))
        .unwrap_or(Value::Null);
    let hs_code = match body {
        Body::KpCertificate(k) => Some(k.hs_code.to_string()),
        _ => None,
    };
    json!({ "kind": body.kind().name(), "body": inner, "hs_code": hs_code })
}

/// `POST /v1/actions/preview`: the body the node would sign for an action, signing nothing.
pub async fn preview(
    State(s): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<Action>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &headers)?;
    let Json(action) = payload?;
    let member = s.service.member().cloned().ok_or(ActError::NoMember)?;
    let body = s
        .service
        .read(move |store| action.body(store.ledger(), &member))
        .await?
        .map_err(ActError::from)?;
    Ok(Json(body_json(&body)))
}
