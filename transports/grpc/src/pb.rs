//! The `bifrost.v1` messages, server and client generated from `proto/bifrost/v1` at build
//! time, and the file descriptor set server reflection serves.

#![allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    reason = "generated code; the proto files carry the documentation"
)]

tonic::include_proto!("bifrost.v1");

/// The encoded `FileDescriptorSet` of `proto/bifrost/v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bifrost_v1_descriptor");

/// The full name of the service, as health checks and reflection name it.
pub const SERVICE_NAME: &str = "bifrost.v1.BifrostService";

/// Type URL of a packed [`BifrostError`] in `google.rpc.Status.details`.
pub const BIFROST_ERROR_TYPE_URL: &str = "type.googleapis.com/bifrost.v1.BifrostError";

/// `google.rpc.Status`, the standard payload of `grpc-status-details-bin`; defined here
/// (three fields) rather than pulling in the googleapis protos.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The error message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details; Bifrost sends one packed [`BifrostError`].
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}
