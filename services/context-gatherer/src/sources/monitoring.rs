//! Monitoring: for each host the inventory matched, the tenant's PromQL
//! checks against a Prometheus-compatible query API; what is abnormal goes
//! into the context as a one-line finding.

use aia_telemetry::http::TracedSend as _;
use std::time::Duration;

use futures::StreamExt as _;

use aia_events::{Language, MonitoringFinding};
use aia_store::MonitoringQuery;
use serde::Deserialize;

use super::SourceError;

#[derive(Deserialize)]
struct QueryAnswer {
    status: String,
    data: Option<QueryData>,
}

#[derive(Deserialize)]
struct QueryData {
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    value: (f64, String),
}

/// A host name as it goes into the tenant's PromQL, inside a
/// double-quoted label matcher such as `instance=~"{host}(:.*)?"`: regex
/// metacharacters escaped so the name matches only itself, and each of
/// those backslashes escaped again for the string literal, which PromQL
/// reads with Go's escapes: `\\.` in the query is the regex's `\.`, and
/// a lone `\.` is refused as an unknown escape sequence.
fn escape(host: &str) -> String {
    let mut escaped = String::with_capacity(host.len() + 8);
    for c in host.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\\\\\"),
            c if ".+*?()|[]{}^$".contains(c) => {
                escaped.push_str("\\\\");
                escaped.push(c);
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// Monitoring queries in flight at once, per ticket.
const QUERIES_AT_ONCE: usize = 4;

/// Monitoring queries in flight at once in this process to one monitoring
/// API, whatever the tickets: an outage's burst of tickets must not become
/// a burst of queries on the tenant's Prometheus (which runs 20 at once by
/// default). Per API, not for the whole process: one tenant's Prometheus
/// hanging through an outage held every slot, and another tenant's notes
/// said monitoring could not be checked when it was never asked.
const AT_ONCE_PER_API: usize = 8;

static IN_FLIGHT: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>,
> = std::sync::LazyLock::new(Default::default);

/// The slots of the monitoring API at `url`.
fn slots_of(url: &str) -> std::sync::Arc<tokio::sync::Semaphore> {
    IN_FLIGHT
        .lock()
        .expect("monitoring slots")
        .entry(url.to_owned())
        .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE_PER_API)))
        .clone()
}

/// What is asked of the monitoring API: the checks, the hosts, and the
/// language the findings are worded in.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub hosts: &'a [String],
    pub queries: &'a [MonitoringQuery],
    pub language: Language,
}

/// The findings of the queries on the hosts, with what has answered by the
/// end of `window`: a slow Prometheus costs the answers still out, not
/// those already in.
pub async fn check(
    http: &reqwest::Client,
    base_url: &str,
    token: Option<&str>,
    asked: Asked<'_>,
    window: Duration,
) -> Result<Vec<MonitoringFinding>, SourceError> {
    let Asked {
        hosts,
        queries,
        language,
    } = asked;
    let deadline = tokio::time::Instant::now() + window;
    aia_http::outbound::check_url(base_url).map_err(|err| SourceError::Failed(err.to_string()))?;
    let url = format!("{}/api/v1/query", base_url.trim_end_matches('/'));
    let url = url.as_str();
    // A few queries at a time, not one after another: twenty queries of a
    // slow Prometheus in a row would outlast the source's own timeout and
    // lose every answer already in.
    // Owned pairs: an async block over borrowed ones is not `Send` for
    // every lifetime, as the stage's handler must be.
    let asked: Vec<(String, MonitoringQuery)> = hosts
        .iter()
        .take(5)
        .flat_map(|host| {
            queries
                .iter()
                .map(move |query| (host.clone(), query.clone()))
        })
        .collect();
    let slots = slots_of(url);
    let slots = &slots;
    let mut pending = futures::stream::iter(asked.into_iter().enumerate())
        .map(|(asked, (host, query))| async move {
            let Ok(_slot) = slots.acquire().await else {
                return (asked, host, query, None);
            };
            let promql = query.promql.replace("{host}", &escape(&host));
            let mut request = http
                .get(url)
                .query(&[("query", promql.as_str())])
                .timeout(window);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = match request.send_traced("monitoring").await {
                Ok(response) => aia_http::answer::json::<QueryAnswer>(response).await.ok(),
                Err(_) => None,
            };
            (asked, host, query, answer)
        })
        .buffer_unordered(QUERIES_AT_ONCE);
    let mut answers = Vec::new();
    while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, pending.next()).await {
        answers.push(answer);
    }
    // In the order asked, whatever order they came back in.
    answers.sort_by_key(|(asked, ..)| *asked);
    let mut findings = Vec::new();
    let mut answered = 0;
    for (_, host, query, answer) in answers {
        let Some(answer) = answer else {
            continue;
        };
        if answer.status != "success" {
            continue;
        }
        answered += 1;
        let values: Vec<f64> = answer
            .data
            .map(|data| {
                data.result
                    .iter()
                    .filter_map(|sample| sample.value.1.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let Some(value) = values.iter().copied().reduce(f64::max) else {
            continue;
        };
        let abnormal = query.above.is_some_and(|limit| value > limit)
            || query.below.is_some_and(|limit| value < limit);
        if abnormal {
            let bound = match (query.above, query.below) {
                (Some(limit), _) if value > limit => Bound::Above(limit),
                (_, Some(limit)) => Bound::Below(limit),
                _ => continue,
            };
            findings.push(MonitoringFinding {
                host,
                summary: worded(&query.name, value, bound, language),
            });
        }
    }
    if answered == 0 && !hosts.is_empty() && !queries.is_empty() {
        return Err(SourceError::Failed(
            "the monitoring API did not answer any query".into(),
        ));
    }
    Ok(findings)
}

/// Which bound a value passed.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Above(f64),
    Below(f64),
}

/// A finding as a technician reads it in `language`: the check's name as
/// the operator gave it, the value to one decimal with the language's
/// decimal mark, and the bound it passed.
fn worded(name: &str, value: f64, bound: Bound, language: Language) -> String {
    // To one decimal (a bound that is whole without one), with the
    // language's decimal mark.
    let decimal = |n: f64, whole_as_is: bool| {
        let places = usize::from(!(whole_as_is && n.fract() == 0.0));
        let text = format!("{n:.places$}");
        match language {
            Language::English => text,
            _ => text.replace('.', ","),
        }
    };
    let value = decimal(value, false);
    let (above, below, is) = match language {
        Language::English => ("above", "below", "is"),
        Language::German => ("über", "unter", "liegt bei"),
        Language::French => ("au-dessus de", "en dessous de", "est à"),
        Language::Spanish => ("por encima de", "por debajo de", "está en"),
        Language::Dutch => ("boven", "onder", "is"),
    };
    let bound = match bound {
        Bound::Above(limit) => format!("{above} {}", decimal(limit, true)),
        Bound::Below(limit) => format!("{below} {}", decimal(limit, true)),
    };
    format!("{name} {is} {value} ({bound})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_is_worded_in_the_notes_language_with_its_decimal_mark() {
        assert_eq!(
            worded("cpu %", 97.34, Bound::Above(90.0), Language::English),
            "cpu % is 97.3 (above 90)"
        );
        assert_eq!(
            worded("cpu %", 97.34, Bound::Above(90.0), Language::German),
            "cpu % liegt bei 97,3 (über 90)"
        );
        assert_eq!(
            worded("up", 0.0, Bound::Below(1.0), Language::French),
            "up est à 0,0 (en dessous de 1)"
        );
        assert_eq!(
            worded("disk %", 91.5, Bound::Above(90.5), Language::Spanish),
            "disk % está en 91,5 (por encima de 90,5)"
        );
        assert_eq!(
            worded("memory %", 95.0, Bound::Above(90.0), Language::Dutch),
            "memory % is 95,0 (boven 90)"
        );
    }

    #[test]
    fn host_names_are_escaped_for_promql_regexes_inside_string_literals() {
        assert_eq!(escape("srv-01.corp.local"), r"srv-01\\.corp\\.local");
        assert_eq!(escape("web(1)"), r"web\\(1\\)");
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\\\c"#);
    }
    /// The default checks' `instance` matcher, with a host put in as the
    /// source puts it and read as Prometheus reads it (Go's string escapes,
    /// then an RE2 regex anchored at both ends).
    fn default_matcher(host: &str) -> regex::Regex {
        let promql = MonitoringQuery::defaults()[0]
            .promql
            .replace("{host}", &escape(host));
        let quoted = promql
            .split_once("instance=~\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(quoted, _)| quoted)
            .expect("an instance matcher");
        let pattern = quoted.replace("\\\\", "\\");
        regex::Regex::new(&format!("^(?:{pattern})$")).expect("a regex Prometheus would take")
    }

    #[test]
    fn the_default_checks_find_a_host_in_any_case_with_its_domain_and_port_and_no_other() {
        let web01 = default_matcher("WEB01");
        for instance in [
            "web01",
            "WEB01:9100",
            "web01.corp.local:9100",
            "Web01.corp.local",
        ] {
            assert!(web01.is_match(instance), "{instance}");
        }
        for instance in [
            "web010:9100",
            "xweb01",
            "web01-db:9100",
            "web01:",
            "web01.:9100",
        ] {
            assert!(!web01.is_match(instance), "{instance}");
        }
        let fqdn = default_matcher("srv-01.corp.local");
        assert!(fqdn.is_match("SRV-01.CORP.LOCAL:9182"));
        assert!(!fqdn.is_match("srv-01xcorp.local:9182"));
        let address = default_matcher("10.0.0.5");
        assert!(address.is_match("10.0.0.5:9100"));
        assert!(!address.is_match("10.0.0.50:9100"));
    }
}
