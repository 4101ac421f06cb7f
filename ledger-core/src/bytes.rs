//! Fixed-size byte values (digests, keys, signatures) with hex text form and a compact binary form.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// Why a hex string could not be read as a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("expected {expected} hex characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("invalid hex character at position {0}")]
    Char(usize),
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Parses exactly `N` bytes of hex.
pub fn from_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let raw = text.as_bytes();
    if raw.len() != N * 2 {
        return Err(HexError::Length {
            expected: N * 2,
            got: raw.len(),
        });
    }
    let nibble = |i: usize| -> Result<u8, HexError> {
        match raw[i] {
            c @ b'0'..=b'9' => Ok(c - b'0'),
            c @ b'a'..=b'f' => Ok(c - b'a' + 10),
            c @ b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(HexError::Char(i)),
        }
    };
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = (nibble(2 * i)? << 4) | nibble(2 * i + 1)?;
    }
    Ok(out)
}

// In binary form a value is its raw bytes. They are written as little-endian u64 words, which a
// fixed-width binary encoding lays out exactly as the bytes themselves, with 8x fewer calls than
// byte by byte (every N here is a multiple of 8).
fn serialize_fixed<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&to_hex(bytes))
    } else {
        let mut tuple = s.serialize_tuple(N / 8)?;
        for word in bytes.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            tuple.serialize_element(&u64::from_le_bytes(w))?;
        }
        tuple.end()
    }
}

struct FixedVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for FixedVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{N} bytes or {} hex characters", N * 2)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        from_hex::<N>(v).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, word) in out.chunks_exact_mut(8).enumerate() {
            let w: u64 = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
            word.copy_from_slice(&w.to_le_bytes());
        }
        Ok(out)
    }
}

fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    if d.is_human_readable() {
        d.deserialize_str(FixedVisitor::<N>)
    } else {
        d.deserialize_tuple(N / 8, FixedVisitor::<N>)
    }
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $n:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl Default for $name {
            fn default() -> Self {
                $name([0u8; $n])
            }
        }

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }
            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }
            /// The first 8 hex characters, for logs and tree views.
            pub fn short(&self) -> String {
                to_hex(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&to_hex(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                from_hex::<$n>(s).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_fixed(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_fixed::<D, $n>(d).map($name)
            }
        }
    };
}

fixed_bytes!(
    /// A SHA-256 digest: event ids, parcel ids, network ids, Merkle roots.
    Digest,
    32
);
fixed_bytes!(
    /// An ed25519 public key as 32 compressed bytes.
    PublicKeyBytes,
    32
);
fixed_bytes!(
    /// An ed25519 signature as 64 bytes.
    SignatureBytes,
    64
);

/// The id of an event: SHA-256 over the id context and the event's signed bytes.
pub type EventId = Digest;
/// The id of a parcel: SHA-256 over the parcel context, the creating event id and the output index.
pub type ParcelId = Digest;
/// The id of a network: SHA-256 over the encoded genesis.
pub type NetworkId = Digest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let d = Digest([0xab; 32]);
        let text = d.to_hex();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Digest>(), Ok(d));
        assert_eq!(
            "ab".parse::<Digest>(),
            Err(HexError::Length {
                expected: 64,
                got: 2
            })
        );
        let mut bad = text.clone();
        bad.replace_range(10..11, "g");
        assert_eq!(bad.parse::<Digest>(), Err(HexError::Char(10)));
    }
}
