//! Hostile HTTP clients: idle and slow-header connections past the cap, exports nobody reads, and clients that hold up shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use custody_tests::{node_binary, register, wait_for, NodeSpec, TestNode};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use ledger_core::export::ExportReader;
use ledger_core::ledger::Limits;
use ledger_core::store::Store;

const DEADLINE: Duration = Duration::from_secs(30);
/// Events in the log of the export tests: about 10 MB, far more than loopback socket buffers hold
/// for a client that reads nothing, so an export to such a client stalls.
const BIG_LOG_EVENTS: u64 = 8_000;
/// The node's `MAX_CONCURRENT_EXPORTS`.
const EXPORTS: usize = custody_node::api::MAX_CONCURRENT_EXPORTS;

/// A registration carrying the longest seal allowed, so that the log is large in bytes.
fn fat_register(i: u64) -> Body {
    Body::Register(Register {
        site: "marange".parse().expect("site"),
        carats: 100 + i,
        stones: 1,
        value_cents: None,
        seal: "s".repeat(1000),
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

/// A store of [`BIG_LOG_EVENTS`] events, built once per test binary; returns its directory.
fn big_store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep().join("store");
        let dev = DevNetwork::standard();
        let mut store =
            Store::open_or_create(&dir, &dev.genesis(), Limits::default()).expect("store");
        let mut w = dev.writer("mine-zw").expect("member");
        let events: Vec<Vec<u8>> = (0..BIG_LOG_EVENTS)
            .map(|i| w.append(fat_register(i), 1_780_000_000_000 + i).bytes)
            .collect();
        for group in events.chunks(4096) {
            for r in store.append_batch(group).expect("append") {
                r.expect("stored");
            }
        }
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Starts a node in `dir` on a copy of the big store, with these `[limits]`.
fn start_big(dir: &Path, spec: &NodeSpec, limits: &[(&str, u64)]) -> TestNode {
    copy_dir(big_store(), &dir.join("data/store"));
    TestNode::start_with_limits(&node_binary!(), dir, spec, limits)
}

fn connect(node: &TestNode) -> TcpStream {
    TcpStream::connect(&node.http).expect("connect")
}

/// Reads (and drops) whatever arrives until the node closes the connection (end of stream or a
/// reset): true if it did within `within`.
fn closed_by_node(s: &mut TcpStream, within: Duration) -> bool {
    let until = Instant::now() + within;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Sends a GET and, without taking anything from the socket, waits for the status line.
fn request_head(node: &TestNode, path: &str) -> (TcpStream, String) {
    let mut s = connect(node);
    write!(s, "GET {path} HTTP/1.1\r\nHost: node\r\n\r\n").expect("send");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut head = [0u8; 12];
    let n = s.peek(&mut head).expect("a status line");
    (s, String::from_utf8_lossy(&head[..n]).into_owned())
}

/// Reads a whole HTTP/1.1 response (Connection: close) and returns its head and body.
fn whole_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let _ = s.read_to_end(&mut all);
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(all.len(), |p| p + 4);
    let body = all.split_off(split);
    (String::from_utf8_lossy(&all).into_owned(), body)
}

/// Number of export records in `bytes`, which must be whole records.
fn records(bytes: &[u8]) -> u64 {
    let mut n = 0;
    for r in ExportReader::new(bytes) {
        r.expect("a whole record");
        n += 1;
    }
    n
}

/// More idle connections than the cap: the excess is answered 503 at once, the API still answers
/// (a status and an authenticated POST), and the node closes idle connections, idle keep-alive
/// connections and a client trickling its header one byte at a time.
#[test]
fn idle_and_slow_connections_past_the_cap_are_shed() {
    const CAP: u64 = 8;
    const IDLE: u64 = 3;
    /// Longer than the idle timeout plus a margin, so that it cannot be what closes the idle ones.
    const HEADER: u64 = 12;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("mine-bw".into()),
        ..NodeSpec::default()
    };
    let limits = [
        ("http_max_connections", CAP),
        ("http_idle_timeout_secs", IDLE),
        ("http_header_timeout_secs", HEADER),
    ];
    let node = TestNode::start_with_limits(&node_binary!(), dir.path(), &spec, &limits);
    let mut idle: Vec<TcpStream> = (0..CAP).map(|_| connect(&node)).collect();
    // One past the cap: answered at once, with a message, while the idle ones hold every slot.
    let (mut extra, _) = request_head(&node, "/v1/status");
    let (head, body) = whole_response(&mut extra);
    assert!(head.starts_with("HTTP/1.1 503"), "over the cap: {head}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(v["code"], "busy", "{v}");
    // Many more idle ones than the cap: none of them keeps the API from answering.
    idle.extend((0..4 * CAP).map(|_| connect(&node)));
    let answered = Instant::now();
    wait_for("/v1/status past the idle connections", DEADLINE, || {
        node.try_get("/v1/status").ok().filter(|r| r.status == 200)
    });
    let r = wait_for("an authenticated POST past them", DEADLINE, || {
        node.try_act(&register("jwaneng", 100))
            .ok()
            .filter(|r| r.status != 503)
    });
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        answered.elapsed() < Duration::from_secs(IDLE + 10),
        "the API answered only after {:?}",
        answered.elapsed()
    );
    // Closed by the idle timeout, well before the header timeout.
    let by = Duration::from_secs(HEADER - 1);
    for (i, s) in idle.iter_mut().enumerate() {
        let left = by.saturating_sub(answered.elapsed());
        assert!(closed_by_node(s, left), "idle connection {i} is still open");
    }
    // A keep-alive connection after a whole request is idle too.
    let (mut kept, head) = request_head(&node, "/v1/status");
    let asked = Instant::now();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        closed_by_node(&mut kept, by),
        "an idle keep-alive connection is still open after {:?}",
        asked.elapsed()
    );
    slow_header_is_cut(&node, IDLE, HEADER);
}

/// A header trickled one byte at a time is never idle, but the header timeout still closes it.
fn slow_header_is_cut(node: &TestNode, idle: u64, header: u64) {
    let mut s = connect(node);
    let mut writer = s.try_clone().expect("clone");
    let started = Instant::now();
    let trickle = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET /v1/status HTTP/1.1\r\nX-Slow: ");
        // The attack's own pace: a byte every 250 ms, for at most a minute.
        for _ in 0..240 {
            if writer.write_all(b"a").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    assert!(
        closed_by_node(&mut s, Duration::from_secs(header + 10)),
        "a header trickled byte by byte is still being read after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(header) - Duration::from_millis(100),
        "the trickle was cut after {:?}, before the header timeout (the idle timeout is {idle} s)",
        started.elapsed()
    );
    let _ = s.shutdown(std::net::Shutdown::Both);
    trickle.join().expect("trickle thread");
}

/// Many clients ask for the export and never read: at most `MAX_CONCURRENT_EXPORTS` are served
/// (the rest get 503 `busy`), memory and threads stay bounded, the stalled ones are dropped, and a
/// normal export then completes with every event.
#[test]
fn exports_nobody_reads_stay_bounded() {
    const CLIENTS: usize = 64;
    /// Growth of resident memory allowed while they hang on (the old server buffered several
    /// megabytes per client, and a thread each).
    const RSS_GROWTH_KIB: u64 = 64 * 1024;
    const THREAD_GROWTH: u64 = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_big(
        dir.path(),
        &NodeSpec::default(),
        &[("http_write_timeout_secs", 3)],
    );
    let events = node.status()["events"].as_u64().expect("events");
    assert_eq!(events, BIG_LOG_EVENTS);
    // A normal export first, so that the baseline includes what one export costs.
    assert_eq!(records(&node.get("/v1/export").body), events);
    let (rss0, threads0) = (node.rss_kib(), node.threads());
    let mut hung: Vec<(TcpStream, String)> = (0..CLIENTS)
        .map(|_| request_head(&node, "/v1/export"))
        .collect();
    let served = hung
        .iter()
        .filter(|(_, h)| h.starts_with("HTTP/1.1 200"))
        .count();
    let (mut peak_rss, mut peak_threads) = (node.rss_kib(), node.threads());
    let exported = wait_for("a normal export past the hung ones", DEADLINE, || {
        peak_rss = peak_rss.max(node.rss_kib());
        peak_threads = peak_threads.max(node.threads());
        node.try_get("/v1/export").ok().filter(|r| r.status == 200)
    });
    assert_eq!(records(&exported.body), events, "the export is complete");
    assert!(served <= EXPORTS, "{served} exports served at once");
    for (s, head) in hung
        .iter_mut()
        .filter(|(_, h)| !h.starts_with("HTTP/1.1 200"))
    {
        let (head2, body) = whole_response(s);
        assert!(head.starts_with("HTTP/1.1 503"), "{head2}");
        assert!(String::from_utf8_lossy(&body).contains("busy"), "{head2}");
    }
    assert!(
        peak_rss < rss0 + RSS_GROWTH_KIB,
        "RSS grew from {rss0} KiB to {peak_rss} KiB"
    );
    assert!(
        peak_threads <= threads0 + THREAD_GROWTH,
        "threads grew from {threads0} to {peak_threads}"
    );
}

/// Clients holding partial request headers and a client that never reads its export do not keep
/// SIGTERM from completing: the node exits within its shutdown deadline (plus a margin).
#[test]
fn slow_clients_do_not_hold_up_shutdown() {
    const SHUTDOWN: u64 = 2;
    const MARGIN: Duration = Duration::from_secs(8);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = start_big(
        dir.path(),
        &NodeSpec::default(),
        &[
            ("http_header_timeout_secs", 600),
            ("http_idle_timeout_secs", 600),
            ("http_write_timeout_secs", 600),
            ("http_shutdown_secs", SHUTDOWN),
        ],
    );
    let partial: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = connect(&node);
            s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\n")
                .expect("send");
            s
        })
        .collect();
    let (hung, head) = request_head(&node, "/v1/export");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let asked = Instant::now();
    let status = node.terminate();
    let took = asked.elapsed();
    assert!(status.success(), "{status}\n{}", node.log());
    assert!(
        took < Duration::from_secs(SHUTDOWN) + MARGIN,
        "SIGTERM took {took:?}"
    );
    drop((partial, hung));
}

/// An export holds exactly the events stored when it started, even when more are stored while it
/// is being read.
#[test]
fn export_is_a_snapshot_of_when_it_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("mine-bw".into()),
        ..NodeSpec::default()
    };
    let node = start_big(dir.path(), &spec, &[]);
    let events = node.status()["events"].as_u64().expect("events");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(DEADLINE))
        .build()
        .into();
    // The answer's head has arrived, so the export has started; its body is not read yet.
    let mut r = agent
        .get(&format!("http://{}/v1/export", node.http))
        .call()
        .expect("export");
    for i in 0..20 {
        node.act_ok(&register("jwaneng", 200 + i));
    }
    assert_eq!(node.status()["events"].as_u64(), Some(events + 20));
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .expect("body");
    assert_eq!(records(&body), events);
}
