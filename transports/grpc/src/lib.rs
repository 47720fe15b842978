//! Bifrost's gRPC transport: the `bifrost.v1.BifrostService` (see `proto/bifrost/v1`) on
//! the same engine, plugins and shared gateway layer as the HTTP transport.
//!
//! - [`pb`]: the generated messages, server and client;
//! - [`convert`]: proto ↔ the engine's unified types, losslessly;
//! - [`service`]: the service (translate, call the engine, translate back);
//! - [`serve`]: the server with health, reflection, keep-alive and size limits.
//!
//! `bifrost-http -grpc-port N` and the standalone `bifrost-grpc` binary both call
//! [`serve`]. See `docs/grpc.md` for metadata names, the error mapping and examples.

pub mod convert;
pub mod pb;
pub mod server;
pub mod service;

pub use server::{DRAIN_TIMEOUT, ServeError, Workers, serve, serve_with_drain, spawn_workers};
pub use service::GrpcGateway;
