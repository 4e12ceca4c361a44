//! The figures behind the console's charts: tickets, notes, success rate
//! and webhook → note latency per bucket (an hour over a day, six hours
//! over a week) with the period before; each stage's lag from the minute
//! samples of [`super::lag`]; a tenant's time in each stage; LLM spend over
//! the budget period against the budget.
//!
//! One grouped query per chart family: across tenants an index-only scan
//! of `(received_at) include (status, processing_ms)`; for one tenant its
//! own index and its rows (the stage times are not in an index).

use aia_store::{Pool, StoreError};
use chrono::{DateTime, Duration, DurationRound as _, NaiveDate, Utc};
use std::collections::HashMap;

use super::charts::{Chart, Series, Style};

/// The span a chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    #[default]
    Day,
    Week,
}

impl Period {
    /// From the page's `?period=` (anything else is the day).
    pub fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("7d") => Self::Week,
            _ => Self::Day,
        }
    }

    pub fn as_query(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Day => "the last 24 hours",
            Self::Week => "the last 7 days",
        }
    }

    fn bucket(self) -> Duration {
        match self {
            Self::Day => Duration::hours(1),
            Self::Week => Duration::hours(6),
        }
    }

    fn buckets(self) -> usize {
        match self {
            Self::Day => 24,
            Self::Week => 28,
        }
    }

    fn per(self) -> &'static str {
        match self {
            Self::Day => "per hour",
            Self::Week => "per 6 hours",
        }
    }

    fn previous(self) -> &'static str {
        match self {
            Self::Day => "the 24 hours before",
            Self::Week => "the 7 days before",
        }
    }

    fn label(self, at: DateTime<Utc>) -> String {
        match self {
            Self::Day => at.format("%H:%M").to_string(),
            Self::Week => at.format("%a %d %H:%M").to_string(),
        }
    }
}

/// The buckets of a period and the one before it, ending with the bucket
/// that holds `now`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub period: Period,
    /// Start of the first bucket of the previous period.
    pub origin: DateTime<Utc>,
    /// End of the current bucket.
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn ending(period: Period, now: DateTime<Utc>) -> Self {
        let bucket = period.bucket();
        let end = now.duration_trunc(bucket).unwrap_or(now) + bucket;
        let origin = end - bucket * (2 * period.buckets()) as i32;
        Self {
            period,
            origin,
            end,
        }
    }

    /// Index (0 .. 2 × buckets) of the bucket starting at `at`.
    fn index(&self, at: DateTime<Utc>) -> Option<usize> {
        let offset = (at - self.origin).num_seconds();
        let size = self.period.bucket().num_seconds();
        (offset >= 0)
            .then(|| (offset / size) as usize)
            .filter(|index| *index < 2 * self.period.buckets())
    }

    fn labels(&self) -> Vec<String> {
        let n = self.period.buckets();
        (n..2 * n)
            .map(|index| {
                self.period
                    .label(self.origin + self.period.bucket() * index as i32)
            })
            .collect()
    }

    /// The bucket's length in seconds, for `date_bin`.
    fn interval(&self) -> i64 {
        self.period.bucket().num_seconds()
    }

    /// Splits `2 × buckets` values into (current, previous).
    fn halves(&self, values: Vec<Option<f64>>) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
        let n = self.period.buckets();
        (values[n..].to_vec(), values[..n].to_vec())
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    received: i64,
    completed: i64,
    failed: i64,
    p50: Option<f64>,
    p95: Option<f64>,
    context_p95: Option<f64>,
    llm_p95: Option<f64>,
    writeback_p95: Option<f64>,
}

/// The bucket ($1 the origin, $3 its length in seconds), its runs, those
/// that got a note and those that failed (a raw-context note over budget
/// is a note; one that failed to post, a failure), and the completed
/// runs' p50 and p95.
fn run_figures() -> String {
    format!(
        "date_bin($3::int8 * interval '1 second', received_at, $1), count(*),
    count(*) filter (where {noted}),
    count(*) filter (where {dead}),
    percentile_cont(0.5) within group (order by processing_ms) filter (where status = 'completed'),
    percentile_cont(0.95) within group (order by processing_ms) filter (where status = 'completed')",
        noted = aia_ops::dead_letters::NOTED,
        dead = aia_ops::dead_letters::DEAD,
    )
}

/// Runs per bucket, across tenants or for one.
async fn buckets(
    admin: &Pool,
    window: &Window,
    tenant: Option<&str>,
) -> Result<Vec<Bucket>, StoreError> {
    let client = admin.get().await?;
    let figures = run_figures();
    // Each query is written whole, so the planner picks the index that
    // fits: received_at across tenants, the tenant's own for one.
    let rows = match tenant {
        None => {
            client
                .query(
                    &format!(
                        "select {figures}, null::float8, null::float8, null::float8
                           from enhancement_history
                          where received_at >= $1 and received_at < $2
                          group by 1"
                    ),
                    &[&window.origin, &window.end, &window.interval()],
                )
                .await?
        }
        Some(tenant) => {
            client
                .query(
                    &format!(
                        "select {figures},
                                percentile_cont(0.95) within group (order by context_ms),
                                percentile_cont(0.95) within group (order by llm_ms),
                                percentile_cont(0.95) within group (order by writeback_ms)
                           from enhancement_history
                          where tenant_id = $4 and received_at >= $1 and received_at < $2
                          group by 1"
                    ),
                    &[&window.origin, &window.end, &window.interval(), &tenant],
                )
                .await?
        }
    };
    let mut out = vec![Bucket::default(); 2 * window.period.buckets()];
    for row in rows {
        let Some(index) = window.index(row.get(0)) else {
            continue;
        };
        out[index] = Bucket {
            received: row.get(1),
            completed: row.get(2),
            failed: row.get(3),
            p50: row.get(4),
            p95: row.get(5),
            context_p95: row.get(6),
            llm_p95: row.get(7),
            writeback_p95: row.get(8),
        };
    }
    Ok(out)
}

/// A chart of one figure, the current period against the previous one.
fn versus(window: &Window, id: &str, title: &str, unit: &str, values: Vec<Option<f64>>) -> Chart {
    let (current, previous) = window.halves(values);
    Chart {
        id: id.into(),
        title: title.into(),
        unit: unit.into(),
        buckets: window.labels(),
        series: vec![
            Series {
                label: window.period.describe().into(),
                style: Style::Current,
                values: current,
            },
            Series {
                label: window.period.previous().into(),
                style: Style::Previous,
                values: previous,
            },
        ],
    }
}

/// Tickets and notes, success rate, latency; for a tenant also the time
/// in each stage.
pub async fn runs(
    admin: &Pool,
    window: &Window,
    tenant: Option<&str>,
) -> Result<Vec<Chart>, StoreError> {
    let data = buckets(admin, window, tenant).await?;
    let per = window.period.per();
    let map = |f: &dyn Fn(&Bucket) -> Option<f64>| data.iter().map(f).collect::<Vec<_>>();
    let (received, received_before) = window.halves(map(&|b| Some(b.received as f64)));
    let (notes, _) = window.halves(map(&|b| Some(b.completed as f64)));
    let (p95, p95_before) = window.halves(map(&|b| b.p95));
    let (p50, _) = window.halves(map(&|b| b.p50));
    let mut charts = vec![
        Chart {
            id: "tickets".into(),
            title: "Tickets received and notes written".into(),
            unit: format!("tickets {per}, by when received"),
            buckets: window.labels(),
            series: vec![
                Series {
                    label: "received".into(),
                    style: Style::Current,
                    values: received,
                },
                Series {
                    label: "notes written".into(),
                    style: Style::Second,
                    values: notes,
                },
                Series {
                    label: format!("received, {}", window.period.previous()),
                    style: Style::Previous,
                    values: received_before,
                },
            ],
        },
        versus(
            window,
            "success",
            "Success rate",
            "% of finished tickets that got a note",
            map(&|b| {
                let finished = b.completed + b.failed;
                (finished > 0).then(|| 100.0 * b.completed as f64 / finished as f64)
            }),
        ),
        Chart {
            id: "latency".into(),
            title: "Webhook → note".into(),
            unit: "milliseconds".into(),
            buckets: window.labels(),
            series: vec![
                Series {
                    label: "p95".into(),
                    style: Style::Current,
                    values: p95,
                },
                Series {
                    label: "p50".into(),
                    style: Style::Second,
                    values: p50,
                },
                Series {
                    label: format!("p95, {}", window.period.previous()),
                    style: Style::Previous,
                    values: p95_before,
                },
            ],
        },
    ];
    if tenant.is_some() {
        for (id, stage, pick) in [
            (
                "stage-context",
                "context",
                (|b: &Bucket| b.context_p95) as fn(&Bucket) -> _,
            ),
            ("stage-llm", "LLM", |b: &Bucket| b.llm_p95),
            ("stage-writeback", "write-back", |b: &Bucket| {
                b.writeback_p95
            }),
        ] {
            charts.push(versus(
                window,
                id,
                &format!("Time in {stage} (p95, waits included)"),
                "milliseconds",
                map(&pick),
            ));
        }
    }
    Ok(charts)
}

/// Each stage consumer's lag: the most events waiting in any minute of the
/// bucket.
pub async fn lag(admin: &Pool, window: &Window, stages: &[&str]) -> Result<Vec<Chart>, StoreError> {
    let client = admin.get().await?;
    let rows = client
        .query(
            "select consumer, date_bin($3::int8 * interval '1 second', sampled_at, $1), max(pending)::float8
               from stage_lag_samples
              where sampled_at >= $1 and sampled_at < $2
              group by 1, 2",
            &[&window.origin, &window.end, &window.interval()],
        )
        .await?;
    let mut values: HashMap<String, Vec<Option<f64>>> = HashMap::new();
    for row in rows {
        let consumer: String = row.get(0);
        if let Some(index) = window.index(row.get(1)) {
            values
                .entry(consumer)
                .or_insert_with(|| vec![None; 2 * window.period.buckets()])[index] =
                Some(row.get(2));
        }
    }
    Ok(stages
        .iter()
        .map(|stage| {
            versus(
                window,
                &format!("lag-{stage}"),
                &format!("{stage}: waiting events (lag)"),
                "most events waiting in a minute",
                values
                    .remove(*stage)
                    .unwrap_or_else(|| vec![None; 2 * window.period.buckets()]),
            )
        })
        .collect())
}

/// A tenant's budget, as its settings give it.
#[derive(Debug, Clone)]
pub struct BudgetLine {
    pub tenant_id: String,
    pub budget_usd: Option<f64>,
    pub period_days: u32,
}

/// LLM spend over each tenant's current budget period, summed day by day,
/// against its budget; the previous period faint.
pub async fn spend(
    admin: &Pool,
    today: NaiveDate,
    tenants: &[BudgetLine],
) -> Result<Vec<Chart>, StoreError> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    let longest = tenants
        .iter()
        .map(|t| t.period_days.max(1))
        .max()
        .unwrap_or(30);
    let since = today - chrono::Days::new(u64::from(2 * longest));
    let ids: Vec<&str> = tenants.iter().map(|t| t.tenant_id.as_str()).collect();
    let client = admin.get().await?;
    let rows = client
        .query(
            "select tenant_id, day, cost_usd from tenant_daily_stats
              where tenant_id = any($1) and day >= $2",
            &[&ids, &since],
        )
        .await?;
    let mut daily: HashMap<(String, NaiveDate), f64> = HashMap::new();
    for row in rows {
        daily.insert((row.get(0), row.get(1)), row.get(2));
    }
    Ok(tenants
        .iter()
        .map(|tenant| spend_chart(tenant, today, &daily))
        .collect())
}

fn spend_chart(
    tenant: &BudgetLine,
    today: NaiveDate,
    daily: &HashMap<(String, NaiveDate), f64>,
) -> Chart {
    let days = tenant.period_days.max(1);
    let start = aia_llm::budget::period_start(today, days);
    let before = start - chrono::Days::new(u64::from(days));
    let cumulative = |from: NaiveDate, until: NaiveDate| {
        let mut sum = 0.0;
        (0..days)
            .map(|offset| {
                let day = from + chrono::Days::new(u64::from(offset));
                (day <= until).then(|| {
                    sum += daily
                        .get(&(tenant.tenant_id.clone(), day))
                        .copied()
                        .unwrap_or(0.0);
                    sum
                })
            })
            .collect::<Vec<_>>()
    };
    let mut series = vec![
        Series {
            label: format!("spent this period (from {start})"),
            style: Style::Current,
            values: cumulative(start, today),
        },
        Series {
            label: "the period before".into(),
            style: Style::Previous,
            values: cumulative(before, start - chrono::Days::new(1)),
        },
    ];
    if let Some(budget) = tenant.budget_usd {
        series.push(Series {
            label: format!("budget ({budget:.2} USD)"),
            style: Style::Limit,
            values: vec![Some(budget); days as usize],
        });
    }
    Chart {
        id: format!("spend-{}", tenant.tenant_id),
        title: format!("LLM spend of {}", tenant.tenant_id),
        unit: format!("USD, summed over the {days}-day budget period"),
        buckets: (0..days)
            .map(|offset| (start + chrono::Days::new(u64::from(offset))).to_string())
            .collect(),
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn a_window_ends_with_the_bucket_holding_now_and_covers_two_periods() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 9, 41, 7).unwrap();
        let day = Window::ending(Period::Day, now);
        assert_eq!(
            day.end,
            Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap()
        );
        assert_eq!(
            day.origin,
            Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
        );
        assert_eq!(day.index(day.origin), Some(0));
        assert_eq!(
            day.index(Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap()),
            Some(47)
        );
        assert_eq!(day.index(day.end), None);
        assert_eq!(day.labels().first().map(String::as_str), Some("10:00"));
        assert_eq!(day.labels().last().map(String::as_str), Some("09:00"));

        let week = Window::ending(Period::Week, now);
        assert_eq!(
            week.end,
            Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
        );
        assert_eq!(week.end - week.origin, Duration::days(14));
        assert_eq!(week.labels().len(), 28);
    }

    #[test]
    fn spend_is_summed_over_the_current_period_and_stops_today() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let tenant = BudgetLine {
            tenant_id: "acme".into(),
            budget_usd: Some(10.0),
            period_days: 7,
        };
        let start = aia_llm::budget::period_start(today, 7);
        let mut daily = HashMap::new();
        daily.insert(("acme".to_owned(), start), 1.5);
        daily.insert(("acme".to_owned(), today), 2.0);
        daily.insert(("other".to_owned(), today), 99.0);
        daily.insert(("acme".to_owned(), start - chrono::Days::new(1)), 4.0);
        let chart = spend_chart(&tenant, today, &daily);
        let current = &chart.series[0].values;
        let elapsed = (today - start).num_days() as usize;
        assert_eq!(current[0], Some(1.5));
        assert_eq!(
            current[elapsed],
            Some(3.5),
            "another tenant's spend is not summed"
        );
        assert!(current[elapsed + 1..].iter().all(Option::is_none));
        assert_eq!(chart.series[1].values[6], Some(4.0));
        assert_eq!(chart.series[2].values, vec![Some(10.0); 7]);
    }
}
