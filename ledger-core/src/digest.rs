//! The state digest: one SHA-256 over everything a replay must reproduce.

use sha2::{Digest as _, Sha256};

use crate::bytes::{Digest, EventId};
use crate::codec;
use crate::state::{Parcel, State};

impl State {
    /// A digest of the whole state: every event's metadata and verdict, every parcel, certificate
    /// and fork, each feed up to its fork, and the carat totals. Two ledgers with equal state roots
    /// hold the same state; this is what replays compare.
    pub fn state_root(&self) -> Digest {
        // The two largest parts are hashed on two threads; the root is the hash of the parts.
        let (events_root, parcels_root) = std::thread::scope(|scope| {
            let events = scope.spawn(|| {
                let mut h = Sha256::new();
                let mut buf = Vec::with_capacity(256);
                // Ids only (a pointer each), sorted; each one's metadata looked up in turn.
                let mut ids: Vec<&EventId> = self.events.keys().collect();
                ids.sort_unstable();
                for id in ids {
                    h.update(id.as_bytes());
                    if let Some(meta) = self.events.get(id) {
                        codec::encode_into(meta, &mut buf);
                        h.update(&buf);
                    }
                }
                h.finalize()
            });
            let mut h = Sha256::new();
            let mut buf = Vec::with_capacity(1024);
            let mut parcels: Vec<&Parcel> = self.parcels.values().map(|p| &**p).collect();
            parcels.sort_unstable_by_key(|p| p.id);
            for p in parcels {
                codec::encode_into(p, &mut buf);
                h.update(&buf);
            }
            let parcels = h.finalize();
            match events.join() {
                Ok(events) => (events, parcels),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        let mut h = Sha256::new();
        h.update(events_root);
        h.update(parcels_root);
        let mut buf = Vec::with_capacity(256);
        let mut certs: Vec<&EventId> = self.certificates.keys().collect();
        certs.sort_unstable();
        for c in certs {
            h.update(c.as_bytes());
        }
        for (author, feed) in &self.feeds {
            h.update(author.as_str().as_bytes());
            // Beyond a fork, which branch holds the slots depends on arrival; all of it is void.
            let upto = feed
                .forked_at
                .map_or(feed.ids.len(), |f| feed.ids.len().min((f - 1) as usize));
            h.update((upto as u64).to_le_bytes());
            for id in &feed.ids[..upto] {
                h.update(id.as_bytes());
            }
            codec::encode_into(&feed.forked_at, &mut buf);
            h.update(&buf);
        }
        for fork in self.forks.values() {
            codec::encode_into(fork, &mut buf);
            h.update(&buf);
        }
        codec::encode_into(&self.totals, &mut buf);
        h.update(&buf);
        Digest(h.finalize().into())
    }
}
