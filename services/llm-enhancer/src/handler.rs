//! `context.gathered` → `enhancement.generated`.
//!
//! The tenant's providers are tried in order (each with retries and a
//! circuit breaker); when none answers, or the tenant is over its LLM
//! budget, the ticket gets the labelled raw-context note instead, so no
//! ticket is left without help.

use std::sync::Arc;
use std::time::Instant;

use aia_bus::{Failure, Handled, Handler, HandlerError, TenantPolicy, Work};
use aia_events::{
    BudgetThresholdReached, ContextGathered, EnhancementFailed, Event, Payload, Stage,
};
use aia_llm::budget::{self, Budget};
use aia_llm::chain::{Chain, RetryPolicy};
use aia_llm::cost::PriceTable;
use aia_llm::{Message, Provider};
use aia_store::{Pool, TenantCache};
use tracing::Instrument;

use crate::generate::{self, ModelAnswer, NoAnswer};
use crate::metrics::{ModelLabels, OutcomeLabels, TenantLabels};
use crate::prompt;

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
    /// Replaying for an operator: the call is claimed and settled on the
    /// budget (it is paid for), but no budget alert is registered as sent.
    pub dry_run: bool,
}

impl Handler for LlmEnhancer {
    const NAME: &'static str = Stage::LlmEnhancer.as_str();
    const TENANTS: TenantPolicy = TenantPolicy::Active;
    type Input = ContextGathered;

    fn tenants(&self) -> &TenantCache {
        &self.tenants
    }

    async fn handle(&self, work: Work<'_, ContextGathered>) -> Result<Handled, HandlerError> {
        let Work {
            event,
            input: context,
            tenant,
            ..
        } = work;
        let settings = &tenant.settings;
        let max_words = usize::try_from(settings.max_note_words.clamp(100, 2000)).unwrap_or(500);
        let started = Instant::now();

        let providers = aia_llm::tenant::providers(&tenant, self.default_provider.as_ref());
        // The ticket's language, unless the tenant's technicians read one.
        let language = settings
            .languages
            .note_language(context.language.map(|read| read.language));
        let shape = generate::NoteShape {
            max_words,
            public: settings.note_visible_to_requester,
            redact: settings.redact_personal_data,
            language,
        };
        // What the model may write: the limit less what is put above it.
        let model_words = generate::model_words(context, &shape);
        let messages = prompt::messages(
            context,
            model_words,
            settings.redact_personal_data,
            language,
            settings.note_visible_to_requester,
        );
        // Room for the words (German and French take about three tokens a
        // word), the headings and the links: a note cut by the provider is
        // the exception, the word limit the rule.
        let max_tokens = u32::try_from(model_words * 3 + 200).unwrap_or(6200);
        let budget = Budget::of(settings);
        if budget.is_some() {
            self.metrics.seen(event.tenant_id.as_str());
        }
        // An operator's dry run makes a real, paid call: it is claimed and
        // settled on the budget like any, under a claim of its own.
        let claim_id = if self.dry_run {
            format!(
                "{}:dry-run:{}",
                event.correlation_id,
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            )
        } else {
            format!("{}:note", event.correlation_id)
        };
        let (decision, alert) = match budget {
            Some(budget) => {
                let estimate = self.estimate(&providers, &messages, max_tokens);
                self.check_budget(event, budget, &claim_id, estimate)
                    .await?
            }
            None => (budget::Decision::default(), None),
        };
        let answer = if decision.exceeded {
            tracing::warn!("Tenant is over its LLM budget; sending the raw context");
            Err(NoAnswer::OverBudget)
        } else if providers.is_empty() {
            Err(NoAnswer::NoProvider)
        } else {
            self.ask(event, &providers, &messages, max_tokens).await
        };
        if let Some(budget) = budget
            && !decision.exceeded
        {
            // The answer is paid for: a settle that fails must not throw it
            // away (the reservation stays counted, so the budget errs high).
            let cost = match &answer {
                Ok(answer) => answer.cost_usd,
                Err(NoAnswer::Failed { cost_usd, .. }) => *cost_usd,
                Err(_) => 0.0,
            };
            let settled = async {
                let mut client = self.db.get().await.map_err(aia_store::StoreError::from)?;
                if self.dry_run {
                    // Claimed at its known cost and settled at once.
                    budget::claim(&mut client, &event.tenant_id, &claim_id, budget, cost).await?;
                }
                budget::settle(&mut client, &event.tenant_id, &claim_id, cost).await
            };
            if let Err(err) = settled.await {
                tracing::warn!(error = %err, "the call's cost was not settled on the budget");
            }
        }
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let generated = generate::generated(
            context,
            event.ticket_id.as_str(),
            answer,
            latency_ms,
            &shape,
        );
        self.count(event, &generated, alert.is_some());
        let mut events = vec![Event::caused_by(
            event,
            Payload::EnhancementGenerated(generated),
        )];
        events.extend(alert);
        Ok(Handled::Publish(events))
    }

    fn failed(&self, event: &Event, failure: Failure<'_>) -> Option<Event> {
        Some(Event::caused_by(
            event,
            Payload::EnhancementFailed(EnhancementFailed {
                stage: Stage::LlmEnhancer,
                reason: failure.reason.to_owned(),
                attempts: failure.attempts,
            }),
        ))
    }
}

impl LlmEnhancer {
    /// The most the call may cost: the prompt at about four characters a
    /// token and the longest answer allowed, at the dearest of the
    /// providers it may reach.
    fn estimate(&self, providers: &[Provider], messages: &[Message], max_tokens: u32) -> f64 {
        let tokens_in = messages
            .iter()
            .map(|message| aia_llm::estimated_tokens(&message.content))
            .sum();
        providers
            .iter()
            .map(|provider| {
                let tokens_out = aia_llm::completion_allowance(&provider.model, max_tokens);
                self.prices.cost(&provider.model, tokens_in, tokens_out)
            })
            .fold(0.0, f64::max)
    }

    /// Claims the call's estimated cost on the tenant's budget, and the
    /// alert this ticket publishes if it is the first past the alert share
    /// this period (never for an operator's dry run, which publishes
    /// nothing).
    async fn check_budget(
        &self,
        event: &Event,
        budget: Budget,
        claim_id: &str,
        estimate: f64,
    ) -> Result<(budget::Decision, Option<Event>), HandlerError> {
        let mut client = self.db.get().await?;
        // A dry run reserves nothing (an operator may drop it mid-call, and
        // nothing would settle a reservation of its own): it decides on the
        // spend and records its cost once it is known.
        let (spent, decision) = if self.dry_run {
            let spent = budget::spent(&mut client, &event.tenant_id, budget).await?;
            (spent, budget::decide(budget, spent, estimate))
        } else {
            let claimed =
                budget::claim(&mut client, &event.tenant_id, claim_id, budget, estimate).await?;
            (claimed.spent, claimed.decision)
        };
        let alert = if decision.alert
            && !self.dry_run
            && budget::first_alert(&mut client, &event.tenant_id, budget, claim_id).await?
        {
            tracing::warn!(
                spent,
                budget_usd = budget.budget_usd,
                "Tenant reached its LLM budget alert threshold"
            );
            Some(Event::caused_by(
                event,
                Payload::BudgetThresholdReached(BudgetThresholdReached {
                    spent_usd: spent,
                    budget_usd: budget.budget_usd,
                    alert_ratio: budget.alert_ratio,
                    period_start: budget.period_start(),
                    period_days: budget.period_days,
                }),
            ))
        } else {
            None
        };
        Ok((decision, alert))
    }

    /// Asks the providers in order for the note.
    async fn ask(
        &self,
        event: &Event,
        providers: &[Provider],
        messages: &[Message],
        max_tokens: u32,
    ) -> Result<ModelAnswer, NoAnswer> {
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
            .complete(&self.http, providers, messages, max_tokens, self.retry)
            .instrument(span.clone())
            .await;
        // Answers billed that held no note are paid for all the same.
        let billed = |billed: &[aia_llm::Billed]| -> f64 {
            billed
                .iter()
                .map(|paid| {
                    self.paid(
                        event,
                        &paid.configured,
                        &paid.model,
                        paid.tokens_in,
                        paid.tokens_out,
                    )
                })
                .sum()
        };
        match result {
            Ok(success) => {
                let also_paid = billed(&success.billed);
                let completion = success.completion;
                span.record("gen_ai.response.model", completion.model.as_str());
                span.record("gen_ai.usage.input_tokens", completion.tokens_in);
                span.record("gen_ai.usage.output_tokens", completion.tokens_out);
                let cost = self.paid(
                    event,
                    &providers[success.provider].model,
                    &completion.model,
                    completion.tokens_in,
                    completion.tokens_out,
                );
                Ok(ModelAnswer {
                    cost_usd: also_paid + cost,
                    content: completion.content,
                    provider: providers[success.provider].name.clone(),
                    model: completion.model,
                    tokens_in: completion.tokens_in,
                    tokens_out: completion.tokens_out,
                    attempts: success.attempts,
                    truncated: completion.truncated,
                })
            }
            Err(failure) => Err(NoAnswer::Failed {
                attempts: failure.attempts,
                cost_usd: billed(&failure.billed),
                reason: failure.to_string(),
            }),
        }
    }

    /// The cost of one billed answer (the provider configured with
    /// `configured` names `model` in it), counted in the tenant's token
    /// and cost series.
    fn paid(
        &self,
        event: &Event,
        configured: &str,
        model: &str,
        tokens_in: u32,
        tokens_out: u32,
    ) -> f64 {
        let cost = self
            .prices
            .cost_as(configured, model, tokens_in, tokens_out);
        let labels = ModelLabels {
            tenant_id: self.metrics.tenant.of(event.tenant_id.as_str()),
            model: model.to_owned(),
        };
        let metrics = &self.metrics;
        metrics
            .tokens_in
            .get_or_create(&labels)
            .inc_by(u64::from(tokens_in));
        metrics
            .tokens_out
            .get_or_create(&labels)
            .inc_by(u64::from(tokens_out));
        metrics.cost_usd.get_or_create(&labels).inc_by(cost);
        cost
    }

    /// Notes by outcome, budget refusals and alerts.
    fn count(&self, event: &Event, generated: &aia_events::EnhancementGenerated, alerted: bool) {
        let tenant_label = TenantLabels {
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
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        if alerted {
            self.metrics
                .budget_alerts
                .get_or_create(&tenant_label)
                .inc();
        }
    }
}
