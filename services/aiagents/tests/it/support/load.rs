//! The load side of the chaos tests: a driver sending tickets at a steady
//! rate across the tenants, random SIGKILLs of stage instances, and the
//! figures a run reports (redeliveries, webhook → note latencies).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiagents::dataset::Query;
use aiagents::webhook;

use super::{Instance, Servers, signal, spawn};

/// A whole-number setting from the environment (`just chaos` passes the
/// full run's sizes), or its default (the suite's small run).
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When each ticket was first sent, by ticket id.
pub type SentAt = Arc<Mutex<HashMap<String, Instant>>>;

/// Sends `tickets` ServiceDesk Plus webhooks at `per_second`, round-robin
/// over the tenants (`secrets[n % len]` for `tenant-{n % len}`), each until
/// the ingress takes it. `before_ticket(n)` runs before ticket `n` is sent,
/// so that a test can change the far ends at a point of the load rather
/// than of the clock.
pub fn drive(
    tickets: usize,
    per_second: u64,
    prefix: &'static str,
    secrets: Vec<String>,
    ingress_url: String,
    mut before_ticket: impl FnMut(usize) + Send + 'static,
) -> (tokio::task::JoinHandle<()>, SentAt) {
    let sent_at: SentAt = Default::default();
    let task = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let started = Instant::now();
            let n_tenants = secrets.len();
            for n in 0..tickets {
                let due = started + Duration::from_secs(n as u64) / per_second.max(1) as u32;
                tokio::time::sleep_until(due.into()).await;
                before_ticket(n);
                let tenant = n % n_tenants;
                let query = Query {
                    tenant_id: format!("tenant-{tenant}"),
                    ticket_id: format!("{prefix}{tenant}-{n}"),
                    subject: Some(format!("Chaos ticket {n}")),
                    description: "The VPN drops every few minutes.".into(),
                    priority: "high".into(),
                    relevant: vec![],
                    language: None,
                };
                let body = webhook::servicedesk_body(&query);
                sent_at
                    .lock()
                    .unwrap()
                    .insert(query.ticket_id.clone(), Instant::now());
                super::send_until_accepted(&http, &ingress_url, &secrets[tenant], body).await;
            }
        })
    };
    (task, sent_at)
}

/// A small xorshift: the same victims in every run of a test.
pub struct Victims(u64);

impl Default for Victims {
    fn default() -> Self {
        Self(0x9e37_79b9)
    }
}

impl Victims {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// SIGKILLs one random instance and starts its service again.
    pub fn kill_one(&mut self, instances: &mut [Instance], servers: &Servers) {
        let victim = self.below(instances.len());
        // A process that exited by itself is a failure, not a victim.
        assert!(
            instances[victim].child.try_wait().unwrap().is_none(),
            "a {} instance exited by itself",
            instances[victim].service
        );
        signal(&instances[victim], "-KILL");
        let _ = instances[victim].child.wait();
        instances[victim] = spawn(instances[victim].service, servers);
    }
}

/// Redeliveries counted by the instances alive now (a killed instance's
/// counters die with it).
pub async fn redeliveries(instances: &[Instance]) -> u64 {
    let http = reqwest::Client::new();
    let mut total = 0;
    for instance in instances {
        if let Some(text) = super::metrics(&http, instance.metrics).await {
            total += text
                .lines()
                .filter(|line| line.starts_with("stage_redeliveries_total"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64;
        }
    }
    total
}

/// Webhook → note of every written-back run (`processing_ms`), sorted.
pub async fn latencies(owner: &tokio_postgres::Client) -> Vec<f64> {
    let mut latencies: Vec<f64> = owner
        .query(
            "select processing_ms::float8 from enhancement_history where status = 'completed' and processing_ms is not null",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, f64>(0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// Tickets per second from the first webhook to `finished`.
pub fn throughput(sent_at: &SentAt, finished: Instant) -> f64 {
    let sent = sent_at.lock().unwrap();
    let elapsed = sent
        .values()
        .min()
        .map(|first| finished - *first)
        .unwrap_or_default();
    sent.len() as f64 / elapsed.as_secs_f64()
}
