//! What a completion costs, from a price table per model.

use std::collections::HashMap;

use serde::Deserialize;

/// US dollars per 1,000 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

/// Prices by model name. A model not in the table is charged at the
/// table's dearest price (and logged, so operators add it): a tenant's
/// budget must hold whatever model its provider names, and an unknown
/// model counted as free would never reach it. A self-hosted model is
/// added with a price of 0.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: HashMap<String, Price>,
    /// The models an operator priced (`AI_AGENTS_LLM_PRICES`).
    priced_by_operator: std::collections::HashSet<String>,
}

impl Default for PriceTable {
    /// List prices of common models (2025–2026); override or extend with
    /// `AI_AGENTS_LLM_PRICES`.
    fn default() -> Self {
        let price = |input_per_1m: f64, output_per_1m: f64| Price {
            input_per_1k: input_per_1m / 1000.0,
            output_per_1k: output_per_1m / 1000.0,
        };
        let prices = HashMap::from([
            ("gpt-4o-mini".to_owned(), price(0.15, 0.6)),
            ("gpt-4o".to_owned(), price(2.5, 10.0)),
            ("gpt-4".to_owned(), price(30.0, 60.0)),
            ("gpt-4.1".to_owned(), price(2.0, 8.0)),
            ("gpt-4.1-mini".to_owned(), price(0.4, 1.6)),
            ("gpt-4.1-nano".to_owned(), price(0.1, 0.4)),
            ("gpt-5".to_owned(), price(1.25, 10.0)),
            ("gpt-5-mini".to_owned(), price(0.25, 2.0)),
            ("gpt-5-nano".to_owned(), price(0.05, 0.4)),
            ("o4-mini".to_owned(), price(1.1, 4.4)),
            ("claude-3-5-sonnet".to_owned(), price(3.0, 15.0)),
            ("claude-3-7-sonnet".to_owned(), price(3.0, 15.0)),
            ("claude-sonnet-4".to_owned(), price(3.0, 15.0)),
            ("claude-3-5-haiku".to_owned(), price(0.8, 4.0)),
        ]);
        Self {
            prices,
            priced_by_operator: Default::default(),
        }
    }
}

impl PriceTable {
    /// `{"model": {"input_per_1k": …, "output_per_1k": …}, …}`, added to the
    /// defaults.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let extra: HashMap<String, Price> =
            serde_json::from_str(json).map_err(|err| err.to_string())?;
        let mut table = Self::default();
        table.priced_by_operator.extend(extra.keys().cloned());
        table.prices.extend(extra);
        Ok(table)
    }

    /// The price of `model` as a provider names it: exactly, without a
    /// router's provider prefix (`openai/gpt-4o`), or as a dated or
    /// `-latest` release of a listed model (`gpt-4o-mini-2024-07-18`,
    /// `claude-3-5-sonnet-20241022`). Only such a suffix matches: another
    /// model that merely starts alike (`gpt-4.1-mini`, `gpt-4-turbo`
    /// against `gpt-4`) is not that model.
    pub fn price(&self, model: &str) -> Option<Price> {
        let name = model.rsplit('/').next().unwrap_or(model);
        if let Some(price) = self.prices.get(model).or_else(|| self.prices.get(name)) {
            return Some(*price);
        }
        self.prices
            .iter()
            .filter(|(listed, _)| {
                name.strip_prefix(listed.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|release| {
                        release == "latest" || release.starts_with(|c: char| c.is_ascii_digit())
                    })
            })
            .max_by_key(|(listed, _)| listed.len())
            .map(|(_, price)| *price)
    }

    /// The dearest price in the table, charged for a model it lacks.
    fn dearest(&self) -> Price {
        self.prices
            .values()
            .copied()
            .max_by(|a, b| {
                (a.input_per_1k + a.output_per_1k).total_cmp(&(b.input_per_1k + b.output_per_1k))
            })
            .unwrap_or(Price {
                input_per_1k: 0.0,
                output_per_1k: 0.0,
            })
    }

    /// The cost of an answer the provider configured as `configured`
    /// reported as made by `reported`: an operator's own price for the
    /// configured model first (a local server may report any name —
    /// llama.cpp's says `gpt-3.5-turbo`, a proxy its backend's), then the
    /// reported model's, then the configured one's, then the dearest.
    pub fn cost_as(
        &self,
        configured: &str,
        reported: &str,
        tokens_in: u32,
        tokens_out: u32,
    ) -> f64 {
        let model = if self.priced_by_operator.contains(configured) {
            configured
        } else if self.price(reported).is_some() {
            reported
        } else {
            configured
        };
        self.cost(model, tokens_in, tokens_out)
    }

    /// What answers that held nothing usable cost all the same.
    pub fn billed(&self, billed: &[crate::Billed]) -> f64 {
        billed
            .iter()
            .map(|paid| {
                self.cost_as(
                    &paid.configured,
                    &paid.model,
                    paid.tokens_in,
                    paid.tokens_out,
                )
            })
            .sum()
    }

    pub fn cost(&self, model: &str, tokens_in: u32, tokens_out: u32) -> f64 {
        let price = self.price(model).unwrap_or_else(|| {
            tracing::warn!(
                model,
                "No price for this model; charging the price table's dearest (add it with AI_AGENTS_LLM_PRICES)"
            );
            self.dearest()
        });
        f64::from(tokens_in) / 1000.0 * price.input_per_1k
            + f64::from(tokens_out) / 1000.0 * price.output_per_1k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn costs_follow_the_table_including_versioned_model_names() {
        let table = PriceTable::default();
        assert!(close(table.cost("gpt-4o-mini", 1000, 1000), 0.000_75));
        assert!(close(
            table.cost("gpt-4o-mini-2024-07-18", 2000, 0),
            0.000_3
        ));
        assert!(close(table.cost("openai/gpt-4o-mini", 2000, 0), 0.000_3));
        assert!(close(
            table.cost("claude-3-5-sonnet-20241022", 1000, 0),
            table.cost("claude-3-5-sonnet-latest", 1000, 0)
        ));
        let custom = PriceTable::from_json(
            r#"{"llama3.1": {"input_per_1k": 0.0, "output_per_1k": 0.0001}}"#,
        )
        .unwrap();
        assert!(close(custom.cost("llama3.1", 0, 10_000), 0.001));
    }

    #[test]
    fn an_operators_price_for_the_configured_model_holds_whatever_the_server_reports() {
        let table =
            PriceTable::from_json(r#"{"my-local": {"input_per_1k": 0.0, "output_per_1k": 0.0}}"#)
                .unwrap();
        // llama.cpp's server reports gpt-3.5-turbo for any model.
        assert!(close(
            table.cost_as("my-local", "gpt-3.5-turbo", 1000, 1000),
            0.0
        ));
        // Not priced by the operator: the reported model, when known…
        assert!(close(
            table.cost_as("gpt-4o", "gpt-4o-mini-2024-07-18", 1000, 1000),
            table.cost("gpt-4o-mini", 1000, 1000)
        ));
        // …else the configured one.
        assert!(close(
            table.cost_as("gpt-4o-mini", "some-backend-name", 1000, 1000),
            table.cost("gpt-4o-mini", 1000, 1000)
        ));
    }

    #[test]
    fn a_model_that_only_starts_like_a_listed_one_is_not_priced_as_it() {
        let table = PriceTable::default();
        // gpt-4.1-mini is not a release of gpt-4 (75 times dearer).
        assert!(close(table.cost("gpt-4.1-mini", 1_000_000, 0), 0.4));
        assert!(close(
            table.cost("gpt-4.1-mini-2025-04-14", 1_000_000, 0),
            0.4
        ));
        assert_eq!(table.price("gpt-4-turbo"), None);
        assert_eq!(table.price("gpt-4o-audio-preview"), None);
    }

    #[test]
    fn a_model_missing_from_the_table_is_charged_the_dearest_price_not_nothing() {
        let table = PriceTable::default();
        let dearest = table.cost("gpt-4", 1000, 1000);
        assert!(dearest > 0.0);
        assert!(close(table.cost("notes-model", 1000, 1000), dearest));
        assert!(close(table.cost("gpt-4-turbo", 1000, 1000), dearest));
        let free = PriceTable::from_json(
            r#"{"notes-model": {"input_per_1k": 0.0, "output_per_1k": 0.0}}"#,
        )
        .unwrap();
        assert_eq!(free.cost("notes-model", 1000, 1000), 0.0);
    }
}
