//! Origin shares: which mine sites a parcel came from, in exact integer parts that always sum to 100%.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::{Country, MemberId, SiteId};

/// Share units in 100%: shares are parts per billion, apportioned exactly.
pub const SHARE_UNITS: u64 = 1_000_000_000;

/// One origin site's share of a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginShare {
    pub member: MemberId,
    pub site: SiteId,
    pub country: Country,
    /// Parts of [`SHARE_UNITS`].
    pub units: u64,
}

/// A parcel's origin: shares sorted by (member, site), summing to exactly [`SHARE_UNITS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin(Vec<OriginShare>);

impl Origin {
    /// A parcel registered at one site: 100% that site.
    pub fn single(member: MemberId, site: SiteId, country: Country) -> Origin {
        Origin(vec![OriginShare {
            member,
            site,
            country,
            units: SHARE_UNITS,
        }])
    }

    /// The shares.
    pub fn shares(&self) -> &[OriginShare] {
        &self.0
    }

    /// The carat-weighted mix of several origins. Each site's exact share is
    /// sum(carats_i * units_i) / sum(carats_i); the floors are taken and the units left over (fewer
    /// than the number of sites) go one each to the largest remainders, ties to the smaller
    /// (member, site), so the result is exact, deterministic and sums to 100%.
    pub fn mix(inputs: &[(&Origin, u64)]) -> Origin {
        let total: u128 = inputs.iter().map(|(_, c)| u128::from(*c)).sum();
        if total == 0 {
            return Origin(Vec::new());
        }
        let mut weights: BTreeMap<(&MemberId, &SiteId), (Country, u128)> = BTreeMap::new();
        for (origin, carats) in inputs {
            for s in &origin.0 {
                let w = weights
                    .entry((&s.member, &s.site))
                    .or_insert((s.country, 0));
                w.1 += u128::from(*carats) * u128::from(s.units);
            }
        }
        let mut shares: Vec<(OriginShare, u128)> = weights
            .into_iter()
            .map(|((member, site), (country, w))| {
                let units = u64::try_from(w / total).unwrap_or(SHARE_UNITS);
                (
                    OriginShare {
                        member: member.clone(),
                        site: site.clone(),
                        country,
                        units,
                    },
                    w % total,
                )
            })
            .collect();
        let assigned: u64 = shares.iter().map(|(s, _)| s.units).sum();
        let left = SHARE_UNITS.saturating_sub(assigned);
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
        for &i in order
            .iter()
            .take(usize::try_from(left).unwrap_or(usize::MAX))
        {
            shares[i].0.units += 1;
        }
        Origin(
            shares
                .into_iter()
                .map(|(s, _)| s)
                .filter(|s| s.units > 0)
                .collect(),
        )
    }

    /// Shares summed by country, sorted by country code.
    pub fn by_country(&self) -> Vec<(Country, u64)> {
        let mut out: BTreeMap<Country, u64> = BTreeMap::new();
        for s in &self.0 {
            *out.entry(s.country).or_default() += s.units;
        }
        out.into_iter().collect()
    }

    /// Sum of all shares (always [`SHARE_UNITS`] for a real parcel).
    pub fn total(&self) -> u64 {
        self.0.iter().map(|s| s.units).sum()
    }
}

/// A share as a percentage with up to 7 decimals, for display.
pub fn percent(units: u64) -> String {
    let whole = units / 10_000_000;
    let frac = units % 10_000_000;
    if frac == 0 {
        format!("{whole}%")
    } else {
        let f = format!("{frac:07}");
        format!("{whole}.{}%", f.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn site(m: &str, s: &str, c: &str) -> Origin {
        Origin::single(
            MemberId::new(m).expect("slug"),
            SiteId::new(s).expect("slug"),
            Country::new(c).expect("country"),
        )
    }

    #[test]
    fn mixing_weighs_by_carats() {
        let a = site("mine-a", "north", "ZW");
        let b = site("mine-b", "south", "BW");
        let m = Origin::mix(&[(&a, 300), (&b, 100)]);
        let units: Vec<u64> = m.shares().iter().map(|s| s.units).collect();
        assert_eq!(units, vec![750_000_000, 250_000_000]);
        assert_eq!(percent(750_000_000), "75%");
        assert_eq!(m.by_country().len(), 2);
    }

    #[test]
    fn thirds_still_sum_to_exactly_one_hundred_percent() {
        let (a, b, c) = (
            site("a", "s", "ZW"),
            site("b", "s", "BW"),
            site("c", "s", "ZA"),
        );
        let m = Origin::mix(&[(&a, 1), (&b, 1), (&c, 1)]);
        assert_eq!(m.total(), SHARE_UNITS);
        let units: Vec<u64> = m.shares().iter().map(|s| s.units).collect();
        assert_eq!(units, vec![333_333_334, 333_333_333, 333_333_333]);
    }

    proptest! {
        #[test]
        fn repeated_mixing_always_sums_to_one_hundred_percent(
            carats in proptest::collection::vec(1u64..1_000_000_000, 2..12)
        ) {
            let sites: Vec<Origin> = (0..carats.len()).map(|i| site(&format!("m{i}"), "s", "ZW")).collect();
            let mut acc = sites[0].clone();
            for (o, c) in sites.iter().zip(&carats).skip(1) {
                acc = Origin::mix(&[(&acc, carats[0]), (o, *c)]);
                prop_assert_eq!(acc.total(), SHARE_UNITS);
            }
        }
    }
}
