//! The CLI and the services as separate processes, on real nats-server and
//! PostgreSQL: one test binary, one module per area.

mod chaos;
mod chaos_cluster;
mod cli;
mod cluster_failover;
mod db_failover;
mod import;
mod incidents_cli;
mod replay;
mod scaling;
mod stage_startup;

mod support;
