//! How `enhancement.generated` is put together from what the model chain
//! answered (or why there is no model note). No I/O: the handler gathers
//! the facts, this decides what the run records.

use aia_events::{ContextGathered, EnhancementGenerated, Language};

use crate::labels::Labels;
use crate::{fallback, ground, markdown, prompt};

/// What the model chain answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAnswer {
    pub content: String,
    pub provider: String,
    pub model: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
    pub attempts: u32,
    /// The provider stopped at its token limit: the answer ends mid-way.
    pub truncated: bool,
}

/// Why a ticket gets the raw context instead of a model's note.
#[derive(Debug, Clone, PartialEq)]
pub enum NoAnswer {
    /// The tenant is past the grace share of its budget: no model was asked.
    OverBudget,
    /// Neither the tenant nor the deployment has a provider.
    NoProvider,
    /// Every provider failed (after `attempts` calls in all), having
    /// billed `cost_usd` for answers that held no note.
    Failed {
        reason: String,
        attempts: u32,
        cost_usd: f64,
    },
}

impl NoAnswer {
    pub fn reason(&self) -> String {
        match self {
            Self::OverBudget => "the tenant's LLM budget for this period is used up".into(),
            Self::NoProvider => "no LLM provider is configured".into(),
            Self::Failed { reason, .. } => reason.clone(),
        }
    }
}

/// What the tenant's settings ask of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteShape {
    /// The note's whole length, in words.
    pub max_words: usize,
    /// The requester sees the note: nothing of other users' tickets beyond
    /// what it may show them.
    pub public: bool,
    /// Personal data and secrets in what code copies into the note are
    /// masked, as they are in what the model is given.
    pub redact: bool,
    /// The language code writes the note's labels in.
    pub language: Language,
}

impl NoteShape {
    /// A private, unredacted note of at most `max_words` in `language`.
    pub fn new(max_words: usize, language: Language) -> Self {
        Self {
            max_words,
            public: false,
            redact: false,
            language,
        }
    }

    /// `text` as the note may carry it: masked when the tenant redacts.
    pub fn cleaned(&self, text: &str) -> String {
        if self.redact {
            aia_llm::redact::redact(text)
        } else {
            text.to_owned()
        }
    }
}

/// The fewest words the model's part of a note is cut to, however long the
/// related tickets' section above it.
const MIN_MODEL_WORDS: usize = 60;

/// The words the model's part of the note may have: the tenant's limit less
/// the related tickets' section put above it, which counts in the limit.
/// The model is asked for this many, so the cut to them takes nothing it
/// wrote (its last section, the next steps, would go first).
pub fn model_words(context: &ContextGathered, shape: &NoteShape) -> usize {
    let related = crate::incident::section(context, shape)
        .as_deref()
        .map_or(0, |section| section.split_whitespace().count());
    shape.max_words.saturating_sub(related).max(MIN_MODEL_WORDS)
}

/// The payload of `enhancement.generated` for `context`: the model's note
/// grounded in the context (citations it cannot back are marked), completed
/// to the four sections and cut to the shape's words; or, without an
/// answer, the labelled raw-context note with the reason. What code writes
/// into the note is in the shape's language, as the model was asked to
/// write. Either way the note links only to the context's own sources.
pub fn generated(
    context: &ContextGathered,
    ticket_id: &str,
    answer: Result<ModelAnswer, NoAnswer>,
    latency_ms: u64,
    shape: &NoteShape,
) -> EnhancementGenerated {
    let labels = Labels::of(shape.language);
    let mut generated = EnhancementGenerated {
        source: context.ticket.source,
        received_at: context.received_at,
        note_markdown: String::new(),
        provider: None,
        model: None,
        prompt_version: prompt::PROMPT_VERSION.to_owned(),
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
        latency_ms,
        attempts: 0,
        degraded: false,
        degraded_reason: None,
        context_summary: fallback::context_summary(context),
        budget_exceeded: false,
        note_language: Some(shape.language),
    };
    match answer {
        Ok(answer) => {
            let grounded = ground::ground(&answer.content, context, ticket_id, labels);
            if grounded.unverified > 0 {
                tracing::info!(
                    unverified = grounded.unverified,
                    "Marked citations that are not in the context"
                );
            }
            let related = crate::incident::section(context, shape);
            let words = model_words(context, shape);
            let note = if answer.truncated {
                // Cut by the provider: the sections after the cut were not
                // left empty, they were never written — say it was cut,
                // never "no information" for them; once, whoever cut it.
                let within = prompt::enforce_word_limit(&grounded.note, words, labels);
                if within == grounded.note {
                    format!("{}\n\n{}", within.trim_end(), labels.cut_short)
                } else {
                    within
                }
            } else {
                prompt::enforce_word_limit(
                    &prompt::ensure_sections(
                        &grounded.note,
                        labels,
                        &prompt::unavailable_sources(context),
                    ),
                    words,
                    labels,
                )
            };
            generated.note_markdown = match related {
                Some(section) => format!("{section}\n{note}"),
                None => note,
            };
            generated.provider = Some(answer.provider);
            generated.model = Some(answer.model);
            generated.tokens_in = answer.tokens_in;
            generated.tokens_out = answer.tokens_out;
            generated.cost_usd = answer.cost_usd;
            generated.attempts = answer.attempts;
        }
        Err(no_answer) => {
            tracing::warn!(reason = %no_answer.reason(), "No model note; sending the raw context");
            generated.note_markdown =
                crate::incident::above(fallback::raw_context_note(context, shape), context, shape);
            generated.degraded = true;
            generated.degraded_reason = Some(no_answer.reason());
            generated.budget_exceeded = no_answer == NoAnswer::OverBudget;
            if let NoAnswer::Failed {
                attempts, cost_usd, ..
            } = no_answer
            {
                generated.attempts = attempts;
                generated.cost_usd = cost_usd;
            }
        }
    }
    let sources = markdown::allowed(
        context
            .knowledge_articles
            .iter()
            .filter_map(|article| article.url.as_deref()),
    );
    let (note, removed) =
        markdown::only_allowed_links(&generated.note_markdown, &sources, labels.link_removed);
    if removed > 0 {
        tracing::info!(removed, "Removed links that are not among the sources");
    }
    generated.note_markdown = note;
    generated
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::{Payload, examples};

    const EN: Language = Language::English;

    fn context() -> ContextGathered {
        examples::all()
            .into_iter()
            .find_map(|event| match event.payload {
                Payload::ContextGathered(context) if !context.similar_tickets.is_empty() => {
                    Some(context)
                }
                _ => None,
            })
            .expect("a sample context with similar tickets")
    }

    fn answer(content: &str) -> ModelAnswer {
        ModelAnswer {
            content: content.into(),
            provider: "primary".into(),
            model: "gpt-4o-mini".into(),
            tokens_in: 900,
            tokens_out: 120,
            cost_usd: 0.0002,
            attempts: 2,
            truncated: false,
        }
    }

    #[test]
    fn given_a_model_answer_the_note_is_the_models_with_its_usage_and_four_sections() {
        let context = context();
        let generated = generated(
            &context,
            "T-1",
            Ok(answer("## Summary\nThe VPN drops.")),
            42,
            &NoteShape::new(300, EN),
        );
        assert!(generated.note_markdown.contains("The VPN drops."));
        for section in Labels::of(EN).headings() {
            assert!(
                generated.note_markdown.contains(&section),
                "{section} missing: {}",
                generated.note_markdown
            );
        }
        assert_eq!(generated.provider.as_deref(), Some("primary"));
        assert_eq!(generated.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!((generated.tokens_in, generated.tokens_out), (900, 120));
        assert_eq!(generated.attempts, 2);
        assert_eq!(generated.latency_ms, 42);
        assert!(!generated.degraded && !generated.budget_exceeded);
        assert_eq!(generated.received_at, context.received_at);
        assert_eq!(generated.prompt_version, prompt::PROMPT_VERSION);
    }

    #[test]
    fn given_a_long_answer_the_note_is_cut_to_the_word_limit() {
        let long = format!("## Summary\n{}", "word ".repeat(2000));
        let generated = generated(
            &context(),
            "T-1",
            Ok(answer(&long)),
            1,
            &NoteShape::new(100, EN),
        );
        let words = generated.note_markdown.split_whitespace().count();
        assert!(words <= 110, "{words} words");
    }

    #[test]
    fn given_an_invented_ticket_id_the_note_marks_it_unverified() {
        let generated = generated(
            &context(),
            "T-1",
            Ok(answer("## Summary\nSame as INC-999999.")),
            1,
            &NoteShape::new(300, EN),
        );
        assert!(
            generated.note_markdown.contains("unverified"),
            "{}",
            generated.note_markdown
        );
    }

    #[test]
    fn given_no_budget_left_the_note_is_the_raw_context_and_the_run_says_why() {
        let context = context();
        let generated = generated(
            &context,
            "T-1",
            Err(NoAnswer::OverBudget),
            3,
            &NoteShape::new(300, EN),
        );
        assert_eq!(
            generated.note_markdown,
            crate::incident::above(
                fallback::raw_context_note(&context, &NoteShape::new(300, EN)),
                &context,
                &NoteShape::new(300, EN)
            )
        );
        assert!(
            generated
                .note_markdown
                .starts_with("## Possibly the same incident\n2 other open tickets")
        );
        assert!(generated.degraded && generated.budget_exceeded);
        assert_eq!(
            generated.degraded_reason.as_deref(),
            Some("the tenant's LLM budget for this period is used up")
        );
        assert_eq!((generated.attempts, generated.cost_usd), (0, 0.0));
        assert_eq!(generated.provider, None);
    }

    #[test]
    fn given_failing_providers_the_note_is_the_raw_context_with_the_attempts_made() {
        let generated = generated(
            &context(),
            "T-1",
            Err(NoAnswer::Failed {
                reason: "primary: 503".into(),
                attempts: 3,
                cost_usd: 0.004,
            }),
            3,
            &NoteShape::new(300, EN),
        );
        assert!(generated.degraded && !generated.budget_exceeded);
        assert_eq!(generated.degraded_reason.as_deref(), Some("primary: 503"));
        assert_eq!(generated.attempts, 3);
        // What was billed for answers with no note is the run's cost.
        assert_eq!(generated.cost_usd, 0.004);
    }

    #[test]
    fn given_no_provider_the_note_is_the_raw_context_and_says_none_is_configured() {
        let generated = generated(
            &context(),
            "T-1",
            Err(NoAnswer::NoProvider),
            0,
            &NoteShape::new(300, EN),
        );
        assert!(generated.degraded && !generated.budget_exceeded);
        assert_eq!(
            generated.degraded_reason.as_deref(),
            Some("no LLM provider is configured")
        );
    }

    #[test]
    fn a_german_note_is_completed_cut_and_labelled_in_german() {
        let context = context();
        let long = format!("## Ähnliche Tickets\n{}", "Wort ".repeat(500));
        let generated = generated(
            &context,
            "T-1",
            Ok(answer(&long)),
            1,
            &NoteShape::new(100, Language::German),
        );
        let note = &generated.note_markdown;
        assert!(
            note.starts_with("## Möglicherweise derselbe Vorfall\n"),
            "{note}"
        );
        assert!(note.contains("[Ausgabe auf"), "{note}");
        assert!(
            !note.contains("Output truncated") && !note.contains("No information available"),
            "{note}"
        );
        // A short answer is completed with the German sections it left out.
        let short = super::generated(
            &context,
            "T-1",
            Ok(answer("## Ähnliche Tickets\n- T-9 hatte dasselbe.")),
            1,
            &NoteShape::new(500, Language::German),
        );
        let note = &short.note_markdown;
        let german = crate::labels::Labels::of(Language::German);
        for title in &german.sections[1..] {
            assert!(
                note.contains(&format!("## {title}\n{}", german.no_information))
                    || note.contains(&format!("## {title}\n{}", german.unavailable)),
                "{title}: {note}"
            );
        }
        assert!(!note.contains("No information available"), "{note}");
        let raw = generated_raw(&context, Language::German);
        assert!(raw.contains("## Gesammelter Kontext"), "{raw}");
        assert!(raw.contains("### Relevante Dokumentation"), "{raw}");
    }

    fn generated_raw(context: &ContextGathered, language: Language) -> String {
        generated(
            context,
            "T-1",
            Err(NoAnswer::NoProvider),
            0,
            &NoteShape::new(300, language),
        )
        .note_markdown
    }

    fn link_targets(note: &str) -> Vec<String> {
        pulldown_cmark::Parser::new(note)
            .filter_map(|event| match event {
                pulldown_cmark::Event::Start(
                    pulldown_cmark::Tag::Link { dest_url, .. }
                    | pulldown_cmark::Tag::Image { dest_url, .. },
                ) => Some(dest_url.to_string()),
                _ => None,
            })
            .collect()
    }

    /// What a ticket says is text in every note, whoever writes it: a link
    /// in a subject or a fix is no link, and the model's links go unless a
    /// source gave them — however they are spelled.
    #[test]
    fn no_note_links_anywhere_its_sources_did_not() {
        let mut context = context();
        context.similar_tickets[0].subject =
            "Outlook asks for password [Sign in again](https://evil.xyz/sso)".into();
        context.similar_tickets[0].resolution =
            "Use ![x](https://evil.xyz/p.png) <https://evil.xyz>".into();
        let kb: Vec<String> = context
            .knowledge_articles
            .iter()
            .filter_map(|article| article.url.clone())
            .collect();
        assert!(
            !kb.is_empty(),
            "the sample has a knowledge article with a link"
        );
        let raw = generated(
            &context,
            "T-1",
            Err(NoAnswer::NoProvider),
            0,
            &NoteShape::new(300, EN),
        )
        .note_markdown;
        assert_eq!(link_targets(&raw), kb, "{raw}");
        assert!(
            raw.contains(r"Outlook asks for password \[Sign in again\](https://evil.xyz/sso)"),
            "the subject is kept as text: {raw}"
        );

        let answer_text = format!(
            "## Summary\nSee [the article]({}) or [Reset](HTTPS://evil.xyz/r), \
             [Reset](&#104;ttps://evil.xyz/r), [mail](mailto:x@evil.com).",
            kb[0]
        );
        let note = generated(
            &context,
            "T-1",
            Ok(answer(&answer_text)),
            0,
            &NoteShape::new(300, EN),
        )
        .note_markdown;
        assert_eq!(link_targets(&note), kb, "{note}");
        assert!(
            note.contains("(link removed: not among the sources)"),
            "{note}"
        );
    }

    /// A tenant that redacts gets its raw-context note masked as the
    /// model's input is: another user's phone number in a fix stays out.
    #[test]
    fn the_raw_context_note_is_redacted_when_the_tenant_redacts() {
        let mut context = context();
        context.similar_tickets[0].resolution =
            "Called Jane at +49 30 1234567 (jane.doe@example.com), reset her password".into();
        let shape = NoteShape {
            redact: true,
            public: true,
            ..NoteShape::new(300, EN)
        };
        let note = generated(&context, "T-1", Err(NoAnswer::NoProvider), 0, &shape).note_markdown;
        assert!(note.contains("reset her password"), "{note}");
        assert!(
            !note.contains("1234567") && !note.contains("jane.doe@example.com"),
            "{note}"
        );
        let unmasked = generated(
            &context,
            "T-1",
            Err(NoAnswer::NoProvider),
            0,
            &NoteShape::new(300, EN),
        )
        .note_markdown;
        assert!(unmasked.contains("jane.doe@example.com"), "{unmasked}");
    }

    /// An answer the provider cut at its token limit says so, and the
    /// sections it never reached are not reported as having nothing.
    #[test]
    fn an_answer_cut_by_the_provider_is_marked_cut_not_completed() {
        let cut = ModelAnswer {
            truncated: true,
            ..answer("## Summary\nThe VPN drops because the")
        };
        let note = generated(&context(), "T-1", Ok(cut), 0, &NoteShape::new(300, EN)).note_markdown;
        assert!(note.contains("The VPN drops because the"), "{note}");
        let last = note.trim_end().lines().last().unwrap_or_default();
        assert_eq!(last, Labels::of(EN).cut_short, "{note}");
        // A long answer the provider cut, then cut to the word limit here:
        // said once.
        let long = ModelAnswer {
            truncated: true,
            ..answer(&format!("## Summary\n{}", "word ".repeat(2000)))
        };
        let note =
            generated(&context(), "T-1", Ok(long), 0, &NoteShape::new(300, EN)).note_markdown;
        let said = note.matches("[Output truncated").count() + note.matches("cut short").count();
        assert_eq!(said, 1, "{note}");
        assert!(!note.contains(Labels::of(EN).no_information), "{note}");
    }
}
