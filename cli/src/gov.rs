//! `custody gov`: propose, endorse, object to and submit governance records through your node, and show the chain, the state in force, open proposals and governance forks.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};

use ledger_core::bytes::{Digest, PublicKeyBytes};
use ledger_core::event::{EmbargoTarget, GovAction};
use ledger_core::types::{Country, Date, Member, MemberId, Policy, Quorum, Role, Site, SiteId};

use crate::act::ActError;
use crate::client::{ClientError, Node};
use custody_node::actions::{kebab, site_of};

/// Largest member file read (a member with the most sites and keys fits well within it).
pub const MAX_MEMBER_FILE: u64 = 1024 * 1024;
/// Most pages of versions `gov show` reads (each `MAX_GOV_PAGE` versions).
pub const MAX_SHOW_PAGES: u64 = 10_000;

/// A command-line argument or input file that is wrong (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArgs(pub String);

/// A governance command.
#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Propose an action as the next governance version; your node signs and endorses it.
    #[command(
        subcommand,
        after_help = "Examples:\n  custody gov propose admit --member-file mine-na.json\n  custody gov propose suspend --member mine-zw --last-valid-seq 12 --reason \"licence withdrawn\"\n  custody gov propose set-embargo --country ZW --from 2026-05-01 --reason \"Marange\""
    )]
    Propose(ProposeCommand),
    /// Endorse a proposal (by its record id).
    #[command(after_help = "Example:\n  custody gov endorse 3f2a...")]
    Endorse { record: Digest },
    /// Object to a proposal; the objection is shown beside it wherever it is shown.
    #[command(
        after_help = "Example:\n  custody gov object 3f2a... --reason \"the licence is not on file\""
    )]
    Object {
        record: Digest,
        #[arg(long)]
        reason: String,
    },
    /// Submit a proposal with every endorsement gathered (refused unless they meet the quorum).
    #[command(
        after_help = "Examples:\n  custody gov submit 3f2a...\n  custody gov submit 3f2a... --force   # record it even without a quorum: it is void no-quorum"
    )]
    Submit {
        record: Digest,
        /// Sign it even when the endorsements do not meet the quorum (it is stored void).
        #[arg(long)]
        force: bool,
    },
    /// Show every version with its action, endorsers and objections, the state in force, open
    /// proposals with their tally, and governance forks.
    #[command(after_help = "Examples:\n  custody gov show\n  custody gov show --json")]
    Show,
}

/// One governance action, with typed arguments.
#[derive(Debug, Clone, Subcommand)]
pub enum ProposeCommand {
    /// Admit a new member, described in a JSON file (see docs/cli.md).
    #[command(after_help = "Example:\n  custody gov propose admit --member-file mine-na.json")]
    Admit {
        #[arg(long)]
        member_file: PathBuf,
    },
    /// New name, roles or sites for a member (what is not given stays as it is in force).
    #[command(
        after_help = "Example:\n  custody gov propose update --member mine-bw --site letlhakane:Letlhakane:Central:BW --site jwaneng:Jwaneng:Southern:BW"
    )]
    Update {
        #[arg(long)]
        member: MemberId,
        #[arg(long)]
        name: Option<String>,
        /// A role (repeat): mine, sorter, exporter, importer, authority, monitor.
        #[arg(long = "role", value_parser = kebab::<Role>)]
        roles: Vec<Role>,
        /// A site as ID:NAME:REGION:COUNTRY (repeat; replaces every site).
        #[arg(long = "site", value_parser = site_spec)]
        sites: Vec<Site>,
        /// Remove every site.
        #[arg(long, conflicts_with = "sites")]
        no_sites: bool,
    },
    /// Suspend a member: its events after the seq are void until it is reinstated.
    #[command(
        after_help = "Example:\n  custody gov propose suspend --member mine-zw --last-valid-seq 12 --reason \"licence withdrawn\""
    )]
    Suspend {
        #[arg(long)]
        member: MemberId,
        #[arg(long)]
        last_valid_seq: u64,
        #[arg(long)]
        reason: String,
    },
    /// Reinstate a suspended member.
    #[command(
        after_help = "Example:\n  custody gov propose reinstate --member mine-zw --reason \"licence restored\""
    )]
    Reinstate {
        #[arg(long)]
        member: MemberId,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A key for a member that has none in force (after a revocation).
    #[command(
        name = "add-key",
        after_help = "Example:\n  custody gov propose add-key --member mine-zw --key 9b1c... --from-seq 13"
    )]
    AddKey {
        #[arg(long)]
        member: MemberId,
        /// The public key (64 hex characters, as `custody key show` prints it).
        #[arg(long)]
        key: PublicKeyBytes,
        #[arg(long)]
        from_seq: u64,
    },
    /// Replace a member's key: the old one signs up to the seq, the new one from the next.
    #[command(
        name = "rotate-key",
        after_help = "Example:\n  custody gov propose rotate-key --member mine-zw --key 9b1c... --last-valid-seq 12"
    )]
    RotateKey {
        #[arg(long)]
        member: MemberId,
        /// The new public key (64 hex characters).
        #[arg(long)]
        key: PublicKeyBytes,
        #[arg(long)]
        last_valid_seq: u64,
    },
    /// Revoke a member's key after the seq, with no key replacing it.
    #[command(
        name = "revoke-key",
        after_help = "Example:\n  custody gov propose revoke-key --member mine-zw --key 3f2a... --last-valid-seq 12"
    )]
    RevokeKey {
        #[arg(long)]
        member: MemberId,
        #[arg(long)]
        key: PublicKeyBytes,
        #[arg(long)]
        last_valid_seq: u64,
    },
    /// Embargo a country's, a member's or a site's parcels from a date.
    #[command(
        name = "set-embargo",
        after_help = "Example:\n  custody gov propose set-embargo --site mine-zw/marange --from 2026-05-01 --until 2026-11-01 --reason \"forced labour reported\""
    )]
    SetEmbargo {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        from: Date,
        /// The first day it no longer binds (open-ended when absent).
        #[arg(long)]
        until: Option<Date>,
        #[arg(long)]
        reason: String,
    },
    /// End the embargo in force on a target from a date.
    #[command(
        name = "lift-embargo",
        after_help = "Example:\n  custody gov propose lift-embargo --country ZW --on 2026-09-01 --reason \"audit cleared\""
    )]
    LiftEmbargo {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        on: Date,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A new policy: each field not given stays as in force.
    #[command(
        name = "set-policy",
        after_help = "Example:\n  custody gov propose set-policy --industry-min 2 --certificate-validity-days 180"
    )]
    SetPolicy(PolicyArgs),
}

/// What an embargo covers (exactly one).
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// A country (ISO 3166 alpha-2).
    #[arg(long)]
    country: Option<Country>,
    /// A member (every one of its sites).
    #[arg(long)]
    member: Option<MemberId>,
    /// One site, as MEMBER/SITE.
    #[arg(long, value_parser = site_of)]
    site: Option<(MemberId, SiteId)>,
}

impl TargetArgs {
    fn target(&self) -> Result<EmbargoTarget, BadArgs> {
        match self {
            TargetArgs {
                country: Some(c), ..
            } => Ok(EmbargoTarget::Country(*c)),
            TargetArgs {
                member: Some(m), ..
            } => Ok(EmbargoTarget::Member(m.clone())),
            TargetArgs {
                site: Some((member, site)),
                ..
            } => Ok(EmbargoTarget::Site {
                member: member.clone(),
                site: site.clone(),
            }),
            _ => Err(BadArgs(
                "an embargo needs one of --country, --member, --site".into(),
            )),
        }
    }
}

/// Policy fields; each not given stays as in force.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Government endorsements needed: this fraction of the government members (numerator).
    #[arg(long)]
    government_num: Option<u32>,
    #[arg(long)]
    government_den: Option<u32>,
    /// Industry endorsements needed.
    #[arg(long)]
    industry_min: Option<u32>,
    /// Civil-society endorsements needed.
    #[arg(long)]
    civil_society_min: Option<u32>,
    #[arg(long)]
    mass_loss_tolerance_ppm: Option<u32>,
    #[arg(long)]
    transit_deadline_ms: Option<u64>,
    #[arg(long)]
    late_registration_ms: Option<u64>,
    #[arg(long)]
    value_jump_pct: Option<u32>,
    #[arg(long)]
    certificate_validity_days: Option<u32>,
    /// A role whose members have the witness duty (repeat; replaces the roles in force).
    #[arg(long = "witness-role", value_parser = kebab::<Role>)]
    witness_roles: Vec<Role>,
    /// Witness cosignatures a client requires of a checkpoint.
    #[arg(long)]
    witnesses_required: Option<u32>,
}

impl PolicyArgs {
    /// The policy in force with the fields given replaced.
    fn over(&self, p: &Policy) -> Policy {
        Policy {
            quorum: Quorum {
                government_num: self.government_num.unwrap_or(p.quorum.government_num),
                government_den: self.government_den.unwrap_or(p.quorum.government_den),
                industry_min: self.industry_min.unwrap_or(p.quorum.industry_min),
                civil_society_min: self.civil_society_min.unwrap_or(p.quorum.civil_society_min),
            },
            mass_loss_tolerance_ppm: self
                .mass_loss_tolerance_ppm
                .unwrap_or(p.mass_loss_tolerance_ppm),
            transit_deadline_ms: self.transit_deadline_ms.unwrap_or(p.transit_deadline_ms),
            late_registration_ms: self.late_registration_ms.unwrap_or(p.late_registration_ms),
            value_jump_pct: self.value_jump_pct.unwrap_or(p.value_jump_pct),
            certificate_validity_days: self
                .certificate_validity_days
                .unwrap_or(p.certificate_validity_days),
            witness_roles: if self.witness_roles.is_empty() {
                p.witness_roles.clone()
            } else {
                self.witness_roles.clone()
            },
            witnesses_required: self.witnesses_required.unwrap_or(p.witnesses_required),
        }
    }
}

/// `ID:NAME:REGION:COUNTRY`.
fn site_spec(spec: &str) -> Result<Site, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [id, name, region, country] = parts.as_slice() else {
        return Err(format!(
            "expected ID:NAME:REGION:COUNTRY, e.g. jwaneng:Jwaneng:Southern:BW, got {spec:?}"
        ));
    };
    Ok(Site {
        id: id.parse().map_err(|e| format!("site id {id:?}: {e}"))?,
        name: (*name).to_owned(),
        region: (*region).to_owned(),
        country: country
            .parse()
            .map_err(|e| format!("country {country:?}: {e}"))?,
    })
}

/// Reads a member described in JSON (at most [`MAX_MEMBER_FILE`] bytes).
fn read_member(path: &Path) -> Result<Member, BadArgs> {
    let bad = |e: String| BadArgs(format!("--member-file {}: {e}", path.display()));
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MEMBER_FILE + 1).read_to_string(&mut text))
        .map_err(|e| bad(e.to_string()))?;
    if text.len() as u64 > MAX_MEMBER_FILE {
        return Err(bad(format!("larger than {MAX_MEMBER_FILE} bytes")));
    }
    serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "{e} (expected a member as JSON: id, name, chamber, country, roles, sites, keys; see docs/cli.md)"
        ))
    })
}

/// The governance state in force at the node (the `state` of `GET /v1/gov`).
fn state_in_force(node: &Node) -> Result<Value, ClientError> {
    Ok(node.get_json("/v1/gov?limit=1")?["state"].take())
}

/// Reads a field of the node's answer as `T`.
fn field<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(v.clone())
        .map_err(|e| anyhow::anyhow!("the node's answer has no valid {what}: {e}"))
}

/// An update of `member`: what is not given stays as in force at `node` (`sites: None` keeps
/// the sites).
fn update(
    node: &Node,
    member: MemberId,
    name: Option<String>,
    roles: Vec<Role>,
    sites: Option<Vec<Site>>,
) -> anyhow::Result<GovAction> {
    let state = state_in_force(node)?;
    let now = state["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["id"] == member.as_str()))
        .ok_or_else(|| BadArgs(format!("{member} is not a member in force")))?;
    Ok(GovAction::Update {
        name: name.map_or_else(|| field(&now["name"], "member name"), Ok)?,
        roles: if roles.is_empty() {
            field(&now["roles"], "member roles")?
        } else {
            roles
        },
        sites: sites.map_or_else(|| field(&now["sites"], "member sites"), Ok)?,
        member,
    })
}

impl ProposeCommand {
    /// The action, reading what it keeps from the state in force at `node`.
    pub fn action(&self, node: &Node) -> anyhow::Result<GovAction> {
        Ok(match self.clone() {
            ProposeCommand::Admit { member_file } => GovAction::Admit(read_member(&member_file)?),
            ProposeCommand::Update {
                member,
                name,
                roles,
                sites,
                no_sites,
            } => {
                let sites = (!sites.is_empty() || no_sites).then_some(sites);
                update(node, member, name, roles, sites)?
            }
            ProposeCommand::Suspend {
                member,
                last_valid_seq,
                reason,
            } => GovAction::Suspend {
                member,
                last_valid_seq,
                reason,
            },
            ProposeCommand::Reinstate { member, reason } => GovAction::Reinstate { member, reason },
            ProposeCommand::AddKey {
                member,
                key,
                from_seq,
            } => GovAction::AddKey {
                member,
                key,
                from_seq,
            },
            ProposeCommand::RotateKey {
                member,
                key,
                last_valid_seq,
            } => GovAction::RotateKey {
                member,
                key,
                last_valid_seq,
            },
            ProposeCommand::RevokeKey {
                member,
                key,
                last_valid_seq,
            } => GovAction::RevokeKey {
                member,
                key,
                last_valid_seq,
            },
            ProposeCommand::SetEmbargo {
                target,
                from,
                until,
                reason,
            } => GovAction::SetEmbargo {
                target: target.target()?,
                from,
                until,
                reason,
            },
            ProposeCommand::LiftEmbargo { target, on, reason } => GovAction::LiftEmbargo {
                target: target.target()?,
                on,
                reason,
            },
            ProposeCommand::SetPolicy(args) => {
                let policy: Policy = field(&state_in_force(node)?["policy"], "policy")?;
                GovAction::SetPolicy(args.over(&policy))
            }
        })
    }
}

/// Sends a governance request; a field the event cannot hold is a usage error (exit 2).
fn send(node: &Node, path: &str, body: &Value) -> anyhow::Result<Value> {
    match node.post_json(path, body) {
        Ok(v) => Ok(v),
        Err(ClientError::Refused {
            status: 422,
            code,
            message,
        }) if code == "invalid-field" => Err(ActError::InvalidField(message).into()),
        Err(e) => Err(e.into()),
    }
}

/// Runs a governance command against `node` and prints the result.
pub fn run(node: &Node, cmd: &GovCommand, json_out: bool) -> anyhow::Result<()> {
    let answer = match cmd {
        GovCommand::Propose(p) => {
            let action = p.action(node)?;
            send(node, "/v1/gov/proposals", &json!({ "action": action }))?
        }
        GovCommand::Endorse { record } => send(
            node,
            &format!("/v1/gov/proposals/{record}/endorse"),
            &json!({}),
        )?,
        GovCommand::Object { record, reason } => send(
            node,
            &format!("/v1/gov/proposals/{record}/object"),
            &json!({ "reason": reason }),
        )?,
        GovCommand::Submit { record, force } => send(
            node,
            &format!("/v1/gov/proposals/{record}/submit?force={force}"),
            &json!({}),
        )?,
        GovCommand::Show => return show(node, json_out),
    };
    if json_out {
        println!("{answer}");
    } else {
        println!(
            "record  {}  version {}",
            answer["record"].as_str().unwrap_or("?"),
            answer["version"]
        );
        println!(
            "event   {}  {}{}",
            answer["event"].as_str().unwrap_or("?"),
            answer["verdict"].as_str().unwrap_or("?"),
            answer["reason"]
                .as_str()
                .map(|r| format!(" ({})", crate::act::in_words(r)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The whole chain, paging through the versions.
fn chain(node: &Node) -> anyhow::Result<Value> {
    let mut all = node.get_json("/v1/gov")?;
    let latest = all["latest"].as_u64().unwrap_or(0);
    for _ in 0..MAX_SHOW_PAGES {
        let have = all["versions"].as_array().map_or(0, Vec::len) as u64;
        if have > latest {
            break;
        }
        let mut page = node.get_json(&format!("/v1/gov?from={have}"))?;
        let more = page["versions"].take();
        match (all["versions"].as_array_mut(), more) {
            (Some(list), Value::Array(more)) if !more.is_empty() => list.extend(more),
            _ => break,
        }
    }
    Ok(all)
}

fn show(node: &Node, json_out: bool) -> anyhow::Result<()> {
    let chain = chain(node)?;
    if json_out {
        println!("{chain}");
    } else {
        print!("{}", show_text(&chain));
    }
    Ok(())
}

/// A serde enum's name (`industry`, `civil-society`, ...).
fn name(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn short(v: &Value) -> String {
    v.as_str()
        .map_or("?".into(), |s| s.chars().take(8).collect())
}

fn target_words(t: &EmbargoTarget) -> String {
    match t {
        EmbargoTarget::Country(c) => format!("country {c}"),
        EmbargoTarget::Member(m) => format!("member {m}"),
        EmbargoTarget::Site { member, site } => format!("site {member}/{site}"),
    }
}

fn policy_words(p: &Policy) -> String {
    let q = &p.quorum;
    format!(
        "quorum government {}/{}, industry {}, civil society {}; mass loss tolerance {} ppm; transit deadline {} ms; late registration {} ms; value jump {}%; certificate validity {} days; witnesses {:?}, {} required",
        q.government_num, q.government_den, q.industry_min, q.civil_society_min,
        p.mass_loss_tolerance_ppm, p.transit_deadline_ms, p.late_registration_ms,
        p.value_jump_pct, p.certificate_validity_days, p.witness_roles, p.witnesses_required
    )
}

/// Items joined with commas, or `none`.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A governance action in words.
pub fn action_words(a: &GovAction) -> String {
    match a {
        GovAction::Admit(m) => format!(
            "admit {} ({}; {}, {}; roles {}; sites {}; keys {})",
            m.id,
            m.name,
            name(&m.chamber),
            m.country,
            m.roles.iter().map(name).collect::<Vec<_>>().join(", "),
            list(m.sites.iter().map(|s| s.id.to_string())),
            list(m.keys.iter().map(|k| k.key.short()))
        ),
        GovAction::Update {
            member,
            name: n,
            roles,
            sites,
        } => format!(
            "update {member}: name {n:?}, roles {}, sites {}",
            list(roles.iter().map(name)),
            list(sites.iter().map(|s| s.id.to_string()))
        ),
        GovAction::Suspend {
            member,
            last_valid_seq,
            reason,
        } => format!("suspend {member} after seq {last_valid_seq}: {reason}"),
        GovAction::Reinstate { member, reason } => format!("reinstate {member}: {reason}"),
        GovAction::AddKey {
            member,
            key,
            from_seq,
        } => format!("add key {} for {member} from seq {from_seq}", key.short()),
        GovAction::RotateKey {
            member,
            key,
            last_valid_seq,
        } => format!(
            "rotate {member}'s key to {} after seq {last_valid_seq}",
            key.short()
        ),
        GovAction::RevokeKey {
            member,
            key,
            last_valid_seq,
        } => format!(
            "revoke {member}'s key {} after seq {last_valid_seq}",
            key.short()
        ),
        GovAction::SetEmbargo {
            target,
            from,
            until,
            reason,
        } => format!(
            "embargo on {} from {from} until {}: {reason}",
            target_words(target),
            until.map_or("further notice".into(), |u| u.to_string())
        ),
        GovAction::LiftEmbargo { target, on, reason } => format!(
            "lift the embargo on {} on {on}: {reason}",
            target_words(target)
        ),
        GovAction::SetPolicy(p) => format!("set policy: {}", policy_words(p)),
    }
}

/// A record's action (as the node sent it) in words.
fn action_text(v: &Value) -> String {
    serde_json::from_value::<GovAction>(v.clone())
        .map_or_else(|_| format!("unreadable action {v}"), |a| action_words(&a))
}

fn tally_text(t: &Value) -> String {
    let mut text = format!(
        "government {} of {}, industry {} of {}, civil society {} of {}",
        t["government"],
        t["government_needed"],
        t["industry"],
        t["industry_needed"],
        t["civil_society"],
        t["civil_society_needed"]
    );
    match t["shortfall"].as_str() {
        Some(s) if !s.is_empty() => text.push_str(&format!(" (short of {s})")),
        _ => text.push_str(" (quorum met)"),
    }
    text
}

/// Endorsers, tally and objections of a record, indented under it.
fn record_lines(out: &mut String, v: &Value, endorsers: &str, indent: &str) {
    let names: Vec<&str> = v[endorsers]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["member"].as_str())
        .collect();
    let names = if names.is_empty() {
        "nobody".to_owned()
    } else {
        names.join(", ")
    };
    out.push_str(&format!("{indent}endorsed by  {names}\n"));
    if !v["tally"].is_null() {
        out.push_str(&format!(
            "{indent}tally        {}\n",
            tally_text(&v["tally"])
        ));
    }
    for o in v["objections"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{indent}objection    {}: {}\n",
            o["member"].as_str().unwrap_or("?"),
            o["reason"].as_str().unwrap_or("")
        ));
    }
}

fn member_line(m: &Value) -> String {
    let keys: Vec<String> = m["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            let revoked = &k["revoked"];
            if revoked.is_null() {
                format!("key {} from seq {}", short(&k["key"]), k["from_seq"])
            } else {
                format!(
                    "key {} from seq {} (revoked after seq {} by version {})",
                    short(&k["key"]),
                    k["from_seq"],
                    revoked["last_valid_seq"],
                    revoked["version"]
                )
            }
        })
        .collect();
    let roles: Vec<&str> = m["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "  member   {}  {}  {}  {}  {}{}\n",
        m["id"].as_str().unwrap_or("?"),
        m["chamber"].as_str().unwrap_or("?"),
        m["country"].as_str().unwrap_or("?"),
        roles.join(","),
        keys.join("; "),
        if m["suspended"] == true {
            "  SUSPENDED"
        } else {
            ""
        }
    )
}

/// The state in force: members and keys, suspensions, embargoes, policy.
fn state_lines(out: &mut String, state: &Value) {
    for m in state["members"].as_array().into_iter().flatten() {
        out.push_str(&member_line(m));
    }
    for (member, list) in state["suspensions"].as_object().into_iter().flatten() {
        for s in list.as_array().into_iter().flatten() {
            let ended = s["reinstated"].as_u64().map_or("in force".to_owned(), |v| {
                format!("reinstated by version {v}")
            });
            out.push_str(&format!(
                "  suspension  {member} after seq {} by version {} ({ended}): {}\n",
                s["last_valid_seq"],
                s["version"],
                s["reason"].as_str().unwrap_or("")
            ));
        }
    }
    for e in state["embargoes"].as_array().into_iter().flatten() {
        let target = serde_json::from_value::<EmbargoTarget>(e["target"].clone())
            .map_or("?".into(), |t| target_words(&t));
        let lifted = e["lifted"]["on"]
            .as_str()
            .map(|on| format!(", lifted on {on} by version {}", e["lifted"]["version"]))
            .unwrap_or_default();
        out.push_str(&format!(
            "  embargo  {target} from {} until {} by version {}{lifted}: {}\n",
            e["from"].as_str().unwrap_or("?"),
            e["until"].as_str().unwrap_or("further notice"),
            e["version"],
            e["reason"].as_str().unwrap_or("")
        ));
    }
    if let Ok(p) = serde_json::from_value::<Policy>(state["policy"].clone()) {
        out.push_str(&format!("  policy   {}\n", policy_words(&p)));
    }
}

/// `gov show` as text.
pub fn show_text(chain: &Value) -> String {
    let mut out = format!(
        "governance version {} in force (network {})\n\n",
        chain["latest"],
        chain["network"].as_str().unwrap_or("?")
    );
    for v in chain["versions"].as_array().into_iter().flatten() {
        if v["version"] == 0 {
            out.push_str("version 0  genesis\n");
            continue;
        }
        out.push_str(&format!(
            "version {}  record {}\n  action       {}\n",
            v["version"],
            v["id"].as_str().unwrap_or("?"),
            action_text(&v["action"])
        ));
        record_lines(&mut out, v, "endorsers", "  ");
    }
    out.push_str(&format!("\nin force at version {}:\n", chain["latest"]));
    state_lines(&mut out, &chain["state"]);
    let proposals = chain["proposals"].as_array().map_or(&[][..], Vec::as_slice);
    if proposals.is_empty() {
        out.push_str("\nno open proposals\n");
    } else {
        out.push_str("\nopen proposals:\n");
    }
    for p in proposals {
        out.push_str(&format!(
            "  record {}  for version {}\n    action       {}\n",
            p["record"].as_str().unwrap_or("?"),
            p["version"],
            action_text(&p["action"])
        ));
        record_lines(&mut out, p, "endorsements", "    ");
    }
    for f in chain["forks"].as_array().into_iter().flatten() {
        let names = |k: &str| -> String {
            f[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\ngovernance fork at version {}: records {}; none is in force; double endorsers {}\n",
            f["version"],
            names("records"),
            names("double_endorsers")
        ));
    }
    out
}
