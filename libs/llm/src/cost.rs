//! What a completion costs, from a price table per model.

use std::collections::HashMap;

use serde::Deserialize;

/// US dollars per 1,000 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

/// Prices by model name; a model not in the table costs nothing (and is
/// logged once per call so operators add it).
#[derive(Debug, Clone)]
pub struct PriceTable(HashMap<String, Price>);

impl Default for PriceTable {
    /// List prices of common models (November 2026); override with
    /// `AI_AGENTS_LLM_PRICES`.
    fn default() -> Self {
        let price = |input: f64, output: f64| Price {
            input_per_1k: input,
            output_per_1k: output,
        };
        Self(HashMap::from([
            ("gpt-4o-mini".to_owned(), price(0.000_15, 0.000_6)),
            ("gpt-4o".to_owned(), price(0.002_5, 0.01)),
            ("gpt-4".to_owned(), price(0.03, 0.06)),
            ("claude-3-5-sonnet".to_owned(), price(0.003, 0.015)),
        ]))
    }
}

impl PriceTable {
    /// `{"model": {"input_per_1k": …, "output_per_1k": …}, …}`, added to the
    /// defaults.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let extra: HashMap<String, Price> =
            serde_json::from_str(json).map_err(|err| err.to_string())?;
        let mut table = Self::default();
        table.0.extend(extra);
        Ok(table)
    }

    pub fn cost(&self, model: &str, tokens_in: u32, tokens_out: u32) -> f64 {
        // Providers report versioned names ("gpt-4o-mini-2024-07-18").
        let price = self.0.get(model).or_else(|| {
            self.0
                .iter()
                .filter(|(name, _)| model.starts_with(name.as_str()))
                .max_by_key(|(name, _)| name.len())
                .map(|(_, price)| price)
        });
        match price {
            Some(price) => {
                f64::from(tokens_in) / 1000.0 * price.input_per_1k
                    + f64::from(tokens_out) / 1000.0 * price.output_per_1k
            }
            None => {
                tracing::warn!(model, "No price for this model; counting its cost as zero");
                0.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_table_including_versioned_model_names() {
        let table = PriceTable::default();
        assert!((table.cost("gpt-4o-mini", 1000, 1000) - 0.000_75).abs() < 1e-12);
        assert!((table.cost("gpt-4o-mini-2024-07-18", 2000, 0) - 0.000_3).abs() < 1e-12);
        assert_eq!(table.cost("unknown-model", 1000, 1000), 0.0);
        let custom = PriceTable::from_json(
            r#"{"llama3.1": {"input_per_1k": 0.0, "output_per_1k": 0.0001}}"#,
        )
        .unwrap();
        assert!((custom.cost("llama3.1", 0, 10_000) - 0.001).abs() < 1e-12);
    }
}
