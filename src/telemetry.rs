//! Call telemetry: a `tracing` span per call on both sides, and (feature `metrics`) the
//! per-call and per-attempt metrics of gRFC A66 through the `metrics` facade. The one place
//! that knows the span names, field names, metric names, units and labels.
//!
//! Spans are at DEBUG: `grpc.server.call` (fields `service`, `method`, `peer`) and
//! `grpc.client.call` (`method`, `target`), each recording `grpc.status`, `duration` and,
//! for streams, `messages_sent` / `messages_received` when the call ends, with a DEBUG event
//! then. With no subscriber at DEBUG a call builds no span and counts nothing.
//!
//! Metrics (feature `metrics`) are recorded once a program has called
//! [`record_metrics`]`(true)`, after installing its `metrics` recorder (an exporter such as
//! `metrics-exporter-prometheus`, or an OpenTelemetry bridge):
//!
//! | metric | kind | unit | labels |
//! |---|---|---|---|
//! | `grpc.client.attempt.started` | counter | `{attempt}` | `grpc.method`, `grpc.target` |
//! | `grpc.client.attempt.duration` | histogram | seconds | `grpc.method`, `grpc.target`, `grpc.status` |
//! | `grpc.client.attempt.sent_total_compressed_message_size` | histogram | bytes | `grpc.method`, `grpc.target`, `grpc.status` |
//! | `grpc.client.attempt.rcvd_total_compressed_message_size` | histogram | bytes | `grpc.method`, `grpc.target`, `grpc.status` |
//! | `grpc.client.call.duration` | histogram | seconds | `grpc.method`, `grpc.target`, `grpc.status` |
//! | `grpc.server.call.started` | counter | `{call}` | `grpc.method` |
//! | `grpc.server.call.duration` | histogram | seconds | `grpc.method`, `grpc.status` |
//! | `grpc.server.call.sent_total_compressed_message_size` | histogram | bytes | `grpc.method`, `grpc.status` |
//! | `grpc.server.call.rcvd_total_compressed_message_size` | histogram | bytes | `grpc.method`, `grpc.status` |
//!
//! Sizes are the messages' payloads as sent (compressed when they were), without the 5-byte
//! prefix. On the server, a method the generated code did not name (see
//! [`crate::server::Call::named`]) and a call refused before routing carry `grpc.method`
//! `"other"` (A66: unregistered names must not grow the label set). On the client, every
//! attempt (retries, hedges and transparent retries included) is one attempt metric, the
//! call one call metric; an attempt that ends without a status of its own (cancelled as a
//! hedge lost, or with its call) is `CANCELLED`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::Span;

use crate::peer::Peer;
use crate::status::Code;

/// The `grpc.method` of calls to methods the server does not name.
pub const OTHER_METHOD: &str = "other";

/// Length of a message's prefix (flag and length), left out of the sizes.
const PREFIX_BYTES: u64 = 5;
/// `Counts::code` before the call has a status.
const NO_CODE: u8 = u8::MAX;

#[cfg(feature = "metrics")]
static RECORDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Start (`true`) or stop recording the A66 metrics through the `metrics` crate's recorder.
/// Install the recorder first; the metrics are described to it (units and help text) when
/// recording starts. Off by default: a program that never calls this pays nothing per call.
#[cfg(feature = "metrics")]
pub fn record_metrics(on: bool) {
    RECORDING.store(on, Ordering::Relaxed);
    if on {
        metrics_impl::describe();
    }
}

/// Start (`true`) or stop recording the A66 metrics: with the feature `metrics`.
///
/// This documentation was built without the feature, so this is a placeholder: build with
/// `--features metrics` (or `--all-features`, as docs.rs does) to call it.
#[cfg(all(doc, not(feature = "metrics")))]
pub fn record_metrics(_on: bool) {}

/// Whether the metrics are being recorded (see [`record_metrics`]).
#[inline]
pub fn is_recording_metrics() -> bool {
    #[cfg(feature = "metrics")]
    {
        RECORDING.load(Ordering::Relaxed)
    }
    #[cfg(not(feature = "metrics"))]
    {
        false
    }
}

/// What one call (server) or attempt (client) carried, counted by the stream pipelines:
/// bytes as framed and messages, each way, and the status. Shared by the pipelines of the
/// call; atomics, so counting takes no lock. On the client it is one attempt, and records
/// the attempt's metrics when the last pipeline lets go of it.
pub(crate) struct Counts {
    start: Instant,
    /// Nanoseconds from `start` to the status, once it is known.
    ended_after: AtomicU64,
    code: AtomicU8,
    sent_bytes: AtomicU64,
    sent_messages: AtomicU64,
    received_bytes: AtomicU64,
    received_messages: AtomicU64,
    /// Client attempts with metrics on: the labels their metrics carry.
    attempt: Option<Arc<ClientLabels>>,
}

impl Counts {
    fn new(start: Instant, attempt: Option<Arc<ClientLabels>>) -> Counts {
        Counts {
            start,
            ended_after: AtomicU64::new(0),
            code: AtomicU8::new(NO_CODE),
            sent_bytes: AtomicU64::new(0),
            sent_messages: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            received_messages: AtomicU64::new(0),
            attempt,
        }
    }

    /// One message sent, `framed` bytes with its prefix.
    #[inline]
    pub(crate) fn sent(&self, framed: usize) {
        self.sent_bytes.fetch_add(framed as u64, Ordering::Relaxed);
        self.sent_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// `bytes` of message data received (prefixes included).
    #[inline]
    pub(crate) fn received_data(&self, bytes: usize) {
        self.received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// One whole message received.
    #[inline]
    pub(crate) fn received_message(&self) {
        self.received_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// The status; the first one set is kept. A client attempt records its metrics then.
    pub(crate) fn end(&self, code: Code) {
        if self.code.load(Ordering::Acquire) != NO_CODE {
            return;
        }
        // The time before the code: whoever sees the code sees its time.
        let after = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.ended_after.store(after, Ordering::Relaxed);
        let set =
            self.code
                .compare_exchange(NO_CODE, code as u8, Ordering::AcqRel, Ordering::Relaxed);
        if let (Ok(_), Some(_labels)) = (set, &self.attempt) {
            #[cfg(feature = "metrics")]
            metrics_impl::attempt_ended(_labels, self);
        }
    }

    /// The status, `CANCELLED` when none was set (the stream was dropped or reset).
    fn code(&self) -> Code {
        match self.code.load(Ordering::Acquire) {
            NO_CODE => Code::Cancelled,
            code => Code::from_i32(i32::from(code)),
        }
    }

    /// From the start to the status (or to now, without one).
    fn duration(&self) -> Duration {
        match self.code.load(Ordering::Acquire) {
            NO_CODE => self.start.elapsed(),
            _ => Duration::from_nanos(self.ended_after.load(Ordering::Relaxed)),
        }
    }

    fn messages_sent(&self) -> u64 {
        self.sent_messages.load(Ordering::Relaxed)
    }

    fn messages_received(&self) -> u64 {
        self.received_messages.load(Ordering::Relaxed)
    }

    /// Payload bytes sent: framed bytes less the prefixes.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn payload_sent(&self) -> u64 {
        let framed = self.sent_bytes.load(Ordering::Relaxed);
        framed.saturating_sub(PREFIX_BYTES * self.messages_sent())
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn payload_received(&self) -> u64 {
        let framed = self.received_bytes.load(Ordering::Relaxed);
        framed.saturating_sub(PREFIX_BYTES * self.messages_received())
    }
}

impl Drop for Counts {
    fn drop(&mut self) {
        // A client attempt that ended without a status (a hedge that lost, a call dropped
        // or past its deadline): all its pipelines are gone; it was cancelled.
        if self.attempt.is_some() && self.code.load(Ordering::Relaxed) == NO_CODE {
            self.end(Code::Cancelled);
        }
    }
}

/// One call on the server: when anything listens (a subscriber at DEBUG, or metrics), its
/// span, counts and method; else nothing but a null pointer carried with the call.
pub(crate) struct ServerCall(Option<Box<ListenedCall>>);

struct ListenedCall {
    span: Span,
    counts: Arc<Counts>,
    /// `grpc.method`: the full name when the service named the method, else `"other"`.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    method: &'static str,
}

impl ServerCall {
    /// A call to `service`/`method` from `peer` begins (its request headers are read).
    #[inline]
    pub(crate) fn start(service: &'static str, method: &str, peer: &Peer) -> ServerCall {
        if !debug_enabled() && !is_recording_metrics() {
            return ServerCall(None);
        }
        ServerCall::start_listened(service, method, peer)
    }

    #[cold]
    fn start_listened(service: &'static str, method: &str, peer: &Peer) -> ServerCall {
        let span = tracing::debug_span!(
            "grpc.server.call",
            service,
            method,
            peer = tracing::field::Empty,
            grpc.status = tracing::field::Empty,
            duration = tracing::field::Empty,
            messages_sent = tracing::field::Empty,
            messages_received = tracing::field::Empty,
        );
        if span.is_disabled() && !is_recording_metrics() {
            return ServerCall(None);
        }
        if let Some(addr) = peer.addr() {
            span.record("peer", tracing::field::display(addr));
        }
        ServerCall(Some(Box::new(ListenedCall {
            span,
            counts: Arc::new(Counts::new(Instant::now(), None)),
            method: OTHER_METHOD,
        })))
    }

    /// The method's full name (`package.Service/Method`), for the metrics' `grpc.method`.
    pub(crate) fn name(&mut self, full_method: &'static str) {
        if let Some(call) = &mut self.0 {
            call.method = full_method;
        }
    }

    /// The call runs: count it as started, under its method's name.
    pub(crate) fn begin(&self) {
        #[cfg(feature = "metrics")]
        if let Some(call) = &self.0
            && is_recording_metrics()
        {
            metrics_impl::server_call_started(call.method);
        }
    }

    /// The span the call runs in, when it is on.
    pub(crate) fn span(&self) -> Option<&Span> {
        self.0
            .as_ref()
            .map(|call| &call.span)
            .filter(|span| !span.is_disabled())
    }

    /// What the call's pipelines count into; `None` when nothing listens.
    pub(crate) fn counts(&self) -> Option<&Arc<Counts>> {
        self.0.as_ref().map(|call| &call.counts)
    }

    /// The call is over: record its status (`CANCELLED` when none was sent), duration and
    /// sizes.
    #[inline]
    pub(crate) fn finish(self) {
        if let Some(call) = self.0 {
            (*call).finish();
        }
    }

    /// A call answered before it reached a method (malformed, expired, unknown method):
    /// counted as started and ended under `grpc.method` `"other"`, with no size.
    pub(crate) fn refused(_code: Code) {
        #[cfg(feature = "metrics")]
        if is_recording_metrics() {
            metrics_impl::server_call_started(OTHER_METHOD);
            let counts = Counts::new(Instant::now(), None);
            metrics_impl::server_call_ended(OTHER_METHOD, _code, Duration::ZERO, &counts);
        }
    }
}

impl ListenedCall {
    #[cold]
    fn finish(self) {
        let counts = &self.counts;
        let code = counts.code();
        let duration = counts.duration();
        #[cfg(feature = "metrics")]
        if is_recording_metrics() {
            metrics_impl::server_call_ended(self.method, code, duration, counts);
        }
        end_span(&self.span, code, duration, counts, true);
    }
}

/// Whether DEBUG events and spans may be on (tracing's static and global level hints; the
/// span macro checks its callsite's interest after).
#[inline]
fn debug_enabled() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    STATIC_MAX_LEVEL >= LevelFilter::DEBUG && LevelFilter::current() >= LevelFilter::DEBUG
}

/// The labels of a client call's metrics.
pub(crate) struct ClientLabels {
    #[cfg(feature = "metrics")]
    method: metrics::SharedString,
    #[cfg(feature = "metrics")]
    target: metrics::SharedString,
}

/// One call on the client: its span, start, and how its attempts are counted.
pub(crate) struct ClientCall {
    span: Span,
    start: Instant,
    attempts: Attempts,
    /// Recorded: a call dropped before that is `CANCELLED`.
    done: bool,
}

/// Makes the [`Counts`] of each attempt of a call.
#[derive(Clone)]
pub(crate) struct Attempts {
    /// Whether anything listens: the span is on, or the metrics are.
    active: bool,
    labels: Option<Arc<ClientLabels>>,
}

impl Attempts {
    /// The counts of a new attempt (`None` when nothing listens); with metrics on, the
    /// attempt is counted as started and records its metrics when it ends.
    pub(crate) fn start(&self) -> Option<Arc<Counts>> {
        if !self.active {
            return None;
        }
        #[cfg(feature = "metrics")]
        if let Some(labels) = &self.labels {
            metrics_impl::attempt_started(labels);
        }
        Some(Arc::new(Counts::new(Instant::now(), self.labels.clone())))
    }
}

impl ClientCall {
    /// A call to `path` (`/package.Service/Method`) on a channel to `target` begins.
    pub(crate) fn start(path: &str, target: &str) -> ClientCall {
        let method = path.strip_prefix('/').unwrap_or(path);
        let span = tracing::debug_span!(
            "grpc.client.call",
            method,
            target,
            grpc.status = tracing::field::Empty,
            duration = tracing::field::Empty,
            messages_sent = tracing::field::Empty,
            messages_received = tracing::field::Empty,
        );
        let metrics = is_recording_metrics();
        let labels = if metrics {
            Some(Arc::new(client_labels(method, target)))
        } else {
            None
        };
        ClientCall {
            attempts: Attempts {
                active: metrics || !span.is_disabled(),
                labels,
            },
            span,
            start: Instant::now(),
            done: false,
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Whether anything listens to this call.
    pub(crate) fn is_listened(&self) -> bool {
        self.attempts.active
    }

    /// How the call's attempts are counted.
    pub(crate) fn attempts(&self) -> Attempts {
        self.attempts.clone()
    }

    /// The call is over with `code`; `counts` are its committed attempt's, when known
    /// and when the messages are a stream (`streams`).
    pub(crate) fn finish(mut self, code: Code, counts: Option<&Counts>, streams: bool) {
        self.record(code, counts, streams);
    }

    fn record(&mut self, code: Code, counts: Option<&Counts>, streams: bool) {
        if self.done || !self.attempts.active {
            return;
        }
        self.done = true;
        let duration = self.start.elapsed();
        #[cfg(feature = "metrics")]
        if let Some(labels) = &self.attempts.labels {
            metrics_impl::client_call_ended(labels, code, duration);
        }
        let _ = self.span.record("grpc.status", code.as_str());
        let _ = self
            .span
            .record("duration", tracing::field::debug(duration));
        if let (Some(counts), true) = (counts, streams) {
            let _ = self.span.record("messages_sent", counts.messages_sent());
            let _ = self
                .span
                .record("messages_received", counts.messages_received());
        }
        tracing::debug!(parent: &self.span, grpc.status = code.as_str(), ?duration, "call ended");
    }
}

impl Drop for ClientCall {
    fn drop(&mut self) {
        // A response stream dropped before its end: the call was cancelled.
        self.record(Code::Cancelled, None, false);
    }
}

#[cfg(feature = "metrics")]
fn client_labels(method: &str, target: &str) -> ClientLabels {
    // A66: the target in its canonical form, with a scheme.
    let schemed = ["dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:"]
        .iter()
        .any(|s| target.starts_with(s));
    let target = if schemed {
        target.to_owned()
    } else {
        format!("dns:///{target}")
    };
    ClientLabels {
        method: metrics::SharedString::from(method.to_owned()),
        target: metrics::SharedString::from(target),
    }
}

#[cfg(not(feature = "metrics"))]
fn client_labels(_method: &str, _target: &str) -> ClientLabels {
    ClientLabels {}
}

/// Record the end of a call on its span, and the DEBUG event saying so.
fn end_span(span: &Span, code: Code, duration: Duration, counts: &Counts, streams: bool) {
    if span.is_disabled() {
        return;
    }
    span.record("grpc.status", code.as_str());
    span.record("duration", tracing::field::debug(duration));
    if streams {
        span.record("messages_sent", counts.messages_sent());
        span.record("messages_received", counts.messages_received());
    }
    tracing::debug!(parent: span, grpc.status = code.as_str(), ?duration, "call ended");
}

#[cfg(feature = "metrics")]
mod metrics_impl {
    //! The calls into the `metrics` facade.

    use std::time::Duration;

    use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

    use super::{ClientLabels, Counts};
    use crate::status::Code;

    pub(super) fn describe() {
        describe_counter!(
            "grpc.client.attempt.started",
            Unit::Count,
            "Client call attempts started, including those not yet completed"
        );
        describe_histogram!(
            "grpc.client.attempt.duration",
            Unit::Seconds,
            "Time of a client call attempt, from its start (the pick included) to its status"
        );
        describe_histogram!(
            "grpc.client.attempt.sent_total_compressed_message_size",
            Unit::Bytes,
            "Request message bytes (compressed, no framing) sent by one attempt"
        );
        describe_histogram!(
            "grpc.client.attempt.rcvd_total_compressed_message_size",
            Unit::Bytes,
            "Response message bytes (compressed, no framing) received by one attempt"
        );
        describe_histogram!(
            "grpc.client.call.duration",
            Unit::Seconds,
            "Time of a client call as the application sees it, every attempt included"
        );
        describe_counter!(
            "grpc.server.call.started",
            Unit::Count,
            "Server calls started, including those not yet completed"
        );
        describe_histogram!(
            "grpc.server.call.duration",
            Unit::Seconds,
            "Time of a server call, from its request headers to its status"
        );
        describe_histogram!(
            "grpc.server.call.sent_total_compressed_message_size",
            Unit::Bytes,
            "Response message bytes (compressed, no framing) sent by one server call"
        );
        describe_histogram!(
            "grpc.server.call.rcvd_total_compressed_message_size",
            Unit::Bytes,
            "Request message bytes (compressed, no framing) received by one server call"
        );
    }

    pub(super) fn server_call_started(method: &'static str) {
        counter!("grpc.server.call.started", "grpc.method" => method).increment(1);
    }

    pub(super) fn server_call_ended(
        method: &'static str,
        code: Code,
        duration: Duration,
        counts: &Counts,
    ) {
        let status = code.as_str();
        histogram!("grpc.server.call.duration", "grpc.method" => method, "grpc.status" => status)
            .record(duration.as_secs_f64());
        histogram!(
            "grpc.server.call.sent_total_compressed_message_size",
            "grpc.method" => method, "grpc.status" => status
        )
        .record(counts.payload_sent() as f64);
        histogram!(
            "grpc.server.call.rcvd_total_compressed_message_size",
            "grpc.method" => method, "grpc.status" => status
        )
        .record(counts.payload_received() as f64);
    }

    pub(super) fn attempt_started(labels: &ClientLabels) {
        counter!(
            "grpc.client.attempt.started",
            "grpc.method" => labels.method.clone(), "grpc.target" => labels.target.clone()
        )
        .increment(1);
    }

    pub(super) fn attempt_ended(labels: &ClientLabels, counts: &Counts) {
        let status = counts.code().as_str();
        let (method, target) = (&labels.method, &labels.target);
        histogram!(
            "grpc.client.attempt.duration",
            "grpc.method" => method.clone(), "grpc.target" => target.clone(), "grpc.status" => status
        )
        .record(counts.duration().as_secs_f64());
        histogram!(
            "grpc.client.attempt.sent_total_compressed_message_size",
            "grpc.method" => method.clone(), "grpc.target" => target.clone(), "grpc.status" => status
        )
        .record(counts.payload_sent() as f64);
        histogram!(
            "grpc.client.attempt.rcvd_total_compressed_message_size",
            "grpc.method" => method.clone(), "grpc.target" => target.clone(), "grpc.status" => status
        )
        .record(counts.payload_received() as f64);
    }

    pub(super) fn client_call_ended(labels: &ClientLabels, code: Code, duration: Duration) {
        histogram!(
            "grpc.client.call.duration",
            "grpc.method" => labels.method.clone(), "grpc.target" => labels.target.clone(),
            "grpc.status" => code.as_str()
        )
        .record(duration.as_secs_f64());
    }
}
