//! The note a ticket gets when no model wrote one: the gathered context,
//! plainly laid out and labelled as such.

use std::fmt::Write as _;

use aia_events::ContextGathered;

use crate::generate::NoteShape;
use crate::labels::Labels;
use crate::markdown;

/// The raw-context note, labelled in the shape's language. What it copies
/// from tickets and sources is text, never markup, masked when the tenant
/// redacts; it shows no ticket's description and no system's client, so a
/// note the requester sees carries what the model's would.
pub fn raw_context_note(context: &ContextGathered, shape: &NoteShape) -> String {
    let labels = Labels::of(shape.language);
    let text = |raw: &str| markdown::text(&one_line(&shape.cleaned(raw)));
    let [similar, documentation, systems, _] = labels.sections;
    // Nothing found, or nobody asked: the two are told apart.
    let unavailable = crate::prompt::unavailable_sources(context);
    let nothing = |source: aia_events::ContextSource| {
        if unavailable.contains(&source) {
            labels.unavailable
        } else {
            labels.no_information
        }
    };
    use aia_events::ContextSource::{Inventory, KnowledgeBase, Monitoring, SimilarTickets};
    let mut note = format!("## {}\n\n### {similar}\n", labels.context_gathered);
    if context.similar_tickets.is_empty() {
        let _ = writeln!(note, "{}", nothing(SimilarTickets));
    }
    for ticket in &context.similar_tickets {
        let band = if crate::prompt::likely(ticket.score) {
            labels.likely_match
        } else {
            labels.possibly_related
        };
        let why = match ticket.matched_by {
            Some(matched_by) => format!("{band}: {}", labels.matched_by(matched_by)),
            None => band.to_owned(),
        };
        let _ = writeln!(
            note,
            "- **{}** {} — {}: {} _({why})_",
            markdown::text(ticket.ticket_id.as_str()),
            text(&ticket.subject),
            labels.resolved_by,
            text(&ticket.resolution),
        );
    }
    let _ = write!(note, "\n### {documentation}\n");
    if context.knowledge_articles.is_empty() {
        let _ = writeln!(note, "{}", nothing(KnowledgeBase));
    }
    for article in &context.knowledge_articles {
        let _ = match &article.url {
            // The URL in angle brackets: taken whole, whatever it holds.
            Some(url) if !url.contains(['<', '>', '\n']) => {
                writeln!(note, "- [{}](<{url}>)", text(&article.title))
            }
            _ => writeln!(note, "- {}", text(&article.title)),
        };
    }
    let _ = write!(note, "\n### {systems}\n");
    if context.systems.is_empty() && context.monitoring.is_empty() {
        // The inventory and monitoring together: "could not be checked"
        // when either was down, as `ensure_sections` says for the model.
        let said = if unavailable.contains(&Inventory) || unavailable.contains(&Monitoring) {
            labels.unavailable
        } else {
            labels.no_information
        };
        let _ = writeln!(note, "{said}");
    }
    for system in &context.systems {
        let facts: Vec<String> = [
            &system.hostname,
            &system.address,
            &system.role,
            &system.location,
        ]
        .into_iter()
        .filter_map(|fact| fact.as_deref())
        .map(text)
        .collect();
        let _ = writeln!(note, "- {}: {}", text(&system.matched), facts.join(", "));
    }
    for finding in &context.monitoring {
        let _ = writeln!(
            note,
            "- {}: {}",
            text(&finding.host),
            text(&finding.summary)
        );
    }
    // Systems were found, but monitoring did not answer: said, so the list
    // is not read as "nothing is wrong with them".
    if !context.systems.is_empty()
        && context.monitoring.is_empty()
        && unavailable.contains(&Monitoring)
    {
        let _ = writeln!(note, "- {}: {}", labels.monitoring, labels.unavailable);
    }
    let _ = write!(note, "\n_{}_\n", labels.raw_context_footer);
    note
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        format!("{}…", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}

pub fn context_summary(context: &ContextGathered) -> String {
    format!(
        "{} similar tickets, {} articles, {} systems, {} monitoring findings, {} related open tickets",
        context.similar_tickets.len(),
        context.knowledge_articles.len(),
        context.systems.len(),
        context.monitoring.len(),
        context.related_open.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::{MatchedBy, Payload, examples};

    fn context() -> ContextGathered {
        examples::all()
            .into_iter()
            .find_map(|event| match event.payload {
                Payload::ContextGathered(context) if !context.similar_tickets.is_empty() => {
                    Some(context)
                }
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn each_similar_ticket_says_how_sure_and_why_it_matched() {
        let mut context = context();
        let mut possible = context.similar_tickets[0].clone();
        possible.ticket_id = aia_events::TicketId::parse("SUP-978").unwrap();
        possible.score = 0.3;
        possible.matched_by = Some(MatchedBy::Words);
        let mut old = context.similar_tickets[0].clone();
        old.ticket_id = aia_events::TicketId::parse("SUP-979").unwrap();
        old.matched_by = None;
        context.similar_tickets.extend([possible, old]);
        let note = raw_context_note(
            &context,
            &NoteShape::new(300, aia_events::Language::English),
        );
        assert!(
            note.contains("**SUP-977** Outlook Need Password loop — resolved by: Re-registered the AAD broker plugin. _(likely match: similar meaning and shared words)_"),
            "{note}"
        );
        assert!(
            note.contains("_(possibly related: shared words)_"),
            "{note}"
        );
        assert!(
            note.lines()
                .any(|line| line.starts_with("- **SUP-979**") && line.ends_with("_(likely match)_")),
            "{note}"
        );
    }

    #[test]
    fn the_raw_context_note_is_labelled_in_the_notes_language() {
        let context = context();
        let english = raw_context_note(
            &context,
            &NoteShape::new(300, aia_events::Language::English),
        );
        for language in aia_events::Language::ALL {
            let labels = Labels::of(language);
            let note = raw_context_note(&context, &NoteShape::new(300, language));
            assert!(
                note.starts_with(&format!("## {}\n", labels.context_gathered)),
                "{note}"
            );
            for title in &labels.sections[..3] {
                assert!(
                    note.contains(&format!("### {title}\n")),
                    "{language}: {note}"
                );
            }
            assert!(note.contains(labels.raw_context_footer), "{note}");
            assert!(
                note.contains(&format!("— {}: ", labels.resolved_by)),
                "{note}"
            );
            // The facts themselves are the context's, whatever the labels.
            assert!(
                note.contains("**SUP-977** Outlook Need Password loop"),
                "{note}"
            );
            if language != aia_events::Language::English {
                assert_ne!(note, english);
                assert!(
                    !note.contains("resolved by:") && !note.contains("Relevant Documentation"),
                    "{note}"
                );
            }
        }
    }

    /// A source that did not answer is not a source that found nothing:
    /// the technician is told which it was.
    #[test]
    fn a_source_that_did_not_answer_is_not_reported_as_having_nothing() {
        use aia_events::{ContextSource, SourceStatus};
        let mut context = context();
        context.similar_tickets.clear();
        context.knowledge_articles.clear();
        for report in &mut context.sources {
            report.status = match report.source {
                ContextSource::KnowledgeBase => SourceStatus::Timeout,
                _ => SourceStatus::Empty,
            };
        }
        let labels = Labels::of(aia_events::Language::English);
        let note = raw_context_note(
            &context,
            &NoteShape::new(300, aia_events::Language::English),
        );
        let under = |heading: &str| {
            note.split(&format!("### {heading}\n"))
                .nth(1)
                .and_then(|rest| rest.lines().next())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(under(labels.sections[0]), labels.no_information, "{note}");
        assert_eq!(under(labels.sections[1]), labels.unavailable, "{note}");
    }

    /// Monitoring is part of the systems section: its findings are listed
    /// there, and a monitoring that did not answer is said to be so.
    #[test]
    fn monitoring_findings_are_listed_and_its_outage_is_said() {
        use aia_events::{ContextSource, MonitoringFinding, SourceReport, SourceStatus};
        let labels = Labels::of(aia_events::Language::English);
        let shape = NoteShape::new(300, aia_events::Language::English);
        let systems_line = |note: &str| {
            note.split(&format!("### {}\n", labels.sections[2]))
                .nth(1)
                .and_then(|rest| rest.lines().next())
                .unwrap_or_default()
                .to_owned()
        };
        let mut context = context();
        context.systems.clear();
        context.monitoring = vec![MonitoringFinding {
            host: "mail01".into(),
            summary: "transport service *stopped* since 09:12".into(),
        }];
        let note = raw_context_note(&context, &shape);
        assert_eq!(
            systems_line(&note),
            "- mail01: transport service \\*stopped\\* since 09:12",
            "{note}"
        );
        context.monitoring.clear();
        context
            .sources
            .retain(|report| report.source != ContextSource::Monitoring);
        context.sources.push(SourceReport {
            source: ContextSource::Monitoring,
            status: SourceStatus::Timeout,
            latency_ms: 2000,
            items: 0,
            detail: None,
        });
        let note = raw_context_note(&context, &shape);
        assert_eq!(systems_line(&note), labels.unavailable, "{note}");
        // Systems found, monitoring down: both are said.
        let mut with_systems = self::context();
        with_systems.monitoring.clear();
        with_systems.sources = context.sources.clone();
        assert!(!with_systems.systems.is_empty());
        let note = raw_context_note(&with_systems, &shape);
        assert!(
            note.contains(&format!("- Monitoring: {}\n", labels.unavailable)),
            "{note}"
        );
    }
}
