//! End-to-end tests of the `custody` CLI binary against real node processes and real export files: every command, its JSON, and its error paths.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use custody_tests::{cli_binary, node_binary, start_network, wait_everywhere, wait_for, TestNode};
use ledger_core::bytes::EventId;
use ledger_core::codec;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Dispatch, ParcelRef, Receive, Register};
use ledger_core::export::write_record;
use ledger_core::rules::parcel_id;

const SPREAD: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
    /// The run failed with exit status `code`, saying `says` on stderr.
    fn fails(self, code: i32, says: &str) -> Run {
        assert_eq!(self.code, code, "{self:?}");
        assert!(
            self.stderr.contains(says),
            "stderr lacks {says:?}: {}",
            self.stderr
        );
        self
    }
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A small registration, for the error paths of actions.
const REGISTER_ONE: &[&str] = &[
    "register",
    "--site",
    "orapa",
    "--carats",
    "1",
    "--extracted-on",
    "2026-03-03",
];

fn custody(args: &[&str]) -> Run {
    custody_env(args, &[])
}

fn custody_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(cli_binary!());
    cmd.args(args)
        .env_remove("CUSTODY_TOKEN")
        .env_remove("CUSTODY_NODE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run custody");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn demo_tells_the_whole_story_in_under_a_minute() {
    let started = Instant::now();
    let run = custody(&["demo"]).ok();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "the demo took {took:?}");
    let out = &run.stdout;
    for expected in [
        // 999.50 ct weighed of Jwaneng, 600.00 ct of Marange: shares of what was weighed.
        "62.49%  jwaneng (mine-bw, BW)",
        "37.51%  marange (mine-zw, ZW)",
        "REFUSED  (the rules refuse this action: certificate-origin",
        "REJECTS it",
        "REFUSED  (the rules refuse this action: uncertified",
        "VOID (uncertified)",
        "VOID (conflict)",
        "confirm-import",
        "flagged",
        "receipt-mismatch",
        "void                conflict 1, uncertified 1",
        "intact              yes",
    ] {
        assert!(
            out.contains(expected),
            "demo output lacks {expected:?}:\n{out}"
        );
    }
    // Fewer nodes than the story has members is refused with a clear message.
    custody(&["demo", "--nodes", "3"]).fails(1, "--nodes must be between 9");
}

/// `custody stats` on the demo's log: the totals of the story, worked out by hand.
fn demo_stats_match_the_story(url: &str) {
    let year = &custody_tests::today()[..4];
    let run = custody(&["--node", url, "--json", "stats", "--year", year])
        .ok()
        .json();
    let by_country = |c: &str| -> Value {
        run["countries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["country"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("no {c} in {run}"))
    };
    let (bw, zw, be) = (by_country("BW"), by_country("ZW"), by_country("BE"));
    // Registered: 1,000.00 ct at Jwaneng, 600.00 ct at Marange; Zimbabwe declared 550.00 ct.
    assert_eq!(
        (&bw["registered_carats"], &zw["registered_carats"]),
        (&json!("1000.00"), &json!("600.00"))
    );
    assert_eq!(
        (&bw["declared_carats"], &zw["declared_carats"]),
        (&json!("0.00"), &json!("550.00"))
    );
    // ZW-2026-0117: 600.00 ct for US$72,000 to Botswana; BW-2026-0042: the 1,590.00 ct mix for
    // its declared US$220,000 to Belgium. Both confirmed.
    let flow = |v: &Value| {
        (
            v["carats"].clone(),
            v["value_usd"].clone(),
            v["usd_per_carat"].clone(),
        )
    };
    assert_eq!(
        flow(&zw["exports"]),
        (json!("600.00"), json!("72000.00"), json!("120.00"))
    );
    assert_eq!(
        flow(&bw["imports"]),
        (json!("600.00"), json!("72000.00"), json!("120.00"))
    );
    assert_eq!(
        flow(&bw["exports"]),
        (json!("1590.00"), json!("220000.00"), json!("138.36"))
    );
    assert_eq!(
        flow(&be["imports"]),
        (json!("1590.00"), json!("220000.00"), json!("138.36"))
    );
    for c in [&bw, &zw] {
        assert_eq!(
            (&c["certificates_issued"], &c["certificates_confirmed"]),
            (&json!(1), &json!(1))
        );
    }
    // Marange flagged; Zimbabwe exported 600.00 ct against 550.00 declared; Jwaneng's parcel
    // weighed 999.50 ct at the sorter in Botswana.
    assert_eq!(
        zw["findings"],
        json!({"flagged": 1, "exports-above-production": 1})
    );
    assert_eq!(bw["findings"], json!({"receipt-mismatch": 1}));
    // No other year has anything; CSV has a header and a row per country.
    let other = custody(&["--node", url, "--json", "stats", "--year", "2001"])
        .ok()
        .json();
    assert_eq!(other["countries"], json!([]));
    let csv = custody(&["--node", url, "stats", "--csv"]).ok().stdout;
    assert!(csv.starts_with("country,registered_carats,"), "{csv}");
    assert_eq!(
        csv.lines().count(),
        1 + run["countries"].as_array().map_or(0, Vec::len)
    );
}

#[test]
fn a_kept_running_demo_network_serves_until_the_demo_goes_away() {
    use std::io::BufRead;
    let mut demo = Command::new(cli_binary!())
        .args(["demo", "--nodes", "10", "--keep-running"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = demo.stdout.take().expect("stdout");
    let mut urls = Vec::new();
    let mut kept: Option<String> = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read");
        if let Some(dir) = line.split("its files stay in ").nth(1) {
            kept = Some(dir.trim().to_owned());
        }
        if let Some(rest) = line.split("--node ").nth(1) {
            urls.push(rest.split_whitespace().next().expect("url").to_owned());
        }
        if urls.len() == 10 {
            break;
        }
    }
    let kept = kept.expect("the demo says it keeps running, and where its files are");
    assert_eq!(
        urls.len(),
        10,
        "one line per node, observers included: {urls:?}"
    );
    let status = |url: &str| -> Option<Value> {
        ureq::get(&format!("{url}/v1/status"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json().ok())
    };
    let observer = status(&urls[9]).expect("the observer node answers");
    assert_eq!(observer["member"], Value::Null);
    assert_eq!(
        observer["events"],
        status(&urls[0]).expect("answers")["events"]
    );
    demo_stats_match_the_story(&urls[0]);
    // Its nodes stop cleanly when the demo goes away (their standard input closes).
    demo.kill().expect("kill the demo");
    let _ = demo.wait();
    for url in &urls {
        wait_for(&format!("{url} to stop"), SPREAD, || {
            status(url).is_none().then_some(())
        });
    }
    std::fs::remove_dir_all(&kept).expect("remove the demo's files");
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: &[&[&str]] = &[
        &["key", "new"],
        &["key", "show"],
        &["genesis", "new"],
        &["genesis", "show"],
        &["register"],
        &["transform"],
        &["dispatch"],
        &["receive"],
        &["reject"],
        &["certify"],
        &["confirm-import"],
        &["retire"],
        &["flag"],
        &["audit", "parcel"],
        &["replay"],
        &["export"],
        &["demo"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let run = custody(&args).ok();
        assert!(
            run.stdout.contains("Example"),
            "{command:?} --help has no example:\n{}",
            run.stdout
        );
    }
    let top = custody(&["--help"]).ok();
    for word in ["--node", "--token-file", "--json", "Exit status"] {
        assert!(top.stdout.contains(word), "custody --help lacks {word}");
    }
}

#[test]
fn keys_and_genesis_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name).display().to_string();
    let mut publics = Vec::new();
    for name in ["auth-a", "auth-b", "mine", "monitor"] {
        let made = custody(&["key", "new", "--out", &d(&format!("{name}.key")), "--json"])
            .ok()
            .json();
        let shown = custody(&["key", "show", &d(&format!("{name}.key")), "--json"])
            .ok()
            .json();
        assert_eq!(made["public_key"], shown["public_key"]);
        assert_eq!(made["fingerprint"], shown["fingerprint"]);
        assert_eq!(shown["public_key"].as_str().map(str::len), Some(64));
        publics.push(shown["public_key"].as_str().expect("key").to_owned());
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d("mine.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "a secret key file must be private");
    custody(&["key", "new", "--out", &d("mine.key")]).fails(1, "exists already");
    let missing = custody(&["key", "show", &d("nothing.key")]);
    assert_eq!(missing.code, 2, "{missing:?}");
    let to_stdout = custody(&["key", "new"]).ok();
    assert_eq!(to_stdout.stdout.trim().len(), 64, "{to_stdout:?}");
    assert!(
        to_stdout.stderr.contains("public key"),
        "{}",
        to_stdout.stderr
    );

    let members = format!(
        r#"name = "test network"
created_ms = 1780000000000

[[member]]
id = "authority-a"
name = "Authority A"
chamber = "government"
country = "BW"
roles = ["authority"]
keys = ["{}"]

[[member]]
id = "authority-b"
name = "Authority B"
chamber = "government"
country = "BE"
roles = ["authority"]
keys = ["{}"]

[[member]]
id = "mine"
name = "A mine"
chamber = "industry"
country = "BW"
roles = ["mine"]
keys = ["{}"]

[[member.site]]
id = "north-pit"
name = "North pit"
region = "Central"

[[member]]
id = "monitor"
name = "A monitor"
chamber = "civil-society"
country = "ZA"
roles = ["monitor"]
keys = ["{}"]
"#,
        publics[0], publics[1], publics[2], publics[3]
    );
    std::fs::write(d("members.toml"), &members).expect("members");
    let made = custody(&[
        "genesis",
        "new",
        "--members",
        &d("members.toml"),
        "--out",
        &d("g.bin"),
        "--json",
    ])
    .ok()
    .json();
    let shown = custody(&["genesis", "show", &d("g.bin"), "--json"])
        .ok()
        .json();
    assert_eq!(made["network"], shown["network"]);
    let bytes = std::fs::read(d("g.bin")).expect("genesis");
    let decoded = ledger_core::governance::decode_genesis(&bytes).expect("valid genesis");
    assert_eq!(
        shown["network"].as_str(),
        Some(
            ledger_core::governance::network_id(&decoded)
                .to_string()
                .as_str()
        )
    );
    assert_eq!(shown["members"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        shown["chambers"]["government"],
        json!(["authority-a", "authority-b"])
    );
    assert_eq!(shown["chambers"]["civil-society"], json!(["monitor"]));
    assert_eq!(shown["members"][2]["sites"][0]["id"], "north-pit");
    assert_eq!(shown["members"][2]["roles"], json!(["mine"]));
    assert!(shown["policy"]["mass_loss_tolerance_ppm"].is_u64());
    let text = custody(&["genesis", "show", &d("g.bin")]).ok();
    assert!(text.stdout.contains("network id"), "{}", text.stdout);
    assert!(text.stdout.contains("north-pit"), "{}", text.stdout);

    // Bad members files are refused with the reason, and nothing is written.
    std::fs::write(
        d("bad.toml"),
        members.replace(
            "roles = [\"mine\"]",
            "roles = [\"mine\"]\ncolour = \"blue\"",
        ),
    )
    .expect("write");
    custody(&[
        "genesis",
        "new",
        "--members",
        &d("bad.toml"),
        "--out",
        &d("bad.bin"),
    ])
    .fails(2, "colour");
    assert!(!dir.path().join("bad.bin").exists());
    std::fs::write(
        d("dup.toml"),
        members.replace("id = \"authority-b\"", "id = \"authority-a\""),
    )
    .expect("write");
    custody(&[
        "genesis",
        "new",
        "--members",
        &d("dup.toml"),
        "--out",
        &d("dup.bin"),
    ])
    .fails(2, "invalid genesis");
    std::fs::write(d("garbage.bin"), b"not a genesis").expect("write");
    assert_eq!(custody(&["genesis", "show", &d("garbage.bin")]).code, 2);
}

fn token_file(node: &TestNode) -> String {
    node.dir.join("data/api-token").display().to_string()
}

/// Runs an action command at `node` and returns its JSON answer (which must be applied).
fn act(node: &TestNode, args: &[&str]) -> Value {
    let url = format!("http://{}", node.http);
    let tok = token_file(node);
    let mut all = vec![
        "--node",
        url.as_str(),
        "--token-file",
        tok.as_str(),
        "--json",
    ];
    all.extend_from_slice(args);
    let v = custody(&all).ok().json();
    assert_eq!(v["verdict"], "applied", "{args:?}: {v}");
    v
}

fn spread(nodes: &[TestNode], event: &str) {
    wait_everywhere(nodes, event, SPREAD);
}

#[test]
fn actions_audit_replay_and_export_against_real_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let members = [
        "mine-bw",
        "sorter-bw",
        "exporter-bw",
        "importer-be",
        "authority-bw",
        "authority-be",
        "monitor",
    ];
    let nodes = start_network(&node_binary!(), dir.path(), &members, 1);
    let [mine, sorter, exporter, importer, auth_bw, auth_be, monitor] = &nodes[..] else {
        panic!("seven nodes");
    };
    let url = |n: &TestNode| format!("http://{}", n.http);
    let step = |node: &TestNode, args: &[&str]| -> String {
        let v = act(node, args);
        let event = v["event"].as_str().expect("event").to_owned();
        spread(&nodes, &event);
        event
    };

    let today = custody_tests::today();
    let reg = act(
        mine,
        &[
            "register",
            "--site",
            "jwaneng",
            "--carats",
            "1000.00",
            "--stones",
            "12",
            "--value-cents",
            "5000000",
            "--extracted-on",
            &today,
        ],
    );
    let p = reg["parcels"][0].as_str().expect("parcel").to_owned();
    spread(&nodes, reg["event"].as_str().expect("event"));
    step(mine, &["dispatch", "--parcel", &p, "--to", "sorter-bw"]);
    step(
        sorter,
        &["reject", "--parcel", &p, "--reason", "wrong seal"],
    );
    step(
        mine,
        &[
            "dispatch",
            "--parcel",
            &p,
            "--to",
            "sorter-bw",
            "--seal",
            "S2",
        ],
    );
    step(
        sorter,
        &["receive", "--parcel", &p, "--measured-carats", "999"],
    );
    let t = act(
        sorter,
        &[
            "transform",
            "--input",
            &p,
            "--output",
            "900.00:10:4600000",
            "--output",
            "90:2",
        ],
    );
    spread(&nodes, t["event"].as_str().expect("event"));
    let x = t["parcels"][0].as_str().expect("output").to_owned();
    let y = t["parcels"][1].as_str().expect("output").to_owned();
    step(sorter, &["retire", "--parcel", &y, "--cause", "cut"]);
    step(sorter, &["dispatch", "--parcel", &x, "--to", "exporter-bw"]);
    step(
        exporter,
        &["receive", "--parcel", &x, "--measured-carats", "900.00"],
    );
    let (issued, expires) = custody_tests::certificate_dates();
    let cert = step(
        auth_bw,
        &[
            "certify",
            "--number",
            "BW-2026-0001",
            "--exporter",
            "exporter-bw",
            "--importer",
            "importer-be",
            "--destination",
            "BE",
            "--parcel",
            &x,
            "--hs-code",
            "7102.31",
            "--issued-on",
            &issued,
            "--expires-on",
            &expires,
        ],
    );
    // The certificate declares what the parcel weighs, is worth and comes from.
    let signed = auth_bw.get_json(&format!("/v1/events/{cert}"));
    let c = &signed["body"]["kp-certificate"];
    assert_eq!(c["certify"]["total_carats"], 90_000, "{signed}");
    assert_eq!(c["certify"]["value_cents"], 4_600_000);
    assert_eq!(c["certify"]["origins"], json!(["BW"]));
    assert_eq!(c["hs_code"], "7102.31");
    // Cited by its number.
    step(
        exporter,
        &[
            "dispatch",
            "--parcel",
            &x,
            "--to",
            "importer-be",
            "--certificate",
            "BW-2026-0001",
        ],
    );
    step(
        importer,
        &[
            "receive",
            "--parcel",
            &x,
            "--measured-carats",
            "900",
            "--seal-broken",
        ],
    );
    step(
        auth_be,
        &["confirm-import", "--certificate", "BW-2026-0001"],
    );
    step(
        monitor,
        &[
            "flag",
            "--parcel",
            &x,
            "--code",
            "smuggling",
            "--text",
            "tip-off",
        ],
    );

    // Text output names the event and the new parcel.
    let text = custody(&[
        "--node",
        &url(mine),
        "--token-file",
        &token_file(mine),
        "register",
        "--site",
        "orapa",
        "--carats",
        "500",
        "--extracted-on",
        "2026-03-03",
    ])
    .ok();
    assert!(text.stdout.starts_with("event "), "{}", text.stdout);
    assert!(text.stdout.contains("parcel "), "{}", text.stdout);

    // Error paths: refused in words, unknown parcel, bad and missing tokens, node down, bad arguments.
    let refused = custody(&[
        "--node",
        &url(mine),
        "--token-file",
        &token_file(mine),
        "dispatch",
        "--parcel",
        &x,
        "--to",
        "sorter-bw",
    ]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("not-custodian") && refused.stderr.contains("does not hold"),
        "{}",
        refused.stderr
    );
    custody(&[
        "--node",
        &url(mine),
        "--token-file",
        &token_file(mine),
        "dispatch",
        "--parcel",
        &"ab".repeat(32),
        "--to",
        "sorter-bw",
    ])
    .fails(1, "unknown parcel");
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "x".repeat(40)).expect("write");
    custody(
        &[
            &[
                "--node",
                &url(mine),
                "--token-file",
                &wrong.display().to_string(),
            ][..],
            REGISTER_ONE,
        ]
        .concat(),
    )
    .fails(1, "wrong bearer token");
    custody(&[&["--node", &url(mine)][..], REGISTER_ONE].concat()).fails(1, "missing bearer token");
    custody(
        &[
            &[
                "--node",
                "http://127.0.0.1:1",
                "--token-file",
                &token_file(mine),
            ][..],
            REGISTER_ONE,
        ]
        .concat(),
    )
    .fails(3, "cannot reach the node");
    for args in [
        vec![
            "register",
            "--site",
            "orapa",
            "--extracted-on",
            "2026-03-03",
        ],
        vec!["transform", "--input", &p, "--output", "lots"],
        vec![
            "flag", "--parcel", &x, "--member", "mine-bw", "--code", "other",
        ],
        vec!["audit", "parcel", "not-an-id"],
        vec!["replay", "--file", "x.export"],
    ] {
        let run = custody(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty());
    }

    // Carats are decimal; ids are lower case; the errors say what to fix (exit 2 as above).
    custody(&[
        "register",
        "--site",
        "orapa",
        "--carats",
        "1,000",
        "--extracted-on",
        "2026-03-03",
    ])
    .fails(2, "write decimal carats");
    custody(&[
        "register",
        "--site",
        "Orapa",
        "--carats",
        "1",
        "--extracted-on",
        "2026-03-03",
    ])
    .fails(2, "lower case");

    // Audit, verified locally, with the documented JSON.
    let audit = custody(&[
        "--node",
        &url(monitor),
        "--json",
        "audit",
        "parcel",
        &x,
        "--full",
    ])
    .ok()
    .json();
    assert_eq!(
        keys(&audit),
        set(&[
            "network",
            "parcel",
            "state",
            "custodian",
            "carats",
            "declared_carats",
            "origin",
            "origin_countries",
            "ancestry",
            "history",
            "findings",
            "governance",
            "truncated"
        ])
    );
    assert_eq!(
        keys(&audit["governance"]),
        set(&["version", "authors", "keys", "embargoes"])
    );
    assert_eq!(audit["parcel"], x.as_str());
    assert_eq!(audit["state"], "held");
    assert_eq!(audit["custodian"], "importer-be");
    assert_eq!(
        keys(&audit["origin"][0]),
        set(&["site", "member", "country", "share", "units"])
    );
    assert_eq!(audit["origin"][0]["site"], "jwaneng");
    assert_eq!(audit["origin"][0]["share"], 1.0);
    let history = audit["history"].as_array().expect("history");
    assert_eq!(
        keys(&history[0]),
        set(&["event", "kind", "author", "seq", "time", "verdict", "reason"])
    );
    let kinds: Vec<&str> = history.iter().filter_map(|h| h["kind"].as_str()).collect();
    for kind in [
        "register",
        "reject",
        "transform",
        "certify",
        "confirm-import",
        "receive",
    ] {
        assert!(kinds.contains(&kind), "history lacks {kind}: {kinds:?}");
    }
    assert!(history
        .iter()
        .all(|h| h["verdict"] == "applied" && h["reason"].is_null()));
    let codes: BTreeSet<&str> = audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            assert!(f["detail"].as_str().is_some_and(|d| !d.is_empty()));
            f["code"].as_str().expect("code")
        })
        .collect();
    assert_eq!(
        codes,
        BTreeSet::from(["broken-seal", "flagged", "receipt-mismatch"])
    );
    let text = custody(&["--node", &url(monitor), "audit", "parcel", &x, "--full"]).ok();
    assert!(
        text.stdout.contains("100.00%  jwaneng (mine-bw, BW)"),
        "{}",
        text.stdout
    );
    let dot = custody(&[
        "--node",
        &url(monitor),
        "audit",
        "parcel",
        &x,
        "--full",
        "--dot",
    ])
    .ok();
    assert!(
        dot.stdout.starts_with("digraph custody {"),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout.contains(&format!("\"{p}\" -> \"{x}\"")),
        "{}",
        dot.stdout
    );
    custody(&[
        "--node",
        &url(monitor),
        "audit",
        "parcel",
        &"cd".repeat(32),
        "--full",
    ])
    .fails(1, "unknown parcel");
    // By default the audit rests on a cosigned checkpoint; a node that keeps none says so.
    custody(&["--node", &url(monitor), "audit", "parcel", &x]).fails(1, "--full");
    let down = custody(&["--node", "http://127.0.0.1:1", "audit", "parcel", &x]);
    assert_eq!(down.code, 3, "{down:?}");

    // Replay from the node: the documented summary, and the node's own state root recomputed.
    let summary = custody(&["--node", &url(monitor), "--json", "replay"])
        .ok()
        .json();
    assert_eq!(
        keys(&summary),
        set(&[
            "network",
            "events",
            "authors",
            "applied",
            "void",
            "forks",
            "admission_failures",
            "parcels",
            "findings",
            "intact",
            "empty",
            "first_failure",
            "state_root",
            "input"
        ])
    );
    assert_eq!(summary["intact"], true);
    assert_eq!(summary["events"], monitor.status()["events"]);
    assert_eq!(summary["state_root"], monitor.state_root());
    assert_eq!(summary["parcels"]["retired"], 1);
    assert_eq!(summary["findings"]["flagged"], 1);
    assert_eq!(summary["first_failure"], Value::Null);

    // Export, then replay the file: the same summary.
    let export = dir.path().join("log.export");
    let genesis = dir.path().join("genesis.bin");
    std::fs::copy(monitor.dir.join("genesis.bin"), &genesis).expect("genesis");
    let saved = custody(&[
        "--node",
        &url(monitor),
        "--json",
        "export",
        "--out",
        &export.display().to_string(),
    ])
    .ok()
    .json();
    assert_eq!(saved["events"], summary["events"]);
    let from_file = custody(&[
        "--json",
        "replay",
        "--file",
        &export.display().to_string(),
        "--genesis",
        &genesis.display().to_string(),
    ])
    .ok()
    .json();
    assert_eq!(from_file, summary);
    // A genesis of another network is caught before anything is trusted.
    let other = dir.path().join("other.bin");
    let mut g = DevNetwork::standard().genesis();
    g.name = "another network".into();
    std::fs::write(&other, codec::encode(&g)).expect("write");
    custody(&[
        "--node",
        &url(monitor),
        "replay",
        "--genesis",
        &other.display().to_string(),
    ])
    .fails(1, "runs network");
    let down = custody(&[
        "--node",
        "http://127.0.0.1:1",
        "export",
        "--out",
        &dir.path().join("x").display().to_string(),
    ]);
    assert_eq!(down.code, 3, "{down:?}");
}

/// A log of two mines' registrations, dispatches to the sorter and receipts, as export records.
fn story_log() -> Vec<Vec<u8>> {
    let dev = DevNetwork::standard();
    let mut mine = dev.writer("mine-bw").expect("mine");
    let mut zw = dev.writer("mine-zw").expect("mine");
    let mut sorter = dev.writer("sorter-bw").expect("sorter");
    let mut out = Vec::new();
    let t = 1_780_000_000_000u64;
    for i in 0..12u64 {
        let (w, site) = if i % 3 == 0 {
            (&mut zw, "marange")
        } else {
            (&mut mine, "jwaneng")
        };
        let reg = w.append(
            Body::Register(Register {
                site: site.parse().expect("site"),
                carats: 1000 + i,
                stones: 1,
                value_cents: None,
                seal: String::new(),
                extracted_on: "2026-01-01".parse().expect("date"),
            }),
            t + i * 10,
        );
        out.push(reg.bytes.clone());
        if site == "jwaneng" {
            let parcel = parcel_id(&reg.id, 0);
            let d = mine.append(
                Body::Dispatch(Dispatch {
                    parcel: ParcelRef {
                        parcel,
                        head: reg.id,
                    },
                    to: "sorter-bw".parse().expect("member"),
                    certificate: None,
                    seal: String::new(),
                    deadline_ms: None,
                }),
                t + i * 10 + 1,
            );
            out.push(d.bytes.clone());
            let r = sorter.append(
                Body::Receive(Receive {
                    parcel: ParcelRef { parcel, head: d.id },
                    measured_carats: 1000 + i,
                    seal_intact: true,
                    note: String::new(),
                }),
                t + i * 10 + 2,
            );
            out.push(r.bytes);
        }
    }
    out
}

fn write_export(path: &Path, records: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for r in records {
        write_record(&mut bytes, r).expect("record");
    }
    std::fs::write(path, bytes).expect("write export");
}

fn replay_file(export: &Path, genesis: &Path) -> Run {
    custody(&[
        "--json",
        "replay",
        "--file",
        &export.display().to_string(),
        "--genesis",
        &genesis.display().to_string(),
    ])
}

fn without_input(mut v: Value) -> Value {
    v.as_object_mut().expect("summary").remove("input");
    v
}

#[test]
fn tampered_exports_are_caught_and_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genesis = dir.path().join("genesis.bin");
    std::fs::write(&genesis, codec::encode(&DevNetwork::standard().genesis())).expect("genesis");
    let records = story_log();
    let ids: Vec<EventId> = records
        .iter()
        .map(|r| ledger_core::admission::event_id(&r[..r.len() - 64]))
        .collect();
    let original = dir.path().join("original.export");
    write_export(&original, &records);
    let base = replay_file(&original, &genesis).ok();
    assert!(
        base.stderr.is_empty(),
        "no progress bar when stderr is not a terminal: {}",
        base.stderr
    );
    let base = base.json();
    assert_eq!(base["intact"], true);
    assert_eq!(base["events"], records.len());
    assert_eq!(base["void"], json!({}));
    assert_eq!(base["empty"], false);

    // An empty export is no proof of anything: said so, not "intact yes".
    let empty = dir.path().join("empty.export");
    std::fs::write(&empty, b"").expect("empty export");
    let summary = replay_file(&empty, &genesis).ok().json();
    assert_eq!(
        (summary["empty"].clone(), summary["events"].clone()),
        (json!(true), json!(0))
    );
    let text = custody(&[
        "replay",
        "--file",
        &empty.display().to_string(),
        "--genesis",
        &genesis.display().to_string(),
    ])
    .ok();
    assert!(text.stdout.contains("the log is empty"), "{}", text.stdout);
    assert!(
        !text.stdout.contains("intact              yes"),
        "{}",
        text.stdout
    );

    // A flipped byte inside record 7 (well inside its event bytes).
    let k = 7usize;
    let mut flipped = records.clone();
    flipped[k][60] ^= 0x01;
    let path = dir.path().join("flipped.export");
    write_export(&path, &flipped);
    let run = replay_file(&path, &genesis);
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.json();
    assert_eq!(s["intact"], false);
    assert_eq!(s["first_failure"]["index"], k, "{s}");
    let offset: usize = records[..k].iter().map(|r| 4 + r.len()).sum();
    assert_eq!(s["first_failure"]["offset"], offset, "{s}");
    let text = custody(&[
        "replay",
        "--file",
        &path.display().to_string(),
        "--genesis",
        &genesis.display().to_string(),
    ]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains(&format!("first broken        record {k} (byte {offset})")),
        "{}",
        text.stdout
    );

    // A flipped signature byte: the payload, and so the event's id, is intact, and named.
    let mut resigned = records.clone();
    let last = resigned[k].len() - 1;
    resigned[k][last] ^= 0x01;
    let path = dir.path().join("signature.export");
    write_export(&path, &resigned);
    let run = replay_file(&path, &genesis);
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.json();
    assert_eq!(s["first_failure"]["reason"], "bad-signature", "{s}");
    assert_eq!(s["first_failure"]["event"], ids[k].to_string(), "{s}");

    // A dropped event with successors in its feed: the gap is named where it shows.
    let dropped_at = records
        .iter()
        .position(|r| {
            ledger_core::admission::decode_event(r, &DevNetwork::standard().network())
                .map(|e| e.header().seq == 3 && e.header().author.as_str() == "mine-bw")
                .unwrap_or(false)
        })
        .expect("mine-bw seq 3");
    let mut dropped = records.clone();
    dropped.remove(dropped_at);
    let path = dir.path().join("dropped.export");
    write_export(&path, &dropped);
    let run = replay_file(&path, &genesis);
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.json();
    assert_eq!(s["first_failure"]["reason"], "missing-dependency", "{s}");
    assert_eq!(s["first_failure"]["index"], dropped_at, "{s}");
    assert!(
        s["first_failure"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&ids[dropped_at].to_string())),
        "the missing event is named: {s}"
    );

    // A truncated tail.
    let bytes = std::fs::read(&original).expect("read");
    let path = dir.path().join("truncated.export");
    std::fs::write(&path, &bytes[..bytes.len() - 10]).expect("write");
    let run = replay_file(&path, &genesis);
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.json();
    assert_eq!(s["first_failure"]["reason"], "truncated", "{s}");
    assert_eq!(s["first_failure"]["index"], records.len() - 1, "{s}");

    // Reordered and duplicated: the same summary as the original.
    let mut shuffled: Vec<Vec<u8>> = records.iter().rev().cloned().collect();
    shuffled.extend(records[..5].iter().cloned());
    let path = dir.path().join("shuffled.export");
    write_export(&path, &shuffled);
    let s = replay_file(&path, &genesis).ok().json();
    assert_eq!(s["input"]["duplicates"], 5);
    assert_eq!(without_input(s), without_input(base));
}
