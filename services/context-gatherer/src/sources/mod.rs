//! The context sources. Each runs under its own timeout (never longer than
//! the stage's budget) and reports how it fared; none can fail the run —
//! but one the database could not serve for a passing reason (a failover,
//! a restart) marks the ticket to be gathered again while deliveries are
//! left, rather than sent on with a context that merely looks empty.

pub mod centring;
pub mod feedback;
pub mod fusion;
pub mod inventory;
pub mod knowledge;
pub mod meaning;
pub mod monitoring;
pub mod related;
pub mod similar;
pub mod words;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aia_events::{ContextSource, SourceReport, SourceStatus};

/// The bound on a full-text search's statement (see
/// [`aia_store::search_query`]).
pub const SEARCH_TIMEOUT: &str = "2s";

/// Why a source produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A short, operator-facing reason (no secrets, no ticket text).
    #[error("{0}")]
    Failed(String),
    /// The database could not serve the source for a passing reason.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A far end (an external knowledge base, a monitoring API) did not
    /// answer within the source's own bound: reported as a timeout, as a
    /// source cut by the stage's budget is.
    #[error("{0}")]
    TimedOut(String),
}

impl From<aia_store::StoreError> for SourceError {
    fn from(err: aia_store::StoreError) -> Self {
        // A search cut by its own statement timeout is the query's cost,
        // not the database's state: the same search would take as long.
        if err.is_transient() && !err.is_cut_short() {
            Self::Unavailable(err.to_string())
        } else {
            Self::Failed(format!("database: {err}"))
        }
    }
}

/// Runs one source unless it is off, bounded by `timeout`, and reports it;
/// a database that could not serve it sets `unavailable`.
pub async fn run<T>(
    unavailable: &AtomicBool,
    source: ContextSource,
    enabled: bool,
    timeout: Duration,
    work: impl Future<Output = Result<Vec<T>, SourceError>>,
) -> (Vec<T>, SourceReport) {
    let started = Instant::now();
    let report = |status, items: usize, detail: Option<String>| SourceReport {
        source,
        status,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        items: u32::try_from(items).unwrap_or(u32::MAX),
        detail,
    };
    if !enabled {
        return (
            vec![],
            report(
                SourceStatus::Disabled,
                0,
                Some("turned off for this tenant".into()),
            ),
        );
    }
    let span = tracing::info_span!("context source", source = ?source);
    match tokio::time::timeout(timeout, tracing::Instrument::instrument(work, span)).await {
        Ok(Ok(items)) if items.is_empty() => (items, report(SourceStatus::Empty, 0, None)),
        Ok(Ok(items)) => {
            let n_items = items.len();
            (items, report(SourceStatus::Ok, n_items, None))
        }
        Ok(Err(SourceError::TimedOut(detail))) => {
            tracing::warn!(source = ?source, detail, "Context source timed out");
            (vec![], report(SourceStatus::Timeout, 0, Some(detail)))
        }
        Ok(Err(err)) => {
            if matches!(err, SourceError::Unavailable(_)) {
                unavailable.store(true, Ordering::Relaxed);
            }
            tracing::warn!(source = ?source, error = %err, "Context source failed");
            (
                vec![],
                report(SourceStatus::Error, 0, Some(err.to_string())),
            )
        }
        Err(_) => (
            vec![],
            report(
                SourceStatus::Timeout,
                0,
                Some(format!("no answer within {} ms", timeout.as_millis())),
            ),
        ),
    }
}
