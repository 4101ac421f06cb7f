//! A watch across a crash: `custody watch` follows a node, the node is killed (SIGKILL) and
//! restarted while events keep coming, and the watch prints every event exactly once.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use custody_tests::{cli_binary, node_binary, NodeSpec, TestNode};

const LINE_DEADLINE: Duration = Duration::from_secs(60);

fn register(n: u64) -> Value {
    json!({"kind": "register", "site": "jwaneng", "carats": 100 + n, "extracted_on": "2026-03-03"})
}

#[test]
fn a_watch_sees_every_event_exactly_once_across_a_node_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("mine-bw".into()),
        ..NodeSpec::default()
    };
    let mut node = TestNode::start(&node_binary!(), dir.path(), &spec);
    // Pin the HTTP port, so the restarted node answers where the watch reconnects.
    let config = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let pinned = text.replace("127.0.0.1:0", &node.http);
    std::fs::write(&config, pinned).expect("config");

    let before: Vec<String> = (0..3).map(|n| node.act_ok(&register(n))).collect();
    // One event before the crash is watched live, two more, then four after the restart.
    let total = 7;
    let mut watch = Command::new(cli_binary!())
        .args([
            "--node",
            &format!("http://{}", node.http),
            "--json",
            "watch",
        ])
        // After the third event (log position 2): what comes next, however soon.
        .args([
            "--member",
            "mine-bw",
            "--after",
            "2.0",
            "--max",
            &total.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = || {
        rx.recv_timeout(LINE_DEADLINE)
            .expect("a watched event in time")
    };
    // The events before the cursor are not replayed.
    let first = node.act_ok(&register(3));
    let mut seen: Vec<String> = vec![next()["data"]["event"].as_str().expect("event").to_owned()];
    assert_eq!(seen, vec![first.clone()]);
    let mut expected = vec![first];
    // Two more, then a crash (SIGKILL) and a restart; four more, at least the first of them
    // before the watch has reconnected.
    for n in 4..6 {
        expected.push(node.act_ok(&register(n)));
    }
    node.kill();
    node.restart();
    for n in 6..10 {
        expected.push(node.act_ok(&register(n)));
    }
    while seen.len() < expected.len() {
        seen.push(next()["data"]["event"].as_str().expect("event").to_owned());
    }
    assert_eq!(seen, expected, "every event once, in log order");
    // The watch stops after --max items, having printed nothing more.
    let status = custody_tests::wait_for("the watch to stop", LINE_DEADLINE, || {
        watch.try_wait().ok().flatten()
    });
    assert!(status.success());
    assert!(rx.try_recv().is_err(), "nothing printed twice");
    assert!(!before.iter().any(|e| seen.contains(e)));
}
