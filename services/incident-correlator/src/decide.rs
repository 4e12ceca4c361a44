//! The correlator's decisions, pure: given a ticket the context stage
//! understood (its vector and the hosts, addresses and sites it names), the
//! tenant's window of recent open tickets, its live incidents and which
//! tickets already belong to one, what happens. The stage runs this under
//! the tenant's lock; `aiagents eval-incidents` runs the very same code
//! over labelled ticket streams.
//!
//! Users describe one outage in their own words, so two tickets of it are
//! often only loosely alike; what they share is the outage. A group is
//! therefore judged by its centroid (the mean of its members' vectors, in
//! which each user's own details average out): a ticket joins the live
//! incident whose centroid it is close to, and a burst opens one when the
//! tickets loosely like the new one, within the window, are enough and
//! stay close to their common centroid. One loosely similar member never
//! pulls a ticket in.
//!
//! Decisions only add: a ticket joins an incident or opens one, and never
//! moves. Arrival order still matters at the edges (which ticket crosses
//! the threshold, so which centroid the others are judged by); the
//! evaluation replays streams in their order.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use aia_events::{IncidentStatus, IncidentTicket, TicketId};
use aia_store::IncidentSettings;
use aia_store::open_tickets::OpenTicket;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// A tenant's thresholds, as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Related tickets (the new one included) that open an incident…
    pub threshold: u32,
    /// …when received within this long of the new one.
    pub window: Duration,
    /// A live incident without a new ticket for this long ends.
    pub quiet: Duration,
}

impl From<&IncidentSettings> for Rules {
    fn from(settings: &IncidentSettings) -> Self {
        Self {
            threshold: settings.threshold.max(2),
            window: Duration::minutes(i64::from(settings.threshold_window_minutes)),
            quiet: Duration::minutes(i64::from(settings.quiet_minutes)),
        }
    }
}

/// How alike tickets must be (cosines of the tenant's model's vectors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closeness {
    /// Least cosine of a ticket in the window to the new one for it to be
    /// a candidate of a burst.
    pub link: f32,
    /// Least cosine of each member of a burst to the centroid of the rest
    /// of it, for the burst to open an incident.
    pub centroid: f32,
    /// Least cosine of a ticket to a live incident's centroid to join it,
    /// once the incident has [`SETTLED_MEMBERS`] tickets…
    pub join: f32,
    /// …and how much less for each ticket it has fewer: the centroid of
    /// three or four users' words is a noisy estimate of the outage's, so
    /// a ticket of the same outage lies further from it than from the
    /// centroid of many.
    pub join_step: f32,
    /// What naming a host, address or site in common adds to a cosine.
    pub entity_bonus: f32,
    /// How much more a ticket must be like an incident for each minute the
    /// incident has gone without a ticket, past [`JOIN_GRACE_MINUTES`]. An
    /// outage's tickets come in a burst; the longer an incident has been
    /// silent, the likelier a ticket like it is the tenant's everyday
    /// traffic on the same topic (another printer jam), and at a busy
    /// tenant such tickets kept a topic's incident alive for hours.
    pub join_decay: f32,
}

/// Chosen on the incident evaluation sets for the local model
/// (`aiagents eval-incidents`, docs/benchmarks.md).
pub const DEFAULT_CLOSENESS: Closeness = Closeness {
    link: 0.25,
    centroid: 0.34,
    join: 0.44,
    join_step: 0.02,
    entity_bonus: 0.15,
    join_decay: 0.002,
};

/// Minutes an incident may go without a ticket before the bar to join it
/// rises ([`Closeness::join_decay`]).
pub const JOIN_GRACE_MINUTES: f32 = 10.0;

/// Members from which an incident's centroid is taken as settled: the
/// join threshold is [`Closeness::join`] from here on.
pub const SETTLED_MEMBERS: usize = 5;

impl Closeness {
    /// The closeness for vectors of `model` in a tenant with these
    /// embedding settings: the local model's, or what the tenant calibrated
    /// for its endpoint's model; `None` for a model nobody calibrated,
    /// whose tickets then make no incident.
    pub fn for_model(settings: &aia_store::EmbeddingSettings, model: &str) -> Option<Self> {
        match settings {
            aia_store::EmbeddingSettings::Local => {
                (model == aia_store::LOCAL_EMBEDDING_MODEL).then_some(DEFAULT_CLOSENESS)
            }
            aia_store::EmbeddingSettings::Endpoint(endpoint) => {
                let calibrated = endpoint.incidents.filter(|_| endpoint.model == model);
                calibrated.map(|calibration| Self {
                    link: calibration.link,
                    centroid: calibration.centroid,
                    join: calibration.join,
                    join_step: calibration.join_step,
                    entity_bonus: calibration.entity_bonus,
                    join_decay: calibration.join_decay,
                })
            }
        }
    }

    /// Least cosine to the centroid of an incident of `members` tickets,
    /// whose last ticket came `silent` ago, for a ticket to join it.
    pub fn join_threshold(&self, members: usize, silent: Duration) -> f32 {
        let missing = SETTLED_MEMBERS.saturating_sub(members) as f32;
        let minutes = silent.num_seconds().max(0) as f32 / 60.0;
        let late = (minutes - JOIN_GRACE_MINUTES).max(0.0);
        self.join - self.join_step * missing + self.join_decay * late
    }
}

/// An incident tickets may still join.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub id: Uuid,
    pub version: u32,
    pub status: IncidentStatus,
    /// How many tickets it has (its members are not read for a decision:
    /// [`crate::centroids::Centroids`] holds what their vectors add up to).
    pub ticket_count: u32,
    pub last_ticket_at: DateTime<Utc>,
    /// The unit mean of its members' vectors; `None` when none has one.
    pub centroid: Option<Vec<f32>>,
    /// How many members' vectors that mean is of (members without one, or
    /// with one of another model, are not in it): what the join threshold
    /// is judged by.
    pub centroid_members: usize,
    /// What its detecting ticket named with another of its tickets.
    pub shared_entities: Vec<String>,
}

/// The new ticket.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub ticket: &'a IncidentTicket,
    /// Unit length, of the same model as the window's vectors.
    pub vector: Option<&'a [f32]>,
    pub entities: &'a [String],
}

impl Arrival<'_> {
    /// `open`'s vector when `open` is loosely like this ticket: a
    /// candidate of a burst with it.
    pub fn links<'o>(&self, open: &'o OpenTicket, closeness: &Closeness) -> Option<&'o [f32]> {
        let vector = self.vector?;
        let other = open.vector.as_deref().filter(|v| v.len() == vector.len())?;
        let shares = open.entities.iter().any(|e| self.entities.contains(e));
        let score = cosine(vector, other) + if shares { closeness.entity_bonus } else { 0.0 };
        (score >= closeness.link).then_some(other)
    }
}

/// What a new ticket does.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// It is alone, or too few look like it yet.
    Nothing,
    /// It joins this live incident.
    Join { incident: Uuid },
    /// It and these tickets of the window, none in an incident yet, open
    /// one.
    Open {
        tickets: Vec<IncidentTicket>,
        shared_entities: Vec<String>,
        summary: String,
    },
}

/// The live incidents that went quiet by `now`.
pub fn quiet(live: &[Live], now: DateTime<Utc>, rules: &Rules) -> Vec<Uuid> {
    live.iter()
        .filter(|incident| incident.status.is_live() && incident.last_ticket_at + rules.quiet < now)
        .map(|incident| incident.id)
        .collect()
}

/// What `arrival` does among the tenant's `live` incidents, given its
/// `window` of open tickets (the arrival left out; only those it
/// [links](Arrival::links) to matter); `assigned` holds every ticket of
/// the window already in an incident (ended ones too), and the arrival if
/// it is.
pub fn decide(
    arrival: Arrival<'_>,
    window: &[Arc<OpenTicket>],
    live: &[Live],
    assigned: &HashSet<TicketId>,
    rules: &Rules,
    closeness: &Closeness,
) -> Decision {
    let ticket = arrival.ticket;
    if assigned.contains(&ticket.ticket_id) {
        return Decision::Nothing;
    }
    let Some(vector) = arrival.vector else {
        // Without its meaning a ticket is too weakly known to group.
        return Decision::Nothing;
    };
    // Join the live incident whose centroid is nearest, if near enough
    // (the earliest detected on a tie, which is the order `live` is in).
    let mut best: Option<(f32, Uuid)> = None;
    for incident in live.iter().filter(|i| i.status.is_live()) {
        let Some(centroid) = &incident.centroid else {
            continue;
        };
        let shares = incident
            .shared_entities
            .iter()
            .any(|e| arrival.entities.contains(e));
        let score = cosine(vector, centroid) + if shares { closeness.entity_bonus } else { 0.0 };
        let needed = closeness.join_threshold(
            incident.centroid_members,
            ticket.received_at - incident.last_ticket_at,
        );
        if score >= needed && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, incident.id));
        }
    }
    if let Some((_, incident)) = best {
        return Decision::Join { incident };
    }

    // A burst: the window's fresh, unassigned tickets loosely like this
    // one, kept only while near the group's centroid.
    let since = ticket.received_at - rules.window;
    let linked: Vec<(&OpenTicket, &[f32])> = window
        .iter()
        .filter(|open| open.received_at >= since && !assigned.contains(&open.ticket_id))
        .filter_map(|open| Some((open.as_ref(), arrival.links(open, closeness)?)))
        .collect();
    let needed = rules.threshold as usize;
    if linked.len() + 1 < needed {
        return Decision::Nothing;
    }
    // Each member must be near the centroid of the others (with itself in
    // it, three unrelated tickets would be near their own mean); those
    // that are not leave, and the rest are judged again.
    let mut kept: Vec<(&OpenTicket, &[f32])> = linked;
    loop {
        let others_of = |member: &[f32]| {
            let mut sum = vector.to_vec();
            for (_, v) in &kept {
                sum.iter_mut().zip(*v).for_each(|(s, x)| *s += x);
            }
            sum.iter_mut().zip(member).for_each(|(s, x)| *s -= x);
            unit(sum)
        };
        let before = kept.len();
        let near: Vec<bool> = kept
            .iter()
            .map(|(_, v)| others_of(v).is_some_and(|c| cosine(v, &c) >= closeness.centroid))
            .collect();
        let mut near = near.into_iter();
        kept.retain(|_| near.next().unwrap_or(false));
        if kept.len() + 1 < needed {
            return Decision::Nothing;
        }
        if kept.len() == before {
            let arrival_near = centroid(kept.iter().map(|(_, v)| *v))
                .is_some_and(|c| cosine(vector, &c) >= closeness.centroid);
            if !arrival_near {
                return Decision::Nothing;
            }
            break;
        }
    }
    let mut tickets: Vec<IncidentTicket> = kept
        .iter()
        .map(|(open, _)| IncidentTicket {
            ticket_id: open.ticket_id.clone(),
            subject: open.subject.clone(),
            received_at: open.received_at,
        })
        .chain([ticket.clone()])
        .collect();
    tickets.sort_by(|a, b| {
        a.received_at
            .cmp(&b.received_at)
            .then(a.ticket_id.cmp(&b.ticket_id))
    });
    let shared_entities: Vec<String> = kept
        .iter()
        .flat_map(|(open, _)| open.entities.iter())
        .filter(|e| arrival.entities.contains(e))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let summary = summary(&tickets, &shared_entities);
    Decision::Open {
        tickets,
        shared_entities,
        summary,
    }
}

/// `vector` scaled to unit length; `None` for the zero vector.
pub(crate) fn unit(mut vector: Vec<f32>) -> Option<Vec<f32>> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if !norm.is_finite() || norm <= f32::EPSILON {
        return None;
    }
    vector.iter_mut().for_each(|v| *v /= norm);
    Some(vector)
}

/// The unit mean of `vectors` (all of one length); `None` for none.
pub fn centroid<'a>(vectors: impl IntoIterator<Item = &'a [f32]>) -> Option<Vec<f32>> {
    let mut sum: Option<Vec<f32>> = None;
    for vector in vectors {
        match &mut sum {
            None => sum = Some(vector.to_vec()),
            Some(sum) if sum.len() == vector.len() => {
                sum.iter_mut().zip(vector).for_each(|(s, v)| *s += v);
            }
            Some(_) => {}
        }
    }
    unit(sum?)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One line: how many tickets in how long, the first one's subject and
/// time, and what they name in common.
pub fn summary(tickets: &[IncidentTicket], shared_entities: &[String]) -> String {
    let (Some(first), Some(last)) = (tickets.first(), tickets.last()) else {
        return String::new();
    };
    let minutes = (last.received_at - first.received_at).num_minutes().max(1);
    let mut line = format!(
        "{} tickets in {minutes} min from {} UTC",
        tickets.len(),
        first.received_at.format("%H:%M")
    );
    if let Some(subject) = tickets.iter().find_map(|t| t.subject.as_deref()) {
        let subject: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let subject: String = subject.chars().take(60).collect();
        line.push_str(&format!(", first \"{subject}\""));
    }
    if !shared_entities.is_empty() {
        line.push_str(&format!("; shared: {}", shared_entities.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_calibrated_model_groups_tickets() {
        let local = aia_store::EmbeddingSettings::Local;
        assert_eq!(
            Closeness::for_model(&local, aia_store::LOCAL_EMBEDDING_MODEL),
            Some(DEFAULT_CLOSENESS)
        );
        // Tickets embedded by an endpoint before the tenant moved back.
        assert_eq!(
            Closeness::for_model(&local, "multilingual-e5-small-q4"),
            None
        );
        let mut endpoint = aia_store::EmbeddingEndpointSettings {
            min_similarity: Some(0.75),
            likely_similarity: Some(0.90),
            lexical_weight: Some(0.0),
            ..aia_store::EmbeddingEndpointSettings::openai(
                "e5",
                "http://e5.internal:8090/v1",
                "multilingual-e5-small-q4",
            )
        };
        let e5 = "multilingual-e5-small-q4";
        // The local model's thresholds would group every ticket of a model
        // whose everyday pairs sit at 0.8.
        let uncalibrated = aia_store::EmbeddingSettings::Endpoint(endpoint.clone());
        assert_eq!(Closeness::for_model(&uncalibrated, e5), None);
        endpoint.incidents = Some(aia_store::IncidentCalibration {
            related: 0.9,
            related_with_entity: 0.88,
            link: 0.86,
            centroid: 0.88,
            join: 0.9,
            join_step: 0.005,
            entity_bonus: 0.02,
            join_decay: 0.0,
        });
        let calibrated = aia_store::EmbeddingSettings::Endpoint(endpoint);
        assert_eq!(
            Closeness::for_model(&calibrated, e5),
            Some(Closeness {
                link: 0.86,
                centroid: 0.88,
                join: 0.9,
                join_step: 0.005,
                entity_bonus: 0.02,
                join_decay: 0.0,
            })
        );
        // A vector of another model than the endpoint's (the tenant moved
        // models) is not judged by the endpoint's thresholds.
        assert_eq!(Closeness::for_model(&calibrated, "other-model"), None);
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap() + Duration::minutes(minute)
    }

    fn ticket(id: &str, minute: i64) -> IncidentTicket {
        IncidentTicket {
            ticket_id: TicketId::parse(id).unwrap(),
            subject: Some(format!("subject of {id}")),
            received_at: at(minute),
        }
    }

    /// A unit vector `share` along the outage's axis (0) and the rest
    /// along a direction of the ticket's own (axis `own`).
    fn along(share: f32, own: usize) -> Vec<f32> {
        let mut v = vec![0.0; 16];
        v[0] = share;
        v[own] = (1.0 - share * share).sqrt();
        v
    }

    fn open(id: &str, minute: i64, vector: Vec<f32>, entities: &[&str]) -> Arc<OpenTicket> {
        Arc::new(OpenTicket {
            ticket_id: TicketId::parse(id).unwrap(),
            subject: Some(format!("subject of {id}")),
            received_at: at(minute),
            entities: entities.iter().map(|e| (*e).to_owned()).collect(),
            vector: Some(vector),
        })
    }

    fn rules() -> Rules {
        Rules::from(&IncidentSettings::default())
    }

    fn ids(set: &[&str]) -> HashSet<TicketId> {
        set.iter().map(|id| TicketId::parse(id).unwrap()).collect()
    }

    fn decide_for(
        id: &str,
        minute: i64,
        vector: &[f32],
        window: &[Arc<OpenTicket>],
        live: &[Live],
        assigned: &HashSet<TicketId>,
    ) -> Decision {
        decide(
            Arrival {
                ticket: &ticket(id, minute),
                vector: Some(vector),
                entities: &["fs01".to_owned()],
            },
            window,
            live,
            assigned,
            &rules(),
            &DEFAULT_CLOSENESS,
        )
    }

    #[test]
    fn a_third_ticket_of_one_outage_opens_an_incident_of_all_three() {
        // Each pair shares 0.36 (0.6 * 0.6): loosely alike, as users' words
        // for one outage are.
        let window = [
            open("T-1", 0, along(0.6, 1), &["fs01"]),
            open("T-2", 5, along(0.6, 2), &[]),
        ];
        let decision = decide_for("T-3", 9, &along(0.6, 3), &window, &[], &ids(&[]));
        let Decision::Open {
            tickets,
            shared_entities,
            summary,
        } = decision
        else {
            panic!("{decision:?}")
        };
        let opened: Vec<&str> = tickets.iter().map(|t| t.ticket_id.as_str()).collect();
        assert_eq!(opened, ["T-1", "T-2", "T-3"]);
        assert_eq!(shared_entities, ["fs01"]);
        assert!(summary.starts_with("3 tickets in 9 min from "), "{summary}");
        assert!(
            summary.ends_with("first \"subject of T-1\"; shared: fs01"),
            "{summary}"
        );

        assert_eq!(
            decide_for("T-3", 9, &along(0.6, 3), &window[..1], &[], &ids(&[])),
            Decision::Nothing,
            "two tickets are not yet an incident"
        );
    }

    #[test]
    fn everyday_tickets_that_each_loosely_resemble_the_new_one_open_nothing() {
        // T-1 and T-2 each link to the new ticket (0.3) along different
        // lines and not to each other: near their own mean, far from the
        // rest of the group.
        let mut first = vec![0.0; 16];
        first[0] = 0.3;
        first[1] = (1.0f32 - 0.09).sqrt();
        let mut second = vec![0.0; 16];
        second[0] = 0.3;
        second[2] = (1.0f32 - 0.09).sqrt();
        let window = [open("T-1", 0, first, &[]), open("T-2", 5, second, &[])];
        let mut new = vec![0.0; 16];
        new[0] = 1.0;
        assert_eq!(
            decide_for("T-3", 9, &new, &window, &[], &ids(&[])),
            Decision::Nothing
        );
    }

    #[test]
    fn tickets_outside_the_window_or_already_grouped_do_not_count() {
        let window = [
            open("T-1", -45, along(0.6, 1), &[]),
            open("T-2", 5, along(0.6, 2), &[]),
        ];
        assert_eq!(
            decide_for("T-3", 9, &along(0.6, 3), &window, &[], &ids(&[])),
            Decision::Nothing,
            "T-1 came 54 minutes earlier, outside the 30-minute window"
        );
        let window = [
            open("T-1", 0, along(0.6, 1), &[]),
            open("T-2", 5, along(0.6, 2), &[]),
        ];
        assert_eq!(
            decide_for("T-3", 9, &along(0.6, 3), &window, &[], &ids(&["T-1"])),
            Decision::Nothing,
            "T-1 belongs to an ended incident"
        );
        assert_eq!(
            decide_for("T-1", 9, &along(0.6, 3), &window, &[], &ids(&["T-1"])),
            Decision::Nothing,
            "a ticket already in an incident never moves"
        );
    }

    #[test]
    fn a_ticket_joins_the_live_incident_whose_centroid_is_nearest_if_near_enough() {
        // Incidents of settled size: the join threshold is `join` itself.
        let live = |id: u128, axis: usize| Live {
            id: Uuid::from_u128(id),
            version: 2,
            status: IncidentStatus::Open,
            ticket_count: SETTLED_MEMBERS as u32,
            centroid_members: SETTLED_MEMBERS,
            last_ticket_at: at(0),
            centroid: Some({
                let mut unit = vec![0.0; 16];
                unit[axis] = 1.0;
                unit
            }),
            shared_entities: vec![],
        };
        let mut new = vec![0.0; 16];
        new[4] = 0.5;
        new[5] = 0.7;
        new[6] = (1.0f32 - 0.25 - 0.49).sqrt();
        let two = [live(1, 4), live(2, 5)];
        assert_eq!(
            decide_for("N-1", 3, &new, &[], &two, &ids(&[])),
            Decision::Join {
                incident: Uuid::from_u128(2)
            }
        );
        let far = [live(1, 7)];
        assert_eq!(
            decide_for("N-1", 3, &new, &[], &far, &ids(&[])),
            Decision::Nothing
        );
        // Naming what the incident's tickets share brings a ticket nearer:
        // one too far from the centroid on its own joins with the host.
        let near_with_host = [Live {
            shared_entities: vec!["fs01".into()],
            ..live(1, 4)
        }];
        let mut weak = vec![0.0; 16];
        weak[4] = 0.35;
        weak[8] = (1.0f32 - 0.35 * 0.35).sqrt();
        assert_eq!(
            decide_for("N-2", 3, &weak, &[], &[live(1, 4)], &ids(&[])),
            Decision::Nothing
        );
        assert_eq!(
            decide_for("N-2", 3, &weak, &[], &near_with_host, &ids(&[])),
            Decision::Join {
                incident: Uuid::from_u128(1)
            }
        );
    }

    /// A live incident of `n` members whose centroid lies along axis 1,
    /// its last ticket at minute 0.
    fn incident_of(n: usize) -> Live {
        Live {
            id: Uuid::from_u128(9),
            version: 1,
            status: IncidentStatus::Open,
            ticket_count: n as u32,
            centroid_members: n,
            last_ticket_at: at(0),
            centroid: Some(along(1.0, 1)),
            shared_entities: vec![],
        }
    }

    #[test]
    fn a_young_incident_takes_a_ticket_a_little_further_from_its_centroid() {
        let closeness = DEFAULT_CLOSENESS;
        assert!(
            (closeness.join_threshold(3, Duration::zero())
                - (closeness.join - 2.0 * closeness.join_step))
                .abs()
                < 1e-6
        );
        assert_eq!(
            closeness.join_threshold(SETTLED_MEMBERS, Duration::zero()),
            closeness.join
        );
        assert_eq!(
            closeness.join_threshold(40, Duration::zero()),
            closeness.join
        );
        // Between a three-ticket incident's threshold and a settled one's.
        let between = (closeness.join_threshold(3, Duration::zero()) + closeness.join) / 2.0;
        let mut ticket = vec![0.0; 16];
        ticket[0] = between;
        ticket[9] = (1.0 - between * between).sqrt();
        let joins = Decision::Join {
            incident: Uuid::from_u128(9),
        };
        let window: [Arc<OpenTicket>; 0] = [];
        assert_eq!(
            decide_for("N-1", 3, &ticket, &window, &[incident_of(3)], &ids(&[])),
            joins
        );
        assert_eq!(
            decide_for(
                "N-1",
                3,
                &ticket,
                &window,
                &[incident_of(SETTLED_MEMBERS)],
                &ids(&[])
            ),
            Decision::Nothing
        );
        assert_eq!(
            decide_for("N-1", 3, &ticket, &window, &[incident_of(12)], &ids(&[])),
            Decision::Nothing
        );
    }

    #[test]
    fn the_longer_an_incident_has_been_silent_the_closer_a_ticket_must_be_to_join() {
        let incident = incident_of(SETTLED_MEMBERS);
        let closeness = DEFAULT_CLOSENESS;
        let silent = |minutes| Duration::minutes(minutes);
        assert_eq!(
            closeness.join_threshold(SETTLED_MEMBERS, silent(10)),
            closeness.join
        );
        assert!(
            (closeness.join_threshold(SETTLED_MEMBERS, silent(40))
                - (closeness.join + 30.0 * closeness.join_decay))
                .abs()
                < 1e-6
        );
        // A ticket 0.021 above the settled threshold: ten minutes past the
        // grace 0.02 more are needed, so it just joins; ten minutes later
        // (0.04 more) it does not.
        let cosine = closeness.join + 0.021;
        let mut ticket = vec![0.0; 16];
        ticket[0] = cosine;
        ticket[9] = (1.0 - cosine * cosine).sqrt();
        let window: [Arc<OpenTicket>; 0] = [];
        let live = [incident];
        assert_eq!(
            decide_for("N-1", 5, &ticket, &window, &live, &ids(&[])),
            Decision::Join {
                incident: Uuid::from_u128(9)
            }
        );
        assert_eq!(
            decide_for("N-1", 20, &ticket, &window, &live, &ids(&[])),
            Decision::Join {
                incident: Uuid::from_u128(9)
            }
        );
        assert_eq!(
            decide_for("N-1", 30, &ticket, &window, &live, &ids(&[])),
            Decision::Nothing
        );
    }

    #[test]
    fn an_incident_goes_quiet_after_the_quiet_period_without_a_ticket() {
        let live = [Live {
            id: Uuid::from_u128(7),
            version: 3,
            status: IncidentStatus::Open,
            ticket_count: 0,
            last_ticket_at: at(0),
            centroid: None,
            centroid_members: 0,
            shared_entities: vec![],
        }];
        assert!(quiet(&live, at(120), &rules()).is_empty());
        assert_eq!(quiet(&live, at(121), &rules()), [Uuid::from_u128(7)]);
    }
}
