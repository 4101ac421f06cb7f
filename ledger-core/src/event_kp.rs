//! The Kimberley Process bodies added after the first release: a certificate that names the HS
//! code of its goods, and an authority's declaration of production for a period.
//!
//! They are new body kinds at the end of [`crate::event::Body`], so the encodings (and ids) of
//! the kinds before them do not change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::Certify;
use crate::types::{Country, Date, MemberId, SiteId};

/// The goods a KP certificate covers, by Harmonized System heading. JSON writes the code as on
/// a certificate (`"7102.31"`); the event encoding, the variant's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HsCode {
    /// 7102.10: rough diamonds, unsorted.
    Unsorted,
    /// 7102.21: industrial, unworked or simply sawn, cleaved or bruted.
    Industrial,
    /// 7102.31: non-industrial, unworked or simply sawn, cleaved or bruted.
    NonIndustrial,
}

impl HsCode {
    /// Every code, in order.
    pub const ALL: [HsCode; 3] = [HsCode::Unsorted, HsCode::Industrial, HsCode::NonIndustrial];

    /// The code as written on a certificate: `7102.10`, `7102.21`, `7102.31`.
    pub fn code(self) -> &'static str {
        match self {
            HsCode::Unsorted => "7102.10",
            HsCode::Industrial => "7102.21",
            HsCode::NonIndustrial => "7102.31",
        }
    }
}

/// The encoding of [`HsCode`] in events (not human readable): the variant index.
#[derive(Serialize, Deserialize)]
#[serde(rename = "HsCode")]
enum HsRepr {
    Unsorted,
    Industrial,
    NonIndustrial,
}

impl Serialize for HsCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        match self {
            HsCode::Unsorted => HsRepr::Unsorted,
            HsCode::Industrial => HsRepr::Industrial,
            HsCode::NonIndustrial => HsRepr::NonIndustrial,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HsCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HsCode, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            return text.parse().map_err(serde::de::Error::custom);
        }
        Ok(match HsRepr::deserialize(d)? {
            HsRepr::Unsorted => HsCode::Unsorted,
            HsRepr::Industrial => HsCode::Industrial,
            HsRepr::NonIndustrial => HsCode::NonIndustrial,
        })
    }
}

impl fmt::Display for HsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An HS code that is not one of the three KP headings of rough diamonds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an HS code of rough diamonds; use 7102.10 (unsorted), 7102.21 (industrial) or 7102.31 (non-industrial)")]
pub struct HsCodeError(pub String);

impl FromStr for HsCode {
    type Err = HsCodeError;
    fn from_str(s: &str) -> Result<HsCode, HsCodeError> {
        let plain: String = s.chars().filter(|c| *c != '.').collect();
        HsCode::ALL
            .into_iter()
            .find(|c| c.code().replace('.', "") == plain)
            .ok_or_else(|| HsCodeError(s.to_owned()))
    }
}

/// A KP certificate with the HS code of its goods: what authorities issue from now on. The
/// certificate part is judged exactly as a [`Certify`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpCertificate {
    pub certify: Certify,
    pub hs_code: HsCode,
}

/// What a production declaration covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DeclareScope {
    /// A whole producing country.
    Country(Country),
    /// One mine site.
    Site { member: MemberId, site: SiteId },
}

impl fmt::Display for DeclareScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclareScope::Country(c) => write!(f, "country {c}"),
            DeclareScope::Site { member, site } => write!(f, "site {member}/{site}"),
        }
    }
}

/// An authority's declaration of what a country or site produced in a period, and the stock it
/// held at the period's start: what exports of that origin in the period may not exceed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declare {
    pub scope: DeclareScope,
    /// First day of the period.
    pub from: Date,
    /// Last day of the period (inclusive).
    pub to: Date,
    /// Hundredths of a carat produced in the period.
    pub carats: u64,
    /// US cents, if declared.
    pub value_cents: Option<u64>,
    /// Hundredths of a carat held in stock at the start of the period.
    pub stock_carats: u64,
}

impl Declare {
    /// True when `day` falls in the period.
    pub fn covers(&self, day: Date) -> bool {
        self.from <= day && day <= self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs_codes_parse_with_or_without_the_dot_and_nothing_else() {
        for c in HsCode::ALL {
            assert_eq!(c.code().parse::<HsCode>(), Ok(c));
            assert_eq!(c.code().replace('.', "").parse::<HsCode>(), Ok(c));
        }
        for bad in ["7102", "7103.10", "", "7102.1"] {
            let err = bad.parse::<HsCode>().expect_err(bad);
            assert!(err.to_string().contains("7102.21"), "{err}");
        }
    }
}
