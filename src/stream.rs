//! Messages over an h2 stream, one pipeline per direction. Inbound: `Streaming<T>`, an h2
//! `RecvStream` feeding a `Decoder` (which checks the limit, decompresses and decodes),
//! and the sole releaser of the stream's flow-control capacity. Outbound: `Sender`,
//! which encodes and compresses each message, gathers the messages that are ready
//! together into one DATA frame, hands h2 only what the peer's window admits, and
//! watches the peer's reset and the call's deadline. `ResponseStream<T>`: what a server
//! handler returns for a streaming response.

use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::HeaderMap;

use crate::compression::{Compression, Encoding};
use crate::deadline::Deadline;
use crate::exchange::{RecvBody, SendBody};
use crate::framing::{self, Decoder};
use crate::keepalive::InFlight;
use crate::metadata::Metadata;
use crate::protocol::TextDecoder;
use crate::protocol::json::MessageJson;
use crate::status::{Code, GRPC_STATUS, Status};
use crate::telemetry::{ClientCall, Counts};

/// Default h2 flow-control window of each stream, in bytes, on both sides (h2's own
/// default is 64 KiB).
pub const DEFAULT_STREAM_WINDOW_BYTES: u32 = 1024 * 1024;
/// Default h2 flow-control window of each connection, in bytes, on both sides.
pub const DEFAULT_CONNECTION_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
/// Default budget, in bytes, for small received DATA frames held unread on one connection,
/// on both sides (h2's `data_frame_budget`; its own default is half the connection window).
/// Small frames consume it (flow control counts their payload, not what buffering each
/// one costs) until the application reads them; when it runs out, the connection is
/// closed with `ENHANCE_YOUR_CALM`. This is what a peer sending one tiny message per
/// DATA frame to a slow reader runs into; our own senders coalesce ready messages into
/// one frame. The default keeps h2's rule of half the connection window, stated here.
pub const DEFAULT_DATA_FRAME_BUDGET_BYTES: usize = DEFAULT_CONNECTION_WINDOW_BYTES as usize / 2;

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
    /// Body ended; the decoder may still hold messages (a whole Connect unary body).
    Draining,
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
    body: RecvBody,
    decoder: Decoder,
    /// A base64 body (gRPC-Web text), decoded before the decoder sees it.
    text: Option<Box<TextDecoder>>,
    last_compressed: bool,
    side: Side,
    state: State,
    trailers: Option<Metadata>,
    /// Client side: the call's deadline (the server supervises its own).
    deadline: Deadline,
    /// Client calls with a streaming request: dropping this stops the request's writer.
    _pump_guard: Option<PumpGuard>,
    /// Client side: the call counted as in flight (for keepalive) until this ends.
    _in_flight: Option<InFlight>,
    /// Client side: told the call's status when the stream ends (interceptors).
    on_end: Option<EndHook>,
    /// What the call (server) or attempt (client) counts into, when anything listens.
    counts: Option<Arc<Counts>>,
    /// Client side, streaming responses: the call's telemetry, ended with the stream.
    call: Option<Box<ClientCall>>,
    _message: PhantomData<fn() -> T>,
}

/// What keeps a client call's request messages going while its responses are read.
pub(crate) type PumpGuard = Box<dyn Send + Sync>;

/// What a client stream calls with its final status and trailers.
pub(crate) type EndHook = Box<dyn FnOnce(&Status, Option<&Metadata>) + Send>;

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl<T: prost::Message + Default> Streaming<T> {
    /// Messages are read with `decoder`, which holds the receive limit and the stream's
    /// `grpc-encoding`.
    pub(crate) fn new(body: impl Into<RecvBody>, side: Side, decoder: Decoder) -> Streaming<T> {
        Streaming {
            body: body.into(),
            decoder,
            text: None,
            last_compressed: false,
            side,
            state: State::Open,
            trailers: None,
            deadline: Deadline::none(),
            _pump_guard: None,
            _in_flight: None,
            on_end: None,
            counts: None,
            call: None,
            _message: PhantomData,
        }
    }

    /// A stream already over: a Trailers-Only response with status `OK`.
    pub(crate) fn ended(body: impl Into<RecvBody>, trailers: Metadata) -> Streaming<T> {
        let mut s = Streaming::new(body, Side::Client, Decoder::new(0, None));
        s.state = State::Done;
        s.trailers = Some(trailers);
        s
    }

    /// Whether the last message returned arrived compressed.
    pub fn last_message_compressed(&self) -> bool {
        self.last_compressed
    }

    /// The body is base64 (gRPC-Web text).
    #[inline]
    pub(crate) fn with_text(mut self, text: bool) -> Self {
        self.text = text.then(Box::default);
        self
    }

    pub(crate) fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    pub(crate) fn with_in_flight(mut self, in_flight: Option<InFlight>) -> Self {
        self._in_flight = in_flight;
        self
    }

    pub(crate) fn with_pump_guard(mut self, guard: Option<PumpGuard>) -> Self {
        self._pump_guard = guard;
        self
    }

    pub(crate) fn with_end_hook(mut self, hook: Option<EndHook>) -> Self {
        self.on_end = hook;
        self
    }

    /// Count the messages (and, on the client, tell the status) into `counts`.
    pub(crate) fn with_counts(mut self, counts: Option<Arc<Counts>>) -> Self {
        self.counts = counts;
        self
    }

    /// End `call` when this (client) stream ends.
    pub(crate) fn with_call(mut self, call: ClientCall) -> Self {
        if call.is_listened() {
            self.call = Some(Box::new(call));
        }
        self
    }

    fn ended_with(&mut self, status: &Status) {
        if let Some(hook) = self.on_end.take() {
            hook(status, self.trailers.as_ref());
        }
        self.telemetry_end(status.code());
    }

    /// Client side: the attempt and the call end with `code`.
    fn telemetry_end(&mut self, code: Code) {
        if self.side != Side::Client {
            return;
        }
        if let Some(counts) = &self.counts {
            counts.end(code);
        }
        if let Some(call) = self.call.take() {
            call.finish(code, self.counts.as_deref(), true);
        }
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
        if !matches!(self.state, State::Done) && self.deadline.poll_expired(cx).is_ready() {
            self.state = State::Done;
            self._pump_guard = None;
            let status = Status::deadline_exceeded("deadline exceeded while reading responses");
            self.ended_with(&status);
            return Poll::Ready(Err(status));
        }
        let result = ready!(self.poll_inner(cx));
        match result {
            Err(status) => {
                self.state = State::Done;
                let status = self.deadline.explain(status);
                self.ended_with(&status);
                Poll::Ready(Err(status))
            }
            Ok(None) => {
                if self.on_end.is_some() {
                    self.ended_with(&Status::ok());
                } else {
                    self.telemetry_end(Code::Ok);
                }
                Poll::Ready(Ok(None))
            }
            ok => Poll::Ready(ok),
        }
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        loop {
            match self.state {
                State::Open | State::Draining => {
                    if let Some((message, compressed)) = self.decoder.decode_message()? {
                        if let Some(counts) = &self.counts {
                            counts.received_message();
                        }
                        self.last_compressed = compressed;
                        return Poll::Ready(Ok(Some(message)));
                    }
                    if matches!(self.state, State::Draining) {
                        self.state = match self.side {
                            Side::Server => State::Done,
                            Side::Client => State::Trailers,
                        };
                        continue;
                    }
                    // The bytes taken belong to the decoder, whose buffer is bounded by
                    // the receive limit: `poll_data` hands them back to the peer's window.
                    match ready!(self.body.poll_data(cx)) {
                        Some(Ok(chunk)) => {
                            if let Some(counts) = &self.counts {
                                counts.received_data(chunk.len());
                            }
                            match &mut self.text {
                                None => self.decoder.push(chunk),
                                Some(text) => self.decoder.push(text.push(&chunk)?),
                            }
                        }
                        Some(Err(e)) => {
                            return Poll::Ready(Err(e.to_status(self.side == Side::Server)));
                        }
                        None => {
                            if let Some(text) = &self.text {
                                text.finish()?;
                            }
                            self.decoder.end()?;
                            // Only a whole body (Connect unary) still holds a message here:
                            // a prefixed stream ended on a boundary holds none.
                            self.state = if self.decoder.is_whole() {
                                State::Draining
                            } else {
                                match self.side {
                                    Side::Server => State::Done,
                                    Side::Client => State::Trailers,
                                }
                            };
                        }
                    }
                }
                State::Trailers => {
                    let trailers = match ready!(self.body.poll_trailers(cx)) {
                        Ok(t) => t.unwrap_or_default(),
                        Err(e) => return Poll::Ready(Err(e.to_status(false))),
                    };
                    self.state = State::Done;
                    let ok = trailers
                        .get(GRPC_STATUS)
                        .is_some_and(|code| Code::from_bytes(code.as_bytes()) == Code::Ok);
                    if ok {
                        // The usual end: the trailers are only metadata now (no copy).
                        self.trailers = Some(Metadata::from_headers(trailers));
                        continue;
                    }
                    // The status carries the trailers as its metadata, and so does the stream.
                    let status = Status::from_headers(trailers.clone()).unwrap_or_else(|| {
                        Status::unknown("response ended without grpc-status in its trailers")
                    });
                    self.trailers = Some(Metadata::from_headers(trailers));
                    return Poll::Ready(Err(status));
                }
                State::Done => return Poll::Ready(Ok(None)),
            }
        }
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

/// How one side encodes its messages: the send limit, the call's negotiated encoding,
/// and the sender's per-message compression choice.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    max_message_size: usize,
    encoding: Option<Encoding>,
    compression: Compression,
    /// Messages are written as JSON of this type.
    json: Option<Box<MessageJson>>,
}

impl Encoder {
    pub(crate) fn new(
        max_message_size: usize,
        encoding: Option<Encoding>,
        compression: Compression,
    ) -> Encoder {
        Encoder {
            max_message_size,
            encoding,
            compression,
            json: None,
        }
    }

    /// An encoder writing messages as JSON of `json`'s type when given.
    #[inline(always)]
    pub(crate) fn for_wire(
        max_message_size: usize,
        encoding: Option<Encoding>,
        compression: Compression,
        json: Option<MessageJson>,
    ) -> Encoder {
        Encoder {
            max_message_size,
            encoding,
            compression,
            json: json.map(Box::new),
        }
    }

    /// One Length-Prefixed-Message, compressed when the encoding and the switch say so.
    pub(crate) fn encode<M: prost::Message>(&self, message: &M) -> Result<Bytes, Status> {
        let encoding = self.compression.for_next_message(self.encoding);
        match &self.json {
            None => framing::encode_with(message, self.max_message_size, encoding),
            Some(json) => {
                let payload = self.json_payload(json, message)?;
                framing::frame_payload(&payload, self.max_message_size, encoding)
            }
        }
    }

    /// One message without a prefix, compressed whole with the call's encoding (a
    /// Connect unary body); and the encoding it was compressed with.
    pub(crate) fn encode_whole<M: prost::Message>(
        &self,
        message: &M,
    ) -> Result<(Bytes, Option<Encoding>), Status> {
        let payload = match &self.json {
            None => Bytes::from(message.encode_to_vec()),
            Some(json) => Bytes::from(self.json_payload(json, message)?),
        };
        // A small body is not worth compressing; the encoding still says what was used.
        let encoding = self.compression.for_next_message(self.encoding);
        let body = framing::whole_payload(payload, self.max_message_size, encoding)?;
        Ok((body, encoding))
    }

    fn json_payload<M: prost::Message>(
        &self,
        json: &MessageJson,
        message: &M,
    ) -> Result<Vec<u8>, Status> {
        let proto = message.encode_to_vec();
        let mut out = Vec::with_capacity(proto.len() * 2 + 2);
        json.to_json(&proto, &mut out)?;
        Ok(out)
    }
}

/// Encoded messages bound for one DATA frame. Small messages that are ready together
/// share a frame: fewer frames and writes, and no flood of tiny frames for a peer to
/// account for (h2 closes a connection that holds too many unread small frames, see
/// `data_frame_budget`). A lone message goes as it is, without a copy.
#[derive(Default)]
struct Batch {
    single: Option<Bytes>,
    joined: BytesMut,
}

impl Batch {
    fn push(&mut self, encoded: Bytes) {
        if self.joined.is_empty() && self.single.is_none() {
            self.single = Some(encoded);
            return;
        }
        if let Some(first) = self.single.take() {
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&encoded);
    }

    fn len(&self) -> usize {
        self.single.as_ref().map_or(self.joined.len(), Bytes::len)
    }

    fn is_full(&self) -> bool {
        self.len() >= COALESCE_BYTES
    }

    fn take(&mut self) -> Bytes {
        self.single
            .take()
            .unwrap_or_else(|| self.joined.split().freeze())
    }
}

/// How a [`Sender`]'s messages ended.
#[derive(Debug)]
pub(crate) enum Sent {
    /// The messages ended: with `OK`, or with the status the source yielded or an
    /// encoding failed with.
    Ended(Status),
    /// The peer reset the stream or the connection is gone, or the deadline passed with
    /// data still queued (the stream was then reset with `CANCEL`): nothing more can be sent.
    Reset,
    /// The deadline passed while waiting for the next message.
    Expired,
}

/// The outbound pipeline of one h2 stream: every message sent on a call, server or
/// client, goes through it.
pub(crate) struct Sender {
    stream: SendBody,
    encoder: Encoder,
    /// Bodies go out as base64 (gRPC-Web text).
    text: bool,
    batch: Batch,
    /// What the call or attempt counts into, when anything listens.
    counts: Option<Arc<Counts>>,
}

impl Sender {
    pub(crate) fn new(stream: impl Into<SendBody>, encoder: Encoder) -> Sender {
        Sender {
            stream: stream.into(),
            encoder,
            text: false,
            batch: Batch::default(),
            counts: None,
        }
    }

    /// Send bodies as base64 (gRPC-Web text).
    pub(crate) fn with_text(mut self, text: bool) -> Self {
        self.text = text;
        self
    }

    /// What goes on the wire for `data`: itself, or its base64 for a text body.
    #[inline]
    fn outgoing(&self, data: Bytes) -> Bytes {
        if self.text && !data.is_empty() {
            crate::protocol::encode_text(&data)
        } else {
            data
        }
    }

    /// Count the messages sent into `counts`.
    pub(crate) fn with_counts(mut self, counts: Option<Arc<Counts>>) -> Self {
        self.counts = counts;
        self
    }

    /// Count the messages sent into `counts` from now on.
    pub(crate) fn count_into(&mut self, counts: Arc<Counts>) {
        self.counts = Some(counts);
    }

    fn queue(&mut self, encoded: Bytes) {
        if let Some(counts) = &self.counts {
            counts.sent(encoded.len());
        }
        self.batch.push(encoded);
    }

    /// How this stream's messages are encoded.
    pub(crate) fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Queue an already encoded message; it leaves with the next DATA frame.
    pub(crate) fn push(&mut self, encoded: Bytes) {
        self.queue(encoded);
    }

    /// Hand h2 what is queued, whole, without waiting for the peer's window: h2 holds it
    /// and the window paces the writes. For one message the caller already held (unary
    /// calls), where waiting would only cost a poll.
    pub(crate) fn flush_whole(&mut self, end_stream: bool) -> Result<(), Status> {
        let data = self.batch.take();
        let data = self.outgoing(data);
        self.stream
            .send_data(data, end_stream)
            .map_err(Status::from)
    }

    /// End the body with `last` (a web protocol's status frame) after what is queued,
    /// handed to the carrier whole (it is small; the window paces the writes).
    pub(crate) fn send_last(&mut self, last: Bytes) {
        self.batch.push(last);
        let _ = self.flush_whole(true);
    }

    /// Send what is queued as the peer's window admits (END_STREAM with it when
    /// `end_stream`); an error when the stream was reset or the connection is gone.
    pub(crate) async fn send_queued(&mut self, end_stream: bool) -> Result<(), Status> {
        let data = self.batch.take();
        let data = self.outgoing(data);
        send_windowed(&mut self.stream, data, end_stream).await
    }

    /// Whether the peer reset the stream (or the connection is gone).
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.stream.poll_reset(cx)
    }

    /// End the stream with `trailers`.
    pub(crate) fn send_trailers(&mut self, trailers: HeaderMap) {
        let _ = self.stream.send_trailers(trailers);
    }

    /// Reset the stream with `reason`.
    pub(crate) fn reset(&mut self, reason: h2::Reason) {
        self.stream.send_reset(reason);
    }

    /// Send every message of `messages` (after anything already queued), as the peer's
    /// window admits: it waits for each next message while watching the peer's reset
    /// and `deadline`, takes every message ready at that moment (up to a DATA frame's
    /// worth), and sends them together. With `end_stream`, the end of the messages is
    /// END_STREAM on the last DATA frame (a client's requests); without, the caller sends
    /// trailers (a server's responses). A panic in the source ends it as `UNKNOWN`.
    pub(crate) async fn send_all<M, S>(
        &mut self,
        messages: Pin<&mut S>,
        deadline: &mut Deadline,
        end_stream: bool,
    ) -> Sent
    where
        M: prost::Message,
        S: Stream<Item = Result<M, Status>> + ?Sized,
    {
        self.send_each(messages, deadline, end_stream, |encoder, m: M| {
            encoder.encode(&m)
        })
        .await
    }

    /// [`Sender::send_all`] for messages encoded already (a client's request stream,
    /// encoded as it is pulled).
    pub(crate) async fn send_encoded<S>(
        &mut self,
        messages: Pin<&mut S>,
        deadline: &mut Deadline,
        end_stream: bool,
    ) -> Sent
    where
        S: Stream<Item = Result<Bytes, Status>> + ?Sized,
    {
        self.send_each(messages, deadline, end_stream, |_, encoded| Ok(encoded))
            .await
    }

    async fn send_each<M, S>(
        &mut self,
        mut messages: Pin<&mut S>,
        deadline: &mut Deadline,
        end_stream: bool,
        encode: impl Fn(&Encoder, M) -> Result<Bytes, Status>,
    ) -> Sent
    where
        S: Stream<Item = Result<M, Status>> + ?Sized,
    {
        loop {
            let mut item = None;
            if self.batch.len() == 0 {
                let stream = &mut self.stream;
                let next = supervise(
                    |cx| poll_source(messages.as_mut(), cx),
                    |cx| stream.poll_reset(cx).is_ready(),
                    deadline,
                );
                match next.await {
                    Outcome::Done(next) => item = Some(next),
                    Outcome::Reset => return Sent::Reset,
                    Outcome::Expired => return Sent::Expired,
                }
            }
            // Take every message ready now, up to a frame's worth (see `Batch`).
            let mut end = None;
            while !self.batch.is_full() {
                let next = match item.take() {
                    Some(next) => next,
                    None => {
                        match poll_fn(|cx| Poll::Ready(poll_source(messages.as_mut(), cx))).await {
                            Poll::Ready(next) => next,
                            Poll::Pending => break,
                        }
                    }
                };
                match next.map(|m| m.and_then(|m| encode(&self.encoder, m))) {
                    Some(Ok(encoded)) => self.queue(encoded),
                    Some(Err(status)) => {
                        end = Some(status);
                        break;
                    }
                    None => {
                        end = Some(Status::ok());
                        break;
                    }
                }
            }
            let last = end_stream && end.as_ref().is_some_and(Status::is_ok);
            if self.batch.len() > 0 || last {
                let data = self.batch.take();
                let data = self.outgoing(data);
                let outcome = {
                    let mut sent = std::pin::pin!(send_windowed(&mut self.stream, data, last));
                    // A reset shows up as an error of the send.
                    supervise(|cx| sent.as_mut().poll(cx), |_| false, deadline).await
                };
                match outcome {
                    Outcome::Done(Ok(())) => {}
                    Outcome::Done(Err(_)) | Outcome::Reset => return Sent::Reset,
                    Outcome::Expired => {
                        // Trailers would queue behind the unsent data: reset instead.
                        self.stream.send_reset(h2::Reason::CANCEL);
                        return Sent::Reset;
                    }
                }
            }
            if let Some(status) = end {
                return Sent::Ended(status);
            }
        }
    }
}

/// How supervised work ended.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// The work finished.
    Done(T),
    /// The peer reset the stream (or the connection is gone).
    Reset,
    /// The deadline passed first.
    Expired,
}

/// Poll `work` until it is ready, `reset` says the peer reset the stream, or the deadline
/// passes: the one loop under every wait of a call (a handler, the next message, the
/// peer's window).
pub(crate) async fn supervise<T>(
    mut work: impl FnMut(&mut Context<'_>) -> Poll<T>,
    mut reset: impl FnMut(&mut Context<'_>) -> bool,
    deadline: &mut Deadline,
) -> Outcome<T> {
    poll_fn(|cx| {
        if reset(cx) {
            return Poll::Ready(Outcome::Reset);
        }
        if let Poll::Ready(done) = work(cx) {
            return Poll::Ready(Outcome::Done(done));
        }
        deadline.poll_expired(cx).map(|()| Outcome::Expired)
    })
    .await
}

/// Poll a message source, turning a panic into an `UNKNOWN` end.
pub(crate) fn poll_source<M, S>(
    source: Pin<&mut S>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<M, Status>>>
where
    S: Stream<Item = Result<M, Status>> + ?Sized,
{
    match catch_unwind(AssertUnwindSafe(|| source.poll_next(cx))) {
        Ok(polled) => polled,
        Err(panic) => Poll::Ready(Some(Err(Status::from_panic(panic)))),
    }
}

/// Send `data` on `send`, giving h2 no more than the peer's window admits at a time, so
/// the sender waits for the peer instead of buffering. `end` sets END_STREAM on the last
/// DATA frame.
async fn send_windowed(send: &mut SendBody, mut data: Bytes, end: bool) -> Result<(), Status> {
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
