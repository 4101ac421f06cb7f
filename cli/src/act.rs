//! The action commands (`register`, `dispatch`, ...): turn arguments into the node API's own `Action`, send it, and report the event and verdict.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use custody_node::actions::{Action, CertifyAction, Output};
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::event::{FlagCode, FlagTarget, RetireCause};
use ledger_core::rules::{parcel_id, VoidReason};
use ledger_core::types::{Country, Date, MemberId, SiteId};

use crate::client::{ClientError, Node};

/// Parses a kebab-case name the way the API's JSON spells it (`cut`, `human-rights`, ...).
pub(crate) fn kebab<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| format!("unknown value {s:?}"))
}

/// One transform output: `CARATS[:STONES[:VALUE_CENTS]]`.
fn output(spec: &str) -> Result<Output, String> {
    let mut parts = spec.split(':');
    let mut num = |what: &str| -> Result<Option<u64>, String> {
        parts
            .next()
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| format!("{what} must be a whole number in {spec:?}"))
            })
            .transpose()
    };
    let carats = num("carats")?.ok_or("expected CARATS[:STONES[:VALUE_CENTS]]")?;
    let stones = num("stones")?.unwrap_or(0);
    let value_cents = num("value cents")?;
    if num("nothing more")?.is_some() {
        return Err(format!(
            "expected CARATS[:STONES[:VALUE_CENTS]], got {spec:?}"
        ));
    }
    Ok(Output {
        carats,
        stones: u32::try_from(stones).map_err(|_| format!("too many stones in {spec:?}"))?,
        value_cents,
        seal: String::new(),
    })
}

/// `MEMBER/SITE`.
pub(crate) fn site_of(spec: &str) -> Result<(MemberId, SiteId), String> {
    let (member, site) = spec
        .split_once('/')
        .ok_or_else(|| format!("expected MEMBER/SITE, e.g. mine-zw/marange, got {spec:?}"))?;
    Ok((
        member.parse().map_err(|e| format!("{e}"))?,
        site.parse().map_err(|e| format!("{e}"))?,
    ))
}

/// One action a member asks its node to sign.
#[derive(Debug, Clone, Subcommand)]
pub enum ActCommand {
    /// Register a parcel mined at one of your sites.
    #[command(
        after_help = "Example:\n  custody register --site jwaneng --carats 125000 --stones 40 --extracted-on 2026-03-02"
    )]
    Register {
        /// Your mine site id.
        #[arg(long)]
        site: SiteId,
        /// Weight in hundredths of a carat (125000 = 1,250.00 ct).
        #[arg(long)]
        carats: u64,
        #[arg(long, default_value_t = 0)]
        stones: u32,
        /// Declared value in US cents.
        #[arg(long)]
        value_cents: Option<u64>,
        #[arg(long, default_value = "")]
        seal: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        extracted_on: Date,
    },
    /// Split, mix or sort parcels you hold into new ones.
    #[command(
        after_help = "Example (mix two parcels into one of 1,500 ct and keep 10 ct of rejects):\n  custody transform --input 3f2a... --input 9b1c... --output 150000 --output 1000"
    )]
    Transform {
        /// A parcel consumed (repeat).
        #[arg(long = "input", required = true)]
        inputs: Vec<ParcelId>,
        /// An output as CARATS[:STONES[:VALUE_CENTS]] (repeat).
        #[arg(long = "output", required = true, value_parser = output)]
        outputs: Vec<Output>,
    },
    /// Send a parcel you hold to another member (across borders, name the certificate).
    #[command(
        after_help = "Example:\n  custody dispatch --parcel 3f2a... --to importer-be --certificate 7d4e..."
    )]
    Dispatch {
        #[arg(long)]
        parcel: ParcelId,
        /// The recipient member id.
        #[arg(long)]
        to: MemberId,
        /// Event id of the certify event covering this shipment.
        #[arg(long)]
        certificate: Option<EventId>,
        #[arg(long, default_value = "")]
        seal: String,
        /// When the recipient must have received it (UNIX ms).
        #[arg(long)]
        deadline_ms: Option<u64>,
    },
    /// Take a parcel dispatched to you.
    #[command(
        after_help = "Example:\n  custody receive --parcel 3f2a... --measured-carats 124990"
    )]
    Receive {
        #[arg(long)]
        parcel: ParcelId,
        /// Weight on receipt, hundredths of a carat.
        #[arg(long)]
        measured_carats: u64,
        /// The seal was found broken.
        #[arg(long)]
        seal_broken: bool,
        #[arg(long, default_value = "")]
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
        reason: String,
    },
    /// Issue a Kimberley Process certificate (national authorities).
    #[command(
        after_help = "Example:\n  custody certify --number BW-2026-0042 --exporter exporter-bw --importer importer-be \\\n    --destination BE --parcel 3f2a... --total-carats 150000 --value-cents 90000000 \\\n    --origin BW --origin ZW --issued-on 2026-04-01 --expires-on 2026-06-30"
    )]
    Certify {
        #[arg(long)]
        number: String,
        #[arg(long)]
        exporter: MemberId,
        #[arg(long)]
        importer: MemberId,
        /// Destination country (ISO 3166 alpha-2).
        #[arg(long)]
        destination: Country,
        /// A parcel covered (repeat).
        #[arg(long = "parcel", required = true)]
        parcels: Vec<ParcelId>,
        #[arg(long)]
        total_carats: u64,
        #[arg(long)]
        value_cents: u64,
        /// A country of origin (repeat).
        #[arg(long = "origin", required = true)]
        origins: Vec<Country>,
        #[arg(long)]
        issued_on: Date,
        #[arg(long)]
        expires_on: Date,
    },
    /// Confirm that a certified shipment arrived (the importing country's authority).
    #[command(
        name = "confirm-import",
        after_help = "Example:\n  custody confirm-import --certificate 7d4e..."
    )]
    ConfirmImport {
        #[arg(long)]
        certificate: EventId,
        #[arg(long, default_value = "")]
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
        text: String,
    },
}

/// What a flag points at (exactly one).
#[derive(Debug, Clone, Args)]
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
    fn target(&self) -> Option<FlagTarget> {
        match self {
            FlagTargetArgs {
                parcel: Some(p), ..
            } => Some(FlagTarget::Parcel(*p)),
            FlagTargetArgs {
                member: Some(m), ..
            } => Some(FlagTarget::Member(m.clone())),
            FlagTargetArgs {
                site: Some((member, site)),
                ..
            } => Some(FlagTarget::Site {
                member: member.clone(),
                site: site.clone(),
            }),
            FlagTargetArgs { event: Some(e), .. } => Some(FlagTarget::Event(*e)),
            _ => None,
        }
    }
}

impl ActCommand {
    /// The action, as the node's API takes it (`custody_node::actions::Action`).
    pub fn action(&self) -> anyhow::Result<Action> {
        Ok(match self.clone() {
            ActCommand::Register {
                site,
                carats,
                stones,
                value_cents,
                seal,
                extracted_on,
            } => Action::Register {
                site,
                carats,
                stones,
                value_cents,
                seal,
                extracted_on,
            },
            ActCommand::Transform { inputs, outputs } => Action::Transform { inputs, outputs },
            ActCommand::Dispatch {
                parcel,
                to,
                certificate,
                seal,
                deadline_ms,
            } => Action::Dispatch {
                parcel,
                to,
                certificate,
                seal,
                deadline_ms,
            },
            ActCommand::Receive {
                parcel,
                measured_carats,
                seal_broken,
                note,
            } => Action::Receive {
                parcel,
                measured_carats,
                seal_intact: !seal_broken,
                note,
            },
            ActCommand::Reject { parcel, reason } => Action::Reject { parcel, reason },
            ActCommand::Certify {
                number,
                exporter,
                importer,
                destination,
                parcels,
                total_carats,
                value_cents,
                origins,
                issued_on,
                expires_on,
            } => Action::Certify(CertifyAction {
                number,
                exporter,
                importer,
                destination,
                parcels,
                total_carats,
                value_cents,
                origins,
                issued_on,
                expires_on,
            }),
            ActCommand::ConfirmImport { certificate, note } => {
                Action::ConfirmImport { certificate, note }
            }
            ActCommand::Retire {
                parcel,
                cause,
                note,
            } => Action::Retire {
                parcel,
                cause,
                note,
            },
            ActCommand::Flag { target, code, text } => Action::Flag {
                target: target.target().ok_or_else(|| {
                    anyhow::anyhow!("flag needs one of --parcel, --member, --site, --event")
                })?,
                code,
                text,
            },
        })
    }
}

/// Why an action did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("refused: {0}")]
    Refused(String),
    /// The node found a field the event cannot hold (422 `invalid-field`); its message names it.
    #[error("{0}")]
    InvalidField(String),
    #[error(transparent)]
    Client(ClientError),
}

/// Puts a void reason's name into words, when the message names one.
pub fn in_words(message: &str) -> String {
    let named = VoidReason::ALL
        .into_iter()
        .find(|r| message.contains(r.name()));
    match named {
        Some(r) => format!("{message}: {}", r.describe()),
        None => message.to_owned(),
    }
}

/// Sends an action; returns the node's answer `{event, verdict, reason}` for an applied event.
pub fn send(node: &Node, action: &Value) -> Result<Value, ActError> {
    match node.post_json("/v1/actions", action) {
        Ok(v) if v["verdict"] == "applied" => Ok(v),
        Ok(v) => {
            let reason = v["reason"].as_str().unwrap_or("void");
            Err(ActError::Refused(in_words(reason)))
        }
        Err(ClientError::Refused {
            status: 422,
            code,
            message,
        }) if code == "invalid-field" => Err(ActError::InvalidField(message)),
        Err(ClientError::Refused {
            status: 422,
            message,
            ..
        }) => Err(ActError::Refused(in_words(&message))),
        Err(e) => Err(ActError::Client(e)),
    }
}

/// Runs an action command and prints the result.
pub fn run(node: &Node, action: &Action, json_out: bool) -> anyhow::Result<()> {
    let mut answer = send(node, &serde_json::to_value(action)?)?;
    // New parcels' ids follow from the event id (DESIGN.md section 3).
    let created = match action {
        Action::Register { .. } => 1,
        Action::Transform { outputs, .. } => outputs.len(),
        _ => 0,
    };
    let event: Option<EventId> = answer["event"].as_str().and_then(|e| e.parse().ok());
    if let (Some(event), true) = (event, created > 0) {
        let parcels: Vec<ParcelId> = (0..created as u32).map(|i| parcel_id(&event, i)).collect();
        answer["parcels"] = json!(parcels);
    }
    if json_out {
        println!("{answer}");
    } else {
        println!(
            "event   {}  {}",
            answer["event"].as_str().unwrap_or("?"),
            answer["verdict"].as_str().unwrap_or("?")
        );
        for p in answer["parcels"].as_array().into_iter().flatten() {
            println!("parcel  {}", p.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}
