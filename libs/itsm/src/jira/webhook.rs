//! Jira Cloud / Jira Service Management issue webhooks.
//!
//! `jira:issue_created` becomes a received ticket; `jira:issue_updated`
//! becomes a resolved ticket when the change sets a resolution or moves the
//! issue into the done status category, and an updated ticket otherwise.
//! Other events are acknowledged and ignored. Descriptions come as
//! wiki-markup strings (REST v2) or ADF documents (REST v3).

use aia_events::{ItsmKind, Priority, TicketChange, TicketId, TicketReceived, TicketResolved};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::adf;
use crate::inbound::{
    Inbound, InboundError, MAX_TEXT_CHARS, check_text, cut_description, json_error,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    webhook_event: String,
    #[serde(default)]
    timestamp: Option<i64>,
    issue: Option<Issue>,
    #[serde(default)]
    changelog: Option<Changelog>,
}

#[derive(Deserialize)]
struct Issue {
    key: String,
    fields: Fields,
}

#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    description: Value,
    #[serde(default)]
    priority: Option<Named>,
    #[serde(default)]
    reporter: Option<User>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    resolution: Option<Named>,
    #[serde(default)]
    resolutiondate: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    comment: Option<Comments>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    display_name: Option<String>,
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    status_category: Option<StatusCategory>,
}

#[derive(Deserialize)]
struct StatusCategory {
    key: Option<String>,
}

#[derive(Deserialize)]
struct Comments {
    #[serde(default)]
    comments: Vec<Comment>,
}

#[derive(Deserialize)]
struct Comment {
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct Changelog {
    #[serde(default)]
    items: Vec<ChangeItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeItem {
    field: String,
    #[serde(default)]
    to_string: Option<String>,
}

/// Parses a Jira issue webhook.
pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Webhook = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    let resolving = hook.changelog.as_ref().is_some_and(|changelog| {
        changelog
            .items
            .iter()
            .any(|item| item.field == "resolution" && item.to_string.is_some())
    });
    let change = match hook.webhook_event.as_str() {
        "jira:issue_created" => TicketChange::Created,
        "jira:issue_updated" => TicketChange::Updated,
        other => {
            return Ok(Inbound::Ignored {
                reason: format!("{other} needs no enhancement"),
            });
        }
    };
    let issue = hook
        .issue
        .ok_or_else(|| InboundError::field("issue", "is missing"))?;
    let ticket_id =
        TicketId::parse(&issue.key).map_err(|err| InboundError::field("issue.key", err))?;
    let fields = issue.fields;
    let description = text_of("issue.fields.description", &fields.description)?;
    let description = cut_description("issue.fields.description", description)?;
    let summary = fields.summary.unwrap_or_default();
    check_text("issue.fields.summary", &summary, MAX_TEXT_CHARS)?;
    let priority = priority(fields.priority.as_ref().and_then(|p| p.name.as_deref()));
    let done = fields
        .status
        .as_ref()
        .and_then(|status| status.status_category.as_ref())
        .and_then(|category| category.key.as_deref())
        == Some("done");

    if change == TicketChange::Updated && (resolving || (done && fields.resolution.is_some())) {
        let mut resolution = fields
            .resolution
            .and_then(|resolution| resolution.name)
            .unwrap_or_else(|| "Done".to_owned());
        // The last comment that is not our own note: a suggestion is not
        // the fix.
        let mut last = String::new();
        for comment in fields.comment.map(|c| c.comments).unwrap_or_default() {
            let comment = text_of("issue.fields.comment", &comment.body)?;
            if !comment.is_empty() && !crate::is_our_note(&comment) {
                last = comment;
            }
        }
        if !last.is_empty() {
            resolution = format!("{resolution}: {last}");
        }
        check_text("resolution", &resolution, MAX_TEXT_CHARS)?;
        let resolved_at = match fields.resolutiondate.as_deref() {
            Some(raw) => jira_time("issue.fields.resolutiondate", raw)?,
            None => event_time(hook.timestamp)?,
        };
        return Ok(Inbound::Resolved {
            ticket_id,
            ticket: TicketResolved {
                source: ItsmKind::Jira,
                subject: summary,
                description,
                resolution,
                priority,
                tags: fields.labels,
                resolved_at,
                // Decided by the ingress with the tenant's settings.
                language: None,
            },
        });
    }

    let created_at = match fields.created.as_deref() {
        Some(raw) => jira_time("issue.fields.created", raw)?,
        None => event_time(hook.timestamp)?,
    };
    let requester = fields
        .reporter
        .and_then(|reporter| reporter.email_address.or(reporter.display_name));
    Ok(Inbound::Received {
        ticket_id,
        ticket: TicketReceived {
            source: ItsmKind::Jira,
            change,
            subject: Some(summary).filter(|summary| !summary.trim().is_empty()),
            description,
            priority,
            requester,
            created_at,
            delivery_id: String::new(),
        },
    })
}

/// Jira's five default priorities and the common Jira Server names, on our
/// four levels. A missing or custom priority is medium.
pub fn priority(name: Option<&str>) -> Priority {
    match name.map(|name| name.trim().to_ascii_lowercase()).as_deref() {
        Some("highest" | "critical" | "blocker" | "urgent") => Priority::Critical,
        Some("high" | "major") => Priority::High,
        Some("low" | "lowest" | "minor" | "trivial") => Priority::Low,
        _ => Priority::Medium,
    }
}

fn text_of(field: &str, value: &Value) -> Result<String, InboundError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Object(_) if value["type"] == "doc" => Ok(adf::to_text(value)),
        _ => Err(InboundError::field(
            field,
            "must be a string, an ADF document or null",
        )),
    }
}

/// Jira writes `2025-11-24T10:00:00.000+0000` (no colon in the offset).
fn jira_time(field: &str, raw: &str) -> Result<DateTime<Utc>, InboundError> {
    DateTime::parse_from_rfc3339(raw)
        .or_else(|_| DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|parsed| parsed.with_timezone(&Utc))
        .map_err(|_| InboundError::field(field, "is not a timestamp with a zone"))
}

fn event_time(timestamp: Option<i64>) -> Result<DateTime<Utc>, InboundError> {
    timestamp
        .and_then(|millis| Utc.timestamp_millis_opt(millis).single())
        .ok_or_else(|| InboundError::field("timestamp", "is missing or out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn created(description: Value, priority: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "timestamp": 1_764_072_000_000i64, "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created", "user": {"displayName": "Jane"},
            "issue": {"id": "10001", "key": "SUP-42", "fields": {
                "summary": "VPN drops", "description": description,
                "priority": {"id": "1", "name": priority},
                "reporter": {"displayName": "Jane Doe", "emailAddress": "jane@acme.example"},
                "status": {"name": "Open", "statusCategory": {"key": "new"}},
                "created": "2026-11-25T10:00:00.000+0000", "labels": ["vpn"]
            }}
        }))
        .unwrap()
    }

    #[test]
    fn created_issues_with_wiki_or_adf_descriptions_become_received_tickets() {
        for description in [
            json!("VPN drops *hourly*"),
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "VPN drops hourly"}]}]}),
        ] {
            let Inbound::Received { ticket_id, ticket } =
                parse(&created(description, "Highest")).unwrap()
            else {
                panic!("expected received");
            };
            assert_eq!(ticket_id.as_str(), "SUP-42");
            assert!(ticket.description.contains("VPN drops"));
            assert_eq!(ticket.priority, Priority::Critical);
            assert_eq!(ticket.source, ItsmKind::Jira);
            assert_eq!(ticket.requester.as_deref(), Some("jane@acme.example"));
            assert_eq!(ticket.created_at.to_rfc3339(), "2026-11-25T10:00:00+00:00");
        }
    }

    #[test]
    fn a_description_past_the_limit_is_cut_not_refused() {
        let long = format!("{}{}", "é".repeat(9_999), "xyz");
        let Inbound::Received { ticket, .. } = parse(&created(json!(long), "High")).unwrap() else {
            panic!("expected received");
        };
        assert_eq!(ticket.description.chars().count(), 10_000);
        assert!(ticket.description.ends_with("éx"));
        let nul = created(json!("a\u{0}b"), "High");
        assert!(matches!(parse(&nul), Err(InboundError::Invalid(_))));
    }

    #[test]
    fn priorities_map_onto_four_levels() {
        let cases = [
            (Some("Highest"), Priority::Critical),
            (Some("Critical"), Priority::Critical),
            (Some("High"), Priority::High),
            (Some("Medium"), Priority::Medium),
            (Some("Low"), Priority::Low),
            (Some("Lowest"), Priority::Low),
            (None, Priority::Medium),
        ];
        for (name, expected) in cases {
            assert_eq!(priority(name), expected, "{name:?}");
        }
    }

    #[test]
    fn the_resolving_transition_becomes_a_resolved_ticket_whose_fix_is_not_our_note() {
        let body = serde_json::to_vec(&json!({
            "timestamp": 1_764_072_000_000i64, "webhookEvent": "jira:issue_updated",
            "issue": {"key": "SUP-42", "fields": {
                "summary": "VPN drops", "description": "hourly", "priority": {"name": "High"},
                "status": {"statusCategory": {"key": "done"}}, "resolution": {"name": "Fixed"},
                "resolutiondate": "2026-11-25T11:00:00.000+0100", "labels": ["vpn"],
                "comment": {"comments": [{"body": "Raised the IKE lifetime"},
                    {"body": "## Next steps\n1. Check the tunnel\n\n----\n\nai-agents-ref:0190c9a4-0000-7000-8000-000000000001"}]}
            }},
            "changelog": {"items": [{"field": "resolution", "fromString": null, "toString": "Fixed"}]}
        }))
        .unwrap();
        let Inbound::Resolved { ticket, .. } = parse(&body).unwrap() else {
            panic!("expected resolved");
        };
        assert_eq!(ticket.resolution, "Fixed: Raised the IKE lifetime");
        assert_eq!(ticket.resolved_at.to_rfc3339(), "2026-11-25T10:00:00+00:00");
        assert_eq!(ticket.tags, ["vpn"]);
    }

    #[test]
    fn other_events_are_ignored_and_bad_shapes_refused() {
        let ignored = br#"{"webhookEvent":"comment_created","timestamp":1}"#;
        assert!(matches!(parse(ignored).unwrap(), Inbound::Ignored { .. }));
        let no_issue = br#"{"webhookEvent":"jira:issue_created","timestamp":1}"#;
        assert!(parse(no_issue).unwrap_err().to_string().contains("issue"));
        let bad_description = created(json!(42), "High");
        assert!(
            parse(&bad_description)
                .unwrap_err()
                .to_string()
                .contains("description")
        );
    }
}
