//! Debugging a ticket from its events: its story in order, one stage run
//! again on its recorded input with today's code (publishing and writing
//! nothing), a re-drive into the pipeline, and a range of the stream — all
//! through temporary consumers that leave the stages' durable consumers as
//! they are.

use std::time::Duration;

use aia_bus::{JetStream, STREAM};
use aia_events::{Event, Payload, Stage, TenantId, TicketId, subject};
use anyhow::Context as _;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

/// One event as the story shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoryLine {
    pub stream_sequence: u64,
    pub occurred_at: DateTime<Utc>,
    pub event_type: String,
    /// The stage that published it.
    pub stage: &'static str,
    pub event_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Uuid,
    /// The stage's own count of tries, where the event records one.
    pub attempts: Option<u32>,
    pub trace_id: Option<String>,
    pub summary: String,
    #[serde(skip)]
    pub event: Event,
}

/// The stage that publishes an event type.
pub fn producer(event_type: &str) -> &'static str {
    match event_type {
        "ticket.received" | "ticket.resolved" | "enhancement.rated" => "ingress",
        "context.gathered" => "context-gatherer",
        "enhancement.generated" | "budget.threshold_reached" => "llm-enhancer",
        "writeback.completed" | "writeback.failed" => "writeback",
        "enhancement.failed" => "context-gatherer or llm-enhancer",
        _ => "unknown",
    }
}

fn summary(event: &Event) -> String {
    match &event.payload {
        Payload::TicketReceived(p) => format!(
            "{:?} via {}: {:?}",
            p.change,
            p.source.as_str(),
            p.subject.as_deref().unwrap_or("")
        ),
        Payload::TicketResolved(p) => format!("resolved: {}", p.subject),
        Payload::ContextGathered(p) => {
            let sources: Vec<String> = p
                .sources
                .iter()
                .map(|s| format!("{:?}={:?}", s.source, s.status))
                .collect();
            format!(
                "{} similar ({}), {} articles, {} systems, {} related open; {}",
                p.similar_tickets.len(),
                p.similar_tickets
                    .iter()
                    .map(|t| t.ticket_id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.knowledge_articles.len(),
                p.systems.len(),
                p.related_open.len(),
                sources.join(" ")
            )
        }
        Payload::EnhancementGenerated(p) => format!(
            "note by {} ({} words){}",
            p.model.as_deref().unwrap_or("raw context"),
            p.note_markdown.split_whitespace().count(),
            p.degraded_reason
                .as_deref()
                .map(|r| format!(", degraded: {r}"))
                .unwrap_or_default()
        ),
        Payload::EnhancementFailed(p) => format!("{} failed: {}", p.stage.as_str(), p.reason),
        Payload::WritebackCompleted(p) => format!(
            "note {} on {}{}",
            p.note_id.as_deref().unwrap_or("-"),
            p.itsm.as_str(),
            if p.already_present {
                " (found already present)"
            } else {
                ""
            }
        ),
        Payload::WritebackFailed(p) => format!("write-back failed: {}", p.reason),
        Payload::EnhancementRated(p) => {
            format!("rated: stars {:?}, thumbs up {:?}", p.stars, p.thumbs_up)
        }
        Payload::BudgetThresholdReached(p) => format!(
            "budget alert: {:.2} of {:.2} USD",
            p.spent_usd, p.budget_usd
        ),
        Payload::IncidentDetected(p) => format!("incident detected: {}", p.summary),
        Payload::IncidentUpdated(p) => format!(
            "incident v{} {:?}: {:?}, {} tickets{}",
            p.version,
            p.change,
            p.status,
            p.ticket_count,
            p.ticket
                .as_ref()
                .map(|t| format!(", {} joined", t.ticket_id))
                .unwrap_or_default()
        ),
    }
}

fn attempts(event: &Event) -> Option<u32> {
    match &event.payload {
        Payload::EnhancementGenerated(p) => Some(p.attempts),
        Payload::EnhancementFailed(p) => Some(p.attempts),
        Payload::WritebackCompleted(p) => Some(p.attempts),
        Payload::WritebackFailed(p) => Some(p.attempts),
        _ => None,
    }
}

/// How long a read waits for the next event before it gives up: an
/// election on a cluster takes a few seconds.
const READ_WAIT: Duration = Duration::from_secs(15);

/// Reads the events matching `filter`, in stream order, optionally from a
/// sequence or a time, up to what the stream held when the read began.
pub async fn read(
    jetstream: &JetStream,
    filter: &str,
    from_sequence: Option<u64>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<StoryLine>> {
    read_from(jetstream, filter, from_sequence, since, until, false).await
}

/// [`read`], `whole`: to the end even where the server's count of what is
/// left is stale (a cluster whose leader just changed), at the price of a
/// quiet wait at the end.
async fn read_from(
    jetstream: &JetStream,
    filter: &str,
    from_sequence: Option<u64>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    whole: bool,
) -> anyhow::Result<Vec<StoryLine>> {
    let mut stream = jetstream
        .get_stream(STREAM)
        .await
        .context("stream TICKETS")?;
    let last = stream.info().await?.state.last_sequence;
    let deliver_policy = match (from_sequence, since) {
        (Some(sequence), _) => DeliverPolicy::ByStartSequence {
            start_sequence: sequence.max(1),
        },
        (None, Some(since)) => DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                since.timestamp_nanos_opt().unwrap_or(0),
            ))
            .context("start time")?,
        },
        (None, None) => DeliverPolicy::All,
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("creating a temporary consumer")?;
    let mut lines = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(lines);
    }
    let messages = consumer.messages().await?;
    if whole {
        // Read to the end: on a cluster the server's count of what is left
        // can be a moment stale, so "nothing more" is believed only once
        // nothing more comes for a while. What a re-drive acts on is read
        // so; a page shown to a person is not kept waiting for it.
        let mut reader = aia_bus::read::ToEnd::new(messages, last);
        while let Some((message, sequence)) = reader
            .next()
            .await
            .map_err(|err| anyhow::anyhow!("reading the story: {err}; try again"))?
        {
            if let Some(line) = story_line(&message, sequence, since, until)? {
                lines.push(line);
            }
        }
        return Ok(lines);
    }
    let mut messages = messages;
    loop {
        // A story cut short is worse than none: a re-drive would pick the
        // latest input it saw, perhaps an older run's.
        let message = match tokio::time::timeout(READ_WAIT, messages.next()).await {
            Ok(Some(message)) => message?,
            Ok(None) => anyhow::bail!("the stream stopped delivering the events"),
            Err(_) => anyhow::bail!(
                "the stream delivered no event for {} s before the end of the story (a leader election?); try again",
                READ_WAIT.as_secs()
            ),
        };
        let info = message.info().map_err(|err| anyhow::anyhow!("{err}"))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence > last {
            break;
        }
        if let Some(line) = story_line(&message, sequence, since, until)? {
            lines.push(line);
        }
        if pending == 0 || sequence >= last {
            break;
        }
    }
    Ok(lines)
}

/// The story line of one message, if it is in the time range; an error for
/// an event a newer build wrote.
fn story_line(
    message: &async_nats::jetstream::Message,
    sequence: u64,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<StoryLine>> {
    let event = match Event::from_json(&message.payload) {
        Ok(event) => event,
        // A story without the newest events is worse than none: a
        // re-drive would take an older run's input for the latest.
        Err(err) if err.is_from_a_newer_build() => anyhow::bail!(
            "event #{sequence} was written by a newer build ({err}); run this with the newer aiagents"
        ),
        // An event no build can read is not part of any story.
        Err(err) => {
            tracing::warn!(sequence, error = %err, "Event left out of the story: unreadable");
            return Ok(None);
        }
    };
    // `since` is the events' own time, as `until` is: the stream's start by
    // time only saves reading what comes before.
    if until.is_some_and(|until| event.occurred_at >= until)
        || since.is_some_and(|since| event.occurred_at < since)
    {
        return Ok(None);
    }
    let trace_id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get("traceparent"))
        .and_then(|value| aia_telemetry::trace_id_of(value.as_str()).map(str::to_owned));
    Ok(Some(StoryLine {
        stream_sequence: sequence,
        occurred_at: event.occurred_at,
        event_type: event.event_type().to_owned(),
        stage: producer(event.event_type()),
        event_id: event.event_id,
        causation_id: event.causation_id,
        correlation_id: event.correlation_id,
        attempts: attempts(&event),
        trace_id,
        summary: summary(&event),
        event,
    }))
}

/// Every event of one ticket, in order.
pub async fn story(
    jetstream: &JetStream,
    tenant: &TenantId,
    ticket: &TicketId,
) -> anyhow::Result<Vec<StoryLine>> {
    ticket_story(jetstream, tenant, ticket, false).await
}

/// [`story`], read to its end even on a cluster whose count of what is left
/// is a moment stale: what a re-drive chooses its input from.
pub async fn whole_story(
    jetstream: &JetStream,
    tenant: &TenantId,
    ticket: &TicketId,
) -> anyhow::Result<Vec<StoryLine>> {
    ticket_story(jetstream, tenant, ticket, true).await
}

async fn ticket_story(
    jetstream: &JetStream,
    tenant: &TenantId,
    ticket: &TicketId,
    whole: bool,
) -> anyhow::Result<Vec<StoryLine>> {
    let filter = subject::filter_for_ticket(subject::DEFAULT_PREFIX, tenant, ticket);
    let lines = read_from(jetstream, &filter, None, None, None, whole).await?;
    anyhow::ensure!(
        !lines.is_empty(),
        "no events for ticket {ticket} of tenant {tenant}"
    );
    Ok(lines)
}

/// Which event a stage consumes.
pub fn input_type(stage: Stage) -> anyhow::Result<&'static str> {
    Ok(match stage {
        Stage::ContextGatherer => "ticket.received",
        Stage::LlmEnhancer => "context.gathered",
        Stage::Writeback => "enhancement.generated",
        other => anyhow::bail!("{} does not run on a single input event", other.as_str()),
    })
}

pub fn parse_stage(raw: &str) -> anyhow::Result<Stage> {
    Ok(match raw {
        "context-gatherer" => Stage::ContextGatherer,
        "llm-enhancer" => Stage::LlmEnhancer,
        "writeback" => Stage::Writeback,
        other => anyhow::bail!(
            "unknown stage {other:?}: choose context-gatherer, llm-enhancer or writeback"
        ),
    })
}

/// The stage's recorded input for the ticket (the latest run, or `run`), and
/// what the stage recorded as its output for it.
pub fn input_and_output(
    lines: &[StoryLine],
    stage: Stage,
    run: Option<Uuid>,
) -> anyhow::Result<(Event, Option<Event>)> {
    let wanted = input_type(stage)?;
    let input = lines
        .iter()
        .rev()
        .find(|line| line.event_type == wanted && run.is_none_or(|run| line.correlation_id == run))
        .map(|line| line.event.clone())
        .with_context(|| {
            format!(
                "the ticket has no {wanted} event{}",
                run.map(|r| format!(" in run {r}")).unwrap_or_default()
            )
        })?;
    let output = lines
        .iter()
        .find(|line| line.causation_id == Some(input.event_id))
        .map(|line| line.event.clone());
    Ok((input, output))
}

/// Publishes a copy of `input` for its stage to handle again. With
/// `new_run`, the copy starts a run of its own (so write-back posts a new
/// note); otherwise it stays in the original run, where write-back's
/// exactly-once rule posts nothing twice.
pub async fn redrive(jetstream: &JetStream, input: &Event, new_run: bool) -> anyhow::Result<Uuid> {
    let copy = if new_run {
        let mut copy = Event::republished_in_new_run(input);
        // The new run did not pay for what its copied input records (the
        // original's note, the original's query rewrite): counted again,
        // the tenant's spend would hold it twice.
        match &mut copy.payload {
            aia_events::Payload::EnhancementGenerated(generated) => {
                generated.cost_usd = 0.0;
                generated.tokens_in = 0;
                generated.tokens_out = 0;
            }
            aia_events::Payload::ContextGathered(context) => {
                if let Some(rewrite) = context.query_rewrite.as_mut() {
                    rewrite.cost_usd = 0.0;
                    rewrite.tokens_in = 0;
                    rewrite.tokens_out = 0;
                }
            }
            _ => {}
        }
        copy
    } else {
        Event::republished(input)
    };
    aia_bus::publish_event(
        jetstream,
        &copy,
        &aia_bus::msg_id::replayed(input.event_id, copy.event_id),
    )
    .await?;
    Ok(copy.event_id)
}

/// What a stage makes of its recorded input with today's code and
/// configuration, beside what it recorded then. Publishes nothing: the
/// stage's handler runs directly (no consumer, no publish), the LLM stage
/// records only its call's cost on the tenant's budget (no alert), and
/// write-back only composes and renders the note it would post. Tenants are read through `tenants` (the
/// caller's database and keys); the embedder and the deployment's LLM come
/// from the environment, as the stages' own do; `public_url` is the
/// ingress's, for the note's feedback links.
pub async fn dry_run(
    stage: Stage,
    input: &Event,
    recorded: Option<&Event>,
    tenants: std::sync::Arc<aia_store::TenantCache>,
    public_url: Option<&str>,
) -> anyhow::Result<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A paused tenant's stages set events aside, which is a write.
    if tenants
        .fresh(&input.tenant_id)
        .await?
        .is_some_and(|tenant| tenant.paused)
    {
        anyhow::bail!(
            "tenant {} is paused; resume it to dry-run its stages",
            input.tenant_id
        );
    }
    let delivery = aia_bus::Delivery {
        attempt: 1,
        max_deliver: None,
        stream_sequence: 0,
    };
    let recorded_summary = || recorded.map(summary).unwrap_or_else(|| "(nothing)".into());
    let mut out = String::new();
    match stage {
        Stage::ContextGatherer => {
            let http = aia_http::outbound::client_builder().build()?;
            let local_embedder = aia_config::optional("EMBEDDINGS_URL").map(|url| {
                context_gatherer::embedder_service(
                    &http,
                    &url,
                    aia_config::optional("EMBEDDER_API_KEY"),
                )
            });
            let handler = context_gatherer::ContextGatherer {
                db: tenants.db().clone(),
                tenants,
                local_embedder,
                http,
                knowledge_cache: Default::default(),
                source_timeout: context_gatherer::DEFAULT_SOURCE_TIMEOUT,
                budget: context_gatherer::DEFAULT_BUDGET,
                monitoring_timeout: context_gatherer::DEFAULT_MONITORING_TIMEOUT,
                max_similar_tickets: context_gatherer::DEFAULT_MAX_SIMILAR_TICKETS,
                related: context_gatherer::sources::related::Related::dry_run(),
                metrics: Default::default(),
                // A dry run spends nothing: it searches with the ticket alone.
                rewriter: None,
            };
            let now = only_output(aia_bus::dispatch(&handler, input, delivery).await)?;
            out.push_str(&format!("recorded: {}\n", recorded_summary()));
            out.push_str(&format!("now:      {}\n", summary(&now)));
        }
        Stage::LlmEnhancer => {
            let handler = llm_enhancer::LlmEnhancer {
                db: tenants.db().clone(),
                tenants,
                http: aia_http::outbound::client_builder().build()?,
                chain: Default::default(),
                default_provider: aia_llm::tenant::provider_from_env()?,
                prices: Default::default(),
                retry: Default::default(),
                metrics: llm_enhancer::metrics::LlmMetrics::register(
                    &aia_telemetry::metrics::registry(),
                ),
                dry_run: true,
            };
            let now = only_output(aia_bus::dispatch(&handler, input, delivery).await)?;
            let note = |event: &Event| match &event.payload {
                Payload::EnhancementGenerated(generated) => generated.note_markdown.clone(),
                _ => summary(event),
            };
            out.push_str(&format!(
                "--- recorded note ---\n{}\n",
                recorded.map(note).unwrap_or_else(|| "(nothing)".into())
            ));
            out.push_str(&format!("--- note now ---\n{}\n", note(&now)));
        }
        Stage::Writeback => {
            let (tenant, note) = writeback_note(input, &tenants, public_url).await?;
            let itsm = aia_itsm::Itsm::for_tenant(
                aia_http::outbound::client_builder().build()?,
                tenant.itsm,
                &tenant.itsm_base_url,
                tenant.itsm_credentials.expose(),
            )
            .map_err(|err| anyhow::anyhow!("the tenant's help desk is misconfigured: {err}"))?;
            out.push_str(&format!("recorded: {}\n", recorded_summary()));
            out.push_str(&format!(
                "would post to {} ticket {} ({}):\n{}\n",
                tenant.itsm.as_str(),
                input.ticket_id,
                if tenant.settings.note_visible_to_requester {
                    "visible to the requester"
                } else {
                    "internal"
                },
                itsm.render_note(&note).body
            ));
        }
        other => anyhow::bail!("{} cannot be dry-run", other.as_str()),
    }
    Ok(out)
}

/// The note write-back would post for `input` (an `enhancement.generated`)
/// with the tenant's settings of now, before the tool's rendering.
pub async fn writeback_note(
    input: &Event,
    tenants: &aia_store::TenantCache,
    public_url: Option<&str>,
) -> anyhow::Result<(std::sync::Arc<aia_store::Tenant>, String)> {
    let Payload::EnhancementGenerated(generated) = &input.payload else {
        anyhow::bail!("the write-back input is not an enhancement");
    };
    let tenant = tenants
        .fresh(&input.tenant_id)
        .await?
        .with_context(|| format!("tenant {} does not exist", input.tenant_id))?;
    let note = writeback::note::compose(
        &tenant.settings,
        &generated.note_markdown,
        generated.note_language,
        &input.tenant_id,
        &input.ticket_id,
        input.correlation_id,
        public_url.map(|public_url| writeback::note::Feedback {
            public_url,
            keyring: tenants.keyring(),
        }),
    );
    Ok((tenant, note))
}

fn only_output(handled: Result<aia_bus::Handled, aia_bus::HandlerError>) -> anyhow::Result<Event> {
    match handled {
        Ok(aia_bus::Handled::Publish(mut events)) if !events.is_empty() => Ok(events.remove(0)),
        Ok(_) => anyhow::bail!("the stage produced nothing for this input"),
        Err(err) => anyhow::bail!("the stage would retry: {err}"),
    }
}
