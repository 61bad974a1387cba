//! Messages over an h2 stream. Inbound: `Streaming<T>`, an h2 `RecvStream` plus a
//! `Decoder`, the sole releaser of the stream's flow-control capacity. Outbound:
//! `send_data`, which hands h2 only what the peer's window admits, so a fast sender
//! waits instead of buffering without bound. `ResponseStream<T>`: what a server
//! handler returns for a streaming response.

use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use h2::{RecvStream, SendStream};
use tokio::sync::oneshot;
use tokio::time::Sleep;

use crate::compression::{self, Encoding};
use crate::framing::{self, Decoder};
use crate::metadata::Metadata;
use crate::status::Status;

/// The stream of messages a server handler returns for server-streaming and bidi calls.
/// Ending it ends the call with `OK`; yielding an `Err` ends it with that status.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Which side reads: a server reads requests (the stream just ends), a client reads
/// responses (trailers then carry the status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

enum State {
    Open,
    /// Body ended; a client now reads the trailers.
    Trailers,
    Done,
}

/// A stream of inbound messages: requests on the server, responses on the client.
///
/// Read it with [`Streaming::message`] (or as a `futures_core::Stream`). Received bytes are
/// released to h2 flow control as they are taken off the stream, so a long stream never
/// stalls; at most one partial message is buffered, and never more than the receive
/// limit. On the client, the end of the stream carries the call's status: a non-`OK`
/// status comes out of `message` as `Err`, and [`Streaming::trailers`] then holds the
/// trailer metadata.
pub struct Streaming<T> {
    body: RecvStream,
    decoder: Decoder,
    /// The stream's `grpc-encoding`, for messages with the compressed flag.
    encoding: Option<Encoding>,
    max_message_size: usize,
    last_compressed: bool,
    side: Side,
    state: State,
    trailers: Option<Metadata>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Client calls with a streaming request: dropping this stops the request pump.
    _pump_guard: Option<oneshot::Sender<()>>,
    _message: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl<T: prost::Message + Default> Streaming<T> {
    /// Messages with the compressed flag are decompressed with `encoding` (the stream's
    /// `grpc-encoding`); without one, the flag is an error.
    pub(crate) fn new(
        body: RecvStream,
        side: Side,
        max_message_size: usize,
        encoding: Option<Encoding>,
    ) -> Streaming<T> {
        Streaming {
            body,
            decoder: Decoder::new(max_message_size, encoding.is_some()),
            encoding,
            max_message_size,
            last_compressed: false,
            side,
            state: State::Open,
            trailers: None,
            deadline: None,
            _pump_guard: None,
            _message: PhantomData,
        }
    }

    /// A stream already over: a Trailers-Only response with status `OK`.
    pub(crate) fn ended(body: RecvStream, trailers: Metadata) -> Streaming<T> {
        let mut s = Streaming::new(body, Side::Client, 0, None);
        s.state = State::Done;
        s.trailers = Some(trailers);
        s
    }

    /// Whether the last message returned arrived compressed.
    pub fn last_message_compressed(&self) -> bool {
        self.last_compressed
    }

    pub(crate) fn with_deadline(mut self, deadline: Option<Pin<Box<Sleep>>>) -> Self {
        self.deadline = deadline;
        self
    }

    pub(crate) fn with_pump_guard(mut self, guard: Option<oneshot::Sender<()>>) -> Self {
        self._pump_guard = guard;
        self
    }

    /// The next message; `Ok(None)` at the end of the stream.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        poll_fn(|cx| self.poll_message(cx)).await
    }

    /// Trailer metadata, once a client has read the stream to its end.
    pub fn trailers(&self) -> Option<&Metadata> {
        self.trailers.as_ref()
    }

    /// Poll for the next message.
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        if let Some(deadline) = &mut self.deadline
            && !matches!(self.state, State::Done)
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.state = State::Done;
            self._pump_guard = None;
            return Poll::Ready(Err(Status::deadline_exceeded(
                "deadline exceeded while reading responses",
            )));
        }
        let result = ready!(self.poll_inner(cx));
        match result {
            Err(status) => {
                self.state = State::Done;
                match &self.deadline {
                    // A cancellation after the deadline is the deadline's doing.
                    Some(d) if status.code() == crate::Code::Cancelled && d.is_elapsed() => {
                        Poll::Ready(Err(Status::deadline_exceeded(format!(
                            "deadline exceeded ({})",
                            status.message()
                        ))))
                    }
                    _ => Poll::Ready(Err(status)),
                }
            }
            ok => Poll::Ready(ok),
        }
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        loop {
            match self.state {
                State::Open => {
                    if let Some(message) = self.decoder.decode()? {
                        self.last_compressed = message.compressed;
                        let payload = match self.encoding {
                            // The decoder refuses a set flag when there is no encoding.
                            Some(encoding) if message.compressed => compression::decompress(
                                encoding,
                                &message.data,
                                self.max_message_size,
                            )?,
                            _ => message.data,
                        };
                        return Poll::Ready(framing::decode_payload(payload).map(Some));
                    }
                    match ready!(self.body.poll_data(cx)) {
                        Some(Ok(chunk)) => {
                            // The bytes now belong to the decoder, whose buffer is bounded by
                            // the receive limit: hand them back to the peer's window.
                            let _ = self.body.flow_control().release_capacity(chunk.len());
                            self.decoder.push(chunk);
                        }
                        Some(Err(e)) => return Poll::Ready(Err(self.h2_error(&e))),
                        None => {
                            self.decoder.finish()?;
                            self.state = match self.side {
                                Side::Server => State::Done,
                                Side::Client => State::Trailers,
                            };
                        }
                    }
                }
                State::Trailers => {
                    let trailers = match ready!(self.body.poll_trailers(cx)) {
                        Ok(t) => t.unwrap_or_default(),
                        Err(e) => return Poll::Ready(Err(self.h2_error(&e))),
                    };
                    self.state = State::Done;
                    let status = Status::from_headers(trailers.clone()).unwrap_or_else(|| {
                        Status::unknown("response ended without grpc-status in its trailers")
                    });
                    self.trailers = Some(Metadata::from_headers(trailers));
                    if !status.is_ok() {
                        return Poll::Ready(Err(status));
                    }
                }
                State::Done => return Poll::Ready(Ok(None)),
            }
        }
    }

    fn h2_error(&self, e: &h2::Error) -> Status {
        if self.side == Side::Server && e.reason() == Some(h2::Reason::CANCEL) {
            return Status::cancelled("call cancelled by the client");
        }
        Status::from_h2(e)
    }
}

impl<T: prost::Message + Default> Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(this.poll_message(cx)) {
            Ok(Some(m)) => Poll::Ready(Some(Ok(m))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// Up to this many bytes of messages that are ready together go out in one DATA frame
/// (one frame's default maximum size).
pub(crate) const COALESCE_BYTES: usize = 16 * 1024;

/// Encoded messages bound for one DATA frame. Small messages that are ready together
/// share a frame: fewer frames and writes, and no flood of tiny frames for a peer to
/// account for (h2 closes a connection that holds too many unread small frames). A lone
/// message goes as it is, without a copy.
#[derive(Default)]
pub(crate) struct Batch {
    single: Option<Bytes>,
    joined: BytesMut,
}

impl Batch {
    /// Add one encoded message.
    pub(crate) fn push(&mut self, encoded: Bytes) {
        if self.joined.is_empty() && self.single.is_none() {
            self.single = Some(encoded);
            return;
        }
        if let Some(first) = self.single.take() {
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&encoded);
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.single.as_ref().map_or(self.joined.len(), Bytes::len)
    }

    /// Whether a frame's worth is held.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= COALESCE_BYTES
    }

    /// The bytes to send, leaving the batch empty.
    pub(crate) fn take(&mut self) -> Bytes {
        self.single
            .take()
            .unwrap_or_else(|| self.joined.split().freeze())
    }
}

/// The stream's next item if it has one ready now; `Poll::Pending` when it would wait.
pub(crate) async fn ready_now<S: Stream + Unpin + ?Sized>(stream: &mut S) -> Poll<Option<S::Item>> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *stream).poll_next(cx))).await
}

/// Send `data` on `send`, giving h2 no more than the peer's window admits at a time, so
/// the sender waits for the peer instead of buffering. `end` sets END_STREAM on the last
/// DATA frame.
pub(crate) async fn send_data(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), Status> {
    if data.is_empty() {
        return send.send_data(data, end).map_err(Status::from);
    }
    loop {
        send.reserve_capacity(data.len());
        let mut capacity = send.capacity();
        while capacity == 0 {
            capacity = match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Status::cancelled("stream closed by the peer")),
            };
        }
        if capacity >= data.len() {
            return send.send_data(data, end).map_err(Status::from);
        }
        send.send_data(data.split_to(capacity), false)?;
    }
}
