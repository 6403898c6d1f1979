"""Prints the descriptor of the durabletask wheel's orchestrator_service.proto in the line format
that tests/descriptor.rs also produces from our own compiled .proto. The two must be equal."""

from google.protobuf import descriptor as d
from durabletask.internal import orchestrator_service_pb2 as pb

SCALARS = {
    d.FieldDescriptor.TYPE_DOUBLE: "double",
    d.FieldDescriptor.TYPE_FLOAT: "float",
    d.FieldDescriptor.TYPE_INT64: "int64",
    d.FieldDescriptor.TYPE_UINT64: "uint64",
    d.FieldDescriptor.TYPE_INT32: "int32",
    d.FieldDescriptor.TYPE_FIXED64: "fixed64",
    d.FieldDescriptor.TYPE_FIXED32: "fixed32",
    d.FieldDescriptor.TYPE_BOOL: "bool",
    d.FieldDescriptor.TYPE_STRING: "string",
    d.FieldDescriptor.TYPE_BYTES: "bytes",
    d.FieldDescriptor.TYPE_UINT32: "uint32",
    d.FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    d.FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    d.FieldDescriptor.TYPE_SINT32: "sint32",
    d.FieldDescriptor.TYPE_SINT64: "sint64",
}


def type_name(f):
    if f.type == d.FieldDescriptor.TYPE_MESSAGE:
        return f.message_type.full_name
    if f.type == d.FieldDescriptor.TYPE_ENUM:
        return f.enum_type.full_name
    return SCALARS[f.type]


def is_map(f):
    return f.type == d.FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry


def field_line(f):
    if is_map(f):
        entry = f.message_type
        kind = f"map<{type_name(entry.fields_by_name['key'])}, {type_name(entry.fields_by_name['value'])}>"
        label = "map"
    else:
        kind = type_name(f)
        if f.containing_oneof is not None:
            label = "oneof:" + f.containing_oneof.name
        elif f.is_repeated:
            label = "repeated"
        else:
            label = "singular"
    deprecated = " [deprecated]" if f.GetOptions().deprecated else ""
    return f"  {f.number} {f.name} {kind} {label}{deprecated}"


def main():
    fd = pb.DESCRIPTOR
    print(f"package: '{fd.package}'")
    print(f"syntax: {fd.syntax if hasattr(fd, 'syntax') else 'proto3'}")
    print("dependencies: " + ", ".join(sorted(dep.name for dep in fd.dependencies)))
    for name in sorted(fd.enum_types_by_name):
        e = fd.enum_types_by_name[name]
        print(f"ENUM {e.full_name}")
        for v in sorted(e.values, key=lambda v: v.number):
            print(f"  {v.name} = {v.number}")
    for name in sorted(fd.message_types_by_name):
        m = fd.message_types_by_name[name]
        print(f"MESSAGE {m.full_name}")
        for f in sorted(m.fields, key=lambda f: f.number):
            print(field_line(f))
    for name in sorted(fd.services_by_name):
        s = fd.services_by_name[name]
        print(f"SERVICE {s.full_name}")
        for m in s.methods:
            stream_in = "stream " if m.client_streaming else ""
            stream_out = "stream " if m.server_streaming else ""
            print(
                f"  rpc {m.name}({stream_in}{m.input_type.full_name}) "
                f"returns ({stream_out}{m.output_type.full_name})"
            )


if __name__ == "__main__":
    main()
