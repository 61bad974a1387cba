//! Protobuf's JSON mapping (ProtoJSON) for the JSON codecs of Connect and gRPC-Web.
//!
//! Messages are read and written through `prost-reflect`: a [`Descriptors`] pool holds the
//! descriptor sets the generator embeds (`FILE_DESCRIPTOR_SET` in each package's module)
//! and always the well-known types; a [`MessageJson`] turns JSON into protobuf wire bytes
//! and back for one message type. The protobuf path never goes through here.
//!
//! Reading accepts what ProtoJSON allows: lowerCamelCase or the original field names,
//! enums by name or number, 64-bit integers as strings or numbers, bytes in standard or
//! URL-safe base64 with or without padding, `null` for a default, and the well-known
//! types' own forms (`Any` with its `@type`, `Timestamp`, `Duration`, `Struct`/`Value`,
//! `FieldMask`, the wrappers). Unknown fields are refused. Writing is canonical:
//! lowerCamelCase names, default values left out, 64-bit integers as strings, enums by name.
//!
//! Where prost-reflect 0.16 reads differently from ProtoJSON (found by probing, left as is):
//! `{}` for an `Any` is refused (ProtoJSON reads the empty `Any`); a field given twice, by
//! both its names, is not refused (the last wins); integers in strings with an exponent
//! (`"1e2"`) are refused, though numbers with one (`1e2`) are read; a `Timestamp` or
//! `Duration` with more than nine fractional digits is truncated, not refused.

use std::fmt;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    SerializeOptions,
};

use crate::Status;

/// `google.protobuf.MethodOptions.IdempotencyLevel.NO_SIDE_EFFECTS`.
const NO_SIDE_EFFECTS: i32 = 1;

/// The message types JSON can be read and written for: the descriptor sets added with
/// [`Descriptors::add_encoded_set`], and the well-known types (`google/protobuf/*.proto`),
/// which are always there. Cheap to clone (the pool is shared); built once per server or
/// channel.
#[derive(Clone)]
pub(crate) struct Descriptors {
    pool: DescriptorPool,
}

impl Default for Descriptors {
    fn default() -> Descriptors {
        Descriptors::new()
    }
}

impl fmt::Debug for Descriptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptors")
            .field("files", &self.pool.files().len())
            .finish()
    }
}

impl Descriptors {
    /// The well-known types only.
    pub fn new() -> Descriptors {
        // prost-reflect's global pool holds exactly the well-known types unless an
        // application adds to it; a clone shares it until this one is added to.
        Descriptors {
            pool: DescriptorPool::global(),
        }
    }

    /// Add an encoded `google.protobuf.FileDescriptorSet` (a generated package's
    /// `FILE_DESCRIPTOR_SET`). Files already present (by name) are skipped, so several
    /// packages sharing imports, or the services of one package, can each add theirs. On
    /// error nothing is added and the message names the file that does not fit.
    pub fn add_encoded_set(&mut self, encoded: &[u8]) -> Result<(), String> {
        self.pool
            .decode_file_descriptor_set(encoded)
            .map_err(|e| match e.file() {
                Some(file) => format!("descriptor set: {file}: {e}"),
                None => format!("descriptor set: {e}"),
            })
    }

    /// The method at `path` (`/package.Service/Method`), when its service is known.
    pub fn method(&self, path: &str) -> Option<MethodJson> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let service = self.pool.get_service_by_name(service)?;
        let method = service.methods().find(|m| m.name() == method)?;
        Some(MethodJson::new(&method))
    }

    /// A message type by its full name (`package.Message`), e.g. the type of an `Any`.
    pub fn message(&self, full_name: &str) -> Option<MessageJson> {
        self.pool.get_message_by_name(full_name).map(MessageJson)
    }
}

/// A method's message types and what a Connect GET needs to know of it.
#[derive(Clone, Debug)]
pub(crate) struct MethodJson {
    /// The request type.
    pub input: MessageJson,
    /// The response type.
    pub output: MessageJson,
    /// `option idempotency_level = NO_SIDE_EFFECTS;`: the method may be called with GET.
    pub no_side_effects: bool,
    /// The client sends a stream of messages.
    #[allow(dead_code)] // for the client's choice of Connect content type, next
    pub client_streaming: bool,
    /// The server sends a stream of messages.
    #[allow(dead_code)] // for the client's choice of Connect content type, next
    pub server_streaming: bool,
}

impl MethodJson {
    fn new(method: &MethodDescriptor) -> MethodJson {
        let level = method
            .method_descriptor_proto()
            .options
            .as_ref()
            .and_then(|options| options.idempotency_level);
        MethodJson {
            input: MessageJson(method.input()),
            output: MessageJson(method.output()),
            no_side_effects: level == Some(NO_SIDE_EFFECTS),
            client_streaming: method.is_client_streaming(),
            server_streaming: method.is_server_streaming(),
        }
    }
}

/// One message type, read from JSON and written to JSON. Cheap to clone.
#[derive(Clone)]
pub(crate) struct MessageJson(MessageDescriptor);

impl fmt::Debug for MessageJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MessageJson")
            .field(&self.full_name())
            .finish()
    }
}

impl MessageJson {
    /// The full protobuf name, `package.Message`.
    pub fn full_name(&self) -> &str {
        self.0.full_name()
    }

    /// Read JSON (ProtoJSON, see the module docs) and append the message's protobuf wire
    /// bytes to `out`. Malformed JSON, an unknown field or a value of the wrong type is
    /// `INVALID_ARGUMENT`, its message naming the type and the path of the field, e.g.
    /// `invalid JSON for pkg.Foo at field "items[0].name": invalid type: ...`. `out` is
    /// left as it was on error.
    pub fn to_proto(&self, json: &[u8], out: &mut Vec<u8>) -> Result<(), Status> {
        let message = self.read(json)?;
        message
            .encode(out)
            .map_err(|e| Status::internal(format!("encoding {}: {e}", self.full_name())))
    }

    fn read(&self, json: &[u8]) -> Result<DynamicMessage, Status> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let mut track = serde_path_to_error::Track::new();
        let read = DynamicMessage::deserialize_with_options(
            self.0.clone(),
            serde_path_to_error::Deserializer::new(&mut de, &mut track),
            &DeserializeOptions::new(),
        );
        let error = match read {
            Ok(message) => match de.end() {
                Ok(()) => return Ok(message),
                Err(e) => return Err(self.invalid(None, e)),
            },
            Err(e) => e,
        };
        let path = track.path();
        let path = (path.iter().len() > 0).then(|| path.to_string());
        Err(self.invalid(path, error))
    }

    fn invalid(&self, path: Option<String>, error: serde_json::Error) -> Status {
        let name = self.full_name();
        Status::invalid_argument(match path {
            Some(path) => format!("invalid JSON for {name} at field {path:?}: {error}"),
            None => format!("invalid JSON for {name}: {error}"),
        })
    }

    /// Whether `a` and `b` are encodings of the same message of this type: equal once
    /// decoded, as the bytes of a message with map fields need not be (prost-reflect keeps
    /// a map in a hash map, so its entries are written in no fixed order). False when
    /// either does not decode.
    pub fn same_message(&self, a: &[u8], b: &[u8]) -> bool {
        let decode = |bytes| DynamicMessage::decode(self.0.clone(), bytes).ok();
        matches!((decode(a), decode(b)), (Some(a), Some(b)) if a == b)
    }

    /// Decode protobuf wire bytes and append their canonical JSON to `out` (lowerCamelCase
    /// names, default values left out, 64-bit integers as strings, enums by name). Bytes
    /// that do not decode as this type, or a message JSON cannot express (an `Any` whose
    /// type is unknown, a `Timestamp` out of range), are `INTERNAL` with a message saying
    /// which; a caller reading a peer's bytes may change the code. `out` is left as it was
    /// on error.
    pub fn to_json(&self, proto: &[u8], out: &mut Vec<u8>) -> Result<(), Status> {
        let name = self.full_name();
        let message = DynamicMessage::decode(self.0.clone(), proto).map_err(|e| {
            Status::internal(format!("the bytes of a {name} do not decode as one: {e}"))
        })?;
        let start = out.len();
        let written = {
            let mut serializer = serde_json::Serializer::new(&mut *out);
            message.serialize_with_options(&mut serializer, &SerializeOptions::new())
        };
        written.map_err(|e| {
            out.truncate(start);
            Status::internal(format!("a {name} cannot be written as JSON: {e}"))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
        FileDescriptorProto, FileDescriptorSet, MessageOptions, MethodDescriptorProto,
        MethodOptions, ServiceDescriptorProto,
    };

    use super::*;
    use crate::Code;

    fn field(name: &str, number: i32, kind: Type, type_name: Option<&str>) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(kind as i32),
            type_name: type_name.map(Into::into),
            ..Default::default()
        }
    }

    fn repeated(mut field: FieldDescriptorProto) -> FieldDescriptorProto {
        field.label = Some(Label::Repeated as i32);
        field
    }

    fn message(name: &str, fields: Vec<FieldDescriptorProto>) -> DescriptorProto {
        DescriptorProto {
            name: Some(name.into()),
            field: fields,
            ..Default::default()
        }
    }

    fn method(
        name: &str,
        input: &str,
        output: &str,
        no_side_effects: bool,
    ) -> MethodDescriptorProto {
        MethodDescriptorProto {
            name: Some(name.into()),
            input_type: Some(input.into()),
            output_type: Some(output.into()),
            options: no_side_effects.then(|| MethodOptions {
                idempotency_level: Some(NO_SIDE_EFFECTS),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `test/v1/kitchen.proto`, built by hand (no protobuf parser in unit tests):
    ///
    /// ```text
    /// syntax = "proto3";
    /// package test.v1;
    /// enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; COLOR_GREEN = 2; }
    /// message Header { string name = 1; repeated string value = 2; }
    /// message Definition { repeated Header response_headers = 1; int32 code = 2; }
    /// message Kitchen {
    ///   int64 big_number = 1; uint64 big_unsigned = 2; Color color = 3; bytes blob = 4;
    ///   google.protobuf.Timestamp at = 5; google.protobuf.Duration wait = 6;
    ///   google.protobuf.Struct extra = 7; google.protobuf.Any thing = 8;
    ///   Definition response_definition = 9; map<string, int32> counts = 10;
    ///   google.protobuf.FieldMask mask = 11; google.protobuf.Int64Value maybe = 12;
    ///   string plain_text = 13; repeated double ratios = 14;
    /// }
    /// service KitchenService {
    ///   rpc Look(Kitchen) returns (Kitchen) { option idempotency_level = NO_SIDE_EFFECTS; }
    ///   rpc Cook(stream Kitchen) returns (stream Definition);
    /// }
    /// ```
    pub(crate) fn kitchen_set() -> Vec<u8> {
        let counts_entry = DescriptorProto {
            name: Some("CountsEntry".into()),
            field: vec![
                field("key", 1, Type::String, None),
                field("value", 2, Type::Int32, None),
            ],
            options: Some(MessageOptions {
                map_entry: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut kitchen = message(
            "Kitchen",
            vec![
                field("big_number", 1, Type::Int64, None),
                field("big_unsigned", 2, Type::Uint64, None),
                field("color", 3, Type::Enum, Some(".test.v1.Color")),
                field("blob", 4, Type::Bytes, None),
                field("at", 5, Type::Message, Some(".google.protobuf.Timestamp")),
                field("wait", 6, Type::Message, Some(".google.protobuf.Duration")),
                field("extra", 7, Type::Message, Some(".google.protobuf.Struct")),
                field("thing", 8, Type::Message, Some(".google.protobuf.Any")),
                field(
                    "response_definition",
                    9,
                    Type::Message,
                    Some(".test.v1.Definition"),
                ),
                repeated(field(
                    "counts",
                    10,
                    Type::Message,
                    Some(".test.v1.Kitchen.CountsEntry"),
                )),
                field(
                    "mask",
                    11,
                    Type::Message,
                    Some(".google.protobuf.FieldMask"),
                ),
                field(
                    "maybe",
                    12,
                    Type::Message,
                    Some(".google.protobuf.Int64Value"),
                ),
                field("plain_text", 13, Type::String, None),
                repeated(field("ratios", 14, Type::Double, None)),
            ],
        );
        kitchen.nested_type.push(counts_entry);
        let color = EnumDescriptorProto {
            name: Some("Color".into()),
            value: ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_GREEN"]
                .iter()
                .zip(0..)
                .map(|(name, number)| EnumValueDescriptorProto {
                    name: Some((*name).into()),
                    number: Some(number),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("test/v1/kitchen.proto".into()),
            package: Some("test.v1".into()),
            dependency: [
                "google/protobuf/timestamp.proto",
                "google/protobuf/duration.proto",
                "google/protobuf/struct.proto",
                "google/protobuf/any.proto",
                "google/protobuf/field_mask.proto",
                "google/protobuf/wrappers.proto",
            ]
            .map(String::from)
            .to_vec(),
            message_type: vec![
                message(
                    "Header",
                    vec![
                        field("name", 1, Type::String, None),
                        repeated(field("value", 2, Type::String, None)),
                    ],
                ),
                message(
                    "Definition",
                    vec![
                        repeated(field(
                            "response_headers",
                            1,
                            Type::Message,
                            Some(".test.v1.Header"),
                        )),
                        field("code", 2, Type::Int32, None),
                    ],
                ),
                kitchen,
            ],
            enum_type: vec![color],
            service: vec![ServiceDescriptorProto {
                name: Some("KitchenService".into()),
                method: vec![
                    method("Look", ".test.v1.Kitchen", ".test.v1.Kitchen", true),
                    MethodDescriptorProto {
                        client_streaming: Some(true),
                        server_streaming: Some(true),
                        ..method("Cook", ".test.v1.Kitchen", ".test.v1.Definition", false)
                    },
                ],
                ..Default::default()
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        FileDescriptorSet { file: vec![file] }.encode_to_vec()
    }

    pub(crate) fn descriptors() -> Descriptors {
        let mut descriptors = Descriptors::new();
        descriptors.add_encoded_set(&kitchen_set()).unwrap();
        descriptors
    }

    fn kitchen() -> MessageJson {
        descriptors().message("test.v1.Kitchen").unwrap()
    }

    fn to_proto(message: &MessageJson, json: &str) -> Result<Vec<u8>, Status> {
        let mut out = Vec::new();
        message.to_proto(json.as_bytes(), &mut out).map(|()| out)
    }

    fn to_json(message: &MessageJson, proto: &[u8]) -> String {
        let mut out = Vec::new();
        message.to_json(proto, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// JSON in, protobuf, JSON out.
    fn round_trip(message: &MessageJson, json: &str) -> String {
        to_json(message, &to_proto(message, json).unwrap())
    }

    fn json_value(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    fn error(message: &MessageJson, json: &str) -> String {
        let status = to_proto(message, json).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status.message().to_owned()
    }

    #[test]
    fn camel_case_and_original_names_read_camel_case_written() {
        let kitchen = kitchen();
        for json in [
            r#"{"plainText":"hi","responseDefinition":{"responseHeaders":[{"name":"a"}]}}"#,
            r#"{"plain_text":"hi","response_definition":{"response_headers":[{"name":"a"}]}}"#,
        ] {
            assert_eq!(
                round_trip(&kitchen, json),
                r#"{"responseDefinition":{"responseHeaders":[{"name":"a"}]},"plainText":"hi"}"#
            );
        }
    }

    #[test]
    fn sixty_four_bit_integers_read_as_strings_or_numbers_written_as_strings() {
        let kitchen = kitchen();
        let expected = r#"{"bigNumber":"-9007199254740993","bigUnsigned":"18446744073709551615"}"#;
        for json in [
            r#"{"bigNumber":"-9007199254740993","bigUnsigned":"18446744073709551615"}"#,
            r#"{"bigNumber":-9007199254740993,"bigUnsigned":18446744073709551615}"#,
        ] {
            assert_eq!(round_trip(&kitchen, json), expected);
        }
        assert_eq!(
            round_trip(&kitchen, r#"{"maybe":"42"}"#),
            r#"{"maybe":"42"}"#
        );
        assert!(error(&kitchen, r#"{"bigUnsigned":"-1"}"#).contains("bigUnsigned"));
        assert!(error(&kitchen, r#"{"bigNumber":1.5}"#).contains("bigNumber"));
    }

    #[test]
    fn enums_read_by_name_or_number_written_by_name() {
        let kitchen = kitchen();
        for json in [r#"{"color":"COLOR_GREEN"}"#, r#"{"color":2}"#] {
            assert_eq!(round_trip(&kitchen, json), r#"{"color":"COLOR_GREEN"}"#);
        }
        // A number the enum does not name survives as a number (open enum).
        assert_eq!(round_trip(&kitchen, r#"{"color":7}"#), r#"{"color":7}"#);
        // The default value is left out; so is null.
        assert_eq!(
            round_trip(&kitchen, r#"{"color":"COLOR_UNSPECIFIED"}"#),
            "{}"
        );
        assert_eq!(round_trip(&kitchen, r#"{"color":null}"#), "{}");
        let message = error(&kitchen, r#"{"color":"COLOR_BLUE"}"#);
        assert!(message.contains(r#"at field "color""#), "{message}");
    }

    #[test]
    fn bytes_read_in_any_base64_written_standard_padded() {
        let kitchen = kitchen();
        // 0xfb 0xff 0xfe: '+' '/' in the standard alphabet, '-' '_' in the URL-safe one.
        for encoded in ["+//+", "-__-", "+/8", "-_8", "+/8=", "-_8="] {
            let json = format!(r#"{{"blob":"{encoded}"}}"#);
            let expected = if encoded.len() == 4 && !encoded.ends_with('=') {
                "\"+//+\""
            } else {
                "\"+/8=\""
            };
            assert_eq!(
                round_trip(&kitchen, &json),
                format!(r#"{{"blob":{expected}}}"#),
                "{encoded}"
            );
        }
        let message = error(&kitchen, r#"{"blob":"not base64!"}"#);
        assert!(message.contains(r#"at field "blob""#), "{message}");
    }

    #[test]
    fn well_known_types_round_trip() {
        let kitchen = kitchen();
        let json = r#"{
            "at": "2024-02-29T12:34:56.789Z",
            "wait": "-1.500s",
            "extra": {"a": [1, "two", true, null, {"b": {}}]},
            "thing": {"@type": "type.googleapis.com/test.v1.Header", "name": "n", "value": ["v"]},
            "mask": "plainText,responseDefinition.code",
            "maybe": 0
        }"#;
        assert_eq!(
            json_value(&round_trip(&kitchen, json)),
            json_value(
                r#"{
                "at": "2024-02-29T12:34:56.789Z",
                "wait": "-1.500s",
                "extra": {"a": [1.0, "two", true, null, {"b": {}}]},
                "thing": {"@type": "type.googleapis.com/test.v1.Header", "name": "n", "value": ["v"]},
                "mask": "plainText,responseDefinition.code",
                "maybe": "0"
            }"#
            )
        );
        // A well-known type inside Any is under "value"; the top-level types have their own form.
        let any = descriptors().message("google.protobuf.Any").unwrap();
        let json =
            r#"{"@type":"type.googleapis.com/google.protobuf.Duration","value":"3.000000001s"}"#;
        assert_eq!(round_trip(&any, json), json);
        let timestamp = descriptors().message("google.protobuf.Timestamp").unwrap();
        assert_eq!(
            round_trip(&timestamp, r#""1970-01-01T00:00:01+01:00""#),
            r#""1969-12-31T23:00:01Z""#
        );
        let value = descriptors().message("google.protobuf.Value").unwrap();
        assert_eq!(round_trip(&value, r#"{"k":[false]}"#), r#"{"k":[false]}"#);
    }

    #[test]
    fn any_of_an_unknown_type_is_refused() {
        let kitchen = kitchen();
        let message = error(
            &kitchen,
            r#"{"thing":{"@type":"type.googleapis.com/no.such.Type","x":1}}"#,
        );
        assert!(message.contains("no.such.Type"), "{message}");
        assert!(message.contains(r#"at field "thing""#), "{message}");
    }

    #[test]
    fn maps_and_repeated_fields_round_trip() {
        let kitchen = kitchen();
        let json = r#"{"counts":{"a":1,"b":-2},"ratios":[0.5,"NaN","-Infinity",1e300]}"#;
        assert_eq!(
            json_value(&round_trip(&kitchen, json)),
            json_value(r#"{"counts":{"a":1,"b":-2},"ratios":[0.5,"NaN","-Infinity",1e300]}"#)
        );
    }

    /// A double reads as the double nearest its decimal text, as Rust's own parser gives
    /// it, so what a client wrote is what the handler gets, and what we write (the
    /// shortest text of the value) reads back to the same value. serde_json's default
    /// parser can be one unit in the last place off for long texts (the fuzz target
    /// `connect_json` found 107 ones, written back as `1.111111111111111e+106`); its
    /// `float_roundtrip` feature makes it exact.
    #[test]
    fn doubles_read_exactly_and_round_trip() {
        let kitchen = kitchen();
        let ones = "1".repeat(107);
        for text in [
            ones.as_str(),
            "1.111111111111111e+106",
            "2.2250738585072014e-308",
        ] {
            let proto = to_proto(&kitchen, &format!(r#"{{"ratios":[{text}]}}"#)).unwrap();
            // Field 14, packed: tag, length 8, the double's bits.
            let bits: [u8; 8] = proto[2..10].try_into().unwrap();
            let read = f64::from_le_bytes(bits);
            assert_eq!(read, text.parse::<f64>().unwrap(), "{text}");
            let written = to_json(&kitchen, &proto);
            assert_eq!(to_proto(&kitchen, &written).unwrap(), proto, "{written}");
        }
    }

    #[test]
    fn unknown_field_is_invalid_argument_naming_it() {
        let kitchen = kitchen();
        let message = error(&kitchen, r#"{"plainText":"x","colour":"COLOR_RED"}"#);
        assert!(
            message.starts_with("invalid JSON for test.v1.Kitchen"),
            "{message}"
        );
        assert!(message.contains("colour"), "{message}");
        // Inside a nested message the path leads to it.
        let message = error(
            &kitchen,
            r#"{"responseDefinition":{"responseHeaders":[{"name":"a","nmae":"b"}]}}"#,
        );
        assert!(message.contains("nmae"), "{message}");
        assert!(
            message.contains(r#"at field "responseDefinition.responseHeaders[0]""#),
            "{message}"
        );
    }

    #[test]
    fn malformed_json_is_invalid_argument() {
        let kitchen = kitchen();
        for json in [
            "",
            "{",
            "[]",
            "null",
            r#"{"plainText":"x"} trailing"#,
            "{'a':1}",
        ] {
            let message = error(&kitchen, json);
            assert!(
                message.starts_with("invalid JSON for test.v1.Kitchen"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_wrong_type_deep_inside_names_the_whole_path() {
        let kitchen = kitchen();
        let message = error(
            &kitchen,
            r#"{"responseDefinition":{"responseHeaders":[{"name":"a"},{"name":3}]}}"#,
        );
        assert!(
            message.starts_with(
                r#"invalid JSON for test.v1.Kitchen at field "responseDefinition.responseHeaders[1].name": "#
            ),
            "{message}"
        );
        let message = error(&kitchen, r#"{"responseDefinition":{"code":"x"}}"#);
        assert!(
            message.contains(r#"at field "responseDefinition.code""#),
            "{message}"
        );
    }

    #[test]
    fn output_appends_and_errors_leave_it_as_it_was() {
        let kitchen = kitchen();
        let mut out = b"prefix".to_vec();
        kitchen.to_proto(br#"{"plainText":"x"}"#, &mut out).unwrap();
        assert_eq!(out, b"prefix\x6a\x01x");
        let status = kitchen.to_proto(b"{", &mut out).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(out, b"prefix\x6a\x01x");

        let mut out = b"[".to_vec();
        kitchen.to_json(b"\x6a\x01x", &mut out).unwrap();
        assert_eq!(out, br#"[{"plainText":"x"}"#);
        // Not a Kitchen: field 13 as a varint.
        let status = kitchen.to_json(b"\x68\x01", &mut out).unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("test.v1.Kitchen"), "{status:?}");
        // An Any whose type is unknown cannot be written: nothing of it stays in `out`.
        let any = prost_types::Any {
            type_url: "type.googleapis.com/no.such.Type".into(),
            value: vec![],
        }
        .encode_to_vec();
        // Field 8 (`thing`), length-delimited.
        let mut proto = vec![0x42, any.len() as u8];
        proto.extend_from_slice(&any);
        let status = kitchen.to_json(&proto, &mut out).unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("no.such.Type"), "{status:?}");
        assert_eq!(out, br#"[{"plainText":"x"}"#);
    }

    #[test]
    fn methods_by_path() {
        let descriptors = descriptors();
        let look = descriptors.method("/test.v1.KitchenService/Look").unwrap();
        assert_eq!(look.input.full_name(), "test.v1.Kitchen");
        assert_eq!(look.output.full_name(), "test.v1.Kitchen");
        assert!(look.no_side_effects);
        assert!(!look.client_streaming && !look.server_streaming);
        let cook = descriptors.method("/test.v1.KitchenService/Cook").unwrap();
        assert_eq!(cook.output.full_name(), "test.v1.Definition");
        assert!(!cook.no_side_effects);
        assert!(cook.client_streaming && cook.server_streaming);
        for path in [
            "test.v1.KitchenService/Look",
            "/test.v1.KitchenService/Nope",
            "/test.v1.Nope/Look",
            "/test.v1.KitchenService/Look/more",
            "/test.v1.KitchenService",
            "",
        ] {
            assert!(descriptors.method(path).is_none(), "{path}");
        }
    }

    #[test]
    fn sets_add_up_and_files_already_there_are_skipped() {
        let mut descriptors = Descriptors::new();
        // The well-known types are always known.
        assert!(descriptors.message("google.protobuf.Timestamp").is_some());
        assert!(descriptors.message("test.v1.Kitchen").is_none());
        assert!(descriptors.method("/grpc.health.v1.Health/Check").is_none());
        let before = descriptors.clone();
        descriptors.add_encoded_set(&kitchen_set()).unwrap();
        descriptors.add_encoded_set(&kitchen_set()).unwrap();
        descriptors
            .add_encoded_set(crate::health::FILE_DESCRIPTOR_SET)
            .unwrap();
        descriptors
            .add_encoded_set(crate::reflection::v1::FILE_DESCRIPTOR_SET)
            .unwrap();
        assert!(descriptors.message("test.v1.Kitchen").is_some());
        let check = descriptors.method("/grpc.health.v1.Health/Check").unwrap();
        assert_eq!(
            check.output.full_name(),
            "grpc.health.v1.HealthCheckResponse"
        );
        assert!(
            descriptors
                .method("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                .is_some()
        );
        // A clone taken before is not changed.
        assert!(before.message("test.v1.Kitchen").is_none());

        // Generated sets read as the generator wrote them.
        let response = descriptors
            .message("grpc.health.v1.HealthCheckResponse")
            .unwrap();
        assert_eq!(
            round_trip(&response, r#"{"status":"NOT_SERVING"}"#),
            r#"{"status":"NOT_SERVING"}"#
        );
        let files = descriptors
            .message("grpc.reflection.v1.ServerReflectionResponse")
            .unwrap();
        let json = r#"{"fileDescriptorResponse":{"fileDescriptorProto":["AAE=",""]}}"#;
        assert_eq!(round_trip(&files, json), json);
        let message = error(
            &files,
            r#"{"listServicesResponse":{"service":[{"name":"a"},{"name":{}}]}}"#,
        );
        assert!(
            message.contains(r#"at field "listServicesResponse.service[1].name""#),
            "{message}"
        );
    }

    #[test]
    fn a_set_that_does_not_fit_names_its_file_and_adds_nothing() {
        let mut descriptors = descriptors();
        assert!(
            descriptors
                .add_encoded_set(b"\xff\xff")
                .unwrap_err()
                .starts_with("descriptor set:")
        );
        // A second file defining test.v1.Header.
        let clash = FileDescriptorProto {
            name: Some("test/v1/other.proto".into()),
            package: Some("test.v1".into()),
            message_type: vec![message("Header", vec![])],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let fresh = FileDescriptorProto {
            name: Some("test/v2/fresh.proto".into()),
            package: Some("test.v2".into()),
            message_type: vec![message("Fresh", vec![])],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let set = FileDescriptorSet {
            file: vec![fresh, clash],
        };
        let refused = descriptors
            .add_encoded_set(&set.encode_to_vec())
            .unwrap_err();
        assert!(refused.contains("test/v1/other.proto"), "{refused}");
        assert!(refused.contains("test.v1.Header"), "{refused}");
        assert!(descriptors.message("test.v2.Fresh").is_none());
        // A file whose import is missing.
        let orphan = FileDescriptorProto {
            name: Some("test/v3/orphan.proto".into()),
            package: Some("test.v3".into()),
            dependency: vec!["test/v3/missing.proto".into()],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let set = FileDescriptorSet { file: vec![orphan] };
        let refused = descriptors
            .add_encoded_set(&set.encode_to_vec())
            .unwrap_err();
        assert!(refused.contains("test/v3/orphan.proto"), "{refused}");
        // The pool still works.
        assert_eq!(
            round_trip(&kitchen(), r#"{"color":1}"#),
            r#"{"color":"COLOR_RED"}"#
        );
    }
}
