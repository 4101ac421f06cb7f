//! The explorer in a real headless Chromium, against the demo's network of real nodes: the
//! exported mix's page (shares, graph, void attempts, the flagged site), search by certificate
//! number, a member's page, and no request leaving the node. Screenshots are written to
//! `target/explorer-*.png`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use custody_tests::cli_binary;
use custody_tests::demo::demo;

/// How long one browser run may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(60);

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("Chromium is needed for the explorer's browser tests: install Debian's chromium package (.ci/run does)")
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/explorer");
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

/// Loads `url` in headless Chromium with `extra` flags; returns stdout (the DOM with
/// `--dump-dom`). A fresh profile each time; no background networking.
fn browse(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let child = cmd.spawn().expect("start chromium");
    let out = wait_with_deadline(child, BROWSER_DEADLINE);
    String::from_utf8_lossy(&out).into_owned()
}

fn wait_with_deadline(mut child: Child, deadline: Duration) -> Vec<u8> {
    use std::io::Read;
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let until = std::time::Instant::now() + deadline;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("chromium took longer than {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader")
}

/// The DOM of `url` once loaded (a second try if the browser gave up before the page ended).
fn dom(url: &str) -> String {
    let first = browse(url, &["--dump-dom".to_owned()]);
    if first.contains("</html>") {
        return first;
    }
    browse(url, &["--dump-dom".to_owned()])
}

fn screenshot(url: &str, name: &str, size: &str) -> PathBuf {
    let path = out_dir().join(name);
    let _ = std::fs::remove_file(&path);
    browse(
        url,
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={size}"),
            "--hide-scrollbars".to_owned(),
        ],
    );
    assert!(path.exists(), "no screenshot at {}", path.display());
    path
}

/// Every URL requested on behalf of the page at `url` (its network isolation key is the
/// node's site), from the browser's network log. The browser's own background requests (time,
/// accounts) have other keys and are not the page's.
fn requested(url: &str) -> Vec<String> {
    let log = tempfile::NamedTempFile::new().expect("net log");
    browse(
        url,
        &[
            "--dump-dom".to_owned(),
            format!("--log-net-log={}", log.path().display()),
        ],
    );
    let text = std::fs::read_to_string(log.path()).expect("read the net log");
    let json: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("the net log is JSON");
    let start_job = json["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    let site = url.split('/').take(3).collect::<Vec<_>>().join("/");
    let site = site
        .rsplit_once(':')
        .map_or(site.clone(), |(s, _)| s.to_owned());
    let mut urls: Vec<String> = json["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == start_job)
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.starts_with(&site))
        })
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_owned))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_explorer_shows_a_parcels_provenance_in_a_real_browser() {
    let demo = demo(&cli_binary!());
    let page = format!("{}/parcel/{}", demo.url, demo.mix);
    let html = dom(&page);
    // Origin shares of what was weighed: 999.50 ct of Jwaneng, 600.00 ct of Marange.
    for share in ["62.49%", "37.51%"] {
        assert!(
            html.contains(share),
            "no {share} on the parcel page:\n{html}"
        );
    }
    // Seven boxes (the two mines' parcels at the mine and the sorter, the mix at the sorter,
    // exporter and importer) and six arrows (four handovers, two transforms).
    assert!(
        html.contains(r#"data-nodes="7" data-edges="6""#),
        "graph counts"
    );
    assert_eq!(count(&html, r#"class="node"#), 7);
    assert_eq!(count(&html, r#"data-kind="handover""#), 4);
    assert_eq!(count(&html, r#"data-kind="transform""#), 2);
    // Both void attempts, with their reasons.
    assert_eq!(count(&html, r#"<tr class="void""#), 2);
    assert!(html.contains("VOID (uncertified)") && html.contains("VOID (conflict)"));
    // The flagged site: the Marange parcel's boxes are marked.
    let flagged: Vec<&str> = html.split(r#"class="node flagged""#).skip(1).collect();
    assert!(
        flagged.iter().any(|n| n.contains("held by mine-zw")),
        "the flagged Marange site is not highlighted"
    );
    // Search by certificate number lands on the parcel's page.
    let found = dom(&format!("{}/search?q=BW-2026-0042", demo.url));
    assert!(
        found.contains(&format!("<span class=\"muted\">{}</span>", demo.mix)),
        "search by number"
    );
    // A member's page lists its feed.
    let member = dom(&format!("{}/member/exporter-bw", demo.url));
    assert!(member.contains(r#"<table id="feed">"#));
    // Its feed: the receipt, the export, and the two attempts signed behind its node's back.
    assert!(member.contains("4 events in all"), "exporter-bw's feed");
    assert_eq!(
        count(&member, "data-event="),
        4,
        "exporter-bw's events are listed"
    );
    assert_eq!(count(&member, r#"<tr class="void""#), 2);
    // Nothing is fetched from anywhere but the node.
    let host = demo.url.trim_start_matches("http://");
    let urls = requested(&page);
    assert!(!urls.is_empty(), "the net log recorded the page load");
    assert!(
        urls.contains(&page),
        "the page itself is among them: {urls:?}"
    );
    let outside: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&format!("http://{host}/")))
        .collect();
    assert!(outside.is_empty(), "requests outside the node: {outside:?}");
    // Screenshots, desktop and phone, to look at.
    screenshot(&page, "explorer-parcel.png", "1280,1500");
    screenshot(&page, "explorer-parcel-phone.png", "390,1400");
}
