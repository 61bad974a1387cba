//! The attempt engine: one attempt of a call up to its response head (opened again,
//! transparently, when the server refused its stream unprocessed), and a call's attempts
//! run one after another (retries) or side by side (hedging) by the method's policy
//! (gRFC A6). Every call kind goes through [`Channel::attempts`]; the kinds differ only
//! in how an attempt sends its request, the [`Body`] hook: one message sent whole, a
//! stream pumped by one attempt, or a stream replayed to each attempt.
//!
//! Below it: `retry.rs` (throttle, backoff, pushback) and `replay.rs` (the replay buffer);
//! above it: `call.rs`, which turns the committed attempt's [`Answer`] into a response.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::RecvStream;
use h2::SendStream;
use h2::client::ResponseFuture;
use http::Method;
use http::uri::PathAndQuery;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, Span};

use super::Channel;
use super::replay::{Encoded, Held, Replay, Writer as ReplayWriter};
use super::retry::{self, Pushback, RetryThrottle};
use super::service_config::{CallPolicy, HedgingPolicy, RetryPolicy};
use crate::deadline::Deadline;
use crate::headers::{RequestHead, ResponseHead};
use crate::metadata::Metadata;
use crate::status::Status;
use crate::stream::{Encoder, PumpGuard, Sender, Sent};
use crate::telemetry::{Attempts as Telemetry, Counts};

/// Attempts of a call whose stream the server refused unprocessed.
const MAX_TRANSPARENT_ATTEMPTS: u32 = 3;

/// What every attempt of a call runs with (see `Channel::options`).
pub(super) struct CallOptions<'a> {
    pub(super) deadline: Option<Instant>,
    pub(super) wait_for_ready: bool,
    pub(super) max_send: usize,
    pub(super) max_receive: usize,
    pub(super) policy: Option<&'a CallPolicy>,
    /// How each attempt is counted.
    pub(super) telemetry: Telemetry,
}

impl CallOptions<'_> {
    /// What is left of the deadline now, for `grpc-timeout`.
    pub(super) fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// A call ready to be attempted: what each attempt sends the same (the path, the
/// metadata, the request head), and its request [`Body`].
pub(super) struct Attempted<'a> {
    pub(super) path: PathAndQuery,
    pub(super) metadata: &'a Metadata,
    pub(super) head: RequestHead,
    pub(super) encoder: Encoder,
    pub(super) options: &'a CallOptions<'a>,
    pub(super) body: Body,
}

/// How an attempt sends the request: the one per-kind hook of the engine.
pub(super) enum Body {
    /// One message, encoded once and sent whole by every attempt; while the call may be
    /// retried or hedged, its bytes are held in the channel's retry buffer.
    One { message: Bytes, _held: Option<Held> },
    /// A stream of messages with no policy: the first attempt takes it and pumps it, so
    /// no other attempt can follow (not even a transparent one).
    Pumped(Mutex<Option<Encoded>>),
    /// A stream of messages replayed to every attempt from the first (gRFC A6 buffering).
    Replayed(Arc<Replay>),
}

/// What goes on sending an attempt's request after its head went out; dropping it stops
/// the sending (and so resets the stream, once the response side is gone too).
pub(super) enum Writer {
    /// The request was sent whole (or the pump is done).
    Done,
    /// The caller's messages, pumped in the call's own task: driven while the call waits
    /// ([`Writer::alongside`]), so that dropping the call drops the caller's stream at
    /// once; moved to a task of its own when the caller reads a response stream.
    Pump(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// A writer task on the replay buffer.
    Replay(ReplayWriter),
}

impl Writer {
    /// Wait for `work`, driving a pump in this task meanwhile: the server may answer
    /// (say, with an error) before it has read every request.
    pub(super) fn alongside<'a, F: Future>(
        &'a mut self,
        mut work: Pin<&'a mut F>,
    ) -> impl Future<Output = F::Output> + 'a {
        poll_fn(move |cx| {
            if let Writer::Pump(pump) = self
                && pump.as_mut().poll(cx).is_ready()
            {
                *self = Writer::Done;
            }
            work.as_mut().poll(cx)
        })
    }

    /// What keeps the request going while the caller reads a response stream: a pump
    /// moves to a task of its own (in `span`), aborted when the guard is dropped.
    pub(super) fn into_guard(self, span: &Span) -> Option<PumpGuard> {
        match self {
            Writer::Done => None,
            Writer::Pump(pump) => {
                let task = tokio::spawn(pump.instrument(span.clone()));
                Some(Box::new(AbortOnDrop(task)))
            }
            Writer::Replay(writer) => Some(Box::new(writer)),
        }
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Body {
    /// Start sending the request of the `attempt`-th attempt on `sender`; `None` when no
    /// attempt can send it any more (the call committed to another).
    fn send(&self, mut sender: Sender, attempt: u32) -> Option<Writer> {
        match self {
            Body::One { message, .. } => {
                // One message the caller already holds: h2 may queue it whole. An error
                // here shows again, with its cause, on the response.
                sender.push(message.clone());
                let _ = sender.flush_whole(true);
                Some(Writer::Done)
            }
            Body::Pumped(source) => {
                let source = source
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()?;
                Some(Writer::Pump(Box::pin(pump(sender, source))))
            }
            Body::Replayed(replay) => replay.writer(attempt, sender).map(Writer::Replay),
        }
    }

    /// The response head of `writer`'s attempt came: commit the call to it. False when
    /// the call is committed to another attempt already.
    fn commit(&self, writer: &Writer) -> bool {
        match (self, writer) {
            (Body::Replayed(replay), Writer::Replay(writer)) => replay.commit(writer),
            _ => true,
        }
    }

    /// The attempt the call committed to before any response (a stream's messages taken
    /// by the pump, or grown past the replay buffer): no other attempt may follow or count.
    fn committed(&self) -> Option<u32> {
        match self {
            Body::One { .. } => None,
            Body::Pumped(source) => source
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none()
                .then_some(0),
            Body::Replayed(replay) => replay.committed(),
        }
    }
}

/// The response of the attempt the call committed to: its head (headers, or a
/// Trailers-Only `OK`), its body, its counts, and the writer still sending its request.
pub(super) struct Answer {
    pub(super) head: ResponseHead,
    pub(super) body: RecvStream,
    pub(super) counts: Option<Arc<Counts>>,
    pub(super) writer: Writer,
}

/// How one attempt went, up to the response head.
enum Outcome {
    /// The call is committed to this attempt: its answer, or the status it ends with
    /// (a response that is not a gRPC answer: no attempt follows).
    Committed(Result<Answer, Status>),
    /// It failed before any response: the status, and the server's pushback.
    Failed(Status, Pushback),
}

impl Outcome {
    /// A failure before any response: the attempt ends with `status`.
    fn failed(status: Status, counts: &Option<Arc<Counts>>) -> Outcome {
        end(counts, &status);
        Outcome::Failed(status, Pushback::None)
    }
}

impl Channel {
    /// Send the call, retried or hedged by `policy`, up to the committed attempt's answer.
    pub(super) async fn attempts(
        &self,
        call: &Attempted<'_>,
        policy: Option<&CallPolicy>,
    ) -> Result<Answer, Status> {
        match policy {
            Some(CallPolicy::Hedging(policy)) => self.hedged(call, policy).await,
            Some(CallPolicy::Retry(policy)) => self.retried(call, Some(policy)).await,
            None => self.retried(call, None).await,
        }
    }

    /// Attempts one after another (gRFC A6 retries): a failure with a retryable code
    /// before the response headers is tried again after the backoff (or the server's
    /// pushback), up to the policy's attempts, while the channel's throttle allows and
    /// within the call's deadline (which the caller enforces over all attempts).
    async fn retried(
        &self,
        call: &Attempted<'_>,
        policy: Option<&RetryPolicy>,
    ) -> Result<Answer, Status> {
        let throttle = self.inner.throttle.as_deref();
        let mut previous = 0;
        let mut retry = 1;
        loop {
            let (status, pushback) = match self.attempt(call, previous).await {
                Outcome::Committed(answer) => {
                    if let Some(throttle) = throttle {
                        throttle.on_success();
                    }
                    return answer;
                }
                Outcome::Failed(status, pushback) => (status, pushback),
            };
            let Some(policy) = policy else {
                return Err(status);
            };
            if !policy.retryable_status_codes.contains(status.code()) {
                return Err(status);
            }
            let allowed = throttle.is_none_or(RetryThrottle::on_failure);
            // A call committed (its messages outgrew the buffer) has no further attempts.
            if previous + 1 >= policy.max_attempts || !allowed || call.body.committed().is_some() {
                return Err(status);
            }
            let wait = match pushback {
                Pushback::Stop => return Err(status),
                Pushback::Delay(delay) => {
                    retry = 1;
                    delay
                }
                Pushback::None => {
                    let wait = retry::backoff(policy, retry, crate::random::fraction());
                    retry += 1;
                    wait
                }
            };
            tracing::debug!(%status, attempt = previous + 1, ?wait, "retrying");
            tokio::time::sleep(wait).await;
            previous += 1;
        }
    }

    /// Attempts in parallel (gRFC A6 hedging): a new one every `hedgingDelay` (at once
    /// after a non-fatal failure) up to the policy's attempts; the first to get response
    /// headers wins and the others are cancelled; a fatal code ends the call at once.
    async fn hedged(&self, call: &Attempted<'_>, policy: &HedgingPolicy) -> Result<Answer, Status> {
        let throttle = self.inner.throttle.as_deref();
        let mut running = FuturesUnordered::new();
        let mut started = 0u32;
        let mut stopped = false;
        let mut next_at = Instant::now();
        let mut last = None;
        loop {
            let may_start = !stopped
                && started < policy.max_attempts
                && call.body.committed().is_none()
                && (started == 0 || throttle.is_none_or(RetryThrottle::allows_retry));
            if may_start && Instant::now() >= next_at {
                let number = started;
                running.push(async move { (number, self.attempt(call, number).await) });
                started += 1;
                next_at = Instant::now() + policy.hedging_delay;
                continue;
            }
            if running.is_empty() && !may_start {
                return Err(
                    last.unwrap_or_else(|| Status::unavailable("no hedged attempt could start"))
                );
            }
            let next_start = async {
                if may_start {
                    tokio::time::sleep_until(next_at).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                Some((number, outcome)) = running.next() => match outcome {
                    Outcome::Committed(answer) => {
                        if let Some(throttle) = throttle {
                            throttle.on_success();
                        }
                        // Dropping the others resets their streams (CANCEL).
                        return answer;
                    }
                    Outcome::Failed(status, pushback) => {
                        // Committed (the messages outgrew the buffer): only that attempt
                        // counts, and the others are being cancelled.
                        match call.body.committed() {
                            Some(winner) if winner == number => return Err(status),
                            Some(_) => continue,
                            None => {}
                        }
                        if !policy.non_fatal_status_codes.contains(status.code()) {
                            return Err(status);
                        }
                        if let Some(throttle) = throttle {
                            throttle.on_failure();
                        }
                        match pushback {
                            Pushback::Stop => stopped = true,
                            Pushback::Delay(delay) => next_at = Instant::now() + delay,
                            Pushback::None => next_at = Instant::now(),
                        }
                        last = Some(status);
                    }
                },
                () = next_start => {}
            }
        }
    }

    /// One attempt (after `previous` others) up to its response head: open a stream,
    /// start sending the request (the body's hook), read the head. A stream the server
    /// refused before processing it (RST_STREAM REFUSED_STREAM, or above the last stream
    /// id of a GOAWAY) is opened again on a live connection, transparently, as the spec
    /// allows, while the body can still be sent from the first message.
    async fn attempt(&self, call: &Attempted<'_>, previous: u32) -> Outcome {
        let mut transparent = 1;
        loop {
            let mut head = call.head;
            head.previous_attempts = previous;
            head.timeout = call.options.time_left();
            let counts = call.options.telemetry.start();
            let (response, send) = match self
                .open(
                    call.path.clone(),
                    call.metadata,
                    head,
                    call.options.wait_for_ready,
                )
                .await
            {
                Ok(opened) => opened,
                Err(status) => return Outcome::failed(status, &counts),
            };
            let sender = Sender::new(send, call.encoder.clone()).with_counts(counts.clone());
            let Some(mut writer) = call.body.send(sender, previous) else {
                return Outcome::failed(
                    Status::cancelled("the call committed to another attempt"),
                    &counts,
                );
            };
            let response = pin!(response);
            match writer.alongside(response).await {
                Ok(response) => return self.read_head(call, response, counts, writer),
                Err(e)
                    if transparent < MAX_TRANSPARENT_ATTEMPTS
                        && never_processed(&e)
                        && call.body.committed().is_none() =>
                {
                    tracing::debug!(error = %e, transparent, "stream refused before processing; sending again");
                    end(&counts, &Status::from_h2(&e));
                    transparent += 1;
                }
                Err(e) => return Outcome::failed(Status::from_h2(&e), &counts),
            }
        }
    }

    /// Open a stream: pick a READY connection and send the request headers. A
    /// connection found unusable (GOAWAY, closed) before the stream opened is reported
    /// to its subchannel and another is picked: the call never reached a server.
    async fn open(
        &self,
        path: PathAndQuery,
        metadata: &Metadata,
        head: RequestHead,
        wait_for_ready: bool,
    ) -> Result<(ResponseFuture, SendStream<Bytes>), Status> {
        let uri = http::Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.inner.scheme.clone());
            parts.authority = Some(self.inner.authority.clone());
            parts.path_and_query = Some(path);
            parts
        })
        .map_err(|e| Status::internal(format!("invalid request path: {e}")))?;
        let mut unusable = None;
        loop {
            let picked = self
                .inner
                .balancer
                .pick(wait_for_ready, unusable.as_ref())
                .await?;
            let mut send = match picked.send.clone().ready().await {
                Ok(send) => send,
                Err(e) => {
                    tracing::debug!(error = %e, "connection takes no new streams; picking again");
                    picked.sub.broken(picked.generation);
                    unusable = Some(picked);
                    continue;
                }
            };
            let mut request = http::Request::new(());
            *request.method_mut() = Method::POST;
            *request.uri_mut() = uri.clone();
            head.write(metadata, request.headers_mut());
            return send
                .send_request(request, false)
                .map_err(|e| Status::from_h2(&e));
        }
    }

    /// An attempt's response head, parsed once: Trailers-Only with an error fails the
    /// attempt (with the server's pushback); anything else commits the call to it.
    fn read_head(
        &self,
        call: &Attempted<'_>,
        response: http::Response<RecvStream>,
        counts: Option<Arc<Counts>>,
        writer: Writer,
    ) -> Outcome {
        let (parts, body) = response.into_parts();
        let end_stream = body.is_end_stream();
        let head = match ResponseHead::parse(parts.status, parts.headers, end_stream) {
            Ok(head) => head,
            Err(status) => {
                end(&counts, &status);
                return Outcome::Committed(Err(status));
            }
        };
        if let Some(accept) = head.accept() {
            self.inner.server_accepts.learn(accept);
        }
        let head = match head {
            ResponseHead::TrailersOnly { status, .. } if !status.is_ok() => {
                let pushback = retry::pushback(status.metadata().as_headers());
                end(&counts, &status);
                return Outcome::Failed(status, pushback);
            }
            head => head,
        };
        if !call.body.commit(&writer) {
            // The head of an attempt the call no longer sends on (it ends cancelled, as
            // its stream is).
            let status = Status::cancelled("the call committed to another attempt");
            end(&counts, &status);
            return Outcome::Failed(status, Pushback::None);
        }
        Outcome::Committed(Ok(Answer {
            head,
            body,
            counts,
            writer,
        }))
    }
}

/// Whether the server refused the stream before any processing: RST_STREAM
/// REFUSED_STREAM, or the remote GOAWAY error h2 gives streams above the GOAWAY's last
/// stream id. (h2 also gives that error to streams cut when such a connection closes;
/// callers retry only before any response headers, and only a few times.)
fn never_processed(err: &h2::Error) -> bool {
    if !err.is_remote() {
        return false;
    }
    err.is_go_away() || (err.is_reset() && err.reason() == Some(h2::Reason::REFUSED_STREAM))
}

/// The attempt behind `counts` ends with `status`.
fn end(counts: &Option<Arc<Counts>>, status: &Status) {
    if let Some(counts) = counts {
        counts.end(status.code());
    }
}

/// Send every message of `requests` as the server's window allows, then END_STREAM
/// (on the last DATA frame when the stream ends while messages are gathered).
async fn pump(mut sender: Sender, mut requests: Encoded) {
    // The call's deadline is watched by the caller, which drops the pump with the call.
    match sender
        .send_encoded(requests.as_mut(), &mut Deadline::none(), true)
        .await
    {
        Sent::Ended(status) if !status.is_ok() => {
            tracing::warn!(%status, "request message not sent; cancelling the call");
            sender.reset(h2::Reason::CANCEL);
        }
        Sent::Ended(_) | Sent::Reset | Sent::Expired => {}
    }
}
