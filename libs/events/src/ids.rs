//! Validated identifiers: tenants, tickets and priorities.
//!
//! Every id that ends up in a NATS subject or a SQL row goes through one of
//! these constructors, so the rest of the code never sees an unchecked id.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};

/// Why an identifier was rejected. The message names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "tenant id must be 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    InvalidTenant,
    #[error("ticket id must be 1 to 128 printable characters")]
    InvalidTicket,
    #[error("priority must be one of low, medium, high, critical")]
    InvalidPriority,
}

/// A tenant (one MSP customer). `[a-z0-9-]`, so it is safe as a subject token
/// and in URLs without encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::InvalidTenant)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A ticket id as the ITSM tool knows it (`1234`, `SUP-42`, `INC0010001`).
///
/// Any printable text is accepted; [`TicketId::subject_token`] encodes ids
/// that are not subject-safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TicketId(String);

impl TicketId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        // Only dots is no ticket: as a URL path segment "." and ".." are
        // the current and parent folder, and would address another resource
        // of the help desk's API.
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.trim() == raw
            && !raw.chars().any(char::is_control)
            && !raw.chars().all(|c| c == '.');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::InvalidTicket)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one NATS subject token.
    ///
    /// Ids made only of `[A-Za-z0-9_-]` are used as they are, so subjects stay
    /// readable for the common case. Anything else is `=` followed by the
    /// unpadded URL-safe base64 of the id; `=` never occurs in a plain id, so
    /// the two forms cannot collide.
    pub fn subject_token(&self) -> String {
        let plain = self
            .0
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if plain {
            self.0.clone()
        } else {
            format!("={}", URL_SAFE_NO_PAD.encode(self.0.as_bytes()))
        }
    }

    /// Inverse of [`TicketId::subject_token`].
    pub fn from_subject_token(token: &str) -> Result<Self, IdError> {
        match token.strip_prefix('=') {
            Some(encoded) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(encoded)
                    .map_err(|_| IdError::InvalidTicket)?;
                let text = String::from_utf8(bytes).map_err(|_| IdError::InvalidTicket)?;
                Self::parse(&text)
            }
            None => Self::parse(token),
        }
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TicketId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Ticket priority, normalised across ITSM tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" | "normal" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" | "urgent" => Ok(Self::Critical),
            _ => Err(IdError::InvalidPriority),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_accept_only_subject_safe_lowercase() {
        for ok in ["acme", "acme-2", "a", "0x"] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "ac.me",
            "ac*",
            "a>",
            "a b",
            "-a",
            "a-",
            "ä",
            &"a".repeat(64),
        ] {
            assert_eq!(TenantId::parse(bad), Err(IdError::InvalidTenant), "{bad:?}");
        }
    }

    #[test]
    fn plain_ticket_ids_are_their_own_subject_token() {
        let id = TicketId::parse("SUP-42_a").unwrap();
        assert_eq!(id.subject_token(), "SUP-42_a");
        assert_eq!(TicketId::from_subject_token("SUP-42_a").unwrap(), id);
    }

    #[test]
    fn unsafe_ticket_ids_round_trip_through_an_encoded_token() {
        for raw in ["a.b", "a*b", "a>b", "a b", "#12/3", "=x", "ticket ü"] {
            let id = TicketId::parse(raw).unwrap();
            let token = id.subject_token();
            assert!(token.starts_with('='), "{raw} -> {token}");
            assert!(
                !token.contains(['.', '*', '>', ' ']),
                "{raw} -> {token} is not subject-safe"
            );
            assert_eq!(TicketId::from_subject_token(&token).unwrap(), id);
        }
    }

    #[test]
    fn ticket_ids_reject_control_characters_padding_and_path_dots() {
        for bad in ["", " 1", "1 ", "a\nb", "a\0b", &"9".repeat(129), ".", ".."] {
            assert_eq!(TicketId::parse(bad), Err(IdError::InvalidTicket), "{bad:?}");
        }
        for good in ["SUP-1", "1.2", "a..b", "INC0010001"] {
            assert!(TicketId::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn priorities_parse_case_insensitively_with_common_synonyms() {
        assert_eq!(Priority::parse("HIGH").unwrap(), Priority::High);
        assert_eq!(Priority::parse("Urgent").unwrap(), Priority::Critical);
        assert_eq!(Priority::parse("normal").unwrap(), Priority::Medium);
        assert!(Priority::parse("p1").is_err());
    }
}
