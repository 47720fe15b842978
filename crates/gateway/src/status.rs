//! The one error → status table every transport reads: for an HTTP status (what
//! [`BifrostError::http_status`](bifrost_core::schemas::BifrostError::http_status) says), the
//! names each HTTP dialect uses and the gRPC code. Kept side by side in one row so the
//! dialects and transports never disagree about what happened.

/// gRPC status codes, numbered as the gRPC spec (and `tonic::Code`) number them, so a
/// transport converts with a plain `as i32`. Defined here so this crate needs no gRPC stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    /// Not an error.
    Ok = 0,
    /// The caller went away (HTTP 499).
    Cancelled = 1,
    /// An error with no better code.
    Unknown = 2,
    /// The request is malformed or names something invalid (400, 405, 413, 422).
    InvalidArgument = 3,
    /// The deadline passed before an answer (408, 504).
    DeadlineExceeded = 4,
    /// No such model, route or entity (404).
    NotFound = 5,
    /// Already exists.
    AlreadyExists = 6,
    /// The credentials are valid but not allowed to do this (403).
    PermissionDenied = 7,
    /// Rate limited, out of quota or over a size limit (429).
    ResourceExhausted = 8,
    /// The request is valid but the system is not in a state to run it (other 4xx).
    FailedPrecondition = 9,
    /// A conflict (409).
    Aborted = 10,
    /// Out of range.
    OutOfRange = 11,
    /// The operation is not implemented for this provider (501).
    Unimplemented = 12,
    /// The gateway or provider failed (500 and other 5xx).
    Internal = 13,
    /// The upstream is unreachable or overloaded; retrying may help (502, 503, 529).
    Unavailable = 14,
    /// Data loss.
    DataLoss = 15,
    /// No valid credentials (401).
    Unauthenticated = 16,
}

/// One row of the table: how each dialect and transport names an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRow {
    /// Anthropic's error `type` (`/anthropic` routes).
    pub anthropic_type: &'static str,
    /// Google's canonical status name (`/genai` routes).
    pub google_status: &'static str,
    /// OpenAI's error `type`, used when the error carries none (`/openai`, `/v1`).
    pub openai_type: &'static str,
    /// The gRPC status code (the gRPC transport).
    pub grpc: GrpcCode,
}

const fn row(
    anthropic_type: &'static str,
    google_status: &'static str,
    openai_type: &'static str,
    grpc: GrpcCode,
) -> StatusRow {
    StatusRow {
        anthropic_type,
        google_status,
        openai_type,
        grpc,
    }
}

/// The row for `status` (an HTTP status code).
pub fn status_row(status: u16) -> StatusRow {
    use GrpcCode::*;
    const INVALID: &str = "invalid_request_error";
    match status {
        400 | 422 => row(INVALID, "INVALID_ARGUMENT", INVALID, InvalidArgument),
        401 => row(
            "authentication_error",
            "UNAUTHENTICATED",
            "authentication_error",
            Unauthenticated,
        ),
        403 => row(
            "permission_error",
            "PERMISSION_DENIED",
            "permission_error",
            PermissionDenied,
        ),
        404 => row("not_found_error", "NOT_FOUND", "not_found_error", NotFound),
        405 => row(INVALID, "INVALID_ARGUMENT", INVALID, InvalidArgument),
        408 | 504 => row(
            "timeout_error",
            "DEADLINE_EXCEEDED",
            "timeout",
            DeadlineExceeded,
        ),
        409 => row(INVALID, "ABORTED", "conflict_error", Aborted),
        413 => row(
            "request_too_large",
            "INVALID_ARGUMENT",
            "request_too_large",
            ResourceExhausted,
        ),
        429 => row(
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
            "rate_limit_error",
            ResourceExhausted,
        ),
        499 => row("api_error", "CANCELLED", "request_cancelled", Cancelled),
        501 => row("api_error", "UNIMPLEMENTED", "server_error", Unimplemented),
        502 | 503 => row("api_error", "UNAVAILABLE", "server_error", Unavailable),
        529 => row(
            "overloaded_error",
            "UNAVAILABLE",
            "server_error",
            Unavailable,
        ),
        s if (400..500).contains(&s) => {
            row(INVALID, "FAILED_PRECONDITION", INVALID, FailedPrecondition)
        }
        _ => row("api_error", "INTERNAL", "server_error", Internal),
    }
}

/// The gRPC code for an HTTP status.
pub fn grpc_code(status: u16) -> GrpcCode {
    status_row(status).grpc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_one_consistent_row() {
        assert_eq!(grpc_code(400), GrpcCode::InvalidArgument);
        assert_eq!(grpc_code(401), GrpcCode::Unauthenticated);
        assert_eq!(grpc_code(404), GrpcCode::NotFound);
        assert_eq!(grpc_code(429), GrpcCode::ResourceExhausted);
        assert_eq!(grpc_code(499), GrpcCode::Cancelled);
        assert_eq!(grpc_code(502), GrpcCode::Unavailable);
        assert_eq!(grpc_code(504), GrpcCode::DeadlineExceeded);
        assert_eq!(grpc_code(500), GrpcCode::Internal);
        assert_eq!(grpc_code(418), GrpcCode::FailedPrecondition);
        assert_eq!(GrpcCode::Unauthenticated as i32, 16);
        // The Google status name and the gRPC code agree wherever both exist.
        for s in [
            400, 401, 403, 404, 408, 409, 429, 499, 501, 502, 503, 504, 500,
        ] {
            let r = status_row(s);
            let google = format!("{:?}", r.grpc);
            let camel: String = r
                .google_status
                .split('_')
                .map(|w| w[..1].to_owned() + &w[1..].to_lowercase())
                .collect();
            assert_eq!(camel, google, "status {s}");
        }
    }
}
