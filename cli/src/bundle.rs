//! `custody audit parcel` from a proof bundle (the default) and `custody verify-bundle`: one
//! parcel's audit as of a cosigned checkpoint, verified here with the genesis alone.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::json;

use ledger_core::bundle::{verify_bundle, Bundle, BundleAudit};
use ledger_core::bytes::ParcelId;
use ledger_core::codec::MAX_BUNDLE_BYTES;
use ledger_core::governance::network_id;
use ledger_core::ledger::Ledger;
use ledger_core::types::Genesis;

use crate::checkpoint::verify_checkpoint;
use crate::client::{ClientError, Node};
use crate::inspect::{audit_dot, audit_json, print_audit, AuditFormat};

/// A bundle refused by the verifier: exit 1, with the reason's stable name.
#[derive(Debug, thiserror::Error)]
#[error("bundle refused ({reason}): {detail}")]
pub struct Refused {
    pub reason: &'static str,
    pub detail: String,
}

/// What to audit a parcel with, from a node.
pub struct Request<'a> {
    pub node: &'a Node,
    pub genesis: Genesis,
    pub parcel: ParcelId,
    /// The state file of remembered checkpoints.
    pub state: &'a Path,
    pub witnesses: Option<usize>,
    /// Where to write the bundle too.
    pub save: Option<&'a Path>,
    pub format: AuditFormat,
}

/// `custody audit parcel ID`: the parcel's bundle fetched and verified, then its checkpoint
/// checked against the newest one this client verified for the network (no rollback) and
/// remembered.
pub fn audit(r: &Request) -> anyhow::Result<()> {
    let network = network_id(&r.genesis);
    let query = r
        .witnesses
        .map_or_else(String::new, |k| format!("?witnesses={k}"));
    let bytes = r
        .node
        .get_bytes(
            &format!("/v1/parcels/{}/bundle{query}", r.parcel),
            MAX_BUNDLE_BYTES as u64,
        )
        .map_err(|e| no_checkpoint(e.into()))?;
    let bundle = decode(&bytes)?;
    if bundle.parcel != r.parcel {
        bail!(
            "the node sent the bundle of parcel {}, not {}",
            bundle.parcel,
            r.parcel
        );
    }
    let (verified, ledger) = verify(&r.genesis, &bundle, r.witnesses)?;
    let forks: Vec<_> = ledger.forks().cloned().collect();
    verify_checkpoint(
        r.node,
        &network,
        r.state,
        Some(&verified.checkpoint_id),
        &forks,
    )?;
    if let Some(path) = r.save {
        write(path, &bytes)?;
    }
    print(&ledger, &verified, r.format, bytes.len());
    Ok(())
}

/// Says what to do when the node keeps no checkpoint.
fn no_checkpoint(e: anyhow::Error) -> anyhow::Error {
    let none = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ClientError>(),
            Some(ClientError::Refused { status: 404, .. })
        )
    });
    if none {
        e.context("no bundle: audit with --full, or ask a node that keeps cosigned checkpoints")
    } else {
        e
    }
}

/// `custody verify-bundle FILE --genesis G`: the same verification, offline.
pub fn verify_file(
    file: &Path,
    genesis: &Genesis,
    witnesses: Option<usize>,
    format: AuditFormat,
) -> anyhow::Result<()> {
    let bytes = read(file)?;
    let bundle = decode(&bytes)?;
    let (verified, ledger) = verify(genesis, &bundle, witnesses)?;
    print(&ledger, &verified, format, bytes.len());
    Ok(())
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_BUNDLE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", file.display()))?;
    Ok(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn decode(bytes: &[u8]) -> anyhow::Result<Bundle> {
    Bundle::decode(bytes).map_err(|e| {
        Refused {
            reason: e.reason(),
            detail: e.to_string(),
        }
        .into()
    })
}

fn verify(
    genesis: &Genesis,
    bundle: &Bundle,
    witnesses: Option<usize>,
) -> anyhow::Result<(BundleAudit, Ledger)> {
    verify_bundle(genesis, bundle, witnesses).map_err(|e| {
        Refused {
            reason: e.reason(),
            detail: e.to_string(),
        }
        .into()
    })
}

fn print(ledger: &Ledger, v: &BundleAudit, format: AuditFormat, size: usize) {
    match format {
        AuditFormat::Json => {
            let mut out = audit_json(ledger, &v.audit, &v.findings);
            out["proof"] = json!({
                "checkpoint": v.checkpoint_id,
                "time_ms": v.checkpoint.time_ms,
                "gov": v.checkpoint.gov,
                "cosigners": v.cosigners,
                "required": v.required,
                "proven_events": v.proven,
                "evidence_events": v.evidence,
                "bytes": size,
            });
            println!("{out}");
        }
        AuditFormat::Dot => print!("{}", audit_dot(&v.audit)),
        AuditFormat::Text => {
            println!(
                "proof bundle ({size} bytes): {} events proven in checkpoint {} of {}, cosigned by {} ({} required); {} carried as evidence of forks or cut keys",
                v.proven,
                v.checkpoint_id,
                crate::inspect::iso_time(v.checkpoint.time_ms),
                if v.cosigners.is_empty() { "no witness".to_owned() } else { v.cosigners.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") },
                v.required,
                v.evidence,
            );
            println!(
                "  as of that checkpoint (deadlines too); `--full` replays the whole log instead, up to its newest event"
            );
            print_audit(ledger, &v.audit, &v.findings);
        }
    }
}
