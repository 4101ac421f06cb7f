//! The explorer's network, governance and statistics pages.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use ledger_core::admission::decode_event;
use ledger_core::findings::all_findings;
use ledger_core::ledger::Ledger;
use ledger_core::stats::{stats, Stats};

use crate::api::AppState;
use crate::explorer_html::{carats, esc, page, short};

/// Most versions the governance page lists.
pub const MAX_GOV_VERSIONS: u64 = 200;

/// Renders a page from the node's ledger (an error page when the store is busy).
async fn render<F>(s: &AppState, f: F) -> Response
where
    F: FnOnce(&Ledger) -> String + Send + 'static,
{
    crate::explorer::with_ledger(s, move |ledger| Html(f(ledger)).into_response()).await
}

/// `GET /network`: peers and their last sync round, feeds, forks, the newest checkpoint.
pub async fn network(State(s): State<AppState>) -> Response {
    let net = s.net.status();
    // The newest kept checkpoint and the members whose `Witness` events cosign it.
    let checkpoint = s
        .service
        .read(|store| {
            let (cp, _) = store.latest_checkpoint().ok().flatten()?;
            let witnesses: Vec<String> = crate::witness::witness_events_of(store, &cp)
                .iter()
                .filter_map(|b| decode_event(b, store.ledger().network()).ok())
                .map(|e| e.header().author.to_string())
                .collect();
            Some((cp, witnesses))
        })
        .await
        .ok()
        .flatten();
    let now = crate::service::now_ms();
    let unmatched = s
        .service
        .read(move |store| crate::witness::unmatched(store, now))
        .await
        .ok();
    render(&s, move |ledger| {
        let peers: String = net
            .peers
            .iter()
            .map(|p| {
                let round = net.rounds.get(p).map_or("no sync round yet".to_owned(), |r| {
                    format!("last round lacked {} of its events", r.missing)
                });
                format!("<li><code>{}</code>: {round}</li>", esc(p))
            })
            .collect();
        // A BTreeMap: sorted by member already.
        let rows: String = ledger
            .feeds()
            .iter()
            .map(|(m, f)| {
                format!(
                    "<tr><td><a href=\"/member/{m}\">{m}</a></td><td>{}</td><td>{}</td></tr>",
                    f.ids.len(),
                    f.forked_at.map_or("no".to_owned(), |s| format!("void from seq {s}")),
                    m = esc(m.as_str())
                )
            })
            .collect();
        let forks: String = ledger
            .forks()
            .map(|f| {
                format!(
                    "<li>{} signed two events for seq {}: <a href=\"/v1/events/{a}\">{}</a> and <a href=\"/v1/events/{b}\">{}</a></li>",
                    esc(f.author.as_str()), f.seq, short(&f.first), short(&f.second), a = f.first, b = f.second
                )
            })
            .collect();
        let cp = checkpoint_html(checkpoint.as_ref());
        let unmatched = unmatched_html(unmatched.as_deref());
        let body = format!(
            "<h1>Network</h1><p>Node <code>{peer}</code>; network <code>{net_id}</code>; {events} events.</p>
<h2>Newest checkpoint</h2>{cp}
<h2>Checkpoints cosigned elsewhere that this node's log does not make</h2>{unmatched}
<h2>Peers ({n})</h2><ul>{peers}</ul>
<h2>Feeds</h2><table><tr><th>member</th><th>events</th><th>forked</th></tr>{rows}</table>
<h2>Forks (with their proofs)</h2><ul>{forks}</ul>",
            peer = esc(&net.peer_id),
            net_id = short(ledger.network()),
            events = ledger.events().len(),
            n = net.peers.len(),
            forks = if forks.is_empty() { "<li>none</li>".to_owned() } else { forks },
        );
        page("network", &body).0
    })
    .await
}

/// Checkpoints witnesses cosigned that this node's replica states otherwise.
fn unmatched_html(found: Option<&[crate::witness::Unmatched]>) -> String {
    let Some(found) = found else {
        return "<p>Not checked: the node is busy. Reload the page.</p>".to_owned();
    };
    if found.is_empty() {
        return "<p>None: every recent checkpoint a witness cosigned agrees with this node's log.</p>"
            .to_owned();
    }
    let items: String = found
        .iter()
        .map(|u| {
            format!(
                "<li><a href=\"/member/{w}\">{w}</a> cosigned checkpoint <code>{s}</code> as of {t} UTC ({feeds} feeds)</li>",
                w = esc(u.witness.as_str()),
                s = short(&u.id),
                t = crate::explorer_html::when(u.checkpoint.time_ms),
                feeds = u.checkpoint.feeds,
            )
        })
        .collect();
    format!(
        "<p>This node's log states some feed otherwise as of these cutoffs: one branch of a fork shown to one side (a split view), events withheld from this node, or events published after the cutoff with an earlier claimed time. A monitor should find out which.</p><ul>{items}</ul>"
    )
}

/// The newest checkpoint this node keeps (witnesses cosigned it).
fn checkpoint_html(kept: Option<&(ledger_core::event::Checkpoint, Vec<String>)>) -> String {
    let Some((cp, witnesses)) = kept else {
        return "<p>None yet: witnesses cosign one every checkpoint interval.</p>".to_owned();
    };
    let id = ledger_core::checkpoint::checkpoint_id(cp);
    format!(
        "<p><a href=\"/v1/checkpoints/{id}\"><code>{s}</code></a>: {feeds} feeds, {parcels} parcels, as of {t} UTC, governance version {gov}; cosigned by {w}. Auditors verify parcels against it (<code>custody audit parcel ID</code>) and refuse a node that shows an older one (<code>custody checkpoint</code>).</p>",
        s = short(&id),
        feeds = cp.feeds,
        parcels = cp.parcels,
        t = crate::explorer_html::when(cp.time_ms),
        gov = cp.gov,
        w = if witnesses.is_empty() { "no witness in this node's log yet".to_owned() } else { esc(&witnesses.join(", ")) },
    )
}

/// `GET /governance`: every version of the chain with its action, endorsers and objections.
pub async fn governance(State(s): State<AppState>) -> Response {
    render(&s, |ledger| {
        let chain = crate::gov::chain_json(ledger, 0, MAX_GOV_VERSIONS);
        let mut rows = String::new();
        for v in chain["versions"].as_array().into_iter().flatten() {
            let names = |list: &Value, key: &str| -> String {
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x[key].as_str().map(esc))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            rows.push_str(&format!(
                "<tr><td>{n}</td><td><code>{a}</code></td><td>{e}</td><td>{o}</td></tr>",
                n = v["version"],
                a = esc(&v["action"].to_string()),
                e = names(&v["endorsers"], "member"),
                o = names(&v["objections"], "member"),
            ));
        }
        let body = format!(
            "<h1>Governance</h1><p>Version {latest} is in force. Each record needs the quorum of
every chamber of the version it extends.</p>
<table><tr><th>version</th><th>action</th><th>endorsed by</th><th>objected by</th></tr>{rows}</table>",
            latest = chain["latest"]
        );
        page("governance", &body).0
    })
    .await
}

/// Query of `GET /stats`.
#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    #[serde(default)]
    year: Option<u32>,
}

/// `GET /stats?year=Y`: the KP statistics per country (the code of `custody stats`), as a table
/// and bars of exported carats.
pub async fn statistics(
    State(s): State<AppState>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Response {
    let year = query.ok().and_then(|Query(q)| q.year);
    render(&s, move |ledger| {
        let st = stats(ledger, year, &all_findings(ledger));
        page("statistics", &stats_html(&st)).0
    })
    .await
}

fn stats_html(st: &Stats) -> String {
    let most = st
        .countries
        .values()
        .map(|c| c.exports.carats.max(c.imports.carats))
        .max()
        .unwrap_or(0)
        .max(1);
    let ct = |c: u128| carats(u64::try_from(c).unwrap_or(u64::MAX));
    let mut rows = String::new();
    let mut bars = String::new();
    for (country, c) in &st.countries {
        let findings: Vec<String> = c.findings.iter().map(|(k, n)| format!("{k} {n}")).collect();
        rows.push_str(&format!(
            "<tr><td>{country}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
            ct(c.registered_carats), ct(c.declared_carats), ct(c.exports.carats),
            c.exports.usd_per_carat().map_or(String::new(), |v| format!("{v:.2}")),
            ct(c.imports.carats),
            c.imports.usd_per_carat().map_or(String::new(), |v| format!("{v:.2}")),
            c.certificates_confirmed, c.certificates_issued, esc(&findings.join(", ")),
        ));
        for (what, carats) in [("exports", c.exports.carats), ("imports", c.imports.carats)] {
            let width = carats as f64 * 100.0 / most as f64;
            bars.push_str(&format!(
                "<div class=\"share\"><span>{country} {what} {} ct</span><div class=\"bar\"><span style=\"width:{width:.2}%\"></span></div></div>",
                ct(carats)
            ));
        }
    }
    let year = st.year.map_or("every year".to_owned(), |y| y.to_string());
    format!(
        "<h1>Kimberley Process statistics, {year}</h1>
<form action=\"/stats\" method=\"get\"><label for=\"year\">Year</label> <input id=\"year\" name=\"year\" size=\"5\"> <button type=\"submit\">Show</button></form>
<table><tr><th>country</th><th>registered ct</th><th>declared ct</th><th>export ct</th><th>export US$/ct</th><th>import ct</th><th>import US$/ct</th><th>certificates confirmed/issued</th><th>findings</th></tr>{rows}</table>
<h2>Exports and imports, in carats</h2>{bars}
<p class=\"muted\">From this node's verified replica; <code>custody stats --year Y</code> computes the same from a replay on your machine.</p>"
    )
}
