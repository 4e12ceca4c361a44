//! "Possibly the same incident": the tenant's other open tickets that look
//! like this one, written by code above the note (never left to the model,
//! which could miscount or drop them), so the technician sees at once that
//! the ticket may be one of an outage's many.

use std::fmt::Write as _;

use aia_events::ContextGathered;

use crate::generate::NoteShape;
use crate::labels::Labels;
use crate::markdown;

/// Related tickets listed one per line; the rest are counted.
const LISTED: usize = 5;

/// The section in the note's language, or `None` when no open ticket looks
/// like this one. A `public` note (one the requester sees) counts the
/// others and names none: their ids and subjects are other end users'
/// business. Their subjects are copied as text, never as markup, and
/// masked when the tenant redacts.
pub fn section(context: &ContextGathered, shape: &NoteShape) -> Option<String> {
    let labels = Labels::of(shape.language);
    let related = &context.related_open;
    let first = related.iter().map(|r| r.received_at).min()?;
    let minutes = (context.received_at - first).num_minutes().max(1);
    let first_at = first.format("%H:%M").to_string();
    let heading = format!("## {}\n", labels.same_incident);
    if shape.public {
        let line = labels.related(related.len(), minutes, None, &first_at);
        return Some(format!("{heading}{line}\n"));
    }
    let ids: Vec<String> = related
        .iter()
        .map(|r| markdown::text(r.ticket_id.as_str()))
        .collect();
    let listed = format!(
        "{}{}",
        ids.iter()
            .take(LISTED)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        if ids.len() > LISTED { ", …" } else { "" },
    );
    let mut out = format!(
        "{heading}{}\n",
        labels.related(related.len(), minutes, Some(&listed), &first_at)
    );
    for (ticket, id) in related.iter().zip(&ids).take(LISTED) {
        let subject = ticket
            .subject
            .as_deref()
            .map(|s| format!(" {}", markdown::text(&one_line(&shape.cleaned(s)))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{id}**{subject} _({})_",
            markdown::text(&labels.related_why(ticket.similarity, &ticket.shared_entities))
        );
    }
    Some(out)
}

/// The note with the section above it, when there is one.
pub fn above(note: String, context: &ContextGathered, shape: &NoteShape) -> String {
    match section(context, shape) {
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

    fn english() -> NoteShape {
        NoteShape::new(300, Language::English)
    }

    fn public() -> NoteShape {
        NoteShape {
            public: true,
            ..english()
        }
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

    /// The model is asked for the words the section leaves, so the cut to
    /// the limit takes nothing it wrote (its next steps come last).
    #[test]
    fn the_model_is_asked_for_the_words_the_section_leaves() {
        let shape = english();
        let alone = crate::generate::model_words(&context(0), &shape);
        assert_eq!(alone, shape.max_words);
        let with_section = crate::generate::model_words(&context(7), &shape);
        let section_words = section(&context(7), &shape)
            .unwrap()
            .split_whitespace()
            .count();
        assert_eq!(with_section, shape.max_words - section_words);
    }

    #[test]
    fn the_section_counts_every_related_ticket_lists_five_and_says_why_and_since_when() {
        let context = context(7);
        let section = section(&context, &english()).unwrap();
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
        let section = section(&context, &english()).unwrap();
        assert!(
            section
                .contains("1 other open ticket from the last minute looks like this one: SUP-100"),
            "{section}"
        );
    }

    #[test]
    fn no_related_ticket_adds_nothing() {
        let context = context(0);
        assert_eq!(section(&context, &english()), None);
        assert_eq!(above("note".into(), &context, &english()), "note");
    }

    #[test]
    fn a_note_the_requester_sees_counts_the_others_and_names_none() {
        let context = context(7);
        let section = section(&context, &public()).unwrap();
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
        let section = section(&context, &NoteShape::new(300, Language::German)).unwrap();
        assert!(
            section.starts_with("## Möglicherweise derselbe Vorfall\n3 weitere offene Tickets aus den letzten 40 Minuten ähneln diesem: SUP-100, SUP-101, SUP-102 — das erste um"),
            "{section}"
        );
        assert!(
            section.contains("ähnlicher Wortlaut (0,70); beide nennen mail01"),
            "{section}"
        );
    }
}
