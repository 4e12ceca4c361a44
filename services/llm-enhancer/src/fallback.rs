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
        let _ = writeln!(
            note,
            "- **{}** {} — resolved by: {}{}",
            ticket.ticket_id,
            one_line(&ticket.subject),
            one_line(&ticket.resolution),
            if crate::prompt::likely(ticket.score) {
                ""
            } else {
                " _(possibly related)_"
            }
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
        "{} similar tickets, {} articles, {} systems, {} monitoring findings",
        context.similar_tickets.len(),
        context.knowledge_articles.len(),
        context.systems.len(),
        context.monitoring.len()
    )
}
