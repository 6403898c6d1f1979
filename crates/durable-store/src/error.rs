use durable_core::ErrorCode;

/// Errors a store reports. Each maps to one stable [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("instance '{0}' not found")]
    NotFound(String),
    #[error("an instance with id '{0}' already exists")]
    AlreadyExists(String),
    #[error("the lease on '{0}' is no longer held; another worker took it over")]
    StaleLease(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound(_) => ErrorCode::InstanceNotFound,
            StoreError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            StoreError::StaleLease(_) => ErrorCode::StaleLease,
            StoreError::InvalidState(_) => ErrorCode::InvalidState,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether the same call may succeed later (connection trouble, contention).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        StoreError::Internal(err.to_string())
    }
}
