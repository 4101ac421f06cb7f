//! The genesis document: its checks (members, keys, quorum) and the network id it founds.

use std::collections::HashSet;

use crate::bytes::{NetworkId, PublicKeyBytes};
use crate::codec;
use crate::crypto::{sha256, verifying_key};
use crate::types::{check_text, Genesis, Member, MemberId, Policy, ValueError, MAX_TEXT_LEN};

/// Most members a genesis may list.
pub const MAX_MEMBERS: usize = 4096;
pub use crate::event::MAX_MEMBER_ITEMS;

/// Why a genesis document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis lists no members")]
    NoMembers,
    #[error("genesis lists {0} members, more than {MAX_MEMBERS}")]
    TooManyMembers(usize),
    #[error("member {0} appears twice")]
    DuplicateMember(MemberId),
    #[error("member {member}: {problem}")]
    BadMember { member: MemberId, problem: String },
    #[error("key {0} is listed for two members")]
    SharedKey(PublicKeyBytes),
    #[error("quorum is impossible: government fraction must be num/den with 0 < num <= den")]
    BadQuorum,
    #[error("genesis name is longer than {MAX_TEXT_LEN} bytes")]
    BadName,
    #[error("genesis cannot be decoded: {0}")]
    Decode(#[from] codec::DecodeError),
}

/// The id of the network a genesis founds: SHA-256 of its canonical encoding.
pub fn network_id(genesis: &Genesis) -> NetworkId {
    sha256(&[&codec::encode(genesis)])
}

/// Decodes a genesis document (size-limited, canonical).
pub fn decode_genesis(bytes: &[u8]) -> Result<Genesis, GenesisError> {
    let genesis: Genesis = codec::decode(bytes, codec::MAX_GENESIS_BYTES)?;
    check_genesis(&genesis)?;
    Ok(genesis)
}

fn bad(member: &Member, problem: impl Into<String>) -> GenesisError {
    GenesisError::BadMember {
        member: member.id.clone(),
        problem: problem.into(),
    }
}

/// Checks one member: slug, texts, country, roles, sites and keys.
pub(crate) fn check_member(m: &Member) -> Result<(), GenesisError> {
    if !m.id.is_valid() {
        return Err(bad(m, ValueError::Slug(m.id.to_string()).to_string()));
    }
    check_text(&m.name).map_err(|e| bad(m, e.to_string()))?;
    if !m.country.is_valid() {
        return Err(bad(
            m,
            ValueError::Country(m.country.to_string()).to_string(),
        ));
    }
    if m.roles.is_empty() {
        return Err(bad(m, "has no roles"));
    }
    if m.sites.len() > MAX_MEMBER_ITEMS || m.keys.len() > MAX_MEMBER_ITEMS {
        return Err(bad(
            m,
            format!("more than {MAX_MEMBER_ITEMS} sites or keys"),
        ));
    }
    let mut sites = HashSet::new();
    for s in &m.sites {
        if !s.id.is_valid() {
            let rule = ValueError::Slug(s.id.to_string());
            return Err(bad(m, format!("site id: {rule} (e.g. \"marange\")")));
        }
        if !s.country.is_valid() {
            let rule = ValueError::Country(s.country.to_string());
            return Err(bad(m, format!("site {}: {rule}", s.id)));
        }
        check_text(&s.name)
            .and(check_text(&s.region))
            .map_err(|e| bad(m, e.to_string()))?;
        if !sites.insert(&s.id) {
            return Err(bad(m, format!("site {} appears twice", s.id)));
        }
    }
    if !m.keys.iter().any(|k| k.from_seq == 1) {
        return Err(bad(m, "has no key for seq 1"));
    }
    let mut from = HashSet::new();
    for k in &m.keys {
        verifying_key(&k.key).map_err(|e| bad(m, format!("key {}: {e}", k.key.short())))?;
        if k.from_seq == 0 || !from.insert(k.from_seq) {
            return Err(bad(m, "key grants must start at distinct seqs >= 1"));
        }
    }
    Ok(())
}

/// Checks a genesis: members valid and unique, keys valid and unshared, quorum possible.
pub fn check_genesis(g: &Genesis) -> Result<(), GenesisError> {
    check_text(&g.name).map_err(|_| GenesisError::BadName)?;
    if g.members.is_empty() {
        return Err(GenesisError::NoMembers);
    }
    if g.members.len() > MAX_MEMBERS {
        return Err(GenesisError::TooManyMembers(g.members.len()));
    }
    if !policy_is_possible(&g.policy) {
        return Err(GenesisError::BadQuorum);
    }
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for m in &g.members {
        check_member(m)?;
        if !ids.insert(&m.id) {
            return Err(GenesisError::DuplicateMember(m.id.clone()));
        }
        for k in &m.keys {
            if !keys.insert(k.key) {
                return Err(GenesisError::SharedKey(k.key));
            }
        }
    }
    Ok(())
}

/// True when a policy's government fraction is `num/den` with `0 < num <= den`.
pub fn policy_is_possible(p: &Policy) -> bool {
    let q = &p.quorum;
    q.government_den != 0 && q.government_num != 0 && q.government_num <= q.government_den
}
