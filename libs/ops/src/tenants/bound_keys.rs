//! A credential goes only where it was given. The help desk's credentials,
//! and the tokens and keys of a tenant's integrations, are write-only: an
//! operator never reads them back. Pointing their address at another host
//! while keeping them would send them there on the next call (a connection
//! test, the next ticket) — reading them back by another door. So an
//! address that moves to another origin takes its credential with it.

use std::collections::BTreeMap;

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
/// than `old` did, or that `new` leaves without an address: each as the
/// field an operator sets again. A key whose address is removed goes too —
/// else removing the address and adding it back elsewhere, in two saves,
/// would carry the key there. A key set before its address is kept when the
/// address first comes (the operator who set it knows where it belongs).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Moved {
    pub knowledge_base_token: bool,
    pub monitoring_token: bool,
    pub llm_keys: Vec<String>,
    pub embedding_keys: Vec<String>,
}

/// Whether a named address moved: it had some before, and now has none or
/// one at an origin none of the old ones had.
fn moved(before: &[&str], after: &[&str]) -> bool {
    !before.is_empty()
        && (after.is_empty()
            || after
                .iter()
                .any(|new| !before.iter().any(|old| same_origin(old, new))))
}

/// Each name's addresses: providers, or embeddings endpoints (the current
/// and the next may share a name).
fn by_name<'a>(named: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, url) in named {
        names.entry(name).or_default().push(url);
    }
    names
}

fn names_moved(old: &BTreeMap<&str, Vec<&str>>, new: &BTreeMap<&str, Vec<&str>>) -> Vec<String> {
    old.iter()
        .filter(|(name, before)| moved(before, new.get(*name).map_or(&[][..], Vec::as_slice)))
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

fn providers(settings: &TenantSettings) -> BTreeMap<&str, Vec<&str>> {
    by_name(
        settings
            .llm_providers
            .iter()
            .map(|provider| (provider.name.as_str(), provider.base_url.as_str())),
    )
}

fn endpoints(settings: &TenantSettings) -> BTreeMap<&str, Vec<&str>> {
    by_name(
        [
            Some(&settings.embeddings),
            settings.embeddings_next.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|embeddings| match embeddings {
            EmbeddingSettings::Endpoint(endpoint) => {
                Some((endpoint.name.as_str(), endpoint.base_url.as_str()))
            }
            EmbeddingSettings::Local => None,
        }),
    )
}

/// An optional address as a list of none or one.
fn one(url: &Option<String>) -> Vec<&str> {
    url.as_deref().into_iter().collect()
}

impl Moved {
    pub(super) fn between(old: &TenantSettings, new: &TenantSettings) -> Self {
        Self {
            knowledge_base_token: moved(
                &one(&old.knowledge_base_url),
                &one(&new.knowledge_base_url),
            ),
            monitoring_token: moved(&one(&old.monitoring_url), &one(&new.monitoring_url)),
            llm_keys: names_moved(&providers(old), &providers(new)),
            embedding_keys: names_moved(&endpoints(old), &endpoints(new)),
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
            incident_webhook_url: None,
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

    #[test]
    fn removing_an_address_takes_its_key_so_two_saves_cannot_move_it() {
        let old = TenantSettings {
            knowledge_base_url: Some("https://kb.acme.example".into()),
            llm_providers: serde_json::from_value(serde_json::json!([
                {"name": "main", "base_url": "https://llm.acme.example/v1", "model": "m"},
            ]))
            .unwrap(),
            ..TenantSettings::default()
        };
        let emptied = TenantSettings::default();
        assert_eq!(
            Moved::between(&old, &emptied),
            Moved {
                knowledge_base_token: true,
                monitoring_token: false,
                llm_keys: vec!["main".into()],
                embedding_keys: vec![],
            }
        );
        // A key set before its address keeps it when the address comes.
        assert!(Moved::between(&emptied, &old).is_empty());
    }

    #[test]
    fn an_unchanged_save_keeps_a_key_two_endpoints_of_one_name_share() {
        let endpoint = |url: &str| {
            EmbeddingSettings::Endpoint(EmbeddingEndpointSettings::openai("e5", url, "e5-small"))
        };
        let settings = TenantSettings {
            embeddings: endpoint("https://e5.acme.example/v1"),
            embeddings_next: Some(endpoint("https://e5-next.acme.example/v1")),
            ..TenantSettings::default()
        };
        assert!(Moved::between(&settings, &settings).is_empty());
        // The next one promoted: still an origin the key was sent to.
        let promoted = TenantSettings {
            embeddings: endpoint("https://e5-next.acme.example/v1"),
            embeddings_next: None,
            ..settings.clone()
        };
        assert!(Moved::between(&settings, &promoted).is_empty());
    }
}
