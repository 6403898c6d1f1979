//! Instance and execution ids.

use crate::limits::MAX_INSTANCE_ID_BYTES;

/// Checks a user-supplied instance id: not empty, at most [`MAX_INSTANCE_ID_BYTES`] bytes, no
/// control characters.
pub fn validate_instance_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("instance id must not be empty".into());
    }
    if id.len() > MAX_INSTANCE_ID_BYTES {
        return Err(format!(
            "instance id is {} bytes; the limit is {MAX_INSTANCE_ID_BYTES}",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "instance id must not contain control characters (found {c:?})"
        ));
    }
    Ok(())
}

/// A new random id (32 lower-case hex digits, like Python's `uuid4().hex`).
pub fn new_instance_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new random execution id.
pub fn new_execution_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The id of a sub-orchestration that the caller did not name: `<parent>:<id as %04x>`, the
/// convention of the Python and Go SDKs.
pub fn sub_orchestration_id(parent: &str, action_id: i32) -> String {
    format!("{parent}:{action_id:04x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_ids() {
        assert!(validate_instance_id("").is_err());
        assert!(validate_instance_id(&"x".repeat(257)).is_err());
        assert!(validate_instance_id("a\nb").is_err());
        assert!(validate_instance_id(&"x".repeat(256)).is_ok());
        assert!(validate_instance_id("p1:0001").is_ok());
    }

    #[test]
    fn sub_ids_follow_the_sdk_convention() {
        assert_eq!(sub_orchestration_id("p1", 1), "p1:0001");
        assert_eq!(sub_orchestration_id("p1", 255), "p1:00ff");
    }
}
