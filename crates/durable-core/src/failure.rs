//! Failure details, the protocol's `TaskFailureDetails`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a task, sub-orchestration or orchestration failed. Passed through verbatim between
/// languages: a Python exception's details reach a Rust orchestration unchanged and back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureDetails {
    pub error_type: String,
    pub error_message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_failure: Option<Box<FailureDetails>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_non_retriable: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl FailureDetails {
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        FailureDetails {
            error_type: error_type.into(),
            error_message: error_message.into(),
            ..Default::default()
        }
    }

    pub fn with_inner(mut self, inner: FailureDetails) -> Self {
        self.inner_failure = Some(Box::new(inner));
        self
    }

    pub fn non_retriable(mut self) -> Self {
        self.is_non_retriable = true;
        self
    }

    /// The failure of code that panicked: `what` (say "activity 'F1'") and the panic's message.
    pub fn panicked(what: &str, panic: &(dyn std::any::Any + Send)) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        FailureDetails::new("Panic", format!("{what} panicked: {message}"))
    }
}

impl fmt::Display for FailureDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error_type.is_empty() {
            f.write_str(&self.error_message)
        } else {
            write!(f, "{}: {}", self.error_type, self.error_message)
        }
    }
}
