//! Related open tickets: the tenant's other tickets received in the recent
//! window, not resolved, that look like the same problem — by meaning, and
//! by the hosts, addresses and sites both name. Many of them at once are
//! an outage seen from many desks (the incident correlator groups them).
//!
//! The window is read and the new ticket entered into it in one
//! transaction ([`aia_store::open_tickets`]); the process holds its
//! tenants' windows and reads only what changed since
//! ([`WindowCache`]); the comparison runs in the process, like the search
//! for similar tickets.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use aia_events::{RelatedTicket, SystemInfo, TenantId};
use aia_store::open_tickets::{self, NewOpenTicket, OpenTicket, WindowCache};
use aia_store::{Pool, StoreError};

use super::SourceError;
use crate::extract::Mentions;

/// When two tickets count as the same problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relatedness {
    /// Least cosine similarity of two tickets related by meaning alone.
    pub meaning: f32,
    /// Least cosine similarity of two tickets that also name a host,
    /// address or site in common (a shared name alone relates nothing: a
    /// printer's toner and its paper jam are two problems).
    pub with_entity: f32,
}

/// For the local model: everyday pairs of one tenant's tickets received
/// within half an hour have a cosine above 0.37 once in a hundred, pairs of
/// one outage's tickets half the time above 0.29–0.35 (the incident
/// evaluation sets, docs/benchmarks.md). A note lists only the clearly
/// alike; the correlator judges groups, not pairs (see
/// `incident_correlator::decide`).
pub const DEFAULT: Relatedness = Relatedness {
    meaning: 0.40,
    with_entity: 0.25,
};

impl Relatedness {
    /// The thresholds for vectors of `model` in a tenant with these
    /// embedding settings: the local model's, or what the tenant
    /// calibrated for its endpoint's model; `None` for a model nobody
    /// calibrated, whose vectors then relate nothing.
    pub fn for_model(settings: &aia_store::EmbeddingSettings, model: &str) -> Option<Self> {
        match settings {
            aia_store::EmbeddingSettings::Local => {
                (model == aia_store::LOCAL_EMBEDDING_MODEL).then_some(DEFAULT)
            }
            aia_store::EmbeddingSettings::Endpoint(endpoint) => endpoint
                .incidents
                .filter(|_| endpoint.model == model)
                .map(|calibration| Self {
                    meaning: calibration.related,
                    with_entity: calibration.related_with_entity,
                }),
        }
    }
}

/// How the stage uses the window.
#[derive(Clone)]
pub struct Related {
    /// Whether each ticket is entered into the window; off for a dry run,
    /// which reads it only.
    pub record: bool,
    /// The windows this process holds.
    pub windows: Arc<WindowCache>,
}

impl Related {
    /// A running stage holding the windows of up to `tenants` tenants.
    pub fn live(tenants: usize) -> Self {
        Self {
            record: true,
            windows: Arc::new(WindowCache::new(tenants)),
        }
    }

    /// An operator's dry run: the window is read, never written nor held.
    pub fn dry_run() -> Self {
        Self {
            record: false,
            windows: Arc::new(WindowCache::new(0)),
        }
    }
}

/// Most related tickets a context carries (the count beyond is not needed:
/// the note names a few, the correlator needs its threshold).
pub const MAX_RELATED: usize = 25;

/// What a ticket names that another ticket about the same outage may name
/// too: every address it mentions that names one machine or network of
/// the tenant's ([`distinctive`]), and the host names and sites of the
/// systems the inventory matched (a word that only looks like a host name
/// is not an entity).
pub fn entities(mentions: &Mentions, systems: &[SystemInfo]) -> Vec<String> {
    let mut found = BTreeSet::new();
    for (_, address) in &mentions.addresses {
        if distinctive(*address) {
            found.insert(address.to_string());
        }
    }
    for system in systems {
        if let Some(host) = &system.hostname {
            found.insert(host.to_lowercase());
        }
        if let Some(address) = &system.address {
            found.insert(address.clone());
        }
        if let Some(location) = &system.location {
            found.insert(format!("site:{location}"));
        }
    }
    found.into_iter().collect()
}

/// Addresses every network has or every user tries, which two tickets
/// share without sharing a cause: consumer routers' default gateways (an
/// MSP's customers work from home behind them) and the public resolvers
/// people ping to test "the internet".
const EVERYWHERE: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 1, 254)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 2, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 178, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 100, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 138)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(1, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9)),
    IpAddr::V4(Ipv4Addr::new(208, 67, 222, 222)),
    IpAddr::V4(Ipv4Addr::new(208, 67, 220, 220)),
];

/// Whether two tickets naming `address` say something about one cause: not
/// a loopback, unspecified, broadcast, multicast or link-local address, not
/// a netmask (255.255.255.0), and not one of the addresses found
/// [`EVERYWHERE`].
pub fn distinctive(address: IpAddr) -> bool {
    if address.is_loopback() || address.is_unspecified() || address.is_multicast() {
        return false;
    }
    if EVERYWHERE.contains(&address) {
        return false;
    }
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let netmask = bits.leading_ones() + bits.trailing_zeros() == 32 && bits != 0;
            !(v4.is_broadcast() || v4.is_link_local() || netmask)
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// The window's tickets related to one with `vector` (unit length, of the
/// same model as the window's vectors) and `entities`: most similar first,
/// at most [`MAX_RELATED`].
pub fn relate(
    vector: Option<&[f32]>,
    entities: &[String],
    window: &[Arc<OpenTicket>],
    relatedness: Relatedness,
) -> Vec<RelatedTicket> {
    let mut related: Vec<RelatedTicket> = window
        .iter()
        .filter_map(|open| {
            let similarity = match (vector, open.vector.as_deref()) {
                (Some(a), Some(b)) if a.len() == b.len() => Some(dot(a, b)),
                _ => None,
            };
            let shared: Vec<String> = open
                .entities
                .iter()
                .filter(|entity| entities.contains(entity))
                .cloned()
                .collect();
            let by_meaning = similarity.is_some_and(|s| s >= relatedness.meaning);
            let by_entity =
                !shared.is_empty() && similarity.is_none_or(|s| s >= relatedness.with_entity);
            (by_meaning || by_entity).then(|| RelatedTicket {
                ticket_id: open.ticket_id.clone(),
                subject: open.subject.clone(),
                received_at: open.received_at,
                similarity: similarity.map(|s| (f64::from(s) * 1000.0).round() / 1000.0),
                shared_entities: shared,
            })
        })
        .collect();
    related.sort_by(|a, b| {
        let key = |r: &RelatedTicket| (r.shared_entities.len(), r.similarity.unwrap_or(0.0));
        let (a_shared, a_sim) = key(a);
        let (b_shared, b_sim) = key(b);
        b_sim
            .total_cmp(&a_sim)
            .then(b_shared.cmp(&a_shared))
            .then(b.received_at.cmp(&a.received_at))
    });
    related.truncate(MAX_RELATED);
    related
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Reads the tenant's window of `window_minutes` before the ticket, enters
/// the ticket into it, and relates the two: by meaning at the thresholds of
/// the vector's model in a tenant with `embeddings`
/// ([`Relatedness::for_model`]), or, where that model has none, by the
/// names they share alone.
pub async fn related_open(
    db: &Pool,
    tenant: &TenantId,
    ticket: NewOpenTicket<'_>,
    window_minutes: u32,
    related: &Related,
    embeddings: &aia_store::EmbeddingSettings,
) -> Result<Vec<RelatedTicket>, SourceError> {
    let relatedness = ticket
        .vector
        .and_then(|(model, _)| Relatedness::for_model(embeddings, model));
    let since = ticket.received_at - chrono::Duration::minutes(i64::from(window_minutes));
    let mut client = db.get().await.map_err(StoreError::from)?;
    let window = open_tickets::window_and_record(
        &mut client,
        &related.windows,
        tenant,
        since,
        ticket,
        related.record,
    )
    .await?;
    // The vector is entered into the window either way (a calibration
    // added later applies to it); without one, cosines of this model mean
    // nothing known.
    let vector = ticket
        .vector
        .map(|(_, vector)| vector)
        .filter(|_| relatedness.is_some());
    Ok(relate(
        vector,
        ticket.entities,
        &window,
        relatedness.unwrap_or(DEFAULT),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::TicketId;
    use chrono::Utc;

    fn open(id: &str, vector: Option<Vec<f32>>, entities: &[&str]) -> Arc<OpenTicket> {
        Arc::new(OpenTicket {
            ticket_id: TicketId::parse(id).unwrap(),
            subject: None,
            received_at: Utc::now(),
            entities: entities.iter().map(|e| (*e).to_owned()).collect(),
            vector,
        })
    }

    fn unit(x: f32) -> Vec<f32> {
        vec![x, (1.0 - x * x).sqrt()]
    }

    #[test]
    fn an_endpoint_model_relates_by_meaning_only_where_the_tenant_calibrated_it() {
        let local = aia_store::EmbeddingSettings::Local;
        assert_eq!(
            Relatedness::for_model(&local, aia_store::LOCAL_EMBEDDING_MODEL),
            Some(DEFAULT)
        );
        assert_eq!(Relatedness::for_model(&local, "other-model"), None);
        let e5 = "multilingual-e5-small-q4";
        let mut endpoint = aia_store::EmbeddingEndpointSettings::openai(
            "e5",
            "http://e5.internal:8090/v1",
            "multilingual-e5-small-q4",
        );
        assert_eq!(
            Relatedness::for_model(
                &aia_store::EmbeddingSettings::Endpoint(endpoint.clone()),
                e5
            ),
            None
        );
        endpoint.incidents = Some(aia_store::IncidentCalibration {
            related: 0.9,
            related_with_entity: 0.87,
            link: 0.86,
            centroid: 0.88,
            join: 0.9,
            join_step: 0.0,
            entity_bonus: 0.0,
            join_decay: 0.0,
        });
        let calibrated = aia_store::EmbeddingSettings::Endpoint(endpoint);
        assert_eq!(Relatedness::for_model(&calibrated, "other-model"), None);
        assert_eq!(
            Relatedness::for_model(&calibrated, e5),
            Some(Relatedness {
                meaning: 0.9,
                with_entity: 0.87,
            })
        );
    }

    #[test]
    fn meaning_alone_relates_above_its_threshold_and_a_shared_name_needs_some_meaning() {
        let query = [1.0, 0.0];
        let window = [
            open("close", Some(unit(0.8)), &[]),
            open("far", Some(unit(0.2)), &[]),
            open("shares-host", Some(unit(0.4)), &["fs01"]),
            open("shares-host-but-unlike", Some(unit(0.1)), &["fs01"]),
            open("no-vector-shares-host", None, &["fs01"]),
        ];
        let related = relate(
            Some(&query),
            &["fs01".to_owned()],
            &window,
            Relatedness {
                meaning: 0.55,
                with_entity: 0.35,
            },
        );
        let ids: Vec<&str> = related.iter().map(|r| r.ticket_id.as_str()).collect();
        assert_eq!(ids, ["close", "shares-host", "no-vector-shares-host"]);
        assert_eq!(related[1].shared_entities, ["fs01"]);
        assert_eq!(related[0].similarity, Some(0.8));
        assert_eq!(related[2].similarity, None);
    }

    #[test]
    fn addresses_every_network_has_are_not_entities() {
        let mentions = crate::extract::mentions(
            "no internet: ping 8.8.8.8 fails, gateway 192.168.1.1, mask 255.255.255.0, \
             127.0.0.1 answers, got 169.254.12.7, server 10.14.2.20 and 2001:db8::20 down, fe80::1",
        );
        assert_eq!(entities(&mentions, &[]), ["10.14.2.20", "2001:db8::20"]);
    }

    #[test]
    fn entities_are_addresses_and_what_the_inventory_knows_not_look_alike_words() {
        let mentions = crate::extract::mentions("wi-fi drops near 10.0.0.7 and on fs01");
        let systems = [SystemInfo {
            matched: "fs01".into(),
            hostname: Some("FS01".into()),
            address: Some("10.0.0.9".into()),
            role: None,
            client: None,
            location: Some("Leeds".into()),
        }];
        assert_eq!(
            entities(&mentions, &systems),
            ["10.0.0.7", "10.0.0.9", "fs01", "site:Leeds"]
        );
    }
}
