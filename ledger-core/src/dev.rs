//! Development networks: genesis documents with keys derived from names, for tests, benchmarks and `--dev`.
//!
//! Keys here are derived from public names and are not secret: never use them on a real network.

use std::collections::BTreeMap;

use crate::bytes::{Digest, NetworkId, SignatureBytes};
use crate::crypto::{event_message, sha256, verifying_key, SecretKey, SignatureItem};
use crate::event::{Body, Dispatch, NewParcel, ParcelRef, Receive, Register, Transform};
use crate::governance::network_id;
use crate::rules::parcel_id;
use crate::types::{
    Chamber, Country, Genesis, KeyGrant, Member, MemberId, Policy, Role, Site, SiteId,
};
use crate::writer::{FeedWriter, Signed};

/// The key a development member named `name` signs with.
pub fn dev_key(name: &str) -> SecretKey {
    SecretKey::from_bytes(&sha256(&[b"custody/dev-key/v1\0", name.as_bytes()]).0)
}

/// A genesis under construction, with the secret keys of its members.
#[derive(Debug, Default)]
pub struct DevNetwork {
    members: Vec<Member>,
    keys: BTreeMap<MemberId, [u8; 32]>,
}

/// Parses a literal the caller wrote (a slug or country in code); panics on a typo in the code.
fn lit<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    #[allow(clippy::expect_used)]
    s.parse()
        .expect("development network literal must be valid")
}

impl DevNetwork {
    /// An empty network.
    pub fn new() -> DevNetwork {
        DevNetwork::default()
    }

    /// Adds a member with a key derived from its id; mines get one site per name in `sites`.
    pub fn member(
        mut self,
        id: &str,
        chamber: Chamber,
        country: &str,
        roles: &[Role],
        sites: &[&str],
    ) -> DevNetwork {
        let key = dev_key(id);
        let country: Country = lit(country);
        self.members.push(Member {
            id: lit(id),
            name: id.to_owned(),
            chamber,
            country,
            roles: roles.to_vec(),
            sites: sites
                .iter()
                .map(|s| Site {
                    id: lit::<SiteId>(s),
                    name: (*s).to_owned(),
                    region: "-".into(),
                    country,
                })
                .collect(),
            keys: vec![KeyGrant {
                key: key.public(),
                from_seq: 1,
            }],
        });
        self.keys.insert(lit(id), key.to_bytes());
        self
    }

    /// The genesis of this network.
    pub fn genesis(&self) -> Genesis {
        Genesis {
            name: "custody development network".into(),
            created_ms: 0,
            members: self.members.clone(),
            policy: Policy::default(),
        }
    }

    /// The network id.
    pub fn network(&self) -> NetworkId {
        network_id(&self.genesis())
    }

    /// A fresh feed writer for member `id` (which must have been added).
    pub fn writer(&self, id: &str) -> Option<FeedWriter> {
        let member: MemberId = id.parse().ok()?;
        let key = self.keys.get(&member)?;
        Some(FeedWriter::new(
            self.network(),
            member,
            SecretKey::from_bytes(key),
        ))
    }

    /// The standard cast: two mines in two countries, a sorter and an exporter in Botswana, an
    /// importer in Belgium, three national authorities and a civil-society monitor.
    pub fn standard() -> DevNetwork {
        use Chamber::*;
        use Role::*;
        DevNetwork::new()
            .member("mine-zw", Industry, "ZW", &[Mine], &["marange"])
            .member("mine-bw", Industry, "BW", &[Mine], &["jwaneng", "orapa"])
            .member("sorter-bw", Industry, "BW", &[Sorter], &[])
            .member("exporter-bw", Industry, "BW", &[Exporter, Sorter], &[])
            .member("importer-be", Industry, "BE", &[Importer], &[])
            .member("authority-zw", Government, "ZW", &[Authority], &[])
            .member("authority-bw", Government, "BW", &[Authority], &[])
            .member("authority-be", Government, "BE", &[Authority], &[])
            .member("monitor", CivilSociety, "ZA", &[Monitor], &[])
    }
}

/// The benchmarks' parcel-heavy workload: cycles of a registration at one of `mines` (each with a
/// site `pit`), its dispatch to one of `sorters`, its receipt and a split in two with 1% loss,
/// in a dependency-respecting order, 0.75 parcels per event. `out` gets each of the first `n`
/// events.
pub fn split_cycles(
    dev: &DevNetwork,
    mines: &[&str],
    sorters: &[&str],
    n: usize,
    mut out: impl FnMut(Signed),
) {
    let writers = |names: &[&str]| -> Vec<FeedWriter> {
        names.iter().filter_map(|m| dev.writer(m)).collect()
    };
    let (mut mines, mut sorters) = (writers(mines), writers(sorters));
    if mines.is_empty() || sorters.is_empty() {
        return;
    }
    let mut t = 1_780_000_000_000u64;
    let mut written = 0usize;
    for cycle in 0.. {
        let (m, s) = (cycle % mines.len(), cycle % sorters.len());
        t += 1;
        let carats = 1_000 + cycle as u64 % 500;
        let reg = mines[m].append(
            Body::Register(Register {
                site: lit("pit"),
                carats,
                stones: 12,
                value_cents: Some(carats * 100),
                seal: format!("S{cycle}"),
                extracted_on: lit("2026-01-01"),
            }),
            t,
        );
        let parcel = parcel_id(&reg.id, 0);
        let to = sorters[s].author().clone();
        let dis = mines[m].append(
            Body::Dispatch(Dispatch {
                parcel: ParcelRef {
                    parcel,
                    head: reg.id,
                },
                to,
                certificate: None,
                seal: "D".into(),
                deadline_ms: None,
            }),
            t,
        );
        let rec = sorters[s].append(
            Body::Receive(Receive {
                parcel: ParcelRef {
                    parcel,
                    head: dis.id,
                },
                measured_carats: carats,
                seal_intact: true,
                note: String::new(),
            }),
            t,
        );
        let half = carats / 2;
        let split = sorters[s].append(
            Body::Transform(Transform {
                inputs: vec![ParcelRef {
                    parcel,
                    head: rec.id,
                }],
                outputs: vec![
                    NewParcel {
                        carats: half,
                        stones: 6,
                        value_cents: None,
                        seal: "A".into(),
                    },
                    NewParcel {
                        carats: carats - half - carats / 100,
                        stones: 6,
                        value_cents: None,
                        seal: "B".into(),
                    },
                ],
            }),
            t,
        );
        for e in [reg, dis, rec, split] {
            if written == n {
                return;
            }
            out(e);
            written += 1;
        }
    }
}

/// Valid signatures over `n` messages of about 300 bytes by one key, for measuring reference
/// ed25519 rates in benchmarks.
#[derive(Debug)]
pub struct SignatureSample {
    pub key: ed25519_dalek::VerifyingKey,
    pub messages: Vec<Vec<u8>>,
    pub signatures: Vec<SignatureBytes>,
}

impl SignatureSample {
    /// `n` signed messages.
    pub fn new(n: usize) -> SignatureSample {
        let secret = SecretKey::from_bytes(&[5; 32]);
        let network = Digest([1; 32]);
        let payloads: Vec<Vec<u8>> = (0..n as u32)
            .map(|i| [i.to_le_bytes().to_vec(), vec![7u8; 280]].concat())
            .collect();
        SignatureSample {
            #[allow(clippy::expect_used)]
            key: verifying_key(&secret.public()).expect("a generated key is valid"),
            signatures: payloads
                .iter()
                .map(|p| secret.sign_event(&network, p))
                .collect(),
            messages: payloads
                .iter()
                .map(|p| event_message(&network, p))
                .collect(),
        }
    }

    /// The sample as items for `crypto::verify_many`.
    pub fn items(&self) -> Vec<SignatureItem<'_>> {
        self.messages
            .iter()
            .zip(&self.signatures)
            .map(|(m, s)| SignatureItem {
                key: self.key,
                message: m,
                signature: *s,
            })
            .collect()
    }
}
