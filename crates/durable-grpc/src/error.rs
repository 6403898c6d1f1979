//! Errors, and the one mapping from every error the sidecar can meet to a gRPC status code.

use durable::core::ErrorCode;
use durable::{ClientError, StoreError};
use tonic::{Code, Status};

/// Why [`crate::Sidecar::serve`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("could not use the listener: {0}")]
    Listener(#[from] std::io::Error),
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// An error answered to a gRPC call. Converted into a [`Status`] only by [`RpcError::status`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RpcError {
    /// An engine, store or client error with its stable code.
    Engine(ErrorCode, String),
    /// The request does not follow the protocol (a missing field, a malformed token).
    BadRequest(String),
    /// Part of the protocol this server does not implement.
    Unimplemented(&'static str),
    /// Missing or wrong API key.
    Unauthenticated,
    /// The server is shutting down; the caller should reconnect elsewhere or later.
    ShuttingDown,
}

pub(crate) type RpcResult<T> = Result<T, RpcError>;

impl RpcError {
    pub fn bad(message: impl Into<String>) -> Self {
        RpcError::BadRequest(message.into())
    }

    /// The single mapping to gRPC codes. UNAVAILABLE is reserved for conditions of the server or
    /// its store, never for an application error: the SDKs treat it as a broken connection.
    pub fn status(self) -> Status {
        match self {
            RpcError::Engine(code, message) => Status::new(engine_code(code), message),
            RpcError::BadRequest(message) => Status::invalid_argument(message),
            RpcError::Unimplemented(message) => Status::unimplemented(message),
            RpcError::Unauthenticated => Status::unauthenticated(
                "missing or wrong API key (send metadata 'authorization: Bearer <key>')",
            ),
            RpcError::ShuttingDown => Status::unavailable("the server is shutting down"),
        }
    }
}

fn engine_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::InvalidInput | ErrorCode::InvalidInstanceId => Code::InvalidArgument,
        ErrorCode::InstanceNotFound | ErrorCode::UnknownOrchestration => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::InvalidState => Code::FailedPrecondition,
        ErrorCode::PayloadTooLarge | ErrorCode::LimitExceeded => Code::ResourceExhausted,
        ErrorCode::StaleLease => Code::Aborted,
        ErrorCode::Timeout => Code::DeadlineExceeded,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal => Code::Internal,
    }
}

impl From<RpcError> for Status {
    fn from(e: RpcError) -> Self {
        e.status()
    }
}

impl From<ClientError> for RpcError {
    fn from(e: ClientError) -> Self {
        RpcError::Engine(e.code(), e.to_string())
    }
}

impl From<StoreError> for RpcError {
    fn from(e: StoreError) -> Self {
        RpcError::Engine(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_errors_never_map_to_unavailable() {
        let all = [
            ErrorCode::InvalidInput,
            ErrorCode::InvalidInstanceId,
            ErrorCode::InstanceNotFound,
            ErrorCode::UnknownOrchestration,
            ErrorCode::AlreadyExists,
            ErrorCode::InvalidState,
            ErrorCode::PayloadTooLarge,
            ErrorCode::LimitExceeded,
            ErrorCode::StaleLease,
            ErrorCode::Timeout,
            ErrorCode::Internal,
        ];
        for code in all {
            assert_ne!(engine_code(code), Code::Unavailable, "{code}");
        }
        let s = RpcError::from(ClientError::NotFound("x".into())).status();
        assert_eq!(s.code(), Code::NotFound);
        let unimplemented = RpcError::Unimplemented("x").status();
        assert_eq!(unimplemented.code(), Code::Unimplemented);
    }
}
