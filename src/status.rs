//! `Code` and `Status`: the outcome of every call, its wire form (`grpc-status`,
//! `grpc-message`, `grpc-status-details-bin`) and every mapping table into it
//! (HTTP `:status`, h2 `RST_STREAM` reasons, h2 and I/O errors). The rich error details
//! (`google.rpc.Status`) are in [`details`].

pub mod details;

use std::fmt;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

use crate::metadata::{self, Metadata};
use details::{Detail, ErrorDetail};

/// `grpc-status`: the call's code, in trailers (or a Trailers-Only response).
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`: the status message, percent-encoded.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-status-details-bin`: a serialized `google.rpc.Status`.
pub const GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");

/// The 17 status codes of gRPC (`doc/statuscodes.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// Not an error.
    #[default]
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, also used for a handler that panicked.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity a client attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission.
    PermissionDenied = 7,
    /// Some resource has been exhausted (message too large, rate limit).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically due to a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// An invariant expected by the underlying system was broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request lacks valid authentication credentials.
    Unauthenticated = 16,
}

const CODES: [Code; 17] = [
    Code::Ok,
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

/// `grpc-status` values, one static header value per code (no allocation per call).
const STATUS_VALUES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

impl Code {
    /// The code for a numeric value; values outside 0..=16 are `Unknown`, as the spec requires.
    pub fn from_i32(value: i32) -> Code {
        usize::try_from(value)
            .ok()
            .and_then(|i| CODES.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// The code parsed from a `grpc-status` value; anything but a decimal number is `Unknown`.
    pub fn from_bytes(value: &[u8]) -> Code {
        if value.is_empty() || value.len() > 3 || !value.iter().all(u8::is_ascii_digit) {
            return Code::Unknown;
        }
        let n = value.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
        Code::from_i32(n)
    }

    /// The numeric value.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The canonical upper-case name, e.g. `DEADLINE_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The `grpc-status` header value for this code.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(STATUS_VALUES[self as usize])
    }

    /// The code a client reports for an HTTP `:status` when no `grpc-status` came
    /// (`doc/http-grpc-status-mapping.md`).
    pub fn from_http(status: StatusCode) -> Code {
        match status.as_u16() {
            400 | 431 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// The code for a received `RST_STREAM` (or `GOAWAY`) error code (PROTOCOL-HTTP2.md, "Errors").
    pub fn from_reason(reason: h2::Reason) -> Code {
        match reason {
            h2::Reason::REFUSED_STREAM => Code::Unavailable,
            h2::Reason::CANCEL => Code::Cancelled,
            h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
            h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
            _ => Code::Internal,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes of `grpc-message` sent percent-encoded: everything outside 0x20..=0x7E, and `%`.
const GRPC_MESSAGE_ESCAPED: &AsciiSet = &CONTROLS.add(b'%');

/// The outcome of a call: a code, a message, optional binary details and metadata
/// that travels with it (as trailers).
///
/// Small (40 bytes) so that `Result<_, Status>` stays cheap on the per-message path:
/// the rarely used details and metadata live behind one box, allocated only when set.
#[derive(Clone, Default)]
pub struct Status {
    code: Code,
    message: String,
    extra: Option<Box<Extra>>,
}

#[derive(Clone, Default)]
struct Extra {
    details: Bytes,
    metadata: Metadata,
    /// A server's response header metadata for a failing call (see `response_metadata`).
    response_metadata: Metadata,
}

static NO_METADATA: std::sync::LazyLock<Metadata> = std::sync::LazyLock::new(Metadata::new);

impl Status {
    /// A status with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// `OK`, with an empty message.
    pub fn ok() -> Status {
        Status::new(Code::Ok, "")
    }
    /// `CANCELLED`.
    pub fn cancelled(message: impl Into<String>) -> Status {
        Status::new(Code::Cancelled, message)
    }
    /// `UNKNOWN`.
    pub fn unknown(message: impl Into<String>) -> Status {
        Status::new(Code::Unknown, message)
    }
    /// `INVALID_ARGUMENT`.
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }
    /// `DEADLINE_EXCEEDED`.
    pub fn deadline_exceeded(message: impl Into<String>) -> Status {
        Status::new(Code::DeadlineExceeded, message)
    }
    /// `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(Code::NotFound, message)
    }
    /// `PERMISSION_DENIED`.
    pub fn permission_denied(message: impl Into<String>) -> Status {
        Status::new(Code::PermissionDenied, message)
    }
    /// `RESOURCE_EXHAUSTED`.
    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(Code::ResourceExhausted, message)
    }
    /// `FAILED_PRECONDITION`.
    pub fn failed_precondition(message: impl Into<String>) -> Status {
        Status::new(Code::FailedPrecondition, message)
    }
    /// `UNIMPLEMENTED`.
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }
    /// `INTERNAL`.
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }
    /// `UNAVAILABLE`.
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(Code::Unavailable, message)
    }
    /// `UNAUTHENTICATED`.
    pub fn unauthenticated(message: impl Into<String>) -> Status {
        Status::new(Code::Unauthenticated, message)
    }
    /// `ALREADY_EXISTS`.
    pub fn already_exists(message: impl Into<String>) -> Status {
        Status::new(Code::AlreadyExists, message)
    }
    /// `ABORTED`.
    pub fn aborted(message: impl Into<String>) -> Status {
        Status::new(Code::Aborted, message)
    }
    /// `OUT_OF_RANGE`.
    pub fn out_of_range(message: impl Into<String>) -> Status {
        Status::new(Code::OutOfRange, message)
    }
    /// `DATA_LOSS`.
    pub fn data_loss(message: impl Into<String>) -> Status {
        Status::new(Code::DataLoss, message)
    }

    /// The status of user code that panicked (a handler, a message stream): `UNKNOWN`,
    /// with the panic logged.
    pub(crate) fn from_panic(panic: Box<dyn std::any::Any + Send>) -> Status {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        tracing::error!(panic = %what, "handler panicked");
        Status::unknown("the handler panicked")
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }
    /// The message, already percent-decoded.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// A status with a code, a message and rich error details, sent as a
    /// `google.rpc.Status` (`grpc-status-details-bin`) with the same code and message.
    pub fn with_details(
        code: Code,
        message: impl Into<String>,
        details: impl IntoIterator<Item = ErrorDetail>,
    ) -> Status {
        let status = Status::new(code, message);
        let anys = details.into_iter().map(|d| d.to_any()).collect();
        let bytes = details::encode_rpc_status(code.as_i32(), &status.message, anys);
        status.with_details_bytes(bytes)
    }

    /// Add one rich error detail (after those already attached).
    pub fn with_detail(self, detail: impl Into<ErrorDetail>) -> Status {
        let mut anys = details::decode_anys(self.details_bytes());
        anys.push(detail.into().to_any());
        let bytes = details::encode_rpc_status(self.code.as_i32(), &self.message, anys);
        self.with_details_bytes(bytes)
    }

    /// The rich error details, typed (see [`details`] for how a received
    /// `google.rpc.Status` is checked); empty when there are none.
    pub fn details(&self) -> Vec<ErrorDetail> {
        details::decode_details(self.details_bytes())
    }

    /// The first detail of type `T`, e.g. `status.detail::<BadRequest>()`.
    pub fn detail<T: Detail>(&self) -> Option<T> {
        self.details().into_iter().find_map(T::from_detail)
    }

    /// The whole `google.rpc.Status` of the details, when there are details and they are one.
    pub fn rpc_status(&self) -> Option<details::rpc::Status> {
        use prost::Message;
        let bytes = self.details_bytes();
        (!bytes.is_empty())
            .then(|| details::rpc::Status::decode(bytes).ok())
            .flatten()
    }

    /// The binary details (`grpc-status-details-bin` without its base64), normally a
    /// `google.rpc.Status`.
    pub fn details_bytes(&self) -> &[u8] {
        self.extra.as_ref().map_or(&[], |e| &e.details)
    }

    /// Attach binary details, replacing any. Bytes that decode as a `google.rpc.Status` are
    /// sent with its code and message set to this status' own; other bytes are sent as they
    /// are (a gRPC peer ignores them).
    pub fn with_details_bytes(mut self, details: impl Into<Bytes>) -> Status {
        self.extra.get_or_insert_default().details = details.into();
        self
    }
    /// Metadata sent with the status (trailers), or received with it.
    pub fn metadata(&self) -> &Metadata {
        self.extra.as_ref().map_or(&NO_METADATA, |e| &e.metadata)
    }
    /// Mutable access to the metadata sent with the status.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.extra.get_or_insert_default().metadata
    }
    /// Response header metadata of a failing call, on the server: a handler that fails
    /// (returns this status) sets here what a successful answer would put in
    /// [`Response::metadata_mut`](crate::Response::metadata_mut). When it is not empty the
    /// server sends it as response headers, then the status as trailers (never one
    /// Trailers-Only HEADERS frame, which would fold the headers into the trailers, as
    /// grpc-go's `WriteStatus` does not). Empty on the client, where the response headers
    /// are the call's.
    pub fn response_metadata(&self) -> &Metadata {
        self.extra
            .as_ref()
            .map_or(&NO_METADATA, |e| &e.response_metadata)
    }
    /// Mutable access to the response header metadata of a failing call (see
    /// [`Status::response_metadata`]).
    pub fn response_metadata_mut(&mut self) -> &mut Metadata {
        &mut self.extra.get_or_insert_default().response_metadata
    }
    /// Take the response header metadata out of the status (empty when there is none).
    pub(crate) fn take_response_metadata(&mut self) -> Metadata {
        match &mut self.extra {
            Some(extra) => std::mem::take(&mut extra.response_metadata),
            None => Metadata::new(),
        }
    }
    /// Whether the code is `OK`.
    pub fn is_ok(&self) -> bool {
        self.code() == Code::Ok
    }

    /// Write `grpc-status`, `grpc-message` and `grpc-status-details-bin` into `headers`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(GRPC_STATUS, self.code().header_value());
        if !self.message.is_empty() {
            let encoded = encode_message(&self.message);
            if let Ok(v) = HeaderValue::from_str(&encoded) {
                headers.insert(GRPC_MESSAGE, v);
            }
        }
        let bytes = self.details_bytes();
        if !bytes.is_empty() {
            let agreed = details::agree(bytes, self.code.as_i32(), &self.message);
            headers.insert(GRPC_STATUS_DETAILS, metadata::encode_bin(&agreed));
        }
    }

    /// The headers of a status as trailers: its metadata plus the status fields.
    pub(crate) fn into_trailers(self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(2 + self.metadata().len());
        self.write_trailers(&mut headers);
        headers
    }

    /// Write the status fields and the status' metadata (custom entries only) into
    /// `headers`.
    pub(crate) fn write_trailers(self, headers: &mut HeaderMap) {
        self.write_headers(headers);
        if let Some(extra) = self.extra {
            extra.metadata.append_to(headers);
        }
    }

    /// The status carried by `headers` (trailers, or the headers of a Trailers-Only
    /// response), or `None` when they hold no `grpc-status`. The rest of the headers
    /// become the status' metadata.
    pub fn from_headers(headers: HeaderMap) -> Option<Status> {
        let code = Code::from_bytes(headers.get(GRPC_STATUS)?.as_bytes());
        let message = headers
            .get(GRPC_MESSAGE)
            .map(|v| decode_message(v.as_bytes()))
            .unwrap_or_default();
        let mut values = headers.get_all(GRPC_STATUS_DETAILS).iter();
        let (code, message, details) = match (values.next(), values.next()) {
            (Some(value), None) => details::reconcile(code, message, value.as_bytes()),
            _ => (code, message, Bytes::new()),
        };
        Some(Status {
            code,
            message,
            extra: Some(Box::new(Extra {
                details,
                metadata: Metadata::from_headers(headers),
                response_metadata: Metadata::new(),
            })),
        })
    }

    /// The status for a response whose `:status` is not 200 and that carries no `grpc-status`.
    pub fn from_http(status: StatusCode) -> Status {
        Status::new(
            Code::from_http(status),
            format!(
                "HTTP status {} received instead of a gRPC response",
                status.as_u16()
            ),
        )
    }

    /// The status of a call that failed in h2. A reset stream maps by its reason
    /// (PROTOCOL-HTTP2.md's table); a failure of the connection itself (lost, closed by
    /// the peer's GOAWAY before the call finished, or closed by us for an error of the
    /// peer's) is `UNAVAILABLE`, as grpc-go reports it: what retry policies and
    /// wait-for-ready act on.
    pub fn from_h2(err: &h2::Error) -> Status {
        if err.is_io() {
            return Status::unavailable(format!("connection lost: {err}"));
        }
        if err.is_go_away() {
            let by = if err.is_remote() { "the peer" } else { "us" };
            return Status::unavailable(format!("connection closed by {by} ({err})"));
        }
        match err.reason() {
            Some(reason) if err.is_reset() => {
                Status::new(Code::from_reason(reason), format!("stream reset: {err}"))
            }
            _ => Status::internal(format!("h2: {err}")),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Status");
        d.field("code", &self.code());
        if !self.message.is_empty() {
            d.field("message", &self.message);
        }
        if !self.details_bytes().is_empty() {
            d.field("details", &self.details());
        }
        if !self.metadata().is_empty() {
            d.field("metadata", self.metadata());
        }
        d.finish()
    }
}

/// One line, as gRPC's tools print a status: `INVALID_ARGUMENT: the name is empty`, the
/// code alone when there is no message, and the type of each detail after it:
/// `INVALID_ARGUMENT: invalid name (details: google.rpc.BadRequest)`. Line breaks in the
/// message are shown as `\n`. [`fmt::Debug`] shows every field.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code().as_str())?;
        if !self.message.is_empty() {
            f.write_str(": ")?;
            for c in self.message.chars() {
                match c {
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    c => fmt::Write::write_char(f, c)?,
                }
            }
        }
        if !self.details_bytes().is_empty() {
            let details = self.details();
            if !details.is_empty() {
                f.write_str(" (details: ")?;
                for (i, detail) in details.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    let url = detail.type_url();
                    f.write_str(url.rsplit('/').next().unwrap_or(&url))?;
                }
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Status {}

impl From<h2::Error> for Status {
    fn from(err: h2::Error) -> Status {
        Status::from_h2(&err)
    }
}

/// Percent-encode a `grpc-message` value: UTF-8 bytes outside 0x20..=0x7E, and `%`.
pub fn encode_message(message: &str) -> String {
    utf8_percent_encode(message, GRPC_MESSAGE_ESCAPED).to_string()
}

/// Percent-decode a `grpc-message` value. Malformed escapes pass through as they are, and
/// bytes that do not form UTF-8 are replaced, never an error.
pub fn decode_message(value: &[u8]) -> String {
    percent_decode(value).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_stays_small() {
        assert!(
            std::mem::size_of::<Status>() <= 40,
            "{}",
            std::mem::size_of::<Status>()
        );
    }

    #[test]
    fn display_is_one_line_as_people_read_it_and_debug_keeps_every_field() {
        let status = Status::invalid_argument("the name is empty");
        assert_eq!(status.to_string(), "INVALID_ARGUMENT: the name is empty");
        assert_eq!(Status::new(Code::Cancelled, "").to_string(), "CANCELLED");
        assert_eq!(
            Status::internal("two\nlines").to_string(),
            "INTERNAL: two\\nlines"
        );
        let detailed = Status::with_details(
            Code::InvalidArgument,
            "invalid name",
            [details::BadRequest::with_violation("name", "must not be empty").into()],
        )
        .with_detail(details::ErrorInfo::with_reason("EMPTY", "example.com"));
        assert_eq!(
            detailed.to_string(),
            "INVALID_ARGUMENT: invalid name (details: google.rpc.BadRequest, google.rpc.ErrorInfo)"
        );
        let debug = format!("{detailed:?}");
        for field in [
            "InvalidArgument",
            "invalid name",
            "BadRequest",
            "must not be empty",
            "EMPTY",
        ] {
            assert!(debug.contains(field), "{field} in {debug}");
        }
    }

    #[test]
    fn every_code_round_trips_through_its_header_value() {
        for (i, code) in CODES.iter().enumerate() {
            assert_eq!(code.as_i32(), i as i32);
            assert_eq!(Code::from_bytes(code.header_value().as_bytes()), *code);
        }
        assert_eq!(Code::from_i32(17), Code::Unknown);
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert_eq!(Code::from_bytes(b"x"), Code::Unknown);
        assert_eq!(Code::from_bytes(b""), Code::Unknown);
        assert_eq!(Code::from_bytes(b"0004"), Code::Unknown);
    }

    #[test]
    fn message_percent_encoding_round_trips_any_utf8() {
        for text in [
            "",
            "plain ascii stays",
            "100% sure",
            "tab\there\nnewline",
            "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n",
            "ünïcödé 中文 \u{7f}\u{0}",
        ] {
            let encoded = encode_message(text);
            assert!(
                encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_message(encoded.as_bytes()), text);
        }
        assert_eq!(encode_message("a%b"), "a%25b");
        assert_eq!(encode_message("☺"), "%E2%98%BA");
    }

    #[test]
    fn malformed_message_passes_through() {
        assert_eq!(decode_message(b"50%"), "50%");
        assert_eq!(decode_message(b"%zz and %4"), "%zz and %4");
        assert_eq!(decode_message(b"%FF"), "\u{fffd}");
    }

    #[test]
    fn http_status_maps_per_spec_table() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (431, Code::Internal),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (500, Code::Unknown),
            (302, Code::Unknown),
            (200, Code::Unknown),
        ];
        for (http, code) in table {
            assert_eq!(
                Code::from_http(StatusCode::from_u16(http).unwrap()),
                code,
                "{http}"
            );
        }
    }

    #[test]
    fn reset_reasons_map_per_spec_table() {
        use h2::Reason;
        assert_eq!(Code::from_reason(Reason::NO_ERROR), Code::Internal);
        assert_eq!(Code::from_reason(Reason::PROTOCOL_ERROR), Code::Internal);
        assert_eq!(Code::from_reason(Reason::INTERNAL_ERROR), Code::Internal);
        assert_eq!(
            Code::from_reason(Reason::FLOW_CONTROL_ERROR),
            Code::Internal
        );
        assert_eq!(Code::from_reason(Reason::SETTINGS_TIMEOUT), Code::Internal);
        assert_eq!(Code::from_reason(Reason::FRAME_SIZE_ERROR), Code::Internal);
        assert_eq!(Code::from_reason(Reason::REFUSED_STREAM), Code::Unavailable);
        assert_eq!(Code::from_reason(Reason::CANCEL), Code::Cancelled);
        assert_eq!(Code::from_reason(Reason::COMPRESSION_ERROR), Code::Internal);
        assert_eq!(Code::from_reason(Reason::CONNECT_ERROR), Code::Internal);
        assert_eq!(
            Code::from_reason(Reason::ENHANCE_YOUR_CALM),
            Code::ResourceExhausted
        );
        assert_eq!(
            Code::from_reason(Reason::INADEQUATE_SECURITY),
            Code::PermissionDenied
        );
        assert_eq!(Code::from_reason(Reason::HTTP_1_1_REQUIRED), Code::Internal);
    }

    #[test]
    fn status_round_trips_through_trailers() {
        let mut status = Status::new(Code::NotFound, "no such thing: ☺ 100%")
            .with_details_bytes(&b"\x00\x01\xff"[..]);
        status.metadata_mut().insert("x-extra", "yes").unwrap();
        let trailers = status.clone().into_trailers();
        assert_eq!(trailers.get("grpc-status").unwrap(), "5");
        assert_eq!(
            trailers.get("grpc-message").unwrap(),
            "no such thing: %E2%98%BA 100%25"
        );
        let back = Status::from_headers(trailers).unwrap();
        assert_eq!(back.code(), Code::NotFound);
        assert_eq!(back.message(), status.message());
        // Bytes that are no google.rpc.Status are dropped on receipt (grpc-go's rule).
        assert_eq!(back.details_bytes(), b"");
        assert_eq!(back.metadata().get("x-extra"), Some("yes"));
        assert!(Status::from_headers(HeaderMap::new()).is_none());
    }

    fn trailers_with_details(code: &str, message: &str, details: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_str(code).unwrap());
        headers.insert(GRPC_MESSAGE, HeaderValue::from_str(message).unwrap());
        headers.append(GRPC_STATUS_DETAILS, metadata::encode_bin(details));
        headers
    }

    fn rpc_status_bytes(code: i32, message: &str, details: Vec<ErrorDetail>) -> Vec<u8> {
        details::encode_rpc_status(code, message, details.iter().map(|d| d.to_any()).collect())
            .to_vec()
    }

    #[test]
    fn details_round_trip_through_trailers_typed() {
        use details::{BadRequest, ErrorInfo, RetryInfo};
        let status = Status::with_details(
            Code::InvalidArgument,
            "bad name ☺",
            [
                BadRequest::with_violation("name", "empty").into(),
                ErrorInfo::with_reason("EMPTY_NAME", "example.com").into(),
            ],
        )
        .with_detail(RetryInfo::with_delay(std::time::Duration::from_secs(3)));
        let back = Status::from_headers(status.clone().into_trailers()).unwrap();
        assert_eq!(back.code(), Code::InvalidArgument);
        assert_eq!(back.message(), "bad name ☺");
        assert_eq!(back.details(), status.details());
        assert_eq!(back.details().len(), 3);
        assert_eq!(
            back.detail::<BadRequest>().unwrap().field_violations[0].field,
            "name"
        );
        assert_eq!(
            back.detail::<RetryInfo>().unwrap().delay(),
            Some(std::time::Duration::from_secs(3))
        );
        assert!(back.detail::<details::Help>().is_none());
        let rpc = back.rpc_status().unwrap();
        assert_eq!((rpc.code, rpc.message.as_str()), (3, "bad name ☺"));
    }

    #[test]
    fn sent_details_take_the_status_code_and_message() {
        let foreign = rpc_status_bytes(5, "other", vec![details::Help::with_link("d", "u").into()]);
        let status = Status::new(Code::Aborted, "mine").with_details_bytes(foreign);
        let mut headers = HeaderMap::new();
        status.write_headers(&mut headers);
        let sent = metadata::decode_bin(headers[GRPC_STATUS_DETAILS].as_bytes()).unwrap();
        let rpc = <details::rpc::Status as prost::Message>::decode(sent.as_slice()).unwrap();
        assert_eq!((rpc.code, rpc.message.as_str()), (10, "mine"));
        assert_eq!(rpc.details.len(), 1);
    }

    #[test]
    fn received_details_with_another_code_are_internal() {
        let bytes = rpc_status_bytes(
            5,
            "not found",
            vec![details::Help::with_link("d", "u").into()],
        );
        let status = Status::from_headers(trailers_with_details("3", "bad", &bytes)).unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert!(
            status
                .message()
                .starts_with("grpc-status-details-bin mismatch: grpc-status=3"),
            "{}",
            status.message()
        );
        assert!(status.details().is_empty());
    }

    #[test]
    fn received_details_give_their_message_when_codes_agree() {
        let bytes = rpc_status_bytes(3, "from details", vec![]);
        let status =
            Status::from_headers(trailers_with_details("3", "from header", &bytes)).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "from details");
    }

    #[test]
    fn malformed_details_never_fail_the_status_silently() {
        // Not a google.rpc.Status: ignored, the header code and message stay.
        let status =
            Status::from_headers(trailers_with_details("9", "precondition", b"\xff\xff\x01"))
                .unwrap();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "precondition");
        assert!(status.details().is_empty());
        assert!(status.details_bytes().is_empty());

        // Not base64: INTERNAL naming the header.
        let mut headers = trailers_with_details("9", "precondition", b"");
        headers.insert(
            GRPC_STATUS_DETAILS,
            HeaderValue::from_static("!!not base64!!"),
        );
        let status = Status::from_headers(headers).unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert!(
            status
                .message()
                .starts_with("malformed grpc-status-details-bin"),
            "{}",
            status.message()
        );

        // Two values: neither is used.
        let bytes = rpc_status_bytes(
            9,
            "precondition",
            vec![details::Help::with_link("d", "u").into()],
        );
        let mut headers = trailers_with_details("9", "precondition", &bytes);
        headers.append(GRPC_STATUS_DETAILS, metadata::encode_bin(&bytes));
        let status = Status::from_headers(headers).unwrap();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.details().is_empty());
    }
}
