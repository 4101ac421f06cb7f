//! custody-node: a participant node that gossips over libp2p, catches up by itself, and serves an HTTP API.

pub mod action_body;
pub mod actions;
pub mod api;
pub mod bundle;
pub mod config;
pub mod epcis;
pub mod explorer;
pub mod explorer_graph;
pub mod explorer_html;
pub mod explorer_member;
pub mod explorer_pages;
pub mod explorer_parcel;
pub mod gov;
pub mod http;
pub mod ip_limit;
pub mod launch;
pub mod metrics;
pub mod net;
pub mod node;
pub mod service;
pub mod signing;
pub mod sync;
pub mod watch;
pub mod witness;
