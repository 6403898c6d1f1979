//! Human-readable output: aligned tables and key/value blocks.

use serde_json::Value;

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut text = line(header.to_vec());
    text.push('\n');
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
        text.push('\n');
    }
    text
}

/// A JSON field as one line of text: strings unquoted, null as `-`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A JSON payload as compact JSON (strings keep their quotes), shortened for a table.
pub fn payload(v: Option<&Value>, max: usize) -> String {
    let text = match v {
        None | Some(Value::Null) => return "-".into(),
        Some(other) => other.to_string(),
    };
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The status block of one instance.
pub fn status(body: &Value) -> String {
    let field = |k: &str| body.get(k);
    let mut rows = vec![
        ("Instance", cell(field("instanceId"))),
        ("Name", cell(field("name"))),
        ("Status", cell(field("runtimeStatus"))),
        ("Created", cell(field("createdTime"))),
        ("Last updated", cell(field("lastUpdatedTime"))),
        ("Input", payload(field("input"), 400)),
        ("Output", payload(field("output"), 400)),
        ("Custom status", payload(field("customStatus"), 400)),
    ];
    if let Some(f) = field("failureDetails").filter(|f| !f.is_null()) {
        let kind = cell(f.get("errorType"));
        let message = cell(f.get("errorMessage"));
        rows.push(("Failure", format!("{kind}: {message}")));
    }
    block(&rows)
}

/// Key/value lines, the values aligned one space after the longest key.
pub fn block(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let mut text = String::new();
    for (k, v) in rows {
        text.push_str(&format!("{k:<width$}{v}\n"));
    }
    text
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), or the text unchanged.
pub fn time(v: Option<&Value>) -> String {
    let text = cell(v);
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or(text)
}

/// Milliseconds as a short human duration.
pub fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.2} s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        Some(ms) => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "STATUS"],
            &[
                vec!["a".into(), "Running".into()],
                vec!["long-id".into(), "Failed".into()],
            ],
        );
        assert_eq!(t, "ID       STATUS\na        Running\nlong-id  Failed\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Some(12)), "12 ms");
        assert_eq!(duration(Some(1500)), "1.50 s");
        assert_eq!(duration(Some(90_000)), "1.5 min");
        assert_eq!(duration(None), "-");
    }

    #[test]
    fn payloads_are_shortened() {
        let v = Value::String("x".repeat(50));
        assert_eq!(payload(Some(&v), 10).chars().count(), 10);
        assert_eq!(payload(None, 10), "-");
    }
}
