//! Instance runtime status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of an orchestration instance, as reported by every front end.
///
/// `ContinuedAsNew` is transient: it is stored between a continue-as-new commit and the first turn
/// of the new execution. The same type is the status carried by `ExecutionCompleted` and by the
/// complete-orchestration action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrchestrationStatus {
    Pending,
    Running,
    Completed,
    ContinuedAsNew,
    Failed,
    Terminated,
    Suspended,
}

/// Alias used where the value describes an instance rather than a completion.
pub type RuntimeStatus = OrchestrationStatus;

impl OrchestrationStatus {
    pub const ALL: [OrchestrationStatus; 7] = [
        OrchestrationStatus::Pending,
        OrchestrationStatus::Running,
        OrchestrationStatus::Completed,
        OrchestrationStatus::ContinuedAsNew,
        OrchestrationStatus::Failed,
        OrchestrationStatus::Terminated,
        OrchestrationStatus::Suspended,
    ];

    /// Completed, Failed and Terminated end an instance for good (until restart or rewind).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrchestrationStatus::Completed
                | OrchestrationStatus::Failed
                | OrchestrationStatus::Terminated
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrchestrationStatus::Pending => "Pending",
            OrchestrationStatus::Running => "Running",
            OrchestrationStatus::Completed => "Completed",
            OrchestrationStatus::ContinuedAsNew => "ContinuedAsNew",
            OrchestrationStatus::Failed => "Failed",
            OrchestrationStatus::Terminated => "Terminated",
            OrchestrationStatus::Suspended => "Suspended",
        }
    }
}

impl fmt::Display for OrchestrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parsing accepts any letter case, so `?runtimeStatus=running` works.
impl FromStr for OrchestrationStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrchestrationStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown runtime status '{s}' (expected one of: {})",
                    OrchestrationStatus::ALL.map(|s| s.as_str()).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive() {
        assert_eq!("running".parse(), Ok(OrchestrationStatus::Running));
        assert_eq!(
            "ContinuedAsNew".parse(),
            Ok(OrchestrationStatus::ContinuedAsNew)
        );
        let err = "Done".parse::<OrchestrationStatus>().unwrap_err();
        assert!(err.contains("Pending"), "{err}");
    }

    #[test]
    fn terminal_statuses() {
        let terminal: Vec<_> = OrchestrationStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                OrchestrationStatus::Completed,
                OrchestrationStatus::Failed,
                OrchestrationStatus::Terminated
            ]
        );
    }
}
