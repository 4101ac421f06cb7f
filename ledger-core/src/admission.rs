//! Admission of raw event bytes: decode, shape, network, id and signature, giving a `VerifiedEvent`.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use crate::bytes::{EventId, NetworkId, SignatureBytes};
use crate::checkpoint::{check_witness_event, CosignatureError};
use crate::codec::{self, DecodeError, MAX_EVENT_BYTES};
use crate::crypto::{self, event_message, sha256, KeyCache, SignatureItem, EVENT_ID_CONTEXT};
use crate::event::{Body, Header, Payload, ShapeError};
use crate::record::{check_endorsements, EndorsementError};

/// Length of the signature at the end of every event.
pub const SIGNATURE_LEN: usize = 64;

/// Why an event cannot be stored. The sender of such bytes can be blamed for them, except
/// where [`AdmissionError::blames_sender`] says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("cannot decode event: {0}")]
    Decode(#[from] DecodeError),
    #[error("event is {0} bytes, too short to hold a signature")]
    TooShort(usize),
    #[error("event fields are malformed: {0}")]
    Shape(#[from] ShapeError),
    #[error("event belongs to network {got}, not {expected}")]
    WrongNetwork { expected: NetworkId, got: NetworkId },
    #[error("signing key is not a valid ed25519 key")]
    BadKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("author {0} is not a member at the cited governance version")]
    NotAMember(String),
    #[error("key is not the one the governance state assigns to the author for this seq")]
    WrongKey,
    #[error("prev does not link to the author's previous event")]
    BrokenPrev,
    #[error("time goes backwards in the author's feed")]
    TimeBackwards,
    #[error("governance version goes backwards in the author's feed")]
    GovBackwards,
    #[error("feed_root is not the root of the author's feed before this event")]
    BadFeedRoot,
    #[error(
        "the author's feed is void from seq {0} on (fork proven); later events are not stored"
    )]
    FeedForked(u64),
    #[error("{0}")]
    Endorsement(#[from] EndorsementError),
    #[error("witness event: {0}")]
    Cosignature(#[from] CosignatureError),
}

/// The admission failures, as stable reason names for reports.
impl AdmissionError {
    /// A short stable name (`bad-signature`, `broken-prev`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            AdmissionError::Decode(DecodeError::TooLarge { .. }) => "oversized",
            AdmissionError::Decode(DecodeError::TrailingBytes(_)) => "trailing-bytes",
            AdmissionError::Decode(DecodeError::NonCanonical) => "non-canonical",
            AdmissionError::Decode(DecodeError::Malformed(_)) => "malformed",
            AdmissionError::TooShort(_) => "truncated",
            AdmissionError::Shape(_) => "bad-shape",
            AdmissionError::WrongNetwork { .. } => "wrong-network",
            AdmissionError::BadKey => "bad-key",
            AdmissionError::BadSignature => "bad-signature",
            AdmissionError::NotAMember(_) => "not-a-member",
            AdmissionError::WrongKey => "wrong-key",
            AdmissionError::BrokenPrev => "broken-prev",
            AdmissionError::TimeBackwards => "time-backwards",
            AdmissionError::GovBackwards => "gov-backwards",
            AdmissionError::BadFeedRoot => "bad-feed-root",
            AdmissionError::FeedForked(_) => "feed-forked",
            AdmissionError::Endorsement(_) => "bad-endorsement",
            AdmissionError::Cosignature(_) => "bad-cosignature",
        }
    }

    /// Whether a peer that sent this can be penalised. A forked feed is the author's fault, not
    /// the forwarder's; everything else is in the bytes themselves.
    pub fn blames_sender(&self) -> bool {
        !matches!(self, AdmissionError::FeedForked(_))
    }
}

/// An event whose bytes decoded canonically and whose fields have a valid shape; not yet verified.
#[derive(Debug, Clone)]
pub struct DecodedEvent {
    id: EventId,
    bytes: Arc<[u8]>,
    header: Header,
    body: Body,
    signature: SignatureBytes,
}

impl DecodedEvent {
    /// The event id.
    pub fn id(&self) -> &EventId {
        &self.id
    }
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
    fn payload(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_LEN]
    }
    /// The verified event, once the endorsement signatures it carries (governance bodies) check
    /// out too; the event's own signature was checked by the caller.
    fn endorsed(
        self,
        network: &NetworkId,
        keys: &KeyCache,
    ) -> Result<VerifiedEvent, AdmissionError> {
        check_endorsements(network, &self.header, &self.body, keys)?;
        if let Body::Witness(w) = &self.body {
            check_witness_event(network, &w.checkpoint, &w.cosignatures, keys)?;
        }
        Ok(self.into_verified())
    }
    fn into_verified(self) -> VerifiedEvent {
        VerifiedEvent {
            id: self.id,
            bytes: self.bytes,
            header: self.header,
            body: self.body,
        }
    }
}

/// An event whose signature was checked by the key its header names, on this network.
/// It can only be made by the functions of this module. Membership of that key, feed links and
/// dependencies are checked by the ledger.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    id: EventId,
    bytes: Arc<[u8]>,
    header: Header,
    body: Body,
}

impl VerifiedEvent {
    /// The event id: SHA-256 over the id context and the exact signed bytes.
    pub fn id(&self) -> &EventId {
        &self.id
    }
    /// The exact bytes received (payload then signature).
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
}

/// The id of an event with these payload bytes.
pub fn event_id(payload: &[u8]) -> EventId {
    sha256(&[EVENT_ID_CONTEXT, payload])
}

/// Decodes event bytes (size limit, canonical bincode, no trailing bytes) and checks field shapes
/// and the network. Does not check the signature.
pub fn decode_event(bytes: &[u8], network: &NetworkId) -> Result<DecodedEvent, AdmissionError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit: MAX_EVENT_BYTES,
        }
        .into());
    }
    if bytes.len() <= SIGNATURE_LEN {
        return Err(AdmissionError::TooShort(bytes.len()));
    }
    let (payload, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let Payload { header, body } = codec::decode(payload, MAX_EVENT_BYTES)?;
    if &header.network != network {
        return Err(AdmissionError::WrongNetwork {
            expected: *network,
            got: header.network,
        });
    }
    header.check_shape()?;
    body.check_shape()?;
    let mut signature = SignatureBytes::default();
    signature.0.copy_from_slice(sig);
    Ok(DecodedEvent {
        id: event_id(payload),
        bytes: Arc::from(bytes),
        header,
        body,
        signature,
    })
}

/// Full admission of one event with `verify_strict`.
pub fn verify_event(
    bytes: &[u8],
    network: &NetworkId,
    keys: &KeyCache,
) -> Result<VerifiedEvent, AdmissionError> {
    let decoded = decode_event(bytes, network)?;
    let vk = keys
        .get(&decoded.header.key)
        .map_err(|_| AdmissionError::BadKey)?;
    crypto::verify_event(&vk, network, decoded.payload(), &decoded.signature)
        .map_err(|_| AdmissionError::BadSignature)?;
    decoded.endorsed(network, keys)
}

/// Admission of many events: decoding and batch signature verification spread over all cores.
/// The result has one entry per input, in input order.
pub fn verify_events(
    inputs: &[Vec<u8>],
    network: &NetworkId,
    keys: &KeyCache,
) -> Vec<Result<VerifiedEvent, AdmissionError>> {
    parallel(inputs, |chunk| verify_chunk(chunk, network, keys))
}

/// [`verify_events`] on the calling thread only.
pub fn verify_events_local(
    inputs: &[Vec<u8>],
    network: &NetworkId,
    keys: &KeyCache,
) -> Vec<Result<VerifiedEvent, AdmissionError>> {
    inputs
        .chunks(crypto::VERIFY_BATCH)
        .flat_map(|c| verify_chunk(c, network, keys))
        .collect()
}

/// Admission of many events with `verify_strict` on each, spread over all cores.
pub fn verify_events_strict(
    inputs: &[Vec<u8>],
    network: &NetworkId,
    keys: &KeyCache,
) -> Vec<Result<VerifiedEvent, AdmissionError>> {
    parallel(inputs, |chunk| {
        chunk
            .iter()
            .map(|b| verify_event(b, network, keys))
            .collect()
    })
}

/// Runs `work` over pieces of [`crypto::VERIFY_BATCH`] inputs on all cores. Workers take the
/// next piece from a shared counter, so a worker slowed by other load does not hold back the rest.
fn parallel<F>(inputs: &[Vec<u8>], work: F) -> Vec<Result<VerifiedEvent, AdmissionError>>
where
    F: Fn(&[Vec<u8>]) -> Vec<Result<VerifiedEvent, AdmissionError>> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    let pieces: Vec<&[Vec<u8>]> = inputs.chunks(crypto::VERIFY_BATCH).collect();
    if threads == 1 || pieces.len() < 2 {
        return work(inputs);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Vec<Result<VerifiedEvent, AdmissionError>>>> = pieces
        .iter()
        .map(|_| std::sync::Mutex::new(Vec::new()))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(pieces.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(piece) = pieces.get(i) else { break };
                let done = work(piece);
                *slots[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = done;
            });
        }
    });
    slots
        .into_iter()
        .flat_map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .collect()
}

/// A decoded event, the exact message its signature covers, and its key.
type Checkable = (DecodedEvent, Vec<u8>, VerifyingKey);

fn verify_chunk(
    chunk: &[Vec<u8>],
    network: &NetworkId,
    keys: &KeyCache,
) -> Vec<Result<VerifiedEvent, AdmissionError>> {
    let decoded: Vec<Result<Checkable, AdmissionError>> = chunk
        .iter()
        .map(|b| {
            let d = decode_event(b, network)?;
            let vk = keys
                .get(&d.header.key)
                .map_err(|_| AdmissionError::BadKey)?;
            let msg = event_message(network, d.payload());
            Ok((d, msg, vk))
        })
        .collect();
    let items: Vec<SignatureItem> = decoded
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .map(|(d, msg, vk)| SignatureItem {
            key: *vk,
            message: msg,
            signature: d.signature,
        })
        .collect();
    // This runs on one of the cores already, so the batches run on this thread.
    let mut verdicts = crypto::verify_many_local(&items).into_iter();
    decoded
        .into_iter()
        .map(|d| {
            let (d, _, _) = d?;
            if verdicts.next().unwrap_or(false) {
                d.endorsed(network, keys)
            } else {
                Err(AdmissionError::BadSignature)
            }
        })
        .collect()
}

/// Rebuilds a `VerifiedEvent` from bytes this node's own store wrote after verifying them.
/// The id is recomputed from the bytes (so corruption is caught); the signature is not re-checked.
pub(crate) fn from_store(
    bytes: &[u8],
    network: &NetworkId,
) -> Result<VerifiedEvent, AdmissionError> {
    decode_event(bytes, network).map(DecodedEvent::into_verified)
}
