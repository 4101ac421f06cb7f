//! The explorer's parcel page: the provenance graph, origin shares as bars, every event with its
//! verdict (void attempts shown), findings, certificates with their confirmations, and how to
//! verify all of it yourself.

use std::collections::BTreeSet;

use ledger_core::audit::{audit_parcel, Audit};
use ledger_core::bytes::ParcelId;
use ledger_core::findings::parcel_findings;
use ledger_core::ledger::Ledger;

use crate::explorer::{findings_html, flagged_sets, roles_of, verdict_words};
use crate::explorer_graph::{graph, svg};
use crate::explorer_html::{carats, esc, page, pct, short, when};

/// The parcel page's HTML, or `None` for an unknown parcel.
pub fn parcel_page(ledger: &Ledger, id: &ParcelId) -> Option<String> {
    let audit = audit_parcel(ledger, id)?;
    let findings = parcel_findings(ledger, &audit);
    let (parcels, members) = flagged_sets(ledger, &audit, &findings);
    let g = graph(ledger, &audit, &parcels, &members);
    let cut = if g.truncated || audit.truncated {
        "<p class=\"muted\">The ancestry is larger than the page draws; the audit below is complete up to its limit.</p>"
    } else {
        ""
    };
    let declared = if audit.declared_carats == audit.carats {
        String::new()
    } else {
        format!(
            " (as weighed; declared {} ct)",
            carats(audit.declared_carats)
        )
    };
    let body = format!(
        "<h1>Parcel <code>{short}</code></h1>
<p><strong>{c} ct</strong>{declared}, {state}{custodian}. <span class=\"muted\">{id}</span></p>
<h2>Where it came from</h2>
<p class=\"muted\">Mines on the left, the current holder on the right; boxes are the parcel while one member held it, coloured by that member's role; dashed arrows are handovers, solid ones transforms; a red border marks what a finding concerns.</p>
<div class=\"scroll\" id=\"graph\" data-nodes=\"{n}\" data-edges=\"{e}\">{svg}</div>{cut}
<h2>Origin</h2>{origin}
<h2>Findings</h2>{findings}
<h2>Certificates</h2>{certs}
<h2>Every event</h2>{history}
<h2>What was verified, and how to verify it yourself</h2>{verify}",
        short = short(id),
        c = carats(audit.carats),
        state = esc(audit.state.name()),
        custodian = audit
            .custodian
            .as_ref()
            .map(|m| format!(", custodian <a href=\"/member/{m}\">{m}</a>", m = esc(m.as_str())))
            .unwrap_or_default(),
        n = g.nodes.len(),
        e = g.edges.len(),
        svg = svg(&g, &roles_of(ledger), id),
        origin = origin_html(&audit),
        findings = findings_html(&findings),
        certs = certificates_html(ledger, &audit),
        history = history_html(&audit),
        verify = verify_html(id),
    );
    Some(page(&format!("parcel {}", short(id)), &body).0)
}

fn bar(label: &str, units: u64) -> String {
    let p = pct(units);
    format!(
        "<div class=\"share\"><span>{l}</span><div class=\"bar\" role=\"img\" aria-label=\"{l} {p}\"><span style=\"width:{p}\"></span><em>{p}</em></div></div>",
        l = esc(label)
    )
}

fn origin_html(audit: &Audit) -> String {
    let mut out = String::from("<h3>By site</h3>");
    for s in &audit.origin {
        out.push_str(&bar(
            &format!("{} ({}, {})", s.site, s.member, s.country),
            s.units,
        ));
    }
    out.push_str("<h3>By country</h3>");
    for (c, u) in &audit.origin_countries {
        out.push_str(&bar(&c.to_string(), *u));
    }
    out.push_str(
        "<p class=\"muted\">Shares weigh each parcel of a mix at what it was last weighed.</p>",
    );
    out
}

fn certificates_html(ledger: &Ledger, audit: &Audit) -> String {
    let ancestry: BTreeSet<ParcelId> = audit.ancestry.iter().map(|a| a.parcel).collect();
    let mut certs: Vec<_> = ledger
        .certificates()
        .filter(|(_, c)| c.parcels.iter().any(|r| ancestry.contains(&r.parcel)))
        .collect();
    certs.sort_by_key(|(_, c)| c.issued_on);
    if certs.is_empty() {
        return "<p>None.</p>".to_owned();
    }
    let mut out = String::from("<table><tr><th>number</th><th>from → to</th><th>carats</th><th>origins</th><th>issued</th><th>import confirmed</th></tr>");
    for (id, c) in certs {
        let confirmed: Vec<String> = ledger
            .notes()
            .confirmations
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                ledger
                    .event(e)
                    .map(|m| format!("by {} on {}", m.author, when(m.time_ms)))
            })
            .collect();
        let origins: Vec<String> = c.origins.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "<tr class=\"certificate\"><td>{n}</td><td>{x} → {i} ({d})</td><td>{c} ct</td><td>{o}</td><td>{on}</td><td>{conf}</td></tr>",
            n = esc(&c.number),
            x = esc(c.exporter.as_str()),
            i = esc(c.importer.as_str()),
            d = c.destination,
            c = carats(c.total_carats),
            o = origins.join(", "),
            on = c.issued_on,
            conf = if confirmed.is_empty() { "not yet".to_owned() } else { esc(&confirmed.join("; ")) },
        ));
        let _ = id;
    }
    out.push_str("</table>");
    out
}

fn history_html(audit: &Audit) -> String {
    let mut out = String::from("<p class=\"muted\">Void attempts stay on record: they changed nothing, and they are shown.</p><table><tr><th>time (UTC)</th><th>member</th><th>kind</th><th>verdict</th><th>event</th></tr>");
    for h in &audit.history {
        let (class, words) = verdict_words(h.verdict);
        let verdict = if class == "void" {
            format!("<span class=\"void-reason\">{}</span>", esc(&words))
        } else {
            words
        };
        out.push_str(&format!(
            "<tr class=\"{class}\" data-event=\"{e}\"><td>{t}</td><td><a href=\"/member/{a}\">{a}</a></td><td>{k}</td><td>{verdict}</td><td><code>{s}</code></td></tr>",
            e = h.event,
            t = when(h.time_ms),
            a = esc(h.author.as_str()),
            k = h.kind.name(),
            s = short(&h.event),
        ));
    }
    out.push_str("</table>");
    out
}

fn verify_html(id: &ParcelId) -> String {
    format!(
        "<p>This page is this node's own replay: it checked every signature, feed link and
dependency, and recomputed every verdict, of the events it holds. Do not take its word:</p>
<ol><li>Download the parcel's <a href=\"/v1/parcels/{id}/bundle\">proof bundle</a> (once witnesses
have cosigned a checkpoint) and the network's <a href=\"/v1/genesis\">genesis</a>, then run
<code>custody verify-bundle parcel.bundle --genesis genesis.bin</code> on your own machine, with no
node.</li>
<li>Or replay the whole log: <code>custody audit parcel {id} --full --node &lt;this node&gt;</code>.</li></ol>"
    )
}
