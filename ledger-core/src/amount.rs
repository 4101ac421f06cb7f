//! Carats as people type and read them (`1000.00`, `1000`, `0.5`), kept as whole hundredths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::MAX_CARATS;

/// A weight in hundredths of a carat. Text is decimal carats with at most two decimals
/// (`1000.00` and `1000` are both 100,000 hundredths); JSON and events carry the hundredths.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Carats(pub u64);

/// Text that is not a weight in carats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a weight in carats: write decimal carats with at most two decimals, e.g. 1000.00 or 1000 (one thousand carats) or 0.25")]
pub struct CaratsError(pub String);

impl FromStr for Carats {
    type Err = CaratsError;
    fn from_str(s: &str) -> Result<Carats, CaratsError> {
        let bad = || CaratsError(s.to_owned());
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 2 {
            return Err(bad());
        }
        if s.ends_with('.') {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let cents: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
        let total = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .filter(|t| *t <= MAX_CARATS)
            .ok_or_else(bad)?;
        Ok(Carats(total))
    }
}

impl fmt::Display for Carats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_carats_parse_to_hundredths_and_print_back() {
        for (text, hundredths, shown) in [
            ("1000.00", 100_000, "1000.00"),
            ("1000", 100_000, "1000.00"),
            ("1000.5", 100_050, "1000.50"),
            ("0.25", 25, "0.25"),
            ("0", 0, "0.00"),
        ] {
            let c: Carats = text.parse().expect(text);
            assert_eq!(c, Carats(hundredths), "{text}");
            assert_eq!(c.to_string(), shown);
        }
        for bad in [
            "",
            "1,000",
            "-1",
            "1.234",
            "1.",
            ".5",
            "1e3",
            "ten",
            "99999999999999999999",
        ] {
            let e = bad.parse::<Carats>().expect_err(bad);
            assert!(e.to_string().contains("1000.00"), "{e}");
        }
    }
}
