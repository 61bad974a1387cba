//! What carries one call's bytes: an h2 stream, or (for gRPC-Web and Connect) an HTTP/1.1
//! exchange. Three small enums with h2's own verbs (`poll_data`, `send_response`,
//! `send_data`, `poll_capacity`, `poll_reset`), so the call code above them (`stream.rs`,
//! `server/call.rs`) is written once; the HTTP/1.1 variants are `crate::http1`'s.
//! Protocols are not decided here: this layer moves bytes and flow control only.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;

use crate::http1;
use crate::status::Status;

/// The inbound body of one call.
pub(crate) enum RecvBody {
    H2(h2::RecvStream),
    Http1(http1::RecvBody),
    /// A body already whole: a Connect GET's message, taken from the query.
    Full(Option<Bytes>),
}

impl From<h2::RecvStream> for RecvBody {
    fn from(body: h2::RecvStream) -> RecvBody {
        RecvBody::H2(body)
    }
}

impl RecvBody {
    /// The next chunk of the body, already handed back to the peer's flow-control
    /// window (the caller's buffer is bounded by the receive limit); `None` at its end.
    #[inline]
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        match self {
            RecvBody::H2(body) => match body.poll_data(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    Poll::Ready(Some(Ok(chunk)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::H2(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            RecvBody::Http1(body) => body
                .poll_data(cx)
                .map(|chunk| chunk.map(|r| r.map_err(Error::Http1))),
            RecvBody::Full(body) => Poll::Ready(body.take().map(Ok)),
        }
    }

    /// The trailers after the body (h2 only: a gRPC client reads the status there).
    #[inline]
    pub(crate) fn poll_trailers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        match self {
            RecvBody::H2(body) => body.poll_trailers(cx).map_err(Error::H2),
            RecvBody::Http1(_) | RecvBody::Full(_) => Poll::Ready(Ok(None)),
        }
    }
}

/// The outbound body of one call's response (server) or request (client).
pub(crate) enum SendBody {
    H2(h2::SendStream<Bytes>),
    Http1(http1::SendBody),
}

impl From<h2::SendStream<Bytes>> for SendBody {
    fn from(stream: h2::SendStream<Bytes>) -> SendBody {
        SendBody::H2(stream)
    }
}

impl SendBody {
    #[inline]
    pub(crate) fn reserve_capacity(&mut self, bytes: usize) {
        match self {
            SendBody::H2(s) => s.reserve_capacity(bytes),
            SendBody::Http1(s) => s.reserve_capacity(bytes),
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        match self {
            SendBody::H2(s) => s.capacity(),
            SendBody::Http1(s) => s.capacity(),
        }
    }

    #[inline]
    pub(crate) fn poll_capacity(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<usize, Error>>> {
        match self {
            SendBody::H2(s) => s.poll_capacity(cx).map(|c| c.map(|r| r.map_err(Error::H2))),
            SendBody::Http1(s) => s
                .poll_capacity(cx)
                .map(|c| c.map(|r| r.map_err(Error::Http1))),
        }
    }

    #[inline]
    pub(crate) fn send_data(&mut self, data: Bytes, end_of_stream: bool) -> Result<(), Error> {
        match self {
            SendBody::H2(s) => s.send_data(data, end_of_stream).map_err(Error::H2),
            SendBody::Http1(s) => s.send_data(data, end_of_stream).map_err(Error::Http1),
        }
    }

    /// End the body with trailers: h2 only (every protocol HTTP/1.1 carries puts its
    /// trailers in the body).
    #[inline]
    pub(crate) fn send_trailers(&mut self, trailers: HeaderMap) -> Result<(), Error> {
        match self {
            SendBody::H2(s) => s.send_trailers(trailers).map_err(Error::H2),
            SendBody::Http1(s) => {
                s.send_reset();
                Err(Error::NoTrailers)
            }
        }
    }

    /// Ready when the peer reset the stream or the connection is gone.
    #[inline]
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            SendBody::H2(s) => s.poll_reset(cx).map(|_| ()),
            SendBody::Http1(s) => s.poll_reset(cx),
        }
    }

    /// Abandon the body: an h2 RST_STREAM, or, over HTTP/1.1, closing the connection.
    #[inline]
    pub(crate) fn send_reset(&mut self, reason: h2::Reason) {
        match self {
            SendBody::H2(s) => s.send_reset(reason),
            SendBody::Http1(s) => s.send_reset(),
        }
    }
}

/// Where a server sends its response.
pub(crate) enum Respond {
    H2(h2::server::SendResponse<Bytes>),
    Http1(http1::Respond),
}

impl From<h2::server::SendResponse<Bytes>> for Respond {
    fn from(respond: h2::server::SendResponse<Bytes>) -> Respond {
        Respond::H2(respond)
    }
}

impl Respond {
    /// Send the response head; with `end_of_stream` there is no body.
    #[inline]
    pub(crate) fn send_response(
        &mut self,
        head: http::Response<()>,
        end_of_stream: bool,
    ) -> Result<SendBody, Error> {
        match self {
            Respond::H2(r) => r
                .send_response(head, end_of_stream)
                .map(SendBody::H2)
                .map_err(Error::H2),
            Respond::Http1(r) => r
                .send_response(head, end_of_stream)
                .map(SendBody::Http1)
                .map_err(Error::Http1),
        }
    }

    /// Ready when the client reset the stream or the connection is gone.
    #[inline]
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Respond::H2(r) => r.poll_reset(cx).map(|_| ()),
            Respond::Http1(r) => r.poll_reset(cx),
        }
    }

    /// Whether the exchange is HTTP/1.1 (no trailers, no full duplex).
    #[inline]
    pub(crate) fn is_http1(&self) -> bool {
        matches!(self, Respond::Http1(_))
    }
}

/// A failure of the carrier.
#[derive(Debug)]
pub(crate) enum Error {
    H2(h2::Error),
    Http1(http1::Error),
    /// Trailers asked of an HTTP/1.1 body.
    NoTrailers,
}

impl Error {
    /// The status a call ends with when its carrier fails. On the server, a client's
    /// `CANCEL` is `CANCELLED`; otherwise h2's errors map as `Status::from_h2` says.
    pub(crate) fn to_status(&self, server: bool) -> Status {
        match self {
            Error::H2(e) if server && e.reason() == Some(h2::Reason::CANCEL) => {
                Status::cancelled("call cancelled by the client")
            }
            Error::H2(e) => Status::from_h2(e),
            Error::Http1(e) if server => Status::cancelled(format!("HTTP/1.1 request: {e}")),
            Error::Http1(e) => Status::unavailable(format!("HTTP/1.1: {e}")),
            Error::NoTrailers => Status::internal("HTTP/1.1 cannot carry trailers"),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        e.to_status(false)
    }
}
