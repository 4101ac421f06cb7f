//! Members, sites, policy, genesis and the small value types (ids, countries, dates) they are made of.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bytes::PublicKeyBytes;

/// Longest member or site slug, in bytes.
pub const MAX_SLUG_LEN: usize = 32;
/// Longest free text (names, notes, reasons, seal ids), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// Why a textual value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("slug {0:?} must be 1..={MAX_SLUG_LEN} characters of a-z, 0-9 and '-' (lower case only), not starting with '-'")]
    Slug(String),
    #[error("country {0:?} must be two upper-case letters (ISO 3166-1 alpha-2)")]
    Country(String),
    #[error("date {0:?} must be YYYY-MM-DD between 1970-01-01 and 9999-12-31")]
    Date(String),
    #[error("text is {0} bytes, longer than {MAX_TEXT_LEN}")]
    Text(usize),
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks that free text is within [`MAX_TEXT_LEN`].
pub fn check_text(s: &str) -> Result<(), ValueError> {
    if s.len() > MAX_TEXT_LEN {
        return Err(ValueError::Text(s.len()));
    }
    Ok(())
}

macro_rules! slug_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        /// Shared text: clones are reference-count bumps, so the ledger keeps one copy per id.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Validates and wraps a slug.
            pub fn new(s: impl Into<String>) -> Result<Self, ValueError> {
                let s = s.into();
                if is_slug(&s) {
                    Ok(Self(s.into()))
                } else {
                    Err(ValueError::Slug(s))
                }
            }
            /// The slug text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// True when the wrapped text is a valid slug (decoded values are checked with this).
            pub fn is_valid(&self) -> bool {
                is_slug(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

slug_type!(
    /// A member's stable id, a short slug such as `zw-mmcz`.
    MemberId
);
slug_type!(
    /// A mine site's id, unique within its member.
    SiteId
);

/// An ISO 3166-1 alpha-2 country code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// Validates a two-letter upper-case code.
    pub fn new(code: &str) -> Result<Self, ValueError> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err(ValueError::Country(code.to_owned())),
        }
    }
    /// True when both bytes are upper-case letters (decoded values are checked with this).
    pub fn is_valid(&self) -> bool {
        self.0.iter().all(u8::is_ascii_uppercase)
    }
    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Country {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.as_str())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Country::new(&s).map_err(serde::de::Error::custom)
        } else {
            // Validity of decoded binary values is checked by admission (`Country::is_valid`).
            <[u8; 2]>::deserialize(d).map(Country)
        }
    }
}

/// A calendar date, stored as days since 1970-01-01 and shown as `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub u32);

/// Days from 1970-01-01 to 9999-12-31, the last date accepted.
pub const MAX_DATE_DAYS: u32 = 2_932_896;

impl Date {
    /// The date of a UNIX time in milliseconds.
    pub fn from_unix_ms(ms: u64) -> Date {
        Date(u32::try_from(ms / 86_400_000).unwrap_or(u32::MAX))
    }
    /// Builds a date from year, month and day, if it exists.
    pub fn from_ymd(y: u32, m: u32, d: u32) -> Option<Date> {
        if !(1970..=9999).contains(&y)
            || !(1..=12).contains(&m)
            || d == 0
            || d > days_in_month(y, m)
        {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = i64::from(y) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        u32::try_from(era * 146_097 + doe - 719_468).ok().map(Date)
    }
    /// Year, month and day.
    pub fn ymd(self) -> (u32, u32, u32) {
        let z = i64::from(self.0) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y as u32, m as u32, d as u32)
    }
    /// True for dates up to 9999-12-31.
    pub fn is_valid(self) -> bool {
        self.0 <= MAX_DATE_DAYS
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Date {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::Date(s.to_owned());
        let mut parts = s.split('-');
        let mut next = |len: usize| -> Result<u32, ValueError> {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != len || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let (y, m, d) = (next(4)?, next(2)?, next(2)?);
        if parts.next().is_some() {
            return Err(err());
        }
        Date::from_ymd(y, m, d).ok_or_else(err)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            u32::deserialize(d).map(Date)
        }
    }
}

/// The chamber a member sits in for governance quorums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Chamber {
    Government,
    Industry,
    CivilSociety,
}

/// What a member may do in the trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Mine,
    Sorter,
    Exporter,
    Importer,
    Authority,
    Monitor,
}

/// A mine site that parcels are registered at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub region: String,
    pub country: Country,
}

/// A signing key of a member and the first feed `seq` it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub key: PublicKeyBytes,
    pub from_seq: u64,
}

/// A participant in the trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub chamber: Chamber,
    pub country: Country,
    pub roles: Vec<Role>,
    pub sites: Vec<Site>,
    pub keys: Vec<KeyGrant>,
}

impl Member {
    /// True when the member holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    /// The key that signs feed position `seq`: the grant with the largest `from_seq <= seq`
    /// (of two with the same `from_seq`, the later one: a rotation that replaced the first).
    pub fn key_for_seq(&self, seq: u64) -> Option<&PublicKeyBytes> {
        self.keys
            .iter()
            .filter(|g| g.from_seq <= seq)
            .max_by_key(|g| g.from_seq)
            .map(|g| &g.key)
    }
    /// The member's site with id `site`.
    pub fn site(&self, site: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == site)
    }
}

/// Governance quorum: how many endorsements each chamber must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// Government endorsements needed, as a fraction of government members (numerator).
    pub government_num: u32,
    /// Denominator of the government fraction.
    pub government_den: u32,
    /// Industry endorsements needed (count).
    pub industry_min: u32,
    /// Civil-society endorsements needed (count).
    pub civil_society_min: u32,
}

/// Default longest certificate validity: KP certificates are issued for one shipment and
/// commonly expire within months; a year is far beyond any real one.
pub const DEFAULT_CERTIFICATE_VALIDITY_DAYS: u32 = 365;

/// Network-wide rules set at genesis and changed only by governance. In a genesis file every
/// field is optional: a missing one takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub quorum: Quorum,
    /// Mass lost in one transform above this share (parts per million) is a finding.
    pub mass_loss_tolerance_ppm: u32,
    /// A dispatch not received within this many milliseconds is a finding (when it names no deadline).
    pub transit_deadline_ms: u64,
    /// A registration first witnessed this long after its claimed time is a finding.
    pub late_registration_ms: u64,
    /// A value per carat above this multiple (percent) of its inputs' is a finding.
    pub value_jump_pct: u32,
    /// Longest validity of a certificate, in days from its issue date.
    pub certificate_validity_days: u32,
    /// Members holding one of these roles have the witness duty: they cosign checkpoints.
    pub witness_roles: Vec<Role>,
    /// Cosignatures by witnesses a client requires of a checkpoint before it trusts it (the
    /// default of `custody audit parcel --witnesses`).
    pub witnesses_required: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            quorum: Quorum {
                government_num: 2,
                government_den: 3,
                industry_min: 1,
                civil_society_min: 1,
            },
            mass_loss_tolerance_ppm: 50_000,
            transit_deadline_ms: 30 * 86_400_000,
            late_registration_ms: 7 * 86_400_000,
            value_jump_pct: 300,
            certificate_validity_days: DEFAULT_CERTIFICATE_VALIDITY_DAYS,
            witness_roles: vec![Role::Monitor],
            witnesses_required: 1,
        }
    }
}

/// The first governance state: the founding members and the policy. Its encoding's hash is the network id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub name: String,
    pub created_ms: u64,
    pub members: Vec<Member>,
    pub policy: Policy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_text_and_days() {
        for text in ["1970-01-01", "2000-02-29", "2026-11-29", "9999-12-31"] {
            let d: Date = text.parse().expect("valid date");
            assert_eq!(d.to_string(), text);
            assert!(d.is_valid());
        }
        assert_eq!("1970-01-02".parse::<Date>().map(|d| d.0), Ok(1));
        assert_eq!("9999-12-31".parse::<Date>().map(|d| d.0), Ok(MAX_DATE_DAYS));
        for bad in [
            "2001-02-29",
            "2026-13-01",
            "26-11-29",
            "2026-11-29-1",
            "",
            "1969-12-31",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn slugs_and_countries_are_validated() {
        assert!(MemberId::new("zw-mmcz").is_ok());
        assert!(MemberId::new("-x").is_err());
        assert!(MemberId::new("Upper").is_err());
        assert!(MemberId::new("a".repeat(MAX_SLUG_LEN + 1)).is_err());
        assert!(Country::new("ZW").is_ok());
        assert!(Country::new("zw").is_err());
        assert!(Country::new("ZWE").is_err());
    }

    #[test]
    fn key_for_seq_picks_the_latest_grant_in_force() {
        let k = |b| PublicKeyBytes([b; 32]);
        let m = Member {
            id: MemberId::new("m").expect("slug"),
            name: "M".into(),
            chamber: Chamber::Industry,
            country: Country::new("ZW").expect("country"),
            roles: vec![Role::Mine],
            sites: vec![],
            keys: vec![
                KeyGrant {
                    key: k(1),
                    from_seq: 1,
                },
                KeyGrant {
                    key: k(2),
                    from_seq: 10,
                },
            ],
        };
        assert_eq!(m.key_for_seq(0), None);
        assert_eq!(m.key_for_seq(9), Some(&k(1)));
        assert_eq!(m.key_for_seq(10), Some(&k(2)));
    }
}
