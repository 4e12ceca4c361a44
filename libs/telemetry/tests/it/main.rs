//! Spans leaving the process over OTLP, to local receivers that decode the
//! real protobuf.

mod hop;
mod otlp_grpc;
mod otlp_http;
mod private;
