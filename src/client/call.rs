//! The four call kinds on a [`Channel`]: request headers, the request message(s), the
//! response headers, message(s) and trailers turned into a `Status`, under the call's
//! deadline. Dropping a call's future (or its response stream) resets the h2 stream
//! with `CANCEL`, which the server sees as a cancellation.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use h2::SendStream;
use h2::client::ResponseFuture;
use http::Method;
use http::uri::PathAndQuery;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Channel;
use super::interceptor::Outgoing;
use super::replay::{Replay, Writer};
use super::retry::{self, Pushback, RetryThrottle};
use super::service_config::{CallPolicy, HedgingPolicy, RetryPolicy};
use crate::compression::{Compression, Encoding};
use crate::deadline::Deadline;
use crate::framing::Decoder;
use crate::headers::{RequestHead, ResponseHead};
use crate::metadata::Metadata;
use crate::request::{Request, Response};
use crate::status::Status;
use crate::stream::{Encoder, Sender, Sent, Side, Streaming};
use crate::telemetry::{AttemptCounts, Attempts as Telemetry, ClientCall, Counts};
use futures_util::stream::FuturesUnordered;
use tracing::Instrument;

/// Attempts of a call whose stream the server refused unprocessed.
const MAX_TRANSPARENT_ATTEMPTS: u32 = 3;

impl Channel {
    /// A unary call: one request, one response.
    pub async fn unary<Req, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let mut request = request;
        let (call, options) = self
            .begin(
                &path,
                &mut request.metadata,
                &mut request.timeout,
                request.wait_for_ready,
            )
            .await?;
        let deadline = options.deadline();
        let _in_flight = self.call_started();
        let result = within(deadline, async {
            let (headers, mut responses) = self
                .open_with_message::<_, Resp>(path.clone(), request, &options)
                .await?;
            self.saw_headers(&path, &headers);
            single_response(headers, &mut responses).await
        })
        .instrument(call.span().clone())
        .await;
        call.finish(code_of(&result), None, false);
        self.saw_end(&path, &result);
        result
    }

    /// A client-streaming call: the messages of `request` (sent as the server's window
    /// allows), one response.
    pub async fn client_streaming<Req, Resp, S>(
        &self,
        path: PathAndQuery,
        request: Request<S>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        S: Stream<Item = Req> + Send + 'static,
    {
        let Request {
            mut metadata,
            message: requests,
            mut timeout,
            compression,
            wait_for_ready,
            ..
        } = request;
        let (call, options) = self
            .begin(&path, &mut metadata, &mut timeout, wait_for_ready)
            .await?;
        let deadline = options.deadline();
        let _in_flight = self.call_started();
        let span = call.span().clone();
        if options.policy.is_some() {
            let result = within(deadline, async {
                let (headers, mut responses, _writer) = self
                    .open_replayed::<_, Resp, _>(
                        path.clone(),
                        &metadata,
                        compression,
                        requests,
                        &options,
                    )
                    .await?;
                self.saw_headers(&path, &headers);
                // The writer goes on sending while the answer is read.
                single_response(headers, &mut responses).await
            })
            .instrument(span)
            .await;
            call.finish(code_of(&result), None, false);
            self.saw_end(&path, &result);
            return result;
        }
        let mut counts = None;
        let result = within(deadline, async {
            let (response, sender) = self
                .start_streaming(path.clone(), &metadata, compression, &options)
                .await?;
            counts = sender.counts().cloned();
            let attempt = counts.clone();
            let mut pump = pin!(pump(sender, requests));
            let mut pumping = true;
            let mut answer = pin!(async {
                let (headers, mut responses) = self
                    .response_head::<Resp>(response, &options, attempt)
                    .await?;
                self.saw_headers(&path, &headers);
                single_response(headers, &mut responses).await
            });
            // Send and read together: the server may answer (say, with an error) before
            // it has read every request; its answer ends the call.
            poll_fn(|cx| {
                if pumping && pump.as_mut().poll(cx).is_ready() {
                    pumping = false;
                }
                answer.as_mut().poll(cx)
            })
            .await
        })
        .instrument(span)
        .await;
        call.finish(code_of(&result), counts.as_deref(), true);
        self.saw_end(&path, &result);
        result
    }

    /// A server-streaming call: one request, a stream of responses.
    pub async fn server_streaming<Req, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let mut request = request;
        let (call, options) = self
            .begin(
                &path,
                &mut request.metadata,
                &mut request.timeout,
                request.wait_for_ready,
            )
            .await?;
        let deadline = options.deadline();
        let in_flight = self.call_started();
        let opened = within(
            deadline,
            self.open_with_message::<_, Resp>(path.clone(), request, &options),
        )
        .instrument(call.span().clone())
        .await;
        let (headers, responses) = match self.opened(&path, opened) {
            Ok(opened) => opened,
            Err(status) => {
                call.finish(status.code(), None, true);
                return Err(status);
            }
        };
        let responses = responses
            .with_deadline(Deadline::at(deadline))
            .with_in_flight(in_flight)
            .with_end_hook(self.end_hook(&path))
            .with_call(call);
        Ok(Response::from_parts(headers, responses, Metadata::new()))
    }

    /// A bidirectional-streaming call: the messages of `request` are sent by a task of
    /// their own (at the pace of the server's window) while the caller reads the
    /// response stream. Dropping the response stream stops the sending and cancels the call.
    ///
    /// The call resolves when the response headers arrive. Many servers (grpcio among
    /// them) send those only with their first response, after the first request: make
    /// the first request available on the stream before awaiting the call.
    pub async fn streaming<Req, Resp, S>(
        &self,
        path: PathAndQuery,
        request: Request<S>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default,
        S: Stream<Item = Req> + Send + 'static,
    {
        let Request {
            mut metadata,
            message: requests,
            mut timeout,
            compression,
            wait_for_ready,
            ..
        } = request;
        let (call, options) = self
            .begin(&path, &mut metadata, &mut timeout, wait_for_ready)
            .await?;
        let deadline = options.deadline();
        let in_flight = self.call_started();
        let opened = within(deadline, async {
            if options.policy.is_some() {
                let (headers, responses, writer) = self
                    .open_replayed::<_, Resp, _>(
                        path.clone(),
                        &metadata,
                        compression,
                        requests,
                        &options,
                    )
                    .await?;
                // The committed attempt's writer lives as long as the response stream.
                let (guard, stop) = oneshot::channel::<()>();
                tokio::spawn(async move {
                    let _writer = writer;
                    let _ = stop.await;
                });
                return Ok((headers, (responses, guard)));
            }
            let (response, sender) = self
                .start_streaming(path.clone(), &metadata, compression, &options)
                .await?;
            let counts = sender.counts().cloned();
            let (guard, stop) = oneshot::channel::<()>();
            tokio::spawn(
                async move {
                    tokio::select! {
                        _ = pump(sender, requests) => {}
                        _ = stop => {}
                    }
                }
                .in_current_span(),
            );
            let (headers, responses) = self
                .response_head::<Resp>(response, &options, counts)
                .await?;
            Ok((headers, (responses, guard)))
        })
        .instrument(call.span().clone())
        .await;
        let (headers, (responses, guard)) = match self.opened(&path, opened) {
            Ok(opened) => opened,
            Err(status) => {
                call.finish(status.code(), None, true);
                return Err(status);
            }
        };
        let responses = responses
            .with_deadline(Deadline::at(deadline))
            .with_pump_guard(Some(guard))
            .with_in_flight(in_flight)
            .with_end_hook(self.end_hook(&path))
            .with_call(call);
        Ok(Response::from_parts(headers, responses, Metadata::new()))
    }

    /// Run the interceptors' `before`, in order.
    /// The start of every call: the interceptors (which may change the metadata and the
    /// timeout, or refuse the call), then the call's telemetry and its options.
    async fn begin(
        &self,
        path: &PathAndQuery,
        metadata: &mut Metadata,
        timeout: &mut Option<Duration>,
        wait_for_ready: Option<bool>,
    ) -> Result<(ClientCall, CallOptions<'_>), Status> {
        self.intercept(path, metadata, timeout).await?;
        let call = ClientCall::start(path.path(), &self.inner.target);
        let options = self.options(path, *timeout, wait_for_ready, call.attempts());
        Ok((call, options))
    }

    async fn intercept(
        &self,
        path: &PathAndQuery,
        metadata: &mut Metadata,
        timeout: &mut Option<Duration>,
    ) -> Result<(), Status> {
        if self.inner.interceptors.is_empty() {
            return Ok(());
        }
        let mut call = Outgoing {
            path: path.path(),
            metadata,
            timeout,
        };
        for interceptor in self.inner.interceptors.iter() {
            if let Err(status) = interceptor.before(&mut call).await {
                self.saw_end::<()>(path, &Err(status.clone()));
                return Err(status);
            }
        }
        Ok(())
    }

    fn saw_headers(&self, path: &PathAndQuery, headers: &Metadata) {
        for interceptor in self.inner.interceptors.iter() {
            interceptor.headers(path.path(), headers);
        }
    }

    /// Tell the interceptors how a call with one response ended.
    fn saw_end<T>(&self, path: &PathAndQuery, result: &Result<Response<T>, Status>) {
        if self.inner.interceptors.is_empty() {
            return;
        }
        let ok = Status::ok();
        let (status, trailers) = match result {
            Ok(response) => (&ok, Some(response.trailers())),
            Err(status) => (status, None),
        };
        for interceptor in self.inner.interceptors.iter() {
            interceptor.end(path.path(), status, trailers);
        }
    }

    /// A streaming response's head: headers to the interceptors, or the failure.
    fn opened<T>(
        &self,
        path: &PathAndQuery,
        opened: Result<(Metadata, T), Status>,
    ) -> Result<(Metadata, T), Status> {
        match opened {
            Ok((headers, rest)) => {
                self.saw_headers(path, &headers);
                Ok((headers, rest))
            }
            Err(status) => {
                self.saw_end::<()>(path, &Err(status.clone()));
                Err(status)
            }
        }
    }

    /// The interceptors' `end`, for when a response stream ends.
    fn end_hook(&self, path: &PathAndQuery) -> Option<crate::stream::EndHook> {
        if self.inner.interceptors.is_empty() {
            return None;
        }
        let interceptors = self.inner.interceptors.clone();
        let path = path.path().to_string();
        Some(Box::new(move |status, trailers| {
            for interceptor in interceptors.iter() {
                interceptor.end(&path, status, trailers);
            }
        }))
    }

    /// Open the stream: pick a READY connection and send the request headers. A
    /// connection found unusable (GOAWAY, closed) before the stream opened is reported
    /// to its subchannel and another is picked: the call never reached a server.
    async fn start(
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

    /// The head of a request: the time left of its deadline, and the encoding
    /// negotiated for it.
    fn request_head(&self, options: &CallOptions<'_>, wanted: Option<Encoding>) -> RequestHead {
        RequestHead {
            timeout: options.time_left(),
            encoding: self.inner.server_accepts.request_encoding(wanted),
            accept: crate::compression::AcceptEncodings::ALL,
            previous_attempts: 0,
        }
    }

    /// What a call to `path` runs with: the request's timeout and wait-for-ready choice
    /// met with the service config's for the method, the message limits, the policy.
    fn options(
        &self,
        path: &PathAndQuery,
        timeout: Option<Duration>,
        wait_for_ready: Option<bool>,
        telemetry: Telemetry,
    ) -> CallOptions<'_> {
        let settings = &self.inner.settings;
        let method = self
            .inner
            .service_config
            .as_ref()
            .and_then(|c| c.method(path.path()));
        let timeout = match (timeout, method.and_then(|m| m.timeout)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let limit =
            |channel: usize, method: Option<usize>| method.map_or(channel, |m| m.min(channel));
        CallOptions {
            deadline: timeout.map(|t| Instant::now() + t),
            wait_for_ready: wait_for_ready
                .or(method.and_then(|m| m.wait_for_ready))
                .unwrap_or(false),
            max_send: limit(
                settings.max_send_message_size,
                method.and_then(|m| m.max_request_message_bytes),
            ),
            max_receive: limit(
                settings.max_receive_message_size,
                method.and_then(|m| m.max_response_message_bytes),
            ),
            policy: method.and_then(|m| m.policy.as_ref()),
            telemetry,
        }
    }

    /// Open a stream whose requests are a stream of messages: the response future and
    /// the request side's sender.
    async fn start_streaming(
        &self,
        path: PathAndQuery,
        metadata: &Metadata,
        compression: Compression,
        options: &CallOptions<'_>,
    ) -> Result<(ResponseFuture, Sender), Status> {
        let head = self.request_head(options, compression.encoding);
        let counts = options.telemetry.start();
        let (response, send) = self
            .start(path, metadata, head, options.wait_for_ready)
            .await
            .inspect_err(|status| end(&counts, status))?;
        let max = options.max_send;
        let encoder = Encoder::new(max, head.encoding, compression);
        Ok((response, Sender::new(send, encoder).with_counts(counts)))
    }

    /// Wait for the response headers. A non-200 `:status` maps by the HTTP table; a
    /// Trailers-Only response ends here with its status.
    async fn response_head<Resp: prost::Message + Default>(
        &self,
        response: ResponseFuture,
        options: &CallOptions<'_>,
        counts: Option<Arc<Counts>>,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let response = response
            .await
            .map_err(|e| Status::from_h2(&e))
            .inspect_err(|status| end(&counts, status))?;
        self.read_head(response, options.max_receive, counts)
    }

    /// Encode a call's one request message (compressed if negotiated) and send the call,
    /// retried or hedged by the method's policy (if the message fits the retry buffer);
    /// the response headers and stream.
    async fn open_with_message<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: PathAndQuery,
        request: Request<Req>,
        options: &CallOptions<'_>,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let Request {
            metadata,
            message,
            compression,
            ..
        } = request;
        let head = self.request_head(options, compression.encoding);
        let encoder = Encoder::new(options.max_send, head.encoding, compression);
        let body = encoder.encode(&message)?;
        let attempt = Attempt {
            path,
            metadata: &metadata,
            head,
            encoder,
            body,
            options,
        };
        // A message too big for the retry buffer is sent once: the call commits at once.
        let settings = &self.inner.settings;
        let held = options.policy.and_then(|_| {
            let held = settings
                .retry_buffer
                .hold(attempt.body.len(), settings.per_rpc_buffer_limit);
            if held.is_none() {
                tracing::debug!(
                    len = attempt.body.len(),
                    "request message outgrows the retry buffer; no retries"
                );
            }
            held
        });
        let policy = options.policy.filter(|_| held.is_some());
        let response = self.attempts(&attempt, policy).await?;
        drop(held);
        self.read_head(response, options.max_receive, None)
    }

    /// Send the call, retried or hedged by `policy`, up to the response headers.
    async fn attempts<A: Attempts>(
        &self,
        attempts: &A,
        policy: Option<&CallPolicy>,
    ) -> Result<http::Response<h2::RecvStream>, Status> {
        match policy {
            Some(CallPolicy::Hedging(policy)) => self.hedged(attempts, policy).await,
            Some(CallPolicy::Retry(policy)) => self.retried(attempts, Some(policy)).await,
            None => self.retried(attempts, None).await,
        }
    }

    /// Open a client- or bidi-streaming call under a retry or hedging policy: its
    /// messages are held in a replay buffer that every attempt sends from the first
    /// (within the buffer limits, past which the call commits). The response headers,
    /// the response stream, and the writer of the committed attempt (which goes on
    /// sending the rest of the messages; dropping it stops them).
    async fn open_replayed<Req, Resp, S>(
        &self,
        path: PathAndQuery,
        metadata: &Metadata,
        compression: Compression,
        requests: S,
        options: &CallOptions<'_>,
    ) -> Result<(Metadata, Streaming<Resp>, Writer), Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        S: Stream<Item = Req> + Send + 'static,
    {
        let head = self.request_head(options, compression.encoding);
        let encoder = Encoder::new(options.max_send, head.encoding, compression);
        let encoding = encoder.clone();
        // Each message is encoded once, as the first attempt to need it pulls it.
        let encoded = requests.map(move |message| encoding.encode(&message));
        let settings = &self.inner.settings;
        let replay = Replay::new(
            Box::pin(encoded),
            settings.per_rpc_buffer_limit,
            settings.retry_buffer.clone(),
        );
        let streamed = Streamed {
            path,
            metadata,
            head,
            encoder,
            options,
            replay,
            winner: Mutex::new(None),
        };
        let response = self.attempts(&streamed, options.policy).await?;
        let writer = streamed
            .winner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| Status::internal("committed attempt without its writer"))?;
        let (headers, responses) = self.read_head(response, options.max_receive, None)?;
        Ok((headers, responses, writer))
    }

    /// One attempt of a streaming call: open the stream and start its writer on the
    /// replay buffer, then wait for the response headers, which commit the call to it.
    /// A stream refused unprocessed is opened again, as in [`Channel::attempt`], while
    /// the buffer still holds every message.
    async fn streamed_attempt(&self, call: &Streamed<'_>, previous: u32) -> Outcome {
        let mut transparent = 1;
        loop {
            let mut head = call.head;
            head.previous_attempts = previous;
            head.timeout = call.options.time_left();
            let counts = call.options.telemetry.start();
            let (response, send) = match self
                .start(
                    call.path.clone(),
                    call.metadata,
                    head,
                    call.options.wait_for_ready,
                )
                .await
            {
                Ok(started) => started,
                Err(status) => return Outcome::failed(status, &counts),
            };
            let sender = Sender::new(send, call.encoder.clone()).with_counts(counts.clone());
            let Some(writer) = call.replay.writer(previous, sender) else {
                return Outcome::failed(
                    Status::cancelled("the call committed to another attempt"),
                    &counts,
                );
            };
            match response.await {
                Ok(response) => {
                    let outcome = Outcome::counted(response, counts);
                    if let Outcome::Committed(_) = outcome {
                        if !call.replay.commit(&writer) {
                            // Headers of an attempt the call no longer sends on (it ends
                            // cancelled, as its stream is).
                            return Outcome::Failed(
                                Status::cancelled("the call committed to another attempt"),
                                Pushback::None,
                            );
                        }
                        let mut winner = call.winner.lock().unwrap_or_else(|e| e.into_inner());
                        winner.get_or_insert(writer);
                    }
                    return outcome;
                }
                Err(e)
                    if transparent < MAX_TRANSPARENT_ATTEMPTS
                        && never_processed(&e)
                        && call.replay.committed().is_none() =>
                {
                    tracing::debug!(error = %e, transparent, "stream refused before processing; sending again");
                    end(&counts, &Status::from_h2(&e));
                    transparent += 1;
                }
                Err(e) => return Outcome::failed(Status::from_h2(&e), &counts),
            }
        }
    }

    /// One attempt of a call whose request is one message already encoded, up to its
    /// response headers. A stream the server refused before processing it (RST_STREAM
    /// REFUSED_STREAM, or above the last stream id of a GOAWAY) is sent again on a live
    /// connection, transparently, as the spec allows.
    async fn attempt(&self, attempt: &Attempt<'_>, previous: u32) -> Outcome {
        let mut transparent = 1;
        loop {
            let mut head = attempt.head;
            head.previous_attempts = previous;
            head.timeout = attempt.options.time_left();
            let counts = attempt.options.telemetry.start();
            let (response, send) = match self
                .start(
                    attempt.path.clone(),
                    attempt.metadata,
                    head,
                    attempt.options.wait_for_ready,
                )
                .await
            {
                Ok(started) => started,
                Err(status) => return Outcome::failed(status, &counts),
            };
            // One message the caller already holds: h2 may queue it whole. An error here
            // shows again, with its cause, on the response.
            let mut sender = Sender::new(send, attempt.encoder.clone()).with_counts(counts.clone());
            sender.push(attempt.body.clone());
            let _ = sender.flush_whole(true);
            match response.await {
                Ok(response) => return Outcome::counted(response, counts),
                Err(e) if transparent < MAX_TRANSPARENT_ATTEMPTS && never_processed(&e) => {
                    tracing::debug!(error = %e, transparent, "stream refused before processing; sending again");
                    end(&counts, &Status::from_h2(&e));
                    transparent += 1;
                }
                Err(e) => return Outcome::failed(Status::from_h2(&e), &counts),
            }
        }
    }

    /// Attempts one after another (gRFC A6 retries): a failure with a retryable code
    /// before the response headers is tried again after the backoff (or the server's
    /// pushback), up to the policy's attempts, while the channel's throttle allows and
    /// within the call's deadline (which the caller enforces over all attempts).
    async fn retried<A: Attempts>(
        &self,
        attempts: &A,
        policy: Option<&RetryPolicy>,
    ) -> Result<http::Response<h2::RecvStream>, Status> {
        let throttle = self.inner.throttle.as_deref();
        let mut previous = 0;
        let mut retry = 1;
        loop {
            let (status, pushback) = match attempts.attempt(self, previous).await {
                Outcome::Committed(response) => {
                    if let Some(throttle) = throttle {
                        throttle.on_success();
                    }
                    return Ok(response);
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
            if previous + 1 >= policy.max_attempts || !allowed || attempts.committed().is_some() {
                return Err(status);
            }
            let wait = match pushback {
                Pushback::Stop => return Err(status),
                Pushback::Delay(delay) => {
                    retry = 1;
                    delay
                }
                Pushback::None => {
                    let wait = retry::backoff(policy, retry, retry::random_fraction());
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
    async fn hedged<A: Attempts>(
        &self,
        attempts: &A,
        policy: &HedgingPolicy,
    ) -> Result<http::Response<h2::RecvStream>, Status> {
        let throttle = self.inner.throttle.as_deref();
        let mut running = FuturesUnordered::new();
        let mut started = 0u32;
        let mut stopped = false;
        let mut next_at = Instant::now();
        let mut last = None;
        loop {
            let may_start = !stopped
                && started < policy.max_attempts
                && attempts.committed().is_none()
                && (started == 0 || throttle.is_none_or(RetryThrottle::allows_retry));
            if may_start && Instant::now() >= next_at {
                let number = started;
                running.push(async move { (number, attempts.attempt(self, number).await) });
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
                    Outcome::Committed(response) => {
                        if let Some(throttle) = throttle {
                            throttle.on_success();
                        }
                        // Dropping the others resets their streams (CANCEL).
                        return Ok(response);
                    }
                    Outcome::Failed(status, pushback) => {
                        // Committed (the messages outgrew the buffer): only that attempt
                        // counts, and the others are being cancelled.
                        match attempts.committed() {
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

    /// Check the response headers: a non-200 `:status` maps by the HTTP table; a
    /// Trailers-Only response ends here with its status.
    fn read_head<Resp: prost::Message + Default>(
        &self,
        response: http::Response<h2::RecvStream>,
        max_receive: usize,
        counts: Option<Arc<Counts>>,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let (mut parts, body) = response.into_parts();
        // The attempt's counts: given, or carried by a retried or hedged attempt.
        let counts = counts.or_else(|| {
            parts
                .extensions
                .remove::<AttemptCounts>()
                .map(|AttemptCounts(counts)| counts)
        });
        if parts.status == http::StatusCode::OK && body.is_end_stream() {
            // Trailers-Only: the status is in these headers.
            let status = Status::from_headers(parts.headers.clone())
                .unwrap_or_else(|| Status::unknown("response ended without grpc-status"));
            if !status.is_ok() {
                end(&counts, &status);
                return Err(status);
            }
            let trailers = Metadata::from_headers(parts.headers);
            let responses = Streaming::ended(body, trailers).with_counts(counts);
            return Ok((Metadata::new(), responses));
        }
        let head = ResponseHead::parse(parts.status, &parts.headers)
            .inspect_err(|status| end(&counts, status))?;
        if let Some(accept) = head.accept {
            self.inner.server_accepts.learn(accept);
        }
        let decoder = Decoder::new(max_receive, head.encoding);
        let responses = Streaming::new(body, Side::Client, decoder).with_counts(counts);
        Ok((Metadata::from_headers(parts.headers), responses))
    }
}

/// What a call runs with (see `Channel::options`).
struct CallOptions<'a> {
    deadline: Option<Instant>,
    wait_for_ready: bool,
    max_send: usize,
    max_receive: usize,
    policy: Option<&'a CallPolicy>,
    /// How each attempt is counted.
    telemetry: Telemetry,
}

impl CallOptions<'_> {
    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// What is left of the deadline now, for `grpc-timeout`.
    fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// A call whose request is one encoded message, ready to be attempted.
struct Attempt<'a> {
    path: PathAndQuery,
    metadata: &'a Metadata,
    head: RequestHead,
    encoder: Encoder,
    body: Bytes,
    options: &'a CallOptions<'a>,
}

/// A call ready to be attempted, retried or hedged.
trait Attempts {
    /// One attempt (the `previous`-th retry or hedge), up to its response headers.
    fn attempt<'a>(
        &'a self,
        channel: &'a Channel,
        previous: u32,
    ) -> impl Future<Output = Outcome> + 'a;

    /// The attempt the call committed to before any response (a streaming call whose
    /// messages outgrew the replay buffer): no other attempt may follow or count.
    fn committed(&self) -> Option<u32> {
        None
    }
}

impl Attempts for Attempt<'_> {
    fn attempt<'a>(
        &'a self,
        channel: &'a Channel,
        previous: u32,
    ) -> impl Future<Output = Outcome> + 'a {
        channel.attempt(self, previous)
    }
}

/// A client- or bidi-streaming call whose messages are replayed to each attempt.
struct Streamed<'a> {
    path: PathAndQuery,
    metadata: &'a Metadata,
    head: RequestHead,
    encoder: Encoder,
    options: &'a CallOptions<'a>,
    replay: Arc<Replay>,
    /// The writer of the attempt whose response headers came first.
    winner: Mutex<Option<Writer>>,
}

impl Attempts for Streamed<'_> {
    fn attempt<'a>(
        &'a self,
        channel: &'a Channel,
        previous: u32,
    ) -> impl Future<Output = Outcome> + 'a {
        channel.streamed_attempt(self, previous)
    }

    fn committed(&self) -> Option<u32> {
        self.replay.committed()
    }
}

/// How one attempt went, up to the response headers.
enum Outcome {
    /// Response headers came (or a Trailers-Only OK): the call is committed to it.
    Committed(http::Response<h2::RecvStream>),
    /// It failed before any response: the status, and the server's pushback.
    Failed(Status, Pushback),
}

impl Outcome {
    /// A failure before any response: the attempt ends with `status`.
    fn failed(status: Status, counts: &Option<Arc<Counts>>) -> Outcome {
        end(counts, &status);
        Outcome::Failed(status, Pushback::None)
    }

    /// [`Outcome::classify`], counted: a failed attempt ends with its status; a committed
    /// one carries its counts to the response stream (in the response's extensions).
    fn counted(response: http::Response<h2::RecvStream>, counts: Option<Arc<Counts>>) -> Outcome {
        let mut outcome = Outcome::classify(response);
        if let Some(counts) = counts {
            match &mut outcome {
                Outcome::Committed(response) => {
                    response.extensions_mut().insert(AttemptCounts(counts));
                }
                Outcome::Failed(status, _) => counts.end(status.code()),
            }
        }
        outcome
    }

    fn classify(response: http::Response<h2::RecvStream>) -> Outcome {
        let trailers_only =
            response.status() == http::StatusCode::OK && response.body().is_end_stream();
        if !trailers_only {
            return Outcome::Committed(response);
        }
        match Status::from_headers(response.headers().clone()) {
            Some(status) if status.is_ok() => Outcome::Committed(response),
            Some(status) => Outcome::Failed(status, retry::pushback(response.headers())),
            None => Outcome::Committed(response),
        }
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

/// The code a call's result ends with.
fn code_of<T>(result: &Result<T, Status>) -> crate::status::Code {
    match result {
        Ok(_) => crate::status::Code::Ok,
        Err(status) => status.code(),
    }
}

/// Run `call` under `deadline`: past it the call is dropped (its stream reset with
/// `CANCEL`) and the result is `DEADLINE_EXCEEDED`, whether or not the server answers.
async fn within<T>(
    deadline: Option<Instant>,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    Deadline::at(deadline)
        .run(call, || Status::deadline_exceeded("deadline exceeded"))
        .await
}

/// The one response of a unary or client-streaming call, read to the end of the stream.
async fn single_response<Resp: prost::Message + Default>(
    headers: Metadata,
    responses: &mut Streaming<Resp>,
) -> Result<Response<Resp>, Status> {
    let Some(message) = responses.message().await? else {
        return Err(Status::unimplemented(
            "the server sent no response message for a unary response",
        ));
    };
    let compressed = responses.last_message_compressed();
    if responses.message().await?.is_some() {
        return Err(Status::unimplemented(
            "the server sent more than one response message for a unary response",
        ));
    }
    let trailers = responses.trailers().cloned().unwrap_or_default();
    let mut response = Response::from_parts(headers, message, trailers);
    response.compression.received_compressed = compressed;
    Ok(response)
}

/// Send every message of `requests` as the server's window allows, then END_STREAM
/// (on the last DATA frame when the stream ends while messages are gathered).
async fn pump<Req: prost::Message>(mut sender: Sender, requests: impl Stream<Item = Req>) {
    let requests = pin!(requests.map(Ok::<Req, Status>));
    // The call's deadline is watched by the caller, which drops the pump with the call.
    match sender.send_all(requests, &mut Deadline::none(), true).await {
        Sent::Ended(status) if !status.is_ok() => {
            tracing::warn!(%status, "request message not sent; cancelling the call");
            sender.reset(h2::Reason::CANCEL);
        }
        Sent::Ended(_) | Sent::Reset | Sent::Expired => {}
    }
}
