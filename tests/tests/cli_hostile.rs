//! The `custody` CLI against a hostile HTTP node written here: a `--genesis` pin cannot be bypassed by serving one genesis to the check and another to the replay.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use custody_tests::{cli_binary, wait_for};
use ledger_core::codec;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use ledger_core::export::write_record;
use ledger_core::governance::network_id;
use ledger_core::rules::parcel_id;
use ledger_core::types::{Chamber, Genesis, Role};

/// Most connections the hostile node answers before it stops (the CLI needs two or three).
const MAX_CONNECTIONS: usize = 16;
/// Longest request head the hostile node reads.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long one connection, and one run of the CLI, may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// What the hostile node serves: `genesis[0]` to the first `/v1/genesis` request, `genesis[1]`
/// to every later one, and `export` at `/v1/export`.
#[derive(Clone)]
struct Script {
    genesis: [Arc<Vec<u8>>; 2],
    export: Arc<Vec<u8>>,
    genesis_requests: Arc<AtomicUsize>,
}

/// A hostile node on loopback, answering a bounded number of connections on a thread.
struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    fn start(script: Script) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                // A connection that misbehaves is dropped; the CLI's run decides the test.
                let _ = answer(stream, &script);
            }
        });
        Hostile {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept; the thread sees `stop` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head and answers it, closing the connection.
fn answer(mut stream: TcpStream, script: &Script) -> std::io::Result<()> {
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body): (&str, &[u8]) = match path {
        "/v1/genesis" => {
            let n = script.genesis_requests.fetch_add(1, Ordering::SeqCst);
            ("200 OK", &script.genesis[n.min(1)])
        }
        "/v1/export" => ("200 OK", &script.export),
        _ => (
            "404 Not Found",
            br#"{"code": "not-found", "message": "no such endpoint"}"#,
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// Network B: another genesis, whose mine registered one parcel. Returns its genesis, its
/// export, and the parcel.
fn other_network() -> (Genesis, Vec<u8>, String) {
    let b = DevNetwork::new().member(
        "mine-bw",
        Chamber::Industry,
        "BW",
        &[Role::Mine],
        &["jwaneng"],
    );
    let mut mine = b.writer("mine-bw").expect("member");
    let reg = mine.append(
        Body::Register(Register {
            site: "jwaneng".parse().expect("site"),
            carats: 5000,
            stones: 2,
            value_cents: None,
            seal: String::new(),
            extracted_on: "2026-01-01".parse().expect("date"),
        }),
        1_780_000_000_000,
    );
    let mut export = Vec::new();
    write_record(&mut export, &reg.bytes).expect("record");
    (b.genesis(), export, parcel_id(&reg.id, 0).to_hex())
}

/// A finished run of the CLI.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Kills the CLI if the test gives up on it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs the CLI with `args`, within the deadline; its output goes to files in `dir`.
fn custody(dir: &Path, args: &[&str]) -> Run {
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    let mut child = Running(
        Command::new(cli_binary!())
            .args(args)
            .env_remove("CUSTODY_TOKEN")
            .env_remove("CUSTODY_NODE")
            .stdout(Stdio::from(
                std::fs::File::create(&out).expect("stdout file"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(&err).expect("stderr file"),
            ))
            .spawn()
            .expect("run custody"),
    );
    let status = wait_for("the CLI to finish", DEADLINE, || {
        child.0.try_wait().expect("wait")
    });
    Run {
        code: status.code(),
        stdout: std::fs::read_to_string(out).expect("stdout"),
        stderr: std::fs::read_to_string(err).expect("stderr"),
    }
}

/// A hostile node serving `first` to the first genesis request and `then` afterwards, with
/// network B's export; and the pinned genesis file (network A's).
fn setup(dir: &Path, first: &Genesis, then: &Genesis, export: Vec<u8>) -> (Hostile, String) {
    let pinned = dir.join("pinned-genesis.bin");
    std::fs::write(&pinned, codec::encode(&DevNetwork::standard().genesis())).expect("write");
    let node = Hostile::start(Script {
        genesis: [
            Arc::new(codec::encode(first)),
            Arc::new(codec::encode(then)),
        ],
        export: Arc::new(export),
        genesis_requests: Arc::new(AtomicUsize::new(0)),
    });
    (node, pinned.display().to_string())
}

#[test]
fn a_node_serving_the_pinned_genesis_first_and_another_next_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = DevNetwork::standard().genesis();
    let (b, export, parcel) = other_network();
    let (a_id, b_id) = (network_id(&a).to_hex(), network_id(&b).to_hex());

    // replay: never intact under B, and the mismatch is named.
    let (node, pinned) = setup(dir.path(), &a, &b, export.clone());
    let run = custody(
        dir.path(),
        &[
            "--node",
            &node.url(),
            "--json",
            "replay",
            "--genesis",
            &pinned,
        ],
    );
    drop(node);
    assert_eq!(run.code, Some(1), "{run:?}");
    let summary: Value = serde_json::from_str(&run.stdout).expect("a JSON summary");
    assert_eq!(summary["network"], a_id.as_str(), "{summary}");
    assert_eq!(summary["intact"], false, "{summary}");
    assert_eq!(summary["first_failure"]["reason"], "wrong-network");
    let detail = summary["first_failure"]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(&a_id) && detail.contains(&b_id),
        "the failure names both networks: {detail}"
    );

    // audit: refused, and B's parcel is never reported.
    let (node, pinned) = setup(dir.path(), &a, &b, export);
    let run = custody(
        dir.path(),
        &[
            "--node",
            &node.url(),
            "audit",
            "parcel",
            &parcel,
            "--full",
            "--genesis",
            &pinned,
        ],
    );
    drop(node);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("not intact") && run.stdout.contains("wrong-network"),
        "{run:?}"
    );
    assert!(!run.stdout.contains(&format!("parcel {parcel}")), "{run:?}");
}

#[test]
fn a_node_serving_another_genesis_first_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = DevNetwork::standard().genesis();
    let (b, export, _) = other_network();
    let (node, pinned) = setup(dir.path(), &b, &a, export);
    let run = custody(
        dir.path(),
        &[
            "--node",
            &node.url(),
            "--json",
            "replay",
            "--genesis",
            &pinned,
        ],
    );
    drop(node);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "runs network {}, not {}",
            network_id(&b),
            network_id(&a)
        )),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "nothing is reported: {run:?}");
}
