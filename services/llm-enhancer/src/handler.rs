//! `context.gathered` → `enhancement.generated`.
//!
//! The model is asked a few times on transient failures; when it still
//! does not answer, the ticket gets the labelled raw-context note instead,
//! so no ticket is left without help.

use std::time::{Duration, Instant};

use aia_bus::{Delivery, Handled, Handler, HandlerError};
use aia_events::{EnhancementFailed, EnhancementGenerated, Event, Payload, Stage};
use aia_llm::{LlmError, Provider};
use tracing::Instrument;

use crate::{fallback, ground, prompt};

const ATTEMPTS: u32 = 3;

pub struct LlmEnhancer {
    pub http: reqwest::Client,
    pub provider: Option<Provider>,
    pub max_note_words: usize,
}

impl Handler for LlmEnhancer {
    async fn handle(&self, event: Event, _delivery: Delivery) -> Result<Handled, HandlerError> {
        let Payload::ContextGathered(context) = &event.payload else {
            return Ok(Handled::Nothing);
        };
        let started = Instant::now();
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
            latency_ms: 0,
            attempts: 0,
            degraded: false,
            degraded_reason: None,
            context_summary: fallback::context_summary(context),
        };
        let outcome = match &self.provider {
            None => Err("no LLM provider is configured".to_owned()),
            Some(provider) => {
                let messages = prompt::messages(context, self.max_note_words, true);
                let mut last_error = String::new();
                let mut result = None;
                for attempt in 1..=ATTEMPTS {
                    generated.attempts = attempt;
                    match self.call(provider, &messages).await {
                        Ok(completion) => {
                            result = Some(completion);
                            break;
                        }
                        Err(LlmError::Permanent { reason }) => {
                            last_error = reason;
                            break;
                        }
                        Err(LlmError::Transient {
                            reason,
                            retry_after,
                        }) => {
                            last_error = reason;
                            if attempt < ATTEMPTS {
                                let backoff = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                                tokio::time::sleep(
                                    retry_after.unwrap_or(backoff).min(Duration::from_secs(10)),
                                )
                                .await;
                            }
                        }
                    }
                }
                match result {
                    Some(completion) => {
                        generated.provider = Some(provider.name.clone());
                        generated.model = Some(completion.model);
                        generated.tokens_in = completion.tokens_in;
                        generated.tokens_out = completion.tokens_out;
                        Ok(completion.content)
                    }
                    None => Err(last_error),
                }
            }
        };
        match outcome {
            Ok(note) => {
                let grounded = ground::ground(&note, context, event.ticket_id.as_str());
                if grounded.unverified > 0 {
                    tracing::info!(
                        unverified = grounded.unverified,
                        "Marked citations that are not in the context"
                    );
                }
                generated.note_markdown =
                    prompt::enforce_word_limit(&grounded.note, self.max_note_words);
            }
            Err(reason) => {
                tracing::warn!(reason = %reason, "No model note; sending the raw context");
                generated.note_markdown = fallback::raw_context_note(context);
                generated.degraded = true;
                generated.degraded_reason = Some(reason);
            }
        }
        generated.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(Handled::Publish(vec![Event::caused_by(
            &event,
            Payload::EnhancementGenerated(generated),
        )]))
    }

    fn gave_up(&self, event: &Event, reason: &str, attempts: u32) -> Event {
        Event::caused_by(
            event,
            Payload::EnhancementFailed(EnhancementFailed {
                stage: Stage::LlmEnhancer,
                reason: reason.to_owned(),
                attempts,
            }),
        )
    }
}

impl LlmEnhancer {
    async fn call(
        &self,
        provider: &Provider,
        messages: &[aia_llm::Message],
    ) -> Result<aia_llm::Completion, LlmError> {
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {}", provider.model),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = %provider.name,
            gen_ai.request.model = %provider.model,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        let max_tokens = u32::try_from(self.max_note_words * 2).unwrap_or(4000);
        let result = aia_llm::complete(&self.http, provider, messages, max_tokens)
            .instrument(span.clone())
            .await;
        if let Ok(completion) = &result {
            span.record("gen_ai.usage.input_tokens", completion.tokens_in);
            span.record("gen_ai.usage.output_tokens", completion.tokens_out);
        }
        result
    }
}
