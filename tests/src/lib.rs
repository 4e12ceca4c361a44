//! End-to-end and cross-crate integration tests of the pipeline, on real
//! nats-server and PostgreSQL (see `tests/`). This library is empty.
