//! What the dashboard shows: health of NATS, PostgreSQL and every stage's
//! consumer, the last 24 hours across tenants, charts of the day or the
//! week against the period before (see [`super::trends`]), the open
//! incidents, the newest failures and the tenants' LLM spend against their
//! budgets. Each figure comes from an index or JetStream's own counters,
//! so the page stays fast however long the history is.

use aia_bus::STREAM;
use aia_store::Pool;

use super::Operator;
use super::charts::Chart;
use super::trends::{self, BudgetLine, Period, Window};
use super::views::{Dashboard, Failure, OpenIncident, Spend, StageHealth};
use crate::routes::AppState;

/// The durable consumers shown, in pipeline order.
const CONSUMERS: &[&str] = aia_ops::pause::STAGES;

pub async fn gather(state: &AppState, operator: Operator, period: Period) -> Dashboard {
    let admin = &state.tenants.admin;
    let window = Window::ending(period, chrono::Utc::now());
    let (stages, database, runs, lag, incidents) = tokio::join!(
        stages(state),
        database(admin),
        trends::runs(admin, &window, None),
        trends::lag(admin, &window, CONSUMERS),
        open_incidents(admin),
    );
    let nats_ok = stages.iter().any(|stage| stage.error.is_none());
    let database_ok = database.is_ok();
    let figures = database.unwrap_or_else(|err| {
        tracing::error!(error = %err, "Dashboard figures unavailable");
        Figures::default()
    });
    let charted = |charts: Result<Vec<Chart>, aia_store::StoreError>| {
        charts.unwrap_or_else(|err| {
            tracing::error!(error = %err, "Dashboard charts unavailable");
            Vec::new()
        })
    };
    let budgets: Vec<BudgetLine> = figures
        .spend
        .iter()
        .take(5)
        .map(|spend| BudgetLine {
            tenant_id: spend.tenant_id.clone(),
            budget_usd: spend.budget_usd,
            period_days: spend.period_days,
        })
        .collect();
    let spend_charts =
        charted(trends::spend(admin, chrono::Utc::now().date_naive(), &budgets).await);
    let finished = figures.completed + figures.failed;
    Dashboard {
        operator: Some(operator),
        nats_ok,
        database_ok,
        stages,
        received: figures.received,
        completed: figures.completed,
        failed: figures.failed,
        success_rate: if finished > 0 {
            format!(
                "{:.1} %",
                100.0 * figures.completed as f64 / finished as f64
            )
        } else {
            "—".into()
        },
        p95_ms: figures
            .p95_ms
            .map(|ms| format!("{ms:.0} ms"))
            .unwrap_or_else(|| "—".into()),
        per_minute: format!("{:.1} tickets/min", figures.received as f64 / (24.0 * 60.0)),
        failures: figures.failures,
        spend: figures.spend,
        period,
        charts: charted(runs),
        lag: charted(lag),
        spend_charts,
        incidents: incidents.unwrap_or_else(|err| {
            tracing::error!(error = %err, "Open incidents unavailable");
            Vec::new()
        }),
    }
}

/// The live incidents, newest first, with their first tickets.
async fn open_incidents(admin: &Pool) -> Result<Vec<OpenIncident>, aia_store::StoreError> {
    let client = admin.get().await?;
    let rows = client
        .query(
            "select i.tenant_id, i.incident_id, i.status, i.summary, i.first_ticket_at,
                    array(select t.ticket_id from incident_tickets t
                           where t.tenant_id = i.tenant_id and t.incident_id = i.incident_id
                           order by t.received_at, t.ticket_id limit 8),
                    (select count(*) from incident_tickets t
                      where t.tenant_id = i.tenant_id and t.incident_id = i.incident_id)
               from incidents i where i.status <> 'ended'
              order by i.detected_at desc limit 10",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| OpenIncident {
            tenant_id: row.get(0),
            incident_id: row.get(1),
            status: row.get(2),
            summary: row.get(3),
            first_ticket_at: row
                .get::<_, chrono::DateTime<chrono::Utc>>(4)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            tickets: row.get(5),
            count: row.get(6),
        })
        .collect())
}

async fn stages(state: &AppState) -> Vec<StageHealth> {
    let unavailable = |name: &str, error: String| StageHealth {
        name: name.into(),
        pending: 0,
        in_flight: 0,
        waiting_pulls: 0,
        redelivered: 0,
        paused: false,
        error: Some(error),
    };
    let Some(jetstream) = &state.jetstream else {
        return CONSUMERS
            .iter()
            .map(|name| unavailable(name, "NATS is not configured".into()))
            .collect();
    };
    let stream = match jetstream.get_stream(STREAM).await {
        Ok(stream) => stream,
        Err(err) => {
            return CONSUMERS
                .iter()
                .map(|name| unavailable(name, format!("stream {STREAM}: {err}")))
                .collect();
        }
    };
    // One request per consumer, all at once.
    let infos =
        futures::future::join_all(CONSUMERS.iter().map(|name| stream.consumer_info(name))).await;
    CONSUMERS
        .iter()
        .zip(infos)
        .map(|(name, info)| match info {
            Ok(info) => StageHealth {
                name: (*name).into(),
                pending: info.num_pending,
                in_flight: info.num_ack_pending as u64,
                waiting_pulls: info.num_waiting,
                redelivered: info.num_redelivered as u64,
                paused: info.paused,
                error: None,
            },
            Err(err) => unavailable(name, err.to_string()),
        })
        .collect()
}

#[derive(Default)]
struct Figures {
    received: i64,
    completed: i64,
    failed: i64,
    p95_ms: Option<f64>,
    failures: Vec<Failure>,
    spend: Vec<Spend>,
}

async fn database(admin: &Pool) -> Result<Figures, aia_store::StoreError> {
    let client = admin.get().await?;
    // A ticket over its tenant's budget that got its raw-context note got
    // a note; one whose note failed is a failure, as a dead letter is.
    let figures = format!(
        "select count(*),
                count(*) filter (where {noted}),
                count(*) filter (where {dead}),
                percentile_cont(0.95) within group (order by processing_ms)
                  filter (where status = 'completed')
           from enhancement_history where received_at > now() - interval '24 hours'",
        noted = aia_ops::dead_letters::NOTED,
        dead = aia_ops::dead_letters::DEAD,
    );
    let day = client.query_one(&figures, &[]);
    let failures = client.query(
        "select failed_at, tenant_id, ticket_id, coalesce(failed_stage, ''), coalesce(error, '')
           from enhancement_history
         where status in ('failed', 'failed_budget') and failed_at is not null
         order by failed_at desc limit 10",
        &[],
    );
    // Each tenant's spend in its current budget period (UTC days from the
    // epoch, as the budget counts them): the budget's own ledger, settled
    // and reserved, or before its first claim the projected spend since
    // the period began. A share of 30 days' spend against one period's
    // budget read 340 % for a tenant on a weekly budget within it.
    let spend = client.query(
        "select tenant_id, spent, budget, days from (
           select p.tenant_id, p.budget, p.days,
                  coalesce((select l.spent_usd from llm_budget_periods l
                             where l.tenant_id = p.tenant_id and l.period_start = p.start),
                           (select sum(s.cost_usd) from tenant_daily_stats s
                             where s.tenant_id = p.tenant_id and s.day >= p.start),
                           0)::float8 as spent
             from (select t.tenant_id, (t.settings ->> 'llm_budget_usd')::float8 as budget, d.days,
                          date '1970-01-01'
                            + (((now() at time zone 'utc')::date - date '1970-01-01') / d.days) * d.days
                            as start
                     from tenants t,
                          lateral (select greatest(coalesce(
                                     (t.settings ->> 'llm_budget_period_days')::int4, 30), 1) as days) d
                    where t.deleted_at is null) p) spent
          where spent > 0
          order by spent desc limit 10",
        &[],
    );
    let (day, failures, spend) = tokio::try_join!(day, failures, spend)?;
    Ok(Figures {
        received: day.get(0),
        completed: day.get(1),
        failed: day.get(2),
        p95_ms: day.get(3),
        failures: failures
            .iter()
            .map(|row| Failure {
                failed_at: row
                    .get::<_, Option<chrono::DateTime<chrono::Utc>>>(0)
                    .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
                tenant_id: row.get(1),
                ticket_id: row.get(2),
                stage: row.get(3),
                reason: row.get(4),
            })
            .collect(),
        spend: spend
            .iter()
            .map(|row| Spend {
                tenant_id: row.get(0),
                spent_usd: row.get(1),
                budget_usd: row.get(2),
                period_days: u32::try_from(row.get::<_, i32>(3)).unwrap_or(30),
            })
            .collect(),
    })
}
