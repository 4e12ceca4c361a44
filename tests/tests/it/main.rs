//! The integration tests of the pipeline, on real nats-server and PostgreSQL:
//! one test binary (linking the whole workspace once), one module per area.

mod admin_api;
mod cluster;
mod console;
mod console_browser;
mod console_pipeline;
mod console_security;
mod context;
mod dead_letters;
mod deploy_config;
mod embeddings;
mod eval_languages;
mod eval_rewrite;
mod feedback;
mod help_desk_import;
mod help_desks;
mod incident_webhooks;
mod incidents;
mod ingress;
mod ingress_hostile;
mod ingress_hostile_tools;
mod ingress_security;
mod llm;
mod observability_config;
mod open_windows;
mod outbound;
mod pg_failover;
mod pipeline;
mod projector;
mod query_rewrite;
mod ranking_signals;
mod rebuild;
mod retention;
mod semantic;
mod stage_metrics;
mod store;
mod tidy;
mod topology;
mod words_across_languages;
mod writeback;
mod writeback_tools;

mod console_support;
mod help_desks_support;
mod ingress_support;
mod pipeline_support;
