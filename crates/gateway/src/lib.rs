//! What every Bifrost transport shares, so HTTP and gRPC (and whatever comes next) behave
//! the same: the plugin registry, the CLI and config merge, the request-metadata policy,
//! request validation and the unsupported-parameter policy, and the one error → status
//! table with an HTTP and a gRPC column. Transports keep only their wire format.

pub mod cli;
pub mod logging;
pub mod metadata;
pub mod plugins;
pub mod policy;
pub mod signals;
pub mod startup;
pub mod status;
