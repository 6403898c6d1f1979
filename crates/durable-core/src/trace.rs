//! W3C trace context (`traceparent`) as carried in histories, and the span ids the engine
//! derives so that every process agrees on them without storing anything.

use crate::event::TraceContext;

/// A trace id and a span id, as parsed from or formatted into a `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

impl SpanRef {
    /// Parses `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; all-zero ids are invalid.
    pub fn parse(traceparent: &str) -> Option<SpanRef> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" {
            return None;
        }
        let trace_id = unhex::<16>(trace)?;
        let span_id = unhex::<8>(span)?;
        let flags = unhex::<1>(flags)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanRef {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    pub fn traceparent(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", hex(&self.trace_id), hex(&self.span_id))
    }

    pub fn to_context(&self) -> TraceContext {
        TraceContext {
            trace_parent: self.traceparent(),
            span_id: String::new(),
            trace_state: None,
        }
    }

    pub fn from_context(ctx: &TraceContext) -> Option<SpanRef> {
        SpanRef::parse(&ctx.trace_parent)
    }
}

/// FNV-1a over the parts, separated, so that ("ab", "c") and ("a", "bc") differ.
fn fnv(parts: &[&str], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    if h == 0 { 1 } else { h }
}

/// The span id of one execution of an instance: the same in every process and on every replay.
pub fn execution_span_id(instance_id: &str, execution_id: &str) -> [u8; 8] {
    fnv(&[instance_id, execution_id], 0).to_be_bytes()
}

/// The trace id of an execution that was started without a trace context of its own.
pub fn execution_trace_id(instance_id: &str, execution_id: &str) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&fnv(&[instance_id, execution_id], 1).to_be_bytes());
    id[8..].copy_from_slice(&fnv(&[instance_id, execution_id], 2).to_be_bytes());
    id
}

/// A random span id (for activity runs, which are not replayed).
pub fn random_span_id() -> [u8; 8] {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8]);
    if id == [0; 8] { [1; 8] } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let r = SpanRef::parse(text).unwrap();
        assert!(r.sampled);
        assert_eq!(r.traceparent(), text);
        assert!(
            SpanRef::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(SpanRef::parse("nonsense").is_none());
        assert!(
            SpanRef::parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none()
        );
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(execution_span_id("a", "1"), execution_span_id("a", "1"));
        assert_ne!(execution_span_id("a", "1"), execution_span_id("a", "2"));
        assert_ne!(execution_span_id("ab", "c"), execution_span_id("a", "bc"));
        assert_ne!(execution_trace_id("a", "1"), [0; 16]);
    }
}
