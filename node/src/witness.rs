//! The witness duty in a node: checkpoint this node's replica, check the checkpoint against the
//! last view this witness cosigned (the C2SP rules, with consistency proofs from its own feed
//! trees), and hand back the view to persist before the `Witness` event that cosigns it is signed.

use ledger_core::checkpoint::{checkpoint, FeedHead};
use ledger_core::event::{Body, Checkpoint, Witness};
use ledger_core::ledger::Ledger;
use ledger_core::merkle::verify_consistency;
use ledger_core::types::MemberId;
use ledger_core::witness::{check, replica_proofs, Refusal, WitnessState};

/// A checkpoint ready to be cosigned: its body, what to keep, and the view to persist first.
#[derive(Debug, Clone)]
pub struct Cosign {
    pub body: Body,
    pub checkpoint: Checkpoint,
    pub heads: Vec<FeedHead>,
    pub state: WitnessState,
}

/// Why this node does not cosign now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("member {0} has no witness duty under the policy in force")]
    NoDuty(MemberId),
    #[error("refused to cosign this node's own checkpoint: {0}")]
    Refused(#[from] Refusal),
}

/// True when the policy in force gives `member` the witness duty.
pub fn has_duty(ledger: &Ledger, member: &MemberId) -> bool {
    ledger_core::witness::has_witness_duty(ledger.governance().latest_state(), member)
}

/// Checkpoints `ledger` at `time_ms` and checks it against `state`, the view last cosigned.
pub fn prepare(
    ledger: &Ledger,
    member: &MemberId,
    state: &WitnessState,
    time_ms: u64,
) -> Result<Cosign, WitnessError> {
    if !has_duty(ledger, member) {
        return Err(WitnessError::NoDuty(member.clone()));
    }
    // Never earlier than the last cosigned checkpoint: a clock set back must not look like a
    // rollback of the log.
    let time_ms = state
        .checkpoint
        .as_ref()
        .map_or(time_ms, |c| time_ms.max(c.time_ms));
    let (cp, heads) = checkpoint(ledger, time_ms);
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
    })
}
