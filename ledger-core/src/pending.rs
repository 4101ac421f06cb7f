//! The pending set: admitted events waiting for an event or governance version, bounded in all and per author.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::admission::VerifiedEvent;
use crate::bytes::EventId;
use crate::types::MemberId;

/// Default most events waiting for a dependency.
pub const MAX_PENDING_EVENTS: usize = 65_536;
/// Default most bytes of events waiting for a dependency.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// Default most events of one author waiting for a dependency: one member (or a thief of one
/// member's key) can take at most this share of the pending set.
pub const MAX_PENDING_PER_AUTHOR: usize = 4096;
/// Default most bytes of one author's events waiting for a dependency.
pub const MAX_PENDING_BYTES_PER_AUTHOR: usize = 8 * 1024 * 1024;

/// Bounds of the pending set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_pending_events: usize,
    pub max_pending_bytes: usize,
    pub max_pending_per_author: usize,
    pub max_pending_bytes_per_author: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending_events: MAX_PENDING_EVENTS,
            max_pending_bytes: MAX_PENDING_BYTES,
            max_pending_per_author: MAX_PENDING_PER_AUTHOR,
            max_pending_bytes_per_author: MAX_PENDING_BYTES_PER_AUTHOR,
        }
    }
}

impl Limits {
    /// No bounds (for events that were in the pending set already).
    pub(crate) const UNBOUNDED: Limits = Limits {
        max_pending_events: usize::MAX,
        max_pending_bytes: usize::MAX,
        max_pending_per_author: usize::MAX,
        max_pending_bytes_per_author: usize::MAX,
    };
}

/// What an event waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    Event(EventId),
    Gov(u64),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Event(id) => write!(f, "event {id}"),
            Missing::Gov(v) => write!(f, "governance version {v}"),
        }
    }
}

/// The pending set (or its author's share of it) is full; the event was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pending set is full{} ({events} events, {bytes} bytes); the event was not kept", if *.author_quota { " for this author" } else { "" })]
pub struct PendingFull {
    pub events: usize,
    pub bytes: usize,
    /// True when the author's own quota was reached, not the whole set.
    pub author_quota: bool,
}

#[derive(Debug, Default)]
pub(crate) struct PendingSet {
    /// Each waiting event and what it was registered as waiting for.
    pub(crate) events: HashMap<EventId, (VerifiedEvent, Vec<Missing>)>,
    /// For each missing dependency, the events waiting for it (every id in here is in `events`).
    pub(crate) waiting: HashMap<Missing, Vec<EventId>>,
    pub(crate) bytes: usize,
    /// Events and bytes waiting, per author (an author is removed when it has none).
    pub(crate) per_author: HashMap<MemberId, (usize, usize)>,
}

impl PendingSet {
    /// Keeps `ev` until `missing` arrives. An event already waiting keeps its registration.
    pub(crate) fn put(
        &mut self,
        ev: VerifiedEvent,
        missing: &[Missing],
        limits: Limits,
    ) -> Result<(), PendingFull> {
        let id = *ev.id();
        if self.events.contains_key(&id) {
            return Ok(());
        }
        let size = ev.bytes().len();
        let (mine, my_bytes) = self
            .per_author
            .get(&ev.header().author)
            .copied()
            .unwrap_or((0, 0));
        let author_quota = mine >= limits.max_pending_per_author
            || my_bytes + size > limits.max_pending_bytes_per_author;
        if author_quota
            || self.events.len() >= limits.max_pending_events
            || self.bytes + size > limits.max_pending_bytes
        {
            return Err(PendingFull {
                events: self.events.len(),
                bytes: self.bytes,
                author_quota,
            });
        }
        self.bytes += size;
        let entry = self
            .per_author
            .entry(ev.header().author.clone())
            .or_default();
        entry.0 += 1;
        entry.1 += size;
        for m in missing {
            self.waiting.entry(*m).or_default().push(id);
        }
        self.events.insert(id, (ev, missing.to_vec()));
        Ok(())
    }

    /// Removes a waiting event and every registration of it, so nothing stale is left behind.
    pub(crate) fn take(&mut self, id: &EventId) -> Option<VerifiedEvent> {
        let (ev, missing) = self.events.remove(id)?;
        let size = ev.bytes().len();
        self.bytes -= size;
        let author = &ev.header().author;
        if let Some(entry) = self.per_author.get_mut(author) {
            entry.0 -= 1;
            entry.1 -= size;
            if entry.0 == 0 {
                self.per_author.remove(author);
            }
        }
        for m in missing {
            if let Some(list) = self.waiting.get_mut(&m) {
                list.retain(|w| w != id);
                if list.is_empty() {
                    self.waiting.remove(&m);
                }
            }
        }
        Some(ev)
    }
}
