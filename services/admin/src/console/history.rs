//! The enhancement history as operators search it: filtered by tenant,
//! status, date range and ticket id, newest first, paged by keyset (the
//! last row's `(received_at, correlation_id)`), so page 1,000 costs what
//! page 1 does; and the same filter exported as CSV, streamed row by row.

use aia_store::{Pool, StoreError, ToSql};
use bytes::Bytes;
use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use uuid::Uuid;

/// Rows per page.
pub const PAGE: i64 = 50;

/// The filter, as the page's form and the CSV link carry it.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub status: String,
    /// First day included (YYYY-MM-DD, UTC).
    #[serde(default)]
    pub from: String,
    /// Last day included.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub ticket: String,
    /// The keyset cursor: `<received_at RFC 3339>_<correlation id>`.
    #[serde(default)]
    pub after: String,
}

pub const STATUSES: &[&str] = &[
    "received",
    "context_gathered",
    "enhanced",
    "completed",
    "failed",
    "failed_budget",
];

/// One run as the history lists it.
#[derive(Debug)]
pub struct Run {
    pub tenant_id: String,
    pub correlation_id: Uuid,
    pub ticket_id: String,
    pub status: String,
    pub subject: Option<String>,
    pub received_at: DateTime<Utc>,
    pub written_back_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub processing_ms: Option<i64>,
    pub context_ms: Option<i64>,
    pub llm_ms: Option<i64>,
    pub writeback_ms: Option<i64>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
    pub cost_usd: Option<f64>,
    pub degraded: Option<bool>,
    pub failed_stage: Option<String>,
    pub error: Option<String>,
    pub context_summary: Option<String>,
    /// The context as gathered (similar tickets, articles, systems,
    /// monitoring, each source's report), pretty-printed; pages only.
    pub context: Option<String>,
    pub note_markdown: Option<String>,
    /// The note as write-back handed it to the help desk.
    pub posted_markdown: Option<String>,
    /// The context as lists a person can judge; pages only.
    pub context_view: Option<super::run_view::ContextView>,
    /// The note rendered as the tenant's help desk shows it; pages only.
    pub as_posted: Option<super::run_view::AsPosted>,
}

impl Run {
    pub fn cursor(&self) -> String {
        format!(
            "{}_{}",
            self.received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.correlation_id
        )
    }
}

const COLUMNS: &str = "tenant_id, correlation_id, ticket_id, status, subject, received_at, written_back_at,
    failed_at, processing_ms, context_ms, llm_ms, writeback_ms, provider, model, tokens_in, tokens_out,
    cost_usd, degraded, failed_stage, error, context_summary, note_markdown, posted_markdown";

/// What a filter asks of the database, checked.
struct Bound {
    tenant: Option<String>,
    status: Option<String>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    ticket: Option<String>,
    after: Option<(DateTime<Utc>, Uuid)>,
}

fn some(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}

fn day(text: &str, name: &str) -> Result<Option<NaiveDate>, String> {
    some(text)
        .map(|text| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                // Runs are of this era: a year past 9999 (which chrono reads)
                // would overflow the day after it, one before 1970 the
                // database's timestamps.
                .filter(|date| (1970..=9999).contains(&date.year()))
                .ok_or_else(|| format!("{name}: expected a date as YYYY-MM-DD, got {text:?}"))
        })
        .transpose()
}

impl Filter {
    fn bind(&self) -> Result<Bound, String> {
        let status = some(&self.status);
        if let Some(status) = &status
            && !STATUSES.contains(&status.as_str())
        {
            return Err(format!("unknown status {status:?}"));
        }
        let midnight = |date: NaiveDate| date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let after = some(&self.after)
            .map(|cursor| {
                let (at, id) = cursor.split_once('_').ok_or("a malformed page cursor")?;
                Ok::<_, String>((
                    DateTime::parse_from_rfc3339(at)
                        .map_err(|_| "a malformed page cursor")?
                        .with_timezone(&Utc),
                    Uuid::parse_str(id).map_err(|_| "a malformed page cursor")?,
                ))
            })
            .transpose()?;
        Ok(Bound {
            tenant: some(&self.tenant),
            status,
            from: day(&self.from, "from")?.map(midnight),
            until: day(&self.to, "to")?.map(|date| midnight(date + chrono::Days::new(1))),
            ticket: some(&self.ticket),
            after,
        })
    }

    /// The filter as a query string, without the cursor.
    pub fn query(&self) -> String {
        let pairs = [
            ("tenant", &self.tenant),
            ("status", &self.status),
            ("from", &self.from),
            ("to", &self.to),
            ("ticket", &self.ticket),
        ];
        pairs
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}={}", super::url_escape(value.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }
}

const WHERE: &str = "received_at is not null
    and ($1::text is null or tenant_id = $1)
    and ($2::text is null or status = $2)
    and ($3::timestamptz is null or received_at >= $3)
    and ($4::timestamptz is null or received_at < $4)
    and ($5::text is null or ticket_id = $5)
    and ($6::timestamptz is null or (received_at, correlation_id) < ($6, $7))";

/// A page of runs, and the cursor of the next page if there is one.
/// `Err(String)` is a filter the operator must correct.
pub async fn page(
    admin: &Pool,
    filter: &Filter,
) -> Result<Result<(Vec<Run>, Option<String>), String>, StoreError> {
    let bound = match filter.bind() {
        Ok(bound) => bound,
        Err(message) => return Ok(Err(message)),
    };
    let client = admin.get().await?;
    let (after_at, after_id) = bound.after.unzip();
    let limit = PAGE + 1;
    let rows = client
        .query(
            &format!(
                "select {COLUMNS}, context from enhancement_history where {WHERE}
                  order by received_at desc, correlation_id desc limit $8"
            ),
            &[
                &bound.tenant,
                &bound.status,
                &bound.from,
                &bound.until,
                &bound.ticket,
                &after_at,
                &after_id,
                &limit,
            ],
        )
        .await?;
    let mut runs: Vec<Run> = rows.iter().map(run_from).collect();
    let next = if runs.len() as i64 > PAGE {
        runs.truncate(PAGE as usize);
        runs.last().map(Run::cursor)
    } else {
        None
    };
    Ok(Ok((runs, next)))
}

fn run_from(row: &tokio_postgres::Row) -> Run {
    let context = (row.len() > 23)
        .then(|| row.get::<_, Option<serde_json::Value>>(23))
        .flatten();
    Run {
        tenant_id: row.get(0),
        correlation_id: row.get(1),
        ticket_id: row.get(2),
        status: row.get(3),
        subject: row.get(4),
        received_at: row.get(5),
        written_back_at: row.get(6),
        failed_at: row.get(7),
        processing_ms: row.get(8),
        context_ms: row.get(9),
        llm_ms: row.get(10),
        writeback_ms: row.get(11),
        provider: row.get(12),
        model: row.get(13),
        tokens_in: row.get(14),
        tokens_out: row.get(15),
        cost_usd: row.get(16),
        degraded: row.get(17),
        failed_stage: row.get(18),
        error: row.get(19),
        context_summary: row.get(20),
        note_markdown: row.get(21),
        posted_markdown: row.get(22),
        // Pages select it; the CSV export does not.
        context: context
            .as_ref()
            .and_then(|context| serde_json::to_string_pretty(context).ok()),
        context_view: context
            .as_ref()
            .and_then(super::run_view::context_from_history),
        as_posted: None,
    }
}

const CSV_HEADER: &[&str] = &[
    "tenant_id",
    "ticket_id",
    "run_id",
    "status",
    "subject",
    "received_at",
    "written_back_at",
    "failed_at",
    "processing_ms",
    "context_ms",
    "llm_ms",
    "writeback_ms",
    "provider",
    "model",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "degraded",
    "failed_stage",
    "error",
];

/// A field a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first, after any spaces) gets a leading apostrophe:
/// ticket subjects and errors come from requesters.
fn inert(field: &str) -> std::borrow::Cow<'_, str> {
    let first = field.trim_start_matches([' ', '\u{a0}']).chars().next();
    match first {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{field}").into(),
        _ => field.into(),
    }
}

/// Every field quoted: a spreadsheet that splits on `;` (the separator of
/// German, French or Dutch settings) would otherwise cut a subject such as
/// `Drucker;=HYPERLINK(…)` in two, and the second half begins with `=`.
fn csv_line(fields: &[String]) -> Bytes {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    writer
        .write_record(fields.iter().map(|field| inert(field).into_owned()))
        .expect("writing CSV to memory");
    Bytes::from(writer.into_inner().expect("flushing CSV to memory"))
}

fn csv_row(run: &Run) -> Bytes {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let at = |value: &Option<DateTime<Utc>>| value.map(|at| at.to_rfc3339()).unwrap_or_default();
    let number = |value: Option<i64>| value.map(|n| n.to_string()).unwrap_or_default();
    csv_line(&[
        run.tenant_id.clone(),
        run.ticket_id.clone(),
        run.correlation_id.to_string(),
        run.status.clone(),
        text(&run.subject),
        run.received_at.to_rfc3339(),
        at(&run.written_back_at),
        at(&run.failed_at),
        number(run.processing_ms),
        number(run.context_ms),
        number(run.llm_ms),
        number(run.writeback_ms),
        text(&run.provider),
        text(&run.model),
        number(run.tokens_in.map(i64::from)),
        number(run.tokens_out.map(i64::from)),
        run.cost_usd
            .map(|cost| format!("{cost:.6}"))
            .unwrap_or_default(),
        run.degraded.map(|d| d.to_string()).unwrap_or_default(),
        text(&run.failed_stage),
        text(&run.error),
    ])
}

/// Every run the filter matches (the cursor ignored), as CSV: the header,
/// then one line per row as the database hands it over, never the whole
/// result in memory.
pub async fn csv(
    admin: &Pool,
    filter: &Filter,
    stalled_after: std::time::Duration,
) -> Result<
    Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, String>,
    StoreError,
> {
    let mut bound = match filter.bind() {
        Ok(bound) => bound,
        Err(message) => return Ok(Err(message)),
    };
    bound.after = None;
    let client = admin.get().await?;
    let none_at: Option<DateTime<Utc>> = None;
    let none_id: Option<Uuid> = None;
    let params: [&(dyn ToSql + Sync); 7] = [
        &bound.tenant,
        &bound.status,
        &bound.from,
        &bound.until,
        &bound.ticket,
        &none_at,
        &none_id,
    ];
    let rows = client
        .query_raw(
            &format!("select {COLUMNS} from enhancement_history where {WHERE} order by received_at desc, correlation_id desc"),
            params,
        )
        .await?;
    let header = futures::stream::once(async {
        Ok(csv_line(
            &CSV_HEADER
                .iter()
                .map(|h| (*h).to_owned())
                .collect::<Vec<_>>(),
        ))
    });
    let body = rows
        .map_ok(|row| csv_row(&run_from(&row)))
        .map_err(|err| std::io::Error::other(err.to_string()));
    // A task reads the rows and hands them on as the client takes them. A
    // client that stops reading (a paused download, a script that never
    // reads) stops it after `stalled_after`: the connection is then closed, not
    // handed back to the pool — its server process, blocked writing to a
    // socket nobody reads, ends only when the socket does, and neither a
    // cancel nor the statement timeout reaches it there.
    let (sent, received) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut lines = std::pin::pin!(header.chain(body));
        while let Some(line) = lines.next().await {
            match tokio::time::timeout(stalled_after, sent.send(line)).await {
                Ok(Ok(())) => {}
                // The client is gone: the rest of the rows are not wanted.
                Ok(Err(_)) => {
                    drop(aia_store::Client::take(client));
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        stalled_for = ?stalled_after,
                        "A history export was not read; its connection is closed"
                    );
                    drop(aia_store::Client::take(client));
                    return;
                }
            }
        }
    });
    Ok(Ok(futures::stream::unfold(
        received,
        |mut received| async move { received.recv().await.map(|line| (line, received)) },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester_text_cannot_become_a_spreadsheet_formula() {
        let line = csv_line(&[
            "=HYPERLINK(\"http://evil\")".into(),
            "+1".into(),
            "@SUM(A1)".into(),
            "plain".into(),
            "-".into(),
            "  =1+1".into(),
            "Drucker;=1+1".into(),
        ]);
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "\"'=HYPERLINK(\"\"http://evil\"\")\",\"'+1\",\"'@SUM(A1)\",\"plain\",\"'-\",\"'  =1+1\",\"Drucker;=1+1\"\n"
        );
    }

    #[test]
    fn a_malformed_filter_is_refused_not_ignored() {
        let filter = |status: &str, from: &str, after: &str| Filter {
            status: status.into(),
            from: from.into(),
            after: after.into(),
            ..Filter::default()
        };
        assert!(filter("completed", "2026-11-01", "").bind().is_ok());
        assert!(filter("done", "", "").bind().is_err());
        assert!(filter("", "01/11/2026", "").bind().is_err());
        assert!(filter("", "", "yesterday_x").bind().is_err());
        // Dates chrono reads but no run has: refused, not a panic on the
        // day after, nor a database error.
        for date in ["+262142-12-31", "-5000-01-01", "1969-12-31"] {
            assert!(filter("", date, "").bind().is_err(), "{date}");
            let to = Filter {
                to: date.into(),
                ..Filter::default()
            };
            assert!(to.bind().is_err(), "{date}");
        }
    }
}
