//! The connection driver ([`serve`]) and the handles of one exchange ([`RecvBody`],
//! [`Respond`], [`SendBody`]).
//!
//! The handles and the driver share one [`Shared`] per exchange behind a mutex that only
//! they take, for a moment at a time: the handles fill it (response bytes, already framed)
//! or drain it (request-body bytes) and wake the driver; the driver moves bytes between it
//! and the socket and wakes them. The call a request starts is polled by the driver, in
//! the connection's task, so a unary call costs no task and no cross-thread wake-up.
//!
//! The lock is never held while the call is polled or dropped (its handles take it).

use std::fmt::Write as _;
use std::future::{Future, poll_fn};
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use http::{StatusCode, Version, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep_until};

use super::parse::{self, BodyDecoder, BodyError, Decoded, HeadScanner, RequestHead};
use super::{Error, ErrorKind, Limits, http_date};

/// An unread request body up to this size is read and dropped after the response so the
/// connection can be kept; a larger one closes it.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// Most bytes asked of the socket by one read.
const READ_CHUNK: usize = 8 * 1024;
/// After an error response, how long (and how much) the client's remaining input is read
/// and dropped before the socket closes, so that closing with unread data (a TCP reset)
/// does not destroy the response before the client reads it.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A call started by a request, polled by the connection's driver.
pub(crate) type Call = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How the body of the response in progress is delimited, once its head is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The head is not written yet.
    Pending,
    /// No body may follow (HEAD, 1xx, 204, 304): data is dropped.
    Empty,
    /// `content-length`: the whole body was known when the head was written.
    Length,
    /// `transfer-encoding: chunked`.
    Chunked,
    /// An HTTP/1.0 client and a body of unknown length: it ends when the connection does.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Open,
    Ended,
    Failed(Error),
}

/// The state one exchange's handles share with the driver.
struct Shared {
    /// The connection's task.
    driver: Option<Waker>,

    // The request body.
    /// Bytes read ahead of the handler (at most `Limits::body_buffer`).
    body: BytesMut,
    body_state: BodyState,
    body_waker: Option<Waker>,
    expect_continue: bool,
    /// The 100-continue question is settled: answered, or moot.
    continue_sent: bool,
    /// Body bytes not yet read from the socket, when known.
    unread: Option<u64>,

    // The response.
    /// `send_response` was called.
    started: bool,
    /// A head given to `send_response` and not yet written (its framing undecided).
    head: Option<http::response::Parts>,
    framing: Framing,
    /// The end of the response is queued.
    ended: bool,
    /// Response bytes queued for the driver (framed).
    out: BytesMut,
    /// Response bytes the driver has taken and not written yet.
    unflushed: usize,
    /// Capacity asked for by `reserve_capacity` and not used by `send_data` yet.
    reserved: usize,
    capacity_waker: Option<Waker>,
    /// Set when the exchange cannot go on: the client left, a write failed, the
    /// connection closed.
    reset: Option<Error>,
    reset_wakers: [Option<Waker>; 2],
    respond_dropped: bool,
    /// `SendBody` was dropped or reset before the end of the response.
    abandoned: bool,

    // About the request.
    head_request: bool,
    version: Version,
    /// The connection closes after this exchange.
    close: bool,
    response_buffer: usize,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl Shared {
    fn new(head: &RequestHead, limits: &Limits, shutting_down: bool) -> Self {
        Shared {
            driver: None,
            body: BytesMut::new(),
            body_state: BodyState::Open,
            body_waker: None,
            expect_continue: head.expect_continue,
            continue_sent: false,
            unread: None,
            started: false,
            head: None,
            framing: Framing::Pending,
            ended: false,
            out: BytesMut::new(),
            unflushed: 0,
            reserved: 0,
            capacity_waker: None,
            reset: None,
            reset_wakers: [None, None],
            respond_dropped: false,
            abandoned: false,
            head_request: head.method == http::Method::HEAD,
            version: head.version,
            close: !head.keep_alive || shutting_down,
            response_buffer: limits.response_buffer,
        }
    }

    fn wake_driver(&self) {
        if let Some(waker) = &self.driver {
            waker.wake_by_ref();
        }
    }

    fn capacity(&self) -> usize {
        if self.ended || self.reset.is_some() {
            return 0;
        }
        let queued = self.out.len() + self.unflushed;
        self.reserved
            .min(self.response_buffer.saturating_sub(queued))
    }

    /// Mark the exchange as failed; returns the wakers to wake once the lock is released.
    fn fail(&mut self, kind: ErrorKind) -> Vec<Waker> {
        let error = *self.reset.get_or_insert(Error::new(kind));
        if self.body_state == BodyState::Open {
            self.body_state = BodyState::Failed(error);
        }
        let [a, b] = &mut self.reset_wakers;
        [
            self.body_waker.take(),
            self.capacity_waker.take(),
            a.take(),
            b.take(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Write the pending head, deciding the framing: `Some(n)` when the whole body is
    /// known to be n bytes, None when it is streamed.
    fn commit(&mut self, length: Option<usize>) {
        let Some(parts) = self.head.take() else {
            return;
        };
        let status = parts.status;
        let body_open = self.body_state == BodyState::Open;
        // The client may still be waiting for a 100 (Continue) before it sends the body,
        // or the body left is too large to drain, or of a size not known yet (chunked,
        // still coming): the connection cannot be promised for reuse. Saying keep-alive
        // there and closing after the drain limit made a client that had finished its
        // request reuse a connection being closed ("server closed idle connection").
        if body_open
            && ((self.expect_continue && !self.continue_sent)
                || self.unread.is_none_or(|n| n > DRAIN_LIMIT))
        {
            self.close = true;
        }
        let no_body = self.head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        self.framing = if no_body {
            Framing::Empty
        } else if length.is_some() {
            Framing::Length
        } else if self.version == Version::HTTP_11 {
            Framing::Chunked
        } else {
            self.close = true;
            Framing::Close
        };

        let out = &mut self.out;
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in &parts.headers {
            let framing_header = *name == header::CONTENT_LENGTH && !self.head_request;
            if framing_header || is_hop_by_hop(name) {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !parts.headers.contains_key(header::DATE) {
            let _ = write!(out, "date: {}\r\n", http_date(SystemTime::now()));
        }
        match (self.framing, length) {
            (Framing::Length, Some(n)) => {
                let _ = write!(out, "content-length: {n}\r\n");
            }
            (Framing::Chunked, _) => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        if self.close {
            out.extend_from_slice(b"connection: close\r\n");
        } else if self.version == Version::HTTP_10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Headers about the connection or the framing, which the transport writes itself.
fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name == "keep-alive"
        || name == "proxy-connection"
}

/// The body of a request, de-chunked. Like h2's `RecvStream`.
pub(crate) struct RecvBody {
    shared: Arc<Mutex<Shared>>,
}

impl RecvBody {
    /// The next piece of the body (all that was read ahead, in one `Bytes`); None at its
    /// end; an error when the client's framing was bad or the client went away.
    ///
    /// The first call answers an `Expect: 100-continue` with a 100 (Continue), unless a
    /// response was started already.
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let mut s = lock(&self.shared);
        if s.expect_continue && !s.continue_sent {
            s.continue_sent = true;
            if !s.started && s.body_state == BodyState::Open && s.body.is_empty() {
                s.out.extend_from_slice(CONTINUE);
                s.wake_driver();
            }
        }
        if !s.body.is_empty() {
            let data = s.body.split().freeze();
            // There is room again: the driver may read the socket.
            s.wake_driver();
            return Poll::Ready(Some(Ok(data)));
        }
        match s.body_state {
            BodyState::Ended => Poll::Ready(None),
            BodyState::Failed(error) => Poll::Ready(Some(Err(error))),
            BodyState::Open => {
                set_waker(&mut s.body_waker, cx);
                Poll::Pending
            }
        }
    }

    /// Whether the body is over: nothing buffered and nothing more to come.
    #[allow(dead_code)] // h2's verb, for callers that ask
    pub(crate) fn is_end_stream(&self) -> bool {
        let s = lock(&self.shared);
        s.body.is_empty() && s.body_state == BodyState::Ended
    }
}

/// Starts the response to a request. Like h2's `SendResponse`.
///
/// Dropped without a response, the client gets a 500 and the connection closes.
pub(crate) struct Respond {
    shared: Arc<Mutex<Shared>>,
}

impl Respond {
    /// Start the response with `head`; with `end_of_stream` it has no body. Its framing is
    /// decided when the head reaches the driver: no body, `content-length` when the first
    /// `send_data` ends the response before then, else `transfer-encoding: chunked`.
    ///
    /// Connection headers (`connection`, `transfer-encoding`, `content-length`, ...) in
    /// `head` are dropped: the transport writes its own. Informational statuses are refused.
    pub(crate) fn send_response(
        &mut self,
        head: http::Response<()>,
        end_of_stream: bool,
    ) -> Result<SendBody, Error> {
        let mut s = lock(&self.shared);
        if let Some(error) = s.reset {
            return Err(error);
        }
        if s.started {
            return Err(Error::new(ErrorKind::Usage("a response was sent already")));
        }
        if head.status().is_informational() {
            return Err(Error::new(ErrorKind::Usage(
                "informational responses cannot be sent",
            )));
        }
        s.started = true;
        s.head = Some(head.into_parts().0);
        if end_of_stream {
            s.commit(Some(0));
            s.ended = true;
        }
        s.wake_driver();
        drop(s);
        Ok(SendBody {
            shared: self.shared.clone(),
            ended: end_of_stream,
        })
    }

    /// Ready when the exchange cannot go on: the client closed the connection (or
    /// reading it failed) or writing to it failed. The call should stop.
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_reset(&self.shared, 0, cx)
    }
}

impl Drop for Respond {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        if !s.started {
            s.respond_dropped = true;
            s.wake_driver();
        }
    }
}

fn poll_reset(shared: &Mutex<Shared>, slot: usize, cx: &mut Context<'_>) -> Poll<()> {
    let mut s = lock(shared);
    if s.reset.is_some() {
        return Poll::Ready(());
    }
    set_waker(&mut s.reset_wakers[slot], cx);
    Poll::Pending
}

/// Sends the body of a response. Like h2's `SendStream<Bytes>`.
///
/// Dropped before the end of the response, the connection is closed (the client sees a
/// truncated response).
pub(crate) struct SendBody {
    shared: Arc<Mutex<Shared>>,
    ended: bool,
}

impl SendBody {
    /// Ask for capacity to send `n` bytes (what `capacity` will report at most).
    pub(crate) fn reserve_capacity(&mut self, n: usize) {
        let mut s = lock(&self.shared);
        s.reserved = n;
    }

    /// Bytes that can be sent now without going over the response buffer: at most what
    /// was reserved.
    pub(crate) fn capacity(&self) -> usize {
        lock(&self.shared).capacity()
    }

    /// Ready with the capacity once it is above zero; `None` after the end of the
    /// response; an error when the exchange was reset.
    pub(crate) fn poll_capacity(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<usize, Error>>> {
        let mut s = lock(&self.shared);
        if let Some(error) = s.reset {
            return Poll::Ready(Some(Err(error)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match s.capacity() {
            0 => {
                set_waker(&mut s.capacity_waker, cx);
                Poll::Pending
            }
            n => Poll::Ready(Some(Ok(n))),
        }
    }

    /// Queue `data` (taken even beyond the capacity, as h2 does); `end_of_stream` ends the
    /// response.
    pub(crate) fn send_data(&mut self, data: Bytes, end_of_stream: bool) -> Result<(), Error> {
        if self.ended {
            return Err(Error::new(ErrorKind::Usage("the response is over")));
        }
        let mut s = lock(&self.shared);
        if let Some(error) = s.reset {
            return Err(error);
        }
        if s.head.is_some() {
            s.commit(end_of_stream.then_some(data.len()));
        }
        match s.framing {
            Framing::Chunked => {
                if !data.is_empty() {
                    let _ = write!(s.out, "{:x}\r\n", data.len());
                    s.out.extend_from_slice(&data);
                    s.out.extend_from_slice(b"\r\n");
                }
                if end_of_stream {
                    s.out.extend_from_slice(b"0\r\n\r\n");
                }
            }
            Framing::Length | Framing::Close => s.out.extend_from_slice(&data),
            Framing::Empty | Framing::Pending => {}
        }
        s.reserved = s.reserved.saturating_sub(data.len());
        if end_of_stream {
            s.ended = true;
            self.ended = true;
        }
        s.wake_driver();
        Ok(())
    }

    /// Ready when the exchange cannot go on (see [`Respond::poll_reset`]).
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_reset(&self.shared, 1, cx)
    }

    /// Give up the response: the connection is closed, the client sees it cut short.
    pub(crate) fn send_reset(&mut self) {
        if !self.ended {
            self.ended = true;
            let mut s = lock(&self.shared);
            s.abandoned = true;
            s.wake_driver();
        }
    }
}

impl Drop for SendBody {
    fn drop(&mut self) {
        self.send_reset();
    }
}

/// Serve HTTP/1.x requests on `io` until the client closes, an error, the idle timeout, or
/// `shutdown` completes. After `shutdown`, an idle connection closes at once and the
/// exchange in progress finishes with `connection: close`.
///
/// Each request goes to `on_request` with its [`Respond`]. It answers at once (and returns
/// None), or returns the call, which this future polls, in its own task, while it moves
/// the request body in and the response out. The call should end once its response is
/// complete: the next request is read after both.
pub(crate) async fn serve<IO, F>(
    io: IO,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    on_request: F,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    F: FnMut(http::Request<RecvBody>, Respond) -> Option<Call>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut conn = Conn::new(io, limits, on_request);
    poll_fn(|cx| {
        if !conn.shutting_down && shutdown.as_mut().poll(cx).is_ready() {
            conn.begin_shutdown();
        }
        conn.poll(cx)
    })
    .await
}

/// The socket and its buffers.
struct Wire<IO> {
    io: IO,
    /// Bytes read and not consumed: the head being read, body bytes, pipelined requests.
    rbuf: BytesMut,
    /// Bytes to write.
    wbuf: BytesMut,
    needs_flush: bool,
    /// The read side is over (end of input or an error).
    eof: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Wire<IO> {
    /// Read at most `max` more bytes into `rbuf`.
    fn poll_read(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        let old = self.rbuf.len();
        self.rbuf.resize(old + max, 0);
        let mut buf = ReadBuf::new(&mut self.rbuf[old..]);
        let polled = Pin::new(&mut self.io).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.rbuf.truncate(old + n);
        polled.map_ok(|()| n)
    }

    /// Write `wbuf` (and flush once it is all written); true when bytes went out.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progress = false;
        while !self.wbuf.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.wbuf.advance(n);
                    self.needs_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(progress),
            }
        }
        if self.needs_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    fn written(&self) -> bool {
        self.wbuf.is_empty() && !self.needs_flush
    }
}

/// The exchange in progress.
struct Exchange {
    shared: Arc<Mutex<Shared>>,
    call: Option<Call>,
    decoder: BodyDecoder,
    /// The response is complete and the rest of the body is being read and dropped.
    draining: bool,
    drained: u64,
    drain_deadline: Option<Instant>,
}

enum State {
    /// Reading a request head.
    Head,
    /// An exchange is in progress.
    Exchange,
    /// Writing what is left, then closing.
    Closing(Closing),
}

struct Closing {
    /// Read and drop the client's input for a while after shutting down the write side.
    linger: bool,
    stage: Stage,
}

enum Stage {
    Flush { deadline: Instant },
    Shutdown { deadline: Instant },
    Linger { deadline: Instant, discarded: usize },
}

struct Conn<IO, F> {
    wire: Wire<IO>,
    limits: Limits,
    on_request: F,
    state: State,
    exchange: Option<Exchange>,
    scanner: HeadScanner,
    /// When the first byte of the head being read arrived.
    head_started: Option<Instant>,
    /// When the connection last became idle.
    idle_since: Instant,
    timer: Pin<Box<Sleep>>,
    timer_at: Instant,
    shutting_down: bool,
}

impl<IO, F> Conn<IO, F>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(http::Request<RecvBody>, Respond) -> Option<Call>,
{
    fn new(io: IO, limits: Limits, on_request: F) -> Self {
        let now = Instant::now();
        let timer_at = now + limits.idle_timeout;
        Conn {
            wire: Wire {
                io,
                rbuf: BytesMut::new(),
                wbuf: BytesMut::new(),
                needs_flush: false,
                eof: false,
            },
            limits,
            on_request,
            state: State::Head,
            exchange: None,
            scanner: HeadScanner::default(),
            head_started: None,
            idle_since: now,
            timer: Box::pin(sleep_until(timer_at)),
            timer_at,
            shutting_down: false,
        }
    }

    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        if let Some(exchange) = &self.exchange {
            let mut s = lock(&exchange.shared);
            s.close = true;
            s.wake_driver();
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if self.timer_at != deadline {
            self.timer.as_mut().reset(deadline);
            self.timer_at = deadline;
        }
        self.timer.as_mut().poll(cx)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let next = match &mut self.state {
                State::Head => self.poll_head(cx),
                State::Exchange => self.poll_exchange(cx),
                State::Closing(_) => return self.poll_closing(cx),
            };
            match next {
                Poll::Ready(next) => self.state = next,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn closing(&self, linger: bool) -> State {
        let deadline = Instant::now() + self.limits.header_read_timeout;
        State::Closing(Closing {
            linger,
            stage: Stage::Flush { deadline },
        })
    }

    /// Queue a response of our own (a short text) and close after it.
    fn error_response(&mut self, status: StatusCode, reason: &str) -> State {
        let _ = write!(
            self.wire.wbuf,
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\ndate: {}\r\n\r\n{reason}\n",
            status.as_str(),
            status.canonical_reason().unwrap_or(""),
            reason.len() + 1,
            http_date(SystemTime::now()),
        );
        self.closing(true)
    }

    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<State> {
        loop {
            if self.shutting_down {
                return Poll::Ready(self.closing(false));
            }
            if !self.wire.rbuf.is_empty() && self.head_started.is_none() {
                self.head_started = Some(Instant::now());
            }
            match self.scanner.scan(&self.wire.rbuf, &self.limits) {
                Err(e) => return Poll::Ready(self.error_response(e.status, e.reason)),
                Ok(Some(end)) => {
                    let head = self.wire.rbuf.split_to(end);
                    self.scanner.reset();
                    self.head_started = None;
                    return Poll::Ready(match parse::parse_head(&head, &self.limits) {
                        Ok(head) => self.start_exchange(head),
                        Err(e) => self.error_response(e.status, e.reason),
                    });
                }
                Ok(None) => {}
            }
            if self.wire.eof {
                return Poll::Ready(self.closing(false));
            }
            let room = (self.limits.max_head_bytes + 1)
                .saturating_sub(self.wire.rbuf.len())
                .clamp(1, READ_CHUNK);
            match self.wire.poll_read(cx, room) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => self.wire.eof = true,
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => {
                    let deadline = match self.head_started {
                        Some(started) => started + self.limits.header_read_timeout,
                        None => self.idle_since + self.limits.idle_timeout,
                    };
                    if self.poll_timer(cx, deadline).is_pending() {
                        return Poll::Pending;
                    }
                    return Poll::Ready(if self.head_started.is_some() {
                        self.error_response(StatusCode::REQUEST_TIMEOUT, "request head timed out")
                    } else {
                        self.closing(false)
                    });
                }
            }
        }
    }

    fn start_exchange(&mut self, head: RequestHead) -> State {
        let decoder = BodyDecoder::new(head.body, self.limits.max_head_bytes);
        let mut shared = Shared::new(&head, &self.limits, self.shutting_down);
        if decoder.is_done() {
            shared.body_state = BodyState::Ended;
        }
        shared.unread = decoder.remaining();
        let shared = Arc::new(Mutex::new(shared));
        let mut request = http::Request::new(RecvBody {
            shared: shared.clone(),
        });
        *request.method_mut() = head.method;
        *request.uri_mut() = head.uri;
        *request.version_mut() = head.version;
        *request.headers_mut() = head.headers;
        let respond = Respond {
            shared: shared.clone(),
        };
        let call = (self.on_request)(request, respond);
        self.exchange = Some(Exchange {
            shared,
            call,
            decoder,
            draining: false,
            drained: 0,
            drain_deadline: None,
        });
        State::Exchange
    }

    fn poll_exchange(&mut self, cx: &mut Context<'_>) -> Poll<State> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Poll::Ready(self.closing(false));
        };
        set_waker(&mut lock(&exchange.shared).driver, cx);
        loop {
            let Some(exchange) = self.exchange.as_mut() else {
                return Poll::Ready(self.closing(false));
            };
            let mut progress = false;
            if let Some(call) = exchange.call.as_mut()
                && call.as_mut().poll(cx).is_ready()
            {
                exchange.call = None;
                progress = true;
            }
            match pump_body(&mut self.wire, exchange, &self.limits, cx) {
                Ok(moved) => progress |= moved,
                Err(error) => return Poll::Ready(self.bad_body(error)),
            }
            match self.pump_response(cx) {
                Ok(moved) => progress |= moved,
                Err(_) => return Poll::Ready(self.abort(ErrorKind::WriteFailed, false, false)),
            }
            if let Some(next) = self.settle(cx) {
                return Poll::Ready(next);
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Move the queued response bytes to the socket.
    fn pump_response(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let Some(exchange) = self.exchange.as_ref() else {
            return Ok(false);
        };
        {
            let mut s = lock(&exchange.shared);
            // A head still waiting now is followed by a streamed body.
            s.commit(None);
            take_out(&mut s, &mut self.wire.wbuf);
        }
        let progress = self.wire.poll_write_out(cx)?;
        let mut s = lock(&exchange.shared);
        s.unflushed = self.wire.wbuf.len();
        if progress
            && s.capacity() > 0
            && let Some(waker) = s.capacity_waker.take()
        {
            waker.wake();
        }
        Ok(progress)
    }

    /// Decide what follows, once nothing more moves or something ended.
    fn settle(&mut self, cx: &mut Context<'_>) -> Option<State> {
        let exchange = self.exchange.as_mut()?;
        let mut s = lock(&exchange.shared);
        if s.respond_dropped && !s.started {
            s.started = true;
            s.ended = true;
            drop(s);
            let _ = self.abort(ErrorKind::Closed, true, false);
            return Some(self.error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server did not answer",
            ));
        }
        if s.abandoned {
            drop(s);
            return Some(self.abort(ErrorKind::Closed, true, false));
        }
        let complete = s.ended && s.out.is_empty() && self.wire.written();
        if !complete || exchange.call.is_some() {
            return None;
        }
        if !exchange.decoder.is_done() {
            if s.close || self.wire.eof || exchange.drained > DRAIN_LIMIT {
                drop(s);
                return Some(self.abort(ErrorKind::Closed, false, true));
            }
            if !exchange.draining {
                exchange.draining = true;
                exchange.drain_deadline = Some(Instant::now() + self.limits.header_read_timeout);
                s.body.clear();
            }
            drop(s);
            let deadline = exchange.drain_deadline?;
            if self.poll_timer(cx, deadline).is_ready() {
                return Some(self.abort(ErrorKind::Closed, false, true));
            }
            return None;
        }
        let close = s.close || self.wire.eof;
        drop(s);
        self.exchange = None;
        if close {
            return Some(self.closing(false));
        }
        self.idle_since = Instant::now();
        Some(State::Head)
    }

    /// The request body's framing is bad: a 400 if the response has not started, else the
    /// connection just closes.
    fn bad_body(&mut self, error: BodyError) -> State {
        let answer = self.exchange.as_ref().is_some_and(|exchange| {
            let mut s = lock(&exchange.shared);
            s.head = None;
            s.framing == Framing::Pending && s.out.is_empty()
        });
        let state = self.abort(ErrorKind::BadBody(error.0), false, true);
        if answer {
            self.error_response(StatusCode::BAD_REQUEST, error.0)
        } else {
            state
        }
    }

    /// End the exchange in progress: fail its handles with `kind`, drop its call, and
    /// close (after writing what it queued, with `flush`).
    fn abort(&mut self, kind: ErrorKind, flush: bool, linger: bool) -> State {
        if let Some(exchange) = self.exchange.take() {
            let wakers = {
                let mut s = lock(&exchange.shared);
                if flush {
                    take_out(&mut s, &mut self.wire.wbuf);
                }
                s.fail(kind)
            };
            for waker in wakers {
                waker.wake();
            }
            // Dropped here, without the lock: the call's handles take it.
            drop(exchange);
        }
        self.closing(linger)
    }

    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let State::Closing(closing) = &mut self.state else {
                return Poll::Ready(());
            };
            match closing.stage {
                Stage::Flush { deadline } => match self.wire.poll_write_out(cx) {
                    Err(_) => return Poll::Ready(()),
                    Ok(_) if self.wire.written() => closing.stage = Stage::Shutdown { deadline },
                    Ok(_) => return self.poll_timer(cx, deadline),
                },
                Stage::Shutdown { deadline } => {
                    match Pin::new(&mut self.wire.io).poll_shutdown(cx) {
                        Poll::Ready(Ok(())) if closing.linger && !self.wire.eof => {
                            closing.stage = Stage::Linger {
                                deadline: Instant::now() + LINGER,
                                discarded: 0,
                            };
                        }
                        Poll::Ready(_) => return Poll::Ready(()),
                        Poll::Pending => return self.poll_timer(cx, deadline),
                    }
                }
                Stage::Linger {
                    deadline,
                    ref mut discarded,
                } => {
                    self.wire.rbuf.clear();
                    match self.wire.poll_read(cx, READ_CHUNK) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Ready(Ok(n)) => {
                            *discarded += n;
                            if *discarded > LINGER_BYTES {
                                return Poll::Ready(());
                            }
                        }
                        Poll::Pending => return self.poll_timer(cx, deadline),
                    }
                }
            }
        }
    }
}

/// Move the response bytes the handles queued to the driver's write buffer.
fn take_out(s: &mut Shared, wbuf: &mut BytesMut) {
    if s.out.is_empty() {
        return;
    }
    if wbuf.is_empty() {
        mem::swap(wbuf, &mut s.out);
    } else {
        wbuf.extend_from_slice(&s.out);
        s.out.clear();
    }
}

/// Move request-body bytes from the socket to the handler's buffer (or, draining, drop
/// them), as far as its room allows; while the exchange lasts with the body complete,
/// keep reading (a little) so that the client's leaving is noticed. True when anything
/// moved.
fn pump_body<IO: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<IO>,
    exchange: &mut Exchange,
    limits: &Limits,
    cx: &mut Context<'_>,
) -> Result<bool, BodyError> {
    let mut progress = false;
    loop {
        let want_read = if exchange.decoder.is_done() {
            wire.rbuf.len() <= limits.max_head_bytes
        } else {
            let mut s = lock(&exchange.shared);
            let discard = exchange.draining || s.body_state != BodyState::Open;
            let room = if discard {
                usize::MAX
            } else {
                limits.body_buffer.saturating_sub(s.body.len())
            };
            let step = exchange.decoder.decode(&wire.rbuf, room)?;
            match step {
                Decoded::Data(n) if discard => exchange.drained += n as u64,
                Decoded::Data(n) => {
                    s.body.extend_from_slice(&wire.rbuf[..n]);
                    if let Some(waker) = s.body_waker.take() {
                        waker.wake();
                    }
                }
                _ => {}
            }
            if let Decoded::Data(n) | Decoded::Framing(n) = step {
                wire.rbuf.advance(n);
                progress = true;
                s.unread = exchange.decoder.remaining();
                if exchange.decoder.is_done() && s.body_state == BodyState::Open {
                    s.body_state = BodyState::Ended;
                    if let Some(waker) = s.body_waker.take() {
                        waker.wake();
                    }
                }
                continue;
            }
            room > 0 && !(exchange.draining && exchange.drained > DRAIN_LIMIT)
        };
        if !want_read || wire.eof {
            return Ok(progress);
        }
        match wire.poll_read(cx, READ_CHUNK) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                wire.eof = true;
                let wakers = lock(&exchange.shared).fail(ErrorKind::ClientGone);
                for waker in wakers {
                    waker.wake();
                }
                return Ok(true);
            }
            Poll::Ready(Ok(_)) => progress = true,
            Poll::Pending => return Ok(progress),
        }
    }
}
