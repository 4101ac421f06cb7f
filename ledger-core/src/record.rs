//! Governance records: their ids, the endorsements that sign them, and the checks on those
//! signatures that need no state (admission runs them; the quorum needs the governance state).

use crate::bytes::{Digest, NetworkId};
use crate::codec;
use crate::crypto::{
    sha256, verify_endorsement, KeyCache, SecretKey, SignatureError, GOV_RECORD_CONTEXT,
};
use crate::event::{Body, Endorsement, GovAction, Header};
use crate::types::MemberId;

/// The id of the governance record that would make `action` version `version` after `prev` (the
/// id of version `version - 1`; the network id for version 0). Endorsements sign this id.
pub fn record_id(network: &NetworkId, version: u64, prev: &Digest, action: &GovAction) -> Digest {
    sha256(&[
        GOV_RECORD_CONTEXT,
        network.as_bytes(),
        &version.to_le_bytes(),
        prev.as_bytes(),
        &codec::encode(action),
    ])
}

/// `member`'s endorsement of record `record` with `key`.
pub fn endorse(key: &SecretKey, member: MemberId, record: &Digest) -> Endorsement {
    Endorsement {
        member,
        key: key.public(),
        signature: key.sign_endorsement(record),
    }
}

/// Why an endorsement in an event was refused at admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndorsementError {
    #[error("endorsement {index} by {member}: {error}")]
    Signature {
        index: usize,
        member: MemberId,
        error: SignatureError,
    },
    #[error(
        "an endorse event must carry its own author's endorsement, signed with the event's key"
    )]
    NotTheAuthor,
}

/// Checks every endorsement signature an event carries (an `Endorse` must also be its author's
/// own, with the event's key). Whether each key belongs to its member is for the quorum to say.
pub fn check_endorsements(
    network: &NetworkId,
    header: &Header,
    body: &Body,
    keys: &KeyCache,
) -> Result<(), EndorsementError> {
    let (version, prev, action, list) = match body {
        Body::Endorse(e) => {
            if e.endorsement.member != header.author || e.endorsement.key != header.key {
                return Err(EndorsementError::NotTheAuthor);
            }
            (
                e.version,
                &e.prev,
                &e.action,
                std::slice::from_ref(&e.endorsement),
            )
        }
        Body::Govern(g) => (g.version, &g.prev, &g.action, g.endorsements.as_slice()),
        _ => return Ok(()),
    };
    let record = record_id(network, version, prev, action);
    for (index, e) in list.iter().enumerate() {
        let fail = |error| EndorsementError::Signature {
            index,
            member: e.member.clone(),
            error,
        };
        let vk = keys.get(&e.key).map_err(fail)?;
        verify_endorsement(&vk, &record, &e.signature).map_err(fail)?;
    }
    Ok(())
}
