//! The witness duty in a node: checkpoint this node's replica as of a cutoff, check the
//! checkpoint against the last view this witness cosigned (the C2SP rules, with consistency
//! proofs from its own feed trees), and hand back the view to persist before the `Witness` event
//! that cosigns it is signed. Cutoffs are aligned to the interval, so witnesses whose replicas
//! hold the same feed prefixes make the same checkpoint and their cosignatures add up.

use std::sync::Arc;

use ledger_core::admission::decode_event;
use ledger_core::bytes::EventId;

use ledger_core::checkpoint::{
    checkpoint_id, checkpoint_with_index, feed_heads_at, feeds_root, FeedHead,
};
use ledger_core::event::{Body, Checkpoint, Govern, Witness};
use ledger_core::ledger::Ledger;
use ledger_core::merkle::verify_consistency;
use ledger_core::parcel_index::ParcelIndex;
use ledger_core::store::Store;
use ledger_core::types::MemberId;
use ledger_core::witness::has_witness_duty;
use ledger_core::witness::{check, replica_proofs, Refusal, WitnessState};

/// How long after a cutoff a node checkpoints it, at most (half the interval when that is
/// shorter): time for the events claimed before it to reach every replica.
pub const MAX_CHECKPOINT_LAG_MS: u64 = 5_000;

/// A checkpoint ready to be cosigned: its body, what to keep, and the view to persist first.
#[derive(Debug, Clone)]
pub struct Cosign {
    pub body: Body,
    pub checkpoint: Checkpoint,
    pub heads: Vec<FeedHead>,
    pub state: WitnessState,
    /// The parcel index the checkpoint commits to (kept for serving bundles).
    pub index: Arc<ParcelIndex>,
}

/// Why this node does not cosign now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("member {0} has no witness duty under the policy in force")]
    NoDuty(MemberId),
    #[error("refused to cosign this node's own checkpoint: {0}")]
    Refused(#[from] Refusal),
    #[error("the checkpoint of this cutoff is cosigned already")]
    Cosigned,
    #[error("this replica makes another checkpoint for that cutoff")]
    Differs,
    #[error(
        "this node's member cosigned a checkpoint of {time_ms} that this replica does not make \
         (a node restored from an old backup, or a second installation): it cosigns again once \
         its replica has caught up"
    )]
    BehindOwnCosignature { time_ms: u64 },
}

/// True when the policy in force gives `member` the witness duty.
pub fn has_duty(ledger: &Ledger, member: &MemberId) -> bool {
    ledger_core::witness::has_witness_duty(ledger.governance().latest_state(), member)
}

/// The newest cutoff to checkpoint at `now_ms`: the last multiple of the interval at least the
/// lag before now.
pub fn cutoff(now_ms: u64, interval_secs: u64) -> u64 {
    let interval = interval_secs.max(1).saturating_mul(1000);
    let lag = MAX_CHECKPOINT_LAG_MS.min(interval / 2);
    now_ms.saturating_sub(lag) / interval * interval
}

/// The view to check a new checkpoint against: `stored`, the view this node persisted, unless
/// `own` (the newest checkpoint the member's own `Witness` events in the replica carry) is newer.
/// Then the member cosigned it from elsewhere (this node restored from an old backup, or a second
/// installation of the member): its view is that checkpoint's, recovered from the replica's feed
/// heads, and until the replica makes it again nothing is cosigned, so the member never signs a
/// view that rolls back one it signed.
pub fn last_view(
    ledger: &Ledger,
    stored: &WitnessState,
    own: Option<&Checkpoint>,
) -> Result<WitnessState, WitnessError> {
    let newer = own.filter(|c| {
        stored
            .checkpoint
            .as_ref()
            .is_none_or(|s| c.time_ms > s.time_ms)
    });
    let Some(own) = newer else {
        return Ok(stored.clone());
    };
    let heads = feed_heads_at(ledger, own.time_ms);
    if heads.len() as u64 != own.feeds || feeds_root(&heads) != own.feeds_root {
        return Err(WitnessError::BehindOwnCosignature {
            time_ms: own.time_ms,
        });
    }
    Ok(WitnessState {
        checkpoint: Some(own.clone()),
        feeds: heads
            .into_iter()
            .map(|h| (h.author, (h.seq, h.root)))
            .collect(),
    })
}

/// The newest checkpoint `member`'s own `Witness` events near the head of its feed carry.
pub fn own_latest(store: &Store, member: &MemberId) -> Option<Checkpoint> {
    near_head(store, member)
        .into_iter()
        .map(|(_, cp)| cp)
        .max_by_key(|cp| cp.time_ms)
}

/// Checkpoints `ledger` as of `cutoff` and checks it against `state`, the view last cosigned
/// (see [`last_view`]); with `target`, only when the replica makes exactly that checkpoint
/// (another witness's).
pub fn prepare(
    ledger: &Ledger,
    member: &MemberId,
    state: &WitnessState,
    cutoff: u64,
    target: Option<&Checkpoint>,
    govern: impl Fn(&EventId) -> Option<Govern>,
) -> Result<Cosign, WitnessError> {
    if !has_duty(ledger, member) {
        return Err(WitnessError::NoDuty(member.clone()));
    }
    let (cp, heads, index) = checkpoint_with_index(ledger, cutoff, govern);
    if target.is_some_and(|t| t != &cp) {
        return Err(WitnessError::Differs);
    }
    if state.checkpoint.as_ref() == Some(&cp) {
        return Err(WitnessError::Cosigned);
    }
    // A feed proven forked at or below the size cosigned before is stated shorter now (up to
    // its fork): that is not a rollback to refuse, the fork proof is the evidence, and it
    // reaches every node. Such a feed is checked afresh from here.
    let mut state = state.clone();
    state.feeds.retain(|author, (size, _)| {
        ledger
            .feed(author)
            .and_then(|f| f.forked_at)
            .is_none_or(|f| f > *size)
    });
    let proofs = replica_proofs(ledger, &state, &heads);
    let next = check(
        &state,
        ledger.network(),
        &cp,
        &heads,
        &proofs,
        verify_consistency,
    )?;
    Ok(Cosign {
        body: Body::Witness(Witness {
            checkpoint: cp.clone(),
            cosignatures: Vec::new(),
        }),
        checkpoint: cp,
        heads,
        state: next,
        index: Arc::new(index),
    })
}

/// How far back in each witness's feed `Witness` events are looked for (a witness signs one per
/// checkpoint interval, so this spans many intervals).
pub const WITNESS_LOOKBACK: u64 = 64;
/// Most foreign checkpoints a node tries to adopt per round.
pub const MAX_ADOPT: usize = 8;

/// Most checkpoints [`unmatched`] lists.
pub const MAX_UNMATCHED: usize = 16;
/// How long after its cutoff a checkpoint another witness cosigned must be before this replica
/// not making it counts: time for the events claimed before the cutoff to reach it.
pub const UNMATCHED_AFTER_MS: u64 = 2 * MAX_CHECKPOINT_LAG_MS;

/// A checkpoint a witness cosigned that this replica does not make for its cutoff.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unmatched {
    pub witness: MemberId,
    pub id: ledger_core::bytes::Digest,
    pub checkpoint: Checkpoint,
}

/// The checkpoints witnesses cosigned (near the head of their feeds), older than
/// [`UNMATCHED_AFTER_MS`] at `now_ms` and not kept here, whose feeds this replica states
/// otherwise as of their cutoff: a split view (a branch of a fork shown to one side), events
/// withheld from this node, or events published after the cutoff and claimed before it. Newest
/// first, at most [`MAX_UNMATCHED`].
pub fn unmatched(store: &Store, now_ms: u64) -> Vec<Unmatched> {
    let ledger = store.ledger();
    let mut out: Vec<Unmatched> = Vec::new();
    // Each checkpoint is checked once, however many witnesses cosigned it.
    let mut seen = std::collections::HashSet::new();
    for (witness, _, cp) in recent_witness_events(store) {
        if out.len() == MAX_UNMATCHED {
            break;
        }
        let id = checkpoint_id(&cp);
        let settled = cp.time_ms.saturating_add(UNMATCHED_AFTER_MS) <= now_ms;
        if !settled || !seen.insert(id) {
            continue;
        }
        if store.checkpoint(&id).ok().flatten().is_some() {
            continue;
        }
        let heads = feed_heads_at(ledger, cp.time_ms);
        if heads.len() as u64 == cp.feeds && feeds_root(&heads) == cp.feeds_root {
            continue;
        }
        out.push(Unmatched {
            witness,
            id,
            checkpoint: cp,
        });
    }
    out
}

/// Reads a stored governance carrier's record.
pub fn govern_reader(store: &Store) -> impl Fn(&EventId) -> Option<Govern> + '_ {
    move |id| {
        let bytes = store.event_bytes(id).ok().flatten()?;
        match decode_event(&bytes, store.ledger().network()).ok()?.body() {
            Body::Govern(g) => Some(g.clone()),
            _ => None,
        }
    }
}

/// Stored event `id`, if it is a `Witness` event: its bytes and the checkpoint it carries.
fn witness_event(store: &Store, id: &EventId) -> Option<(Vec<u8>, Checkpoint)> {
    let bytes = store.event_bytes(id).ok().flatten()?;
    match decode_event(&bytes, store.ledger().network()).ok()?.body() {
        Body::Witness(w) => {
            let cp = w.checkpoint.clone();
            Some((bytes, cp))
        }
        _ => None,
    }
}

/// The `Witness` events among the last [`WITNESS_LOOKBACK`] events of `member`'s feed, newest
/// first, with their checkpoints.
fn near_head(store: &Store, member: &MemberId) -> Vec<(Vec<u8>, Checkpoint)> {
    let Some(feed) = store.ledger().feed(member) else {
        return Vec::new();
    };
    let len = feed.ids.len() as u64;
    (len.saturating_sub(WITNESS_LOOKBACK) + 1..=len)
        .rev()
        .filter_map(|seq| feed.slot(seq).and_then(|e| witness_event(store, e)))
        .collect()
}

/// The `Witness` events near the head of every witness's feed, with their witness and
/// checkpoint, newest first by checkpoint time.
pub fn recent_witness_events(store: &Store) -> Vec<(MemberId, Vec<u8>, Checkpoint)> {
    let gov = store.ledger().governance().latest_state();
    let mut out: Vec<(MemberId, Vec<u8>, Checkpoint)> = gov
        .members
        .keys()
        .filter(|m| has_witness_duty(gov, m))
        .flat_map(|m| {
            near_head(store, m)
                .into_iter()
                .map(move |(bytes, cp)| (m.clone(), bytes, cp))
        })
        .collect();
    out.sort_by_key(|(_, _, cp)| std::cmp::Reverse(cp.time_ms));
    out
}

/// The `Witness` events, one per witness at most, that cosign `cp`, however old: each witness's
/// feed is searched from the first event claimed at or after the checkpoint's time.
pub fn witness_events_of(store: &Store, cp: &Checkpoint) -> Vec<Vec<u8>> {
    let ledger = store.ledger();
    let gov = ledger.governance().latest_state();
    let mut out = Vec::new();
    for member in gov.members.keys().filter(|m| has_witness_duty(gov, m)) {
        let Some(feed) = ledger.feed(member) else {
            continue;
        };
        let claimed = |id: &EventId| ledger.event(id).map_or(u64::MAX, |m| m.time_ms);
        let from = feed.ids.partition_point(|id| claimed(id) < cp.time_ms);
        let cosigning = feed
            .ids
            .iter()
            .skip(from)
            .take(WITNESS_LOOKBACK as usize)
            .filter_map(|id| witness_event(store, id))
            .find(|(_, c)| c == cp);
        out.extend(cosigning.map(|(bytes, _)| bytes));
    }
    out
}

/// A checkpoint to keep, its heads and its parcel index.
pub type Adoptable = (Checkpoint, Vec<FeedHead>, Arc<ParcelIndex>);

/// Checkpoints other witnesses cosigned that this node does not keep yet and that its replica
/// makes too (same cutoff, same heads): each with its heads, to keep and serve bundles of.
pub fn adoptable(store: &Store) -> Vec<Adoptable> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (_, _, cp) in recent_witness_events(store) {
        let id = checkpoint_id(&cp);
        if !seen.insert(id) || seen.len() > MAX_ADOPT {
            continue;
        }
        if store.checkpoint(&id).ok().flatten().is_some() {
            continue;
        }
        // The feed heads first (cheap): the parcel index is built only for a likely match.
        let heads = feed_heads_at(store.ledger(), cp.time_ms);
        if heads.len() as u64 != cp.feeds || feeds_root(&heads) != cp.feeds_root {
            continue;
        }
        let (mine, heads, index) =
            checkpoint_with_index(store.ledger(), cp.time_ms, govern_reader(store));
        if mine == cp {
            out.push((cp, heads, Arc::new(index)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_align_to_the_interval_and_leave_a_lag() {
        assert_eq!(cutoff(600_000 + 4_999, 600), 0);
        assert_eq!(cutoff(600_000 + 5_000, 600), 600_000);
        assert_eq!(cutoff(1_000_000, 1), 999_000);
        assert_eq!(cutoff(1_000_400, 1), 999_000);
        assert_eq!(cutoff(1_000_500, 1), 1_000_000);
    }

    /// A ledger of the standard network holding the mine's first `n` registrations, claimed a
    /// second apart from `T0`.
    fn mine_ledger(n: u64) -> Ledger {
        use ledger_core::crypto::KeyCache;
        let dev = ledger_core::dev::DevNetwork::standard();
        let mut ledger =
            Ledger::new(dev.genesis(), ledger_core::ledger::Limits::default()).expect("genesis");
        let mut w = dev.writer("mine-bw").expect("member");
        for i in 0..n {
            let body = Body::Register(ledger_core::event::Register {
                site: "jwaneng".parse().expect("site"),
                carats: 100 + i,
                stones: 1,
                value_cents: None,
                seal: String::new(),
                extracted_on: "2026-01-01".parse().expect("date"),
            });
            let e = w.append(body, T0 + i * 1000);
            let v = ledger_core::admission::verify_event(
                &e.bytes,
                ledger.network(),
                &KeyCache::default(),
            )
            .expect("valid");
            ledger.offer(v).expect("room");
        }
        ledger
    }

    const T0: u64 = 1_780_000_000_000;

    /// The view a witness cosigning the checkpoint of `ledger` at `time` keeps.
    fn view(ledger: &Ledger, time: u64) -> (Checkpoint, WitnessState) {
        let (cp, heads) = ledger_core::checkpoint::checkpoint_at(ledger, time, |_| None);
        let state = WitnessState {
            checkpoint: Some(cp.clone()),
            feeds: heads
                .into_iter()
                .map(|h| (h.author, (h.seq, h.root)))
                .collect(),
        };
        (cp, state)
    }

    #[test]
    fn a_witness_behind_its_own_last_cosignature_does_not_cosign_its_older_replica() {
        // The node was restored from a backup: its stored view is of 3 registrations, and the
        // replica holds 3, but the member's own Witness event (synced back from the network)
        // cosigned a checkpoint stating 5. Checked against the stored view, the old replica's
        // checkpoint would pass and roll back what the member signed.
        let (_, stored) = view(&mine_ledger(3), T0 + 2_500);
        let (own, own_view) = view(&mine_ledger(5), T0 + 4_500);
        let old = mine_ledger(3);
        let e = last_view(&old, &stored, Some(&own)).expect_err("behind its own cosignature");
        assert_eq!(
            e,
            WitnessError::BehindOwnCosignature {
                time_ms: own.time_ms
            }
        );
        // Caught up, the view is the member's own newest one, whatever the store said.
        let caught_up = mine_ledger(6);
        assert_eq!(
            last_view(&caught_up, &stored, Some(&own)),
            Ok(own_view.clone())
        );
        // No newer own cosignature: the stored view.
        assert_eq!(last_view(&old, &stored, None), Ok(stored.clone()));
        assert_eq!(last_view(&caught_up, &own_view, Some(&own)), Ok(own_view));
    }
}
