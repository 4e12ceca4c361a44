//! How the provider client reads what an OpenAI-compatible provider
//! answers beyond a plain note: reasoning models' parameters, an answer cut
//! at the token limit or stopped by a filter, and errors that name their
//! cause — against the stand-in, which refuses what OpenAI refuses.

use aia_llm::chain::{BREAKER_THRESHOLD, Chain, RetryPolicy};
use aia_llm::{LlmError, Message, Provider, ProviderKind};
use aia_standins::llm::{Behaviour, LlmStandIn};
use std::time::Duration;

struct Rig {
    llm: LlmStandIn,
    _server: aia_standins::Running,
    http: reqwest::Client,
    url: String,
}

async fn rig() -> Rig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let llm = LlmStandIn::new();
    let server = aia_standins::serve(llm.router()).await.unwrap();
    let url = format!("{}/v1", server.url());
    Rig {
        llm,
        _server: server,
        http: reqwest::Client::new(),
        url,
    }
}

impl Rig {
    fn provider(&self, model: &str, key: &str) -> Provider {
        Provider {
            name: "openai".into(),
            kind: ProviderKind::OpenAi,
            base_url: self.url.clone(),
            api_key: Some(key.into()),
            model: model.into(),
            timeout: Duration::from_secs(5),
        }
    }

    async fn complete(&self, model: &str) -> Result<aia_llm::Completion, LlmError> {
        aia_llm::complete(
            &self.http,
            &self.provider(model, "sk-test"),
            &[Message::user("The VPN drops every hour.")],
            600,
        )
        .await
    }
}

fn no_wait() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    }
}

#[tokio::test]
async fn a_reasoning_model_is_asked_as_it_accepts_with_room_to_reason() {
    let rig = rig().await;
    for model in ["o4-mini", "gpt-5-mini", "o3-2025-04-16"] {
        rig.complete(model).await.expect(model);
    }
    rig.complete("gpt-4o-mini").await.unwrap();
    let requests = rig.llm.requests();
    for request in &requests[..3] {
        assert!(request.get("max_tokens").is_none(), "{request}");
        assert!(request.get("temperature").is_none(), "{request}");
        assert!(request["max_completion_tokens"].as_u64().unwrap() >= 4096);
    }
    assert_eq!(requests[3]["max_tokens"], 600);
    assert!(requests[3].get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn an_answer_cut_at_the_token_limit_says_so() {
    let rig = rig().await;
    rig.llm
        .script([Behaviour::Cut("## Summary\nThe VPN drops because".into())]);
    let completion = rig.complete("gpt-4o-mini").await.unwrap();
    assert!(completion.truncated);
    assert!(!rig.complete("gpt-4o-mini").await.unwrap().truncated);
}

#[tokio::test]
async fn a_filtered_answer_is_not_asked_for_again() {
    let rig = rig().await;
    rig.llm.script([Behaviour::Filtered]);
    let chain = Chain::default();
    let failed = chain
        .complete(
            &rig.http,
            &[rig.provider("gpt-4o-mini", "sk-test")],
            &[Message::user("text")],
            100,
            no_wait(),
        )
        .await
        .unwrap_err();
    assert_eq!(failed.attempts, 1, "{failed}");
    assert!(failed.to_string().contains("refused to answer"), "{failed}");
}

#[tokio::test]
async fn an_error_names_its_cause_and_an_exhausted_quota_is_not_retried() {
    let rig = rig().await;
    rig.llm.script([Behaviour::Refused {
        code: 429,
        cause: "insufficient_quota",
    }]);
    let err = rig.complete("gpt-4o-mini").await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Permanent { reason, this_request_only: false }
            if reason.contains("HTTP 429 (insufficient_quota)")),
        "{err:?}"
    );
    rig.llm.script([Behaviour::Refused {
        code: 429,
        cause: "rate_limit_exceeded",
    }]);
    let err = rig.complete("gpt-4o-mini").await.unwrap_err();
    assert!(matches!(err, LlmError::Transient { .. }), "{err:?}");
}

/// A request the provider refuses for its own sake (too long, filtered)
/// says nothing about the provider: however many there are, the circuit
/// stays closed for the tickets after them.
#[tokio::test]
async fn refusals_of_single_requests_do_not_open_the_circuit() {
    let rig = rig().await;
    let chain = Chain::default();
    let provider = [rig.provider("gpt-4o-mini", "sk-test")];
    let refusals = usize::try_from(BREAKER_THRESHOLD).unwrap() + 2;
    rig.llm.script((0..refusals).map(|_| Behaviour::Refused {
        code: 400,
        cause: "context_length_exceeded",
    }));
    for _ in 0..refusals {
        let failed = chain
            .complete(&rig.http, &provider, &[Message::user("t")], 100, no_wait())
            .await
            .unwrap_err();
        assert!(
            failed.to_string().contains("context_length_exceeded"),
            "{failed}"
        );
    }
    let answered = chain
        .complete(&rig.http, &provider, &[Message::user("t")], 100, no_wait())
        .await;
    assert!(answered.is_ok(), "the circuit must still be closed");
}

/// Two tenants with keys of their own at one provider and model: one's
/// revoked key opens its own circuit, not the other's.
#[tokio::test]
async fn a_revoked_key_opens_only_its_own_circuit() {
    let rig = rig().await;
    let chain = Chain::default();
    let revoked = [rig.provider("gpt-4o-mini", "sk-revoked")];
    let other = [rig.provider("gpt-4o-mini", "sk-other")];
    rig.llm
        .script((0..BREAKER_THRESHOLD).map(|_| Behaviour::Refused {
            code: 401,
            cause: "invalid_api_key",
        }));
    for _ in 0..BREAKER_THRESHOLD {
        let _ = chain
            .complete(&rig.http, &revoked, &[Message::user("t")], 100, no_wait())
            .await;
    }
    let skipped = chain
        .complete(&rig.http, &revoked, &[Message::user("t")], 100, no_wait())
        .await
        .unwrap_err();
    assert_eq!(skipped.attempts, 0, "the revoked key's circuit is open");
    chain
        .complete(&rig.http, &other, &[Message::user("t")], 100, no_wait())
        .await
        .expect("the other tenant's key is still called");
}
