//! What `aiagents eval-incidents` scores: a replayed stream's incidents
//! against its labels, the streams made busier, and the bar to join an
//! incident rising while it is silent — on vectors built so the expected
//! decision is known.

use aia_store::IncidentSettings;
use aiagents::eval::incidents::{Embedded, StreamTicket, busier, replay};
use incident_correlator::decide::{Closeness, DEFAULT_CLOSENESS};

use crate::vectors_support;

const DIMENSIONS: usize = 16;

/// A unit vector with `shared` on the first axis and the rest on `axis`:
/// two such vectors on different axes have the cosine `shared²`.
fn along(shared: f32, axis: usize) -> Vec<f32> {
    vectors_support::along(shared, axis, DIMENSIONS)
}

/// A vector alike to no other of these.
fn alone(axis: usize) -> Vec<f32> {
    vectors_support::along(0.0, axis, DIMENSIONS)
}

fn ticket(tenant: &str, id: &str, minute: f64, outage: Option<&str>) -> StreamTicket {
    StreamTicket {
        tenant: tenant.into(),
        ticket_id: id.into(),
        minute,
        subject: Some(format!("subject of {id}")),
        description: format!("description of {id}"),
        incident: outage.map(str::to_owned),
    }
}

fn stream(tickets: Vec<(StreamTicket, Vec<f32>)>) -> Embedded {
    let (tickets, vectors) = tickets.into_iter().unzip();
    Embedded { tickets, vectors }
}

/// Five tickets of one outage in eight minutes (pairwise cosine 0.36, each
/// about 0.52 from the others' centroid), three everyday tickets alike to
/// nothing, and a ticket of the outage `straggler_at` minutes in.
fn outage_with_straggler(straggler_at: f64) -> Embedded {
    let mut tickets = vec![
        (ticket("acme", "E-1", 0.0, None), alone(12)),
        (ticket("acme", "O-1", 1.0, Some("mail")), along(0.6, 1)),
        (ticket("acme", "O-2", 3.0, Some("mail")), along(0.6, 2)),
        (ticket("acme", "E-2", 4.0, None), alone(13)),
        (ticket("acme", "O-3", 5.0, Some("mail")), along(0.6, 3)),
        (ticket("acme", "O-4", 6.0, Some("mail")), along(0.6, 4)),
        (ticket("acme", "O-5", 8.0, Some("mail")), along(0.6, 5)),
        (ticket("acme", "E-3", 9.0, None), alone(14)),
    ];
    tickets.push((
        ticket("acme", "O-6", straggler_at, Some("mail")),
        along(0.6, 6),
    ));
    stream(tickets)
}

#[test]
fn an_outage_is_one_incident_detected_at_its_third_ticket_and_everyday_tickets_none() {
    let score = replay(
        &outage_with_straggler(12.0),
        DEFAULT_CLOSENESS,
        &IncidentSettings::default(),
    );
    assert_eq!(score.labelled_incidents, 1);
    assert_eq!(score.detected, 1);
    assert_eq!(score.detected_at, [3]);
    assert_eq!(score.false_incidents, 0);
    assert_eq!(score.split, 0);
    assert_eq!((score.precision, score.recall), (1.0, 1.0));
    assert!(
        aiagents::eval::incidents::table(std::slice::from_ref(&score))
            .contains("| 1/1 | median 3, max 3; by the third: 1 of 1 | 0 | 0 |"),
        "{}",
        aiagents::eval::incidents::table(std::slice::from_ref(&score))
    );
}

#[test]
fn a_straggler_joins_a_busy_incident_but_not_one_silent_for_most_of_an_hour() {
    let settings = IncidentSettings::default();
    // Four minutes after the outage's last ticket: it joins.
    let prompt = replay(&outage_with_straggler(12.0), DEFAULT_CLOSENESS, &settings);
    assert_eq!(prompt.recall, 1.0);
    // 62 minutes after it, well within the quiet period: the bar has risen
    // by 0.104, past the straggler's cosine to the centroid (about 0.52).
    let late = replay(&outage_with_straggler(70.0), DEFAULT_CLOSENESS, &settings);
    assert_eq!(late.outages["mail"], (6, 5, 0, Some(3)));
    // Without the decay the silent incident takes it.
    let no_decay = Closeness {
        join_decay: 0.0,
        ..DEFAULT_CLOSENESS
    };
    let taken = replay(&outage_with_straggler(70.0), no_decay, &settings);
    assert_eq!(taken.outages["mail"], (6, 6, 0, Some(3)));
}

#[test]
fn busier_makes_every_n_tenants_one_and_keeps_their_tickets_apart() {
    let tickets = vec![
        ticket("beta", "T-1", 0.0, Some("beta-outage")),
        ticket("alpha", "T-1", 1.0, None),
        ticket("gamma", "T-1", 2.0, None),
        ticket("beta", "T-2", 3.0, None),
    ];
    let same = busier(tickets.clone(), 1);
    assert_eq!(
        same.iter().map(|t| &t.ticket_id).collect::<Vec<_>>(),
        ["T-1", "T-1", "T-1", "T-2"]
    );
    let merged = busier(tickets, 2);
    let seen: Vec<(&str, &str, Option<&str>)> = merged
        .iter()
        .map(|t| {
            (
                t.tenant.as_str(),
                t.ticket_id.as_str(),
                t.incident.as_deref(),
            )
        })
        .collect();
    // In name order: alpha and beta together, gamma alone; the order of
    // the stream and every label kept.
    assert_eq!(
        seen,
        [
            ("alpha+beta", "beta/T-1", Some("beta-outage")),
            ("alpha+beta", "alpha/T-1", None),
            ("gamma", "gamma/T-1", None),
            ("alpha+beta", "beta/T-2", None),
        ]
    );
}

#[test]
fn everyday_tickets_on_one_topic_become_a_false_incident_when_the_tenant_is_twice_as_busy() {
    // Each tenant has two tickets on one everyday topic: alone, two of the
    // threshold's three. Made one tenant, the four are within minutes and
    // alike; what the replay then does is what the detector does for a
    // tenant that busy, and the score counts it as a false incident.
    let tickets = vec![
        (ticket("alpha", "A-1", 0.0, None), along(0.7, 1)),
        (ticket("beta", "B-1", 2.0, None), along(0.7, 2)),
        (ticket("alpha", "A-2", 4.0, None), along(0.7, 3)),
        (ticket("beta", "B-2", 6.0, None), along(0.7, 4)),
    ];
    let apart = stream(tickets);
    let settings = IncidentSettings::default();
    let alone = replay(&apart, DEFAULT_CLOSENESS, &settings);
    assert_eq!(alone.false_incidents, 0);
    let together = Embedded {
        tickets: busier(apart.tickets.clone(), 2),
        vectors: apart.vectors.clone(),
    };
    let busy = replay(&together, DEFAULT_CLOSENESS, &settings);
    assert_eq!(busy.false_incidents, 1);
    assert_eq!(busy.precision, 0.0);
}
