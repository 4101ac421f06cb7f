//! Counting the endorsements of a governance record against the quorum of the version it
//! extends, chamber by chamber.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::bytes::PublicKeyBytes;
use crate::gov_state::GovState;
use crate::types::{Chamber, MemberId};

/// Why an endorsement counted for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ignored {
    /// The endorser is not a member at the version the record extends.
    NotAMember,
    /// The endorser is suspended.
    Suspended,
    /// The key is not the endorser's current key (an old, rotated or revoked key).
    NotCurrentKey,
    /// The endorser endorsed two different records for this version that each had a quorum.
    DoubleEndorser,
}

/// The endorsements of one record, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub government: u64,
    pub government_needed: u64,
    pub industry: u64,
    pub industry_needed: u64,
    pub civil_society: u64,
    pub civil_society_needed: u64,
    /// Members whose endorsement counted, each once.
    pub counted: Vec<MemberId>,
    /// Endorsements that counted for nothing, and why.
    pub ignored: Vec<(MemberId, Ignored)>,
}

impl Tally {
    /// True when every chamber gave what it must.
    pub fn met(&self) -> bool {
        self.government >= self.government_needed
            && self.industry >= self.industry_needed
            && self.civil_society >= self.civil_society_needed
    }

    /// The chambers short of their quorum, in words (empty when met).
    pub fn shortfall(&self) -> String {
        let mut out = Vec::new();
        for (name, got, needed) in [
            ("government", self.government, self.government_needed),
            ("industry", self.industry, self.industry_needed),
            (
                "civil society",
                self.civil_society,
                self.civil_society_needed,
            ),
        ] {
            if got < needed {
                out.push(format!("{name} {got} of {needed}"));
            }
        }
        out.join(", ")
    }
}

/// Government endorsements needed: the policy's fraction of the government members who may
/// endorse, rounded up (exactly 2/3 of 3 is 2; one short of it is not enough).
fn government_needed(state: &GovState) -> u64 {
    let q = &state.policy.quorum;
    let voters = state.voters(Chamber::Government) as u64;
    let num = u64::from(q.government_num);
    let den = u64::from(q.government_den.max(1));
    (voters * num).div_ceil(den)
}

/// Counts endorsements (member, key) of a record against `state`, the state of the version it
/// extends. A member counts once, with its current key, if it is not suspended and not in
/// `excluded`; a key claimed for another member counts for nothing.
pub fn tally(
    state: &GovState,
    endorsements: &BTreeMap<MemberId, BTreeSet<PublicKeyBytes>>,
    excluded: &BTreeSet<MemberId>,
) -> Tally {
    let mut t = Tally {
        government: 0,
        government_needed: government_needed(state),
        industry: 0,
        industry_needed: u64::from(state.policy.quorum.industry_min),
        civil_society: 0,
        civil_society_needed: u64::from(state.policy.quorum.civil_society_min),
        counted: Vec::new(),
        ignored: Vec::new(),
    };
    for (member, keys) in endorsements {
        let Some(m) = state.members.get(member) else {
            t.ignored.push((member.clone(), Ignored::NotAMember));
            continue;
        };
        let ignored = if state.is_suspended(member) {
            Some(Ignored::Suspended)
        } else if !state.current_key(member).is_some_and(|k| keys.contains(k)) {
            Some(Ignored::NotCurrentKey)
        } else if excluded.contains(member) {
            Some(Ignored::DoubleEndorser)
        } else {
            None
        };
        if let Some(why) = ignored {
            t.ignored.push((member.clone(), why));
            continue;
        }
        match m.chamber {
            Chamber::Government => t.government += 1,
            Chamber::Industry => t.industry += 1,
            Chamber::CivilSociety => t.civil_society += 1,
        }
        t.counted.push(member.clone());
    }
    t
}
