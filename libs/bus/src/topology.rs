//! The stream and consumer definitions of `nats/`, applied idempotently.
//!
//! The files are compiled in, so the binary that applies them is the one
//! that was built with them. For every definition only the fields the file
//! names are compared with the server's, because the server fills in
//! defaults for the rest.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::stream;
use serde_json::Value;

use crate::JetStream;

/// Every definition, by file name, as it is in the repository.
pub const STREAM_FILE: (&str, &str) = ("stream.json", include_str!("../../../nats/stream.json"));
pub const CONSUMER_FILES: &[(&str, &str)] = &[
    (
        "consumers/context-gatherer.json",
        include_str!("../../../nats/consumers/context-gatherer.json"),
    ),
    (
        "consumers/llm-enhancer.json",
        include_str!("../../../nats/consumers/llm-enhancer.json"),
    ),
    (
        "consumers/writeback.json",
        include_str!("../../../nats/consumers/writeback.json"),
    ),
    (
        "consumers/history-projector.json",
        include_str!("../../../nats/consumers/history-projector.json"),
    ),
    (
        "consumers/embedding-indexer.json",
        include_str!("../../../nats/consumers/embedding-indexer.json"),
    ),
    (
        "consumers/incident-correlator.json",
        include_str!("../../../nats/consumers/incident-correlator.json"),
    ),
    (
        "consumers/incident-notifier.json",
        include_str!("../../../nats/consumers/incident-notifier.json"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{file} is not a valid definition: {reason}")]
    InvalidFile { file: String, reason: String },
    #[error("NATS refused {what}: {reason}")]
    Server { what: String, reason: String },
    #[error(
        "the stream's duplicate window ({window_secs} s) is shorter than the {accepted_secs} s a signed webhook timestamp is accepted for: a delivery replayed after the window would be stored twice"
    )]
    DuplicateWindowTooShort {
        window_secs: u64,
        accepted_secs: u64,
    },
    #[error(
        "{replicas} replicas need a JetStream cluster of at least {replicas} servers, but the NATS server at this address is not clustered: apply without --replicas (or with 1) here, or point AI_AGENTS_NATS_URL at the cluster"
    )]
    NotClustered { replicas: usize },
    #[error(
        "{replicas} replicas need at least {replicas} servers, but the cluster announces {servers}"
    )]
    TooFewServers { replicas: usize, servers: usize },
}

/// Refuses `replicas` the server cannot hold: more than one on a server
/// outside a cluster, or more than the cluster's servers.
pub fn check_replicas(
    server: &async_nats::ServerInfo,
    replicas: usize,
) -> Result<(), TopologyError> {
    if replicas <= 1 {
        return Ok(());
    }
    if server.cluster.is_none() {
        return Err(TopologyError::NotClustered { replicas });
    }
    // The servers a clustered server announces to clients, itself
    // included; empty when the cluster does not advertise them.
    let servers = server.connect_urls.len();
    if servers > 0 && servers < replicas {
        return Err(TopologyError::TooFewServers { replicas, servers });
    }
    Ok(())
}

/// One field whose value on the server differs from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub server: Value,
    pub file: Value,
}

/// What applying one definition did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Created {
        name: String,
    },
    Updated {
        name: String,
        changes: Vec<FieldChange>,
    },
    Unchanged {
        name: String,
    },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created { name } => write!(f, "{name}: created"),
            Self::Unchanged { name } => write!(f, "{name}: unchanged"),
            Self::Updated { name, changes } => {
                write!(f, "{name}: updated")?;
                for change in changes {
                    write!(
                        f,
                        "\n    {}: {} -> {}",
                        change.field, change.server, change.file
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// The parsed definitions.
#[derive(Debug, Clone)]
pub struct Topology {
    stream: (Value, stream::Config),
    consumers: Vec<(Value, pull::Config)>,
}

fn parse<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<(Value, T), TopologyError> {
    let invalid = |reason: String| TopologyError::InvalidFile {
        file: file.to_owned(),
        reason,
    };
    let raw: Value = serde_json::from_str(text).map_err(|err| invalid(err.to_string()))?;
    if !raw.is_object() {
        return Err(invalid("not a JSON object".into()));
    }
    let config = serde_json::from_value(raw.clone()).map_err(|err| invalid(err.to_string()))?;
    Ok((raw, config))
}

/// The fields named in `file` whose value differs in `server`.
fn diff(file: &Value, server: &Value) -> Vec<FieldChange> {
    let (Some(file), Some(server)) = (file.as_object(), server.as_object()) else {
        return vec![];
    };
    file.iter()
        .filter(|(field, _)| field.as_str() != "name" && field.as_str() != "durable_name")
        .filter_map(|(field, wanted)| {
            let actual = server.get(field).cloned().unwrap_or(Value::Null);
            (&actual != wanted).then(|| FieldChange {
                field: field.clone(),
                server: actual,
                file: wanted.clone(),
            })
        })
        .collect()
}

impl Topology {
    /// The definitions compiled into this binary.
    pub fn builtin() -> Result<Self, TopologyError> {
        let stream = parse(STREAM_FILE.0, STREAM_FILE.1)?;
        let consumers = CONSUMER_FILES
            .iter()
            .map(|(file, text)| parse(file, text))
            .collect::<Result<_, _>>()?;
        let topology = Self { stream, consumers };
        topology.check()?;
        Ok(topology)
    }

    /// Refuses definitions that would break a guarantee another part
    /// relies on: the stream must remember message ids at least as long as
    /// the ingress accepts one signed delivery (stamped as far ahead as it
    /// allows, then as old).
    pub fn check(&self) -> Result<(), TopologyError> {
        let window = self.stream.1.duplicate_window;
        let accepted = crate::WEBHOOK_MAX_AGE + crate::WEBHOOK_MAX_FUTURE;
        if window < accepted {
            return Err(TopologyError::DuplicateWindowTooShort {
                window_secs: window.as_secs(),
                accepted_secs: accepted.as_secs(),
            });
        }
        Ok(())
    }

    /// The same definitions with the stream and every consumer replicated
    /// `replicas` times (a clustered production server runs 3; the files
    /// say 1). Consumers name their replicas explicitly so that a consumer
    /// left at another count is reported as drift.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.stream.0["num_replicas"] = Value::from(replicas);
        self.stream.1.num_replicas = replicas;
        for (raw, config) in &mut self.consumers {
            raw["num_replicas"] = Value::from(replicas);
            config.num_replicas = replicas;
        }
        self
    }

    pub fn stream_name(&self) -> &str {
        &self.stream.1.name
    }

    pub fn consumer_names(&self) -> Vec<String> {
        self.consumers
            .iter()
            .filter_map(|(_, config)| config.durable_name.clone())
            .collect()
    }

    /// Creates what is missing and updates what differs. Running it twice
    /// in a row reports everything unchanged the second time.
    pub async fn apply(&self, jetstream: &JetStream) -> Result<Vec<Applied>, TopologyError> {
        let mut report = Vec::new();
        let (raw, config) = &self.stream;
        let server_err = |what: String| {
            move |err: &dyn std::fmt::Display| TopologyError::Server {
                what,
                reason: err.to_string(),
            }
        };
        let name = format!("stream {}", config.name);
        let stream = match jetstream.get_stream(&config.name).await {
            Ok(mut existing) => {
                let info = existing
                    .info()
                    .await
                    .map_err(|err| server_err(name.clone())(&err))?;
                let server = serde_json::to_value(&info.config).expect("config serialises");
                let changes = diff(raw, &server);
                if changes.is_empty() {
                    report.push(Applied::Unchanged { name: name.clone() });
                } else {
                    jetstream
                        .update_stream(config.clone())
                        .await
                        .map_err(|err| server_err(name.clone())(&err))?;
                    report.push(Applied::Updated {
                        name: name.clone(),
                        changes,
                    });
                }
                jetstream
                    .get_stream(&config.name)
                    .await
                    .map_err(|err| server_err(name.clone())(&err))?
            }
            Err(_) => {
                let stream = jetstream
                    .create_stream(config.clone())
                    .await
                    .map_err(|err| server_err(name.clone())(&err))?;
                report.push(Applied::Created { name });
                stream
            }
        };
        for (raw, config) in &self.consumers {
            let durable = config.durable_name.clone().unwrap_or_default();
            let name = format!("consumer {durable}");
            match stream.consumer_info(&durable).await {
                Ok(info) => {
                    let server = serde_json::to_value(&info.config).expect("config serialises");
                    let changes = diff(raw, &server);
                    if changes.is_empty() {
                        report.push(Applied::Unchanged { name });
                    } else {
                        // An operator's pause (the console's) outlives an
                        // update of the definition. The server keeps a pause
                        // an update does not name; it is carried over
                        // explicitly so that never depends on it.
                        let mut config = config.clone();
                        config.pause_until = info.config.pause_until;
                        stream
                            .update_consumer(config)
                            .await
                            .map_err(|err| server_err(name.clone())(&err))?;
                        report.push(Applied::Updated { name, changes });
                    }
                }
                Err(_) => {
                    stream
                        .create_consumer(config.clone())
                        .await
                        .map_err(|err| server_err(name.clone())(&err))?;
                    report.push(Applied::Created { name });
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_definitions_parse_and_name_one_consumer_per_stage_the_indexer_and_the_correlator() {
        let topology = Topology::builtin().unwrap();
        assert_eq!(topology.stream_name(), crate::STREAM);
        assert_eq!(
            topology.consumer_names(),
            [
                "context-gatherer",
                "llm-enhancer",
                "writeback",
                "history-projector",
                "embedding-indexer",
                "incident-correlator",
                "incident-notifier"
            ]
        );
    }

    #[test]
    fn a_duplicate_window_shorter_than_the_signed_timestamp_window_is_refused() {
        let mut topology = Topology::builtin().unwrap();
        assert!(
            topology.stream.1.duplicate_window
                >= crate::WEBHOOK_MAX_AGE + crate::WEBHOOK_MAX_FUTURE
        );
        topology.stream.1.duplicate_window = std::time::Duration::from_secs(120);
        assert!(matches!(
            topology.check(),
            Err(TopologyError::DuplicateWindowTooShort {
                window_secs: 120,
                ..
            })
        ));
        // As long as a timestamp may be old, but not as long as a delivery
        // stamped ahead of our clock is accepted.
        topology.stream.1.duplicate_window = crate::WEBHOOK_MAX_AGE;
        assert!(topology.check().is_err());
        topology.stream.1.duplicate_window = crate::WEBHOOK_MAX_AGE + crate::WEBHOOK_MAX_FUTURE;
        assert!(topology.check().is_ok());
    }

    #[test]
    fn diff_reports_only_fields_the_file_names() {
        let file = serde_json::json!({"name": "S", "max_age": 10, "subjects": ["a.>"]});
        let server =
            serde_json::json!({"name": "S", "max_age": 20, "subjects": ["a.>"], "max_bytes": -1});
        let changes = diff(&file, &server);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "max_age");
        assert_eq!(changes[0].server, serde_json::json!(20));
    }
}
