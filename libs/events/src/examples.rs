//! Sample events of every type, with optional fields both set and unset.
//!
//! The schema test validates these against `schemas/`, and other crates'
//! tests use them as realistic inputs.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::envelope::{Event, Payload};
use crate::ids::{Priority, TenantId, TicketId};
use crate::incident::*;
use crate::payloads::*;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_764_000_000 + seconds, 123_456_000)
        .single()
        .expect("valid timestamp")
}

fn envelope(payload: Payload, with_cause: bool) -> Event {
    Event {
        event_id: Uuid::parse_str("019abcde-0000-7000-8000-000000000002").expect("uuid"),
        tenant_id: TenantId::parse("acme-msp").expect("tenant"),
        ticket_id: TicketId::parse("SUP-1042").expect("ticket"),
        occurred_at: at(5),
        correlation_id: Uuid::parse_str("019abcde-0000-7000-8000-000000000001").expect("uuid"),
        causation_id: with_cause
            .then(|| Uuid::parse_str("019abcde-0000-7000-8000-000000000001").expect("uuid")),
        payload,
    }
}

fn ticket_text(subject: Option<&str>) -> TicketText {
    TicketText {
        source: ItsmKind::ServicedeskPlus,
        subject: subject.map(str::to_owned),
        description: "Outlook keeps asking for a password on PC-0231 (10.20.1.31).".into(),
        priority: Priority::High,
    }
}

/// Every payload variant, each at least once with its optional fields set
/// and once with them unset.
pub fn all() -> Vec<Event> {
    let full_context = ContextGathered {
        ticket: ticket_text(Some("Outlook password prompt")),
        received_at: at(0),
        similar_tickets: vec![SimilarTicket {
            ticket_id: TicketId::parse("SUP-977").expect("ticket"),
            subject: "Outlook Need Password loop".into(),
            description: "WAM prompt never renders".into(),
            resolution: "Re-registered the AAD broker plugin.".into(),
            resolved_at: at(-86_400),
            tags: vec!["outlook".into(), "m365".into()],
            score: 0.83,
            matched_by: Some(MatchedBy::Both),
        }],
        knowledge_articles: vec![KnowledgeArticle {
            title: "Outlook credential loops".into(),
            summary: "Reset the token broker.".into(),
            url: Some("https://kb.example.com/a/17".into()),
            score: 0.61,
        }],
        systems: vec![SystemInfo {
            matched: "10.20.1.31".into(),
            hostname: Some("PC-0231".into()),
            address: Some("10.20.1.31".into()),
            role: Some("workstation".into()),
            client: Some("Acme Ltd".into()),
            location: Some("Berlin".into()),
        }],
        monitoring: vec![MonitoringFinding {
            host: "PC-0231".into(),
            summary: "disk C: 97 % full".into(),
        }],
        sources: vec![
            SourceReport {
                source: ContextSource::SimilarTickets,
                status: SourceStatus::Ok,
                latency_ms: 4,
                items: 1,
                detail: None,
            },
            SourceReport {
                source: ContextSource::KnowledgeBase,
                status: SourceStatus::Timeout,
                latency_ms: 10_000,
                items: 0,
                detail: Some("external knowledge base timed out after 10 s".into()),
            },
        ],
        query_rewrite: Some(QueryRewrite {
            terms: Some("Outlook modern authentication WAM token broker reset".into()),
            skipped_because: None,
            provider: Some("litellm".into()),
            model: Some("gpt-4o-mini".into()),
            tokens_in: 142,
            tokens_out: 18,
            cost_usd: 0.000_032,
            latency_ms: 640,
        }),
        related_open: vec![
            RelatedTicket {
                ticket_id: TicketId::parse("SUP-1040").expect("ticket"),
                subject: Some("can't open email".into()),
                received_at: at(-600),
                similarity: Some(0.71),
                shared_entities: vec!["10.20.1.31".into(), "site:HQ Berlin".into()],
            },
            RelatedTicket {
                ticket_id: TicketId::parse("SUP-1038").expect("ticket"),
                subject: None,
                received_at: at(-1500),
                similarity: None,
                shared_entities: vec!["mail01".into()],
            },
        ],
        language: Some(crate::TicketLanguage {
            language: crate::Language::English,
            decided_by: crate::DecidedBy::Detected,
            confidence: 0.82,
        }),
    };
    let empty_context = ContextGathered {
        ticket: ticket_text(None),
        similar_tickets: vec![],
        knowledge_articles: vec![KnowledgeArticle {
            url: None,
            ..full_context.knowledge_articles[0].clone()
        }],
        systems: vec![SystemInfo {
            matched: "fileserver01".into(),
            hostname: None,
            address: None,
            role: None,
            client: None,
            location: None,
        }],
        monitoring: vec![],
        sources: vec![],
        query_rewrite: Some(QueryRewrite {
            terms: None,
            skipped_because: Some("the tenant's LLM budget for this period is used up".into()),
            provider: None,
            model: None,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            latency_ms: 0,
        }),
        related_open: vec![],
        language: Some(crate::TicketLanguage {
            language: crate::Language::German,
            decided_by: crate::DecidedBy::Tenant,
            confidence: 1.0,
        }),
        ..full_context.clone()
    };
    let generated = EnhancementGenerated {
        source: ItsmKind::ServicedeskPlus,
        received_at: at(0),
        note_markdown: "## Similar Tickets\n- SUP-977 …".into(),
        provider: Some("litellm".into()),
        model: Some("gpt-4o-mini".into()),
        prompt_version: "v1".into(),
        tokens_in: 812,
        tokens_out: 201,
        cost_usd: 0.00024,
        latency_ms: 2_140,
        attempts: 1,
        degraded: false,
        degraded_reason: None,
        context_summary: "1 similar ticket, 1 article, 1 system".into(),
        budget_exceeded: false,
        note_language: Some(crate::Language::English),
    };
    let payloads = vec![
        (
            Payload::TicketReceived(TicketReceived {
                source: ItsmKind::ServicedeskPlus,
                change: TicketChange::Created,
                subject: Some("Outlook password prompt".into()),
                description: "Outlook keeps asking for a password.".into(),
                priority: Priority::High,
                requester: Some("jane@acme.example".into()),
                created_at: at(-2),
                delivery_id: "sha256:5e1f…".into(),
            }),
            false,
        ),
        (
            Payload::TicketReceived(TicketReceived {
                source: ItsmKind::Jira,
                change: TicketChange::Updated,
                subject: None,
                description: String::new(),
                priority: Priority::Low,
                requester: None,
                created_at: at(-2),
                delivery_id: "atlassian:3f2a".into(),
            }),
            false,
        ),
        (
            Payload::TicketResolved(TicketResolved {
                source: ItsmKind::ServicedeskPlus,
                subject: "VPN drops every hour".into(),
                description: "Users lose the VPN tunnel hourly.".into(),
                resolution: "Raised the IKE SA lifetime to 8 h.".into(),
                priority: Priority::Medium,
                tags: vec!["vpn".into()],
                resolved_at: at(-3600),
                language: Some(crate::language::TicketLanguage {
                    language: crate::Language::English,
                    decided_by: crate::language::DecidedBy::Detected,
                    confidence: 0.42,
                }),
            }),
            false,
        ),
        (
            // A tenant that has the rewrite off.
            Payload::ContextGathered(ContextGathered {
                query_rewrite: None,
                ..full_context.clone()
            }),
            true,
        ),
        (Payload::ContextGathered(full_context), true),
        (Payload::ContextGathered(empty_context), true),
        (Payload::EnhancementGenerated(generated.clone()), true),
        (
            Payload::EnhancementGenerated(EnhancementGenerated {
                provider: None,
                model: None,
                degraded: true,
                degraded_reason: Some("the tenant's LLM budget is used up".into()),
                budget_exceeded: true,
                ..generated
            }),
            true,
        ),
        (
            Payload::EnhancementFailed(EnhancementFailed {
                stage: Stage::ContextGatherer,
                reason: "tenant was deleted".into(),
                attempts: 1,
            }),
            true,
        ),
        (
            Payload::WritebackCompleted(WritebackCompleted {
                itsm: ItsmKind::ServicedeskPlus,
                note_id: Some("90210".into()),
                attempts: 2,
                already_present: false,
                received_at: at(0),
                posted_markdown: Some(
                    "Check the VPN client's certificate.\n\n---\n\n_ai-agents-ref:0190c9a4-0000-7000-8000-000000000001_\n".into(),
                ),
            }),
            true,
        ),
        (
            Payload::WritebackCompleted(WritebackCompleted {
                itsm: ItsmKind::Zendesk,
                note_id: None,
                attempts: 1,
                already_present: true,
                received_at: at(0),
                posted_markdown: None,
            }),
            true,
        ),
        (
            Payload::WritebackFailed(WritebackFailed {
                itsm: ItsmKind::ServicedeskPlus,
                reason: "ServiceDesk Plus rejected the API key".into(),
                http_status: Some(401),
                attempts: 1,
                permanent: true,
            }),
            true,
        ),
        (
            Payload::WritebackFailed(WritebackFailed {
                itsm: ItsmKind::Jira,
                reason: "Jira did not answer within 10 s".into(),
                http_status: None,
                attempts: 5,
                permanent: false,
            }),
            true,
        ),
        (
            Payload::EnhancementRated(EnhancementRated {
                stars: Some(4),
                thumbs_up: None,
                comment: Some("Right fix, saved me an hour".into()),
            }),
            true,
        ),
        (
            Payload::EnhancementRated(EnhancementRated {
                stars: None,
                thumbs_up: Some(false),
                comment: None,
            }),
            true,
        ),
        (
            Payload::BudgetThresholdReached(BudgetThresholdReached {
                spent_usd: 412.5,
                budget_usd: 500.0,
                alert_ratio: 0.8,
                period_start: chrono::NaiveDate::from_ymd_opt(2026, 11, 10).expect("date"),
                period_days: 30,
            }),
            true,
        ),
    ];
    let mut events: Vec<Event> = payloads
        .into_iter()
        .map(|(payload, with_cause)| envelope(payload, with_cause))
        .collect();
    events.extend(incidents());
    events
}

/// An incident's events: detected, a ticket added, acknowledged, ended.
fn incidents() -> Vec<Event> {
    let incident_id = Uuid::parse_str("019abcde-0000-7000-8000-0000000000a1").expect("uuid");
    let ticket = |id: &str, subject: Option<&str>, seconds: i64| IncidentTicket {
        ticket_id: TicketId::parse(id).expect("ticket"),
        subject: subject.map(str::to_owned),
        received_at: at(seconds),
    };
    let updated = |version, change, status, ticket, by: Option<&str>| {
        Payload::IncidentUpdated(IncidentUpdated {
            incident_id,
            version,
            change,
            status,
            ticket,
            by: by.map(str::to_owned),
            ticket_count: 4,
        })
    };
    [
        (
            Payload::IncidentDetected(IncidentDetected {
                incident_id,
                version: 1,
                tickets: vec![
                    ticket("SUP-1038", Some("no email"), -1500),
                    ticket("SUP-1040", None, -600),
                    ticket("SUP-1042", Some("Outlook password prompt"), 0),
                ],
                shared_entities: vec!["mail01".into()],
                summary: "3 tickets in 25 min, first \"no email\"; all name mail01".into(),
                detected_by: TicketId::parse("SUP-1042").expect("ticket"),
                threshold: 3,
                window_minutes: 30,
            }),
            true,
        ),
        (
            updated(
                2,
                IncidentChange::TicketAdded,
                IncidentStatus::Open,
                Some(ticket("SUP-1043", Some("mail down?"), 60)),
                None,
            ),
            true,
        ),
        (
            updated(
                3,
                IncidentChange::Acknowledged,
                IncidentStatus::Acknowledged,
                None,
                Some("dana@acme-msp.example"),
            ),
            false,
        ),
        (
            updated(4, IncidentChange::Quiet, IncidentStatus::Ended, None, None),
            false,
        ),
    ]
    .into_iter()
    .map(|(payload, with_cause)| Event {
        ticket_id: crate::incident::incident_subject_id(incident_id),
        correlation_id: incident_id,
        ..envelope(payload, with_cause)
    })
    .collect()
}
