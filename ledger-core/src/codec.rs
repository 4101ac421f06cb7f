//! The one binary encoding of custody: bincode 2 through serde, fixed-width integers, size-limited, no trailing bytes.

use bincode::config::{self, Configuration, Fixint, LittleEndian, NoLimit};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest encoded event accepted anywhere (network, HTTP, files, store).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Largest encoded genesis document accepted.
pub const MAX_GENESIS_BYTES: usize = 1024 * 1024;
/// Largest proof bundle accepted (`bundle::Bundle`).
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is {len} bytes, more than the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("input is malformed: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("input is not in canonical encoding")]
    NonCanonical,
}

fn encoding() -> Configuration<LittleEndian, Fixint, NoLimit> {
    config::standard().with_fixed_int_encoding()
}

/// Encodes a value. Encoding our own types into a Vec cannot fail; a failure is a bug and panics loudly.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    bincode::serde::encode_to_vec(value, encoding())
        .expect("encoding custody types into a Vec cannot fail")
}

/// Encodes a value into `out` (cleared first), reusing its allocation.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.clear();
    #[allow(clippy::expect_used)]
    bincode::serde::encode_into_std_write(value, out, encoding())
        .expect("encoding custody types into a Vec cannot fail");
}

/// Decodes exactly one value from `bytes`, which must be at most `limit` long, with nothing left over,
/// and which must be the canonical encoding of the value it decodes to.
pub fn decode<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    // The reader never reads past `bytes`, and container lengths are checked against the limit
    // before allocation, so a forged length prefix cannot allocate more than `limit`.
    let (value, used): (T, usize) = match limit {
        l if l <= MAX_EVENT_BYTES => {
            bincode::serde::decode_from_slice(bytes, encoding().with_limit::<MAX_EVENT_BYTES>())
        }
        l if l <= MAX_GENESIS_BYTES => {
            bincode::serde::decode_from_slice(bytes, encoding().with_limit::<MAX_GENESIS_BYTES>())
        }
        _ => bincode::serde::decode_from_slice(bytes, encoding().with_limit::<MAX_BUNDLE_BYTES>()),
    }
    .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> claiming u64::MAX elements.
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.push(1);
        let err = decode::<Vec<u8>>(&bytes, MAX_EVENT_BYTES).expect_err("must fail");
        assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn trailing_and_oversized_input_are_refused() {
        let mut bytes = encode(&7u32);
        bytes.push(0);
        assert_eq!(
            decode::<u32>(&bytes, MAX_EVENT_BYTES),
            Err(DecodeError::TrailingBytes(1))
        );
        let big = vec![0u8; MAX_EVENT_BYTES + 1];
        assert!(matches!(
            decode::<u32>(&big, MAX_EVENT_BYTES),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_canonical_bool_is_refused() {
        assert!(decode::<bool>(&[2], MAX_EVENT_BYTES).is_err());
        assert_eq!(decode::<bool>(&[1], MAX_EVENT_BYTES), Ok(true));
    }
}
