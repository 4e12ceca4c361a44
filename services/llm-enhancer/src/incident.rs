//! "Possibly the same incident": the tenant's other open tickets that look
//! like this one, written by code above the note (never left to the model,
//! which could miscount or drop them), so the technician sees at once that
//! the ticket may be one of an outage's many.

use std::fmt::Write as _;

use aia_events::ContextGathered;

use crate::labels::Labels;

/// Related tickets listed one per line; the rest are counted.
const LISTED: usize = 5;

/// The section in `labels`' language, or `None` when no open ticket looks
/// like this one. A `public` note (one the requester sees) counts the
/// others and names none: their ids and subjects are other end users'
/// business.
pub fn section(context: &ContextGathered, public: bool, labels: &Labels) -> Option<String> {
    let related = &context.related_open;
    let first = related.iter().map(|r| r.received_at).min()?;
    let minutes = (context.received_at - first).num_minutes().max(1);
    let first_at = first.format("%H:%M").to_string();
    let heading = format!("## {}\n", labels.same_incident);
    if public {
        let line = labels.related(related.len(), minutes, None, &first_at);
        return Some(format!("{heading}{line}\n"));
    }
    let ids: Vec<&str> = related.iter().map(|r| r.ticket_id.as_str()).collect();
    let listed = format!(
        "{}{}",
        ids.iter()
            .take(LISTED)
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
        if ids.len() > LISTED { ", …" } else { "" },
    );
    let mut out = format!(
        "{heading}{}\n",
        labels.related(related.len(), minutes, Some(&listed), &first_at)
    );
    for ticket in related.iter().take(LISTED) {
        let subject = ticket
            .subject
            .as_deref()
            .map(|s| format!(" {}", one_line(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{}**{subject} _({})_",
            ticket.ticket_id,
            labels.related_why(ticket.similarity, &ticket.shared_entities)
        );
    }
    Some(out)
}

/// The note with the section above it, when there is one.
pub fn above(note: String, context: &ContextGathered, public: bool, labels: &Labels) -> String {
    match section(context, public, labels) {
        Some(section) => format!("{section}\n{note}"),
        None => note,
    }
}

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 80 {
        format!("{}…", flat.chars().take(80).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::{Language, Payload, RelatedTicket, TicketId, examples};
    use chrono::Duration;

    fn english() -> &'static Labels {
        Labels::of(Language::English)
    }

    fn context(n_related: usize) -> ContextGathered {
        let mut context = examples::all()
            .into_iter()
            .find_map(|event| match event.payload {
                Payload::ContextGathered(context) => Some(context),
                _ => None,
            })
            .unwrap();
        context.related_open = (0..n_related)
            .map(|i| RelatedTicket {
                ticket_id: TicketId::parse(&format!("SUP-{}", 100 + i)).unwrap(),
                subject: Some(format!("mail is down {i}")),
                received_at: context.received_at - Duration::minutes(40 - i as i64),
                similarity: Some(0.7),
                shared_entities: if i == 0 {
                    vec!["mail01".into()]
                } else {
                    vec![]
                },
            })
            .collect();
        context
    }

    #[test]
    fn the_section_counts_every_related_ticket_lists_five_and_says_why_and_since_when() {
        let context = context(7);
        let section = section(&context, false, english()).unwrap();
        assert!(
            section.contains("7 other open tickets from the last 40 minutes look like this one: SUP-100, SUP-101, SUP-102, SUP-103, SUP-104, …"),
            "{section}"
        );
        let first = context.received_at - Duration::minutes(40);
        assert!(section.contains(&format!("the first at {} UTC", first.format("%H:%M"))));
        assert_eq!(section.matches("\n- **SUP-").count(), 5, "{section}");
        assert!(
            section.contains("similar wording (0.70); both mention mail01"),
            "{section}"
        );
    }

    #[test]
    fn a_ticket_within_the_minute_reads_as_the_last_minute() {
        let mut context = context(1);
        context.related_open[0].received_at = context.received_at - Duration::seconds(30);
        let section = section(&context, false, english()).unwrap();
        assert!(
            section
                .contains("1 other open ticket from the last minute looks like this one: SUP-100"),
            "{section}"
        );
    }

    #[test]
    fn no_related_ticket_adds_nothing() {
        let context = context(0);
        assert_eq!(section(&context, false, english()), None);
        assert_eq!(above("note".into(), &context, false, english()), "note");
    }

    #[test]
    fn a_note_the_requester_sees_counts_the_others_and_names_none() {
        let context = context(7);
        let section = section(&context, true, english()).unwrap();
        assert!(
            section.contains(
                "7 other open tickets from the last 40 minutes look like this one — the first at"
            ),
            "{section}"
        );
        for related in &context.related_open {
            assert!(!section.contains(related.ticket_id.as_str()), "{section}");
            assert!(
                !section.contains(related.subject.as_deref().unwrap()),
                "{section}"
            );
        }
    }

    #[test]
    fn the_section_speaks_the_notes_language() {
        let context = context(3);
        let section = section(&context, false, Labels::of(Language::German)).unwrap();
        assert!(
            section.starts_with("## Möglicherweise derselbe Vorfall\n3 weitere offene Tickets aus den letzten 40 Minuten ähneln diesem: SUP-100, SUP-101, SUP-102 — das erste um"),
            "{section}"
        );
        assert!(
            section.contains("ähnlicher Wortlaut (0.70); beide nennen mail01"),
            "{section}"
        );
    }
}
