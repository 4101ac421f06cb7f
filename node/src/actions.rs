//! The one typed custody action: the HTTP API takes it as JSON, the CLI parses it from arguments
//! (the same type derives both), and `action_body` turns it into an event body.

use clap::{ArgAction, Args, Subcommand};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use ledger_core::amount::Carats;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{DeclareScope, FlagCode, FlagTarget, HsCode, RetireCause};
use ledger_core::types::{Country, Date, MemberId, SiteId};

pub use crate::action_body::{BodyError, Context, InvalidField, ParcelAt, UnknownParcel};

/// An action a member asks its node to sign (or signs offline with `custody sign`). Parcels are
/// named by id: the body cites each one's current head. Weights are decimal carats on the
/// command line (`1000.00`) and hundredths of a carat in JSON (`100000`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Subcommand)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Register a parcel mined at one of your sites.
    #[command(
        after_help = "Example:\n  custody register --site jwaneng --carats 1250.00 --stones 40 --extracted-on 2026-03-02"
    )]
    Register {
        /// Your mine site id (lower case, e.g. jwaneng).
        #[arg(long)]
        site: SiteId,
        /// Weight in carats, e.g. 1250.00 (two decimals at most).
        #[arg(long)]
        carats: Carats,
        #[arg(long, default_value_t = 0)]
        #[serde(default)]
        stones: u32,
        /// Declared value in US cents.
        #[arg(long)]
        #[serde(default)]
        value_cents: Option<u64>,
        #[arg(long, default_value = "")]
        #[serde(default)]
        seal: String,
        /// The day the stones were extracted, YYYY-MM-DD.
        #[arg(long)]
        extracted_on: Date,
    },
    /// Split, mix or sort parcels you hold into new ones.
    #[command(
        after_help = "Example (mix two parcels into one of 1,500 ct and keep 10 ct of rejects):\n  custody transform --input 3f2a... --input 9b1c... --output 1500 --output 10"
    )]
    Transform {
        /// A parcel consumed (repeat).
        #[arg(long = "input", required = true)]
        inputs: Vec<ParcelId>,
        /// An output as CARATS[:STONES[:VALUE_CENTS]], carats decimal (repeat).
        #[arg(long = "output", required = true, value_parser = output)]
        outputs: Vec<Output>,
    },
    /// Send a parcel you hold to another member (across borders, name the certificate).
    #[command(
        after_help = "Example:\n  custody dispatch --parcel 3f2a... --to importer-be --certificate BW-2026-0042"
    )]
    Dispatch {
        #[arg(long)]
        parcel: ParcelId,
        /// The recipient member id.
        #[arg(long)]
        to: MemberId,
        /// The KP certificate covering this shipment: its number (BW-2026-0042) or event id.
        #[arg(long)]
        #[serde(default)]
        certificate: Option<CertRef>,
        #[arg(long, default_value = "")]
        #[serde(default)]
        seal: String,
        /// When the recipient must have received it (UNIX ms).
        #[arg(long)]
        #[serde(default)]
        deadline_ms: Option<u64>,
    },
    /// Take a parcel dispatched to you, at the weight you measured.
    #[command(
        after_help = "Example:\n  custody receive --parcel 3f2a... --measured-carats 1249.90"
    )]
    Receive {
        #[arg(long)]
        parcel: ParcelId,
        /// Weight on receipt in carats: from now on the parcel weighs this.
        #[arg(long)]
        measured_carats: Carats,
        /// Give this flag when the seal was found broken.
        #[arg(long = "seal-broken", action = ArgAction::SetFalse)]
        #[serde(default = "yes")]
        seal_intact: bool,
        #[arg(long, default_value = "")]
        #[serde(default)]
        note: String,
    },
    /// Refuse a parcel dispatched to you; it returns to the sender.
    #[command(
        after_help = "Example:\n  custody reject --parcel 3f2a... --reason \"seal number does not match the papers\""
    )]
    Reject {
        #[arg(long)]
        parcel: ParcelId,
        #[arg(long, default_value = "")]
        #[serde(default)]
        reason: String,
    },
    /// Issue a Kimberley Process certificate (national authorities). The carats, origin
    /// countries and value default to what the parcels weigh, come from and are worth.
    #[command(
        after_help = "Example:\n  custody certify --number BW-2026-0042 --exporter exporter-bw --importer importer-be \\\n    --destination BE --parcel 3f2a... --hs-code 7102.31 --issued-on 2026-04-01 --expires-on 2026-06-30"
    )]
    Certify(CertifyAction),
    /// Confirm that a certified shipment arrived (the importing country's authority).
    #[command(
        name = "confirm-import",
        after_help = "Example:\n  custody confirm-import --certificate BW-2026-0042"
    )]
    ConfirmImport {
        /// The certificate: its number or event id.
        #[arg(long)]
        certificate: CertRef,
        #[arg(long, default_value = "")]
        #[serde(default)]
        note: String,
    },
    /// Take a parcel out of the trade (cut, lost or destroyed).
    #[command(after_help = "Example:\n  custody retire --parcel 3f2a... --cause cut")]
    Retire {
        #[arg(long)]
        parcel: ParcelId,
        /// cut, lost or destroyed.
        #[arg(long, value_parser = kebab::<RetireCause>)]
        cause: RetireCause,
        #[arg(long, default_value = "")]
        #[serde(default)]
        note: String,
    },
    /// Flag a parcel, member, site or event for others to see (monitors and authorities).
    #[command(
        after_help = "Example:\n  custody flag --site mine-zw/marange --code human-rights --text \"reports of forced labour\""
    )]
    Flag {
        #[command(flatten)]
        target: FlagTargetArgs,
        /// smuggling, laundering, forged-certificate, human-rights, embargo, mass-discrepancy or other.
        #[arg(long, value_parser = kebab::<FlagCode>)]
        code: FlagCode,
        #[arg(long, default_value = "")]
        #[serde(default)]
        text: String,
    },
    /// Declare a country's or a site's production for a period (national authorities).
    #[command(
        after_help = "Example:\n  custody declare --country ZW --from 2026-01-01 --to 2026-12-31 --carats 250000.00 --stock-carats 1200.00"
    )]
    Declare(DeclareAction),
}

fn yes() -> bool {
    true
}

/// A certificate as the API takes it: parcels by id; carats, value and origins filled from the
/// parcels when left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct CertifyAction {
    /// The certificate number, unique for your country (e.g. BW-2026-0042).
    #[arg(long)]
    pub number: String,
    #[arg(long)]
    pub exporter: MemberId,
    #[arg(long)]
    pub importer: MemberId,
    /// Destination country (ISO 3166 alpha-2).
    #[arg(long)]
    pub destination: Country,
    /// A parcel covered (repeat).
    #[arg(long = "parcel", required = true)]
    pub parcels: Vec<ParcelId>,
    /// The goods: 7102.10 (unsorted), 7102.21 (industrial) or 7102.31 (non-industrial).
    #[arg(long)]
    pub hs_code: HsCode,
    /// Declared carats; by default what the parcels weigh.
    #[arg(long)]
    #[serde(default)]
    pub total_carats: Option<Carats>,
    /// Declared value in US cents; by default the parcels' declared values.
    #[arg(long)]
    #[serde(default)]
    pub value_cents: Option<u64>,
    /// A country of origin (repeat); by default every country the parcels come from.
    #[arg(long = "origin")]
    #[serde(default)]
    pub origins: Vec<Country>,
    #[arg(long)]
    pub issued_on: Date,
    #[arg(long)]
    pub expires_on: Date,
}

/// A production declaration as the API takes it: a country or one site, and a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct DeclareAction {
    /// A whole country (ISO 3166 alpha-2) ...
    #[arg(long, conflicts_with = "site", required_unless_present = "site")]
    #[serde(default)]
    pub country: Option<Country>,
    /// ... or one site, as MEMBER/SITE.
    #[arg(long, value_parser = site_of)]
    #[serde(default)]
    pub site: Option<(MemberId, SiteId)>,
    /// First day of the period.
    #[arg(long)]
    pub from: Date,
    /// Last day of the period.
    #[arg(long)]
    pub to: Date,
    /// Carats produced in the period.
    #[arg(long)]
    pub carats: Carats,
    /// Carats in stock at the period's start.
    #[arg(long, default_value = "0")]
    #[serde(default)]
    pub stock_carats: Carats,
    /// Value of the production in US cents.
    #[arg(long)]
    #[serde(default)]
    pub value_cents: Option<u64>,
}

impl DeclareAction {
    /// What the declaration covers, if exactly one of country and site is given.
    pub fn scope(&self) -> Option<DeclareScope> {
        match (&self.country, &self.site) {
            (Some(c), None) => Some(DeclareScope::Country(*c)),
            (None, Some((member, site))) => Some(DeclareScope::Site {
                member: member.clone(),
                site: site.clone(),
            }),
            _ => None,
        }
    }
}

/// A certificate as people cite it: by KP number, or by the id of its event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertRef {
    Id(EventId),
    Number(String),
}

impl std::str::FromStr for CertRef {
    type Err = String;
    fn from_str(s: &str) -> Result<CertRef, String> {
        if s.is_empty() {
            return Err("a certificate number (e.g. BW-2026-0042) or event id".into());
        }
        let hex = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        Ok(match s.parse::<EventId>() {
            Ok(id) if hex => CertRef::Id(id),
            _ => CertRef::Number(s.to_owned()),
        })
    }
}

impl std::fmt::Display for CertRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertRef::Id(id) => write!(f, "{id}"),
            CertRef::Number(n) => f.write_str(n),
        }
    }
}

impl Serialize for CertRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CertRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CertRef, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One output of a transform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub carats: Carats,
    #[serde(default)]
    pub stones: u32,
    #[serde(default)]
    pub value_cents: Option<u64>,
    #[serde(default)]
    pub seal: String,
}

/// What a flag points at: exactly one of parcel, member, site and event on the command line;
/// the `target` object of the JSON API.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[group(required = true, multiple = false)]
pub struct FlagTargetArgs {
    #[arg(long)]
    parcel: Option<ParcelId>,
    #[arg(long)]
    member: Option<MemberId>,
    /// MEMBER/SITE.
    #[arg(long, value_parser = site_of)]
    site: Option<(MemberId, SiteId)>,
    #[arg(long)]
    event: Option<EventId>,
}

impl FlagTargetArgs {
    /// The target, if exactly one is given.
    pub fn target(&self) -> Option<FlagTarget> {
        match (&self.parcel, &self.member, &self.site, &self.event) {
            (Some(p), None, None, None) => Some(FlagTarget::Parcel(*p)),
            (None, Some(m), None, None) => Some(FlagTarget::Member(m.clone())),
            (None, None, Some((member, site)), None) => Some(FlagTarget::Site {
                member: member.clone(),
                site: site.clone(),
            }),
            (None, None, None, Some(e)) => Some(FlagTarget::Event(*e)),
            _ => None,
        }
    }
}

impl From<FlagTarget> for FlagTargetArgs {
    fn from(t: FlagTarget) -> FlagTargetArgs {
        let mut a = FlagTargetArgs {
            parcel: None,
            member: None,
            site: None,
            event: None,
        };
        match t {
            FlagTarget::Parcel(p) => a.parcel = Some(p),
            FlagTarget::Member(m) => a.member = Some(m),
            FlagTarget::Site { member, site } => a.site = Some((member, site)),
            FlagTarget::Event(e) => a.event = Some(e),
        }
        a
    }
}

impl Serialize for FlagTargetArgs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.target() {
            Some(t) => t.serialize(s),
            None => Err(serde::ser::Error::custom("a flag needs exactly one target")),
        }
    }
}

impl<'de> Deserialize<'de> for FlagTargetArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FlagTargetArgs, D::Error> {
        FlagTarget::deserialize(d).map(FlagTargetArgs::from)
    }
}

/// Parses a kebab-case name the way the API's JSON spells it (`cut`, `human-rights`, ...).
pub fn kebab<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("unknown value {s:?}"))
}

/// `MEMBER/SITE`.
pub fn site_of(spec: &str) -> Result<(MemberId, SiteId), String> {
    let (member, site) = spec
        .split_once('/')
        .ok_or_else(|| format!("expected MEMBER/SITE, e.g. mine-zw/marange, got {spec:?}"))?;
    Ok((
        member.parse().map_err(|e| format!("{e}"))?,
        site.parse().map_err(|e| format!("{e}"))?,
    ))
}

/// One transform output: `CARATS[:STONES[:VALUE_CENTS]]`, carats decimal.
pub fn output(spec: &str) -> Result<Output, String> {
    let usage =
        || format!("expected CARATS[:STONES[:VALUE_CENTS]] (e.g. 1500.00:40), got {spec:?}");
    let mut parts = spec.split(':');
    let carats: Carats = parts
        .next()
        .ok_or_else(usage)?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let whole = |what: &str, s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{what} must be a whole number in {spec:?}"))
    };
    let stones = parts.next().map(|s| whole("stones", s)).transpose()?;
    let value_cents = parts.next().map(|s| whole("value cents", s)).transpose()?;
    if parts.next().is_some() {
        return Err(usage());
    }
    Ok(Output {
        carats,
        stones: u32::try_from(stones.unwrap_or(0))
            .map_err(|_| format!("too many stones in {spec:?}"))?,
        value_cents,
        seal: String::new(),
    })
}
