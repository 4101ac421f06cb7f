//! The action commands (`register`, `dispatch`, ...): build the node API's action JSON, send it, and report the event and verdict.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::rules::{parcel_id, VoidReason};

use crate::client::{ClientError, Node};

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
        site: String,
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
        extracted_on: String,
    },
    /// Split, mix or sort parcels you hold into new ones.
    #[command(
        after_help = "Example (mix two parcels into one of 1,500 ct and keep 10 ct of rejects):\n  custody transform --input 3f2a... --input 9b1c... --output 150000 --output 1000"
    )]
    Transform {
        /// A parcel consumed (repeat).
        #[arg(long = "input", required = true)]
        inputs: Vec<String>,
        /// An output as CARATS[:STONES[:VALUE_CENTS]] (repeat).
        #[arg(long = "output", required = true)]
        outputs: Vec<String>,
    },
    /// Send a parcel you hold to another member (across borders, name the certificate).
    #[command(
        after_help = "Example:\n  custody dispatch --parcel 3f2a... --to importer-be --certificate 7d4e..."
    )]
    Dispatch {
        #[arg(long)]
        parcel: String,
        /// The recipient member id.
        #[arg(long)]
        to: String,
        /// Event id of the certify event covering this shipment.
        #[arg(long)]
        certificate: Option<String>,
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
        parcel: String,
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
        parcel: String,
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
        exporter: String,
        #[arg(long)]
        importer: String,
        /// Destination country (ISO 3166 alpha-2).
        #[arg(long)]
        destination: String,
        /// A parcel covered (repeat).
        #[arg(long = "parcel", required = true)]
        parcels: Vec<String>,
        #[arg(long)]
        total_carats: u64,
        #[arg(long)]
        value_cents: u64,
        /// A country of origin (repeat).
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
        #[arg(long)]
        issued_on: String,
        #[arg(long)]
        expires_on: String,
    },
    /// Confirm that a certified shipment arrived (the importing country's authority).
    #[command(
        name = "confirm-import",
        after_help = "Example:\n  custody confirm-import --certificate 7d4e..."
    )]
    ConfirmImport {
        #[arg(long)]
        certificate: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Take a parcel out of the trade (cut, lost or destroyed).
    #[command(after_help = "Example:\n  custody retire --parcel 3f2a... --cause cut")]
    Retire {
        #[arg(long)]
        parcel: String,
        /// cut, lost or destroyed.
        #[arg(long)]
        cause: String,
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
        #[arg(long)]
        code: String,
        #[arg(long, default_value = "")]
        text: String,
    },
}

/// What a flag points at (exactly one).
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct FlagTargetArgs {
    #[arg(long)]
    parcel: Option<String>,
    #[arg(long)]
    member: Option<String>,
    /// MEMBER/SITE.
    #[arg(long)]
    site: Option<String>,
    #[arg(long)]
    event: Option<String>,
}

fn output(spec: &str) -> anyhow::Result<Value> {
    let mut parts = spec.split(':');
    let num = |p: Option<&str>, what: &str| -> anyhow::Result<Option<u64>> {
        p.map(|s| {
            s.parse::<u64>()
                .map_err(|_| anyhow::anyhow!("--output {spec:?}: {what} must be a whole number"))
        })
        .transpose()
    };
    let carats = num(parts.next(), "carats")?
        .ok_or_else(|| anyhow::anyhow!("--output needs CARATS[:STONES[:VALUE_CENTS]]"))?;
    let stones = num(parts.next(), "stones")?.unwrap_or(0);
    let value = num(parts.next(), "value cents")?;
    if parts.next().is_some() {
        anyhow::bail!("--output {spec:?}: expected CARATS[:STONES[:VALUE_CENTS]]");
    }
    Ok(json!({"carats": carats, "stones": stones, "value_cents": value}))
}

impl ActCommand {
    /// The action as the node's API takes it.
    pub fn action(&self) -> anyhow::Result<Value> {
        Ok(match self {
            ActCommand::Register {
                site,
                carats,
                stones,
                value_cents,
                seal,
                extracted_on,
            } => json!({"kind": "register", "site": site, "carats": carats, "stones": stones,
                "value_cents": value_cents, "seal": seal, "extracted_on": extracted_on}),
            ActCommand::Transform { inputs, outputs } => json!({"kind": "transform",
                "inputs": inputs, "outputs": outputs.iter().map(|o| output(o)).collect::<anyhow::Result<Vec<_>>>()?}),
            ActCommand::Dispatch {
                parcel,
                to,
                certificate,
                seal,
                deadline_ms,
            } => json!({"kind": "dispatch", "parcel": parcel, "to": to, "certificate": certificate,
                "seal": seal, "deadline_ms": deadline_ms}),
            ActCommand::Receive {
                parcel,
                measured_carats,
                seal_broken,
                note,
            } => json!({"kind": "receive", "parcel": parcel, "measured_carats": measured_carats,
                "seal_intact": !seal_broken, "note": note}),
            ActCommand::Reject { parcel, reason } => {
                json!({"kind": "reject", "parcel": parcel, "reason": reason})
            }
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
            } => {
                json!({"kind": "certify", "number": number, "exporter": exporter, "importer": importer,
                "destination": destination, "parcels": parcels, "total_carats": total_carats,
                "value_cents": value_cents, "origins": origins, "issued_on": issued_on, "expires_on": expires_on})
            }
            ActCommand::ConfirmImport { certificate, note } => {
                json!({"kind": "confirm-import", "certificate": certificate, "note": note})
            }
            ActCommand::Retire {
                parcel,
                cause,
                note,
            } => json!({"kind": "retire", "parcel": parcel, "cause": cause, "note": note}),
            ActCommand::Flag { target, code, text } => {
                let target = match (&target.parcel, &target.member, &target.site, &target.event) {
                    (Some(p), _, _, _) => json!({"parcel": p}),
                    (_, Some(m), _, _) => json!({"member": m}),
                    (_, _, Some(s), _) => {
                        let (member, site) = s.split_once('/').ok_or_else(|| {
                            anyhow::anyhow!(
                                "--site {s:?}: expected MEMBER/SITE, e.g. mine-zw/marange"
                            )
                        })?;
                        json!({"site": {"member": member, "site": site}})
                    }
                    (_, _, _, Some(e)) => json!({"event": e}),
                    _ => anyhow::bail!("flag needs one of --parcel, --member, --site, --event"),
                };
                json!({"kind": "flag", "target": target, "code": code, "text": text})
            }
        })
    }
}

/// Why an action did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("refused: {0}")]
    Refused(String),
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
            message,
            ..
        }) => Err(ActError::Refused(in_words(&message))),
        Err(e) => Err(ActError::Client(e)),
    }
}

/// Runs an action command and prints the result.
pub fn run(node: &Node, cmd: &ActCommand, action: &Value, json_out: bool) -> anyhow::Result<()> {
    let mut answer = send(node, action)?;
    // New parcels' ids follow from the event id (DESIGN.md section 3).
    let created = match cmd {
        ActCommand::Register { .. } => 1,
        ActCommand::Transform { outputs, .. } => outputs.len(),
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
