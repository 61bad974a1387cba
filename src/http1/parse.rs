//! The pure half of the HTTP/1.1 transport: request heads and request bodies, fed the bytes
//! of a connection as they arrive. Nothing here does I/O or keeps a copy of the input, so
//! the connection driver and the fuzz target run exactly the same code.
//!
//! - [`HeadScanner`] finds the end of a head without rescanning bytes it has seen, checking
//!   the size limits as it goes; only a complete head is handed to `httparse`, once.
//! - [`BodyDecoder`] walks a `Content-Length` or chunked body and says, step by step, which
//!   input bytes are body data and which are framing.

use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

use super::Limits;

/// Longest chunk-size line accepted (the size and any extensions, which are skipped).
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// Why a request head was refused, with the status to answer it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadError {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl HeadError {
    const fn new(status: StatusCode, reason: &'static str) -> Self {
        HeadError { status, reason }
    }

    const fn bad(reason: &'static str) -> Self {
        HeadError::new(StatusCode::BAD_REQUEST, reason)
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// No `Content-Length` and no `Transfer-Encoding`: no body.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head: the request itself, how its body is framed, and what the
/// connection should do after it.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: BodyKind,
    /// The client lets the connection stay open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
}

/// Finds where a head ends, across calls, in a buffer that only grows between them.
///
/// Leading empty lines (allowed before a request line) are skipped but count toward
/// `max_head_bytes`, so a stream of blank lines is refused like any oversized head.
#[derive(Debug, Default, Clone)]
pub(crate) struct HeadScanner {
    /// Index of the first byte of the request line, once a byte other than CR/LF is seen.
    start: Option<usize>,
    /// Bytes before this index hold no head end (restart point of the search).
    scanned: usize,
    /// The request line's end was seen (and its length checked).
    line_done: bool,
}

impl HeadScanner {
    /// Forget everything: the next call looks at a new request.
    pub(crate) fn reset(&mut self) {
        *self = HeadScanner::default();
    }

    /// Look at `buf`, the connection's unconsumed bytes (a prefix of it was seen by
    /// earlier calls). `Ok(Some(end))`: the head is `buf[..end]`. `Ok(None)`: more bytes
    /// are needed. `Err`: a limit was broken.
    pub(crate) fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, HeadError> {
        let start = match self.start {
            Some(start) => start,
            None => match buf[self.scanned..]
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
            {
                Some(offset) => {
                    let start = self.scanned + offset;
                    self.start = Some(start);
                    self.scanned = start;
                    start
                }
                None => {
                    self.scanned = buf.len();
                    return if buf.len() > limits.max_head_bytes {
                        Err(too_large())
                    } else {
                        Ok(None)
                    };
                }
            },
        };
        let mut i = self.scanned;
        while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
            let newline = i + offset;
            if !self.line_done {
                self.line_done = true;
                // As for a partial line (`partial`), the method first: the same answer
                // whether the line came whole or in pieces.
                check_method(&buf[start..newline])?;
                if newline - start > limits.max_request_line {
                    return Err(uri_too_long());
                }
            }
            match (buf.get(newline + 1), buf.get(newline + 2)) {
                (Some(b'\n'), _) => return self.found(newline + 2, limits),
                (Some(b'\r'), Some(b'\n')) => return self.found(newline + 3, limits),
                (None, _) | (Some(b'\r'), None) => {
                    // Not yet known whether an empty line follows: look here again.
                    self.scanned = newline;
                    return self.partial(buf, start, limits);
                }
                _ => i = newline + 1,
            }
        }
        self.scanned = buf.len();
        self.partial(buf, start, limits)
    }

    fn found(&mut self, end: usize, limits: &Limits) -> Result<Option<usize>, HeadError> {
        if end > limits.max_head_bytes {
            return Err(too_large());
        }
        Ok(Some(end))
    }

    fn partial(
        &self,
        buf: &[u8],
        start: usize,
        limits: &Limits,
    ) -> Result<Option<usize>, HeadError> {
        if !self.line_done {
            // The method is a token: bytes that cannot be one (binary, an HTTP/2 frame)
            // are refused now, not after the header-read timeout.
            check_method(&buf[start..])?;
            if buf.len() - start > limits.max_request_line {
                return Err(uri_too_long());
            }
        }
        if buf.len() > limits.max_head_bytes {
            return Err(too_large());
        }
        Ok(None)
    }
}

/// The start of a request line (up to its first space, or all of it) must be a method,
/// a token; a CR ending the line is not part of it.
fn check_method(line: &[u8]) -> Result<(), HeadError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let method = line
        .iter()
        .position(|&b| b == b' ')
        .map_or(line, |sp| &line[..sp]);
    if method.iter().all(|&b| is_tchar(b)) {
        Ok(())
    } else {
        Err(HeadError::new(
            StatusCode::BAD_REQUEST,
            "malformed request line",
        ))
    }
}

/// RFC 9110's `tchar`: what a method (a token) may hold.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn too_large() -> HeadError {
    HeadError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request header fields too large",
    )
}

fn uri_too_long() -> HeadError {
    HeadError::new(StatusCode::URI_TOO_LONG, "request line too long")
}

/// Parse a complete head (`head` ends with its empty line, as [`HeadScanner::scan`] found).
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<RequestHead, HeadError> {
    // Obsolete line folding: a field line that starts with whitespace (RFC 9112 5.2).
    if head
        .windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'))
    {
        return Err(HeadError::bad("obsolete line folding in a header"));
    }
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::bad("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many header fields",
            ));
        }
        Err(httparse::Error::Version) => {
            return Err(HeadError::new(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "unsupported HTTP version",
            ));
        }
        Err(_) => return Err(HeadError::bad("malformed request head")),
    }
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(HeadError::bad("malformed request head")),
    };
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(HeadError::bad("bad method"))?;
    let uri = target_uri(&method, request.path.unwrap_or(""))?;
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::bad("bad header name"))?;
        let value = HeaderValue::from_bytes(field.value.trim_ascii())
            .map_err(|_| HeadError::bad("bad header value"))?;
        headers.append(name, value);
    }

    let hosts = headers.get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
        return Err(HeadError::bad("a request needs exactly one Host header"));
    }
    let body = body_kind(&headers, version)?;
    let (mut close, mut keep_alive) = (false, false);
    for token in list_elements(&headers, &CONNECTION) {
        close |= token.eq_ignore_ascii_case(b"close");
        keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
    }
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive);
    let expect_continue = version == Version::HTTP_11
        && list_elements(&headers, &EXPECT).any(|e| e.eq_ignore_ascii_case(b"100-continue"));
    Ok(RequestHead {
        method,
        uri,
        version,
        headers,
        body,
        keep_alive,
        expect_continue,
    })
}

/// The request target as a URI: origin-form as is, absolute-form reduced to its path and
/// query, `*` for OPTIONS.
fn target_uri(method: &Method, target: &str) -> Result<Uri, HeadError> {
    let bad = || HeadError::bad("bad request target");
    if target == "*" && method == Method::OPTIONS {
        return Uri::try_from(target).map_err(|_| bad());
    }
    if target.starts_with('/') {
        let uri = Uri::try_from(target).map_err(|_| bad())?;
        return if uri.scheme().is_none() && uri.authority().is_none() {
            Ok(uri)
        } else {
            Err(bad())
        };
    }
    let uri = Uri::try_from(target).map_err(|_| bad())?;
    match (uri.scheme(), uri.authority()) {
        (Some(_), Some(_)) => {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            Uri::try_from(path).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// The non-empty, whitespace-trimmed elements of a comma-separated header, all lines.
fn list_elements<'a>(
    headers: &'a HeaderMap,
    name: &'a HeaderName,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

fn body_kind(headers: &HeaderMap, version: Version) -> Result<BodyKind, HeadError> {
    let has_te = headers.contains_key(TRANSFER_ENCODING);
    let has_cl = headers.contains_key(CONTENT_LENGTH);
    if has_te && has_cl {
        return Err(HeadError::bad("both Content-Length and Transfer-Encoding"));
    }
    if has_te {
        if version == Version::HTTP_10 {
            return Err(HeadError::bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let mut codings = 0;
        for coding in list_elements(headers, &TRANSFER_ENCODING) {
            if !coding.eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "unsupported transfer coding",
                ));
            }
            codings += 1;
        }
        return match codings {
            1 => Ok(BodyKind::Chunked),
            0 => Err(HeadError::bad("empty Transfer-Encoding")),
            _ => Err(HeadError::bad("chunked applied more than once")),
        };
    }
    if has_cl {
        let mut length = None;
        for value in headers.get_all(CONTENT_LENGTH) {
            for element in value.as_bytes().split(|&b| b == b',') {
                let n = parse_length(element.trim_ascii())
                    .ok_or(HeadError::bad("bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::bad("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        }
        return Ok(match length {
            Some(0) | None => BodyKind::Empty,
            Some(n) => BodyKind::Length(n),
        });
    }
    Ok(BodyKind::Empty)
}

/// `1*DIGIT` as a u64; None when empty, not digits, or too large.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyError(pub &'static str);

/// One step of [`BodyDecoder::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// The next n input bytes are body data.
    Data(usize),
    /// The next n input bytes are framing, to drop.
    Framing(usize),
    /// The body is complete; nothing of the input belongs to it.
    Done,
    /// Nothing more can be decoded: the input is used up, or data is next and the caller
    /// takes none (`max_data` 0).
    More,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Reading the hex digits of a chunk size (`digits` seen so far, `line` bytes of line).
    Size {
        size: u64,
        digits: u8,
        line: usize,
    },
    /// After the size: whitespace before an extension or the CR.
    SizeSpace {
        size: u64,
        line: usize,
    },
    /// Skipping a chunk extension up to the CR.
    Extension {
        size: u64,
        line: usize,
    },
    /// CR seen after the size line; LF next.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// After the last chunk: at the start of a trailer line (or of the final empty line).
    TrailerStart {
        total: usize,
    },
    TrailerLine {
        total: usize,
    },
    TrailerLf {
        total: usize,
    },
    EndLf,
}

/// Walks a request body's framing; see [`Decoded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyDecoder {
    Length { remaining: u64 },
    Chunked { state: Chunk, max_trailers: usize },
    Done,
}

impl BodyDecoder {
    /// The decoder for a body of this kind; trailers of a chunked body are read (and
    /// dropped) up to `max_trailers` bytes.
    pub(crate) fn new(kind: BodyKind, max_trailers: usize) -> Self {
        match kind {
            BodyKind::Empty | BodyKind::Length(0) => BodyDecoder::Done,
            BodyKind::Length(n) => BodyDecoder::Length { remaining: n },
            BodyKind::Chunked => BodyDecoder::Chunked {
                state: Chunk::Size {
                    size: 0,
                    digits: 0,
                    line: 0,
                },
                max_trailers,
            },
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyDecoder::Done)
    }

    /// Body bytes still to come when that is known (a `Content-Length` body).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length { remaining } => Some(*remaining),
            BodyDecoder::Done => Some(0),
            BodyDecoder::Chunked { .. } => None,
        }
    }

    /// Decode from the start of `input`, handing out at most `max_data` data bytes. The
    /// caller drops the bytes a step names before the next call.
    pub(crate) fn decode(&mut self, input: &[u8], max_data: usize) -> Result<Decoded, BodyError> {
        match self {
            BodyDecoder::Done => Ok(Decoded::Done),
            BodyDecoder::Length { remaining } => {
                let n = take(*remaining, input.len(), max_data);
                if n == 0 {
                    return Ok(Decoded::More);
                }
                *remaining -= n as u64;
                if *remaining == 0 {
                    *self = BodyDecoder::Done;
                }
                Ok(Decoded::Data(n))
            }
            BodyDecoder::Chunked {
                state,
                max_trailers,
            } => {
                let max_trailers = *max_trailers;
                let mut i = 0;
                loop {
                    if let Chunk::Data { remaining } = state {
                        if i > 0 {
                            return Ok(Decoded::Framing(i));
                        }
                        let n = take(*remaining, input.len(), max_data);
                        if n == 0 {
                            return Ok(Decoded::More);
                        }
                        *remaining -= n as u64;
                        if *remaining == 0 {
                            *state = Chunk::DataCr;
                        }
                        return Ok(Decoded::Data(n));
                    }
                    let Some(&byte) = input.get(i) else {
                        return Ok(if i > 0 {
                            Decoded::Framing(i)
                        } else {
                            Decoded::More
                        });
                    };
                    i += 1;
                    match step(*state, byte, max_trailers)? {
                        Some(next) => *state = next,
                        None => {
                            *self = BodyDecoder::Done;
                            return Ok(Decoded::Framing(i));
                        }
                    }
                }
            }
        }
    }
}

fn take(remaining: u64, available: usize, max: usize) -> usize {
    let n = available.min(max);
    usize::try_from(remaining).map_or(n, |r| r.min(n))
}

/// One framing byte of a chunked body: the next state, or None at the body's end.
fn step(state: Chunk, byte: u8, max_trailers: usize) -> Result<Option<Chunk>, BodyError> {
    const BAD_SIZE: BodyError = BodyError("bad chunk size");
    const BAD_LINE: BodyError = BodyError("bad chunk line ending");
    let line_check = |line: usize| {
        if line >= MAX_CHUNK_LINE {
            Err(BodyError("chunk size line too long"))
        } else {
            Ok(line + 1)
        }
    };
    let trailer_check = |total: usize| {
        if total >= max_trailers {
            Err(BodyError("chunked trailers too large"))
        } else {
            Ok(total + 1)
        }
    };
    let after_size = |size: u64| match size {
        0 => Chunk::TrailerStart { total: 0 },
        size => Chunk::Data { remaining: size },
    };
    Ok(Some(match state {
        Chunk::Size { size, digits, line } => {
            let line = line_check(line)?;
            match (byte as char).to_digit(16) {
                Some(d) => {
                    if digits >= 16 {
                        return Err(BodyError("chunk size too large"));
                    }
                    Chunk::Size {
                        size: size << 4 | u64::from(d),
                        digits: digits + 1,
                        line,
                    }
                }
                None if digits == 0 => return Err(BAD_SIZE),
                None => match byte {
                    b' ' | b'\t' => Chunk::SizeSpace { size, line },
                    b';' => Chunk::Extension { size, line },
                    b'\r' => Chunk::SizeLf { size },
                    _ => return Err(BAD_SIZE),
                },
            }
        }
        Chunk::SizeSpace { size, line } => {
            let line = line_check(line)?;
            match byte {
                b' ' | b'\t' => Chunk::SizeSpace { size, line },
                b';' => Chunk::Extension { size, line },
                b'\r' => Chunk::SizeLf { size },
                _ => return Err(BAD_SIZE),
            }
        }
        Chunk::Extension { size, line } => {
            let line = line_check(line)?;
            match byte {
                b'\r' => Chunk::SizeLf { size },
                b'\n' => return Err(BAD_LINE),
                _ => Chunk::Extension { size, line },
            }
        }
        Chunk::SizeLf { size } => match byte {
            b'\n' => after_size(size),
            _ => return Err(BAD_LINE),
        },
        // Data is handed out by `decode`, never stepped through.
        Chunk::Data { .. } => return Err(BodyError("chunk data read as framing")),
        Chunk::DataCr => match byte {
            b'\r' => Chunk::DataLf,
            _ => return Err(BodyError("missing CRLF after chunk data")),
        },
        Chunk::DataLf => match byte {
            b'\n' => Chunk::Size {
                size: 0,
                digits: 0,
                line: 0,
            },
            _ => return Err(BodyError("missing CRLF after chunk data")),
        },
        Chunk::TrailerStart { total } => {
            let total = trailer_check(total)?;
            match byte {
                b'\r' => Chunk::EndLf,
                b'\n' => return Err(BAD_LINE),
                _ => Chunk::TrailerLine { total },
            }
        }
        Chunk::TrailerLine { total } => {
            let total = trailer_check(total)?;
            match byte {
                b'\r' => Chunk::TrailerLf { total },
                b'\n' => return Err(BAD_LINE),
                _ => Chunk::TrailerLine { total },
            }
        }
        Chunk::TrailerLf { total } => match byte {
            b'\n' => Chunk::TrailerStart { total },
            _ => return Err(BAD_LINE),
        },
        Chunk::EndLf => match byte {
            b'\n' => return Ok(None),
            _ => return Err(BAD_LINE),
        },
    }))
}

/// What [`fuzz_run`] saw: the head (or why there is none) and the body.
#[derive(Debug, PartialEq)]
enum FuzzOutcome {
    /// The input ends inside the head.
    Partial,
    Refused(StatusCode),
    Request(Box<FuzzRequest>),
}

/// A head and body [`fuzz_run`] parsed.
#[derive(Debug, PartialEq)]
struct FuzzRequest {
    end: usize,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    kind: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    body: Vec<u8>,
    /// Where the body ended (None: the input ended first), or why it was refused.
    body_end: Result<Option<usize>, BodyError>,
}

/// Parse `data` as a head and its body, the way the driver does: the input arriving
/// `step` bytes at a time, the handler taking at most `max_data` body bytes at a time.
fn fuzz_run(data: &[u8], limits: &Limits, step: usize, max_data: usize) -> FuzzOutcome {
    let mut scanner = HeadScanner::default();
    let mut seen = 0;
    let end = loop {
        seen = (seen + step).min(data.len());
        match scanner.scan(&data[..seen], limits) {
            Err(e) => return FuzzOutcome::Refused(e.status),
            Ok(Some(end)) => break end,
            Ok(None) if seen == data.len() => return FuzzOutcome::Partial,
            Ok(None) => {}
        }
    };
    assert!(end <= seen && end <= limits.max_head_bytes);
    let head = match parse_head(&data[..end], limits) {
        Ok(head) => head,
        Err(e) => return FuzzOutcome::Refused(e.status),
    };
    let rest = &data[end..];
    let mut decoder = BodyDecoder::new(head.body, limits.max_head_bytes);
    let (mut body, mut pos, mut available) = (Vec::new(), 0, (seen - end).min(rest.len()));
    let body_end = loop {
        match decoder.decode(&rest[pos..available], max_data) {
            Err(e) => break Err(e),
            Ok(Decoded::Data(n)) => {
                assert!(n > 0 && n <= max_data && pos + n <= available);
                body.extend_from_slice(&rest[pos..pos + n]);
                pos += n;
            }
            Ok(Decoded::Framing(n)) => {
                assert!(n > 0 && pos + n <= available);
                pos += n;
            }
            Ok(Decoded::Done) => break Ok(Some(pos)),
            Ok(Decoded::More) if available == rest.len() => break Ok(None),
            Ok(Decoded::More) => available = (available + step).min(rest.len()),
        }
    };
    if let BodyKind::Length(n) = head.body {
        assert!(body.len() as u64 <= n);
        if let Ok(Some(_)) = body_end {
            assert_eq!(body.len() as u64, n);
        }
    }
    FuzzOutcome::Request(Box::new(FuzzRequest {
        end,
        method: head.method,
        uri: head.uri,
        version: head.version,
        headers: head.headers,
        kind: head.body,
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
        body,
        body_end,
    }))
}

/// The fuzz target's body: the first byte picks how the rest is cut up; parsing it in
/// pieces must give what parsing it whole gives, and never panic.
pub(crate) fn fuzz(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    // Small limits, so that fuzzing reaches them.
    let limits = Limits {
        max_head_bytes: 2048,
        max_request_line: 512,
        max_headers: 16,
        ..Limits::default()
    };
    let whole = fuzz_run(data, &limits, data.len().max(1), usize::MAX);
    let step = usize::from(seed & 0x0f) + 1;
    let max_data = usize::from(seed >> 4) + 1;
    let pieces = fuzz_run(data, &limits, step, max_data);
    assert_eq!(whole, pieces);
}
