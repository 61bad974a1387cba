//! The server side of HTTP/1.1 (RFC 9112), for gRPC-Web and Connect requests that arrive
//! over HTTP/1.1 on the same port as HTTP/2.
//!
//! - [`sniff`] reads the first bytes of a connection and says whether they are the HTTP/2
//!   client preface; [`Rewind`] puts those bytes back in front of the connection.
//! - [`serve`] runs one HTTP/1.x connection: it reads request heads, hands each request to
//!   a callback as an [`http::Request<RecvBody>`] and a [`Respond`], and moves the body
//!   bytes both ways while polling the call the callback returned, in its own task.
//! - [`RecvBody`], [`Respond`] and [`SendBody`] mirror h2's server types
//!   (`RecvStream`, `SendResponse`, `SendStream`), so a caller can hold either.
//! - `parse`: the pure, incremental request-head and body parser, shared with the fuzz
//!   target.
//!
//! One request at a time per connection; requests the client pipelined are kept and
//! answered in order. Memory is bounded by [`Limits`] whatever the client sends.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

mod parse;
mod server;
#[cfg(test)]
mod tests;

// Used by the protocol layer once it is wired in.
pub(crate) use server::{RecvBody, Respond, SendBody, serve};

/// The limits of an HTTP/1.1 connection.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Largest request head (request line and header fields): 431 past it. 16 KiB.
    pub max_head_bytes: usize,
    /// Longest request line: 414 past it. 8 KiB.
    pub max_request_line: usize,
    /// Most header fields in a head: 431 past it. 100.
    pub max_headers: usize,
    /// From the first byte of a request to the end of its head: 408 and close past it.
    /// 10 s.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request before it is closed
    /// without a response. 60 s.
    pub idle_timeout: Duration,
    /// Request-body bytes read ahead of the handler; past it the socket is not read until
    /// the handler takes some. 64 KiB.
    pub body_buffer: usize,
    /// Response bytes queued for the socket before [`SendBody`] reports no capacity.
    /// 64 KiB.
    pub response_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_request_line: 8 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_buffer: 64 * 1024,
            response_buffer: 64 * 1024,
        }
    }
}

/// What went wrong with an HTTP/1.1 exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The request body's framing was invalid (bad chunk size, missing CRLF, ...).
    BadBody(&'static str),
    /// The client closed its side of the connection (or reading it failed) during the
    /// exchange.
    ClientGone,
    /// Writing to the client failed.
    WriteFailed,
    /// The connection was closed by the server (shutdown, a broken response, an error).
    Closed,
    /// The API was misused: a second response, data after the end, an informational head.
    Usage(&'static str),
}

/// An error of an HTTP/1.1 exchange; [`Error::kind`] says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Error {
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }

    /// What went wrong.
    #[allow(dead_code)] // what went wrong, for tests and logs
    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::BadBody(why) => write!(f, "invalid request body: {why}"),
            ErrorKind::ClientGone => f.write_str("the client closed the connection"),
            ErrorKind::WriteFailed => f.write_str("writing to the client failed"),
            ErrorKind::Closed => f.write_str("the connection was closed"),
            ErrorKind::Usage(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

/// The HTTP/2 client connection preface (RFC 9113 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// They are the HTTP/2 client preface.
    Http2,
    /// They are not (or the connection ended first): HTTP/1.x.
    Http1,
}

/// Read the first bytes of `io` until they decide between HTTP/2 and HTTP/1.x: all 24
/// bytes of the HTTP/2 preface, or the first byte that differs from it (or end of input).
/// Never reads past the preface. Returns the verdict and the bytes read, to put back with
/// [`Rewind`].
pub(crate) async fn sniff<IO: AsyncRead + Unpin>(io: &mut IO) -> io::Result<(Sniffed, Bytes)> {
    let mut buf = [0u8; PREFACE.len()];
    let mut filled = 0;
    while filled < buf.len() {
        let n = poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut buf[filled..]);
            Pin::new(&mut *io)
                .poll_read(cx, &mut read)
                .map_ok(|()| read.filled().len())
        })
        .await?;
        if n == 0 {
            return Ok((Sniffed::Http1, Bytes::copy_from_slice(&buf[..filled])));
        }
        filled += n;
        if buf[..filled] != PREFACE[..filled] {
            return Ok((Sniffed::Http1, Bytes::copy_from_slice(&buf[..filled])));
        }
    }
    Ok((Sniffed::Http2, Bytes::copy_from_slice(&buf)))
}

/// `io` with `prefix` read first: for handing the sniffed bytes back to a protocol
/// implementation. Writes, flushes and shutdown go straight to `io`.
#[derive(Debug)]
pub(crate) struct Rewind<IO> {
    prefix: Bytes,
    io: IO,
}

impl<IO> Rewind<IO> {
    pub(crate) fn new(prefix: Bytes, io: IO) -> Self {
        Rewind { prefix, io }
    }

    /// The wrapped connection (any prefix not read yet is lost).
    #[allow(dead_code)] // the transport back, for tests
    pub(crate) fn into_inner(self) -> IO {
        self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// `now` as an HTTP date (IMF-fixdate, RFC 9110 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(now: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar), counting
    // in 400-year eras that start on March 1st.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Fuzzing entry: run the request parser over `data` (see `fuzz/fuzz_targets/http1_request.rs`).
pub(crate) fn fuzz_request(data: &[u8]) {
    parse::fuzz(data)
}
