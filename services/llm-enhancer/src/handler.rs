//! `context.gathered` → `enhancement.generated`.
//!
//! The tenant's providers are tried in order (each with retries and a
//! circuit breaker); when none answers, or the tenant is over its LLM
//! budget, the ticket gets the labelled raw-context note instead, so no
//! ticket is left without help.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aia_bus::{Delivery, Handled, Handler, HandlerError};
use aia_events::{
    BudgetThresholdReached, EnhancementFailed, EnhancementGenerated, Event, Payload, Stage,
};
use aia_llm::chain::{Chain, RetryPolicy};
use aia_llm::{Provider, ProviderKind};
use aia_store::parking::{Hold, tenant_for};
use aia_store::{Pool, StoreError, Tenant, TenantCache};
use tracing::Instrument;

use crate::cost::PriceTable;
use crate::{budget, fallback, ground, prompt};

pub struct LlmEnhancer {
    pub db: Pool,
    /// The tenants, each read at most once per TTL.
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    pub chain: Chain,
    /// For tenants without providers of their own.
    pub default_provider: Option<Provider>,
    pub prices: PriceTable,
    pub retry: RetryPolicy,
    pub metrics: crate::metrics::LlmMetrics,
    /// Replaying for an operator: record nothing (no budget alert is
    /// registered as sent).
    pub dry_run: bool,
}

fn transient(err: StoreError) -> HandlerError {
    HandlerError::transient(format!("database: {err}"))
}

/// The tenant's providers, in fallback order, with their keys.
fn providers(tenant: &Tenant, default: Option<&Provider>) -> Vec<Provider> {
    if tenant.settings.llm_providers.is_empty() {
        return default.into_iter().cloned().collect();
    }
    tenant
        .settings
        .llm_providers
        .iter()
        .map(|settings| Provider {
            name: settings.name.clone(),
            kind: match (settings.kind.as_str(), &settings.api_version) {
                ("azure", Some(api_version)) => ProviderKind::Azure {
                    api_version: api_version.clone(),
                },
                ("azure", None) => ProviderKind::Azure {
                    api_version: "2024-10-21".into(),
                },
                _ => ProviderKind::OpenAi,
            },
            base_url: settings.base_url.clone(),
            api_key: tenant.integrations.llm_keys.get(&settings.name).cloned(),
            model: settings.model.clone(),
            timeout: Duration::from_secs(u64::from(settings.timeout_secs.clamp(1, 300))),
        })
        .collect()
}

impl Handler for LlmEnhancer {
    async fn handle(&self, event: Event, delivery: Delivery) -> Result<Handled, HandlerError> {
        let Payload::ContextGathered(context) = &event.payload else {
            return Ok(Handled::Nothing);
        };
        let stage = Stage::LlmEnhancer.as_str();
        let tenant = match tenant_for(&self.tenants, stage, &event, delivery.stream_sequence)
            .await
            .map_err(transient)?
        {
            Hold::SetAside => return Ok(Handled::Nothing),
            Hold::Proceed(Some(tenant)) => tenant,
            Hold::Proceed(None) => {
                return Ok(Handled::Publish(
                    self.gave_up(&event, "tenant does not exist", 1)
                        .into_iter()
                        .collect(),
                ));
            }
        };
        // Taken after the tenant's read, which may need a connection too: a
        // handler holds one at a time, so a full pool cannot deadlock.
        let mut client = self.db.get().await.map_err(|err| transient(err.into()))?;
        let settings = &tenant.settings;
        let max_words = usize::try_from(settings.max_note_words.clamp(100, 2000)).unwrap_or(500);
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
            budget_exceeded: false,
        };

        let mut alert = None;
        if let Some(budget_usd) = settings.llm_budget_usd {
            let period_days = settings.llm_budget_period_days;
            let spent = budget::spent(&mut client, &event.tenant_id, period_days)
                .await
                .map_err(transient)?;
            if spent > budget_usd * settings.llm_budget_grace_ratio {
                tracing::warn!(
                    spent,
                    budget_usd,
                    "Tenant is over its LLM budget; sending the raw context"
                );
                generated.budget_exceeded = true;
            }
            if spent >= budget_usd * settings.llm_budget_alert_ratio
                && !self.dry_run
                && budget::first_alert(&mut client, &event.tenant_id, period_days)
                    .await
                    .map_err(transient)?
            {
                tracing::warn!(
                    spent,
                    budget_usd,
                    "Tenant reached its LLM budget alert threshold"
                );
                alert = Some(Event::caused_by(
                    &event,
                    Payload::BudgetThresholdReached(BudgetThresholdReached {
                        spent_usd: spent,
                        budget_usd,
                        alert_ratio: settings.llm_budget_alert_ratio,
                        period_start: budget::period_start(
                            chrono::Utc::now().date_naive(),
                            period_days,
                        ),
                        period_days,
                    }),
                ));
            }
        }
        drop(client);

        let providers = providers(&tenant, self.default_provider.as_ref());
        let outcome = if generated.budget_exceeded {
            Err("the tenant's LLM budget for this period is used up".to_owned())
        } else if providers.is_empty() {
            Err("no LLM provider is configured".to_owned())
        } else {
            let messages = prompt::messages(context, max_words, settings.redact_personal_data);
            let max_tokens = u32::try_from(max_words * 2).unwrap_or(4000);
            let span = tracing::info_span!(
                "chat",
                otel.kind = "client",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = %providers[0].model,
                gen_ai.response.model = tracing::field::Empty,
                gen_ai.usage.input_tokens = tracing::field::Empty,
                gen_ai.usage.output_tokens = tracing::field::Empty,
            );
            let result = self
                .chain
                .complete(&self.http, &providers, &messages, max_tokens, self.retry)
                .instrument(span.clone())
                .await;
            match result {
                Ok(success) => {
                    let completion = success.completion;
                    span.record("gen_ai.response.model", completion.model.as_str());
                    span.record("gen_ai.usage.input_tokens", completion.tokens_in);
                    span.record("gen_ai.usage.output_tokens", completion.tokens_out);
                    generated.attempts = success.attempts;
                    generated.provider = Some(providers[success.provider].name.clone());
                    generated.cost_usd = self.prices.cost(
                        &completion.model,
                        completion.tokens_in,
                        completion.tokens_out,
                    );
                    let labels = crate::metrics::ModelLabels {
                        tenant_id: self.metrics.tenant.of(event.tenant_id.as_str()),
                        model: completion.model.clone(),
                    };
                    self.metrics
                        .tokens_in
                        .get_or_create(&labels)
                        .inc_by(u64::from(completion.tokens_in));
                    self.metrics
                        .tokens_out
                        .get_or_create(&labels)
                        .inc_by(u64::from(completion.tokens_out));
                    self.metrics
                        .cost_usd
                        .get_or_create(&labels)
                        .inc_by(generated.cost_usd);
                    generated.model = Some(completion.model);
                    generated.tokens_in = completion.tokens_in;
                    generated.tokens_out = completion.tokens_out;
                    Ok(completion.content)
                }
                Err(failure) => {
                    generated.attempts = failure.attempts;
                    Err(failure.to_string())
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
                    prompt::enforce_word_limit(&prompt::ensure_sections(&grounded.note), max_words);
            }
            Err(reason) => {
                tracing::warn!(reason = %reason, "No model note; sending the raw context");
                generated.note_markdown = fallback::raw_context_note(context);
                generated.degraded = true;
                generated.degraded_reason = Some(reason);
            }
        }
        generated.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let tenant_label = crate::metrics::TenantLabels {
            tenant_id: self.metrics.tenant.of(event.tenant_id.as_str()),
        };
        let outcome = match (generated.budget_exceeded, generated.degraded) {
            (true, _) => {
                self.metrics
                    .budget_exceeded
                    .get_or_create(&tenant_label)
                    .inc();
                "budget"
            }
            (false, true) => "degraded",
            (false, false) => "model",
        };
        self.metrics
            .notes
            .get_or_create(&crate::metrics::OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        if alert.is_some() {
            self.metrics
                .budget_alerts
                .get_or_create(&tenant_label)
                .inc();
        }
        let mut events = vec![Event::caused_by(
            &event,
            Payload::EnhancementGenerated(generated),
        )];
        events.extend(alert);
        Ok(Handled::Publish(events))
    }

    fn gave_up(&self, event: &Event, reason: &str, attempts: u32) -> Option<Event> {
        Some(Event::caused_by(
            event,
            Payload::EnhancementFailed(EnhancementFailed {
                stage: Stage::LlmEnhancer,
                reason: reason.to_owned(),
                attempts,
            }),
        ))
    }
}
