//! Watches: `GET /v1/watch?parcel=|member=|origin=|finding=` streams new events (or findings)
//! as server-sent events, each with an id made of its log position, so a client that
//! reconnects with `Last-Event-ID` gets everything after what it saw, exactly once, even from a
//! node restarted in between (log positions are durable).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use ledger_core::admission::decode_event;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{Body, FlagTarget};
use ledger_core::findings::{all_findings, Finding};
use ledger_core::ledger::Ledger;
use ledger_core::rules::{parcel_id, Verdict};
use ledger_core::store::Store;
use ledger_core::types::MemberId;

use crate::api::{ApiError, ApiResult, AppState};

/// Most log entries one read of a watch takes.
pub const MAX_WATCH_BATCH: usize = 256;
/// How long a watch waits for a durable point before it looks again.
pub const WATCH_POLL: Duration = Duration::from_secs(5);

/// What a watch follows. Event filters given together must all match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    pub parcel: Option<ParcelId>,
    pub member: Option<MemberId>,
    /// A country (`ZW`, any case) or a site (`mine-zw/marange`) the parcels come from.
    pub origin: Option<String>,
    /// Stream findings of this code (`any` for all) instead of events.
    pub finding: Option<String>,
    /// Resume after this id (as `Last-Event-ID`).
    pub after: Option<String>,
}

/// A position in the stream: log position, and items already sent at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub position: u64,
    pub sent: u32,
}

impl Cursor {
    /// Parses an id `P.K` (item K at position P was the last seen).
    pub fn after(id: &str) -> Option<Cursor> {
        let (p, k) = id.split_once('.')?;
        Some(Cursor {
            position: p.parse().ok()?,
            sent: k.parse::<u32>().ok()?.checked_add(1)?,
        })
    }
}

/// The parcels an event touches: those it cites, creates, or flags.
fn parcels_of(id: &EventId, body: &Body) -> Vec<ParcelId> {
    let mut out: Vec<ParcelId> = body.parcel_refs().iter().map(|r| r.parcel).collect();
    let created = match body {
        Body::Register(_) => 1,
        Body::Transform(t) => t.outputs.len() as u32,
        _ => 0,
    };
    out.extend((0..created).map(|i| parcel_id(id, i)));
    if let Body::Flag(f) = body {
        if let FlagTarget::Parcel(p) = f.target {
            out.push(p);
        }
    }
    out
}

fn origin_matches(ledger: &Ledger, parcels: &[ParcelId], origin: &str) -> bool {
    let (member, site) = origin.split_once('/').unwrap_or(("", ""));
    parcels.iter().filter_map(|p| ledger.parcel(p)).any(|p| {
        p.origin.shares().iter().any(|s| {
            s.country.to_string().eq_ignore_ascii_case(origin)
                || (s.member.as_str() == member && s.site.as_str() == site)
        })
    })
}

fn event_matches(
    ledger: &Ledger,
    q: &WatchQuery,
    id: &EventId,
    body: &Body,
    author: &MemberId,
) -> bool {
    let parcels = parcels_of(id, body);
    let parcel_ok = q.parcel.is_none_or(|p| parcels.contains(&p));
    let member_ok = q.member.as_ref().is_none_or(|m| {
        author == m
            || matches!(body, Body::Dispatch(d) if &d.to == m)
            || matches!(body, Body::Flag(f) if matches!(&f.target, FlagTarget::Member(x) if x == m))
    });
    let origin_ok = q
        .origin
        .as_ref()
        .is_none_or(|o| origin_matches(ledger, &parcels, o));
    parcel_ok && member_ok && origin_ok
}

fn finding_matches(ledger: &Ledger, q: &WatchQuery, f: &Finding) -> bool {
    let code_ok = q
        .finding
        .as_deref()
        .is_none_or(|c| c == "any" || c == f.code.name());
    let parcel_ok = q.parcel.is_none_or(|p| f.parcels.contains(&p));
    let member_ok = q.member.as_ref().is_none_or(|m| f.members.contains(m));
    let origin_ok = q.origin.as_ref().is_none_or(|o| {
        origin_matches(ledger, &f.parcels, o)
            || f.sites.iter().any(|(m, s)| o == &format!("{m}/{s}"))
    });
    code_ok && parcel_ok && member_ok && origin_ok
}

/// The log position at which a finding became true: the latest of its event, its parcels'
/// creations, the certificates covering them and (for an embargo) the governance record's
/// carriers. A finding that becomes true by the passage of time alone (an overdue dispatch)
/// has no such event and is not streamed when it becomes true.
fn finding_position(store: &Store, f: &Finding) -> Option<u64> {
    let ledger = store.ledger();
    let mut ids: Vec<EventId> = f.event.into_iter().collect();
    ids.extend(
        f.parcels
            .iter()
            .filter_map(|p| ledger.parcel(p).map(|p| *p.created_by())),
    );
    if let Some(e) = &f.embargo {
        let gov = ledger.governance();
        if let Some(v) = gov
            .versions()
            .get(usize::try_from(e.embargo.version).unwrap_or(usize::MAX))
        {
            if let Some(r) = gov.record(&v.id) {
                ids.extend(r.carriers.iter().copied());
            }
        }
    }
    ids.iter().filter_map(|id| store.position(id)).max()
}

/// One item of the stream: its id and its SSE event.
type Item = (String, &'static str, Value);

/// The items at log positions `from..to` (already durable), in order.
fn items(store: &Store, q: &WatchQuery, from: u64, to: u64) -> Result<Vec<(u64, Item)>, String> {
    let ledger = store.ledger();
    let mut out = Vec::new();
    if q.finding.is_some() {
        let mut found: Vec<(u64, Finding)> = all_findings(ledger)
            .into_iter()
            .filter(|f| finding_matches(ledger, q, f))
            .filter_map(|f| finding_position(store, &f).map(|p| (p, f)))
            .filter(|(p, _)| (from..to).contains(p))
            .collect();
        found.sort_by(|a, b| (a.0, a.1.code, &a.1.detail).cmp(&(b.0, b.1.code, &b.1.detail)));
        for (p, f) in found {
            let data = json!({"position": p, "code": f.code.name(), "detail": f.detail, "event": f.event, "parcels": f.parcels});
            out.push((p, (String::new(), "finding", data)));
        }
        return Ok(out);
    }
    // Only events are read from the log (findings come from the state).
    let limit = usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX);
    let raw = store.log_range(from, limit).map_err(|e| e.to_string())?;
    for (i, bytes) in raw.iter().enumerate() {
        let p = from + i as u64;
        let Ok(ev) = decode_event(bytes, ledger.network()) else {
            continue;
        };
        let author = &ev.header().author;
        if !event_matches(ledger, q, ev.id(), ev.body(), author) {
            continue;
        }
        let (verdict, reason) = match ledger.event(ev.id()).map(|m| m.verdict) {
            Some(Verdict::Applied) => ("applied", None),
            Some(Verdict::Void(r)) => ("void", Some(r.name())),
            None => ("unknown", None),
        };
        let data = json!({
            "position": p, "event": ev.id(), "author": author, "seq": ev.header().seq,
            "kind": ev.body().kind().name(), "time_ms": ev.header().time_ms,
            "verdict": verdict, "reason": reason,
        });
        out.push((p, (String::new(), "custody-event", data)));
    }
    Ok(out)
}

/// Numbers the items of each position (`P.K`) and drops those the cursor already saw.
fn number(batch: Vec<(u64, Item)>, cursor: Cursor) -> Vec<Item> {
    let mut out = Vec::with_capacity(batch.len());
    let mut at: Option<(u64, u32)> = None;
    for (p, (_, kind, data)) in batch {
        let k = match at {
            Some((q, k)) if q == p => k + 1,
            _ => 0,
        };
        at = Some((p, k));
        if p == cursor.position && k < cursor.sent {
            continue;
        }
        out.push((format!("{p}.{k}"), kind, data));
    }
    out
}

struct Watch {
    s: AppState,
    q: WatchQuery,
    cursor: Cursor,
    queue: VecDeque<Item>,
    rx: tokio::sync::watch::Receiver<std::sync::Arc<crate::service::Snapshot>>,
}

impl Watch {
    /// The next item: queued ones first, then what the store made durable since.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watch)> {
        loop {
            if let Some((id, kind, data)) = self.queue.pop_front() {
                let ev = Event::default().id(id).event(kind).data(data.to_string());
                return Some((Ok(ev), self));
            }
            let durable = self.s.service.snapshot().events;
            if durable > self.cursor.position {
                let to = durable.min(self.cursor.position + MAX_WATCH_BATCH as u64);
                let (q, from, cursor) = (self.q.clone(), self.cursor.position, self.cursor);
                let batch = self
                    .s
                    .service
                    .read(move |store| items(store, &q, from, to))
                    .await
                    .ok()?
                    .ok()?;
                self.queue.extend(number(batch, cursor));
                self.cursor = Cursor {
                    position: to,
                    sent: 0,
                };
                continue;
            }
            let _ = tokio::time::timeout(WATCH_POLL, self.rx.changed()).await;
        }
    }
}

/// `GET /v1/watch`.
pub async fn watch(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<WatchQuery>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Query(q) = query?;
    if let Some(code) = &q.finding {
        let known = code == "any"
            || ledger_core::findings::FindingCode::ALL
                .iter()
                .any(|c| c.name() == code);
        if !known {
            return Err(ApiError::bad_request(format!(
                "unknown finding code {code:?}"
            )));
        }
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| q.after.clone());
    let cursor = match resume {
        Some(id) => Cursor::after(&id)
            .ok_or_else(|| ApiError::bad_request(format!("bad event id {id:?}: expected P.K")))?,
        None => Cursor {
            position: s.service.snapshot().events,
            sent: 0,
        },
    };
    let rx = s.service.subscribe();
    let start = Watch {
        s,
        q,
        cursor,
        queue: VecDeque::new(),
        rx,
    };
    let stream = futures::stream::unfold(start, Watch::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
