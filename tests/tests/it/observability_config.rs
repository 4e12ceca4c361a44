//! The alert rules and dashboards under `deploy/` are valid and only name
//! metrics the services really export.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn promtool() -> String {
    std::env::var("AI_AGENTS_PROMTOOL_BIN").expect(
        "AI_AGENTS_PROMTOOL_BIN is not set: run the tests through `./dev test` \
         (scripts/stack.sh installs promtool)",
    )
}

fn run_promtool(args: &[&str]) {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(deploy("prometheus"))
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check() {
    run_promtool(&["check", "rules", "alerts.yml"]);
}

#[test]
fn every_alert_fires_and_holds_in_promtool_unit_tests() {
    run_promtool(&["test", "rules", "alerts.test.yml"]);
    // Each alert has a case that fires and one that does not.
    let tests = std::fs::read_to_string(deploy("prometheus/alerts.test.yml")).unwrap();
    for alert in alert_names() {
        let cases = tests.matches(&format!("alertname: {alert}\n")).count();
        assert!(cases >= 2, "{alert} has {cases} unit test cases, not two");
    }
}

/// The metric names every service exports, as Prometheus sees them
/// (counters with `_total`, histograms as `_bucket`/`_sum`/`_count`). Each
/// service's metrics are registered as the service registers them and given
/// one observation, because a family with no series is not exported at all.
fn exported_metrics() -> BTreeSet<String> {
    use aia_events::{ContextSource, SourceReport, SourceStatus};
    use history_projector::model::Counters;
    use history_projector::projection::Effect;

    let registry = aia_telemetry::metrics::registry();
    for stage in [
        "context-gatherer",
        "llm-enhancer",
        "writeback",
        "history-projector",
        "incident-correlator",
        "incident-notifier",
    ] {
        let metrics = aia_bus::metrics::StageMetrics::register(&registry, stage);
        metrics.set_workers(4);
        metrics.started(2);
        metrics.finished("done", 0.01);
        let _ = aia_bus::metrics::ConsumerLag::register(&registry, stage);
    }
    context_gatherer::metrics::SourceMetrics::register(&registry).record(&SourceReport {
        source: ContextSource::KnowledgeBase,
        status: SourceStatus::Ok,
        latency_ms: 5,
        items: 1,
        detail: None,
    });
    let llm = llm_enhancer::metrics::LlmMetrics::register(&registry);
    let model = llm_enhancer::metrics::ModelLabels {
        tenant_id: "acme".into(),
        model: "gpt-4o-mini".into(),
    };
    let tenant = llm_enhancer::metrics::TenantLabels {
        tenant_id: "acme".into(),
    };
    llm.tokens_in.get_or_create(&model).inc();
    llm.tokens_out.get_or_create(&model).inc();
    llm.cost_usd.get_or_create(&model).inc();
    llm.notes
        .get_or_create(&llm_enhancer::metrics::OutcomeLabels {
            outcome: "model".into(),
        })
        .inc();
    llm.budget_alerts.get_or_create(&tenant).inc();
    llm.budget_exceeded.get_or_create(&tenant).inc();
    let projector = history_projector::metrics::ProjectorMetrics::register(
        &registry,
        aia_telemetry::metrics::TenantLabel::new(10),
    );
    let run = Counters {
        received: 1,
        completed: 1,
        failed: 1,
        failed_budget: 1,
        processing_ms_total: 1000,
        ..Counters::default()
    };
    projector.record(
        "acme",
        &Effect {
            ticket_stored: true,
            counters: run,
            filled: Vec::new(),
        },
        None,
    );
    let incidents = incident_correlator::metrics::IncidentMetrics::register(&registry);
    let acme = aia_events::TenantId::parse("acme").unwrap();
    incidents.seen(&acme);
    let _ = incidents
        .tickets_added
        .get_or_create(&incident_correlator::metrics::TenantLabels {
            tenant_id: "acme".into(),
        });
    let _ = incidents
        .ended
        .get_or_create(&incident_correlator::metrics::EndedLabels {
            tenant_id: "acme".into(),
            change: "quiet".into(),
        });
    let ingress = ingress::metrics::Metrics::register(&registry);
    ingress
        .requests
        .get_or_create(&ingress::metrics::RequestLabels {
            tenant_id: "acme".into(),
            endpoint: "servicedesk".into(),
            outcome: "accepted".into(),
        })
        .inc();
    ingress
        .signature_failures
        .get_or_create(&ingress::metrics::TenantLabels {
            tenant_id: "acme".into(),
        })
        .inc();
    ingress
        .rate_limited
        .get_or_create(&ingress::metrics::TenantEndpointLabels {
            tenant_id: "acme".into(),
            endpoint: "servicedesk".into(),
        })
        .inc();
    ingress.publish_seconds.observe(0.001);
    let text = aia_telemetry::metrics::encode(&registry);
    let mut names = BTreeSet::new();
    let type_line = Regex::new(r"(?m)^# TYPE (\S+) (\S+)$").unwrap();
    for line in type_line.captures_iter(&text) {
        let (name, kind) = (&line[1], &line[2]);
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The metric names in a PromQL expression: what is left once label
/// matchers, ranges, strings, grouping clauses, functions and keywords are
/// taken out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let noise = Regex::new(
        r#"\{[^}]*\}|\[[^\]]*\]|"[^"]*"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\boffset\s+-?[0-9][0-9smhdwy]*"#,
    )
    .unwrap();
    let stripped = noise.replace_all(expr, " ");
    let word = Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?").unwrap();
    word.captures_iter(&stripped)
        .filter(|found| found.get(1).is_none())
        .map(|found| found[0].to_owned())
        .filter(|word| !["or", "and", "unless", "bool", "offset"].contains(&word.as_str()))
        .collect()
}

fn alert_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let mut exprs = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, value)) = line.split_once("expr:") else {
            continue;
        };
        if value.trim() != "|" {
            exprs.push(value.trim().to_owned());
            continue;
        }
        let mut block = String::new();
        while let Some(next) = lines.peek() {
            if next.len() - next.trim_start().len() <= indent.len() {
                break;
            }
            block.push_str(lines.next().unwrap());
            block.push('\n');
        }
        exprs.push(block);
    }
    exprs
}

fn alert_names() -> Vec<String> {
    let text = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(str::to_owned)
        .collect()
}

fn dashboard_exprs(file: &str) -> Vec<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy(file)).unwrap()).unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_expression_reader_finds_metrics_and_skips_functions_and_labels() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{stage="x"}[5m]))) > 120 or absent(b{le="1"})"#
        ),
        BTreeSet::from(["a_seconds_bucket".to_owned(), "b".to_owned()])
    );
    // A duration after `offset` names no metric.
    assert_eq!(
        metric_names("(c unless c offset 10m) or increase(d[10m]) > 0"),
        BTreeSet::from(["c".to_owned(), "d".to_owned()])
    );
}

#[test]
fn every_metric_in_a_rule_or_dashboard_is_exported() {
    let exported = exported_metrics();
    let mut sources = vec![("alerts.yml".to_owned(), alert_exprs())];
    for file in [
        "grafana/dashboards/overview.json",
        "grafana/dashboards/tenant.json",
    ] {
        sources.push((file.to_owned(), dashboard_exprs(file)));
    }
    let mut named = 0;
    for (file, exprs) in sources {
        assert!(!exprs.is_empty(), "{file} has no expressions");
        for expr in exprs {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{file}: no metric in {expr}");
            for name in names {
                named += 1;
                assert!(
                    exported.contains(&name),
                    "{file} uses {name}, which no service exports (in {expr})"
                );
            }
        }
    }
    assert!(named > 40, "only {named} metric uses found");
}
