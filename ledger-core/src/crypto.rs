//! Domain-separated ed25519 signing and verification: strict single checks for admission, batches on both cores for replay.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::bytes::{Digest, NetworkId, PublicKeyBytes, SignatureBytes};

/// Prefix of every event id hash.
pub const EVENT_ID_CONTEXT: &[u8] = b"custody/event-id/v1\0";
/// Prefix of every event signature message (followed by the network id).
pub const EVENT_SIG_CONTEXT: &[u8] = b"custody/event-signature/v1\0";
/// Prefix of every parcel id hash.
pub const PARCEL_ID_CONTEXT: &[u8] = b"custody/parcel-id/v1\0";
/// Prefix of every network id hash.
pub const NETWORK_ID_CONTEXT: &[u8] = b"custody/network-id/v1\0";
/// Domain separation of governance record ids.
pub const GOV_RECORD_CONTEXT: &[u8] = b"custody/gov-record/v1\0";
/// Domain separation of checkpoint signatures (over a checkpoint id).
pub const CHECKPOINT_SIG_CONTEXT: &[u8] = b"custody/checkpoint-signature/v1\0";
/// Domain separation of endorsement signatures (over a record id).
pub const ENDORSE_CONTEXT: &[u8] = b"custody/endorsement/v1\0";
/// Signatures checked together in one batch during replay.
pub const VERIFY_BATCH: usize = 256;
/// Verifying keys kept decompressed (there is one per member key, so this is generous).
pub const MAX_CACHED_KEYS: usize = 65_536;

/// SHA-256 over several parts.
pub fn sha256(parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Digest(h.finalize().into())
}

/// A member's secret signing key.
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public().short())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::generate(&mut rand_core::OsRng))
    }
    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(bytes))
    }
    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public key.
    pub fn public(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.0.verifying_key().to_bytes())
    }
    /// Signs an event's payload bytes for `network`.
    pub fn sign_event(&self, network: &NetworkId, payload: &[u8]) -> SignatureBytes {
        let msg = event_message(network, payload);
        SignatureBytes(self.0.sign(&msg).to_bytes())
    }
}

impl SecretKey {
    /// Signs a checkpoint id (as its producer or a witness).
    pub fn sign_checkpoint(&self, checkpoint: &Digest) -> SignatureBytes {
        SignatureBytes(self.0.sign(&checkpoint_message(checkpoint)).to_bytes())
    }

    /// Signs a governance record id as an endorsement of it.
    pub fn sign_endorsement(&self, record: &Digest) -> SignatureBytes {
        SignatureBytes(self.0.sign(&endorsement_message(record)).to_bytes())
    }
}

/// The exact message an endorsement signature covers: the context and the record id, which
/// itself covers the network, version, prev and action.
pub fn endorsement_message(record: &Digest) -> [u8; ENDORSE_MESSAGE_LEN] {
    let mut msg = [0u8; ENDORSE_MESSAGE_LEN];
    msg[..ENDORSE_CONTEXT.len()].copy_from_slice(ENDORSE_CONTEXT);
    msg[ENDORSE_CONTEXT.len()..].copy_from_slice(record.as_bytes());
    msg
}

const ENDORSE_MESSAGE_LEN: usize = ENDORSE_CONTEXT.len() + 32;

/// The exact message a checkpoint signature covers: the context and the checkpoint id.
pub fn checkpoint_message(checkpoint: &Digest) -> Vec<u8> {
    [CHECKPOINT_SIG_CONTEXT, checkpoint.as_bytes()].concat()
}

/// Strict verification of one checkpoint signature.
pub fn verify_checkpoint(
    vk: &VerifyingKey,
    checkpoint: &Digest,
    signature: &SignatureBytes,
) -> Result<(), SignatureError> {
    vk.verify_strict(
        &checkpoint_message(checkpoint),
        &Signature::from_bytes(&signature.0),
    )
    .map_err(|_| SignatureError::BadSignature)
}

/// Strict verification of one endorsement signature.
pub fn verify_endorsement(
    vk: &VerifyingKey,
    record: &Digest,
    signature: &SignatureBytes,
) -> Result<(), SignatureError> {
    vk.verify_strict(
        &endorsement_message(record),
        &Signature::from_bytes(&signature.0),
    )
    .map_err(|_| SignatureError::BadSignature)
}

/// The exact message an event signature covers.
pub fn event_message(network: &NetworkId, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(EVENT_SIG_CONTEXT.len() + 32 + payload.len());
    msg.extend_from_slice(EVENT_SIG_CONTEXT);
    msg.extend_from_slice(network.as_bytes());
    msg.extend_from_slice(payload);
    msg
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the public key is not a valid, prime-order ed25519 point")]
    BadKey,
    #[error("the signature does not verify")]
    BadSignature,
}

/// Decompresses a public key, refusing weak (small-order) keys and keys with a torsion component,
/// so that strict and batch verification accept exactly the same signatures for them.
pub fn verifying_key(key: &PublicKeyBytes) -> Result<VerifyingKey, SignatureError> {
    let vk = VerifyingKey::from_bytes(key.as_bytes()).map_err(|_| SignatureError::BadKey)?;
    if vk.is_weak() || !vk.to_edwards().is_torsion_free() {
        return Err(SignatureError::BadKey);
    }
    Ok(vk)
}

/// A cache of decompressed verifying keys (decompression is a noticeable share of a verify).
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<PublicKeyBytes, VerifyingKey>>,
}

impl KeyCache {
    /// The decompressed key, from the cache when possible.
    pub fn get(&self, key: &PublicKeyBytes) -> Result<VerifyingKey, SignatureError> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(vk) = keys.get(key) {
            return Ok(*vk);
        }
        let vk = verifying_key(key)?;
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(*key, vk);
        Ok(vk)
    }
}

/// Strict verification of one event signature (`verify_strict`).
pub fn verify_event(
    vk: &VerifyingKey,
    network: &NetworkId,
    payload: &[u8],
    signature: &SignatureBytes,
) -> Result<(), SignatureError> {
    let msg = event_message(network, payload);
    vk.verify_strict(&msg, &Signature::from_bytes(&signature.0))
        .map_err(|_| SignatureError::BadSignature)
}

/// One signature to check in a batch.
#[derive(Debug)]
pub struct SignatureItem<'a> {
    pub key: VerifyingKey,
    pub message: &'a [u8],
    pub signature: SignatureBytes,
}

/// Checks many signatures with `verify_batch` in chunks of [`VERIFY_BATCH`] on all available cores.
/// Returns, for each item, whether it verified. A failed chunk is re-checked one by one with
/// `verify_strict`, so the answer names exactly the bad signatures.
pub fn verify_many(items: &[SignatureItem<'_>]) -> Vec<bool> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    let per_thread = items.len().div_ceil(threads).max(1);
    let mut ok = Vec::with_capacity(items.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|c| scope.spawn(move || verify_many_local(c)))
            .collect();
        for h in handles {
            match h.join() {
                Ok(part) => ok.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    ok
}

/// [`verify_many`] on the calling thread only.
pub fn verify_many_local(items: &[SignatureItem<'_>]) -> Vec<bool> {
    let mut ok = vec![false; items.len()];
    for (batch, slots) in items.chunks(VERIFY_BATCH).zip(ok.chunks_mut(VERIFY_BATCH)) {
        verify_batch_into(batch, slots);
    }
    ok
}

fn verify_batch_into(batch: &[SignatureItem<'_>], ok: &mut [bool]) {
    let messages: Vec<&[u8]> = batch.iter().map(|i| i.message).collect();
    let signatures: Vec<Signature> = batch
        .iter()
        .map(|i| Signature::from_bytes(&i.signature.0))
        .collect();
    let keys: Vec<VerifyingKey> = batch.iter().map(|i| i.key).collect();
    // verify_batch does not refuse small-order R; verify_strict does. Check R cheaply first so a
    // batch never accepts what strict verification refuses on that ground.
    let r_ok = batch.iter().all(|i| r_is_not_small_order(&i.signature));
    if r_ok && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        ok.fill(true);
        return;
    }
    for ((item, sig), slot) in batch.iter().zip(&signatures).zip(ok.iter_mut()) {
        *slot = item.key.verify_strict(item.message, sig).is_ok();
    }
}

/// Encodings of the y-coordinates of the eight small-order points (sign bit ignored), including
/// the non-canonical encodings p (= 0) and p + 1 (= 1) that decompress to them. The same list as
/// libsodium's `has_small_order`; checking bytes avoids a second decompression of R.
const SMALL_ORDER_Y: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

fn r_is_not_small_order(sig: &SignatureBytes) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig.0[..32]);
    r[31] &= 0x7f;
    !SMALL_ORDER_Y.contains(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_batch_agree_on_good_and_bad_signatures() {
        let key = SecretKey::from_bytes(&[7; 32]);
        let vk = verifying_key(&key.public()).expect("valid key");
        let net = Digest([1; 32]);
        let payloads: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut sigs: Vec<SignatureBytes> =
            payloads.iter().map(|p| key.sign_event(&net, p)).collect();
        sigs[3].0[5] ^= 1;
        sigs[300].0[40] ^= 1;
        let messages: Vec<Vec<u8>> = payloads.iter().map(|p| event_message(&net, p)).collect();
        let items: Vec<SignatureItem> = messages
            .iter()
            .zip(&sigs)
            .map(|(m, s)| SignatureItem {
                key: vk,
                message: m,
                signature: *s,
            })
            .collect();
        let ok = verify_many(&items);
        for (i, (p, s)) in payloads.iter().zip(&sigs).enumerate() {
            let strict = verify_event(&vk, &net, p, s).is_ok();
            assert_eq!(ok[i], strict, "item {i}");
            assert_eq!(strict, i != 3 && i != 300);
        }
        // Another network's id makes every signature fail.
        assert!(verify_event(&vk, &Digest([2; 32]), &payloads[0], &sigs[0]).is_err());
    }

    #[test]
    fn small_order_blocklist_matches_decompression() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        // Every listed encoding, with either sign bit, decompresses to a small-order point.
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut b = y;
                b[31] |= sign;
                if let Some(p) = CompressedEdwardsY(b).decompress() {
                    assert!(p.is_small_order(), "{b:?}");
                }
                let mut sig = SignatureBytes::default();
                sig.0[..32].copy_from_slice(&b);
                assert!(!r_is_not_small_order(&sig));
            }
        }
        // The eight small-order points are all caught: the torsion subgroup generated by an order-8 point.
        let t = CompressedEdwardsY(SMALL_ORDER_Y[3])
            .decompress()
            .expect("point");
        let mut p = t;
        for _ in 0..8 {
            let mut sig = SignatureBytes::default();
            sig.0[..32].copy_from_slice(p.compress().as_bytes());
            assert!(!r_is_not_small_order(&sig), "{:?}", p.compress());
            p += t;
        }
        // Real signatures pass.
        let key = SecretKey::from_bytes(&[3; 32]);
        assert!(r_is_not_small_order(
            &key.sign_event(&Digest([0; 32]), b"x")
        ));
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            verifying_key(&PublicKeyBytes(identity)),
            Err(SignatureError::BadKey)
        );
        assert!(verifying_key(&SecretKey::generate().public()).is_ok());
    }
}
