//! `custody audit parcel ID --epcis`: the parcel's lineage as a GS1 EPCIS 2.0 document, from a
//! log verified and replayed on this machine (the mapping is the node's, docs/epcis.md).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;

use anyhow::bail;

use ledger_core::admission::decode_event;
use ledger_core::audit::audit_parcel;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::Body;
use ledger_core::export::ExportReader;
use ledger_core::replay::SignatureCheck;

use crate::inspect::{replay_log, Source};

/// Prints the EPCIS document of `parcel` from `source`'s log, verified and replayed here.
pub fn run(source: &Source, parcel: &ParcelId) -> anyhow::Result<()> {
    let log = source.fetch()?;
    let replayed = replay_log(&log, SignatureCheck::Strict)?;
    if !replayed.report.intact() {
        bail!("the log is not intact; run `custody replay` to see where");
    }
    let ledger = &replayed.ledger;
    let Some(audit) = audit_parcel(ledger, parcel) else {
        bail!("unknown parcel {parcel}: no stored event created it");
    };
    // The bodies of the history's events, read again from the verified log.
    let wanted: HashSet<EventId> = audit.history.iter().map(|h| h.event).collect();
    let mut bodies: HashMap<EventId, Body> = HashMap::new();
    for record in ExportReader::new(BufReader::new(File::open(&log.path)?)) {
        let record = record?;
        if let Ok(ev) = decode_event(&record.bytes, ledger.network()) {
            if wanted.contains(ev.id()) {
                bodies.insert(*ev.id(), ev.body().clone());
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let doc = custody_node::epcis::document(ledger, &audit, now, |id| bodies.get(id).cloned());
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
