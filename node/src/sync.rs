//! The sync protocol: requests for heads, feed ranges and events by id, their bounds and their size-limited framing.

use std::collections::HashSet;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

use ledger_core::admission::{event_id, SIGNATURE_LEN};
use ledger_core::bytes::EventId;
use ledger_core::codec::{self, MAX_GENESIS_BYTES};
use ledger_core::ledger::{Fork, Ledger};
use ledger_core::store::Store;
use ledger_core::types::MemberId;

pub use crate::service::Head;

/// Most events in one sync response, and most ids in one request for events.
pub const MAX_SYNC_BATCH: u32 = 256;
/// Largest encoded sync request.
pub const MAX_SYNC_REQUEST: usize = 64 * 1024;
/// Largest encoded sync response (events are added until the next would pass this).
pub const MAX_SYNC_RESPONSE: usize = MAX_GENESIS_BYTES;
/// The sync protocol's name (version 2: heads answers carry proven forks).
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/custody/sync/2");

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Every feed head.
    Heads,
    /// Events `from..from+limit` of one feed.
    Feed {
        author: MemberId,
        from: u64,
        limit: u32,
    },
    /// Events by id.
    Events { ids: Vec<EventId> },
    /// Events `from..from+limit` of one author that hold no feed slot (in seq order).
    OffSlot {
        author: MemberId,
        from: u64,
        limit: u32,
    },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Every feed head, and the proven forks (so that fork proofs travel by sync too).
    Heads {
        heads: Vec<Head>,
        forks: Vec<Fork>,
    },
    Events(Vec<Vec<u8>>),
    Refused(String),
}

/// Length-prefixed, size-limited bincode framing of sync messages.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncRequest> {
        let buf = read_frame(io, MAX_SYNC_REQUEST).await?;
        codec::decode(&buf, MAX_SYNC_REQUEST).map_err(invalid)
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncResponse> {
        let buf = read_frame(io, MAX_SYNC_RESPONSE).await?;
        codec::decode(&buf, MAX_SYNC_RESPONSE).map_err(invalid)
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> std::io::Result<()> {
        write_frame(io, &codec::encode(&req)).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> std::io::Result<()> {
        write_frame(io, &codec::encode(&res)).await
    }
}

/// Answers a request for events from the store, within the batch and size limits.
pub fn answer_from_store(store: &Store, request: SyncRequest) -> SyncResponse {
    match request {
        SyncRequest::Heads => SyncResponse::Refused("heads are answered from the snapshot".into()),
        SyncRequest::Feed {
            author,
            from,
            limit,
        } => {
            let Some(feed) = store.ledger().feed(&author) else {
                return SyncResponse::Events(Vec::new());
            };
            let from = from.max(1);
            let ids = feed
                .ids
                .iter()
                .skip(usize::try_from(from - 1).unwrap_or(usize::MAX))
                .take(limit.min(MAX_SYNC_BATCH) as usize);
            SyncResponse::Events(collect_events(store, ids))
        }
        SyncRequest::Events { ids } => {
            if ids.len() > MAX_SYNC_BATCH as usize {
                return SyncResponse::Refused(format!("more than {MAX_SYNC_BATCH} ids"));
            }
            SyncResponse::Events(collect_events(store, ids.iter()))
        }
        SyncRequest::OffSlot {
            author,
            from,
            limit,
        } => {
            let ids = store
                .ledger()
                .off_slot(&author)
                .skip(usize::try_from(from).unwrap_or(usize::MAX))
                .take(limit.min(MAX_SYNC_BATCH) as usize);
            SyncResponse::Events(collect_events(store, ids))
        }
    }
}

fn collect_events<'a>(store: &Store, ids: impl Iterator<Item = &'a EventId>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut size = 64usize;
    for id in ids {
        let Ok(Some(bytes)) = store.event_bytes(id) else {
            continue;
        };
        size += bytes.len() + 16;
        if size > MAX_SYNC_RESPONSE {
            break;
        }
        out.push(bytes);
    }
    out
}

/// What to ask a peer for after comparing its heads and forks with what `ledger` holds: the rest
/// of a feed it has further, the head it holds at a seq where this node holds another event (a
/// split view), and both events of every fork this node has not seen proven.
pub fn wanted(ledger: &Ledger, heads: &[Head], forks: &[Fork]) -> Vec<SyncRequest> {
    let members = ledger.governance().at(ledger.governance().latest());
    let is_member = |a: &MemberId| members.is_some_and(|g| g.members.contains_key(a));
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for h in heads {
        if !is_member(&h.author) {
            continue;
        }
        if h.off_slot > ledger.off_slot_len(&h.author) {
            // The peer holds events of a fork this node lacks: ask for them all, page by page.
            out.push(SyncRequest::OffSlot {
                author: h.author.clone(),
                from: 0,
                limit: MAX_SYNC_BATCH,
            });
        }
        if ledger.event(&h.id).is_some() {
            continue;
        }
        let have = ledger.feed(&h.author).map_or(0, |f| f.ids.len() as u64);
        if h.seq > have {
            out.push(SyncRequest::Feed {
                author: h.author.clone(),
                from: have + 1,
                limit: MAX_SYNC_BATCH,
            });
        } else {
            ids.push(h.id);
        }
    }
    for f in forks.iter().filter(|f| is_member(&f.author)) {
        ids.extend(
            [f.first, f.second]
                .into_iter()
                .filter(|id| ledger.event(id).is_none()),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    if !ids.is_empty() {
        out.push(SyncRequest::Events { ids });
    }
    out
}

/// Checks that an answer of events fits the request: no more events than asked, and for a
/// request by id, only the ids asked for, each once. A peer whose answer does not fit is at fault.
pub fn check_answer(request: &SyncRequest, events: &[Vec<u8>]) -> Result<(), String> {
    match request {
        SyncRequest::Heads => Err("events in answer to a heads request".into()),
        SyncRequest::Feed { limit, .. } | SyncRequest::OffSlot { limit, .. } => {
            if events.len() > (*limit).min(MAX_SYNC_BATCH) as usize {
                return Err(format!("{} events for a page of {limit}", events.len()));
            }
            Ok(())
        }
        SyncRequest::Events { ids } => {
            if events.len() > ids.len() {
                return Err(format!("{} events for {} ids", events.len(), ids.len()));
            }
            let mut asked: HashSet<&EventId> = ids.iter().collect();
            for bytes in events {
                let id = match bytes.len().checked_sub(SIGNATURE_LEN) {
                    Some(n) => event_id(&bytes[..n]),
                    None => return Err("an event too short to hold a signature".into()),
                };
                if !asked.remove(&id) {
                    return Err(format!("event {id} was not asked for, or sent twice"));
                }
            }
            Ok(())
        }
    }
}
