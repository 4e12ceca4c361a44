//! The note a ticket gets when no model wrote one: the gathered context,
//! plainly laid out and labelled as such.

use std::fmt::Write as _;

use aia_events::ContextGathered;

pub fn raw_context_note(context: &ContextGathered) -> String {
    let mut note = String::from("## Context Gathered\n\n### Similar Tickets\n");
    if context.similar_tickets.is_empty() {
        note.push_str("No information available\n");
    }
    for ticket in &context.similar_tickets {
        let band = if crate::prompt::likely(ticket.score) {
            "likely match"
        } else {
            "possibly related"
        };
        let why = match ticket.matched_by {
            Some(matched_by) => format!("{band}: {}", matched_by.describe()),
            None => band.to_owned(),
        };
        let _ = writeln!(
            note,
            "- **{}** {} — resolved by: {} _({why})_",
            ticket.ticket_id,
            one_line(&ticket.subject),
            one_line(&ticket.resolution),
        );
    }
    note.push_str("\n### Relevant Documentation\n");
    if context.knowledge_articles.is_empty() {
        note.push_str("No information available\n");
    }
    for article in &context.knowledge_articles {
        let _ = match &article.url {
            Some(url) => writeln!(note, "- [{}]({url})", one_line(&article.title)),
            None => writeln!(note, "- {}", one_line(&article.title)),
        };
    }
    note.push_str("\n### System Information\n");
    if context.systems.is_empty() {
        note.push_str("No information available\n");
    }
    for system in &context.systems {
        let facts: Vec<&str> = [
            &system.hostname,
            &system.address,
            &system.role,
            &system.location,
        ]
        .into_iter()
        .filter_map(|fact| fact.as_deref())
        .collect();
        let _ = writeln!(note, "- {}: {}", system.matched, facts.join(", "));
    }
    note.push_str("\n_Note: AI synthesis unavailable, showing raw context._\n");
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
        let note = raw_context_note(&context);
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
}
