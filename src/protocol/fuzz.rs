//! The bodies of the fuzz targets `web_decoders` and `connect_json` (`fuzz/fuzz_targets/`,
//! reached through `crate::__fuzz`): what a browser or a Connect peer sends, decoded by
//! the code the server and client run. Each function panics when an invariant breaks.
//! They live here, not in the fuzz crate, because what they exercise is crate-private.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};

use super::connect_error::{end_stream_json, error_json, parse_end_stream, parse_error_json};
use super::json::Descriptors;
use super::{Classified, Protocol, TextDecoder, Wire, connect_get_message, encode_text};
use crate::framing::Decoder;
use crate::metadata::is_reserved;
use crate::status::details::decode_anys;
use crate::{Code, Encoding, Status};

/// `data` cut into pieces of 1 to 8 bytes, the sizes varying from piece to piece and
/// picked by `seed`: the way a body can arrive.
fn cuts(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut step = usize::from(seed >> 5) + 1;
    let mut rest = data;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(step.min(rest.len()));
        pieces.push(piece);
        rest = tail;
        step = step % 7 + 1;
    }
    pieces
}

/// The first byte of the input picks the cuts and limits; the rest goes through every
/// web decoder in turn.
pub(crate) fn web_decoders(input: &[u8]) {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    text_body(data, seed);
    connect_get(data);
    content_type(data);
    whole_body(data, seed);
}

/// gRPC-Web text: decoding the body whole and decoding it in pieces agree (the same bytes,
/// or both refuse it), at most three characters are carried between pieces, and what
/// [`encode_text`] writes, one padded chunk per write, reads back whatever the cuts.
fn text_body(data: &[u8], seed: u8) {
    let mut whole = TextDecoder::default();
    let whole_out = whole.push(data);
    let mut pieces = TextDecoder::default();
    let mut out = Vec::new();
    let mut refused = false;
    for piece in cuts(data, seed) {
        match pieces.push(piece) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => {
                refused = true;
                break;
            }
        }
        assert!(pieces.carry.len() < 4, "more than a group carried");
    }
    match whole_out {
        Ok(bytes) => {
            assert!(!refused, "refused in pieces, accepted whole");
            assert_eq!(out, bytes, "whole and in pieces decode differently");
            assert_eq!(whole.finish().is_ok(), pieces.finish().is_ok());
        }
        Err(_) => assert!(refused, "accepted in pieces, refused whole"),
    }

    // Two writes, each its own padded base64, then cut anywhere.
    let split = usize::from(seed).min(data.len());
    let text = [encode_text(&data[..split]), encode_text(&data[split..])].concat();
    let mut decoder = TextDecoder::default();
    let mut decoded = Vec::new();
    for piece in cuts(&text, seed) {
        decoded.extend_from_slice(&decoder.push(piece).expect("our own base64 reads back"));
    }
    decoder.finish().expect("our own base64 ends on a group");
    assert_eq!(decoded, data);
}

/// Connect GET: any query is read without panicking, and the message it yields is never
/// longer than the query; a message sent as connect-go sends it (base64url, unpadded or
/// with percent-encoded padding) or percent-encoded reads back exactly.
fn connect_get(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    if let Ok((message, _)) = connect_get_message(&query) {
        assert!(
            message.len() <= query.len(),
            "a message longer than its query"
        );
    }
    let forms = [
        format!(
            "connect=v1&encoding=proto&base64=1&message={}",
            URL_SAFE_NO_PAD.encode(data)
        ),
        format!(
            "message={}&base64=1&encoding=proto",
            URL_SAFE.encode(data).replace('=', "%3D")
        ),
        format!(
            "encoding=json&message={}",
            percent_encode(data, NON_ALPHANUMERIC)
        ),
    ];
    for query in forms {
        let (message, encoding) = connect_get_message(&query).expect("a well-formed GET");
        assert_eq!(&message[..], data, "{query}");
        assert_eq!(encoding, None);
    }
}

/// `Wire::classify` on any content type (and any query, for a GET): no panic; a GET is
/// only ever a Connect GET; a call's own response content type classifies back to its
/// wire form; and media types are case-insensitive (RFC 9110 8.3.1), so the upper-cased
/// content type classifies the same (the query, which is case-sensitive, stays).
fn content_type(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let query = String::from_utf8_lossy(data);
    let classify = |method: &Method, value: HeaderValue| {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, value);
        Wire::classify(method, &headers, Some(&query))
    };
    let upper = HeaderValue::from_bytes(&data.to_ascii_uppercase()).expect("still a value");
    for method in [Method::POST, Method::GET, Method::PUT] {
        let classified = classify(&method, value.clone());
        match (&classified, classify(&method, upper.clone())) {
            (Classified::Rpc(a), Classified::Rpc(b)) => assert_eq!(*a, b),
            (Classified::NotRpc, Classified::NotRpc) => {}
            (Classified::Refused(a), Classified::Refused(b)) => assert_eq!(*a, b),
            (a, b) => panic!("{a:?} upper-cased is {b:?}"),
        }
        let Classified::Rpc(wire) = classified else {
            continue;
        };
        if method == Method::GET {
            assert_eq!(wire.protocol, Protocol::ConnectUnary { get: true });
            continue;
        }
        assert_eq!(method, Method::POST, "a call by {method}");
        match classify(&Method::POST, wire.content_type()) {
            Classified::Rpc(back) => assert_eq!(back, wire, "{:?}", wire.content_type()),
            other => panic!("{:?} classifies as {other:?}", wire.content_type()),
        }
    }
}

/// The message decoder in whole-body mode (a Connect unary request): it holds what came,
/// never more than the limit (it refuses, `RESOURCE_EXHAUSTED`, as soon as the body is
/// over it), hands nothing out before the end, and then hands out exactly the body, once.
fn whole_body(data: &[u8], seed: u8) {
    let limit = 16 << (seed & 7);
    let encoding = (seed & 8 != 0).then_some(Encoding::Gzip);
    let mut decoder = Decoder::for_wire(limit, encoding, true, None);
    let mut total = 0;
    for piece in cuts(data, seed) {
        decoder.push(Bytes::copy_from_slice(piece));
        total += piece.len();
        match decoder.decode() {
            Ok(None) => {
                assert!(total <= limit, "{total} bytes held over a limit of {limit}");
                assert_eq!(decoder.buffered(), total);
            }
            Ok(Some(_)) => panic!("a whole body handed out before its end"),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(total > limit, "refused at {total} bytes under {limit}");
                return;
            }
        }
    }
    decoder.end().expect("a body under the limit ends");
    let message = decoder.decode().expect("decodes").expect("the one message");
    assert_eq!(&message.data[..], data);
    assert_eq!(message.compressed, encoding.is_some());
    assert!(
        decoder.decode().expect("decodes").is_none(),
        "handed out twice"
    );
}

/// The HTTP statuses a failed Connect unary response may come with (and a few it should
/// not), picked by the seed byte.
const STATUSES: [u16; 16] = [
    200, 302, 400, 401, 403, 404, 408, 409, 413, 415, 429, 499, 500, 501, 503, 504,
];

/// The message types JSON is read for: the health service's, the reflection service's
/// (oneofs, nested and repeated fields, bytes), and well-known types with forms of their
/// own (maps, `Any`, timestamps, durations, wrappers).
const TYPES: [&str; 16] = [
    "grpc.health.v1.HealthCheckRequest",
    "grpc.health.v1.HealthCheckResponse",
    "grpc.reflection.v1.ServerReflectionRequest",
    "grpc.reflection.v1.ServerReflectionResponse",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Any",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.BytesValue",
    "google.protobuf.Empty",
];

/// The library's own descriptors (health and reflection) and the well-known types, built
/// once per fuzzing process.
fn descriptors() -> &'static Descriptors {
    static DESCRIPTORS: OnceLock<Descriptors> = OnceLock::new();
    DESCRIPTORS.get_or_init(|| {
        let mut descriptors = Descriptors::new();
        descriptors
            .add_encoded_set(crate::health::FILE_DESCRIPTOR_SET)
            .expect("the health descriptors");
        descriptors
            .add_encoded_set(crate::reflection::v1::FILE_DESCRIPTOR_SET)
            .expect("the reflection descriptors");
        descriptors
    })
}

/// The first byte picks an HTTP status and a message type; the rest is read as a Connect
/// error body, an end-of-stream message and a JSON message of that type.
pub(crate) fn connect_json(input: &[u8]) {
    let Some((&seed, body)) = input.split_first() else {
        return;
    };
    let http = StatusCode::from_u16(STATUSES[usize::from(seed & 0x0f)]).expect("a status");
    error_body(body, http);
    end_stream(body);
    message(body, TYPES[usize::from(seed >> 4)]);
}

/// Any error body reads as some error (never `OK`), and what is read writes back (with
/// `debug` for the detail types the descriptors know) to a body that reads the same: code,
/// message, and each detail's type name and bytes.
fn error_body(body: &[u8], http: StatusCode) {
    let status = parse_error_json(body, http);
    assert_ne!(status.code(), Code::Ok);
    let again = parse_error_json(&error_json(&status, Some(descriptors())), http);
    assert_same_status(&status, &again);
}

/// Any end-of-stream message is read or refused (`INTERNAL`) without panicking; what is
/// read writes back to a message that reads the same status and the same metadata (less
/// the reserved keys, which are never written).
fn end_stream(body: &[u8]) {
    let (status, trailers) = match parse_end_stream(body) {
        Ok(read) => read,
        Err(status) => return assert_eq!(status.code(), Code::Internal, "{status:?}"),
    };
    let (again, trailers_again) =
        parse_end_stream(&end_stream_json(&status, &trailers)).expect("our own end reads back");
    assert_same_status(&status, &again);
    let (sent, read) = (trailers.as_headers(), trailers_again.as_headers());
    for key in sent.keys().filter(|k| !is_reserved(k.as_str())) {
        let values = |h: &HeaderMap| h.get_all(key).iter().cloned().collect::<Vec<_>>();
        assert_eq!(values(sent), values(read), "metadata {key}");
    }
    assert!(
        read.keys().all(|k| sent.contains_key(k)),
        "metadata that was not sent"
    );
}

fn assert_same_status(a: &Status, b: &Status) {
    assert_eq!(a.code(), b.code());
    assert_eq!(a.message(), b.message());
    let (a, b) = (
        decode_anys(a.details_bytes()),
        decode_anys(b.details_bytes()),
    );
    assert_eq!(a.len(), b.len(), "details lost or added");
    for (a, b) in a.iter().zip(&b) {
        let name = |url: &str| url.rsplit('/').next().unwrap_or(url).to_owned();
        assert_eq!(name(&a.type_url), name(&b.type_url));
        assert_eq!(a.value, b.value);
    }
}

/// JSON of a message type: no panic; a refusal leaves the output as it was; and what
/// `to_proto` accepts, written back with `to_json`, reads to the same protobuf bytes
/// (up to the order of map entries, which prost-reflect keeps in a hash map).
fn message(body: &[u8], type_name: &str) {
    let message = descriptors().message(type_name).expect("a known type");
    let mut proto = vec![0xaa];
    if message.to_proto(body, &mut proto).is_err() {
        assert_eq!(proto, [0xaa], "a refusal wrote output");
        return;
    }
    let proto = &proto[1..];
    let mut json = Vec::new();
    message
        .to_json(proto, &mut json)
        .unwrap_or_else(|e| panic!("accepted {type_name} cannot be written as JSON: {e:?}"));
    let mut again = Vec::new();
    message.to_proto(&json, &mut again).unwrap_or_else(|e| {
        panic!(
            "{type_name} JSON we wrote is refused: {e:?}: {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert!(
        again == proto || message.same_message(proto, &again),
        "{type_name} changed on a round trip through {}",
        String::from_utf8_lossy(&json)
    );
}
