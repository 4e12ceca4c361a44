//! The ticket's embedding, made once per ticket for both searches by
//! meaning, with the thresholds its model is judged by.

use std::sync::Arc;
use std::time::Duration;

use crate::handler::ContextGatherer;
use crate::sources::fusion::{self, Fusion};
use crate::sources::similar::Semantic;

/// The fusion's thresholds for a tenant's model: the local model's
/// defaults, or what the tenant calibrated for its endpoint. An endpoint
/// whose "likely" the tenant has not calibrated calls nothing likely: the
/// local model's 0.64 means nothing on another model (on e5 unrelated
/// tickets reach 0.8), and a technician told "likely" of every hit would
/// learn to ignore the word.
fn fusion_for(settings: &aia_store::EmbeddingSettings) -> Fusion {
    match settings {
        aia_store::EmbeddingSettings::Local => fusion::DEFAULT,
        aia_store::EmbeddingSettings::Endpoint(endpoint) => {
            let threshold = endpoint.min_similarity.unwrap_or(fusion::DEFAULT.threshold);
            let likely = endpoint.likely_similarity.unwrap_or(UNCALIBRATED_LIKELY);
            Fusion {
                threshold,
                likely,
                lexical_weight: endpoint
                    .lexical_weight
                    .unwrap_or(fusion::DEFAULT.lexical_weight),
                feedback_weight: fusion::feedback_weight_for(
                    fusion::DEFAULT.feedback_weight,
                    threshold,
                    likely,
                ),
                gap: fusion::DEFAULT.gap * fusion::band_scale(threshold, likely),
                ..fusion::DEFAULT
            }
        }
    }
}

/// "Likely" on a model nobody calibrated: a cosine of 1, which only the
/// same text reaches.
const UNCALIBRATED_LIKELY: f32 = 1.0;

/// The ticket's embedding and what it may be compared with.
#[derive(Clone)]
pub(crate) struct QueryVector {
    pub(crate) model: Arc<str>,
    pub(crate) vector: Arc<aia_embed::Vector>,
    /// The embedding of the LLM's terms for the ticket, if it gave any.
    rewrite: Option<Arc<aia_embed::Vector>>,
    fusion: Fusion,
}

impl QueryVector {
    pub(crate) fn semantic(&self) -> Semantic<'_> {
        Semantic {
            model: &self.model,
            vector: self.vector.as_slice(),
            rewrite: self.rewrite.as_deref().map(aia_embed::Vector::as_slice),
            fusion: self.fusion,
        }
    }
}

impl ContextGatherer {
    /// Embeds the ticket, and the LLM's `terms` for it, with the tenant's
    /// active model, in one call.
    pub(crate) async fn query_vector(
        &self,
        tenant: &aia_store::Tenant,
        text: &str,
        terms: Option<&str>,
        timeout: Duration,
    ) -> Result<QueryVector, String> {
        let settings = &tenant.settings;
        // The searches compare it, and the correlator groups open tickets
        // by it: a tenant with both searches off still has incidents.
        let wanted = settings.similar_tickets_enabled
            || settings.knowledge_base_enabled
            || settings.incidents.enabled;
        if !wanted {
            return Err("both searches and incidents are off".into());
        }
        let embedders = aia_embed::tenant::embedders(
            settings,
            &tenant.integrations,
            self.local_embedder.as_ref(),
            &self.http,
        )?;
        let mut queries: Vec<String> = vec![text.chars().take(2000).collect()];
        queries.extend(terms.map(str::to_owned));
        let mut vectors = tokio::time::timeout(timeout, embedders.active.embed(&queries))
            .await
            .map_err(|_| {
                format!(
                    "the embeddings provider did not answer within {} ms",
                    timeout.as_millis()
                )
            })?
            .map_err(|err| err.to_string())?
            .into_iter()
            .map(Arc::new);
        let vector = vectors
            .next()
            .ok_or("the embeddings provider returned no vector")?;
        Ok(QueryVector {
            model: Arc::from(embedders.active.model()),
            vector,
            rewrite: vectors.next(),
            fusion: fusion_for(&settings.embeddings),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_model_searches_with_the_thresholds_and_word_weight_the_tenant_set() {
        assert_eq!(
            fusion_for(&aia_store::EmbeddingSettings::Local),
            fusion::DEFAULT
        );
        let mut endpoint = aia_store::EmbeddingEndpointSettings {
            min_similarity: Some(0.75),
            likely_similarity: Some(0.90),
            lexical_weight: Some(0.0),
            ..aia_store::EmbeddingEndpointSettings::openai(
                "e5",
                "http://e5.internal:8090/v1",
                "multilingual-e5-small-q4",
            )
        };
        let calibrated = fusion_for(&aia_store::EmbeddingSettings::Endpoint(endpoint.clone()));
        assert_eq!(
            (
                calibrated.threshold,
                calibrated.likely,
                calibrated.lexical_weight
            ),
            (0.75, 0.90, 0.0)
        );
        // Ratings weigh as much of e5's narrower band as of the local
        // model's: 0.10 × 0.15 / 0.44.
        assert!(
            (calibrated.feedback_weight - 0.10 * 0.15 / 0.44).abs() < 1e-4,
            "{}",
            calibrated.feedback_weight
        );
        // And the gap to the best hit, the same way: 0.25 × 0.15 / 0.44.
        assert!(
            (calibrated.gap - 0.25 * 0.15 / 0.44).abs() < 1e-4,
            "{}",
            calibrated.gap
        );
        endpoint.lexical_weight = None;
        let unset = fusion_for(&aia_store::EmbeddingSettings::Endpoint(endpoint.clone()));
        assert_eq!(unset.lexical_weight, fusion::DEFAULT.lexical_weight);
        // Nobody said what "likely" is on this model: nothing is.
        endpoint.likely_similarity = None;
        let uncalibrated = fusion_for(&aia_store::EmbeddingSettings::Endpoint(endpoint));
        assert_eq!(uncalibrated.likely, 1.0);
        assert!(uncalibrated.gap.is_finite() && uncalibrated.feedback_weight.is_finite());
    }
}
