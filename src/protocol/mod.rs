//! The protocol seam: gRPC, gRPC-Web and Connect are three wire forms of one call (a
//! request side, a response side, a status with metadata). A [`Wire`] is read off a
//! request's method and `content-type` once, and every place that writes a head, a
//! message or an end asks it how (as connect-go's protocol handlers do). The call code
//! does not fork per protocol; the differences are all here:
//!
//! | | gRPC | gRPC-Web | Connect streaming | Connect unary |
//! |---|---|---|---|---|
//! | messages | 5-byte prefix | 5-byte prefix (`-text`: base64) | 5-byte prefix | the body is the one message |
//! | compression header | `grpc-encoding` | `grpc-encoding` | `connect-content-encoding` | `content-encoding` |
//! | deadline | `grpc-timeout` | `grpc-timeout` | `connect-timeout-ms` | `connect-timeout-ms` |
//! | status | trailers | a last frame, flag 0x80 | a last frame, flag 0x02, JSON | HTTP status, JSON body |
//! | trailer metadata | trailers | in that frame | in that frame | `trailer-` headers |
//!
//! `json` reads and writes protobuf's JSON mapping from descriptors; `connect_error` holds
//! Connect's error JSON and its code tables.

pub(crate) mod connect_error;
pub(crate) mod fuzz;
pub(crate) mod json;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::compression::{AcceptEncodings, Encoding};
use crate::headers::{self, GRPC_ACCEPT_ENCODING, RequestHead};
use crate::metadata::Metadata;
use crate::status::Status;

/// Which protocol a call speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// gRPC over HTTP/2 (`doc/PROTOCOL-HTTP2.md`).
    Grpc,
    /// gRPC-Web (`doc/PROTOCOL-WEB.md`); `text`: the body is base64.
    GrpcWeb { text: bool },
    /// Connect, streaming content types (`application/connect+...`).
    Connect,
    /// Connect, unary content types (`application/proto`, `application/json`); `get`: the
    /// request came as a GET with the message in the query.
    ConnectUnary { get: bool },
}

/// How messages are written: protobuf's binary form or its JSON mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Proto,
    Json,
}

/// A call's wire form: its protocol and its message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wire {
    pub protocol: Protocol,
    pub format: Format,
}

/// What a request's method and `content-type` make of it.
#[derive(Debug)]
pub(crate) enum Classified {
    /// A call in this wire form.
    Rpc(Wire),
    /// Not a call of any protocol we speak (another content type or method).
    NotRpc,
    /// A protocol we speak with something we do not (a codec other than proto or JSON):
    /// refused with this HTTP status.
    Refused(StatusCode),
}

pub(crate) const CONNECT_TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");
pub(crate) const CONNECT_PROTOCOL_VERSION: HeaderName =
    HeaderName::from_static("connect-protocol-version");
pub(crate) const CONNECT_CONTENT_ENCODING: HeaderName =
    HeaderName::from_static("connect-content-encoding");
pub(crate) const CONNECT_ACCEPT_ENCODING: HeaderName =
    HeaderName::from_static("connect-accept-encoding");

/// The flag of gRPC-Web's trailers frame.
pub(crate) const GRPC_WEB_TRAILERS_FLAG: u8 = 0x80;
/// The flag of Connect's end-of-stream message.
pub(crate) const CONNECT_END_STREAM_FLAG: u8 = 0x02;

impl Wire {
    pub(crate) const GRPC: Wire = Wire {
        protocol: Protocol::Grpc,
        format: Format::Proto,
    };

    /// Classify a request. gRPC's own content types come first and cost one comparison.
    #[inline]
    pub(crate) fn classify(
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Classified {
        if method == Method::GET {
            // Connect's GET: `?connect=v1&encoding=proto|json&message=...`.
            return match query.and_then(|q| query_param(q, "encoding")) {
                Some(encoding) => match Format::from_codec(encoding.as_bytes()) {
                    Some(format) => Classified::Rpc(Wire {
                        protocol: Protocol::ConnectUnary { get: true },
                        format,
                    }),
                    None => Classified::Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                },
                None => Classified::NotRpc,
            };
        }
        let Some(content_type) = headers.get(CONTENT_TYPE) else {
            return Classified::NotRpc;
        };
        let content_type = content_type.as_bytes();
        if content_type == b"application/grpc" && method == Method::POST {
            return Classified::Rpc(Wire::GRPC);
        }
        let Some(wire) = Wire::from_content_type(content_type) else {
            return Classified::NotRpc;
        };
        let wire = match wire {
            Ok(wire) => wire,
            Err(status) => return Classified::Refused(status),
        };
        if method != Method::POST {
            return Classified::Refused(StatusCode::METHOD_NOT_ALLOWED);
        }
        Classified::Rpc(wire)
    }

    /// The wire form a `content-type` names: `None` when it is no protocol of ours,
    /// `Err(415)` when it is one with a codec we do not have.
    fn from_content_type(content_type: &[u8]) -> Option<Result<Wire, StatusCode>> {
        let content_type = std::str::from_utf8(content_type).ok()?;
        // Parameters (`; charset=utf-8`) do not change the protocol.
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        let (protocol, codec) =
            if let Some(rest) = essence.strip_prefix("application/grpc-web-text") {
                (Protocol::GrpcWeb { text: true }, rest)
            } else if let Some(rest) = essence.strip_prefix("application/grpc-web") {
                (Protocol::GrpcWeb { text: false }, rest)
            } else if let Some(rest) = essence.strip_prefix("application/grpc") {
                (Protocol::Grpc, rest)
            } else if let Some(rest) = essence.strip_prefix("application/connect+") {
                (Protocol::Connect, rest)
            } else if let Some(codec) = essence.strip_prefix("application/") {
                // Connect unary: `application/proto` or `application/json`; any other
                // `application/x` is simply not a call.
                return Format::from_codec(codec.as_bytes()).map(|format| {
                    Ok(Wire {
                        protocol: Protocol::ConnectUnary { get: false },
                        format,
                    })
                });
            } else {
                return None;
            };
        if protocol == Protocol::Connect {
            return Some(
                Format::from_codec(codec.as_bytes())
                    .map(|format| Wire { protocol, format })
                    .ok_or(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            );
        }
        let format = match codec {
            "" => Format::Proto,
            // `application/grpcfoo` is not gRPC at all.
            codec => match codec.strip_prefix('+') {
                None => return None,
                Some(codec) => match Format::from_codec(codec.as_bytes()) {
                    Some(format) => format,
                    None => return Some(Err(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
                },
            },
        };
        Some(Ok(Wire { protocol, format }))
    }

    /// Whether this wire form may be carried by HTTP/1.1 (gRPC needs HTTP/2's trailers).
    #[inline]
    pub(crate) fn allows_http1(self) -> bool {
        self.protocol != Protocol::Grpc
    }

    #[inline]
    pub(crate) fn is_grpc(self) -> bool {
        self.protocol == Protocol::Grpc
    }

    /// Whether the request's messages come whole, without the 5-byte prefix.
    #[inline]
    pub(crate) fn unary_body(self) -> bool {
        matches!(self.protocol, Protocol::ConnectUnary { .. })
    }

    /// Whether bodies are base64 (`application/grpc-web-text`).
    #[inline]
    pub(crate) fn is_text(self) -> bool {
        self.protocol == (Protocol::GrpcWeb { text: true })
    }

    /// The response's `content-type`.
    pub(crate) fn content_type(self) -> HeaderValue {
        let value = match (self.protocol, self.format) {
            (Protocol::Grpc, Format::Proto) => return headers::CONTENT_TYPE_GRPC,
            (Protocol::Grpc, Format::Json) => "application/grpc+json",
            (Protocol::GrpcWeb { text: false }, Format::Proto) => "application/grpc-web+proto",
            (Protocol::GrpcWeb { text: false }, Format::Json) => "application/grpc-web+json",
            (Protocol::GrpcWeb { text: true }, Format::Proto) => "application/grpc-web-text+proto",
            (Protocol::GrpcWeb { text: true }, Format::Json) => "application/grpc-web-text+json",
            (Protocol::Connect, Format::Proto) => "application/connect+proto",
            (Protocol::Connect, Format::Json) => "application/connect+json",
            (Protocol::ConnectUnary { .. }, Format::Proto) => "application/proto",
            (Protocol::ConnectUnary { .. }, Format::Json) => "application/json",
        };
        HeaderValue::from_static(value)
    }

    /// The header naming the encoding of the messages sent.
    fn encoding_header(self) -> HeaderName {
        match self.protocol {
            Protocol::Grpc | Protocol::GrpcWeb { .. } => headers::GRPC_ENCODING,
            Protocol::Connect => CONNECT_CONTENT_ENCODING,
            Protocol::ConnectUnary { .. } => CONTENT_ENCODING,
        }
    }

    /// The header listing the encodings this side reads.
    fn accept_header(self) -> HeaderName {
        match self.protocol {
            Protocol::Grpc | Protocol::GrpcWeb { .. } => GRPC_ACCEPT_ENCODING,
            Protocol::Connect => CONNECT_ACCEPT_ENCODING,
            Protocol::ConnectUnary { .. } => http::header::ACCEPT_ENCODING,
        }
    }

    /// Read a request's head. gRPC and gRPC-Web share gRPC's headers; Connect has its own.
    #[inline]
    pub(crate) fn request_head(
        self,
        headers: &HeaderMap,
    ) -> Result<RequestHead, crate::headers::Refused> {
        use crate::headers::Refused;
        match self.protocol {
            Protocol::Grpc | Protocol::GrpcWeb { .. } => RequestHead::check(headers),
            Protocol::Connect | Protocol::ConnectUnary { .. } => {
                if let Some(version) = headers.get(CONNECT_PROTOCOL_VERSION)
                    && version.as_bytes() != b"1"
                {
                    return Err(Refused::Malformed(Status::invalid_argument(format!(
                        "connect-protocol-version must be \"1\", not {:?}",
                        String::from_utf8_lossy(version.as_bytes())
                    ))));
                }
                let encoding = match headers.get(self.encoding_header()) {
                    None => None,
                    Some(name) => Encoding::parse(name.as_bytes()).map_err(|_| {
                        Refused::Encoding(Status::unimplemented(format!(
                            "message encoding {:?} is not supported",
                            String::from_utf8_lossy(name.as_bytes())
                        )))
                    })?,
                };
                let accept = headers
                    .get(self.accept_header())
                    .map_or(AcceptEncodings::NONE, |v| {
                        AcceptEncodings::parse(v.as_bytes())
                    });
                let timeout = match headers.get(CONNECT_TIMEOUT_MS) {
                    None => None,
                    Some(value) => Some(parse_timeout_ms(value.as_bytes()).ok_or_else(|| {
                        Refused::Malformed(Status::invalid_argument(format!(
                            "malformed connect-timeout-ms {:?}",
                            String::from_utf8_lossy(value.as_bytes())
                        )))
                    })?),
                };
                Ok(RequestHead {
                    timeout,
                    encoding,
                    accept,
                    ..RequestHead::default()
                })
            }
        }
    }

    /// The head of a response whose messages follow.
    #[inline]
    pub(crate) fn response_headers(
        self,
        encoding: Option<Encoding>,
        metadata: Metadata,
    ) -> http::Response<()> {
        if self == Wire::GRPC {
            return headers::response_headers(encoding, metadata);
        }
        let mut response = http::Response::new(());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, self.content_type());
        if let Some(encoding) = encoding {
            headers.insert(self.encoding_header(), encoding.header_value());
        }
        metadata.append_to(headers);
        response
    }

    /// The advertisement sent with a refused encoding: the header and what we read.
    pub(crate) fn accept_advertisement(self) -> (HeaderName, HeaderValue) {
        (
            self.accept_header(),
            HeaderValue::from_static(crate::compression::ACCEPT_ENCODING),
        )
    }

    /// The last frame of a web response (gRPC-Web's trailers frame, Connect's
    /// end-of-stream message) ending the call with `status` and `trailers`. `None` for
    /// gRPC, whose status goes in real trailers.
    #[inline]
    pub(crate) fn end_frame(self, status: &Status, trailers: &Metadata) -> Option<Bytes> {
        match self.protocol {
            Protocol::Grpc | Protocol::ConnectUnary { .. } => None,
            Protocol::GrpcWeb { .. } => {
                let mut block = HeaderMap::new();
                if status.is_ok() {
                    block = headers::ok_trailers(trailers.clone());
                } else {
                    let mut status = status.clone();
                    trailers
                        .clone()
                        .append_to(status.metadata_mut().headers_mut());
                    status.write_trailers(&mut block);
                }
                Some(frame(GRPC_WEB_TRAILERS_FLAG, &header_block(&block)))
            }
            Protocol::Connect => {
                // An error's own metadata is trailer metadata too.
                let json = if status.metadata().is_empty() {
                    connect_error::end_stream_json(status, trailers)
                } else {
                    let mut all = trailers.clone();
                    status.metadata().clone().append_to(all.headers_mut());
                    connect_error::end_stream_json(status, &all)
                };
                Some(frame(CONNECT_END_STREAM_FLAG, &json))
            }
        }
    }

    /// A gRPC-Web call that ends before its first message: the status in the headers
    /// (`doc/PROTOCOL-WEB.md`: a trailers-only response), as gRPC's Trailers-Only.
    pub(crate) fn trailers_only(self, metadata: Metadata, status: Status) -> http::Response<()> {
        let mut response = headers::trailers_only(metadata, status);
        if self != Wire::GRPC {
            response
                .headers_mut()
                .insert(CONTENT_TYPE, self.content_type());
        }
        response
    }
}

impl Format {
    fn from_codec(codec: &[u8]) -> Option<Format> {
        match codec {
            b"proto" => Some(Format::Proto),
            b"json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A Connect unary response: the head (status, metadata, trailers as `trailer-` headers)
/// and its body, the message or the error's JSON.
pub(crate) fn connect_unary_response(
    wire: Wire,
    status: &Status,
    encoding: Option<Encoding>,
    metadata: Metadata,
    trailers: &Metadata,
    descriptors: Option<&json::Descriptors>,
) -> (http::Response<()>, Option<Bytes>) {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    metadata.append_to(headers);
    let trailers = trailers
        .as_headers()
        .iter()
        .chain(status.metadata().as_headers().iter());
    for (name, value) in trailers {
        let Ok(name) = HeaderName::from_bytes(format!("trailer-{name}").as_bytes()) else {
            continue;
        };
        headers.append(name, value.clone());
    }
    if status.is_ok() {
        headers.insert(CONTENT_TYPE, wire.content_type());
        if let Some(encoding) = encoding {
            headers.insert(CONTENT_ENCODING, encoding.header_value());
        }
        return (response, None);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    *response.status_mut() = connect_error::http_status(status.code());
    let body = connect_error::error_json(status, descriptors);
    (response, Some(Bytes::from(body)))
}

/// One frame: a flag byte, the 4-byte length, the payload.
pub(crate) fn frame(flag: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.put_u8(flag);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// Headers as an HTTP/1 block (`name: value\r\n`), names lower case: gRPC-Web's trailers.
fn header_block(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `connect-timeout-ms`: at most 10 ASCII digits.
fn parse_timeout_ms(value: &[u8]) -> Option<Duration> {
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let ms: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// The value of `name` in a query string, percent-decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| {
            let value = value.replace('+', " ");
            percent_encoding::percent_decode_str(&value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The message of a Connect GET (`message=`, base64url when `base64=1`, else
/// percent-encoded), and its `compression`.
pub(crate) fn connect_get_message(query: &str) -> Result<(Bytes, Option<Encoding>), Status> {
    let encoding = match query_param(query, "compression") {
        None => None,
        Some(name) => Encoding::parse(name.as_bytes()).map_err(|_| {
            Status::unimplemented(format!("message compression {name:?} is not supported"))
        })?,
    };
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("message="))
        .unwrap_or("");
    let base64 = query_param(query, "base64").as_deref() == Some("1");
    let message = if base64 {
        let text = raw.trim_end_matches('=');
        let text = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('=').as_bytes())
            .map_err(|e| Status::invalid_argument(format!("message is not base64url: {e}")))?
    } else {
        percent_encoding::percent_decode_str(raw).collect()
    };
    Ok((Bytes::from(message), encoding))
}

/// Base64 of one outgoing chunk (gRPC-Web text): each chunk is encoded whole, with its
/// padding, as Envoy's gRPC-Web filter does; readers decode the padded chunks in turn.
pub(crate) fn encode_text(data: &[u8]) -> Bytes {
    Bytes::from(STANDARD.encode(data))
}

/// Decodes a base64 body that may arrive as several padded chunks, cut anywhere.
#[derive(Debug, Default)]
pub(crate) struct TextDecoder {
    /// Characters of an incomplete group of four.
    carry: Vec<u8>,
}

impl TextDecoder {
    /// The bytes `chunk` completes; what is left of a group waits for the next chunk.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Bytes, Status> {
        let mut text = std::mem::take(&mut self.carry);
        text.extend(chunk.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        let whole = text.len() / 4 * 4;
        self.carry = text[whole..].to_vec();
        let mut out = Vec::with_capacity(whole / 4 * 3);
        // Groups up to and including one with padding decode together; the next group
        // starts a new run.
        let mut start = 0;
        for end in (4..=whole).step_by(4) {
            if text[end - 1] == b'=' || end == whole {
                STANDARD
                    .decode_vec(&text[start..end], &mut out)
                    .map_err(|e| Status::invalid_argument(format!("malformed base64 body: {e}")))?;
                start = end;
            }
        }
        Ok(Bytes::from(out))
    }

    /// Whether the body ended on a group boundary.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(Status::invalid_argument(
                "base64 body ended inside a group of four",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(method: Method, content_type: &str) -> Classified {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        Wire::classify(&method, &headers, None)
    }

    fn wire(protocol: Protocol, format: Format) -> Wire {
        Wire { protocol, format }
    }

    #[test]
    fn content_types_name_the_protocol_and_the_codec() {
        use Format::*;
        use Protocol::*;
        let cases = [
            ("application/grpc", wire(Grpc, Proto)),
            ("application/grpc+proto", wire(Grpc, Proto)),
            ("application/grpc+json", wire(Grpc, Json)),
            ("application/grpc-web", wire(GrpcWeb { text: false }, Proto)),
            (
                "application/grpc-web+proto",
                wire(GrpcWeb { text: false }, Proto),
            ),
            (
                "application/grpc-web+json",
                wire(GrpcWeb { text: false }, Json),
            ),
            (
                "application/grpc-web-text",
                wire(GrpcWeb { text: true }, Proto),
            ),
            (
                "application/grpc-web-text+proto",
                wire(GrpcWeb { text: true }, Proto),
            ),
            ("application/connect+proto", wire(Connect, Proto)),
            ("application/connect+json", wire(Connect, Json)),
            (
                "application/proto",
                wire(ConnectUnary { get: false }, Proto),
            ),
            ("application/json", wire(ConnectUnary { get: false }, Json)),
            (
                "application/json; charset=utf-8",
                wire(ConnectUnary { get: false }, Json),
            ),
        ];
        for (content_type, want) in cases {
            match classify(Method::POST, content_type) {
                Classified::Rpc(got) => assert_eq!(got, want, "{content_type}"),
                other => panic!("{content_type}: {other:?}"),
            }
        }
        for refused in [
            "application/grpc+thrift",
            "application/connect+xml",
            "application/grpc-web+cbor",
        ] {
            assert!(
                matches!(
                    classify(Method::POST, refused),
                    Classified::Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                ),
                "{refused}"
            );
        }
        for other in ["application/grpcfoo", "text/html", "application/xml"] {
            assert!(
                matches!(classify(Method::POST, other), Classified::NotRpc),
                "{other}"
            );
        }
        assert!(matches!(
            classify(Method::PUT, "application/grpc-web"),
            Classified::Refused(StatusCode::METHOD_NOT_ALLOWED)
        ));
    }

    #[test]
    fn text_bodies_decode_across_cuts_and_padded_chunks() {
        let parts: [&[u8]; 3] = [b"a", b"hello there", b"!?"];
        let mut wire = Vec::new();
        for p in parts {
            wire.extend_from_slice(&encode_text(p));
        }
        let want: Vec<u8> = parts.concat();
        for cut in 0..=wire.len() {
            let mut d = TextDecoder::default();
            let mut got = d.push(&wire[..cut]).unwrap().to_vec();
            got.extend_from_slice(&d.push(&wire[cut..]).unwrap());
            d.finish().unwrap();
            assert_eq!(got, want, "cut at {cut}");
        }
        let mut d = TextDecoder::default();
        d.push(b"abc").unwrap();
        assert!(d.finish().is_err());
        assert!(TextDecoder::default().push(b"a$c=").is_err());
    }

    #[test]
    fn grpc_web_trailers_are_a_flagged_header_block() {
        let w = wire(Protocol::GrpcWeb { text: false }, Format::Proto);
        let mut trailers = Metadata::new();
        trailers.insert("x-trailer", "t").unwrap();
        let frame = w
            .end_frame(&Status::not_found("no such thing"), &trailers)
            .unwrap();
        assert_eq!(frame[0], 0x80);
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        let block = std::str::from_utf8(&frame[5..]).unwrap();
        assert_eq!(block.len(), len);
        assert!(block.contains("grpc-status: 5\r\n"), "{block}");
        assert!(block.contains("grpc-message: no such thing\r\n"), "{block}");
        assert!(block.contains("x-trailer: t\r\n"), "{block}");
    }

    #[test]
    fn connect_get_reads_the_message_from_the_query() {
        let (message, encoding) =
            connect_get_message("connect=v1&encoding=proto&base64=1&message=CAES").unwrap();
        assert_eq!(&message[..], &[8, 1, 18][..]);
        assert_eq!(encoding, None);
        let (message, _) =
            connect_get_message("encoding=json&message=%7B%22a%22%3A1%7D&connect=v1").unwrap();
        assert_eq!(&message[..], br#"{"a":1}"#);
        assert_eq!(parse_timeout_ms(b"1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_timeout_ms(b"12345678901"), None);
        assert_eq!(parse_timeout_ms(b"-1"), None);
    }
}
