//! The explorer's member page: chamber, country, roles, sites, keys over time, the latest events
//! of its feed, the flags on it and the findings about it.

use ledger_core::event::FlagTarget;
use ledger_core::ledger::Ledger;
use ledger_core::types::MemberId;

use crate::explorer::{findings_html, member_findings, verdict_words, MAX_MEMBER_EVENTS};
use crate::explorer_html::{esc, page, short, when};

/// The member page's HTML, or `None` for no such member.
pub fn member_page(ledger: &Ledger, id: &MemberId) -> Option<String> {
    let gov = ledger.governance().latest_state();
    let m = gov.members.get(id)?;
    let roles: Vec<String> = m
        .roles
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect();
    let sites: String = m
        .sites
        .iter()
        .map(|s| {
            format!(
                "<li>{} ({}, {}, {})</li>",
                esc(s.id.as_str()),
                esc(&s.name),
                esc(&s.region),
                s.country
            )
        })
        .collect();
    let keys: String = m
        .keys
        .iter()
        .map(|k| {
            let cut = gov.revoked.get(&k.key).map_or(String::new(), |r| {
                format!(
                    ", cut after seq {} by governance version {}",
                    r.last_valid_seq, r.version
                )
            });
            format!(
                "<li><code>{}</code> from seq {}{cut}</li>",
                short(&k.key),
                k.from_seq
            )
        })
        .collect();
    let body = format!(
        "<h1>{name} <code>{id}</code></h1>
<p>{chamber} chamber · {country} · {roles}</p>
<h2>Sites</h2><ul>{sites}</ul>
<h2>Keys over time</h2><ul>{keys}</ul>
<h2>Latest events of its feed</h2>{events}
<h2>Flags on it</h2>{flags}
<h2>Findings about it</h2>{findings}",
        name = esc(&m.name),
        id = esc(id.as_str()),
        chamber = format!("{:?}", m.chamber).to_lowercase(),
        country = m.country,
        roles = roles.join(", "),
        sites = if sites.is_empty() {
            "<li>none</li>".to_owned()
        } else {
            sites
        },
        events = events_html(ledger, id),
        flags = flags_html(ledger, id),
        findings = findings_html(&member_findings(ledger, id)),
    );
    Some(page(id.as_str(), &body).0)
}

fn events_html(ledger: &Ledger, id: &MemberId) -> String {
    let Some(feed) = ledger.feed(id) else {
        return "<p>No events yet.</p>".to_owned();
    };
    let mut out = format!(
        "<p class=\"muted\">{} events in all; the latest {} first.</p><table id=\"feed\"><tr><th>seq</th><th>time (UTC)</th><th>kind</th><th>verdict</th><th>event</th></tr>",
        feed.ids.len(),
        MAX_MEMBER_EVENTS.min(feed.ids.len())
    );
    for (i, e) in feed.ids.iter().enumerate().rev().take(MAX_MEMBER_EVENTS) {
        let Some(meta) = ledger.event(e) else {
            continue;
        };
        let (class, words) = verdict_words(meta.verdict);
        out.push_str(&format!(
            "<tr class=\"{class}\" data-event=\"{e}\"><td>{seq}</td><td>{t}</td><td>{k}</td><td>{w}</td><td><code>{s}</code></td></tr>",
            seq = i + 1,
            t = when(meta.time_ms),
            k = meta.kind.name(),
            w = esc(&words),
            s = short(e),
        ));
    }
    out.push_str("</table>");
    out
}

fn flags_html(ledger: &Ledger, id: &MemberId) -> String {
    let items: String = ledger
        .notes()
        .flags
        .iter()
        .filter(|(_, f)| match &f.target {
            FlagTarget::Member(m) | FlagTarget::Site { member: m, .. } => m == id,
            _ => false,
        })
        .map(|(e, f)| {
            let by = ledger
                .event(e)
                .map(|m| m.author.to_string())
                .unwrap_or_default();
            format!(
                "<div class=\"finding\">{code:?} by {by}: {text}</div>",
                code = f.code,
                by = esc(&by),
                text = esc(&f.text)
            )
        })
        .collect();
    if items.is_empty() {
        "<p>None.</p>".to_owned()
    } else {
        items
    }
}
