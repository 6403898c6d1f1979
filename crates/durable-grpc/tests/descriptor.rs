//! Our compiled `.proto` against the one in the durabletask 1.12.0 wheel: the same walk over
//! both descriptors must print the same lines (names, numbers, types, labels, deprecations,
//! services, and no package).

use std::fmt::Write;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, Syntax};

use crate::support::python;

fn type_name(kind: Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
    }
}

fn field_line(f: &FieldDescriptor) -> String {
    let (kind, label) = match f.kind() {
        Kind::Message(entry) if entry.is_map_entry() => {
            let key = type_name(entry.map_entry_key_field().kind());
            let value = type_name(entry.map_entry_value_field().kind());
            (format!("map<{key}, {value}>"), "map".to_string())
        }
        kind => {
            let label = match f.containing_oneof() {
                Some(oneof) => format!("oneof:{}", oneof.name()),
                None if f.is_list() => "repeated".into(),
                None => "singular".into(),
            };
            (type_name(kind), label)
        }
    };
    let deprecated = f
        .field_descriptor_proto()
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false);
    let deprecated = if deprecated { " [deprecated]" } else { "" };
    format!("  {} {} {kind} {label}{deprecated}", f.number(), f.name())
}

/// The same dump `descriptor_dump.py` prints for the wheel.
fn dump_ours() -> String {
    let pool = DescriptorPool::decode(durable_grpc::FILE_DESCRIPTOR_SET).unwrap();
    let file = pool.get_file_by_name("orchestrator_service.proto").unwrap();
    let mut out = String::new();
    let syntax = match file.syntax() {
        Syntax::Proto2 => "proto2",
        Syntax::Proto3 => "proto3",
    };
    writeln!(out, "package: '{}'", file.package_name()).unwrap();
    writeln!(out, "syntax: {syntax}").unwrap();
    let mut deps: Vec<String> = file.dependencies().map(|d| d.name().to_string()).collect();
    deps.sort();
    writeln!(out, "dependencies: {}", deps.join(", ")).unwrap();
    let mut enums: Vec<_> = file.enums().collect();
    enums.sort_by(|a, b| a.name().cmp(b.name()));
    for e in enums {
        writeln!(out, "ENUM {}", e.full_name()).unwrap();
        let mut values: Vec<_> = e.values().collect();
        values.sort_by_key(|v| v.number());
        for v in values {
            writeln!(out, "  {} = {}", v.name(), v.number()).unwrap();
        }
    }
    let mut messages: Vec<_> = file.messages().collect();
    messages.sort_by(|a, b| a.name().cmp(b.name()));
    for m in messages {
        writeln!(out, "MESSAGE {}", m.full_name()).unwrap();
        let mut fields: Vec<_> = m.fields().collect();
        fields.sort_by_key(|f| f.number());
        for f in fields {
            writeln!(out, "{}", field_line(&f)).unwrap();
        }
    }
    let mut services: Vec<_> = file.services().collect();
    services.sort_by(|a, b| a.name().cmp(b.name()));
    for s in services {
        writeln!(out, "SERVICE {}", s.full_name()).unwrap();
        for m in s.methods() {
            let stream = |yes: bool| if yes { "stream " } else { "" };
            writeln!(
                out,
                "  rpc {}({}{}) returns ({}{})",
                m.name(),
                stream(m.is_client_streaming()),
                m.input().full_name(),
                stream(m.is_server_streaming()),
                m.output().full_name()
            )
            .unwrap();
        }
    }
    out
}

fn dump_wheel() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/descriptor_dump.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .output()
        .expect("run the Python descriptor dump");
    assert!(
        out.status.success(),
        "descriptor_dump.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn descriptor_matches_the_durabletask_wheel() {
    let ours = dump_ours();
    let wheel = dump_wheel();
    assert!(
        ours.starts_with("package: ''\n"),
        "the proto must have no package"
    );
    assert!(wheel.lines().filter(|l| l.starts_with("MESSAGE")).count() >= 118);
    let differences: Vec<String> = diff(&wheel, &ours);
    assert!(
        differences.is_empty(),
        "our descriptor differs from durabletask 1.12.0's:\n{}",
        differences.join("\n")
    );
}

/// Lines only in one of the two dumps, marked `-` (wheel only) and `+` (ours only). Each line
/// is qualified with its enum, message or service, so a field that moved is seen as moved.
fn diff(wheel: &str, ours: &str) -> Vec<String> {
    let w = qualified(wheel);
    let o = qualified(ours);
    let mut out: Vec<String> = w
        .iter()
        .filter(|l| !o.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        o.iter()
            .filter(|l| !w.contains(l))
            .map(|l| format!("+ {l}")),
    );
    if out.is_empty() && w != o {
        out.push("the same lines in a different order".into());
    }
    out
}

fn qualified(dump: &str) -> Vec<String> {
    let mut section = "";
    dump.lines()
        .map(|line| {
            if line.starts_with(' ') {
                format!("{section} |{line}")
            } else {
                section = line;
                line.to_string()
            }
        })
        .collect()
}
