//! "Possibly the same incident": the tenant's other open tickets that look
//! like this one, written by code above the note (never left to the model,
//! which could miscount or drop them), so the technician sees at once that
//! the ticket may be one of an outage's many.

use std::fmt::Write as _;

use aia_events::ContextGathered;

/// Related tickets listed one per line; the rest are counted.
const LISTED: usize = 5;

/// The section, or `None` when no open ticket looks like this one. A
/// `public` note (one the requester sees) counts the others and names none:
/// their ids and subjects are other end users' business.
pub fn section(context: &ContextGathered, public: bool) -> Option<String> {
    let related = &context.related_open;
    let first = related.iter().map(|r| r.received_at).min()?;
    let minutes = match (context.received_at - first).num_minutes().max(1) {
        1 => "minute".to_owned(),
        n => format!("{n} minutes"),
    };
    let ids: Vec<&str> = related.iter().map(|r| r.ticket_id.as_str()).collect();
    let (n, tickets) = match related.len() {
        1 => ("1 other open ticket".to_owned(), "looks"),
        n => (format!("{n} other open tickets"), "look"),
    };
    if public {
        return Some(format!(
            "## Possibly the same incident\n{n} from the last {minutes} {tickets} like this one — the first at {} UTC.\n",
            first.format("%H:%M"),
        ));
    }
    let mut out = format!(
        "## Possibly the same incident\n{n} from the last {minutes} {tickets} like this one: {}{} — the first at {} UTC.\n",
        ids.iter()
            .take(LISTED)
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
        if ids.len() > LISTED { ", …" } else { "" },
        first.format("%H:%M"),
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
            ticket.why()
        );
    }
    Some(out)
}

/// The note with the section above it, when there is one.
pub fn above(note: String, context: &ContextGathered, public: bool) -> String {
    match section(context, public) {
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
    use aia_events::{Payload, RelatedTicket, TicketId, examples};
    use chrono::Duration;

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
        let section = section(&context, false).unwrap();
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
        let section = section(&context, false).unwrap();
        assert!(
            section
                .contains("1 other open ticket from the last minute looks like this one: SUP-100"),
            "{section}"
        );
    }

    #[test]
    fn no_related_ticket_adds_nothing() {
        let context = context(0);
        assert_eq!(section(&context, false), None);
        assert_eq!(above("note".into(), &context, false), "note");
    }

    #[test]
    fn a_note_the_requester_sees_counts_the_others_and_names_none() {
        let context = context(7);
        let section = section(&context, true).unwrap();
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
}
