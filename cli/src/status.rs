//! `custody status`: what a node is and where it stands: network, member, peers, events,
//! pending, the newest checkpoint, and whether its last sync round with each peer found it
//! lacking anything.

use serde_json::{json, Value};

use crate::client::{ClientError, Node};

/// Whether the node is in sync with its peers, from its last anti-entropy round with each.
fn sync_state(status: &Value) -> (&'static str, String) {
    let peers: Vec<&str> = status["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if peers.is_empty() {
        return ("unknown", "no peers connected".into());
    }
    let rounds = &status["sync"];
    let unknown = peers.iter().filter(|p| rounds[**p].is_null()).count();
    let behind: Vec<String> = peers
        .iter()
        .filter_map(|p| {
            let missing = rounds[*p]["missing"].as_u64()?;
            (missing > 0).then(|| format!("{} lacks {missing} of {p}'s", short(p)))
        })
        .collect();
    let pending = status["pending"].as_u64().unwrap_or(0);
    if !behind.is_empty() {
        ("no", behind.join("; "))
    } else if pending > 0 {
        (
            "no",
            format!("{pending} events wait for what they depend on"),
        )
    } else if unknown > 0 {
        (
            "unknown",
            format!("no sync round yet with {unknown} of {} peers", peers.len()),
        )
    } else {
        (
            "yes",
            format!(
                "the last round with each of {} peers found nothing missing",
                peers.len()
            ),
        )
    }
}

fn short(p: &str) -> &str {
    p.get(p.len().saturating_sub(8)..).unwrap_or(p)
}

/// Prints the node's status; false when it is behind a peer or unhealthy.
pub fn run(node: &Node, json_out: bool) -> anyhow::Result<bool> {
    let status = node.get_json("/v1/status")?;
    let checkpoint = match node.get_json("/v1/checkpoints/latest") {
        Ok(v) => Some(v),
        Err(ClientError::Refused { status: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let (in_sync, why) = sync_state(&status);
    if json_out {
        let cp = checkpoint.as_ref().map(|c| {
            json!({"id": c["id"], "time_ms": c["checkpoint"]["time_ms"], "feeds": c["checkpoint"]["feeds"]})
        });
        println!(
            "{}",
            json!({"node": node.url(), "status": status, "checkpoint": cp, "in_sync": in_sync, "why": why})
        );
        return Ok(in_sync != "no" && status["healthy"] == true);
    }
    let field = |k: &str| status[k].to_string().trim_matches('"').to_owned();
    println!("node        {}", node.url());
    println!("network     {}", field("network"));
    println!(
        "member      {}",
        status["member"]
            .as_str()
            .unwrap_or("(observer: signs for no member)")
    );
    println!("peer id     {}", field("peer_id"));
    for a in status["listen"].as_array().into_iter().flatten() {
        println!("address     {}", a.as_str().unwrap_or("?"));
    }
    println!(
        "peers       {}",
        status["peers"].as_array().map_or(0, Vec::len)
    );
    println!("events      {}", field("events"));
    println!("pending     {}", field("pending"));
    println!("forks       {}", field("forks"));
    println!("governance  version {}", field("gov"));
    match &checkpoint {
        Some(c) => println!(
            "checkpoint  {} ({} feeds, at {} ms)",
            c["id"].as_str().unwrap_or("?"),
            c["checkpoint"]["feeds"],
            c["checkpoint"]["time_ms"]
        ),
        None => println!("checkpoint  none yet (witnesses produce them)"),
    }
    println!(
        "healthy     {}",
        if status["healthy"] == true {
            "yes"
        } else {
            "NO"
        }
    );
    println!("in sync     {in_sync}: {why}");
    Ok(in_sync != "no" && status["healthy"] == true)
}
