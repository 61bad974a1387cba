//! Connect's error model: the code names and their HTTP statuses, the JSON error body of a
//! failed unary call, and the end-of-stream message that closes every streaming response
//! (the Connect protocol reference, "Error Codes" and "Error and EndStreamResponse").
//!
//! ```text
//! {"code":"unavailable","message":"overloaded","details":[
//!   {"type":"google.rpc.RetryInfo","value":"CgIIPA","debug":{"retryDelay":"60s"}}]}
//! {"error":{"code":"unavailable"},"metadata":{"acme-operation-cost":["237"]}}
//! ```
//!
//! A status' details are the `Any`s of the `google.rpc.Status` it carries
//! ([`Status::details_bytes`]); each is one entry of `details`: its type name (the type URL
//! after its last `/`) and its bytes in unpadded standard base64, with their JSON under
//! `debug` when the descriptors know the type. Reading follows what Connect's own clients
//! accept: unknown fields are ignored, a missing, `null` or unrecognized code falls back
//! to the one the HTTP status implies (unary) or `unknown` (end of stream), and `value`
//! may be padded or not.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use prost_types::Any;
use serde_json::Value;

use super::json::Descriptors;
use crate::metadata::{self, Metadata};
use crate::status::details::{self, TYPE_URL_PREFIX};
use crate::{Code, Status};

/// Connect's name for a code: the gRPC name in lower case, except `CANCELLED`, which
/// Connect spells `canceled`. `OK` has no Connect name: `"ok"` here, never sent.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The code Connect names `name`: one of the 16 error codes, exactly as Connect spells
/// them (`None` for anything else, `"ok"` and `"cancelled"` included).
#[allow(dead_code)] // read by the client's side of Connect, next
pub(crate) fn code_from_name(name: &str) -> Option<Code> {
    Some(match name {
        "canceled" => Code::Cancelled,
        "unknown" => Code::Unknown,
        "invalid_argument" => Code::InvalidArgument,
        "deadline_exceeded" => Code::DeadlineExceeded,
        "not_found" => Code::NotFound,
        "already_exists" => Code::AlreadyExists,
        "permission_denied" => Code::PermissionDenied,
        "resource_exhausted" => Code::ResourceExhausted,
        "failed_precondition" => Code::FailedPrecondition,
        "aborted" => Code::Aborted,
        "out_of_range" => Code::OutOfRange,
        "unimplemented" => Code::Unimplemented,
        "internal" => Code::Internal,
        "unavailable" => Code::Unavailable,
        "data_loss" => Code::DataLoss,
        "unauthenticated" => Code::Unauthenticated,
        _ => return None,
    })
}

/// The HTTP status of a unary Connect response that fails with `code` (the spec's
/// "Error Codes" table); 200 for `OK`.
pub(crate) fn http_status(code: Code) -> StatusCode {
    let status = match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::Unknown => 500,
        Code::InvalidArgument => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists => 409,
        Code::PermissionDenied => 403,
        Code::ResourceExhausted => 429,
        Code::FailedPrecondition => 400,
        Code::Aborted => 409,
        Code::OutOfRange => 400,
        Code::Unimplemented => 501,
        Code::Internal => 500,
        Code::Unavailable => 503,
        Code::DataLoss => 500,
        Code::Unauthenticated => 401,
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The code a client infers from the HTTP status of a response that carries no Connect
/// error (the spec's "HTTP to Error Code" table; gRPC's, except that 431 is `unknown`).
#[allow(dead_code)] // read by the client's side of Connect, next
pub(crate) fn code_from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// The JSON error body of a failed unary call:
/// `{"code":"not_found","message":"...","details":[{"type":"...","value":"...","debug":{...}}]}`.
/// `message` is left out when empty, `details` when there are none; `debug` is written
/// for the details whose type `descriptors` knows. An `OK` status (which has no Connect
/// code) is written as `unknown`. Never fails.
pub(crate) fn error_json(status: &Status, descriptors: Option<&Descriptors>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + status.message().len() + status.details_bytes().len());
    write_error(&mut out, status, descriptors);
    out
}

fn write_error(out: &mut Vec<u8>, status: &Status, descriptors: Option<&Descriptors>) {
    let code = match status.code() {
        Code::Ok => Code::Unknown,
        code => code,
    };
    out.extend_from_slice(b"{\"code\":");
    write_string(out, code_name(code));
    if !status.message().is_empty() {
        out.extend_from_slice(b",\"message\":");
        write_string(out, status.message());
    }
    let anys = if status.details_bytes().is_empty() {
        Vec::new()
    } else {
        details::decode_anys(status.details_bytes())
    };
    if !anys.is_empty() {
        out.extend_from_slice(b",\"details\":[");
        for (i, any) in anys.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_detail(out, any, descriptors);
        }
        out.push(b']');
    }
    out.push(b'}');
}

fn write_detail(out: &mut Vec<u8>, any: &Any, descriptors: Option<&Descriptors>) {
    let name = type_name(&any.type_url);
    out.extend_from_slice(b"{\"type\":");
    write_string(out, name);
    out.extend_from_slice(b",\"value\":\"");
    let start = out.len();
    out.resize(start + any.value.len().div_ceil(3) * 4, 0);
    let written = STANDARD_NO_PAD
        .encode_slice(&any.value, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
    if let Some(message) = descriptors.and_then(|d| d.message(name)) {
        let before = out.len();
        out.extend_from_slice(b",\"debug\":");
        if message.to_json(&any.value, out).is_err() {
            out.truncate(before);
        }
    }
    out.push(b'}');
}

/// The message type an `Any`'s URL names: what follows its last `/`.
fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// A JSON string, escaped.
fn write_string(out: &mut Vec<u8>, text: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// Standard base64 first (as sent), then URL-safe; padded or not.
#[allow(dead_code)] // read by the client's side of Connect, next
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[allow(dead_code)] // read by the client's side of Connect, next
fn decode_value(value: &str) -> Option<Vec<u8>> {
    metadata::decode_bin(value.as_bytes())
        .ok()
        .or_else(|| URL_SAFE_ANY_PADDING.decode(value.trim()).ok())
}

/// The status a Connect error object holds, with `fallback` for a code that is missing,
/// `null` or not Connect's; unknown fields (`debug` among them) are ignored. `Err` says why
/// `error` is not a Connect error: not an object, a `message` that is not a string,
/// `details` that are not an array. A detail that is not an object with a string `type`
/// and a base64 `value` is dropped, the rest kept.
#[allow(dead_code)] // read by the client's side of Connect, next
fn read_error(error: &Value, fallback: Code) -> Result<Status, String> {
    let Value::Object(error) = error else {
        return Err("not a JSON object".into());
    };
    let code = match error.get("code") {
        Some(Value::String(name)) => code_from_name(name).unwrap_or(fallback),
        _ => fallback,
    };
    let message = match error.get("message") {
        Some(Value::String(message)) => message.as_str(),
        None | Some(Value::Null) => "",
        Some(_) => return Err("\"message\" is not a string".into()),
    };
    let details = match error.get("details") {
        Some(Value::Array(details)) => details.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err("\"details\" is not an array".into()),
    };
    let mut anys = Vec::with_capacity(details.len());
    for detail in details {
        let type_name = detail.get("type").and_then(Value::as_str);
        let value = match detail.get("value") {
            Some(Value::String(value)) => decode_value(value),
            None | Some(Value::Null) => Some(Vec::new()),
            Some(_) => None,
        };
        let (Some(type_name), Some(value)) = (type_name, value) else {
            tracing::debug!(%detail, "malformed Connect error detail dropped");
            continue;
        };
        let type_url = if type_name.contains('/') {
            type_name.to_owned()
        } else {
            format!("{TYPE_URL_PREFIX}{type_name}")
        };
        anys.push(Any { type_url, value });
    }
    let status = Status::new(code, message);
    if anys.is_empty() {
        return Ok(status);
    }
    let bytes = details::encode_rpc_status(code.as_i32(), message, anys);
    Ok(status.with_details_bytes(bytes))
}

/// The status of a unary Connect response whose HTTP status is not 200, from its body.
/// A body that is no Connect error (empty, not JSON, `null`, not an object) gives the code
/// `code_from_http` infers, with a message saying what came; so does a body whose code is
/// missing or unknown, keeping its message and details.
#[allow(dead_code)] // read by the client's side of Connect, next
pub(crate) fn parse_error_json(body: &[u8], http: StatusCode) -> Status {
    let fallback = code_from_http(http);
    let not_an_error = |what: &dyn fmt::Display| {
        Status::new(
            fallback,
            format!("HTTP status {http} with a body that is not a Connect error: {what}"),
        )
    };
    if body.trim_ascii().is_empty() {
        return Status::new(
            fallback,
            format!("HTTP status {http} without an error body"),
        );
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(error) => read_error(&error, fallback).unwrap_or_else(|what| not_an_error(&what)),
        Err(e) => not_an_error(&e),
    }
}

/// The end-of-stream message of a streaming response: `{"error":{...},"metadata":{...}}`.
/// `error` (as [`error_json`] writes it) is left out when `status` is `OK`; `metadata`
/// holds `trailers`' custom entries (reserved names skipped; `-bin` values in base64, as in
/// headers), each key with its values in order, and is left out when there are none. The
/// status' own metadata is not written: the caller passes in `trailers` what it sends.
pub(crate) fn end_stream_json(status: &Status, trailers: &Metadata) -> Vec<u8> {
    end_stream_json_with(status, trailers, None)
}

/// [`end_stream_json`] with `debug` in the error's details whose type `descriptors` knows.
pub(crate) fn end_stream_json_with(
    status: &Status,
    trailers: &Metadata,
    descriptors: Option<&Descriptors>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    let mut first = true;
    if !status.is_ok() {
        out.extend_from_slice(b"\"error\":");
        write_error(&mut out, status, descriptors);
        first = false;
    }
    let headers = trailers.as_headers();
    let mut keys = headers
        .keys()
        .filter(|k| !metadata::is_reserved(k.as_str()))
        .peekable();
    if keys.peek().is_some() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"metadata\":{");
        for (i, key) in keys.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(&mut out, key.as_str());
            out.extend_from_slice(b":[");
            for (j, value) in headers.get_all(key).iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_string(&mut out, &String::from_utf8_lossy(value.as_bytes()));
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.push(b'}');
    out
}

/// Read an end-of-stream message (client side): the call's status (`OK` when there is no
/// `error`, or it is `null`; `unknown` for an error whose code is missing or not Connect's)
/// and the trailing metadata (keys lower-cased, values as they came: `-bin` ones still in
/// base64). Unknown fields are ignored. A message that is not one (not a JSON object, an
/// `error` that is no Connect error, metadata that is not an object of arrays of strings
/// valid in headers) is `Err`, `INTERNAL`.
#[allow(dead_code)] // read by the client's side of Connect, next
pub(crate) fn parse_end_stream(body: &[u8]) -> Result<(Status, Metadata), Status> {
    let malformed = |what: &dyn fmt::Display| {
        Status::internal(format!("malformed end-of-stream message: {what}"))
    };
    let end: Value = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    let Value::Object(end) = end else {
        return Err(malformed(&"not a JSON object"));
    };
    let mut headers = HeaderMap::new();
    match end.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(entries)) => {
            for (key, values) in entries {
                let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
                    malformed(&format_args!("metadata key {key:?} is not a header name"))
                })?;
                let Value::Array(values) = values else {
                    return Err(malformed(&format_args!("metadata {key:?} is not an array")));
                };
                for value in values {
                    let value = value
                        .as_str()
                        .and_then(|v| HeaderValue::from_str(v).ok())
                        .ok_or_else(|| {
                            malformed(&format_args!("metadata {key:?} has the value {value}"))
                        })?;
                    headers.append(name.clone(), value);
                }
            }
        }
        Some(_) => return Err(malformed(&"\"metadata\" is not an object")),
    }
    let status = match end.get("error") {
        None | Some(Value::Null) => Status::ok(),
        Some(error) => read_error(error, Code::Unknown)
            .map_err(|what| malformed(&format_args!("\"error\": {what}")))?,
    };
    Ok((status, Metadata::from_headers(headers)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::status::details::{ErrorDetail, ErrorInfo, RetryInfo};

    const ERROR_CODES: [Code; 16] = [
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    fn json(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(bytes));
        })
    }

    #[test]
    fn every_code_has_a_name_both_ways() {
        for code in ERROR_CODES {
            let name = code_name(code);
            assert_eq!(
                name,
                code.as_str()
                    .to_ascii_lowercase()
                    .replace("cancelled", "canceled")
            );
            assert_eq!(code_from_name(name), Some(code), "{name}");
        }
        assert_eq!(code_name(Code::Cancelled), "canceled");
        for name in [
            "ok",
            "cancelled",
            "CANCELED",
            "NOT_FOUND",
            "",
            "code_17",
            "unknown ",
        ] {
            assert_eq!(code_from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn every_code_has_the_http_status_of_the_spec_table() {
        let table = [
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        assert_eq!(table.map(|(code, _)| code), ERROR_CODES);
        for (code, http) in table {
            assert_eq!(http_status(code).as_u16(), http, "{code}");
        }
        assert_eq!(http_status(Code::Ok), StatusCode::OK);
    }

    #[test]
    fn http_statuses_map_to_codes_by_the_spec_table() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (431, Code::Unknown),
            (409, Code::Unknown),
            (412, Code::Unknown),
            (499, Code::Unknown),
            (500, Code::Unknown),
            (501, Code::Unknown),
            (200, Code::Unknown),
            (302, Code::Unknown),
        ];
        for (http, code) in table {
            assert_eq!(
                code_from_http(StatusCode::from_u16(http).unwrap()),
                code,
                "{http}"
            );
        }
    }

    fn detailed() -> Status {
        Status::with_details(
            Code::Unavailable,
            "overloaded: back off ☺ \"now\"",
            [
                ErrorInfo::with_reason("OVERLOAD", "example.com")
                    .with_metadata("zone", "eu")
                    .into(),
                RetryInfo::with_delay(Duration::from_secs(60)).into(),
            ],
        )
    }

    #[test]
    fn error_json_has_code_message_and_details() {
        let body = error_json(&detailed(), None);
        let value = json(&body);
        assert_eq!(value["code"], "unavailable");
        assert_eq!(value["message"], "overloaded: back off ☺ \"now\"");
        let details = value["details"].as_array().unwrap();
        assert_eq!(details.len(), 2);
        assert_eq!(details[0]["type"], "google.rpc.ErrorInfo");
        assert_eq!(details[1]["type"], "google.rpc.RetryInfo");
        // The spec's own example: RetryInfo of 60 seconds is "CgIIPA", unpadded.
        assert_eq!(details[1]["value"], "CgIIPA");
        assert!(details[1].get("debug").is_none());

        // The simplest error: the code alone.
        assert_eq!(
            error_json(&Status::not_found(""), None),
            br#"{"code":"not_found"}"#
        );
        assert_eq!(
            error_json(&Status::ok(), None),
            br#"{"code":"unknown"}"#,
            "OK has no Connect code"
        );
        // Details bytes that are no google.rpc.Status: no details.
        let odd = Status::internal("x").with_details_bytes(&b"\xff\xff"[..]);
        assert_eq!(
            error_json(&odd, None),
            br#"{"code":"internal","message":"x"}"#
        );
    }

    #[test]
    fn error_json_debug_for_the_types_the_descriptors_know() {
        let descriptors = super::super::json::tests::descriptors();
        let status = Status::with_details(
            Code::OutOfRange,
            "too far",
            [
                ErrorDetail::Other(Any {
                    type_url: "type.googleapis.com/google.protobuf.Duration".into(),
                    value: prost::Message::encode_to_vec(&prost_types::Duration {
                        seconds: 30,
                        nanos: 0,
                    }),
                }),
                ErrorDetail::Other(Any {
                    type_url: "example.com/x/test.v1.Header".into(),
                    value: vec![0x0a, 0x01, b'n'],
                }),
                // Known type, bytes that do not decode as it: no debug, the rest stays.
                ErrorDetail::Other(Any {
                    type_url: "type.googleapis.com/test.v1.Header".into(),
                    value: vec![0x0a, 0x05],
                }),
                // Unknown type.
                RetryInfo::with_delay(Duration::from_secs(1)).into(),
            ],
        );
        let body = error_json(&status, Some(&descriptors));
        let value = json(&body);
        let details = value["details"].as_array().unwrap();
        assert_eq!(details[0]["type"], "google.protobuf.Duration");
        assert_eq!(details[0]["debug"], "30s");
        assert_eq!(details[1]["type"], "test.v1.Header");
        assert_eq!(details[1]["value"], "CgFu");
        assert_eq!(details[1]["debug"], json(br#"{"name":"n"}"#));
        assert_eq!(details[2]["value"], "CgU");
        assert!(details[2].get("debug").is_none());
        assert!(details[3].get("debug").is_none());
        // The end of a stream writes the same error.
        let end = json(&end_stream_json_with(
            &status,
            &Metadata::new(),
            Some(&descriptors),
        ));
        assert_eq!(end["error"], value);
        // Reading ignores debug; the type URLs come back with the usual prefix.
        let back = parse_error_json(&body, StatusCode::BAD_REQUEST);
        let sent = details::decode_anys(status.details_bytes());
        let read = details::decode_anys(back.details_bytes());
        assert_eq!(read.len(), 4);
        for (sent, read) in sent.iter().zip(&read) {
            assert_eq!(read.value, sent.value);
            assert_eq!(type_name(&read.type_url), type_name(&sent.type_url));
            assert!(
                read.type_url.starts_with(TYPE_URL_PREFIX),
                "{}",
                read.type_url
            );
        }
    }

    #[test]
    fn error_json_round_trips_with_details() {
        let status = detailed();
        let back = parse_error_json(&error_json(&status, None), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(back.code(), Code::Unavailable);
        assert_eq!(back.message(), status.message());
        assert_eq!(back.details(), status.details());
        assert_eq!(
            back.detail::<RetryInfo>().unwrap().delay(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(back.detail::<ErrorInfo>().unwrap().metadata["zone"], "eu");
        let rpc = back.rpc_status().unwrap();
        assert_eq!((rpc.code, rpc.message.as_str()), (14, status.message()));
        // The body's code wins over the HTTP status.
        let back = parse_error_json(&error_json(&status, None), StatusCode::NOT_FOUND);
        assert_eq!(back.code(), Code::Unavailable);
        for code in ERROR_CODES {
            let back = parse_error_json(
                &error_json(&Status::new(code, "m"), None),
                http_status(code),
            );
            assert_eq!((back.code(), back.message()), (code, "m"));
            assert!(back.details_bytes().is_empty());
        }
    }

    #[test]
    fn error_bodies_as_other_servers_write_them() {
        let parse = |body: &str, http: u16| {
            parse_error_json(body.as_bytes(), StatusCode::from_u16(http).unwrap())
        };
        // Unknown fields anywhere are ignored; a padded value reads too; a type with a
        // URL prefix keeps it.
        let status = parse(
            r#"{"code":"out_of_range","message":"oops","foobar":"baz","details":[
                {"type":"google.protobuf.FileDescriptorProto","value":"Cgp0ZXN0LnByb3Rv",
                 "frob":"nitz","debug":{"name":"test.proto","foobar":true}},
                {"type":"google.rpc.RetryInfo","value":"CgIIPA=="},
                {"type":"example.com/p/q.R","value":"CgIIPA"}]}"#,
            422,
        );
        assert_eq!(
            (status.code(), status.message()),
            (Code::OutOfRange, "oops")
        );
        let anys = details::decode_anys(status.details_bytes());
        assert_eq!(anys.len(), 3);
        assert_eq!(
            anys[0].type_url,
            "type.googleapis.com/google.protobuf.FileDescriptorProto"
        );
        assert_eq!(anys[0].value, b"\x0a\x0atest.proto");
        assert_eq!(
            status.detail::<RetryInfo>().unwrap().delay(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(anys[2].type_url, "example.com/p/q.R");
        // A value that is no base64 drops that detail only.
        let status = parse(
            r#"{"code":"aborted","details":[{"type":"a.B","value":"!!"},{"type":"c.D","value":"AA"}]}"#,
            409,
        );
        assert_eq!(status.code(), Code::Aborted);
        let anys = details::decode_anys(status.details_bytes());
        assert_eq!(
            (anys.len(), anys[0].type_url.as_str()),
            (1, "type.googleapis.com/c.D")
        );

        // A missing, null or unknown code: the HTTP status decides, the message stays.
        for body in [
            r#"{"code":null,"message":"oops"}"#,
            r#"{"message":"oops"}"#,
            r#"{"code":"foobar","message":"oops"}"#,
            r#"{"code":7,"message":"oops"}"#,
        ] {
            let status = parse(body, 401);
            assert_eq!(
                (status.code(), status.message()),
                (Code::Unauthenticated, "oops"),
                "{body}"
            );
        }
        assert_eq!(parse(r#"{"code":"foobar"}"#, 429).code(), Code::Unavailable);
    }

    #[test]
    fn a_body_that_is_no_connect_error_gives_the_code_of_the_http_status() {
        for (body, http, code) in [
            ("", 401, Code::Unauthenticated),
            ("  ", 404, Code::Unimplemented),
            ("null", 401, Code::Unauthenticated),
            ("<html>bad gateway</html>", 502, Code::Unavailable),
            ("[1,2]", 403, Code::PermissionDenied),
            (r#"["unavailable","msg"]"#, 403, Code::PermissionDenied),
            ("7", 504, Code::Unavailable),
            (r#"{"code":"#, 500, Code::Unknown),
            (r#"{"message":5}"#, 400, Code::Internal),
        ] {
            let status = parse_error_json(body.as_bytes(), StatusCode::from_u16(http).unwrap());
            assert_eq!(status.code(), code, "{body}");
            assert!(
                status
                    .message()
                    .starts_with(&format!("HTTP status {http} ")),
                "{}",
                status.message()
            );
            assert!(status.details_bytes().is_empty());
        }
    }

    fn trailers() -> Metadata {
        let mut trailers = Metadata::new();
        trailers.append("acme-operation-cost", "237").unwrap();
        trailers.append("x-multi", "one").unwrap();
        trailers.append("x-multi", "two, three").unwrap();
        trailers.append_bin("x-trace-bin", b"\x00\xff\xfe").unwrap();
        trailers.append_bin("x-trace-bin", b"ab").unwrap();
        trailers
    }

    #[test]
    fn end_stream_json_round_trips_with_text_and_binary_metadata() {
        let status = detailed();
        let body = end_stream_json(&status, &trailers());
        let value = json(&body);
        assert_eq!(value["error"]["code"], "unavailable");
        assert_eq!(value["error"]["details"][1]["value"], "CgIIPA");
        assert_eq!(
            value["metadata"],
            json(br#"{"acme-operation-cost":["237"],"x-multi":["one","two, three"],"x-trace-bin":["AP/+","YWI"]}"#)
        );
        let (back, metadata) = parse_end_stream(&body).unwrap();
        assert_eq!(back.code(), Code::Unavailable);
        assert_eq!(back.message(), status.message());
        assert_eq!(back.details(), status.details());
        assert_eq!(metadata.get("acme-operation-cost"), Some("237"));
        assert_eq!(
            metadata.get_all("x-multi").collect::<Vec<_>>(),
            ["one", "two, three"]
        );
        assert_eq!(
            metadata.get_all_bin("x-trace-bin").unwrap().unwrap(),
            [b"\x00\xff\xfe".to_vec(), b"ab".to_vec()]
        );

        // Success: no error; no metadata either when there is none.
        let body = end_stream_json(&Status::ok(), &trailers());
        assert!(json(&body).get("error").is_none());
        let (back, metadata) = parse_end_stream(&body).unwrap();
        assert!(back.is_ok());
        assert_eq!(metadata.len(), 5);
        assert_eq!(end_stream_json(&Status::ok(), &Metadata::new()), b"{}");
        assert_eq!(
            end_stream_json(&Status::aborted(""), &Metadata::new()),
            br#"{"error":{"code":"aborted"}}"#
        );
        // Reserved names never go out.
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        headers.insert("content-type", HeaderValue::from_static("x"));
        headers.insert("x-kept", HeaderValue::from_static("yes"));
        let body = end_stream_json(&Status::ok(), &Metadata::from_headers(headers));
        assert_eq!(body, br#"{"metadata":{"x-kept":["yes"]}}"#);
    }

    #[test]
    fn end_streams_as_other_servers_write_them() {
        let status = |body: &str| parse_end_stream(body.as_bytes()).unwrap().0;
        assert!(status("{}").is_ok());
        assert!(status(r#"{"error":null}"#).is_ok());
        assert!(status(r#"{"error":null,"metadata":null}"#).is_ok());
        // An error body at the top level is not an error (unknown fields are ignored).
        assert!(status(r#"{"code":"out_of_range","message":"oops"}"#).is_ok());
        for body in [
            r#"{"error":{"code":null,"message":"oops"}}"#,
            r#"{"error":{"message":"oops"}}"#,
            r#"{"error":{"code":"foobar","message":"oops"}}"#,
        ] {
            let status = status(body);
            assert_eq!(
                (status.code(), status.message()),
                (Code::Unknown, "oops"),
                "{body}"
            );
        }
        let status = status(
            r#"{"error":{"code":"out_of_range","message":"oops","foobar":"baz","details":[
                {"type":"google.protobuf.FileDescriptorProto","value":"Cgp0ZXN0LnByb3Rv","frob":"nitz"}]}}"#,
        );
        assert_eq!(
            (status.code(), status.message()),
            (Code::OutOfRange, "oops")
        );
        assert_eq!(details::decode_anys(status.details_bytes()).len(), 1);
        // Keys are case-insensitive: they come back lower-cased.
        let (_, metadata) = parse_end_stream(br#"{"metadata":{"Acme-Cost":["1","2"]}}"#).unwrap();
        assert_eq!(
            metadata.get_all("acme-cost").collect::<Vec<_>>(),
            ["1", "2"]
        );
    }

    #[test]
    fn a_malformed_end_stream_is_internal() {
        for body in [
            "",
            "null",
            "[]",
            r#"[null,null]"#,
            "7",
            r#"{"error":"boom"}"#,
            r#"{"error":[]}"#,
            r#"{"metadata":{"k":"v"}}"#,
            r#"{"metadata":{"k":[1]}}"#,
            r#"{"metadata":["k"]}"#,
            r#"{"metadata":{"bad key":["v"]}}"#,
            r#"{"metadata":{"k":["line\nbreak"]}}"#,
            "{} trailing",
        ] {
            let status = parse_end_stream(body.as_bytes()).unwrap_err();
            assert_eq!(status.code(), Code::Internal, "{body}");
            assert!(
                status
                    .message()
                    .starts_with("malformed end-of-stream message"),
                "{body}"
            );
        }
    }
}
