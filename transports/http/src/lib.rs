//! Bifrost's HTTP transport: an axum server exposing the OpenAI-shaped routes over the core
//! engine. Handlers only translate; the engine does the work.

pub mod app;
pub mod body_timeout;
/// The flags, shared with the other binaries.
pub use bifrost_gateway::cli;
/// Log output, shared with the other binaries.
pub use bifrost_gateway::logging;
pub mod errors;
mod observe;
pub mod parse;
pub mod server;
pub mod spin;
pub mod surfaces;
pub mod workers;
