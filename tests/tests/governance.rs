//! Governance on real nodes, through the API and the `custody gov` CLI: a record proposed,
//! objected to, endorsed to the quorum and submitted is in force at every node with its
//! objection beside it; a bloc of governments cannot pass a record alone; a member admitted by
//! governance acts at once (its early event waits rather than being refused), a suspended one is
//! refused and a reinstated one acts again; two quorate records for one version are a governance
//! fork at every node, naming the same double endorsers.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use custody_tests::{
    cli_binary, event_id_of, node_binary, register, start_network, wait_everywhere, wait_for,
    wait_for_every, NodeSpec, TestNode,
};
use ledger_core::dev::dev_key;

/// Longest any one change may take to reach every node.
const SPREAD: Duration = Duration::from_secs(20);
/// One node per member: the three governments, an industry member and the civil-society monitor
/// (the standard quorum: two thirds of governments, one industry, one civil society).
const MEMBERS: [&str; 5] = [
    "authority-zw",
    "authority-bw",
    "authority-be",
    "mine-zw",
    "monitor",
];
const ZW: usize = 0;
const BW: usize = 1;
const BE: usize = 2;
const MINE: usize = 3;
const MONITOR: usize = 4;

/// POSTs `body` to `path` and expects 200; returns the answer.
fn post_ok(node: &TestNode, path: &str, body: Value) -> Value {
    let r = node.post_json(path, &body);
    assert_eq!(
        r.status,
        200,
        "POST {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// POSTs `body` to `path` and expects `status` with error `code`; returns the message.
fn post_refused(node: &TestNode, path: &str, body: Value, status: u16, code: &str) -> String {
    let r = node.post_json(path, &body);
    let v = r.json();
    assert_eq!((r.status, v["code"].as_str()), (status, Some(code)), "{v}");
    v["message"].as_str().expect("message").to_owned()
}

fn propose(node: &TestNode, action: Value) -> String {
    let v = post_ok(node, "/v1/gov/proposals", json!({ "action": action }));
    v["record"].as_str().expect("record").to_owned()
}

/// Waits until `node` knows proposal `record` with at least `endorsements` endorsements and
/// `objections` objections; returns it.
fn wait_proposal(node: &TestNode, record: &str, endorsements: usize, objections: usize) -> Value {
    wait_for(
        &format!(
            "proposal {record} with {endorsements} endorsements at {}",
            node.http
        ),
        SPREAD,
        || {
            let r = node.get(&format!("/v1/gov/proposals/{record}"));
            let v = (r.status == 200).then(|| r.json())?;
            let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
            (count("endorsements") >= endorsements && count("objections") >= objections)
                .then_some(v)
        },
    )
}

fn endorse(node: &TestNode, record: &str) {
    wait_proposal(node, record, 1, 0);
    post_ok(
        node,
        &format!("/v1/gov/proposals/{record}/endorse"),
        json!({}),
    );
}

/// Proposes `action` at `nodes[by]`, endorses it at each of `endorsers`, and submits it at the
/// proposer once it has every endorsement; returns once the submit answer came (applied).
fn pass(nodes: &[TestNode], by: usize, action: Value, endorsers: &[usize]) {
    let record = propose(&nodes[by], action);
    for &i in endorsers {
        endorse(&nodes[i], &record);
    }
    wait_proposal(&nodes[by], &record, endorsers.len() + 1, 0);
    let v = post_ok(
        &nodes[by],
        &format!("/v1/gov/proposals/{record}/submit"),
        json!({}),
    );
    assert_eq!(v["verdict"], "applied", "{v}");
}

/// Waits until governance version `version` is in force at every node's `/v1/gov` (polled every
/// millisecond); returns how long after `since` the last node had it.
fn wait_version(nodes: &[TestNode], version: u64, since: Instant) -> Duration {
    let mut seen: Vec<Option<Duration>> = vec![None; nodes.len()];
    wait_for_every(
        &format!("governance version {version} at every node"),
        SPREAD,
        Duration::from_millis(1),
        || {
            for (n, at) in nodes.iter().zip(seen.iter_mut()) {
                if at.is_none() && n.get_json("/v1/gov?limit=1")["latest"] == version {
                    *at = Some(since.elapsed());
                }
            }
            let all: Option<Vec<Duration>> = seen.iter().copied().collect();
            all.map(|t| t.into_iter().max().unwrap_or_default())
        },
    )
}

/// Waits until every node holds the same events with the same state root.
fn wait_same_state(nodes: &[TestNode]) {
    wait_for("the same state root at every node", SPREAD, || {
        let roots: Vec<Value> = nodes.iter().map(|n| n.get_json("/v1/state")).collect();
        roots.windows(2).all(|w| w[0] == w[1]).then_some(())
    });
}

/// Waits until event `id` has `verdict` (and `reason`) at every node.
fn wait_verdict(nodes: &[TestNode], id: &str, verdict: &str, reason: Option<&str>) {
    for n in nodes {
        wait_for(&format!("{verdict} {id} at {}", n.http), SPREAD, || {
            let r = n.get(&format!("/v1/events/{id}"));
            let v = (r.status == 200).then(|| r.json())?;
            (v["verdict"] == verdict && v["reason"].as_str() == reason).then_some(())
        });
    }
}

/// Runs the CLI against `node` with its token; asserts it succeeded and returns its stdout.
fn custody(node: &TestNode, args: &[&str]) -> String {
    let out = Command::new(cli_binary!())
        .args(args)
        .args(["--node", &format!("http://{}", node.http)])
        .env("CUSTODY_TOKEN", &node.token)
        .env_remove("CUSTODY_NODE")
        .output()
        .expect("run custody");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "custody {args:?}: {}\nstdout: {stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn embargo(country: &str, reason: &str) -> Value {
    json!({ "set-embargo": { "target": { "country": country }, "from": "2026-01-01", "until": null, "reason": reason } })
}

/// The member the network admits: a Namibian mine, with the key its node will sign with.
fn new_mine() -> Value {
    json!({
        "id": "mine-na", "name": "Namdeb", "chamber": "industry", "country": "NA", "roles": ["mine"],
        "sites": [{ "id": "oranjemund", "name": "Oranjemund", "region": "Karas", "country": "NA" }],
        "keys": [{ "key": dev_key("mine-na").public().to_hex(), "from_seq": 1 }],
    })
}

/// A bloc of the three governments endorses an embargo alone and tries to submit it: the node
/// refuses, naming the shortfall; forced, the record is stored void `no-quorum` everywhere and
/// nothing changes. Returns the bloc's record.
fn a_bloc_of_governments_cannot_pass_a_record_alone(nodes: &[TestNode]) -> String {
    let record = propose(&nodes[ZW], embargo("ZW", "bloc"));
    endorse(&nodes[BW], &record);
    endorse(&nodes[BE], &record);
    let again = format!("/v1/gov/proposals/{record}/endorse");
    post_refused(&nodes[BE], &again, json!({}), 409, "already-endorsed");
    let proposals = "/v1/gov/proposals";
    let twice = json!({ "action": embargo("ZW", "bloc") });
    post_refused(&nodes[ZW], proposals, twice, 409, "already-endorsed");
    wait_proposal(&nodes[ZW], &record, 3, 0);
    let submit = format!("/v1/gov/proposals/{record}/submit");
    let message = post_refused(&nodes[ZW], &submit, json!({}), 409, "no-quorum");
    assert!(
        message.contains("industry 0 of 1, civil society 0 of 1"),
        "{message}"
    );
    let forced = post_ok(&nodes[ZW], &format!("{submit}?force=true"), json!({}));
    assert_eq!(
        (&forced["verdict"], &forced["reason"]),
        (&json!("void"), &json!("no-quorum"))
    );
    let event = forced["event"].as_str().expect("event");
    wait_verdict(nodes, event, "void", Some("no-quorum"));
    for n in nodes {
        assert_eq!(n.get_json("/v1/gov")["latest"], 0, "nothing changed");
    }
    record
}

/// Hostile or mistaken requests get a 4xx that says what to fix, and nothing is signed.
fn bad_requests_are_refused_saying_what_to_fix(node: &TestNode) {
    let proposals = "/v1/gov/proposals";
    let unknown = "ab".repeat(32);
    let bad = [
        (
            json!({ "action": { "embargo": {} } }),
            400,
            "bad-request",
            "unknown variant",
        ),
        (
            json!({ "action": embargo("ZW", "x"), "extra": 1 }),
            400,
            "bad-request",
            "unknown field",
        ),
        (
            json!({ "action": { "admit": { "id": "mine-zw", "name": "again", "chamber": "industry",
            "country": "ZW", "roles": ["mine"], "sites": [],
            "keys": [{ "key": dev_key("mine-zw/2").public().to_hex(), "from_seq": 1 }] } } }),
            422,
            "invalid-action",
            "member mine-zw exists already",
        ),
        (
            json!({ "action": embargo("ZW", &"x".repeat(2000)) }),
            422,
            "invalid-field",
            "reason",
        ),
    ];
    for (body, status, code, says) in bad {
        let m = post_refused(node, proposals, body, status, code);
        assert!(m.contains(says), "{m:?} lacks {says:?}");
    }
    let m = post_refused(
        node,
        &format!("{proposals}/{unknown}/endorse"),
        json!({}),
        404,
        "unknown-proposal",
    );
    assert!(m.contains(&unknown), "{m}");
    post_refused(
        node,
        &format!("{proposals}/not-hex/endorse"),
        json!({}),
        400,
        "bad-request",
    );
    post_refused(
        node,
        &format!("{proposals}/{unknown}/object"),
        json!({ "reason": 5 }),
        400,
        "bad-request",
    );
    post_refused(
        node,
        &format!("{proposals}/{unknown}/submit?force=maybe"),
        json!({}),
        400,
        "bad-request",
    );
    let huge = json!({ "action": embargo("ZW", &"x".repeat(100_000)) });
    post_refused(node, proposals, huge, 413, "too-large");
    let r = node.post(
        proposals,
        "application/json",
        embargo("ZW", "x").to_string().as_bytes(),
        None,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        node.get_json("/v1/feeds")["feeds"],
        json!([]),
        "nothing was signed"
    );
}

/// The show output's lines for version `version`, up to the next blank or version line.
fn version_block(text: &str, version: u64) -> Vec<&str> {
    let start = format!("version {version}  ");
    text.lines()
        .skip_while(|l| !l.starts_with(&start))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !(l.is_empty() || l.starts_with("version ")))
        .map(|(_, l)| l)
        .collect()
}

/// The admission of mine-na through the CLI, objected to by authority-be before it is
/// submitted; returns the record, the submit event and how long the record took to be in force
/// at all five nodes.
fn admit_through_the_cli(nodes: &[TestNode], dir: &std::path::Path) -> (String, String, Duration) {
    let file = dir.join("mine-na.json");
    std::fs::write(&file, new_mine().to_string()).expect("member file");
    let file = file.to_str().expect("path");
    let proposed: Value = serde_json::from_str(&custody(
        &nodes[ZW],
        &["gov", "propose", "admit", "--member-file", file, "--json"],
    ))
    .expect("JSON");
    let record = proposed["record"].as_str().expect("record").to_owned();
    wait_proposal(&nodes[BE], &record, 1, 0);
    custody(
        &nodes[BE],
        &[
            "gov",
            "object",
            &record,
            "--reason",
            "the licence is not on file",
        ],
    );
    for i in [BW, MINE, MONITOR] {
        wait_proposal(&nodes[i], &record, 1, 0);
        custody(&nodes[i], &["gov", "endorse", &record]);
    }
    wait_proposal(&nodes[ZW], &record, 4, 1);
    let submitted: Value =
        serde_json::from_str(&custody(&nodes[ZW], &["gov", "submit", &record, "--json"]))
            .expect("JSON");
    let since = Instant::now();
    assert_eq!(submitted["verdict"], "applied", "{submitted}");
    let took = wait_version(&nodes[..5], 1, since);
    let event = submitted["event"].as_str().expect("event").to_owned();
    (record, event, took)
}

#[test]
fn governance_through_the_api_and_the_cli_on_five_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let mut nodes = start_network(&bin, dir.path(), &MEMBERS, 1);
    bad_requests_are_refused_saying_what_to_fix(&nodes[MINE]);
    let bloc = a_bloc_of_governments_cannot_pass_a_record_alone(&nodes);

    // mine-na's node starts before governance admits it (it is in no genesis).
    let spec = NodeSpec {
        member: Some("mine-na".into()),
        bootstrap: vec![nodes[ZW].p2p_addr().expect("address")],
        sync_secs: 1,
        ..NodeSpec::default()
    };
    nodes.push(TestNode::start(&bin, &dir.path().join("n5"), &spec));
    let (admission, govern, took) = admit_through_the_cli(&nodes, dir.path());
    eprintln!(
        "admission record in force at all 5 nodes' /v1/gov {} ms after `custody gov submit` exited",
        took.as_millis()
    );
    wait_version(&nodes[5..], 1, Instant::now());

    shows_the_record_with_its_objection_beside_it(&nodes[MINE], &admission);
    wait_same_state(&nodes[..5]);

    // The stale bloc record extends version 0: it can be neither endorsed nor submitted now.
    for path in ["endorse", "submit"] {
        let m = post_refused(
            &nodes[MINE],
            &format!("/v1/gov/proposals/{bloc}/{path}"),
            json!({}),
            409,
            "superseded",
        );
        assert!(m.contains("superseded"), "{m}");
    }

    // The admitted member acts at once, and its event is applied everywhere.
    let registered = nodes[5].act_ok(&register("oranjemund", 700));
    wait_everywhere(&nodes, &registered, SPREAD);
    wait_verdict(&nodes, &registered, "applied", None);
    an_admitted_members_early_event_waits_for_its_admission(
        &nodes[ZW],
        dir.path(),
        &govern,
        &registered,
    );

    a_suspended_member_is_refused_and_a_reinstated_one_acts_at_once(&nodes);
}

/// `custody gov show` at `node` (once the objection has reached it): version 1 with its action,
/// endorsers and the objection beside it, then the state in force.
fn shows_the_record_with_its_objection_beside_it(node: &TestNode, record: &str) {
    wait_proposal(node, record, 4, 1);
    let shown = custody(node, &["gov", "show"]);
    let block = version_block(&shown, 1);
    assert!(block[0].contains(record), "{shown}");
    for line in [
        "action       admit mine-na",
        "endorsed by  authority-bw, authority-zw, mine-zw, monitor",
        "objection    authority-be: the licence is not on file",
    ] {
        assert!(
            block.iter().any(|l| l.contains(line)),
            "{line:?} in {shown}"
        );
    }
    assert!(
        shown.contains("in force at version 1:")
            && shown.contains("member   mine-na  industry  NA  mine"),
        "{shown}"
    );
    let json: Value =
        serde_json::from_str(&custody(node, &["gov", "show", "--json"])).expect("JSON");
    assert_eq!(
        json["versions"][1]["objections"][0]["member"],
        "authority-be"
    );
}

/// Governance suspends mine-zw (version 2): its node refuses its action, naming the suspension.
/// Reinstated (version 3), it acts at once, applied everywhere.
fn a_suspended_member_is_refused_and_a_reinstated_one_acts_at_once(nodes: &[TestNode]) {
    let seq = nodes[MINE].get_json("/v1/feeds/mine-zw")["seq"].clone();
    let suspend = json!({ "suspend": { "member": "mine-zw", "last_valid_seq": seq, "reason": "licence withdrawn" } });
    pass(nodes, MONITOR, suspend, &[ZW, BW, 5]);
    let took = wait_version(&nodes[..5], 2, Instant::now());
    eprintln!(
        "suspension record in force at all 5 nodes' /v1/gov {} ms after the submit answer",
        took.as_millis()
    );
    let refused = nodes[MINE].act(&register("marange", 100));
    let v = refused.json();
    assert_eq!(
        (refused.status, v["code"].as_str()),
        (422, Some("refused")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("suspended")),
        "{v}"
    );
    let reinstate = json!({ "reinstate": { "member": "mine-zw", "reason": "licence restored" } });
    pass(nodes, MONITOR, reinstate, &[ZW, BW, 5]);
    let took = wait_version(&nodes[..5], 3, Instant::now());
    eprintln!(
        "reinstatement record in force at all 5 nodes' /v1/gov {} ms after the submit answer",
        took.as_millis()
    );
    wait_version(nodes, 3, Instant::now());
    let back = nodes[MINE].act_ok(&register("marange", 100));
    wait_verdict(nodes, &back, "applied", None);
    wait_same_state(nodes);
}

/// An isolated observer given the log without the admission record: mine-na's event is refused
/// while nothing proposes its key, waits once the proposal is there, and is applied when the
/// admission record arrives.
fn an_admitted_members_early_event_waits_for_its_admission(
    source: &TestNode,
    dir: &std::path::Path,
    govern: &str,
    event: &str,
) {
    let observer = TestNode::start(
        &node_binary!(),
        &dir.join("observer"),
        &NodeSpec {
            member: None,
            bootstrap: Vec::new(),
            sync_secs: 1,
            ..NodeSpec::default()
        },
    );
    let early = source.event_bytes(event);
    let r = observer.submit(&early);
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("not-a-member"));
    let log = source.export_events();
    let mut admission = None;
    for bytes in &log {
        let id = event_id_of(bytes);
        if id == govern {
            admission = Some(bytes.clone());
        } else if id != event {
            assert_eq!(observer.submit(bytes).status, 200, "event {id}");
        }
    }
    let waits = observer.submit(&early).json();
    assert_eq!(
        (&waits["status"], &waits["missing"]),
        (&json!("pending"), &json!(["gov:1"])),
        "{waits}"
    );
    let stored = observer
        .submit(&admission.expect("the admission record in the log"))
        .json();
    assert_eq!(stored["verdict"], "applied", "{stored}");
    wait_verdict(std::slice::from_ref(&observer), event, "applied", None);
}

#[test]
fn two_quorate_records_for_one_version_are_a_governance_fork_at_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = node_binary!();
    let mut nodes = start_network(&bin, dir.path(), &MEMBERS, 1);
    // authority-bw, mine-zw and the monitor endorse both records; each has a quorum alone.
    let a = propose(&nodes[ZW], embargo("ZW", "first"));
    let b = propose(&nodes[BE], embargo("BW", "second"));
    for i in [BW, MINE, MONITOR] {
        endorse(&nodes[i], &a);
        endorse(&nodes[i], &b);
    }
    wait_proposal(&nodes[ZW], &a, 4, 0);
    wait_proposal(&nodes[BE], &b, 4, 0);
    // authority-be's node restarts cut off, so that each record is submitted where the other
    // is not known, then rejoins.
    nodes[BE].kill();
    let alone = NodeSpec {
        member: Some(MEMBERS[BE].into()),
        bootstrap: Vec::new(),
        sync_secs: 1,
        ..NodeSpec::default()
    };
    nodes[BE] = TestNode::start(&bin, &dir.path().join(format!("n{BE}")), &alone);
    let submit = |i: usize, r: &str| {
        post_ok(
            &nodes[i],
            &format!("/v1/gov/proposals/{r}/submit"),
            json!({}),
        )["event"]
            .as_str()
            .expect("event")
            .to_owned()
    };
    let (ga, gb) = (submit(ZW, &a), submit(BE, &b));
    let peer = nodes[ZW].p2p_addr().expect("address");
    post_ok(&nodes[BE], "/v1/peers", json!({ "addr": peer }));
    let mut records = [a.clone(), b.clone()];
    records.sort();
    for n in &nodes {
        wait_for(
            &format!("the governance fork at {}", n.http),
            SPREAD,
            || {
                let g = n.get_json("/v1/gov");
                (g["forks"].as_array().map_or(0, Vec::len) == 1).then_some(())
            },
        );
        let g = n.get_json("/v1/gov");
        assert_eq!(g["latest"], 0, "neither record is in force");
        assert_eq!(
            g["forks"],
            json!([{ "version": 1, "records": records, "double_endorsers": ["authority-bw", "mine-zw", "monitor"] }])
        );
    }
    for g in [&ga, &gb] {
        wait_verdict(&nodes, g, "void", Some("gov-forked"));
    }
    wait_same_state(&nodes);
}
