//! A credential goes only where it was given. The help desk's credentials,
//! and the tokens and keys of a tenant's integrations, are write-only: an
//! operator never reads them back. Pointing their address at another host
//! while keeping them would send them there on the next call (a connection
//! test, the next ticket) — reading them back by another door. So an
//! address that moves to another origin takes its credential with it.

use aia_store::{EmbeddingSettings, Integrations, TenantSettings};

/// Whether two addresses are the same origin (scheme, host and port); an
/// address that does not parse is no one's origin.
pub(super) fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a.trim()), reqwest::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str().map(str::to_ascii_lowercase)
                    == b.host_str().map(str::to_ascii_lowercase)
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

/// The integrations' keys that settings `new` would send to another origin
/// than `old` did: each as the field an operator sets again.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Moved {
    pub knowledge_base_token: bool,
    pub monitoring_token: bool,
    pub llm_keys: Vec<String>,
    pub embedding_keys: Vec<String>,
}

impl Moved {
    pub(super) fn between(old: &TenantSettings, new: &TenantSettings) -> Self {
        let moved = |old: Option<&str>, new: Option<&str>| match (old, new) {
            (Some(old), Some(new)) => !same_origin(old, new),
            _ => false,
        };
        let llm_keys = new
            .llm_providers
            .iter()
            .filter(|provider| {
                old.llm_providers
                    .iter()
                    .filter(|before| before.name == provider.name)
                    .any(|before| !same_origin(&before.base_url, &provider.base_url))
            })
            .map(|provider| provider.name.clone())
            .collect();
        let endpoints = |settings: &TenantSettings| {
            [
                Some(&settings.embeddings),
                settings.embeddings_next.as_ref(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|embeddings| match embeddings {
                EmbeddingSettings::Endpoint(endpoint) => {
                    Some((endpoint.name.clone(), endpoint.base_url.clone()))
                }
                EmbeddingSettings::Local => None,
            })
            .collect::<Vec<_>>()
        };
        let before = endpoints(old);
        let mut embedding_keys: Vec<String> = endpoints(new)
            .into_iter()
            .filter(|(name, url)| {
                before
                    .iter()
                    .any(|(was, old_url)| was == name && !same_origin(old_url, url))
            })
            .map(|(name, _)| name)
            .collect();
        embedding_keys.dedup();
        Self {
            knowledge_base_token: moved(
                old.knowledge_base_url.as_deref(),
                new.knowledge_base_url.as_deref(),
            ),
            monitoring_token: moved(old.monitoring_url.as_deref(), new.monitoring_url.as_deref()),
            llm_keys,
            embedding_keys,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Forgets the keys that moved.
    pub(super) fn forget(&self, integrations: &mut Integrations) {
        if self.knowledge_base_token {
            integrations.knowledge_base_token = None;
        }
        if self.monitoring_token {
            integrations.monitoring_token = None;
        }
        for name in &self.llm_keys {
            integrations.llm_keys.remove(name);
        }
        for name in &self.embedding_keys {
            integrations.embedding_keys.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_store::EmbeddingEndpointSettings;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert!(same_origin(
            "https://acme.example/api",
            "https://ACME.example:443/v2"
        ));
        assert!(!same_origin("https://acme.example", "http://acme.example"));
        assert!(!same_origin(
            "https://acme.example",
            "https://acme.example.evil.test"
        ));
        assert!(!same_origin(
            "https://acme.example",
            "https://acme.example:8443"
        ));
        assert!(!same_origin("not a url", "not a url"));
    }

    #[test]
    fn a_key_whose_address_moves_to_another_host_is_forgotten_and_the_rest_kept() {
        let old = TenantSettings {
            knowledge_base_url: Some("https://kb.acme.example".into()),
            monitoring_url: Some("https://prom.acme.example".into()),
            llm_providers: serde_json::from_value(serde_json::json!([
                {"name": "main", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"},
                {"name": "spare", "base_url": "https://llm.acme.example/v1", "model": "m"},
            ]))
            .unwrap(),
            embeddings: EmbeddingSettings::Endpoint(EmbeddingEndpointSettings::openai(
                "e5",
                "https://e5.acme.example/v1",
                "e5-small",
            )),
            ..TenantSettings::default()
        };
        let mut new = old.clone();
        new.knowledge_base_url = Some("https://kb.acme.example/other/path".into());
        new.monitoring_url = Some("https://attacker.test".into());
        new.llm_providers[0].base_url = "https://attacker.test/v1".into();
        new.embeddings = EmbeddingSettings::Endpoint(EmbeddingEndpointSettings::openai(
            "e5",
            "https://attacker.test/v1",
            "e5-small",
        ));
        let moved = Moved::between(&old, &new);
        assert_eq!(
            moved,
            Moved {
                knowledge_base_token: false,
                monitoring_token: true,
                llm_keys: vec!["main".into()],
                embedding_keys: vec!["e5".into()],
            }
        );
        let mut integrations = Integrations {
            knowledge_base_token: Some("kb".into()),
            monitoring_token: Some("prom".into()),
            llm_keys: [
                ("main".into(), "sk-1".into()),
                ("spare".into(), "sk-2".into()),
            ]
            .into(),
            embedding_keys: [("e5".into(), "k".into())].into(),
            incident_webhook_secret: None,
        };
        moved.forget(&mut integrations);
        assert_eq!(integrations.knowledge_base_token.as_deref(), Some("kb"));
        assert_eq!(integrations.monitoring_token, None);
        assert_eq!(
            integrations.llm_keys.keys().collect::<Vec<_>>(),
            vec!["spare"]
        );
        assert!(integrations.embedding_keys.is_empty());
        assert!(Moved::between(&old, &old).is_empty());
    }
}
