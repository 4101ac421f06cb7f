//! Building and signing the next events of one member's feed (the only way custody code makes events).

use serde::{Deserialize, Serialize};

use crate::admission::event_id;
use crate::bytes::{Digest, EventId, NetworkId};
use crate::codec;
use crate::crypto::SecretKey;
use crate::event::{Body, Header, Payload};
use crate::ledger::Ledger;
use crate::merkle::{self, Frontier};
use crate::types::MemberId;

/// A signed event: its id and exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub id: EventId,
    pub bytes: Vec<u8>,
}

/// Signs `header` and `body` with `key`.
pub fn sign(header: Header, body: Body, key: &SecretKey) -> Signed {
    let network = header.network;
    let mut bytes = codec::encode(&Payload { header, body });
    let id = event_id(&bytes);
    let signature = key.sign_event(&network, &bytes);
    bytes.extend_from_slice(signature.as_bytes());
    Signed { id, bytes }
}

/// Where one member's feed stands: all it takes to sign the feed's next event anywhere, a
/// machine with no node included (`custody sign`). The frontier (`peaks`) gives the feed root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPosition {
    /// Events in the feed so far (the next event's seq is one more).
    pub len: u64,
    /// The last event's id, if any.
    pub last: Option<EventId>,
    /// Roots of the perfect subtrees of the feed's tree, largest first (one per bit of `len`).
    pub peaks: Vec<Digest>,
    /// The governance version the next event acts under (the newest the node knows).
    pub gov: u64,
    /// The last event's claimed time: the next one's is never earlier.
    pub last_time_ms: u64,
}

/// A feed position whose frontier does not fit its length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the feed position is inconsistent: {0}")]
pub struct PositionError(&'static str);

impl FeedPosition {
    /// Where `author`'s feed in `ledger` stands, to act under the newest governance version.
    pub fn of(ledger: &Ledger, author: &MemberId) -> FeedPosition {
        let feed = ledger.feed(author);
        let last = feed.and_then(|f| f.ids.last().copied());
        let frontier = feed.map(|f| f.tree().frontier()).unwrap_or_default();
        let meta = last.and_then(|id| ledger.event(&id));
        FeedPosition {
            len: frontier.size(),
            last,
            peaks: frontier.peaks().to_vec(),
            gov: ledger.governance().latest(),
            last_time_ms: meta.map_or(0, |m| m.time_ms),
        }
    }

    /// The header of the next event, signed by `key` for `author` at `time_ms` (never earlier
    /// than the last event).
    pub fn next_header(
        &self,
        network: NetworkId,
        author: MemberId,
        key: &SecretKey,
        time_ms: u64,
    ) -> Result<Header, PositionError> {
        if self.peaks.len() as u32 != self.len.count_ones() {
            return Err(PositionError("peaks do not match the length"));
        }
        if self.last.is_some() != (self.len > 0) {
            return Err(PositionError("the last event does not match the length"));
        }
        let frontier = Frontier::from_peaks(self.len, self.peaks.clone());
        Ok(Header {
            network,
            author,
            key: key.public(),
            seq: self.len + 1,
            prev: self.last.unwrap_or_default(),
            feed_root: frontier.root(),
            gov: self.gov,
            time_ms: time_ms.max(self.last_time_ms),
        })
    }
}

/// The writer of one member's feed: it tracks seq, prev, feed root, time and governance version.
/// Only one writer may exist per feed, or the member forks its own feed.
#[derive(Debug)]
pub struct FeedWriter {
    network: NetworkId,
    author: MemberId,
    key: SecretKey,
    ids: Vec<EventId>,
    frontier: Frontier,
    gov: u64,
    last_time_ms: u64,
}

impl FeedWriter {
    /// A writer for a feed with no events yet.
    pub fn new(network: NetworkId, author: MemberId, key: SecretKey) -> FeedWriter {
        FeedWriter::resume(network, author, key, &[], 0, 0)
    }

    /// A writer that continues a feed whose slots hold `ids`, last written at `last_time_ms` under `gov`.
    pub fn resume(
        network: NetworkId,
        author: MemberId,
        key: SecretKey,
        ids: &[EventId],
        gov: u64,
        last_time_ms: u64,
    ) -> FeedWriter {
        let mut frontier = Frontier::default();
        for id in ids {
            frontier.push(merkle::feed_leaf(id));
        }
        FeedWriter {
            network,
            author,
            key,
            ids: ids.to_vec(),
            frontier,
            gov,
            last_time_ms,
        }
    }

    /// The id of the feed's last event, if any.
    pub fn last(&self) -> Option<&EventId> {
        self.ids.last()
    }

    /// Continues from a feed that grew elsewhere (events signed with this key outside this
    /// writer): takes its ids, governance version and last time, keeping the key.
    pub fn resync(&mut self, ids: &[EventId], gov: u64, last_time_ms: u64) {
        let key = SecretKey::from_bytes(&self.key.to_bytes());
        *self = FeedWriter::resume(
            self.network,
            self.author.clone(),
            key,
            ids,
            gov,
            last_time_ms,
        );
    }

    /// The member this writer signs for.
    pub fn author(&self) -> &MemberId {
        &self.author
    }

    /// Acts under governance version `gov` from the next event on (never lower than before).
    pub fn set_gov(&mut self, gov: u64) {
        self.gov = self.gov.max(gov);
    }

    /// Signs with `key` from the next event on (after a key rotation).
    pub fn set_key(&mut self, key: SecretKey) {
        self.key = key;
    }

    /// The governance version the next event acts under.
    pub fn gov(&self) -> u64 {
        self.gov
    }

    /// The seq of the next event.
    pub fn next_seq(&self) -> u64 {
        self.ids.len() as u64 + 1
    }

    /// The header the next event would carry at `time_ms` (never earlier than the last event).
    pub fn next_header(&self, time_ms: u64) -> Header {
        Header {
            network: self.network,
            author: self.author.clone(),
            key: self.key.public(),
            seq: self.next_seq(),
            prev: self.ids.last().copied().unwrap_or(Digest::default()),
            feed_root: self.frontier.root(),
            gov: self.gov,
            time_ms: time_ms.max(self.last_time_ms),
        }
    }

    /// Signs `body` as the next event of the feed and advances the feed.
    pub fn append(&mut self, body: Body, time_ms: u64) -> Signed {
        let signed = self.draft(body, time_ms);
        self.advance(&signed, time_ms);
        signed
    }

    /// Signs `body` as the next event without advancing the feed (to check it before keeping it).
    pub fn draft(&self, body: Body, time_ms: u64) -> Signed {
        sign(self.next_header(time_ms), body, &self.key)
    }

    /// Advances the feed past `draft`, the last draft made at `time_ms`, once it is stored.
    pub fn advance(&mut self, draft: &Signed, time_ms: u64) {
        self.last_time_ms = time_ms.max(self.last_time_ms);
        self.ids.push(draft.id);
        self.frontier.push(merkle::feed_leaf(&draft.id));
    }

    /// Signs `body` with an arbitrary header under this writer's key, without advancing the feed
    /// (for tests of what admission refuses, and for proving forks).
    pub fn sign_raw(&self, header: Header, body: Body) -> Signed {
        sign(header, body, &self.key)
    }
}
