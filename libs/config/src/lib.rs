//! Configuration from the environment. Every variable carries the
//! `AI_AGENTS_` prefix; `.env.example` at the repository root lists them all.

use std::str::FromStr;

pub const PREFIX: &str = "AI_AGENTS_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(String),
    #[error("{name} has an invalid value: {reason}")]
    Invalid { name: String, reason: String },
}

/// The value of `AI_AGENTS_<name>`, if set and not empty.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(format!("{PREFIX}{name}"))
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The value of `AI_AGENTS_<name>`, or an error naming the variable.
pub fn required(name: &str) -> Result<String, ConfigError> {
    optional(name).ok_or_else(|| ConfigError::Missing(format!("{PREFIX}{name}")))
}

/// `AI_AGENTS_<name>` parsed, or `default` when unset.
pub fn parsed<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|err: T::Err| ConfigError::Invalid {
                name: format!("{PREFIX}{name}"),
                reason: err.to_string(),
            }),
    }
}
