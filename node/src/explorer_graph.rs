//! The explorer's provenance graph: one node per parcel per custodian (a parcel held by a mine,
//! then by a sorter, ...), edges for handovers and transforms, laid out in columns from the mines
//! on the left to the current holder on the right, drawn as inline SVG.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ledger_core::audit::Audit;
use ledger_core::bytes::ParcelId;
use ledger_core::ledger::Ledger;
use ledger_core::rules::ParcelState;
use ledger_core::types::{MemberId, Role};

use crate::explorer_html::{carats, esc};

/// Most graph nodes drawn; a larger ancestry is cut (the page says so).
pub const MAX_GRAPH_NODES: usize = 400;

/// One drawn node: a parcel while one custodian held it (or while in transit to one).
#[derive(Debug, Clone)]
pub struct GraphNode {
    pub parcel: ParcelId,
    pub custodian: MemberId,
    pub carats: u64,
    /// The node's column, 0 for a registration.
    pub column: usize,
    pub flagged: bool,
}

/// A graph of an audit: nodes, edges (from, to, kind), and whether it was cut.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<(usize, usize, &'static str)>,
    pub truncated: bool,
}

/// The custodians a parcel had, in order, each with the weight it had then.
fn segments(ledger: &Ledger, parcel: &ParcelId) -> Vec<(MemberId, u64)> {
    let Some(p) = ledger.parcel(parcel) else {
        return Vec::new();
    };
    let mut out: Vec<(MemberId, u64)> = Vec::new();
    for t in p.transitions() {
        let mass = p.mass_at(&t.event).unwrap_or(p.carats);
        if let ParcelState::Held { by } = t.state() {
            if out.last().map(|(m, _)| m) != Some(&by) {
                out.push((by, mass));
            } else if let Some(last) = out.last_mut() {
                last.1 = mass;
            }
        }
    }
    out
}

/// Builds the graph of `audit`, marking nodes whose parcel is in `flagged_parcels` or whose
/// custodian is in `flagged_members`.
pub fn graph(
    ledger: &Ledger,
    audit: &Audit,
    flagged_parcels: &BTreeSet<ParcelId>,
    flagged_members: &BTreeSet<MemberId>,
) -> Graph {
    let mut g = Graph::default();
    // First and last node of each parcel, to join transforms.
    let mut ends: HashMap<ParcelId, (usize, usize)> = HashMap::new();
    // Oldest ancestors first, so a parent's column is known before its children's.
    for a in audit.ancestry.iter().rev() {
        let segs = segments(ledger, &a.parcel);
        if segs.is_empty() {
            continue;
        }
        if g.nodes.len() + segs.len() > MAX_GRAPH_NODES {
            g.truncated = true;
            break;
        }
        let start = a
            .parents
            .iter()
            .filter_map(|p| ends.get(p).map(|(_, last)| g.nodes[*last].column + 1))
            .max()
            .unwrap_or(0);
        let first = g.nodes.len();
        for (i, (custodian, mass)) in segs.into_iter().enumerate() {
            let flagged =
                flagged_parcels.contains(&a.parcel) || flagged_members.contains(&custodian);
            g.nodes.push(GraphNode {
                parcel: a.parcel,
                custodian,
                carats: mass,
                column: start + i,
                flagged,
            });
            if i > 0 {
                g.edges
                    .push((g.nodes.len() - 2, g.nodes.len() - 1, "handover"));
            }
        }
        for p in &a.parents {
            if let Some((_, last)) = ends.get(p) {
                g.edges.push((*last, first, "transform"));
            }
        }
        ends.insert(a.parcel, (first, g.nodes.len() - 1));
    }
    g
}

/// The colour of a custodian's role.
fn colour(roles: &[Role]) -> &'static str {
    match roles.first() {
        Some(Role::Mine) => "#8d6e63",
        Some(Role::Sorter) => "#5c6bc0",
        Some(Role::Exporter) => "#26a69a",
        Some(Role::Importer) => "#ef6c00",
        Some(Role::Authority) => "#546e7a",
        _ => "#78909c",
    }
}

const W: usize = 170;
const H: usize = 46;
const GAP_X: usize = 50;
const GAP_Y: usize = 18;

/// The graph as inline SVG; `roles` gives each custodian's roles (for colours).
pub fn svg(g: &Graph, roles: &HashMap<MemberId, Vec<Role>>, audited: &ParcelId) -> String {
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: Vec<(usize, usize)> = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let row = rows.entry(n.column).or_default();
        at.push((n.column * (W + GAP_X) + 10, *row * (H + GAP_Y) + 10));
        *row += 1;
    }
    let width = rows.keys().next_back().map_or(0, |c| c + 1) * (W + GAP_X) + 20;
    let height = rows.values().max().copied().unwrap_or(1) * (H + GAP_Y) + 20;
    let mut out = format!(
        r##"<svg class="graph" role="img" aria-label="provenance graph, mines on the left" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">"##
    );
    out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##);
    for (from, to, kind) in &g.edges {
        let (x1, y1) = (at[*from].0 + W, at[*from].1 + H / 2);
        let (x2, y2) = (at[*to].0, at[*to].1 + H / 2);
        let dash = if *kind == "handover" {
            r##" stroke-dasharray="5,3""##
        } else {
            ""
        };
        out.push_str(&format!(
            r##"<line class="edge" data-kind="{kind}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555"{dash} marker-end="url(#arrow)"/>"##
        ));
    }
    for (n, (x, y)) in g.nodes.iter().zip(&at) {
        node_svg(&mut out, n, (*x, *y), roles, audited);
    }
    out.push_str("</svg>");
    out
}

fn node_svg(
    out: &mut String,
    n: &GraphNode,
    (x, y): (usize, usize),
    roles: &HashMap<MemberId, Vec<Role>>,
    audited: &ParcelId,
) {
    let fill = colour(roles.get(&n.custodian).map_or(&[][..], Vec::as_slice));
    let stroke = if n.flagged {
        r##"stroke="#d50000" stroke-width="4""##
    } else if &n.parcel == audited {
        r##"stroke="#000" stroke-width="3""##
    } else {
        r##"stroke="#333" stroke-width="1""##
    };
    let flagged = if n.flagged { " flagged" } else { "" };
    out.push_str(&format!(
        r##"<a href="/parcel/{p}"><g class="node{flagged}" data-parcel="{p}"><title>parcel {p}, {c} ct, held by {who}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="6" fill="{fill}" {stroke}/><text x="{tx}" y="{ty1}" fill="#fff" font-size="13">{c} ct</text><text x="{tx}" y="{ty2}" fill="#fff" font-size="12">{who} · {sp}</text></g></a>"##,
        p = n.parcel,
        c = carats(n.carats),
        who = esc(n.custodian.as_str()),
        tx = x + 8,
        ty1 = y + 19,
        ty2 = y + 37,
        sp = n.parcel.to_string().get(..8).unwrap_or(""),
    ));
}
