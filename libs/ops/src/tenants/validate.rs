//! What a tenant's settings must be before they are stored: limits in
//! range, an embeddings endpoint with its search and incident thresholds
//! coherent, and every address the services will call one they may call.
//! Refused settings change nothing and say which field is wrong.

use aia_store::TenantSettings;

use super::AdminError;

pub(super) fn validate_settings(settings: &TenantSettings) -> Result<(), AdminError> {
    if !(100..=2000).contains(&settings.max_note_words) {
        return Err(AdminError::Invalid(
            "settings.max_note_words: must be 100 to 2000".into(),
        ));
    }
    settings
        .incidents
        .check()
        .map_err(|err| AdminError::Invalid(format!("settings.{err}")))?;
    check_budget(settings).map_err(AdminError::Invalid)?;
    if !(1..=aia_store::tenant_settings::MAX_EVENT_AGE_HOURS)
        .contains(&settings.max_event_age_hours)
    {
        return Err(AdminError::Invalid(format!(
            "settings.max_event_age_hours: must be 1 to {}",
            aia_store::tenant_settings::MAX_EVENT_AGE_HOURS
        )));
    }
    if !(1..=aia_store::tenant_settings::MAX_REENHANCE_INTERVAL_MINS)
        .contains(&settings.reenhance_interval_mins)
    {
        return Err(AdminError::Invalid(format!(
            "settings.reenhance_interval_mins: must be 1 to {}",
            aia_store::tenant_settings::MAX_REENHANCE_INTERVAL_MINS
        )));
    }
    if settings.webhook_rate_limit_per_minute == Some(0) {
        return Err(AdminError::Invalid(
            "settings.webhook_rate_limit_per_minute: must be at least 1".into(),
        ));
    }
    for (field, embeddings) in [
        ("settings.embeddings", Some(&settings.embeddings)),
        (
            "settings.embeddings_next",
            settings.embeddings_next.as_ref(),
        ),
    ] {
        if let Some(aia_store::EmbeddingSettings::Endpoint(endpoint)) = embeddings {
            if !(endpoint.base_url.starts_with("https://")
                || endpoint.base_url.starts_with("http://"))
            {
                return Err(AdminError::Invalid(format!(
                    "{field}.base_url: must be an http(s) URL"
                )));
            }
            if endpoint.model.trim().is_empty() || endpoint.name.trim().is_empty() {
                return Err(AdminError::Invalid(format!(
                    "{field}: name and model are required"
                )));
            }
            if !(1..=120).contains(&endpoint.timeout_secs) {
                return Err(AdminError::Invalid(format!(
                    "{field}.timeout_secs: must be 1 to 120"
                )));
            }
            check_fusion(field, endpoint).map_err(AdminError::Invalid)?;
            outbound(&format!("{field}.base_url"), &endpoint.base_url)?;
        }
    }
    for (field, url) in [
        ("settings.knowledge_base_url", &settings.knowledge_base_url),
        ("settings.monitoring_url", &settings.monitoring_url),
        (
            "settings.incidents.webhook_url",
            &settings.incidents.webhook_url,
        ),
    ] {
        if let Some(url) = url {
            outbound(field, url)?;
        }
    }
    if let Some(url) = &settings.incidents.webhook_url
        && !super::is_http(url)
    {
        return Err(AdminError::Invalid(
            "settings.incidents.webhook_url: must be an http or https address".into(),
        ));
    }
    for provider in &settings.llm_providers {
        // Any other kind was taken for OpenAI's, and "Azure" answered 404
        // to every call without an api-version.
        if !matches!(provider.kind.as_str(), "openai" | "azure") {
            return Err(AdminError::Invalid(format!(
                "settings.llm_providers[{}].kind: must be \"openai\" (also LiteLLM, vLLM, Ollama) or \"azure\", not {:?}",
                provider.name, provider.kind
            )));
        }
        outbound(
            &format!("settings.llm_providers[{}].base_url", provider.name),
            &provider.base_url,
        )?;
    }
    Ok(())
}

/// An LLM budget the ledger and its alert can keep: a period of at least a
/// day (at most a year), a budget that is a sum of money, an alert share
/// below the grace share at which notes fall back to the raw context.
fn check_budget(settings: &TenantSettings) -> Result<(), String> {
    if !(1..=366).contains(&settings.llm_budget_period_days) {
        return Err("settings.llm_budget_period_days: must be 1 to 366".into());
    }
    if let Some(budget) = settings.llm_budget_usd
        && !(budget.is_finite() && budget >= 0.0)
    {
        return Err("settings.llm_budget_usd: must be a sum of at least 0".into());
    }
    let (alert, grace) = (
        settings.llm_budget_alert_ratio,
        settings.llm_budget_grace_ratio,
    );
    if !(alert.is_finite() && alert > 0.0 && alert <= 1.0) {
        return Err("settings.llm_budget_alert_ratio: must be above 0 and at most 1".into());
    }
    if !(grace.is_finite() && (alert..=10.0).contains(&grace)) {
        return Err(
            "settings.llm_budget_grace_ratio: must be at least the alert ratio and at most 10"
                .into(),
        );
    }
    Ok(())
}

/// The search thresholds of an endpoint model, where the tenant set them:
/// cosines in [-1, 1], the likely one not below the floor, a lexical bonus
/// of 0 to 0.5 (a larger one would let words outvote meaning), the two
/// cosines set together.
fn check_fusion(
    field: &str,
    endpoint: &aia_store::EmbeddingEndpointSettings,
) -> Result<(), String> {
    for (name, value) in [
        ("min_similarity", endpoint.min_similarity),
        ("likely_similarity", endpoint.likely_similarity),
    ] {
        if value.is_some_and(|value| !(-1.0..=1.0).contains(&value)) {
            return Err(format!("{field}.{name}: must be -1 to 1"));
        }
    }
    // One without the other would be set against the local model's
    // default: a floor above MiniLM's likely would call every hit likely.
    if endpoint.min_similarity.is_some() != endpoint.likely_similarity.is_some() {
        return Err(format!(
            "{field}: min_similarity and likely_similarity are set together"
        ));
    }
    if let (Some(floor), Some(likely)) = (endpoint.min_similarity, endpoint.likely_similarity)
        && likely < floor
    {
        return Err(format!(
            "{field}.likely_similarity: must not be below min_similarity"
        ));
    }
    if endpoint
        .lexical_weight
        .is_some_and(|weight| !(0.0..=0.5).contains(&weight))
    {
        return Err(format!("{field}.lexical_weight: must be 0 to 0.5"));
    }
    if let Some(incidents) = &endpoint.incidents {
        for (name, value, range) in [
            ("related", incidents.related, -1.0..=1.0),
            (
                "related_with_entity",
                incidents.related_with_entity,
                -1.0..=1.0,
            ),
            ("link", incidents.link, -1.0..=1.0),
            ("centroid", incidents.centroid, -1.0..=1.0),
            ("join", incidents.join, -1.0..=1.0),
            ("join_step", incidents.join_step, 0.0..=0.1),
            ("entity_bonus", incidents.entity_bonus, 0.0..=0.5),
            ("join_decay", incidents.join_decay, 0.0..=0.01),
        ] {
            if !range.contains(&value) {
                return Err(format!(
                    "{field}.incidents.{name}: must be {} to {}",
                    range.start(),
                    range.end()
                ));
            }
        }
        // A shared host or address lowers the bar, never raises it.
        if incidents.related_with_entity > incidents.related {
            return Err(format!(
                "{field}.incidents.related_with_entity: must not be above related"
            ));
        }
    }
    Ok(())
}

/// Refuses an address the services may not call (link-local, cloud
/// metadata), so an operator hears it now, not in a dead letter later.
fn outbound(field: &str, url: &str) -> Result<(), AdminError> {
    aia_http::outbound::check_url(url).map_err(|err| AdminError::Invalid(format!("{field}: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> aia_store::EmbeddingEndpointSettings {
        aia_store::EmbeddingEndpointSettings {
            min_similarity: Some(0.75),
            likely_similarity: Some(0.88),
            lexical_weight: Some(0.0),
            ..aia_store::EmbeddingEndpointSettings::openai(
                "e5",
                "http://e5.internal:8000/v1",
                "multilingual-e5-small-q4",
            )
        }
    }

    #[test]
    fn an_llm_provider_of_a_kind_nobody_speaks_is_refused() {
        let provider = |kind: &str| aia_store::LlmProviderSettings {
            name: "p".into(),
            kind: kind.into(),
            base_url: "https://llm.example.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_version: None,
            timeout_secs: 30,
        };
        for (kind, ok) in [
            ("openai", true),
            ("azure", true),
            ("Azure", false),
            ("azure_openai", false),
        ] {
            let settings = TenantSettings {
                llm_providers: vec![provider(kind)],
                ..TenantSettings::default()
            };
            let checked = validate_settings(&settings);
            assert_eq!(checked.is_ok(), ok, "{kind}: {checked:?}");
        }
    }

    #[test]
    fn an_endpoints_search_thresholds_are_checked() {
        assert_eq!(check_fusion("settings.embeddings", &endpoint()), Ok(()));
        let cases = [
            (
                aia_store::EmbeddingEndpointSettings {
                    min_similarity: Some(1.5),
                    ..endpoint()
                },
                "settings.embeddings.min_similarity: must be -1 to 1",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    likely_similarity: Some(0.5),
                    ..endpoint()
                },
                "settings.embeddings.likely_similarity: must not be below min_similarity",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    likely_similarity: None,
                    ..endpoint()
                },
                "settings.embeddings: min_similarity and likely_similarity are set together",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    lexical_weight: Some(-0.1),
                    ..endpoint()
                },
                "settings.embeddings.lexical_weight: must be 0 to 0.5",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    lexical_weight: Some(f32::NAN),
                    ..endpoint()
                },
                "settings.embeddings.lexical_weight: must be 0 to 0.5",
            ),
        ];
        let calibration = aia_store::IncidentCalibration {
            related: 0.88,
            related_with_entity: 0.85,
            link: 0.84,
            centroid: 0.87,
            join: 0.9,
            join_step: 0.005,
            entity_bonus: 0.02,
            join_decay: 0.001,
        };
        let calibrated = aia_store::EmbeddingEndpointSettings {
            incidents: Some(calibration),
            ..endpoint()
        };
        assert_eq!(check_fusion("settings.embeddings", &calibrated), Ok(()));
        let cases = cases.into_iter().chain([
            (
                aia_store::EmbeddingEndpointSettings {
                    incidents: Some(aia_store::IncidentCalibration {
                        join: 1.2,
                        ..calibration
                    }),
                    ..endpoint()
                },
                "settings.embeddings.incidents.join: must be -1 to 1",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    incidents: Some(aia_store::IncidentCalibration {
                        join_step: f32::NAN,
                        ..calibration
                    }),
                    ..endpoint()
                },
                "settings.embeddings.incidents.join_step: must be 0 to 0.1",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    incidents: Some(aia_store::IncidentCalibration {
                        join_decay: -0.001,
                        ..calibration
                    }),
                    ..endpoint()
                },
                "settings.embeddings.incidents.join_decay: must be 0 to 0.01",
            ),
            (
                aia_store::EmbeddingEndpointSettings {
                    incidents: Some(aia_store::IncidentCalibration {
                        related_with_entity: 0.9,
                        ..calibration
                    }),
                    ..endpoint()
                },
                "settings.embeddings.incidents.related_with_entity: must not be above related",
            ),
        ]);
        for (settings, error) in cases {
            assert_eq!(
                check_fusion("settings.embeddings", &settings),
                Err(error.to_owned())
            );
        }
    }

    #[test]
    fn a_budget_is_one_the_ledger_and_its_alert_can_keep() {
        assert_eq!(check_budget(&TenantSettings::default()), Ok(()));
        let refused = [
            TenantSettings {
                llm_budget_period_days: 0,
                ..TenantSettings::default()
            },
            TenantSettings {
                llm_budget_usd: Some(-5.0),
                ..TenantSettings::default()
            },
            TenantSettings {
                llm_budget_usd: Some(f64::NAN),
                ..TenantSettings::default()
            },
            TenantSettings {
                llm_budget_alert_ratio: 0.0,
                ..TenantSettings::default()
            },
            TenantSettings {
                llm_budget_alert_ratio: 0.9,
                llm_budget_grace_ratio: 0.8,
                ..TenantSettings::default()
            },
        ];
        for settings in refused {
            assert!(check_budget(&settings).is_err(), "{settings:?}");
        }
        let zero = TenantSettings {
            llm_budget_usd: Some(0.0),
            ..TenantSettings::default()
        };
        assert_eq!(
            check_budget(&zero),
            Ok(()),
            "a budget of nothing is a budget"
        );
    }
}
