//! Percent-encoding of URI parts, and the form of a URI that is safe to log.

use axum::http::Uri;

/// Encodes every byte outside RFC 3986's unreserved set, so any instance id fits in one path
/// segment (or one header value).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as a space, as in query strings). `None` if the result is not
/// UTF-8; a malformed escape is kept as it is.
pub(crate) fn percent_decode(text: &str, plus_as_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The path and query of `uri` with the value of every `code` parameter (the API key) masked:
/// the only form of a request URI that may be logged.
pub fn redact(uri: &Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            match percent_decode(name, true) {
                Some(decoded) if decoded != "code" => pair.to_string(),
                // A name that does not decode cannot be proven harmless.
                _ => format!("{name}=***"),
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        for text in ["plain", "a b/c?d#e%f", "ünï|cødé", "100%"] {
            assert_eq!(
                percent_decode(&percent_encode(text), false).as_deref(),
                Some(text)
            );
        }
        assert_eq!(percent_decode("a+b%2", true).as_deref(), Some("a b%2"));
        assert_eq!(percent_decode("%ff", false), None);
    }

    #[test]
    fn the_key_never_survives_redaction() {
        let uri: Uri = "/x?top=2&code=secret&c%6Fde=secret2&codex=1"
            .parse()
            .unwrap();
        let logged = redact(&uri);
        assert!(!logged.contains("secret"), "{logged}");
        assert!(
            logged.contains("top=2") && logged.contains("codex=1"),
            "{logged}"
        );
        let uri: Uri = "/x?%ff=secret".parse().unwrap();
        assert!(!redact(&uri).contains("secret"));
    }
}
