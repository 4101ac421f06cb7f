//! The governance state at one version (members, keys in force, suspensions, embargoes, policy)
//! and how one governance action changes it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::bytes::PublicKeyBytes;
use crate::crypto::verifying_key;
use crate::event::{EmbargoTarget, GovAction};
use crate::genesis::{check_member, policy_is_possible};
use crate::origin::{Origin, OriginShare};
use crate::types::{Chamber, Date, Genesis, KeyGrant, Member, MemberId, Policy};

/// A key that signs nothing after `last_valid_seq` of its member's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub member: MemberId,
    pub last_valid_seq: u64,
    /// The governance version that revoked it.
    pub version: u64,
}

/// A suspension: the member's events after `last_valid_seq` are void, except those citing the
/// reinstating version or a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub last_valid_seq: u64,
    pub reason: String,
    /// The governance version that suspended the member.
    pub version: u64,
    /// The governance version that reinstated it, if any.
    pub reinstated: Option<u64>,
}

/// The end of an embargo by governance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lift {
    /// The first day the embargo is no longer in force.
    pub on: Date,
    pub reason: String,
    pub version: u64,
}

/// An embargo: in force on the days `from <= day < end`, where the end is the earlier of
/// `until` and the lift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embargo {
    pub target: EmbargoTarget,
    pub from: Date,
    /// The first day it is no longer in force, as set (open-ended when absent).
    pub until: Option<Date>,
    pub reason: String,
    /// The governance version that set it.
    pub version: u64,
    pub lifted: Option<Lift>,
}

impl Embargo {
    /// The first day the embargo is not in force, if it ends.
    pub fn end(&self) -> Option<Date> {
        match (self.until, self.lifted.as_ref().map(|l| l.on)) {
            (Some(u), Some(l)) => Some(u.min(l)),
            (u, l) => u.or(l),
        }
    }
    /// True when the embargo is in force on `day`.
    pub fn in_force(&self, day: Date) -> bool {
        self.from <= day && self.end().is_none_or(|end| day < end)
    }
    /// True when the embargo covers some origin share of a parcel with this origin.
    pub fn covers(&self, origin: &Origin) -> bool {
        origin.shares().iter().any(|s| self.covers_share(s))
    }
    /// True when the embargo covers this one origin share.
    pub fn covers_share(&self, s: &OriginShare) -> bool {
        match &self.target {
            EmbargoTarget::Country(c) => s.country == *c,
            EmbargoTarget::Member(m) => s.member == *m,
            EmbargoTarget::Site { member, site } => s.member == *member && s.site == *site,
        }
    }
    /// The target in words: `country ZW`, `member zw-mmcz`, `site zw-mmcz/marange`.
    pub fn target_text(&self) -> String {
        match &self.target {
            EmbargoTarget::Country(c) => format!("country {c}"),
            EmbargoTarget::Member(m) => format!("member {m}"),
            EmbargoTarget::Site { member, site } => format!("site {member}/{site}"),
        }
    }
}

/// Why a governance action cannot apply to the state it extends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("member {0} does not exist")]
    UnknownMember(MemberId),
    #[error("member {0} exists already")]
    MemberExists(MemberId),
    #[error("member is invalid: {0}")]
    BadMember(String),
    #[error("key {0} was granted before; keys are never reused")]
    KeyReused(PublicKeyBytes),
    #[error("key {0} is not a valid ed25519 key")]
    BadKey(PublicKeyBytes),
    #[error("key {0} is not a key of this member")]
    NotTheMembersKey(PublicKeyBytes),
    #[error("member {member} has a key in force at seq {seq}; rotate it instead")]
    KeyInForce { member: MemberId, seq: u64 },
    #[error("member {member} has no key in force to rotate")]
    NoKeyInForce { member: MemberId },
    #[error("the new key must start after seq {0}, where the key in force starts")]
    SeqTooLow(u64),
    #[error("member {0} is suspended already")]
    AlreadySuspended(MemberId),
    #[error("member {0} is not suspended")]
    NotSuspended(MemberId),
    #[error("an embargo is in place on this target already; lift it first")]
    EmbargoExists,
    #[error("no embargo is in place on this target")]
    NoEmbargo,
    #[error("the embargo would end before it starts")]
    BadDates,
    #[error("the site named is not a site of that member")]
    UnknownSite,
    #[error("the policy's government fraction must be num/den with 0 < num <= den")]
    BadPolicy,
    #[error("roles must not be empty, and site ids must be distinct")]
    BadUpdate,
}

/// The governance state at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovState {
    pub members: BTreeMap<MemberId, Member>,
    pub policy: Policy,
    /// Revoked keys (a rotation revokes the key it replaces).
    pub revoked: BTreeMap<PublicKeyBytes, Revocation>,
    /// Every suspension ever made, by member, oldest first.
    pub suspensions: BTreeMap<MemberId, Vec<Suspension>>,
    /// Every embargo ever set, oldest first.
    pub embargoes: Vec<Embargo>,
    /// Every key ever granted (a key is never granted twice).
    pub used_keys: BTreeSet<PublicKeyBytes>,
}

impl GovState {
    /// The state at version 0.
    pub fn from_genesis(g: &Genesis) -> GovState {
        GovState {
            members: g
                .members
                .iter()
                .map(|m| (m.id.clone(), m.clone()))
                .collect(),
            policy: g.policy.clone(),
            revoked: BTreeMap::new(),
            suspensions: BTreeMap::new(),
            embargoes: Vec::new(),
            used_keys: g
                .members
                .iter()
                .flat_map(|m| m.keys.iter().map(|k| k.key))
                .collect(),
        }
    }

    /// The key that signs `member`'s feed position `seq` in this state: the latest grant that
    /// starts at or before `seq`, unless it was revoked before `seq`.
    pub fn key_for(&self, member: &MemberId, seq: u64) -> Option<&PublicKeyBytes> {
        let key = self.members.get(member)?.key_for_seq(seq)?;
        match self.revoked.get(key) {
            Some(r) if seq > r.last_valid_seq => None,
            _ => Some(key),
        }
    }

    /// The member's newest key, unless it is revoked: the only key whose endorsements count.
    pub fn current_key(&self, member: &MemberId) -> Option<&PublicKeyBytes> {
        let m = self.members.get(member)?;
        let newest = m.keys.iter().max_by_key(|g| g.from_seq)?;
        (!self.revoked.contains_key(&newest.key)).then_some(&newest.key)
    }

    /// True when the member is suspended now (not reinstated).
    pub fn is_suspended(&self, member: &MemberId) -> bool {
        self.suspensions
            .get(member)
            .is_some_and(|list| list.iter().any(|s| s.reinstated.is_none()))
    }

    /// The suspension that voids `member`'s event at `seq` citing version `gov`, if any.
    pub fn suspension_of(&self, member: &MemberId, seq: u64, gov: u64) -> Option<&Suspension> {
        self.suspensions
            .get(member)?
            .iter()
            .find(|s| seq > s.last_valid_seq && s.reinstated.is_none_or(|version| gov < version))
    }

    /// Members of a chamber who may endorse now (not suspended).
    pub fn voters(&self, chamber: Chamber) -> usize {
        self.members
            .values()
            .filter(|m| m.chamber == chamber && !self.is_suspended(&m.id))
            .count()
    }

    /// The state after `action`, made version `version`.
    pub fn apply(&self, version: u64, action: &GovAction) -> Result<GovState, ActionError> {
        let mut next = self.clone();
        match action {
            GovAction::Admit(m) => next.admit(m)?,
            GovAction::Update {
                member,
                name,
                roles,
                sites,
            } => {
                let mut ids = BTreeSet::new();
                if roles.is_empty() || !sites.iter().all(|s| ids.insert(&s.id)) {
                    return Err(ActionError::BadUpdate);
                }
                let m = next.member_mut(member)?;
                m.name.clone_from(name);
                m.roles.clone_from(roles);
                m.sites.clone_from(sites);
            }
            GovAction::Suspend {
                member,
                last_valid_seq,
                reason,
            } => next.suspend(version, member, *last_valid_seq, reason)?,
            GovAction::Reinstate { member, .. } => next.reinstate(version, member)?,
            GovAction::AddKey {
                member,
                key,
                from_seq,
            } => next.add_key(member, *key, *from_seq)?,
            GovAction::RotateKey {
                member,
                key,
                last_valid_seq,
            } => next.rotate_key(version, member, *key, *last_valid_seq)?,
            GovAction::RevokeKey {
                member,
                key,
                last_valid_seq,
            } => next.revoke(version, member, *key, *last_valid_seq)?,
            GovAction::SetEmbargo {
                target,
                from,
                until,
                reason,
            } => next.set_embargo(version, target, *from, *until, reason)?,
            GovAction::LiftEmbargo { target, on, reason } => {
                next.lift_embargo(version, target, *on, reason)?
            }
            GovAction::SetPolicy(p) => {
                if !policy_is_possible(p) {
                    return Err(ActionError::BadPolicy);
                }
                next.policy = p.clone();
            }
        }
        Ok(next)
    }

    fn member_mut(&mut self, id: &MemberId) -> Result<&mut Member, ActionError> {
        self.members
            .get_mut(id)
            .ok_or_else(|| ActionError::UnknownMember(id.clone()))
    }

    fn fresh_key(&self, key: PublicKeyBytes) -> Result<(), ActionError> {
        verifying_key(&key).map_err(|_| ActionError::BadKey(key))?;
        if self.used_keys.contains(&key) {
            return Err(ActionError::KeyReused(key));
        }
        Ok(())
    }

    fn admit(&mut self, m: &Member) -> Result<(), ActionError> {
        if self.members.contains_key(&m.id) {
            return Err(ActionError::MemberExists(m.id.clone()));
        }
        check_member(m).map_err(|e| ActionError::BadMember(e.to_string()))?;
        for k in &m.keys {
            self.fresh_key(k.key)?;
            self.used_keys.insert(k.key);
        }
        self.members.insert(m.id.clone(), m.clone());
        Ok(())
    }

    fn suspend(
        &mut self,
        version: u64,
        member: &MemberId,
        last_valid_seq: u64,
        reason: &str,
    ) -> Result<(), ActionError> {
        self.member_mut(member)?;
        if self.is_suspended(member) {
            return Err(ActionError::AlreadySuspended(member.clone()));
        }
        self.suspensions
            .entry(member.clone())
            .or_default()
            .push(Suspension {
                last_valid_seq,
                reason: reason.to_owned(),
                version,
                reinstated: None,
            });
        Ok(())
    }

    fn reinstate(&mut self, version: u64, member: &MemberId) -> Result<(), ActionError> {
        let open = self
            .suspensions
            .get_mut(member)
            .and_then(|list| list.iter_mut().find(|s| s.reinstated.is_none()))
            .ok_or_else(|| ActionError::NotSuspended(member.clone()))?;
        open.reinstated = Some(version);
        Ok(())
    }

    fn add_key(
        &mut self,
        member: &MemberId,
        key: PublicKeyBytes,
        from_seq: u64,
    ) -> Result<(), ActionError> {
        self.fresh_key(key)?;
        if from_seq == 0 {
            return Err(ActionError::SeqTooLow(0));
        }
        if self.key_for(member, from_seq).is_some() {
            return Err(ActionError::KeyInForce {
                member: member.clone(),
                seq: from_seq,
            });
        }
        let m = self.member_mut(member)?;
        let newest = m.keys.iter().map(|g| g.from_seq).max().unwrap_or(0);
        if from_seq <= newest {
            return Err(ActionError::SeqTooLow(newest));
        }
        m.keys.push(KeyGrant { key, from_seq });
        self.used_keys.insert(key);
        Ok(())
    }

    fn rotate_key(
        &mut self,
        version: u64,
        member: &MemberId,
        key: PublicKeyBytes,
        last_valid_seq: u64,
    ) -> Result<(), ActionError> {
        self.fresh_key(key)?;
        let m = self
            .members
            .get(member)
            .ok_or_else(|| ActionError::UnknownMember(member.clone()))?;
        let newest = m
            .keys
            .iter()
            .max_by_key(|g| g.from_seq)
            .ok_or_else(|| ActionError::NoKeyInForce {
                member: member.clone(),
            })?
            .clone();
        if self.revoked.contains_key(&newest.key) {
            return Err(ActionError::NoKeyInForce {
                member: member.clone(),
            });
        }
        // A cut just before the key's first seq leaves it valid for nothing (a theft from its
        // first event on); the new grant then starts where it did, and being later, wins.
        if last_valid_seq.saturating_add(1) < newest.from_seq {
            return Err(ActionError::SeqTooLow(newest.from_seq));
        }
        self.revoke(version, member, newest.key, last_valid_seq)?;
        let from_seq = last_valid_seq.saturating_add(1);
        self.member_mut(member)?
            .keys
            .push(KeyGrant { key, from_seq });
        self.used_keys.insert(key);
        Ok(())
    }

    fn revoke(
        &mut self,
        version: u64,
        member: &MemberId,
        key: PublicKeyBytes,
        last_valid_seq: u64,
    ) -> Result<(), ActionError> {
        let m = self
            .members
            .get(member)
            .ok_or_else(|| ActionError::UnknownMember(member.clone()))?;
        if !m.keys.iter().any(|g| g.key == key) {
            return Err(ActionError::NotTheMembersKey(key));
        }
        // A second revocation can only move the cut earlier.
        let last_valid_seq = self
            .revoked
            .get(&key)
            .map_or(last_valid_seq, |r| r.last_valid_seq.min(last_valid_seq));
        self.revoked.insert(
            key,
            Revocation {
                member: member.clone(),
                last_valid_seq,
                version,
            },
        );
        Ok(())
    }

    fn set_embargo(
        &mut self,
        version: u64,
        target: &EmbargoTarget,
        from: Date,
        until: Option<Date>,
        reason: &str,
    ) -> Result<(), ActionError> {
        self.check_target(target)?;
        if until.is_some_and(|u| u <= from) {
            return Err(ActionError::BadDates);
        }
        if self.active_embargo(target).is_some() {
            return Err(ActionError::EmbargoExists);
        }
        self.embargoes.push(Embargo {
            target: target.clone(),
            from,
            until,
            reason: reason.to_owned(),
            version,
            lifted: None,
        });
        Ok(())
    }

    fn lift_embargo(
        &mut self,
        version: u64,
        target: &EmbargoTarget,
        on: Date,
        reason: &str,
    ) -> Result<(), ActionError> {
        let i = self.active_embargo(target).ok_or(ActionError::NoEmbargo)?;
        let e = &mut self.embargoes[i];
        if on < e.from {
            return Err(ActionError::BadDates);
        }
        e.lifted = Some(Lift {
            on,
            reason: reason.to_owned(),
            version,
        });
        Ok(())
    }

    /// The embargo on `target` that no governance record has lifted yet.
    fn active_embargo(&self, target: &EmbargoTarget) -> Option<usize> {
        self.embargoes
            .iter()
            .position(|e| &e.target == target && e.lifted.is_none())
    }

    fn check_target(&self, target: &EmbargoTarget) -> Result<(), ActionError> {
        match target {
            EmbargoTarget::Country(_) => Ok(()),
            EmbargoTarget::Member(m) => self
                .members
                .get(m)
                .map(|_| ())
                .ok_or_else(|| ActionError::UnknownMember(m.clone())),
            EmbargoTarget::Site { member, site } => {
                let m = self
                    .members
                    .get(member)
                    .ok_or_else(|| ActionError::UnknownMember(member.clone()))?;
                m.site(site).map(|_| ()).ok_or(ActionError::UnknownSite)
            }
        }
    }
}
