//! The protocol's headers: every header name gRPC uses, as one constant each (a
//! `HeaderName`, so looking one up costs no parsing of the name), and the
//! request and response heads as types that `parse` a received `HeaderMap` and `write`
//! one. Pure: no I/O; every refusal is a precise [`Status`] (or, for requests that are
//! not gRPC at all, an HTTP status). A response's head is decided here once: headers
//! with messages to follow, or a Trailers-Only response carrying the call's status.
//! Protocol headers stay out of the metadata a caller sees.

use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderName, TE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::compression::{self, AcceptEncodings, Encoding, UnsupportedEncoding};
use crate::metadata::{self, Metadata};
use crate::status::Status;

/// `grpc-timeout`: the time the client gives the call (`doc/PROTOCOL-HTTP2.md`).
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// How many attempts of this call came before this one (gRFC A6), on retried and
/// hedged attempts.
pub const GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName =
    HeaderName::from_static("grpc-previous-rpc-attempts");
/// A server's wish about the client's next attempt: milliseconds to wait, or (negative,
/// unparsable) no retry (gRFC A6).
pub const GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");
/// `grpc-encoding`: the compression of the messages that follow.
pub const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
/// `grpc-accept-encoding`: the encodings the sender can read.
pub const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
/// The status's own headers (`grpc-status`, `grpc-message`, `grpc-status-details-bin`),
/// defined beside `Status`, which reads and writes them.
pub use crate::status::{GRPC_MESSAGE, GRPC_STATUS, GRPC_STATUS_DETAILS};

/// `content-type` of every request and response this library sends.
pub const CONTENT_TYPE_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
/// `te: trailers`, which every gRPC request carries.
pub const TE_TRAILERS: HeaderValue = HeaderValue::from_static("trailers");
/// `user-agent` of this library's client.
pub const USER_AGENT_VALUE: HeaderValue =
    HeaderValue::from_static(concat!("grpc-rust-h2grpc/", env!("CARGO_PKG_VERSION")));
const ACCEPT_ENCODING_VALUE: HeaderValue = HeaderValue::from_static(compression::ACCEPT_ENCODING);
const GRPC_STATUS_OK: HeaderValue = HeaderValue::from_static("0");

/// Whether `headers` say `content-type: application/grpc` (or a `+suffix` of it).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Whether a request's `content-type` is gRPC with the protobuf codec, the one this server
/// reads: exactly `application/grpc` or `application/grpc+proto`. Not `application/grpcfoo`
/// (not gRPC at all), nor another codec such as `application/grpc+json`, which must not be
/// read as protobuf.
pub fn is_grpc_proto(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v == b"application/grpc" || v == b"application/grpc+proto"
    })
}

/// The HTTP-level check of a request, before anything gRPC: `POST` (else 405) with a
/// gRPC protobuf `content-type` (else 415). A content type that is not gRPC's at all
/// gets 415 as from grpc-go; a gRPC one naming a codec other than protobuf gets 415 too,
/// as connect-go answers a codec it has not registered.
pub fn check_http(method: &Method, headers: &HeaderMap) -> Result<(), StatusCode> {
    if method != Method::POST {
        return Err(StatusCode::METHOD_NOT_ALLOWED);
    }
    if !is_grpc_proto(headers) {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    Ok(())
}

/// What a request's headers say about the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// `grpc-timeout`: the time left of the client's deadline.
    pub timeout: Option<Duration>,
    /// `grpc-encoding` of the request's messages (`None`: identity).
    pub encoding: Option<Encoding>,
    /// `grpc-accept-encoding`: what the client can read.
    pub accept: AcceptEncodings,
    /// `grpc-previous-rpc-attempts`: attempts of this call before this one (A6).
    pub previous_attempts: u32,
}

/// Why a request's head was refused, and so how the refusal is answered.
#[derive(Debug)]
pub(crate) enum Refused {
    /// A `grpc-encoding` this side cannot read (`UNIMPLEMENTED`): the answer lists the
    /// encodings it reads in `grpc-accept-encoding`.
    Encoding(Status),
    /// A malformed `grpc-timeout` or `-bin` value (`INTERNAL`).
    Malformed(Status),
}

impl Refused {
    pub(crate) fn status(&self) -> &Status {
        match self {
            Refused::Encoding(status) | Refused::Malformed(status) => status,
        }
    }

    pub(crate) fn into_status(self) -> Status {
        match self {
            Refused::Encoding(status) | Refused::Malformed(status) => status,
        }
    }

    /// The Trailers-Only answer to the refused request.
    pub(crate) fn into_response(self) -> http::Response<()> {
        let advertise = matches!(self, Refused::Encoding(_));
        let mut response = trailers_only(Metadata::new(), self.into_status());
        if advertise {
            // Tell the client what we can read.
            let headers = response.headers_mut();
            headers.insert(GRPC_ACCEPT_ENCODING, ACCEPT_ENCODING_VALUE);
        }
        response
    }
}

impl RequestHead {
    /// Parse a request's headers. An encoding we cannot read is `UNIMPLEMENTED`; a
    /// malformed `grpc-timeout` or `-bin` value is `INTERNAL`.
    pub fn parse(headers: &HeaderMap) -> Result<RequestHead, Status> {
        RequestHead::check(headers).map_err(Refused::into_status)
    }

    /// [`RequestHead::parse`], saying how to answer a refusal.
    pub(crate) fn check(headers: &HeaderMap) -> Result<RequestHead, Refused> {
        // One pass over the headers instead of a hashed lookup per name: the request's
        // headers are few, and most calls carry none of these.
        let (mut encoding, mut accept, mut timeout, mut previous) = (None, None, None, None);
        let mut bad_bin = None;
        for (name, value) in headers {
            let name_str = name.as_str();
            if let Some(rest) = name_str.strip_prefix("grpc-") {
                let slot = match rest {
                    "encoding" => Some(&mut encoding),
                    "accept-encoding" => Some(&mut accept),
                    "timeout" => Some(&mut timeout),
                    "previous-rpc-attempts" => Some(&mut previous),
                    _ => None,
                };
                if let Some(slot) = slot {
                    // As `HeaderMap::get`: the first value counts.
                    slot.get_or_insert(value);
                }
            }
            if bad_bin.is_none() && metadata::is_invalid_bin(name_str, value) {
                bad_bin = Some(name);
            }
        }
        let encoding = match encoding {
            None => None,
            Some(name) => Encoding::parse(name.as_bytes()).map_err(|UnsupportedEncoding| {
                Refused::Encoding(Status::unimplemented(format!(
                    "message encoding {:?} is not supported",
                    String::from_utf8_lossy(name.as_bytes())
                )))
            })?,
        };
        let accept = accept.map_or(AcceptEncodings::NONE, |v| {
            AcceptEncodings::parse(v.as_bytes())
        });
        let timeout = match timeout {
            None => None,
            Some(value) => Some(metadata::parse_timeout(value.as_bytes()).ok_or_else(|| {
                Refused::Malformed(Status::internal(format!(
                    "malformed grpc-timeout header {:?}",
                    String::from_utf8_lossy(value.as_bytes())
                )))
            })?),
        };
        if let Some(name) = bad_bin {
            return Err(Refused::Malformed(Status::internal(format!(
                "invalid base64 in binary metadata {name}"
            ))));
        }
        let previous_attempts = previous
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        Ok(RequestHead {
            timeout,
            encoding,
            accept,
            previous_attempts,
        })
    }

    /// Write the headers of a request with this head and `metadata`: `content-type`,
    /// `te`, `user-agent`, `grpc-accept-encoding`, and `grpc-encoding` and
    /// `grpc-timeout` when set.
    pub fn write(&self, metadata: &Metadata, headers: &mut HeaderMap) {
        headers.reserve(6 + metadata.len());
        headers.insert(CONTENT_TYPE, CONTENT_TYPE_GRPC);
        headers.insert(TE, TE_TRAILERS);
        headers.insert(USER_AGENT, USER_AGENT_VALUE);
        headers.insert(GRPC_ACCEPT_ENCODING, self.accept.header_value());
        if let Some(encoding) = self.encoding {
            headers.insert(GRPC_ENCODING, encoding.header_value());
        }
        if let Some(timeout) = self.timeout {
            headers.insert(GRPC_TIMEOUT, metadata::format_timeout(timeout));
        }
        if self.previous_attempts > 0 {
            headers.insert(GRPC_PREVIOUS_RPC_ATTEMPTS, self.previous_attempts.into());
        }
        metadata.copy_to(headers);
    }
}

/// What the first HEADERS frame of a response says, decided once, here: the head of a
/// response whose messages follow, or a whole Trailers-Only response.
#[derive(Debug)]
pub enum ResponseHead {
    /// Messages follow, then trailers.
    Headers {
        /// `grpc-encoding` of the response's messages.
        encoding: Option<Encoding>,
        /// `grpc-accept-encoding`, when the server sent one.
        accept: Option<AcceptEncodings>,
        /// The response header metadata.
        metadata: Metadata,
    },
    /// A Trailers-Only response (HEADERS with END_STREAM): the call ended with this
    /// status, whose metadata holds the trailer metadata.
    TrailersOnly {
        /// The call's status, `OK` or not.
        status: Status,
        /// `grpc-accept-encoding`, when the server sent one (with an `UNIMPLEMENTED` for
        /// an encoding it cannot read, say).
        accept: Option<AcceptEncodings>,
    },
}

impl ResponseHead {
    /// Parse the first HEADERS frame of a response (`end_stream`: it ended the stream),
    /// taking its header map (no copy). A `:status` other than 200 maps by the HTTP
    /// table; a Trailers-Only response without `grpc-status` is `UNKNOWN`, as are headers
    /// without a gRPC `content-type`; an encoding we cannot read is `INTERNAL`.
    /// `grpc-accept-encoding` is taken out of the metadata.
    pub fn parse(
        status: StatusCode,
        mut headers: HeaderMap,
        end_stream: bool,
    ) -> Result<ResponseHead, Status> {
        if status != StatusCode::OK {
            return Err(Status::from_http(status));
        }
        let accept = headers
            .remove(GRPC_ACCEPT_ENCODING)
            .map(|v| AcceptEncodings::parse(v.as_bytes()));
        if end_stream {
            let status = Status::from_headers(headers)
                .ok_or_else(|| Status::unknown("response ended without grpc-status"))?;
            return Ok(ResponseHead::TrailersOnly { status, accept });
        }
        if !is_grpc(&headers) {
            return Err(Status::unknown(format!(
                "response content-type {:?} is not application/grpc",
                headers.get(CONTENT_TYPE)
            )));
        }
        let encoding = match headers.get(GRPC_ENCODING) {
            None => None,
            Some(name) => Encoding::parse(name.as_bytes()).map_err(|UnsupportedEncoding| {
                Status::internal(format!(
                    "the server compressed with {:?}, which this client does not support",
                    String::from_utf8_lossy(name.as_bytes())
                ))
            })?,
        };
        Ok(ResponseHead::Headers {
            encoding,
            accept,
            metadata: Metadata::from_headers(headers),
        })
    }

    /// `grpc-accept-encoding`, when the server sent one.
    pub fn accept(&self) -> Option<AcceptEncodings> {
        match self {
            ResponseHead::Headers { accept, .. } | ResponseHead::TrailersOnly { accept, .. } => {
                *accept
            }
        }
    }
}

/// The headers of a response whose messages follow: `content-type`, the messages'
/// `grpc-encoding` and `metadata`. The server sends `grpc-accept-encoding` only with the
/// answer to an encoding it cannot read (as grpc-go does): on every response it would
/// cost an HPACK entry per call.
pub fn response_headers(encoding: Option<Encoding>, metadata: Metadata) -> http::Response<()> {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    headers.reserve(2 + metadata.len());
    headers.insert(CONTENT_TYPE, CONTENT_TYPE_GRPC);
    if let Some(encoding) = encoding {
        headers.insert(GRPC_ENCODING, encoding.header_value());
    }
    metadata.append_to(headers);
    response
}

/// Trailers ending a call with `OK`, plus the handler's trailer `metadata`.
pub fn ok_trailers(metadata: Metadata) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1 + metadata.len());
    trailers.insert(GRPC_STATUS, GRPC_STATUS_OK);
    metadata.append_to(&mut trailers);
    trailers
}

/// A Trailers-Only response: one HEADERS frame (sent with END_STREAM) holding the
/// `content-type`, the response header `metadata`, and the status with its metadata.
pub fn trailers_only(metadata: Metadata, status: Status) -> http::Response<()> {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, CONTENT_TYPE_GRPC);
    metadata.append_to(headers);
    status.write_trailers(headers);
    response
}

/// A plain HTTP answer (no gRPC) for requests that are not gRPC at all.
pub fn http_error(status: StatusCode) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    fn map(pairs: &[(&str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for &(k, v) in pairs {
            let name = HeaderName::from_bytes(k.as_bytes()).unwrap();
            h.append(name, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_written_request_head_parses_back() {
        let head = RequestHead {
            timeout: Some(Duration::from_millis(1500)),
            encoding: Some(Encoding::Gzip),
            accept: AcceptEncodings::ALL,
            previous_attempts: 2,
        };
        let mut md = Metadata::new();
        md.insert("x-user", "me").unwrap();
        let mut headers = HeaderMap::new();
        head.write(&md, &mut headers);
        assert!(is_grpc(&headers));
        assert_eq!(headers[TE], "trailers");
        assert_eq!(RequestHead::parse(&headers).unwrap(), head);
        assert_eq!(headers["x-user"], "me");
    }

    #[test]
    fn request_heads_refuse_precisely() {
        let unknown = RequestHead::check(&map(&[(GRPC_ENCODING.as_str(), "snappy")])).unwrap_err();
        assert_eq!(unknown.status().code(), Code::Unimplemented);
        assert!(
            unknown.status().metadata().is_empty(),
            "no protocol header in metadata"
        );
        let answer = unknown.into_response();
        assert_eq!(answer.headers()[&GRPC_STATUS], "12");
        assert_eq!(
            answer.headers()[&GRPC_ACCEPT_ENCODING],
            compression::ACCEPT_ENCODING
        );
        for bad in ["", "1", "123456789S", "1x", "-1S"] {
            let mut h = HeaderMap::new();
            h.insert(GRPC_TIMEOUT, HeaderValue::from_str(bad).unwrap());
            assert_eq!(
                RequestHead::parse(&h).unwrap_err().code(),
                Code::Internal,
                "{bad:?}"
            );
        }
        let bin = RequestHead::parse(&map(&[("x-bin", "!!")])).unwrap_err();
        assert_eq!(bin.code(), Code::Internal);
        assert_eq!(
            RequestHead::parse(&map(&[(GRPC_TIMEOUT.as_str(), "0n")]))
                .unwrap()
                .timeout,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_one_pass_parse_reads_as_lookups_would() {
        // The first of repeated values counts, as with `HeaderMap::get`.
        let twice = map(&[
            (GRPC_TIMEOUT.as_str(), "5S"),
            (GRPC_TIMEOUT.as_str(), "bad"),
            (GRPC_PREVIOUS_RPC_ATTEMPTS.as_str(), "2"),
            (GRPC_ACCEPT_ENCODING.as_str(), "gzip"),
        ]);
        let head = RequestHead::parse(&twice).unwrap();
        assert_eq!(head.timeout, Some(Duration::from_secs(5)));
        assert_eq!(head.previous_attempts, 2);
        assert!(head.accept.contains(Encoding::Gzip));
        // A `grpc-` name that is `-bin` is checked too.
        let bin = RequestHead::parse(&map(&[("grpc-x-bin", "!!")])).unwrap_err();
        assert_eq!(bin.code(), Code::Internal);
        // Whatever the order of the headers, a bad encoding wins over a bad timeout.
        let both = map(&[
            (GRPC_TIMEOUT.as_str(), "bad"),
            (GRPC_ENCODING.as_str(), "snappy"),
        ]);
        assert_eq!(
            RequestHead::parse(&both).unwrap_err().code(),
            Code::Unimplemented
        );
    }

    #[test]
    fn the_http_check_comes_first() {
        let grpc = map(&[("content-type", "application/grpc+proto")]);
        assert_eq!(check_http(&Method::POST, &grpc), Ok(()));
        assert_eq!(
            check_http(&Method::GET, &grpc),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            check_http(&Method::POST, &map(&[("content-type", "text/plain")])),
            Err(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        for refused in [
            "application/grpcfoo",
            "application/grpc+json",
            "application/grpc+",
        ] {
            assert_eq!(
                check_http(&Method::POST, &map(&[("content-type", refused)])),
                Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{refused}"
            );
        }
        let bare = map(&[("content-type", "application/grpc")]);
        assert_eq!(check_http(&Method::POST, &bare), Ok(()));
    }

    #[test]
    fn response_heads_round_trip_and_refuse() {
        let written = response_headers(Some(Encoding::Deflate), Metadata::new());
        let parsed = ResponseHead::parse(StatusCode::OK, written.headers().clone(), false);
        assert!(matches!(
            parsed,
            Ok(ResponseHead::Headers {
                encoding: Some(Encoding::Deflate),
                accept: None,
                ..
            })
        ));
        assert_eq!(
            ResponseHead::parse(
                StatusCode::SERVICE_UNAVAILABLE,
                written.headers().clone(),
                false
            )
            .unwrap_err()
            .code(),
            Code::Unavailable
        );
        assert_eq!(
            ResponseHead::parse(StatusCode::OK, HeaderMap::new(), false)
                .unwrap_err()
                .code(),
            Code::Unknown
        );
        let odd = map(&[
            ("content-type", "application/grpc"),
            (GRPC_ENCODING.as_str(), "br"),
        ]);
        assert_eq!(
            ResponseHead::parse(StatusCode::OK, odd, false)
                .unwrap_err()
                .code(),
            Code::Internal
        );
    }

    #[test]
    fn a_trailers_only_head_is_its_status_without_protocol_headers() {
        let refused = RequestHead::check(&map(&[(GRPC_ENCODING.as_str(), "snappy")]))
            .unwrap_err()
            .into_response();
        let (parts, ()) = refused.into_parts();
        let head = ResponseHead::parse(parts.status, parts.headers, true).unwrap();
        assert_eq!(head.accept(), Some(AcceptEncodings::ALL));
        let ResponseHead::TrailersOnly { status, .. } = head else {
            panic!("not Trailers-Only: {head:?}");
        };
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.metadata().get("grpc-accept-encoding").is_none());
        assert_eq!(
            ResponseHead::parse(
                StatusCode::OK,
                map(&[("content-type", "application/grpc")]),
                true
            )
            .unwrap_err()
            .code(),
            Code::Unknown,
            "Trailers-Only without grpc-status"
        );
    }

    #[test]
    fn trailers_only_holds_the_status_and_both_metadata() {
        let mut md = Metadata::new();
        md.insert("x-head", "1").unwrap();
        let mut status = Status::not_found("no such thing");
        status.metadata_mut().insert("x-tail", "2").unwrap();
        let response = trailers_only(md, status);
        let h = response.headers();
        assert_eq!(h[&GRPC_STATUS], "5");
        assert_eq!(h[&GRPC_MESSAGE], "no such thing");
        assert_eq!(
            (h["x-head"].as_bytes(), h["x-tail"].as_bytes()),
            (&b"1"[..], &b"2"[..])
        );
        assert_eq!(ok_trailers(Metadata::new())[&GRPC_STATUS], "0");
    }
}
