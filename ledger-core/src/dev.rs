//! Development networks: genesis documents with keys derived from names, for tests, benchmarks and `--dev`.
//!
//! Keys here are derived from public names and are not secret: never use them on a real network.

use std::collections::BTreeMap;

use crate::bytes::NetworkId;
use crate::crypto::{sha256, SecretKey};
use crate::governance::network_id;
use crate::types::{
    Chamber, Country, Genesis, KeyGrant, Member, MemberId, Policy, Role, Site, SiteId,
};
use crate::writer::FeedWriter;

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
