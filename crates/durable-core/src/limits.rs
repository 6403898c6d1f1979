//! Every limit the engine enforces, in one place. Front ends check them at ingress, before
//! allocating for the payload.

/// Longest instance id, in bytes.
pub const MAX_INSTANCE_ID_BYTES: usize = 256;

/// Longest orchestration, activity or event name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Largest JSON payload (input, output, event data, custom status) accepted from a client.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;

/// Deepest JSON nesting accepted in a client payload.
pub const MAX_JSON_DEPTH: usize = 64;

/// Most history events one execution may hold. An orchestration that reaches it fails with an
/// error naming this limit; `continue_as_new` is the remedy for eternal loops.
pub const DEFAULT_MAX_HISTORY_EVENTS: usize = 100_000;

/// Most tasks (activities, timers, sub-orchestrations) one instance may have outstanding.
pub const DEFAULT_MAX_PENDING_TASKS: usize = 50_000;

/// Deliveries of one work item before it is declared poison.
pub const DEFAULT_MAX_DELIVERIES: u32 = 10;

/// Continue-as-new generations one worker runs back to back before yielding the instance.
pub const MAX_CONTINUE_AS_NEW_PER_CLAIM: u32 = 20;

/// Checks a name (`what`: orchestration, event, operation): 1 to [`MAX_NAME_BYTES`] bytes.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} name must be 1 to {MAX_NAME_BYTES} bytes (MAX_NAME_BYTES), not {}",
            name.len()
        ));
    }
    Ok(())
}

/// Checks that `text` is JSON no deeper than [`MAX_JSON_DEPTH`]. Returns a readable reason.
pub fn check_json(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(format!(
                        "JSON is nested deeper than {MAX_JSON_DEPTH} levels"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| format!("malformed JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_checks() {
        assert!(check_json("\"start\"").is_ok());
        assert!(check_json("{\"a\":[1,2,{\"b\":null}]}").is_ok());
        assert!(check_json("{").unwrap_err().starts_with("malformed JSON"));
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(check_json(&deep).unwrap_err().contains("deeper"));
        // brackets inside strings do not count
        let s = format!("\"{}\"", "[".repeat(100));
        assert!(check_json(&s).is_ok());
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("event", "Go").is_ok());
        assert!(check_name("event", "").is_err());
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let err = check_name("orchestration", &long).unwrap_err();
        assert!(
            err.contains("MAX_NAME_BYTES") && err.contains("257"),
            "{err}"
        );
    }
}
