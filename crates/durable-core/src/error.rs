//! Error codes shared by every layer, and the error type user code returns.

use std::fmt;

use crate::failure::FailureDetails;

/// Stable error codes. Front ends map each to one HTTP status and one gRPC code; the strings are
/// part of the API (`{"code": "...", "message": "..."}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a bad parameter.
    InvalidInput,
    /// The instance id is empty, too long or has control characters.
    InvalidInstanceId,
    /// The instance does not exist.
    InstanceNotFound,
    /// No orchestration of that name is registered.
    UnknownOrchestration,
    /// An instance with that id already exists and is not replaceable.
    AlreadyExists,
    /// The instance is in a state where the operation cannot apply (e.g. already finished).
    InvalidState,
    /// A payload or message is larger than its limit.
    PayloadTooLarge,
    /// Another limit (history length, pending tasks, JSON depth) was exceeded.
    LimitExceeded,
    /// The caller's lease is no longer current: another worker took the item over.
    StaleLease,
    /// The waited-for condition did not happen in time.
    Timeout,
    /// The store is unreachable or overloaded; retrying later may succeed.
    Unavailable,
    /// A bug or corrupted data.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InvalidInstanceId => "invalid_instance_id",
            ErrorCode::InstanceNotFound => "instance_not_found",
            ErrorCode::UnknownOrchestration => "unknown_orchestration",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::StaleLease => "stale_lease",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// Whether the same call may succeed if simply retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Unavailable | ErrorCode::Timeout)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error an orchestration or activity returns. It carries [`FailureDetails`], which are
/// recorded in history and passed to the caller verbatim.
///
/// Any `std::error::Error` converts into it with `?`; a [`crate::TaskError`] keeps its details as
/// the inner failure, so a chain of failures across activities and sub-orchestrations stays
/// readable.
pub struct Error {
    details: FailureDetails,
}

impl Error {
    /// An error with a message and the generic type name `Error`.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            details: FailureDetails::new("Error", message.to_string()),
        }
    }

    /// An error with an explicit type name, e.g. `InsufficientFunds`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            details: FailureDetails::new(error_type, message),
        }
    }

    /// Marks the error so retry policies do not retry it.
    pub fn non_retriable(mut self) -> Self {
        self.details.is_non_retriable = true;
        self
    }

    pub fn details(&self) -> &FailureDetails {
        &self.details
    }

    pub fn into_details(self) -> FailureDetails {
        self.details
    }

    pub fn from_details(details: FailureDetails) -> Self {
        Error { details }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(err: E) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        match boxed.downcast::<crate::replay::TaskError>() {
            Ok(task) => Error {
                details: task.to_details(),
            },
            Err(other) => {
                let mut details =
                    FailureDetails::new(std::any::type_name::<E>(), other.to_string());
                if let Some(source) = other.source() {
                    details = details.with_inner(FailureDetails::new("source", source.to_string()));
                }
                Error { details }
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.details.error_message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.details)
    }
}

/// Returns early with a [`Error::msg`] built from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(format!($($arg)*)))
    };
}
