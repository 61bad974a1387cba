//! `describe`: a descriptor printed as a user would write it in a .proto file, with its
//! leading comments when the descriptors carry source info (--proto does; reflection
//! and protosets carry it when the server or protoc kept it).

use std::fmt::Write;

use prost_reflect::{
    Cardinality, DescriptorPool, EnumDescriptor, EnumValueDescriptor, FieldDescriptor,
    FileDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor, Syntax,
};

/// `symbol`'s kind and definition (`demo.Request is a message:` then the text), or
/// `None` when the pool does not define it.
pub fn describe(pool: &DescriptorPool, symbol: &str) -> Option<String> {
    let symbol = symbol.trim_start_matches('.');
    let mut out = String::new();
    if let Some(s) = pool.get_service_by_name(symbol) {
        let _ = writeln!(out, "{symbol} is a service:");
        service(&mut out, &s);
    } else if let Some(m) = pool.get_message_by_name(symbol) {
        let _ = writeln!(out, "{symbol} is a message:");
        message(&mut out, &m, 0);
    } else if let Some(e) = pool.get_enum_by_name(symbol) {
        let _ = writeln!(out, "{symbol} is an enum:");
        enumeration(&mut out, &e, 0);
    } else {
        let (parent, child) = symbol.rsplit_once('.')?;
        if let Some(m) = pool
            .get_service_by_name(parent)
            .and_then(|s| s.methods().find(|m| m.name() == child))
        {
            let _ = writeln!(out, "{symbol} is a method:");
            method(&mut out, &m, 0);
        } else if let Some(f) = pool
            .get_message_by_name(parent)
            .and_then(|m| m.get_field_by_name(child))
        {
            let _ = writeln!(out, "{symbol} is a field:");
            field(&mut out, &f, 0);
        } else if let Some(v) = enum_value(pool, parent, child) {
            let _ = writeln!(out, "{symbol} is an enum value:");
            value(&mut out, &v, 0);
        } else {
            return None;
        }
    }
    Some(out)
}

/// An enum value named `Enum.VALUE`, or (protobuf's scoping) `scope.VALUE`.
fn enum_value(pool: &DescriptorPool, parent: &str, child: &str) -> Option<EnumValueDescriptor> {
    if let Some(v) = pool
        .get_enum_by_name(parent)
        .and_then(|e| e.get_value_by_name(child))
    {
        return Some(v);
    }
    pool.all_enums()
        .filter(|e| {
            e.parent_message()
                .map_or(e.package_name() == parent, |m| m.full_name() == parent)
        })
        .find_map(|e| e.get_value_by_name(child))
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// The leading comments of the element at `path` in `file`, as `//` lines.
fn comments(out: &mut String, file: &FileDescriptor, path: &[i32], depth: usize) {
    let Some(info) = &file.file_descriptor_proto().source_code_info else {
        return;
    };
    let Some(location) = info.location.iter().find(|l| l.path == path) else {
        return;
    };
    let Some(text) = &location.leading_comments else {
        return;
    };
    for line in text.trim_end_matches('\n').split('\n') {
        indent(out, depth);
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.is_empty() {
            out.push_str("//\n");
        } else {
            let _ = writeln!(out, "// {line}");
        }
    }
}

fn service(out: &mut String, s: &ServiceDescriptor) {
    comments(out, &s.parent_file(), s.path(), 0);
    let _ = writeln!(out, "service {} {{", s.name());
    for m in s.methods() {
        method(out, &m, 1);
    }
    out.push_str("}\n");
}

fn method(out: &mut String, m: &MethodDescriptor, depth: usize) {
    comments(out, &m.parent_file(), m.path(), depth);
    indent(out, depth);
    let stream = |yes: bool| if yes { "stream " } else { "" };
    let _ = writeln!(
        out,
        "rpc {} ( {}.{} ) returns ( {}.{} );",
        m.name(),
        stream(m.is_client_streaming()),
        m.input().full_name(),
        stream(m.is_server_streaming()),
        m.output().full_name()
    );
}

fn message(out: &mut String, m: &MessageDescriptor, depth: usize) {
    comments(out, &m.parent_file(), m.path(), depth);
    indent(out, depth);
    let _ = writeln!(out, "message {} {{", m.name());
    let mut oneofs_done = Vec::new();
    for f in m.fields() {
        match f.containing_oneof().filter(|o| !o.is_synthetic()) {
            None => field(out, &f, depth + 1),
            Some(o) => {
                if oneofs_done.contains(&o.name().to_string()) {
                    continue;
                }
                oneofs_done.push(o.name().to_string());
                comments(out, &o.parent_file(), o.path(), depth + 1);
                indent(out, depth + 1);
                let _ = writeln!(out, "oneof {} {{", o.name());
                for member in o.fields() {
                    field(out, &member, depth + 2);
                }
                indent(out, depth + 1);
                out.push_str("}\n");
            }
        }
    }
    for child in m.child_messages().filter(|c| !c.is_map_entry()) {
        message(out, &child, depth + 1);
    }
    for e in m.child_enums() {
        enumeration(out, &e, depth + 1);
    }
    for range in m.reserved_ranges() {
        indent(out, depth + 1);
        if range.end == range.start + 1 {
            let _ = writeln!(out, "reserved {};", range.start);
        } else {
            let _ = writeln!(out, "reserved {} to {};", range.start, range.end - 1);
        }
    }
    let names: Vec<String> = m.reserved_names().map(|n| format!("\"{n}\"")).collect();
    if !names.is_empty() {
        indent(out, depth + 1);
        let _ = writeln!(out, "reserved {};", names.join(", "));
    }
    indent(out, depth);
    out.push_str("}\n");
}

fn type_name(kind: &Kind) -> String {
    match kind {
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
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
    }
}

fn field(out: &mut String, f: &FieldDescriptor, depth: usize) {
    comments(out, &f.parent_file(), f.path(), depth);
    indent(out, depth);
    let proto = f.field_descriptor_proto();
    let in_real_oneof = f.containing_oneof().is_some_and(|o| !o.is_synthetic());
    let label = if f.is_map() || in_real_oneof {
        ""
    } else {
        match (f.cardinality(), f.parent_file().syntax()) {
            (Cardinality::Repeated, _) => "repeated ",
            (Cardinality::Required, _) => "required ",
            (Cardinality::Optional, Syntax::Proto2) => "optional ",
            (Cardinality::Optional, _) if proto.proto3_optional() => "optional ",
            (Cardinality::Optional, _) => "",
        }
    };
    let ty = match f.kind() {
        Kind::Message(entry) if f.is_map() => format!(
            "map<{}, {}>",
            type_name(&entry.map_entry_key_field().kind()),
            type_name(&entry.map_entry_value_field().kind())
        ),
        kind => type_name(&kind),
    };
    let mut options = Vec::new();
    if let Some(default) = &proto.default_value {
        if matches!(f.kind(), Kind::String) {
            options.push(format!("default = \"{}\"", default.escape_default()));
        } else {
            options.push(format!("default = {default}"));
        }
    }
    if proto.options.as_ref().is_some_and(|o| o.deprecated()) {
        options.push("deprecated = true".to_string());
    }
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(" [{}]", options.join(", "))
    };
    let _ = writeln!(out, "{label}{ty} {} = {}{options};", f.name(), f.number());
}

fn enumeration(out: &mut String, e: &EnumDescriptor, depth: usize) {
    comments(out, &e.parent_file(), e.path(), depth);
    indent(out, depth);
    let _ = writeln!(out, "enum {} {{", e.name());
    for v in e.values() {
        value(out, &v, depth + 1);
    }
    indent(out, depth);
    out.push_str("}\n");
}

fn value(out: &mut String, v: &EnumValueDescriptor, depth: usize) {
    comments(out, &v.parent_file(), v.path(), depth);
    indent(out, depth);
    let _ = writeln!(out, "{} = {};", v.name(), v.number());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(source: &str) -> DescriptorPool {
        let dir = std::env::temp_dir().join(format!("h2grpc-describe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.proto"), source).unwrap();
        let set = protox::compile(["t.proto"], [&dir]).unwrap();
        DescriptorPool::from_file_descriptor_set(set).unwrap()
    }

    #[test]
    fn every_kind_of_symbol_prints_as_proto_source() {
        let pool = pool(
            "syntax = \"proto3\";\npackage p;\n\
             // A thing.\nmessage Thing {\n  // The id.\n  int64 id = 1;\n  repeated string tags = 2;\n  \
             map<string, Color> colors = 3;\n  optional bool flag = 4;\n  oneof pick { string a = 5; Thing b = 6; }\n  \
             enum Color { RED = 0; BLUE = 1; }\n  reserved 9, 10 to 12;\n}\n\
             service S {\n  rpc Get(Thing) returns (stream Thing);\n}\n",
        );
        assert_eq!(
            describe(&pool, "p.Thing").unwrap(),
            "p.Thing is a message:\n// A thing.\nmessage Thing {\n  // The id.\n  int64 id = 1;\n  \
             repeated string tags = 2;\n  map<string, .p.Thing.Color> colors = 3;\n  optional bool flag = 4;\n  \
             oneof pick {\n    string a = 5;\n    .p.Thing b = 6;\n  }\n  enum Color {\n    RED = 0;\n    BLUE = 1;\n  }\n  \
             reserved 9;\n  reserved 10 to 12;\n}\n"
        );
        assert_eq!(
            describe(&pool, "p.S").unwrap(),
            "p.S is a service:\nservice S {\n  rpc Get ( .p.Thing ) returns ( stream .p.Thing );\n}\n"
        );
        assert_eq!(
            describe(&pool, "p.S.Get").unwrap(),
            "p.S.Get is a method:\nrpc Get ( .p.Thing ) returns ( stream .p.Thing );\n"
        );
        assert_eq!(
            describe(&pool, "p.Thing.id").unwrap(),
            "p.Thing.id is a field:\n// The id.\nint64 id = 1;\n"
        );
        assert_eq!(
            describe(&pool, "p.Thing.BLUE").unwrap(),
            "p.Thing.BLUE is an enum value:\nBLUE = 1;\n"
        );
        assert!(describe(&pool, "p.Nope").is_none());
    }
}
