//! `custody key` and `custody genesis`: member keys, and genesis documents written from a members file.

use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};

use custody_node::config::{read_secret_key, write_secret_key};
use ledger_core::bytes::{to_hex, PublicKeyBytes};
use ledger_core::codec;
use ledger_core::crypto::{sha256, SecretKey};
use ledger_core::governance::{check_genesis, decode_genesis, network_id};
use ledger_core::types::{
    Chamber, Country, Genesis, KeyGrant, Member, MemberId, Policy, Role, Site, SiteId,
};

/// Largest members file read.
pub const MAX_MEMBERS_FILE: u64 = 1024 * 1024;

/// A short fingerprint of a public key: the first 8 bytes of its SHA-256, in colon-separated pairs.
pub fn fingerprint(key: &PublicKeyBytes) -> String {
    let d = sha256(&[b"custody/key-fingerprint/v1\0", &key.0]);
    d.0[..8].chunks(2).map(to_hex).collect::<Vec<_>>().join(":")
}

/// `custody key new`.
pub fn key_new(out: Option<&Path>, json_out: bool) -> anyhow::Result<()> {
    let key = SecretKey::generate();
    let public = key.public();
    match out {
        Some(path) => {
            if path.exists() {
                bail!(
                    "{} exists already; choose another --out (keys are never overwritten)",
                    path.display()
                );
            }
            write_secret_key(path, &key)?;
            if json_out {
                println!(
                    "{}",
                    json!({"file": path.display().to_string(), "public_key": public, "fingerprint": fingerprint(&public)})
                );
            } else {
                println!("wrote secret key to {} (mode 0600)", path.display());
                println!("public key   {public}");
                println!("fingerprint  {}", fingerprint(&public));
            }
        }
        None => {
            // The secret goes to stdout (for a pipe or redirect); the public part to stderr.
            println!("{}", to_hex(&key.to_bytes()));
            eprintln!("public key   {public}");
            eprintln!("fingerprint  {}", fingerprint(&public));
        }
    }
    Ok(())
}

/// `custody key show`.
pub fn key_show(file: &Path, json_out: bool) -> anyhow::Result<()> {
    let key = read_secret_key(file)?;
    let public = key.public();
    if json_out {
        println!(
            "{}",
            json!({"public_key": public, "fingerprint": fingerprint(&public)})
        );
    } else {
        println!("public key   {public}");
        println!("fingerprint  {}", fingerprint(&public));
    }
    Ok(())
}

/// The members file (TOML) that `custody genesis new` reads; documented in docs/cli.md.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersFile {
    name: String,
    /// Founding time (UNIX ms); now if absent.
    created_ms: Option<u64>,
    policy: Option<Policy>,
    #[serde(rename = "member")]
    members: Vec<MemberEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberEntry {
    id: MemberId,
    name: String,
    chamber: Chamber,
    country: Country,
    roles: Vec<Role>,
    /// Public keys (64 hex characters).
    keys: Vec<PublicKeyBytes>,
    #[serde(default, rename = "site")]
    sites: Vec<SiteEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteEntry {
    id: SiteId,
    name: String,
    #[serde(default)]
    region: String,
}

pub(crate) fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{} is larger than {limit} bytes", path.display());
    }
    Ok(bytes)
}

/// Reads and checks a members file into a genesis.
pub fn genesis_from_members(path: &Path) -> anyhow::Result<Genesis> {
    let text = String::from_utf8(read_limited(path, MAX_MEMBERS_FILE)?)
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    let file: MembersFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid members file", path.display()))?;
    let created_ms = match file.created_ms {
        Some(ms) => ms,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    let genesis = Genesis {
        name: file.name,
        created_ms,
        members: file
            .members
            .into_iter()
            .map(|m| Member {
                id: m.id,
                name: m.name,
                chamber: m.chamber,
                country: m.country,
                roles: m.roles,
                sites: m
                    .sites
                    .into_iter()
                    .map(|s| Site {
                        id: s.id,
                        name: s.name,
                        region: s.region,
                        country: m.country,
                    })
                    .collect(),
                keys: m
                    .keys
                    .into_iter()
                    .map(|key| KeyGrant { key, from_seq: 1 })
                    .collect(),
            })
            .collect(),
        policy: file.policy.unwrap_or_default(),
    };
    check_genesis(&genesis)
        .with_context(|| format!("{} describes an invalid genesis", path.display()))?;
    Ok(genesis)
}

/// `custody genesis new`.
pub fn genesis_new(members: &Path, out: &Path, json_out: bool) -> anyhow::Result<()> {
    let genesis = genesis_from_members(members)?;
    if out.exists() {
        bail!("{} exists already; choose another --out", out.display());
    }
    std::fs::write(out, codec::encode(&genesis))
        .with_context(|| format!("writing {}", out.display()))?;
    let id = network_id(&genesis);
    if json_out {
        println!(
            "{}",
            json!({"file": out.display().to_string(), "network": id, "members": genesis.members.len()})
        );
    } else {
        println!(
            "wrote {} ({} members)",
            out.display(),
            genesis.members.len()
        );
        println!("network id  {id}");
    }
    Ok(())
}

/// Reads a genesis document from a file.
pub fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let bytes = read_limited(path, codec::MAX_GENESIS_BYTES as u64)?;
    decode_genesis(&bytes)
        .with_context(|| format!("{} is not a valid genesis document", path.display()))
}

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Member ids by chamber, in the genesis's order.
fn chambers(g: &Genesis) -> Vec<(String, Vec<&str>)> {
    [
        Chamber::Government,
        Chamber::Industry,
        Chamber::CivilSociety,
    ]
    .iter()
    .map(|c| {
        let ids = g
            .members
            .iter()
            .filter(|m| m.chamber == *c)
            .map(|m| m.id.as_str())
            .collect();
        (name(c), ids)
    })
    .collect()
}

/// The JSON form of a genesis, as `custody genesis show --json` prints it.
pub fn genesis_json(g: &Genesis) -> Value {
    let mut chambers_json = serde_json::Map::new();
    for (chamber, ids) in chambers(g) {
        chambers_json.insert(chamber, json!(ids));
    }
    json!({
        "name": g.name,
        "created_ms": g.created_ms,
        "network": network_id(g),
        "members": g.members.iter().map(|m| json!({
            "id": m.id,
            "name": m.name,
            "chamber": m.chamber,
            "country": m.country,
            "roles": m.roles,
            "sites": m.sites.iter().map(|s| json!({"id": s.id, "name": s.name, "region": s.region})).collect::<Vec<_>>(),
            "keys": m.keys.iter().map(|k| json!({"key": k.key, "fingerprint": fingerprint(&k.key), "from_seq": k.from_seq})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "chambers": chambers_json,
        "policy": g.policy,
    })
}

/// `custody genesis show`.
pub fn genesis_show(file: &Path, json_out: bool) -> anyhow::Result<()> {
    let g = read_genesis(file)?;
    if json_out {
        println!("{}", genesis_json(&g));
        return Ok(());
    }
    println!("{}", g.name);
    println!("network id  {}", network_id(&g));
    println!(
        "founded     {}",
        ledger_core::types::Date::from_unix_ms(g.created_ms)
    );
    println!();
    println!("members ({}):", g.members.len());
    for m in &g.members {
        let roles: Vec<String> = m.roles.iter().map(name).collect();
        println!(
            "  {:<16} {:<3} {:<14} {:<22} {}",
            m.id.as_str(),
            m.country.to_string(),
            name(&m.chamber),
            roles.join(","),
            m.name
        );
        for s in &m.sites {
            println!("      site {} ({})", s.id.as_str(), s.name);
        }
        for k in &m.keys {
            println!("      key  {} from seq {}", fingerprint(&k.key), k.from_seq);
        }
    }
    println!();
    println!("chambers:");
    for (chamber, ids) in chambers(&g) {
        println!("  {chamber:<14} {}", ids.join(", "));
    }
    let p = &g.policy;
    println!();
    println!("policy:");
    println!(
        "  quorum                  government {}/{}, industry {}, civil society {}",
        p.quorum.government_num,
        p.quorum.government_den,
        p.quorum.industry_min,
        p.quorum.civil_society_min
    );
    println!(
        "  mass loss tolerance     {:.2}%",
        f64::from(p.mass_loss_tolerance_ppm) / 10_000.0
    );
    println!(
        "  transit deadline        {} days",
        p.transit_deadline_ms / 86_400_000
    );
    println!(
        "  late registration       {} days",
        p.late_registration_ms / 86_400_000
    );
    println!("  value jump limit        {}%", p.value_jump_pct);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_section_may_give_only_some_fields() {
        let file: MembersFile = toml::from_str(
            "name = \"n\"\nmember = []\n[policy]\nvalue_jump_pct = 250\n[policy.quorum]\ngovernment_num = 3\n\
             government_den = 4\nindustry_min = 2\ncivil_society_min = 1\n",
        )
        .expect("a partial policy parses");
        let p = file.policy.expect("policy");
        assert_eq!(p.value_jump_pct, 250);
        assert_eq!(p.quorum.government_num, 3);
        assert_eq!(p.witness_roles, Policy::default().witness_roles);
        assert_eq!(
            p.certificate_validity_days,
            Policy::default().certificate_validity_days
        );
    }
}
