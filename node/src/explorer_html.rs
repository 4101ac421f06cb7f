//! The explorer's HTML: escaping, number formats, and the page shell (inline CSS, no script, no
//! asset from anywhere but this node).

use axum::response::Html;

/// Text made safe for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first 12 hex characters of an id.
pub fn short(id: &impl std::fmt::Display) -> String {
    id.to_string().chars().take(12).collect()
}

/// Hundredths of a carat as decimal carats (`1590.00`).
pub fn carats(hundredths: u64) -> String {
    ledger_core::amount::Carats(hundredths).to_string()
}

/// A share in parts per billion as a percentage with two decimals (`62.49%`).
pub fn pct(units: u64) -> String {
    format!("{:.2}%", units as f64 / 10_000_000.0)
}

/// UNIX milliseconds as `YYYY-MM-DD HH:MM:SS`.
pub fn when(ms: u64) -> String {
    let date = ledger_core::types::Date::from_unix_ms(ms);
    let secs = (ms / 1000) % 86_400;
    format!(
        "{date} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

const CSS: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fafafa}
header{background:#263238;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
header a{color:#fff}
main{padding:1rem;max-width:72rem}
a:focus,button:focus,input:focus{outline:3px solid #ffab00}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}
tr.void{background:#ffebee}
.void-reason{color:#b71c1c;font-weight:600}
.bar{background:#eceff1;height:1.2rem;position:relative;margin:.2rem 0}
.bar span{background:#546e7a;display:block;height:100%}
.bar em{position:absolute;left:.4rem;top:0;font-style:normal;font-size:.85rem;font-weight:600;color:#fff;text-shadow:0 0 3px #000}
.finding{border-left:4px solid #d50000;padding:.3rem .6rem;background:#fff3f3;margin:.3rem 0}
.scroll{overflow-x:auto;border:1px solid #ddd;background:#fff}
code{background:#eceff1;padding:0 .2rem}
.muted{color:#555}
.muted,.finding,td{overflow-wrap:anywhere}
@media (max-width:40rem){main{padding:.5rem}th,td{font-size:.8rem}}
";

/// A whole page: the header with search and the sections, then `body`.
pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{t} · custody explorer</title><style>{CSS}</style></head>
<body><header><strong><a href="/">custody explorer</a></strong>
<nav><a href="/network">network</a> · <a href="/governance">governance</a> · <a href="/stats">statistics</a></nav>
<form action="/search" method="get" role="search"><label for="q">Search</label>
<input id="q" name="q" placeholder="parcel id, certificate number, member or site" size="40">
<button type="submit">Go</button></form></header>
<main>{body}</main></body></html>"#,
        t = esc(title)
    ))
}
