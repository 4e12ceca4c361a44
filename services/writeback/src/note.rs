//! The note as write-back posts it, before the tool's own rendering: the
//! tenant's header, the model's (or the raw context's) Markdown, the
//! tenant's footer, the feedback links and the run's marker. No I/O, so
//! the write-back, a dry-run and the console show the same note.

use aia_events::{Language, TenantId, TicketId};
use aia_store::{Keyring, TenantSettings};
use uuid::Uuid;

/// The line that ends every note and identifies its run, so a note posted
/// before a crash is recognised on the ticket.
pub fn marker(correlation_id: Uuid) -> String {
    format!("{}{correlation_id}", aia_itsm::NOTE_MARKER)
}

/// Where a note's feedback links point: the ingress's public URL, when the
/// deployment has one.
#[derive(Debug, Clone, Copy)]
pub struct Feedback<'a> {
    pub public_url: &'a str,
    /// Signs each link, so it rates this run and nothing else.
    pub keyring: &'a Keyring,
}

/// The note of run `correlation_id` on `ticket`, as Markdown; what it adds
/// to the body in `language`, the body's (English when not known).
pub fn compose(
    settings: &TenantSettings,
    body_markdown: &str,
    language: Option<Language>,
    tenant: &TenantId,
    ticket: &TicketId,
    correlation_id: Uuid,
    feedback: Option<Feedback<'_>>,
) -> String {
    let line = |text: &Option<String>| {
        text.as_deref()
            .map(|line| format!("{}\n\n", line.trim()))
            .unwrap_or_default()
    };
    let header = line(&settings.note_header);
    let footer = line(&settings.note_footer);
    let feedback = match feedback {
        Some(feedback) if settings.feedback_links => {
            let language = language.unwrap_or(Language::English);
            feedback_line(feedback, language, tenant, ticket, correlation_id)
        }
        _ => String::new(),
    };
    format!(
        "{header}{}\n\n---\n\n{footer}{feedback}_{}_\n",
        body_markdown.trim_end(),
        marker(correlation_id)
    )
}

/// "Was this note helpful?" with signed one-click links; empty when the
/// public URL is not a URL.
fn feedback_line(
    feedback: Feedback<'_>,
    language: Language,
    tenant: &TenantId,
    ticket: &TicketId,
    correlation_id: Uuid,
) -> String {
    let Ok(mut url) = reqwest::Url::parse(feedback.public_url) else {
        return String::new();
    };
    let token = aia_store::feedback::token(
        feedback.keyring,
        tenant.as_str(),
        ticket.as_str(),
        correlation_id,
    );
    let Ok(mut segments) = url.path_segments_mut() else {
        return String::new();
    };
    segments.pop_if_empty().extend([
        "feedback",
        tenant.as_str(),
        ticket.as_str(),
        &correlation_id.to_string(),
        &token,
    ]);
    drop(segments);
    let (question, yes, no) = feedback_words(language);
    format!("{question} [{yes}]({url}?rating=up) · [{no}]({url}?rating=down)\n\n")
}

/// The feedback question and its answers in the note's language (the
/// rest of the note's fixed words are the llm-enhancer's `labels.rs`).
fn feedback_words(language: Language) -> (&'static str, &'static str, &'static str) {
    match language {
        Language::English => ("Was this note helpful?", "Yes", "No"),
        Language::German => ("War diese Notiz hilfreich?", "Ja", "Nein"),
        Language::French => ("Cette note vous a-t-elle aidé ?", "Oui", "Non"),
        Language::Spanish => ("¿Le ha sido útil esta nota?", "Sí", "No"),
        Language::Dutch => ("Was deze notitie nuttig?", "Ja", "Nee"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::parse("k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=").unwrap()
    }

    fn ids() -> (TenantId, TicketId, Uuid) {
        (
            TenantId::parse("acme").unwrap(),
            TicketId::parse("SUP-1/2").unwrap(),
            Uuid::parse_str("019abcde-0000-7000-8000-000000000001").unwrap(),
        )
    }

    #[test]
    fn given_default_settings_the_note_is_the_body_a_rule_and_the_marker() {
        let (tenant, ticket, run) = ids();
        let note = compose(
            &TenantSettings::default(),
            "## Similar Tickets\nSUP-9\n\n",
            None,
            &tenant,
            &ticket,
            run,
            None,
        );
        assert_eq!(
            note,
            "## Similar Tickets\nSUP-9\n\n---\n\n_ai-agents-ref:019abcde-0000-7000-8000-000000000001_\n"
        );
    }

    #[test]
    fn given_a_header_footer_and_public_url_they_frame_the_body_in_order() {
        let (tenant, ticket, run) = ids();
        let settings = TenantSettings {
            note_header: Some("  AI suggestion  ".into()),
            note_footer: Some("Check before acting.".into()),
            ..TenantSettings::default()
        };
        let keyring = keyring();
        let note = compose(
            &settings,
            "Body",
            None,
            &tenant,
            &ticket,
            run,
            Some(Feedback {
                public_url: "https://hooks.example.com/base/",
                keyring: &keyring,
            }),
        );
        let header = note
            .find("AI suggestion\n\nBody")
            .expect("header then body");
        let footer = note.find("Check before acting.").expect("footer");
        let links = note.find("Was this note helpful?").expect("links");
        let marker = note.find("_ai-agents-ref:").expect("marker");
        assert!(
            header < footer && footer < links && links < marker,
            "{note}"
        );
        // The ticket id's slash is one path segment, never a path step.
        assert!(
            note.contains("https://hooks.example.com/base/feedback/acme/SUP-1%2F2/019abcde-0000-7000-8000-000000000001/"),
            "{note}"
        );
        assert!(note.contains("?rating=up") && note.contains("?rating=down"));
    }

    #[test]
    fn given_feedback_links_turned_off_the_note_has_none() {
        let (tenant, ticket, run) = ids();
        let settings = TenantSettings {
            feedback_links: false,
            ..TenantSettings::default()
        };
        let keyring = keyring();
        let note = compose(
            &settings,
            "Body",
            None,
            &tenant,
            &ticket,
            run,
            Some(Feedback {
                public_url: "https://hooks.example.com",
                keyring: &keyring,
            }),
        );
        assert!(!note.contains("helpful"), "{note}");
        assert!(note.ends_with(&format!("_{}_\n", marker(run))));
    }

    #[test]
    fn the_same_run_composes_the_same_note() {
        let (tenant, ticket, run) = ids();
        let keyring = keyring();
        let feedback = Some(Feedback {
            public_url: "https://hooks.example.com",
            keyring: &keyring,
        });
        let settings = TenantSettings::default();
        assert_eq!(
            compose(&settings, "Body", None, &tenant, &ticket, run, feedback),
            compose(&settings, "Body", None, &tenant, &ticket, run, feedback)
        );
    }

    #[test]
    fn the_feedback_question_is_asked_in_the_notes_language() {
        let (tenant, ticket, run) = ids();
        let keyring = keyring();
        let feedback = Some(Feedback {
            public_url: "https://hooks.example.com",
            keyring: &keyring,
        });
        let settings = TenantSettings::default();
        let line = |language| {
            let note = compose(&settings, "Body", language, &tenant, &ticket, run, feedback);
            note.lines()
                .find(|line| line.contains("?rating=up"))
                .unwrap()
                .to_owned()
        };
        let english = line(Some(Language::English));
        assert!(
            english.starts_with("Was this note helpful? [Yes]("),
            "{english}"
        );
        assert_eq!(
            line(None),
            english,
            "an older event's note is taken for English"
        );
        let german = line(Some(Language::German));
        assert!(
            german.starts_with("War diese Notiz hilfreich? [Ja]("),
            "{german}"
        );
        assert!(german.contains(") · [Nein]("), "{german}");
        let mut questions = std::collections::HashSet::new();
        for language in [
            Language::English,
            Language::German,
            Language::French,
            Language::Spanish,
            Language::Dutch,
        ] {
            let (question, yes, no) = feedback_words(language);
            assert!(questions.insert(question), "{language:?}");
            assert_ne!(yes, no, "{language:?}");
        }
    }
}
