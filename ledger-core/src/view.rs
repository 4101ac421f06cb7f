//! The read-only view that the rules judge an event against: the parcels at the heads it cites,
//! the certificates it cites, its author's feed, the governance state at the version it cites,
//! and the governance chain's binding decisions (key cuts, suspensions, embargoes: these bind
//! by seq and date whatever version an event cites, and a change to them recomputes the state).
//!
//! The rules see nothing else of the ledger, so a verdict depends only on cited state by
//! construction.

use crate::bytes::EventId;
use crate::event::{Certify, ParcelRef};
use crate::governance::{GovState, Governance};
use crate::state::{Parcel, State};
use crate::types::MemberId;
use crate::verdict::ParcelState;

/// The state an event is judged against.
#[derive(Debug)]
pub struct CitedView<'a> {
    state: &'a State,
    gov: &'a GovState,
    chain: &'a Governance,
}

/// A parcel as it was at a cited head.
#[derive(Debug)]
pub struct AtHead<'a> {
    /// The parcel's record (its creation fields and origin do not change).
    pub parcel: &'a Parcel,
    /// Where the parcel was right after the cited head.
    pub state: ParcelState,
    /// What it weighed right after the cited head: the last receipt's weight, else the declared.
    pub mass: u64,
    /// True when an applied event moved the parcel on from the cited head.
    pub moved_on: bool,
}

impl<'a> CitedView<'a> {
    /// The view of `state` for an event acting under governance version `version` of `chain`;
    /// `None` when the chain lacks that version.
    pub fn new(state: &'a State, chain: &'a Governance, version: u64) -> Option<CitedView<'a>> {
        Some(CitedView {
            state,
            gov: chain.at(version)?,
            chain,
        })
    }

    /// The governance chain, for the decisions that bind every event (the newest state's key
    /// cuts, suspensions and embargoes) and for judging governance records.
    pub fn chain(&self) -> &'a Governance {
        self.chain
    }

    /// The newest governance state.
    pub fn binding(&self) -> &'a GovState {
        self.chain.latest_state()
    }

    /// The governance state at the version the event cites.
    pub fn gov(&self) -> &'a GovState {
        self.gov
    }

    /// The parcel at the cited head, if that head is an applied event on that parcel.
    pub fn at_head(&self, r: &ParcelRef) -> Option<AtHead<'a>> {
        let parcel = self.state.parcel(&r.parcel)?;
        let state = parcel.state_at(&r.head)?;
        Some(AtHead {
            parcel,
            state,
            mass: parcel.mass_at(&r.head)?,
            moved_on: *parcel.head() != r.head,
        })
    }

    /// A cited certificate, if it is applied.
    pub fn certificate(&self, id: &EventId) -> Option<&'a Certify> {
        self.state.certificate(id)
    }

    /// True when `author` already issued an applied certificate under `number`. Only the
    /// author's own earlier events can be such a certificate, and they are judged before this
    /// one in every delivery order, so the answer does not depend on that order.
    pub fn certificate_number_used(&self, author: &MemberId, number: &str) -> bool {
        self.state.certificate_by_number(author, number).is_some()
    }

    /// True when `author`'s own feed is void at `seq` (a proven fork at or before it).
    pub fn author_forked(&self, author: &MemberId, seq: u64) -> bool {
        self.state.is_forked_at(author, seq)
    }
}
