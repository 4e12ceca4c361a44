//! `aiagents eval-incidents FILE`: replays a labelled stream of tickets
//! (several tenants at once, outages in many users' words among everyday
//! tickets) through the code the pipeline runs — the related-open-tickets
//! comparison of the context stage and the correlator's decisions — and
//! scores the incidents it makes against the labels.
//!
//! Entities are the addresses the tickets mention: a stream carries no
//! inventory, so host names (which the stage counts only when the
//! inventory knows them) do not count here. Tenants are replayed apart, as
//! the stage's lock and row-level security keep them; that no ticket is
//! grouped across tenants is tested on the stage itself
//! (`tests/tests/it/incidents.rs`), not here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use aia_embed::Embedder;
use aia_events::{IncidentStatus, IncidentTicket, TicketId};
use aia_store::IncidentSettings;
use aia_store::open_tickets::OpenTicket;
use anyhow::Context as _;
use chrono::{DateTime, Duration};
use context_gatherer::sources::related;
use incident_correlator::decide::{self, Closeness, Decision, Live, Rules};
use serde::Deserialize;
use uuid::Uuid;

/// A labelled stream.
#[derive(Debug, Deserialize)]
pub struct Stream {
    pub tickets: Vec<StreamTicket>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamTicket {
    pub tenant: String,
    pub ticket_id: String,
    /// Minutes since the stream began.
    pub minute: f64,
    pub subject: Option<String>,
    pub description: String,
    /// The outage it belongs to; `None` for an everyday ticket.
    pub incident: Option<String>,
}

impl StreamTicket {
    /// What the context stage embeds: subject and description.
    fn text(&self) -> String {
        aia_embed::query_text(self.subject.as_deref(), &self.description)
            .chars()
            .take(2000)
            .collect()
    }
}

pub fn load(path: &Path) -> anyhow::Result<Stream> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut stream: Stream = serde_json::from_str(&text).context("parsing the stream")?;
    stream.tickets.sort_by(|a, b| a.minute.total_cmp(&b.minute));
    Ok(stream)
}

/// The stream as if its tenants were `n` times as busy: every `n` tenants
/// (in name order) become one, their outages and everyday tickets
/// together, each ticket's id prefixed with its tenant so none collide; a
/// last group of fewer than `n` (five tenants by twos) stays as it is. The
/// labelled streams spread a tenant's everyday tickets over hours; this is
/// how the detector fares at a customer with `n` times the users.
pub fn busier(mut tickets: Vec<StreamTicket>, n: usize) -> Vec<StreamTicket> {
    if n <= 1 {
        return tickets;
    }
    let tenants: Vec<String> = tickets
        .iter()
        .map(|t| t.tenant.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let merged: HashMap<&str, String> = tenants
        .chunks(n)
        .flat_map(|group| {
            let name = group.join("+");
            group
                .iter()
                .map(move |tenant| (tenant.as_str(), name.clone()))
        })
        .collect();
    for ticket in &mut tickets {
        let tenant = merged
            .get(ticket.tenant.as_str())
            .cloned()
            .unwrap_or_else(|| ticket.tenant.clone());
        ticket.ticket_id = format!("{}/{}", ticket.tenant, ticket.ticket_id);
        ticket.tenant = tenant;
    }
    tickets
}

/// A stream's tickets with their vectors, embedded once for every setting.
pub struct Embedded {
    pub tickets: Vec<StreamTicket>,
    pub vectors: Vec<Vec<f32>>,
}

pub async fn embed(stream: Stream, embedder: &Embedder) -> anyhow::Result<Embedded> {
    let texts: Vec<String> = stream.tickets.iter().map(StreamTicket::text).collect();
    // Vectors of the same texts by the same model are kept between runs
    // of a sweep when `AI_AGENTS_EVAL_CACHE` names a directory.
    let cache = aia_config::optional("EVAL_CACHE").map(|dir| {
        let digest =
            aia_embed::content_digest(&format!("{}\n{}", embedder.model(), texts.join("\n\u{1e}")));
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        std::path::PathBuf::from(dir).join(format!("{hex}.json"))
    });
    if let Some(cached) = cache.as_ref().and_then(|path| std::fs::read(path).ok())
        && let Ok(vectors) = serde_json::from_slice::<Vec<Vec<f32>>>(&cached)
        && vectors.len() == texts.len()
    {
        return Ok(Embedded {
            tickets: stream.tickets,
            vectors,
        });
    }
    let mut vectors = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        vectors.extend(
            embedder
                .embed(chunk)
                .await?
                .into_iter()
                .map(|v| v.as_slice().to_vec()),
        );
    }
    if let Some(path) = &cache {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(path, serde_json::to_vec(&vectors)?);
    }
    Ok(Embedded {
        tickets: stream.tickets,
        vectors,
    })
}

/// Percentiles of the cosine of same-tenant ticket pairs received within
/// `minutes` of each other: both of one outage, against everyday pairs.
pub fn pair_report(stream: &Embedded, minutes: f64) -> String {
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for (i, a) in stream.tickets.iter().enumerate() {
        for (j, b) in stream.tickets.iter().enumerate().skip(i + 1) {
            if a.tenant != b.tenant || (b.minute - a.minute).abs() > minutes {
                continue;
            }
            let cosine: f32 = stream.vectors[i]
                .iter()
                .zip(&stream.vectors[j])
                .map(|(x, y)| x * y)
                .sum();
            match (&a.incident, &b.incident) {
                (Some(x), Some(y)) if x == y => same.push(cosine),
                _ => other.push(cosine),
            }
        }
    }
    let describe = |name: &str, values: &mut Vec<f32>| {
        values.sort_by(f32::total_cmp);
        let at = |q: f64| {
            values
                .get(((values.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f32::NAN)
        };
        format!(
            "{name}: {} pairs, cosine p10 {:.2} p25 {:.2} p50 {:.2} p75 {:.2} p90 {:.2} p99 {:.2}\n",
            values.len(),
            at(0.10),
            at(0.25),
            at(0.5),
            at(0.75),
            at(0.9),
            at(0.99)
        )
    };
    describe("one outage", &mut same) + &describe("any other", &mut other)
}

/// How the made incidents compare with the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub closeness: Closeness,
    /// Tickets put in an incident whose majority label is theirs, over all
    /// tickets put in an incident.
    pub precision: f64,
    /// Of the labelled outages' tickets, those in an incident of their label.
    pub recall: f64,
    pub labelled_incidents: usize,
    /// Labelled outages an incident was made for.
    pub detected: usize,
    /// For each detected outage, its ticket at whose arrival it was
    /// detected (1 = its first ticket).
    pub detected_at: Vec<usize>,
    /// Incidents made of everyday tickets (no labelled majority).
    pub false_incidents: usize,
    /// Labelled outages whose tickets ended up split over several
    /// incidents.
    pub split: usize,
    /// Per labelled outage: its tickets, those in an incident of its
    /// label, those in another incident, and the ticket it was detected at.
    pub outages: BTreeMap<String, (usize, usize, usize, Option<usize>)>,
}

/// Replays the stream with `closeness` and the tenant `settings`.
pub fn replay(stream: &Embedded, closeness: Closeness, settings: &IncidentSettings) -> Score {
    let rules = Rules::from(settings);
    let start = DateTime::from_timestamp(1_780_000_000, 0).expect("a valid instant");
    let at = |minute: f64| start + Duration::milliseconds((minute * 60_000.0) as i64);

    #[derive(Default)]
    struct Tenant {
        open: Vec<Arc<OpenTicket>>,
        live: Vec<Live>,
        /// Each live incident's tickets, for its centroid (the stage
        /// holds a sum of their vectors instead).
        members: HashMap<Uuid, Vec<TicketId>>,
        assigned: HashSet<TicketId>,
    }
    let mut tenants: HashMap<&str, Tenant> = HashMap::new();
    // incident → its tickets' (tenant, label); label → arrival count so far.
    let mut incidents: BTreeMap<Uuid, Vec<(String, Option<String>)>> = BTreeMap::new();
    let mut arrivals: HashMap<&str, usize> = HashMap::new();
    let labels: HashMap<(&str, &str), Option<String>> = stream
        .tickets
        .iter()
        .map(|t| {
            (
                (t.tenant.as_str(), t.ticket_id.as_str()),
                t.incident.clone(),
            )
        })
        .collect();
    let mut detected_at: HashMap<String, usize> = HashMap::new();
    let mut next_id = 0u128;

    // As the window stores them (quantized), which is what the stage
    // compares.
    let stored: Vec<Vec<f32>> = stream
        .vectors
        .iter()
        .map(|v| aia_store::open_tickets::as_stored(v))
        .collect();
    for (ticket, vector) in stream.tickets.iter().zip(&stored) {
        let received_at = at(ticket.minute);
        if let Some(label) = ticket.incident.as_deref() {
            *arrivals.entry(label).or_default() += 1;
        }
        let tenant = tenants.entry(ticket.tenant.as_str()).or_default();
        let ticket_id = TicketId::parse(&ticket.ticket_id).expect("a ticket id");
        let mentions = context_gatherer::extract::mentions(&ticket.text());
        let entities = related::entities(&mentions, &[]);

        // The context stage enters the ticket into the window; the
        // correlator reads the window before it.
        let since = received_at - rules.window;
        let in_window: Vec<Arc<OpenTicket>> = tenant
            .open
            .iter()
            .filter(|open| open.received_at >= since)
            .cloned()
            .collect();
        tenant.open.push(Arc::new(OpenTicket {
            ticket_id: ticket_id.clone(),
            subject: ticket.subject.clone(),
            received_at,
            entities: entities.clone(),
            vector: Some(vector.clone()),
        }));

        // The correlator.
        for quiet in decide::quiet(&tenant.live, received_at, &rules) {
            if let Some(incident) = tenant.live.iter_mut().find(|i| i.id == quiet) {
                incident.status = IncidentStatus::Ended;
            }
        }
        tenant.live.retain(|incident| incident.status.is_live());
        for incident in &mut tenant.live {
            let members = &tenant.members[&incident.id];
            let vectors: Vec<&[f32]> = tenant
                .open
                .iter()
                .filter(|open| members.contains(&open.ticket_id))
                .filter_map(|open| open.vector.as_deref())
                .collect();
            incident.centroid_members = vectors.len();
            incident.centroid = decide::centroid(vectors);
        }
        let arrival = IncidentTicket {
            ticket_id: ticket_id.clone(),
            subject: ticket.subject.clone(),
            received_at,
        };
        let decision = decide::decide(
            decide::Arrival {
                ticket: &arrival,
                vector: Some(vector),
                entities: &entities,
            },
            &in_window,
            &tenant.live,
            &tenant.assigned,
            &rules,
            &closeness,
        );
        let mut newly = Vec::new();
        match decision {
            Decision::Nothing => {}
            Decision::Join { incident } => {
                let live = tenant
                    .live
                    .iter_mut()
                    .find(|i| i.id == incident)
                    .expect("a live incident");
                tenant
                    .members
                    .entry(incident)
                    .or_default()
                    .push(ticket_id.clone());
                live.ticket_count += 1;
                live.version += 1;
                live.last_ticket_at = live.last_ticket_at.max(received_at);
                newly.push((incident, ticket_id.clone()));
            }
            Decision::Open {
                tickets,
                shared_entities,
                ..
            } => {
                next_id += 1;
                let incident = Uuid::from_u128(next_id);
                tenant.members.insert(
                    incident,
                    tickets.iter().map(|t| t.ticket_id.clone()).collect(),
                );
                tenant.live.push(Live {
                    id: incident,
                    version: 1,
                    status: IncidentStatus::Open,
                    ticket_count: u32::try_from(tickets.len()).unwrap_or(u32::MAX),
                    last_ticket_at: received_at,
                    centroid: None,
                    centroid_members: 0,
                    shared_entities,
                });
                newly.extend(tickets.into_iter().map(|t| (incident, t.ticket_id)));
            }
        }
        for (incident, member) in newly {
            tenant.assigned.insert(member.clone());
            let member_label = labels
                .get(&(ticket.tenant.as_str(), member.as_str()))
                .cloned()
                .flatten();
            // An outage is detected when the first of its tickets is in an
            // incident: at the count of its tickets arrived by then.
            if let Some(member_label) = &member_label {
                let nth = arrivals.get(member_label.as_str()).copied().unwrap_or(1);
                detected_at.entry(member_label.clone()).or_insert(nth);
            }
            incidents
                .entry(incident)
                .or_default()
                .push((ticket.tenant.clone(), member_label));
        }
    }
    score(stream, closeness, &incidents, detected_at)
}

fn score(
    stream: &Embedded,
    closeness: Closeness,
    incidents: &BTreeMap<Uuid, Vec<(String, Option<String>)>>,
    detected_at: HashMap<String, usize>,
) -> Score {
    let mut labelled: HashMap<&str, usize> = HashMap::new();
    for ticket in &stream.tickets {
        if let Some(label) = &ticket.incident {
            *labelled.entry(label).or_default() += 1;
        }
    }
    let (mut assigned, mut correct, mut false_incidents) = (0, 0, 0);
    let mut incidents_of_label: HashMap<&str, usize> = HashMap::new();
    let mut outages: BTreeMap<String, (usize, usize, usize, Option<usize>)> = labelled
        .iter()
        .map(|(label, n)| {
            (
                (*label).to_owned(),
                (*n, 0, 0, detected_at.get(*label).copied()),
            )
        })
        .collect();
    for members in incidents.values() {
        let mut votes: HashMap<Option<&str>, usize> = HashMap::new();
        for (_, label) in members {
            *votes.entry(label.as_deref()).or_default() += 1;
        }
        let (majority, n) = votes
            .iter()
            .max_by_key(|(label, n)| (**n, label.is_some()))
            .map(|(label, n)| (*label, *n))
            .unwrap_or((None, 0));
        assigned += members.len();
        for (_, label) in members {
            if let Some(label) = label
                && let Some(outage) = outages.get_mut(label)
            {
                if majority == Some(label.as_str()) {
                    outage.1 += 1;
                } else {
                    outage.2 += 1;
                }
            }
        }
        match majority {
            Some(label) => {
                correct += n;
                *incidents_of_label.entry(label).or_default() += 1;
            }
            None => false_incidents += 1,
        }
    }
    let labelled_tickets: usize = labelled.values().sum();
    let mut detected_at: Vec<usize> = labelled
        .keys()
        .filter(|label| incidents_of_label.contains_key(*label))
        .filter_map(|label| detected_at.get(*label).copied())
        .collect();
    detected_at.sort_unstable();
    Score {
        closeness,
        precision: if assigned == 0 {
            1.0
        } else {
            correct as f64 / assigned as f64
        },
        recall: if labelled_tickets == 0 {
            1.0
        } else {
            correct as f64 / labelled_tickets as f64
        },
        labelled_incidents: labelled.len(),
        detected: incidents_of_label.len().min(labelled.len()),
        detected_at,
        false_incidents,
        split: incidents_of_label.values().filter(|n| **n > 1).count(),
        outages,
    }
}

/// Per outage of one setting: how many of its tickets were grouped right.
pub fn outage_table(score: &Score) -> String {
    let mut out = String::from(
        "| outage | tickets | in its incident | in another | detected at ticket |\n|---|---|---|---|---|\n",
    );
    for (label, (n, right, wrong, at)) in &score.outages {
        out.push_str(&format!(
            "| {label} | {n} | {right} | {wrong} | {} |\n",
            at.map_or("-".to_owned(), |at| at.to_string())
        ));
    }
    out
}

/// One table row per setting.
pub fn table(scores: &[Score]) -> String {
    let mut out = String::from(
        "| link | burst centroid | join (step, decay) | precision | recall | detected | detected at ticket | false incidents | split |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in scores {
        let at = if s.detected_at.is_empty() {
            "-".to_owned()
        } else {
            let median = s.detected_at[s.detected_at.len() / 2];
            // The target: every outage by its third ticket.
            let by_third = s.detected_at.iter().filter(|at| **at <= 3).count();
            format!(
                "median {median}, max {}; by the third: {by_third} of {}",
                s.detected_at.last().copied().unwrap_or(0),
                s.labelled_incidents
            )
        };
        out.push_str(&format!(
            "| {:.2} | {:.2} | {:.2} ({:.2}, {:.4}) | {:.3} | {:.3} | {}/{} | {at} | {} | {} |\n",
            s.closeness.link,
            s.closeness.centroid,
            s.closeness.join,
            s.closeness.join_step,
            s.closeness.join_decay,
            s.precision,
            s.recall,
            s.detected,
            s.labelled_incidents,
            s.false_incidents,
            s.split
        ));
    }
    out
}
