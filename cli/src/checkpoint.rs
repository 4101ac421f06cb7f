//! `custody checkpoint`: fetch a node's newest checkpoint, check that its heads make its root and
//! that it extends the newest one this client verified for the network before (consistency
//! proofs from the node), and remember it in a small state file: a node that shows an older or
//! inconsistent checkpoint, a rollback, is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use ledger_core::bytes::{Digest, NetworkId};
use ledger_core::checkpoint::{checkpoint_id, FeedHead};
use ledger_core::event::Checkpoint;
use ledger_core::governance::network_id;
use ledger_core::ledger::Fork;
use ledger_core::merkle::verify_consistency;
use ledger_core::types::MemberId;
use ledger_core::witness::{check, WitnessState};

use crate::client::Node;

/// Largest state file read.
const MAX_STATE_FILE: u64 = 64 * 1024 * 1024;

/// The newest checkpoint verified, per network (hex id), with the feed heads it stated.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Remembered {
    networks: BTreeMap<String, Seen>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seen {
    checkpoint: Checkpoint,
    heads: Vec<FeedHead>,
}

/// A node showed a checkpoint that does not extend the one remembered: exit 1.
#[derive(Debug, thiserror::Error)]
#[error("rollback refused: {0}")]
pub struct Rollback(pub String);

/// The default state file: `$XDG_STATE_HOME/custody/checkpoints.json`, else
/// `$HOME/.local/state/custody/checkpoints.json`.
pub fn default_state() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("custody").join("checkpoints.json"))
}

fn load(path: &Path) -> anyhow::Result<Remembered> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(Remembered::default());
    };
    anyhow::ensure!(
        meta.len() <= MAX_STATE_FILE,
        "{} is larger than {MAX_STATE_FILE} bytes",
        path.display()
    );
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a checkpoint state file", path.display()))
}

/// Writes beside and renames, so a crash leaves the old file or the new one, never half of one.
fn save(path: &Path, r: &Remembered) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(r)?)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("{}", path.display()))
}

/// The node's newest checkpoint (or the one with `id`), its heads checked against its root
/// and the network.
fn fetch(node: &Node, network: &NetworkId, id: Option<&Digest>) -> anyhow::Result<Seen> {
    let path = id.map_or_else(
        || "/v1/checkpoints/latest".to_owned(),
        |id| format!("/v1/checkpoints/{id}"),
    );
    let v = node.get_json(&path)?;
    let checkpoint: Checkpoint =
        serde_json::from_value(v["checkpoint"].clone()).context("the node's checkpoint")?;
    let heads: Vec<FeedHead> = serde_json::from_value(v["heads"].clone()).context("its heads")?;
    anyhow::ensure!(
        &checkpoint.network == network,
        "the node's checkpoint is of another network"
    );
    if let Some(id) = id {
        anyhow::ensure!(
            &checkpoint_id(&checkpoint) == id,
            "the node sent another checkpoint than {id}"
        );
    }
    Ok(Seen { checkpoint, heads })
}

/// Consistency proofs from the node, from each remembered feed size to the new one.
fn proofs(node: &Node, old: &Seen, new: &Seen) -> anyhow::Result<BTreeMap<MemberId, Vec<Digest>>> {
    let mut out = BTreeMap::new();
    for o in &old.heads {
        let Some(n) = new.heads.iter().find(|n| n.author == o.author) else {
            continue;
        };
        if n.seq > o.seq {
            let v = node.get_json(&format!(
                "/v1/feeds/{}/consistency?from={}&to={}",
                o.author, o.seq, n.seq
            ))?;
            let proof: Vec<Digest> =
                serde_json::from_value(v["proof"].clone()).context("a consistency proof")?;
            out.insert(o.author.clone(), proof);
        }
    }
    Ok(out)
}

/// The node's newest checkpoint (or the one with `id`), verified against the one remembered for
/// `network` in `state` and remembered in its place; returns it and the id of the one it
/// extends. A rollback is an error ([`Rollback`]). A feed that `forks` (verified evidence)
/// prove forked at or below the size remembered is stated shorter now, up to its fork: that
/// is checked afresh, not refused.
pub fn verify_checkpoint(
    node: &Node,
    network: &NetworkId,
    state: &Path,
    id: Option<&Digest>,
    forks: &[Fork],
) -> anyhow::Result<(Checkpoint, Option<Digest>)> {
    let mut remembered = load(state)?;
    let new = fetch(node, network, id)?;
    let key = network.to_string();
    let before = remembered.networks.get(&key).cloned();
    let prior = before
        .as_ref()
        .map_or_else(WitnessState::default, |s| WitnessState {
            checkpoint: Some(s.checkpoint.clone()),
            feeds: s
                .heads
                .iter()
                .filter(|h| !forks.iter().any(|f| f.author == h.author && f.seq <= h.seq))
                .map(|h| (h.author.clone(), (h.seq, h.root)))
                .collect(),
        });
    let proofs = match &before {
        Some(old) => proofs(node, old, &new)?,
        None => BTreeMap::new(),
    };
    check(
        &prior,
        network,
        &new.checkpoint,
        &new.heads,
        &proofs,
        verify_consistency,
    )
    .map_err(|e| Rollback(e.to_string()))?;
    remembered.networks.insert(key, new.clone());
    save(state, &remembered)?;
    Ok((new.checkpoint, before.map(|b| checkpoint_id(&b.checkpoint))))
}

/// Runs `custody checkpoint`: verifies the node's newest checkpoint against the one remembered
/// and remembers it; a rollback is an error.
pub fn run(node: &Node, state: &Path, as_json: bool) -> anyhow::Result<()> {
    let genesis = crate::inspect::node_genesis(node)?;
    let network = network_id(&genesis);
    let (cp, extends) = verify_checkpoint(node, &network, state, None, &[])?;
    let id = checkpoint_id(&cp);
    if as_json {
        println!(
            "{}",
            json!({"checkpoint": id, "time_ms": cp.time_ms, "feeds": cp.feeds,
                   "extends": extends, "state": state.display().to_string()})
        );
    } else {
        println!(
            "checkpoint {id} verified: {} feeds, time {}",
            cp.feeds, cp.time_ms
        );
        match extends {
            Some(prev) => println!(
                "  extends {prev}, the newest seen before (consistency proven feed by feed)"
            ),
            None => println!(
                "  the first seen for this network; remembered in {}",
                state.display()
            ),
        }
    }
    Ok(())
}
