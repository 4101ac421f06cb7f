//! custody's core: signed custody events, feeds, parcel rules, a sled store and deterministic replay.
//!
//! No async and no network here: the node and the CLI build on these types.

pub mod admission;
pub mod amount;
pub mod audit;
pub mod audit_gov;
pub mod bundle;
pub mod bundle_select;
pub mod bytes;
pub mod checkpoint;
pub mod codec;
pub mod crypto;
pub mod dev;
pub mod digest;
pub mod effects;
pub mod event;
pub mod event_kp;
pub mod evidence;
pub mod export;
pub mod feed_tree;
pub mod findings;
pub mod genesis;
pub mod gov_state;
pub mod governance;
pub mod ledger;
pub mod merkle;
pub mod origin;
pub mod parcel_index;
pub mod pending;
pub mod placement;
pub mod production;
pub mod proposals;
pub mod quorum;
pub mod record;
pub mod replay;
pub mod rules;
pub mod state;
pub mod stats;
pub mod store;
pub mod surfaced;
pub mod types;
pub mod verdict;
pub mod view;
pub mod witness;
pub mod writer;
