//! The stored form of one turn's history: a JSON array of events, the same in every backend.
//! One decoder, so a corrupted row reads the same way everywhere (and can be fuzzed once).

use durable_core::event::HistoryEvent;

use crate::{StoreError, StoreResult};

/// The stored text of one turn's events.
pub fn encode_history_row(events: &[HistoryEvent]) -> String {
    serde_json::to_string(events).expect("history events always serialize")
}

/// Decodes a stored history row. A row that does not decode is corruption: `Internal`, with the
/// reason, never a panic.
pub fn decode_history_row(text: &str) -> StoreResult<Vec<HistoryEvent>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Internal(format!("corrupted history row: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_corruption_is_internal() {
        let events = decode_history_row(
            r#"[{"eventId":-1,"timestamp":"2024-01-01T00:00:00Z","eventType":"OrchestratorStarted"}]"#,
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            decode_history_row(&encode_history_row(&events)).unwrap(),
            events
        );
        for bad in ["", "{", "[{}]", "[1]", "null"] {
            let err = decode_history_row(bad).unwrap_err();
            assert!(
                err.to_string().contains("corrupted history row"),
                "{bad}: {err}"
            );
        }
    }
}
