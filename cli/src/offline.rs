//! Signing away from the node: `custody context` saves what signing needs, `custody sign` builds
//! and signs an event from it on a machine with no node (a national authority's offline key),
//! and `custody submit` hands the event to a node.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{json, Value};

use custody_node::actions::Action;
use custody_node::config::read_secret_key;
use custody_node::signing::{body_json, SigningContext};
use ledger_core::codec::MAX_EVENT_BYTES;
use ledger_core::writer::sign;

use crate::act::{in_words, ActError};
use crate::client::{ClientError, Node};
use crate::keys::read_limited;

/// Largest signing context file read (a context of the most parcels is far smaller).
const MAX_CONTEXT_FILE: u64 = 4 * 1024 * 1024;

/// `custody context`: fetches the signing context of `member` and writes it to `out`.
pub fn save_context(
    node: &Node,
    member: &str,
    parcels: &[String],
    certificates: &[String],
    out: &Path,
) -> anyhow::Result<()> {
    let parcels: Vec<String> = parcels.iter().map(|p| url_encode(p)).collect();
    let numbers: Vec<String> = certificates.iter().map(|c| url_encode(c)).collect();
    let path = format!(
        "/v1/signing-context?member={}&parcels={}&certificates={}",
        url_encode(member),
        parcels.join(","),
        numbers.join(",")
    );
    let ctx = node.get_json(&path)?;
    let text = serde_json::to_string_pretty(&ctx)?;
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "signing context of {member} (next seq {}) written to {}",
        ctx["position"]["len"].as_u64().unwrap_or(0) + 1,
        out.display()
    );
    Ok(())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads a signing context file.
pub fn read_context(path: &Path) -> anyhow::Result<SigningContext> {
    let bytes = read_limited(path, MAX_CONTEXT_FILE)?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a signing context (make one with `custody context`)",
            path.display()
        )
    })
}

/// `custody sign`: builds `action`'s body from the context, signs it as the member's next event
/// with the key in `key_file`, and writes the event's bytes to `out`.
pub fn sign_offline(
    key_file: &Path,
    ctx: &SigningContext,
    action: Action,
    out: &Path,
    json_out: bool,
) -> anyhow::Result<()> {
    let key = read_secret_key(key_file)?;
    let body = action
        .body(ctx, &ctx.member)
        .map_err(|e| ActError::Refused(e.to_string()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let header = ctx
        .position
        .next_header(ctx.network, ctx.member.clone(), &key, now)?;
    let seq = header.seq;
    let shown = body_json(&body);
    let signed = sign(header, body, &key);
    std::fs::write(out, &signed.bytes).with_context(|| format!("writing {}", out.display()))?;
    if json_out {
        println!(
            "{}",
            json!({"event": signed.id, "seq": seq, "member": ctx.member, "body": shown, "out": out})
        );
    } else {
        println!("event   {}  (seq {seq} of {})", signed.id, ctx.member);
        println!("body    {shown}");
        println!("wrote   {} ({} bytes)", out.display(), signed.bytes.len());
    }
    Ok(())
}

/// `custody submit`: posts a signed event's bytes to a node and reports its verdict; a void
/// verdict is still stored (the attempt is on record). True when it applied.
pub fn submit(node: &Node, file: &Path, json_out: bool) -> anyhow::Result<bool> {
    let bytes = read_limited(file, MAX_EVENT_BYTES as u64)?;
    let answer: Value = match node.post_event(&bytes) {
        Ok(v) => v,
        Err(ClientError::Refused { message, .. }) => {
            return Err(ActError::Refused(in_words(&message)).into())
        }
        Err(e) => return Err(ActError::Client(e).into()),
    };
    let applied = answer["verdict"] == "applied";
    if json_out {
        println!("{answer}");
        return Ok(applied);
    }
    let event = answer["event"].as_str().unwrap_or("?");
    match answer["status"].as_str() {
        Some("stored") if applied => println!("event   {event}  stored, applied"),
        Some("stored") => println!(
            "event   {event}  stored, VOID ({})",
            in_words(answer["reason"].as_str().unwrap_or("void"))
        ),
        Some("duplicate") => println!("event   {event}  already stored"),
        _ => println!("event   {event}  waiting for {}", answer["missing"]),
    }
    Ok(applied)
}
