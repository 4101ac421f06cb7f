//! The read-only explorer every node serves on its HTTP address (no token): search, and the
//! parcel and member pages, server-rendered HTML with inline SVG, from the node's own verified
//! replica.

use std::collections::{BTreeSet, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use ledger_core::bytes::ParcelId;
use ledger_core::findings::{all_findings, Finding};
use ledger_core::ledger::Ledger;
use ledger_core::rules::{parcel_id, Verdict};
use ledger_core::types::{MemberId, Role};

use crate::api::AppState;
use crate::explorer_html::{esc, page, short};

/// Most search results listed.
pub const MAX_SEARCH_RESULTS: usize = 50;
/// Most events of a member's feed its page lists.
pub const MAX_MEMBER_EVENTS: usize = 50;
/// Longest search query taken.
pub const MAX_QUERY_LEN: usize = 128;

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!("<h1>{}</h1><p>{}</p>", status.as_u16(), esc(message));
    (status, page("error", &body)).into_response()
}

/// Runs `f` on the node's ledger, as a page (an error page when the store is busy).
pub(crate) async fn with_ledger<F>(s: &AppState, f: F) -> Response
where
    F: FnOnce(&Ledger) -> Response + Send + 'static,
{
    match s.service.read(move |store| f(store.ledger())).await {
        Ok(r) => r,
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `GET /`: what this is, a search box, and where to go.
pub async fn home(State(s): State<AppState>) -> Response {
    let member = s.service.member().map(|m| m.to_string());
    with_ledger(&s, move |ledger| {
        let body = format!(
            "<h1>Rough diamonds, parcel by parcel</h1>
<p>This node holds {events} signed custody events of network <code>{net}</code>, {parcels} parcels,
and verified every signature, link and verdict itself.{me}</p>
<p>Search above for a parcel id (or its first characters), a Kimberley Process certificate number
(e.g. <code>BW-2026-0042</code>), a member or a mine site.</p>",
            events = ledger.events().len(),
            net = short(ledger.network()),
            parcels = ledger.parcels().len(),
            me = member
                .map(|m| format!(
                    " It signs for <a href=\"/member/{m}\">{m}</a>.",
                    m = esc(&m)
                ))
                .unwrap_or_default(),
        );
        page("home", &body).into_response()
    })
    .await
}

/// Query of `GET /search`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /search?q=`: a parcel (id or prefix), an event, a certificate number, a member or a
/// site; one match goes straight to its page.
pub async fn search(
    State(s): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(SearchQuery { q })) = query else {
        return error_page(StatusCode::BAD_REQUEST, "search needs ?q=");
    };
    let q = q.trim().to_owned();
    if q.is_empty() || q.len() > MAX_QUERY_LEN {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("give 1 to {MAX_QUERY_LEN} characters to search for"),
        );
    }
    with_ledger(&s, move |ledger| search_in(ledger, &q)).await
}

fn search_in(ledger: &Ledger, q: &str) -> Response {
    let lower = q.to_ascii_lowercase();
    let mut hits: Vec<(String, String)> = Vec::new();
    if let Ok(id) = lower.parse::<ParcelId>() {
        if ledger.parcel(&id).is_some() {
            return Redirect::to(&format!("/parcel/{id}")).into_response();
        }
        if let Some(m) = ledger.event(&id) {
            let p = parcel_id(&id, 0);
            if ledger.parcel(&p).is_some() {
                hits.push((
                    format!("/parcel/{p}"),
                    format!("parcel {p}, made by event {id}"),
                ));
            }
            hits.push((
                format!("/member/{}", m.author),
                format!("event {id} by {}", m.author),
            ));
        }
    }
    if lower.len() >= 6 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut found: Vec<ParcelId> = ledger
            .parcels()
            .map(|p| p.id)
            .filter(|id| id.to_string().starts_with(&lower))
            .take(MAX_SEARCH_RESULTS)
            .collect();
        found.sort();
        hits.extend(
            found
                .iter()
                .map(|p| (format!("/parcel/{p}"), format!("parcel {p}"))),
        );
    }
    certificate_hits(ledger, q, &mut hits);
    member_hits(ledger, &lower, &mut hits);
    hits.truncate(MAX_SEARCH_RESULTS);
    if let [(href, _)] = hits.as_slice() {
        return Redirect::to(href).into_response();
    }
    let list: String = hits
        .iter()
        .map(|(href, text)| format!("<li><a href=\"{}\">{}</a></li>", esc(href), esc(text)))
        .collect();
    let body = if hits.is_empty() {
        format!("<h1>Nothing found</h1><p>No parcel, certificate, member or site matches <code>{}</code>.</p>", esc(q))
    } else {
        format!(
            "<h1>Results for <code>{}</code></h1><ul>{list}</ul>",
            esc(q)
        )
    };
    page("search", &body).into_response()
}

/// The parcels covered by the applied certificates under number `q`.
fn certificate_hits(ledger: &Ledger, q: &str, hits: &mut Vec<(String, String)>) {
    let mut certs: Vec<_> = ledger
        .certificates()
        .filter(|(_, c)| c.number == q)
        .collect();
    certs.sort_by_key(|(id, _)| **id);
    for (id, c) in certs {
        for r in &c.parcels {
            hits.push((
                format!("/parcel/{}", r.parcel),
                format!(
                    "parcel {} on certificate {} ({})",
                    r.parcel,
                    c.number,
                    short(id)
                ),
            ));
        }
    }
}

/// A member by id, and the members with a site of that id.
fn member_hits(ledger: &Ledger, q: &str, hits: &mut Vec<(String, String)>) {
    let gov = ledger.governance().latest_state();
    if let Ok(id) = q.parse::<MemberId>() {
        if gov.members.contains_key(&id) {
            hits.push((format!("/member/{id}"), format!("member {id}")));
        }
    }
    for m in gov.members.values() {
        for site in m.sites.iter().filter(|s| s.id.as_str() == q) {
            hits.push((
                format!("/member/{}", m.id),
                format!(
                    "site {} ({}, {}) of {}",
                    site.id, site.name, site.country, m.id
                ),
            ));
        }
    }
}

/// `GET /parcel/{id}`.
pub async fn parcel(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.to_ascii_lowercase().parse::<ParcelId>() else {
        return error_page(StatusCode::BAD_REQUEST, "a parcel id is 64 hex characters");
    };
    page_or_missing(&s, format!("no parcel {id} here"), move |ledger| {
        crate::explorer_parcel::parcel_page(ledger, &id)
    })
    .await
}

/// The page `f` renders, or a 404 saying `missing` when it renders none.
async fn page_or_missing<F>(s: &AppState, missing: String, f: F) -> Response
where
    F: FnOnce(&Ledger) -> Option<String> + Send + 'static,
{
    with_ledger(s, move |ledger| match f(ledger) {
        Some(html) => Html(html).into_response(),
        None => error_page(StatusCode::NOT_FOUND, &missing),
    })
    .await
}

/// Each member's roles, for the graph's colours.
pub fn roles_of(ledger: &Ledger) -> HashMap<MemberId, Vec<Role>> {
    ledger
        .governance()
        .latest_state()
        .members
        .values()
        .map(|m| (m.id.clone(), m.roles.clone()))
        .collect()
}

/// A verdict as (class, text in words).
pub fn verdict_words(v: Verdict) -> (&'static str, String) {
    match v {
        Verdict::Applied => ("applied", "applied".to_owned()),
        Verdict::Void(r) => ("void", format!("VOID ({}): {}", r.name(), r.describe())),
    }
}

/// Findings as HTML.
pub fn findings_html(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "<p>None.</p>".to_owned();
    }
    findings
        .iter()
        .map(|f| {
            format!(
                "<div class=\"finding\" data-code=\"{c}\"><strong>{c}</strong>: {d}</div>",
                c = f.code.name(),
                d = esc(&f.detail)
            )
        })
        .collect()
}

/// The nodes findings concern: parcels, and members.
pub fn flagged_sets(
    ledger: &Ledger,
    audit: &ledger_core::audit::Audit,
    findings: &[Finding],
) -> (BTreeSet<ParcelId>, BTreeSet<MemberId>) {
    let mut parcels: BTreeSet<ParcelId> = findings.iter().flat_map(|f| f.parcels.clone()).collect();
    let members: BTreeSet<MemberId> = findings.iter().flat_map(|f| f.members.clone()).collect();
    // A flagged site marks the parcels registered there.
    let sites: BTreeSet<_> = findings.iter().flat_map(|f| f.sites.clone()).collect();
    for a in audit.ancestry.iter().filter(|a| a.parents.is_empty()) {
        let at_site = ledger.parcel(&a.parcel).is_some_and(|p| {
            p.origin
                .shares()
                .iter()
                .any(|s| sites.contains(&(s.member.clone(), s.site.clone())))
        });
        if at_site {
            parcels.insert(a.parcel);
        }
    }
    (parcels, members)
}

/// `GET /member/{id}`.
pub async fn member(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.to_ascii_lowercase().parse::<MemberId>() else {
        return error_page(StatusCode::BAD_REQUEST, "a member id is a lower-case slug");
    };
    page_or_missing(&s, format!("no member {id}"), move |ledger| {
        crate::explorer_member::member_page(ledger, &id)
    })
    .await
}

/// All findings concerning `member` (it authored their event, they name it or its sites).
pub fn member_findings(ledger: &Ledger, member: &MemberId) -> Vec<Finding> {
    all_findings(ledger)
        .into_iter()
        .filter(|f| {
            f.members.contains(member)
                || f.sites.iter().any(|(m, _)| m == member)
                || f.event
                    .and_then(|e| ledger.event(&e))
                    .is_some_and(|m| &m.author == member)
        })
        .collect()
}
