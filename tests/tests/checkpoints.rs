//! Checkpoints on real nodes: a witness node cosigns checkpoints of its replica as `Witness`
//! events, keeps them and serves them; what it serves verifies; a node without the duty cosigns
//! nothing.

use std::time::Duration;

use custody_tests::{node_binary, register, wait_for, NodeSpec, TestNode};
use ledger_core::checkpoint::{checkpoint_id, feeds_root, FeedHead};
use ledger_core::event::{Body, Checkpoint, Register};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// A small registration at Jwaneng, for events a test signs itself.
fn registration(carats: u64) -> Body {
    Body::Register(Register {
        site: "jwaneng".parse().expect("site"),
        carats,
        stones: 1,
        value_cents: None,
        seal: String::new(),
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

/// The checkpoint and heads of a `/v1/checkpoints/...` reply.
fn parse(v: &Value) -> (Checkpoint, Vec<FeedHead>) {
    let cp: Checkpoint = serde_json::from_value(v["checkpoint"].clone()).expect("checkpoint");
    let heads: Vec<FeedHead> = serde_json::from_value(v["heads"].clone()).expect("heads");
    (cp, heads)
}

/// The standard network's mine, signing registrations itself (a second apart, from
/// 2026-05-28) and submitting them to a node.
struct Mine {
    writer: ledger_core::writer::FeedWriter,
    signed: u64,
}

impl Mine {
    fn new() -> Mine {
        let dev = ledger_core::dev::DevNetwork::standard();
        Mine {
            writer: dev.writer("mine-bw").expect("member"),
            signed: 0,
        }
    }

    /// Submits `n` registrations to `node`; returns the last one's id.
    fn submit(&mut self, node: &TestNode, n: u64) -> String {
        let mut last = String::new();
        for _ in 0..n {
            self.signed += 1;
            let body = registration(10 + self.signed);
            let s = self
                .writer
                .append(body, 1_780_000_000_000 + self.signed * 1000);
            assert_eq!(node.submit(&s.bytes).status, 200);
            last = s.id.to_string();
        }
        last
    }
}

/// Waits until `node`'s newest checkpoint states event `last` as a feed head.
fn covers(node: &TestNode, last: &str) {
    wait_for("a checkpoint covering the last event", DEADLINE, || {
        let reply = node.get("/v1/checkpoints/latest");
        (reply.status == 200
            && parse(&reply.json())
                .1
                .iter()
                .any(|h| h.head.to_string() == last))
        .then_some(())
    })
}

/// A witness node (the monitor) checkpointing every second, and a mine's node dialling it.
fn monitor_and_mine(dir: &std::path::Path) -> (TestNode, TestNode) {
    let every_second = [("checkpoint_interval_secs", 1)];
    let start = |name: &str, member: &str, bootstrap: Vec<String>| {
        let spec = NodeSpec {
            member: Some(member.into()),
            bootstrap,
            sync_secs: 1,
            ..NodeSpec::default()
        };
        TestNode::start_with_limits(&node_binary!(), &dir.join(name), &spec, &every_second)
    };
    let monitor = start("monitor", "monitor", vec![]);
    let mine = start(
        "mine",
        "mine-bw",
        vec![monitor.p2p_addr().expect("address")],
    );
    (monitor, mine)
}

#[test]
fn a_witness_node_cosigns_checkpoints_of_its_replica_that_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (monitor, mine) = monitor_and_mine(dir.path());
    let mut last = String::new();
    for i in 0..3 {
        last = mine.act_ok(&register("jwaneng", 100 + i));
    }
    // A checkpoint that states the mine's feed with its third event.
    let (cp, heads, id) = wait_for("a checkpoint covering the mine's events", DEADLINE, || {
        let reply = monitor.get("/v1/checkpoints/latest");
        if reply.status != 200 {
            return None;
        }
        let v = reply.json();
        let (cp, heads) = parse(&v);
        let covered = heads
            .iter()
            .any(|h| h.author.as_str() == "mine-bw" && h.seq >= 3 && h.head.to_string() == last);
        covered.then(|| (cp, heads, v["id"].as_str().expect("id").to_owned()))
    });
    assert_eq!(cp.feeds_root, feeds_root(&heads), "the heads make the root");
    assert_eq!(cp.feeds as usize, heads.len());
    assert_eq!(checkpoint_id(&cp).to_string(), id);
    // Served by id too; an unknown id is 404, a malformed one 400.
    let again = monitor.get_json(&format!("/v1/checkpoints/{id}"));
    assert_eq!(parse(&again).0, cp);
    let mut other = cp.clone();
    other.time_ms += 1;
    assert_eq!(
        monitor
            .get(&format!("/v1/checkpoints/{}", checkpoint_id(&other)))
            .status,
        404
    );
    assert_eq!(monitor.get("/v1/checkpoints/not-an-id").status, 400);
    // The cosignature is a witness event in the monitor's feed, carrying that checkpoint.
    let feed = monitor.get_json("/v1/feeds/monitor?limit=1000");
    let witnessed = feed["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "witness")
        .any(|e| {
            serde_json::from_value::<Checkpoint>(e["body"]["witness"]["checkpoint"].clone())
                .is_ok_and(|c| c == cp)
        });
    assert!(witnessed, "{feed}");
    // The explorer's network page shows the newest checkpoint and who cosigned it (a newer one
    // may have come since: any kept one is shown with its cosigner).
    let page = String::from_utf8_lossy(&monitor.get("/network").body).into_owned();
    assert!(
        page.contains("<h2>Newest checkpoint</h2><p><a href=\"/v1/checkpoints/"),
        "{page}"
    );
    assert!(page.contains("cosigned by monitor"), "{page}");
    // The mine's node has no witness duty and cosigns nothing, but it keeps the checkpoints the
    // witness cosigned that its replica makes too (to serve bundles of them).
    wait_for("the mine's node keeping the checkpoint", DEADLINE, || {
        (mine.get(&format!("/v1/checkpoints/{id}")).status == 200).then_some(())
    });
    // Operators see it in the metrics.
    let cosigned = |node: &TestNode| -> u64 {
        let text = String::from_utf8(node.get("/metrics").body).expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("custody_checkpoints_total{result=\"cosigned\"} "))
            .and_then(|n| n.trim().parse().ok())
            .expect("the metric")
    };
    assert!(cosigned(&monitor) >= 1);
    assert_eq!(cosigned(&mine), 0);
}

/// The checkpoints a witness cosigned: those its `Witness` events carry, oldest first.
fn cosigned(node: &TestNode) -> Vec<Checkpoint> {
    let reply = node.get("/v1/feeds/monitor?limit=1000");
    if reply.status == 404 {
        return Vec::new(); // no event of the monitor yet
    }
    let feed = reply.json();
    let mut out: Vec<Checkpoint> = feed["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "witness")
        .map(|e| serde_json::from_value(e["body"]["witness"]["checkpoint"].clone()).expect("cp"))
        .collect();
    out.sort_by_key(|c| c.time_ms);
    out
}

#[test]
fn a_witness_killed_at_random_points_never_cosigns_two_inconsistent_views() {
    use ledger_core::dev::DevNetwork;
    use ledger_core::merkle::verify_consistency;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = NodeSpec {
        member: Some("monitor".into()),
        sync_secs: 1,
        ..NodeSpec::default()
    };
    let mut node = TestNode::start_with_limits(
        &node_binary!(),
        &dir.path().join("monitor"),
        &spec,
        &[("checkpoint_interval_secs", 1)],
    );
    let dev = DevNetwork::standard();
    let mut mine = dev.writer("mine-bw").expect("member");
    let mut seed = 0x5eed_u64;
    let cycles = std::env::var("CUSTODY_WITNESS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4u32);
    for cycle in 0..cycles {
        let before = cosigned(&node).len();
        for i in 0..3u64 {
            let body = registration(10 + i);
            let s = mine.append(body, 1_780_000_000_000 + u64::from(cycle) * 100 + i);
            assert_eq!(node.submit(&s.bytes).status, 200);
        }
        wait_for("a new cosigned checkpoint", DEADLINE, || {
            (cosigned(&node).len() > before).then_some(())
        });
        // Then SIGKILL at a random point of the next second (the next cosign may be under way).
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(seed >> 54));
        node.kill();
        node.restart();
    }
    let before = cosigned(&node).len();
    wait_for(
        "a cosigned checkpoint after the last restart",
        DEADLINE,
        || (cosigned(&node).len() > before).then_some(()),
    );
    // Every two consecutive cosigned checkpoints: each feed of the older one is extended by the
    // newer one, proven by the node's consistency proofs.
    let all = cosigned(&node);
    let heads = |cp: &Checkpoint| -> Vec<FeedHead> {
        parse(&node.get_json(&format!("/v1/checkpoints/{}", checkpoint_id(cp)))).1
    };
    for pair in all.windows(2) {
        let (old, new) = (heads(&pair[0]), heads(&pair[1]));
        for o in &old {
            let n = new
                .iter()
                .find(|n| n.author == o.author)
                .expect("feed kept");
            assert!(n.seq >= o.seq, "{} rolled back", o.author);
            let proof = node.get_json(&format!(
                "/v1/feeds/{}/consistency?from={}&to={}",
                o.author, o.seq, n.seq
            ));
            let path: Vec<ledger_core::bytes::Digest> =
                serde_json::from_value(proof["proof"].clone()).expect("proof");
            assert!(verify_consistency(o.seq, n.seq, &o.root, &n.root, &path));
        }
    }
    assert!(all.len() as u32 > cycles, "{} cosigned", all.len());
}

/// Runs `custody checkpoint` against `node` with `state`; returns (exit code, stdout, stderr).
fn custody_checkpoint(node: &TestNode, state: &std::path::Path) -> (i32, String, String) {
    let url = format!("http://{}", node.http);
    let state = state.to_str().expect("path");
    custody(&["--node", &url, "checkpoint", "--state", state])
}

#[test]
fn a_node_restored_from_an_old_backup_is_refused_by_a_client_that_saw_newer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("monitor");
    let spec = NodeSpec {
        member: Some("monitor".into()),
        sync_secs: 1,
        ..NodeSpec::default()
    };
    let limits = [("checkpoint_interval_secs", 1)];
    let mut node = TestNode::start_with_limits(&node_binary!(), &home, &spec, &limits);
    let mut mine = Mine::new();
    let last = mine.submit(&node, 3);
    covers(&node, &last);
    let early_parcel = custody_tests::registered_parcel(&last);
    // The operator's backup, taken with the node stopped.
    node.kill();
    let backup = dir.path().join("backup");
    let copied = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&home)
        .arg(&backup)
        .status()
        .expect("cp");
    assert!(copied.success());
    node.restart();
    let last = mine.submit(&node, 3);
    covers(&node, &last);
    // An auditor's client sees the newer checkpoint, and then the same again: fine.
    let state = dir.path().join("client-state.json");
    let (code, out, err) = custody_checkpoint(&node, &state);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = custody_checkpoint(&node, &state);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("extends"), "{out}");
    // The node comes back from the old backup and serves (and cosigns) an older view.
    node.kill();
    std::fs::remove_dir_all(&home).expect("remove");
    std::fs::rename(&backup, &home).expect("restore");
    node.restart();
    // At once it serves the old checkpoint it kept: older than the one seen, refused.
    let (code, out, err) = custody_checkpoint(&node, &state);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("rollback refused"), "{err}");
    // Then it cosigns a new checkpoint of its old replica, dated now: the mine's feed is shorter
    // than the client saw, refused and named.
    let seen: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("state JSON");
    let seen_time = seen["networks"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|n| n["checkpoint"]["time_ms"].as_u64())
        .expect("remembered time");
    wait_for(
        "a fresh checkpoint from the restored node",
        DEADLINE,
        || {
            let reply = node.get("/v1/checkpoints/latest");
            (reply.status == 200 && parse(&reply.json()).0.time_ms > seen_time).then_some(())
        },
    );
    let (code, out, err) = custody_checkpoint(&node, &state);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("rollback refused") && err.contains("mine-bw"),
        "{err}"
    );
    // An auditor's bundle from it is refused the same way, though the bundle itself verifies.
    let (code, out, err) = custody(&[
        "--node",
        &format!("http://{}", node.http),
        "audit",
        "parcel",
        &early_parcel,
        "--state",
        state.to_str().expect("path"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("rollback refused"), "{err}");
    // The remembered checkpoint is still the newer one.
    let after: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("state JSON");
    assert_eq!(after, seen);
}

/// Runs the CLI with `args`; returns (exit code, stdout, stderr).
fn custody(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(custody_tests::cli_binary!())
        .args(args)
        .env_remove("CUSTODY_NODE")
        .output()
        .expect("run custody");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_auditor_verifies_a_parcel_from_its_bundle_online_and_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (monitor, mine) = monitor_and_mine(dir.path());
    let registered = mine.act_ok(&register("jwaneng", 1200));
    let parcel = custody_tests::registered_parcel(&registered);
    mine.act_ok(&register("jwaneng", 700));
    let sent = mine.act_ok(&serde_json::json!({
        "kind": "dispatch", "parcel": parcel, "to": "sorter-bw"
    }));
    covers(&monitor, &sent);
    let node = format!("http://{}", monitor.http);
    let state = dir.path().join("state.json");
    let file = dir.path().join("parcel.bundle");
    let (state_arg, file_arg) = (state.to_str().expect("path"), file.to_str().expect("path"));
    let (code, out, err) = custody(&[
        "--node", &node, "--json", "audit", "parcel", &parcel, "--state", state_arg, "--bundle",
        file_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let bundled: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        bundled["proof"]["cosigners"],
        serde_json::json!(["monitor"])
    );
    assert_eq!(bundled["state"], "in-transit", "{bundled}");
    // The full replay says the same of the parcel.
    let (code, out, err) = custody(&[
        "--node", &node, "--json", "audit", "parcel", &parcel, "--full",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let full: Value = serde_json::from_str(&out).expect("json");
    for field in [
        "state",
        "custodian",
        "origin",
        "ancestry",
        "history",
        "governance",
    ] {
        assert_eq!(bundled[field], full[field], "{field}");
    }
    // Offline, with the genesis only.
    let genesis = dir.path().join("genesis.bin");
    std::fs::write(&genesis, monitor.get("/v1/genesis").body).expect("write genesis");
    let genesis_arg = genesis.to_str().expect("path");
    let (code, out, err) = custody(&["verify-bundle", file_arg, "--genesis", genesis_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cosigned by monitor"), "{out}");
    // Two witnesses required, one cosigned: refused with the reason.
    let (code, out, err) = custody(&[
        "verify-bundle",
        file_arg,
        "--genesis",
        genesis_arg,
        "--witnesses",
        "2",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("too-few-cosignatures"), "{err}");
    // A byte changed in the file: refused.
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&file, &bytes).expect("write");
    let (code, out, err) = custody(&["verify-bundle", file_arg, "--genesis", genesis_arg]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("bundle refused ("), "{err}");
    // The mine's node keeps the checkpoints the witness cosigned, and serves the bundle too (to
    // another auditor: it may not keep the newest one the first auditor saw yet).
    covers(&mine, &sent);
    let other_state = dir.path().join("other-state.json");
    let state_arg = other_state.to_str().expect("path");
    let (code, out, err) = custody(&[
        "--node",
        &format!("http://{}", mine.http),
        "--json",
        "audit",
        "parcel",
        &parcel,
        "--state",
        state_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let from_mine: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(from_mine["history"], full["history"]);
}

/// The standard network with a second monitor: two witnesses.
fn two_witnesses() -> ledger_core::dev::DevNetwork {
    use ledger_core::types::{Chamber, Role};
    ledger_core::dev::DevNetwork::standard().member(
        "monitor-2",
        Chamber::CivilSociety,
        "ZA",
        &[Role::Monitor],
        &[],
    )
}

/// A JSON audit from `node` with `k` witnesses, as (exit code, JSON or stderr).
fn audit_json(node: &TestNode, parcel: &str, state: &std::path::Path, k: &str) -> (i32, String) {
    let (code, out, err) = custody(&[
        "--node",
        &format!("http://{}", node.http),
        "--json",
        "audit",
        "parcel",
        parcel,
        "--witnesses",
        k,
        "--state",
        state.to_str().expect("path"),
    ]);
    (code, if code == 0 { out } else { err })
}

#[test]
fn a_split_view_is_refused_or_reported_to_auditors_that_require_two_witnesses() {
    use ledger_core::event::{Dispatch, ParcelRef};
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = two_witnesses();
    let every_second = [("checkpoint_interval_secs", 1)];
    let start = |name: &str, member: Option<&str>, bootstrap: Vec<String>| {
        TestNode::start_with_limits(
            &node_binary!(),
            &dir.path().join(name),
            &NodeSpec {
                member: member.map(str::to_owned),
                bootstrap,
                sync_secs: 1,
                genesis: Some(dev.genesis()),
            },
            &every_second,
        )
    };
    // Two sides that do not talk: a witness and the node an auditor asks, on each.
    let w1 = start("w1", Some("monitor"), vec![]);
    let w2 = start("w2", Some("monitor-2"), vec![]);
    let na = start("na", None, vec![w1.p2p_addr().expect("addr")]);
    let nb = start("nb", None, vec![w2.p2p_addr().expect("addr")]);
    // The mine registers a parcel, then signs two dispatches of it for seq 2, one per side.
    let mut mine = dev.writer("mine-bw").expect("member");
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let reg = mine.append(registration(500), t0);
    let parcel = ledger_core::rules::parcel_id(&reg.id, 0);
    let dispatch = |to: &str| {
        Body::Dispatch(Dispatch {
            parcel: ParcelRef {
                parcel,
                head: reg.id,
            },
            to: to.parse().expect("member"),
            certificate: None,
            seal: String::new(),
            deadline_ms: None,
        })
    };
    let mut fork = ledger_core::writer::FeedWriter::resume(
        dev.network(),
        "mine-bw".parse().expect("member"),
        ledger_core::dev::dev_key("mine-bw"),
        &[reg.id],
        0,
        t0,
    );
    let a = mine.append(dispatch("sorter-bw"), t0 + 1);
    let b = fork.append(dispatch("exporter-bw"), t0 + 1);
    for (node, branch) in [(&na, &a), (&nb, &b)] {
        assert_eq!(node.submit(&reg.bytes).status, 200);
        assert_eq!(node.submit(&branch.bytes).status, 200);
    }
    // The auditors' nodes keep their side's witnessed checkpoint of the branch.
    covers(&na, &a.id.to_string());
    covers(&nb, &b.id.to_string());
    let parcel = parcel.to_hex();
    // With one witness each auditor sees a different story: that is what one witness allows.
    let (sa, sb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (code, out) = audit_json(&na, &parcel, &sa, "1");
    assert_eq!(code, 0, "{out}");
    let seen_a: Value = serde_json::from_str(&out).expect("json");
    let (code, out) = audit_json(&nb, &parcel, &sb, "1");
    assert_eq!(code, 0, "{out}");
    let seen_b: Value = serde_json::from_str(&out).expect("json");
    assert_ne!(seen_a["history"], seen_b["history"]);
    // Requiring both witnesses, neither auditor gets a view: no checkpoint has both.
    for (node, state) in [(&na, &sa), (&nb, &sb)] {
        let (code, err) = audit_json(node, &parcel, state, "2");
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("cosign"), "{err}");
    }
    // Monitor-2's cosignatures carried to side A (anyone can: they are signed events). A's node
    // cannot prove the fork from them, but lists the checkpoints they cosign as ones its log
    // does not make: the mark of a split view, for a monitor to chase.
    assert_eq!(
        na.get_json("/v1/checkpoints/unmatched")["unmatched"],
        serde_json::json!([])
    );
    let theirs = nb.get_json("/v1/feeds/monitor-2?limit=1000");
    for e in theirs["events"].as_array().expect("events") {
        let bytes = nb.event_bytes(e["id"].as_str().expect("id"));
        assert_eq!(na.submit(&bytes).status, 200);
    }
    wait_for("side A listing monitor-2's checkpoints", DEADLINE, || {
        let u = na.get_json("/v1/checkpoints/unmatched");
        u["unmatched"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["witness"] == "monitor-2"))
            .then_some(())
    });
    let page = String::from_utf8_lossy(&na.get("/network").body).into_owned();
    assert!(page.contains("monitor-2</a> cosigned checkpoint"), "{page}");
    // The sides meet: the fork is proven everywhere, and the witnesses agree again.
    dial(&na, &nb);
    for (node, state) in [(&na, &sa), (&nb, &sb)] {
        let audit: Value = wait_for("a bundle cosigned by both witnesses", DEADLINE, || {
            let (code, out) = audit_json(node, &parcel, state, "2");
            (code == 0).then(|| serde_json::from_str(&out).expect("json"))
        });
        assert_eq!(
            audit["proof"]["cosigners"],
            serde_json::json!(["monitor", "monitor-2"])
        );
        assert_eq!(audit["state"], "held", "{audit}");
        let findings = audit["findings"].as_array().expect("findings");
        assert!(
            findings.iter().any(|f| f["code"] == "equivocation"),
            "{audit}"
        );
        let voided = audit["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|h| h["kind"] == "dispatch" && h["reason"] == "author-forked")
            .count();
        assert_eq!(voided, 2, "both branches shown void: {audit}");
    }
    // No checkpoint both witnesses cosigned states the mine's feed past its fork.
    let cosigned_by = |node: &TestNode, who: &str| -> Vec<Checkpoint> {
        let feed = node.get_json(&format!("/v1/feeds/{who}?limit=1000"));
        feed["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["kind"] == "witness")
            .map(|e| {
                serde_json::from_value(e["body"]["witness"]["checkpoint"].clone()).expect("cp")
            })
            .collect()
    };
    let first = cosigned_by(&w1, "monitor");
    let both: Vec<Checkpoint> = cosigned_by(&w1, "monitor-2")
        .into_iter()
        .filter(|c| first.contains(c))
        .collect();
    assert!(!both.is_empty());
    for cp in both {
        let v = w1.get_json(&format!("/v1/checkpoints/{}", checkpoint_id(&cp)));
        let mine_head = parse(&v)
            .1
            .into_iter()
            .find(|h| h.author.as_str() == "mine-bw");
        assert!(mine_head.is_none_or(|h| h.seq < 2), "{v}");
    }
}

#[test]
fn a_registration_that_surfaces_after_a_checkpoint_left_it_out_is_found_late() {
    // A mine registers a parcel claimed 30 days ago; a witnessed checkpoint states its feed. It
    // then signs a second registration claimed 20 days ago, extracted that day (on time by its
    // own dates), and publishes it now: an earlier checkpoint, of a time more than the 7 days'
    // tolerance after that claim, stated the feed without it.
    let dir = tempfile::tempdir().expect("tempdir");
    let monitor = TestNode::start_with_limits(
        &node_binary!(),
        &dir.path().join("monitor"),
        &NodeSpec {
            member: Some("monitor".into()),
            sync_secs: 1,
            ..NodeSpec::default()
        },
        &[("checkpoint_interval_secs", 1)],
    );
    let dev = ledger_core::dev::DevNetwork::standard();
    let mut mine = dev.writer("mine-bw").expect("member");
    let day = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let on = |t: u64, carats: u64| {
        Body::Register(Register {
            site: "jwaneng".parse().expect("site"),
            carats,
            stones: 1,
            value_cents: None,
            seal: String::new(),
            extracted_on: ledger_core::types::Date::from_unix_ms(t),
        })
    };
    let first = mine.append(on(now - 30 * day, 100), now - 30 * day);
    assert_eq!(monitor.submit(&first.bytes).status, 200);
    covers(&monitor, &first.id.to_string());
    let late = mine.append(on(now - 20 * day, 200), now - 20 * day);
    assert_eq!(monitor.submit(&late.bytes).status, 200);
    covers(&monitor, &late.id.to_string());
    let node = format!("http://{}", monitor.http);
    let state = dir.path().join("state.json");
    let file = dir.path().join("late.bundle");
    let audit = |event: &ledger_core::bytes::EventId, save: bool| -> Value {
        let parcel = custody_tests::registered_parcel(&event.to_string());
        let mut args = vec![
            "--node",
            &node,
            "--json",
            "audit",
            "parcel",
            &parcel,
            "--state",
            state.to_str().expect("path"),
        ];
        if save {
            args.extend(["--bundle", file.to_str().expect("path")]);
        }
        let (code, out, err) = custody(&args);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str(&out).expect("json")
    };
    let late_codes = |v: &Value| -> usize {
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["code"] == "late-registration")
            .count()
    };
    let found = audit(&late.id, true);
    assert_eq!(late_codes(&found), 1, "{found}");
    assert!(found.to_string().contains("surfaced"), "{found}");
    assert_eq!(late_codes(&audit(&first.id, false)), 0);
    // Offline, the saved bundle proves the same.
    let genesis = dir.path().join("genesis.bin");
    std::fs::write(&genesis, monitor.get("/v1/genesis").body).expect("genesis");
    let (code, out, err) = custody(&[
        "--json",
        "verify-bundle",
        file.to_str().expect("path"),
        "--genesis",
        genesis.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let offline: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(offline["findings"], found["findings"]);
}

/// Makes `node` dial `other` (`POST /v1/peers`).
fn dial(node: &TestNode, other: &TestNode) {
    let addr = serde_json::json!({ "addr": other.p2p_addr().expect("address") }).to_string();
    let r = node.post(
        "/v1/peers",
        "application/json",
        addr.as_bytes(),
        Some(&node.token),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// The number of events in `author`'s feed at `node` (0 before its first).
fn feed_len(node: &TestNode, author: &str) -> usize {
    let reply = node.get(&format!("/v1/feeds/{author}?limit=1000"));
    if reply.status == 404 {
        return 0;
    }
    reply.json()["events"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_witness_restored_from_an_old_backup_catches_up_before_it_signs_and_never_forks_its_feed() {
    // Attack (an accident as often): the monitor's node is restored from an old backup while
    // its peer is down. Its store ends before the Witness events it signed since, which the
    // network holds. Signing at once, it would sign a second event for a seq it used already (a
    // fork of its own feed: every later event of the monitor void) and cosign its old replica.
    let dir = tempfile::tempdir().expect("tempdir");
    let peer_spec = NodeSpec {
        sync_secs: 1,
        ..NodeSpec::default()
    };
    let mut peer = TestNode::start(&node_binary!(), &dir.path().join("peer"), &peer_spec);
    let home = dir.path().join("monitor");
    let spec = NodeSpec {
        member: Some("monitor".into()),
        bootstrap: vec![peer.p2p_addr().expect("address")],
        sync_secs: 1,
        ..NodeSpec::default()
    };
    let limits = [("checkpoint_interval_secs", 1)];
    let mut witness = TestNode::start_with_limits(&node_binary!(), &home, &spec, &limits);
    let mut mine = Mine::new();
    let last = mine.submit(&peer, 3);
    covers(&witness, &last);
    witness.kill();
    let backup = dir.path().join("backup");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&home)
        .arg(&backup)
        .status()
        .expect("cp");
    assert!(copied.success());
    witness.restart();
    let last = mine.submit(&peer, 3);
    covers(&witness, &last);
    let signed = feed_len(&witness, "monitor");
    wait_for("the peer holding the monitor's feed", DEADLINE, || {
        (feed_len(&peer, "monitor") >= signed).then_some(())
    });
    // The peer goes down; the monitor's node comes back from the backup, its peer unreachable.
    peer.kill();
    witness.kill();
    std::fs::remove_dir_all(&home).expect("remove");
    std::fs::rename(&backup, &home).expect("restore");
    let _ = std::fs::remove_file(home.join("node.log"));
    witness.restart();
    assert!(feed_len(&witness, "monitor") < signed);
    wait_for("the restored witness waiting to catch up", DEADLINE, || {
        witness.log().contains("not cosigning yet").then_some(())
    });
    let restored = feed_len(&witness, "monitor");
    // A fresh node, which knows nothing of the monitor's feed, has nothing the witness lacks:
    // that proves nothing, and two sync rounds with it (a witness tick at least) sign nothing.
    let fresh = TestNode::start(&node_binary!(), &dir.path().join("fresh"), &peer_spec);
    dial(&witness, &fresh);
    let fresh_id = fresh.get_json("/v1/status")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_owned();
    let first: u64 = wait_for("a sync round with the fresh node", DEADLINE, || {
        witness.get_json("/v1/status")["sync"][&fresh_id]["at_ms"].as_u64()
    });
    wait_for("a second sync round with the fresh node", DEADLINE, || {
        let at = witness.get_json("/v1/status")["sync"][&fresh_id]["at_ms"].as_u64();
        at.is_some_and(|at| at > first).then_some(())
    });
    assert_eq!(
        feed_len(&witness, "monitor"),
        restored,
        "signed beside its own events"
    );
    // The peer is back (at a new address): the witness catches up, then signs after its events.
    peer.restart();
    let back_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    dial(&witness, &peer);
    let fresh_cosignature = |node: &TestNode| {
        cosigned(node)
            .last()
            .is_some_and(|c| c.time_ms + 1_500 >= back_ms)
    };
    wait_for("a cosignature after the restore", DEADLINE, || {
        (fresh_cosignature(&witness) && fresh_cosignature(&peer)).then_some(())
    });
    assert!(feed_len(&witness, "monitor") > signed);
    for node in [&witness, &peer] {
        assert_eq!(node.get_json("/v1/status")["forks"], 0, "{}", node.log());
    }
    let all = cosigned(&peer);
    for pair in all.windows(2) {
        assert!(pair[0].time_ms < pair[1].time_ms, "{all:?}");
    }
}
