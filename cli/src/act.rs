//! The action commands (`register`, `dispatch`, ...): the node's own typed `Action`, parsed from arguments, sent to the node (or previewed), and the event and verdict reported.

use serde_json::{json, Value};

use custody_node::actions::Action;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::rules::{parcel_id, VoidReason};

use crate::client::{ClientError, Node};

/// Why an action did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("refused: {0}")]
    Refused(String),
    /// The node found a field the event cannot hold (422 `invalid-field`); its message names it.
    #[error("{0}")]
    InvalidField(String),
    #[error(transparent)]
    Client(ClientError),
}

/// Puts a void reason's name into words, when the message names one.
pub fn in_words(message: &str) -> String {
    let named = VoidReason::ALL
        .into_iter()
        .find(|r| message.contains(r.name()));
    match named {
        Some(r) => format!("{message}: {}", r.describe()),
        None => message.to_owned(),
    }
}

/// Sends an action; returns the node's answer `{event, verdict, reason}` for an applied event.
pub fn send(node: &Node, action: &Value) -> Result<Value, ActError> {
    match node.post_json("/v1/actions", action) {
        Ok(v) if v["verdict"] == "applied" => Ok(v),
        Ok(v) => {
            let reason = v["reason"].as_str().unwrap_or("void");
            Err(ActError::Refused(in_words(reason)))
        }
        Err(ClientError::Refused {
            status: 422,
            code,
            message,
        }) if code == "invalid-field" => Err(ActError::InvalidField(message)),
        Err(ClientError::Refused {
            status: 422,
            message,
            ..
        }) => Err(ActError::Refused(in_words(&message))),
        Err(e) => Err(ActError::Client(e)),
    }
}

/// The body the node would sign for `action`, without signing it.
pub fn preview(node: &Node, action: &Action) -> Result<Value, ActError> {
    let action = serde_json::to_value(action).map_err(|e| ActError::Refused(e.to_string()))?;
    match node.post_json("/v1/actions/preview", &action) {
        Ok(v) => Ok(v),
        Err(ClientError::Refused {
            status: 422,
            code,
            message,
        }) if code == "invalid-field" => Err(ActError::InvalidField(message)),
        Err(ClientError::Refused { message, .. }) => Err(ActError::Refused(in_words(&message))),
        Err(e) => Err(ActError::Client(e)),
    }
}

/// Prints what a certificate will declare (the values the node filled from its parcels).
fn show_certificate(preview: &Value) {
    let c = &preview["body"]["certify"];
    let carats = c["total_carats"].as_u64().unwrap_or(0);
    let origins: Vec<&str> = c["origins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "certificate {}  {} ct  {} USD  origin {}  HS {}",
        c["number"].as_str().unwrap_or("?"),
        ledger_core::amount::Carats(carats),
        cents_text(c["value_cents"].as_u64().unwrap_or(0)),
        origins.join(", "),
        preview["hs_code"].as_str().unwrap_or("?")
    );
}

fn cents_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Runs an action command and prints the result; with `dry_run`, prints the body the node
/// would sign and signs nothing.
pub fn run(node: &Node, action: &Action, json_out: bool, dry_run: bool) -> anyhow::Result<()> {
    let certifies = matches!(action, Action::Certify(_));
    if dry_run || certifies {
        let shown = preview(node, action)?;
        if dry_run {
            println!(
                "{}",
                if json_out {
                    shown.to_string()
                } else {
                    serde_json::to_string_pretty(&shown)?
                }
            );
            return Ok(());
        }
        if !json_out {
            show_certificate(&shown);
        }
    }
    let mut answer = send(node, &serde_json::to_value(action)?)?;
    // New parcels' ids follow from the event id (DESIGN.md section 3).
    let created = action.creates();
    let event: Option<EventId> = answer["event"].as_str().and_then(|e| e.parse().ok());
    if let (Some(event), true) = (event, created > 0) {
        let parcels: Vec<ParcelId> = (0..created as u32).map(|i| parcel_id(&event, i)).collect();
        answer["parcels"] = json!(parcels);
    }
    if json_out {
        println!("{answer}");
    } else {
        println!(
            "event   {}  {}",
            answer["event"].as_str().unwrap_or("?"),
            answer["verdict"].as_str().unwrap_or("?")
        );
        for p in answer["parcels"].as_array().into_iter().flatten() {
            println!("parcel  {}", p.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}
