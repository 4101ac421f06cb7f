//! Stateful admission: where an admitted event goes (its feed slot, a fork, a void branch, or the
//! pending set), after the checks that need the ledger (membership, key, links, time, governance
//! version, feed root).

use crate::admission::{AdmissionError, VerifiedEvent};
use crate::bytes::EventId;
use crate::event::Header;
use crate::governance::{GovState, Governance};
use crate::merkle::Frontier;
use crate::pending::Missing;
use crate::proposals::Proposals;
use crate::state::{Feed, State};

/// Where an admitted event goes.
pub(crate) enum Place {
    Duplicate,
    Wait(Vec<Missing>),
    Next,
    /// A second event at a held slot; `chain` is the frontier of the slots before it.
    Fork {
        chain: Frontier,
    },
    /// An event extending a void branch; `chain` is the frontier of the branch up to its prev.
    Branch {
        chain: Frontier,
    },
    /// An event signed with a key that the newest governance state does not assign to its seq
    /// (revoked, or rotated away): kept as evidence, holding no slot and proving no fork;
    /// `chain` is the frontier of its own `prev` chain.
    Revoked {
        chain: Frontier,
    },
    /// A proof bundle's event in the slot its inclusion proof proved.
    Proven,
}

/// Where an event goes: admission checks that need the ledger (membership, key, feed links,
/// time, governance version, feed root) and dependencies.
pub(crate) fn locate(
    state: &State,
    gov: &Governance,
    proposals: &Proposals,
    any_key: bool,
    ev: &VerifiedEvent,
) -> Result<Place, AdmissionError> {
    let h = ev.header();
    if state.events.contains_key(ev.id()) {
        return Ok(Place::Duplicate);
    }
    if let Some(wait) = check_version(gov, proposals, any_key, h)? {
        return Ok(wait);
    }
    let prev_meta = if h.seq == 1 {
        None
    } else {
        match state.events.get(&h.prev) {
            Some(m) if m.author == h.author && m.seq == h.seq - 1 => Some(m),
            Some(_) => return Err(AdmissionError::BrokenPrev),
            None => return Ok(Place::Wait(vec![Missing::Event(h.prev)])),
        }
    };
    if let Some(p) = prev_meta {
        if h.time_ms < p.time_ms {
            return Err(AdmissionError::TimeBackwards);
        }
        if h.gov < p.gov {
            return Err(AdmissionError::GovBackwards);
        }
    }
    let place = place_in_feed(state, gov.latest_state(), h)?;
    Ok(wait_for_dependencies(state, ev).unwrap_or(place))
}

/// The governance checks of placement: the author must be a member signing with its key for
/// the version it cites; an event citing a version not taken yet waits for it (`Some`).
fn check_version(
    gov: &Governance,
    proposals: &Proposals,
    any_key: bool,
    h: &Header,
) -> Result<Option<Place>, AdmissionError> {
    let halted = h.gov > gov.latest() && gov.halted_below(h.gov);
    if h.gov > gov.latest() {
        // Only a member signing with one of its keys, or with a key a stored proposal would
        // give it (an admission, a new or rotated key), may wait for a governance version.
        // A replay (`any_key`) lets a member's event with a key not granted yet wait: the
        // record granting it may come later in the set, and a set replays the same in any order.
        if !proposals.proposes_key(&h.author, &h.key) {
            match check_author(gov, gov.latest(), h, false) {
                Err(AdmissionError::WrongKey) if any_key || halted => {}
                other => other?,
            }
        }
        if !halted {
            return Ok(Some(Place::Wait(vec![Missing::Gov(h.gov)])));
        }
        // The version it cites was in force under a record a governance fork voided: the
        // event is stored (void `gov-forked`), in its feed, as it was where it was first seen.
    } else {
        check_author(gov, h.gov, h, true)?;
    }
    Ok(None)
}

/// `Some(wait)` when events the body cites are not stored yet.
fn wait_for_dependencies(state: &State, ev: &VerifiedEvent) -> Option<Place> {
    let missing: Vec<Missing> = ev
        .body()
        .dependencies()
        .into_iter()
        .filter(|d| !state.events.contains_key(d))
        .map(Missing::Event)
        .collect();
    (!missing.is_empty()).then_some(Place::Wait(missing))
}

/// How a proof bundle's ledger places its events: no feed prefix, only some events of each feed.
#[derive(Debug, Clone, Default)]
pub struct ProvenSlots {
    /// Events whose slot an inclusion proof in a checkpointed feed proved.
    pub proven: std::collections::HashSet<EventId>,
    /// For a proven event, the proven event of the same author just below it in seq: the feed
    /// order that decides which of two events citing one head comes first.
    pub prior: std::collections::HashMap<EventId, EventId>,
}

/// Where a proof bundle's event goes. A proven event holds its slot once the proven event
/// before it in its feed is placed (time and version must not go backwards from it); any other
/// event is evidence: off its feed's slots, a fork's other event or one signed with a revoked
/// key (the caller checks that it ends void).
pub(crate) fn locate_proven(
    state: &State,
    gov: &Governance,
    proposals: &Proposals,
    slots: &ProvenSlots,
    ev: &VerifiedEvent,
) -> Result<Place, AdmissionError> {
    let h = ev.header();
    if state.events.contains_key(ev.id()) {
        return Ok(Place::Duplicate);
    }
    if let Some(wait) = check_version(gov, proposals, true, h)? {
        return Ok(wait);
    }
    if let Some(prior) = slots.prior.get(ev.id()) {
        let Some(p) = state.events.get(prior) else {
            return Ok(Place::Wait(vec![Missing::Event(*prior)]));
        };
        if h.time_ms < p.time_ms {
            return Err(AdmissionError::TimeBackwards);
        }
        if h.gov < p.gov {
            return Err(AdmissionError::GovBackwards);
        }
    }
    if let Some(wait) = wait_for_dependencies(state, ev) {
        return Ok(wait);
    }
    let revoked = gov.latest_state().key_for(&h.author, h.seq) != Some(&h.key);
    Ok(if revoked {
        Place::Revoked {
            chain: Frontier::default(),
        }
    } else if slots.proven.contains(ev.id()) {
        Place::Proven
    } else {
        Place::Fork {
            chain: Frontier::default(),
        }
    })
}

/// The author must be a member at governance version `gov`, signing with the key assigned to
/// it for this seq (`exact`), or with any of its keys (for an event citing a later version).
fn check_author(
    gov: &Governance,
    version: u64,
    h: &Header,
    exact: bool,
) -> Result<(), AdmissionError> {
    let gov = gov.at(version).ok_or(AdmissionError::GovBackwards)?;
    let member = gov
        .members
        .get(&h.author)
        .ok_or_else(|| AdmissionError::NotAMember(h.author.to_string()))?;
    let ok = if exact {
        gov.key_for(&h.author, h.seq) == Some(&h.key)
    } else {
        member.keys.iter().any(|g| g.key == h.key)
    };
    if ok {
        Ok(())
    } else {
        Err(AdmissionError::WrongKey)
    }
}

/// Where an event whose `prev` is stored goes in its author's feed, after checking its
/// `feed_root` against its own `prev` chain (the slots, or the void branch it extends).
fn place_in_feed(state: &State, binding: &GovState, h: &Header) -> Result<Place, AdmissionError> {
    let empty = Feed::default();
    let feed = state.feeds.get(&h.author).unwrap_or(&empty);
    let len = feed.ids.len() as u64;
    let revoked = binding.key_for(&h.author, h.seq) != Some(&h.key);
    let on_main_branch = h.seq == 1 || feed.ids.get((h.seq - 2) as usize) == Some(&h.prev);
    let chain = if !on_main_branch {
        // prev is a stored event of this author at seq - 1 that holds no slot: it is on a void
        // branch after a proven fork, or signed with a revoked key, and so is this event.
        state
            .branches
            .get(&h.prev)
            .ok_or(AdmissionError::BrokenPrev)?
            .clone()
    } else if h.seq - 1 == len {
        if !revoked {
            if h.feed_root != feed.root() {
                return Err(AdmissionError::BadFeedRoot);
            }
            return Ok(Place::Next);
        }
        feed.tree().frontier()
    } else {
        // A second event at a held slot: its chain is the slots before it, copied from the
        // feed's tree (no pass over the feed).
        feed.tree()
            .frontier_at(h.seq - 1)
            .map_err(|_| AdmissionError::BrokenPrev)?
    };
    if h.feed_root != chain.root() {
        return Err(AdmissionError::BadFeedRoot);
    }
    Ok(if revoked {
        Place::Revoked { chain }
    } else if on_main_branch {
        Place::Fork { chain }
    } else {
        Place::Branch { chain }
    })
}
