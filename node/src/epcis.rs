//! A parcel's lineage as a GS1 EPCIS 2.0 JSON-LD document (docs/epcis.md): registrations as
//! commissioning `ObjectEvent`s, transforms as repackaging `TransformationEvent`s with quantities in carats,
//! dispatches and receipts as shipping and receiving events between members, certificates as
//! business transactions. Only applied events: a void attempt changed nothing in the supply
//! chain (the audit keeps it).

use serde_json::{json, Value};

use ledger_core::audit::Audit;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{Body, RetireCause};
use ledger_core::ledger::Ledger;
use ledger_core::rules::{parcel_id, Verdict};
use ledger_core::types::MemberId;

/// The EPCIS 2.0 JSON-LD context.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
/// UN/CEFACT Recommendation 20 code of the metric carat.
pub const CARAT_UOM: &str = "CTM";

/// A parcel as an EPC class (parcels are quantities of stones, not serialised items).
pub fn parcel_uri(p: &ParcelId) -> String {
    format!("urn:custody:parcel:{p}")
}

fn member_uri(m: &MemberId) -> String {
    format!("urn:custody:member:{m}")
}

fn qty(parcel: &ParcelId, hundredths: u64) -> Value {
    json!({"epcClass": parcel_uri(parcel), "quantity": hundredths as f64 / 100.0, "uom": CARAT_UOM})
}

fn time(ms: u64) -> String {
    let date = ledger_core::types::Date::from_unix_ms(ms);
    let secs = (ms / 1000) % 86_400;
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        ms % 1000
    )
}

/// An `ObjectEvent` of one parcel's quantity: its action, business step and disposition.
fn object_event(
    id: &EventId,
    time_ms: u64,
    (action, step, disposition): (&str, &str, &str),
    quantity: Value,
) -> Value {
    let mut e = base("ObjectEvent", id, time_ms);
    e["action"] = json!(action);
    e["bizStep"] = json!(step);
    e["disposition"] = json!(disposition);
    e["quantityList"] = json!([quantity]);
    e
}

/// The event's common fields: type, time, its custody event id.
fn base(kind: &str, id: &EventId, time_ms: u64) -> Value {
    json!({
        "type": kind,
        "eventTime": time(time_ms),
        "eventTimeZoneOffset": "+00:00",
        "eventID": format!("urn:custody:event:{id}"),
    })
}

/// The mass of `parcel` right after `event`, or its declared weight.
fn mass_at(ledger: &Ledger, parcel: &ParcelId, event: &EventId) -> u64 {
    ledger
        .parcel(parcel)
        .map_or(0, |p| p.mass_at(event).unwrap_or(p.carats))
}

/// One applied event as an EPCIS event, if it is a supply-chain step.
fn event(ledger: &Ledger, id: &EventId, body: &Body, author: &MemberId, t: u64) -> Option<Value> {
    let at = json!({"id": member_uri(author)});
    let mut e = match body {
        Body::Register(r) => {
            let p = parcel_id(id, 0);
            let mut e = object_event(id, t, ("ADD", "commissioning", "active"), qty(&p, r.carats));
            e["readPoint"] = json!({"id": format!("urn:custody:site:{author}:{}", r.site)});
            e
        }
        Body::Transform(tr) => {
            let mut e = base("TransformationEvent", id, t);
            e["bizStep"] = json!("repackaging");
            e["transformationID"] = json!(format!("urn:custody:event:{id}"));
            e["inputQuantityList"] = tr
                .inputs
                .iter()
                .map(|r| qty(&r.parcel, mass_at(ledger, &r.parcel, id)))
                .collect();
            e["outputQuantityList"] = (0u32..)
                .zip(&tr.outputs)
                .map(|(i, o)| qty(&parcel_id(id, i), o.carats))
                .collect();
            e
        }
        Body::Dispatch(d) => {
            let quantity = qty(&d.parcel.parcel, mass_at(ledger, &d.parcel.parcel, id));
            let mut e = object_event(id, t, ("OBSERVE", "shipping", "in_transit"), quantity);
            e["sourceList"] = json!([{"type": "owning_party", "source": member_uri(author)}]);
            e["destinationList"] =
                json!([{"type": "owning_party", "destination": member_uri(&d.to)}]);
            if let Some(c) = d.certificate.and_then(|c| ledger.certificate(&c)) {
                e["bizTransactionList"] = json!([{
                    "type": "urn:custody:btt:kp-certificate",
                    "bizTransaction": format!("urn:custody:kp:{}:{}", c.exporter, c.number),
                }]);
            }
            e
        }
        Body::Receive(r) => {
            let quantity = qty(&r.parcel.parcel, r.measured_carats);
            object_event(id, t, ("OBSERVE", "receiving", "in_progress"), quantity)
        }
        Body::Reject(r) => {
            let quantity = qty(&r.parcel.parcel, mass_at(ledger, &r.parcel.parcel, id));
            object_event(id, t, ("OBSERVE", "receiving", "returned"), quantity)
        }
        Body::Retire(r) => {
            let (step, disposition) = match r.cause {
                RetireCause::Cut => ("decommissioning", "inactive"),
                RetireCause::Lost => ("decommissioning", "unknown"),
                RetireCause::Destroyed => ("destroying", "destroyed"),
            };
            let quantity = qty(&r.parcel.parcel, mass_at(ledger, &r.parcel.parcel, id));
            object_event(id, t, ("DELETE", step, disposition), quantity)
        }
        _ => return None,
    };
    e["bizLocation"] = at;
    Some(e)
}

/// The EPCIS document of an audit, its events in the audit's history order; `body_of` reads an
/// event's body from the store.
pub fn document(
    ledger: &Ledger,
    audit: &Audit,
    created_ms: u64,
    body_of: impl Fn(&EventId) -> Option<Body>,
) -> Value {
    let events: Vec<Value> = audit
        .history
        .iter()
        .filter(|h| h.verdict == Verdict::Applied)
        .filter_map(|h| {
            let body = body_of(&h.event)?;
            event(ledger, &h.event, &body, &h.author, h.time_ms)
        })
        .collect();
    json!({
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": time(created_ms),
        "epcisBody": {"eventList": events},
    })
}

/// `GET /v1/parcels/{id}/epcis`: the parcel's lineage as an EPCIS 2.0 document, from the node's
/// replica.
pub async fn parcel_epcis(
    axum::extract::State(s): axum::extract::State<crate::api::AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> crate::api::ApiResult<axum::Json<Value>> {
    use crate::api::ApiError;
    let id: ParcelId = id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("parcel id {id:?}: {e}")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let doc = s
        .service
        .read(move |store| {
            let ledger = store.ledger();
            let audit = ledger_core::audit::audit_parcel(ledger, &id)
                .ok_or_else(|| ApiError::not_found(format!("unknown parcel {id}")))?;
            let body_of = |e: &EventId| {
                let bytes = store.event_bytes(e).ok()??;
                let decoded =
                    ledger_core::admission::decode_event(&bytes, ledger.network()).ok()?;
                Some(decoded.body().clone())
            };
            Ok::<_, ApiError>(document(ledger, &audit, now, body_of))
        })
        .await??;
    Ok(axum::Json(doc))
}
