//! The four call kinds on a [`Channel`], as the server runs them: a request side (one
//! message, or a stream) times a response side (one message, or a stream), all run by
//! `Channel::call`. A call begins (interceptors, telemetry, options), encodes its
//! request into the [`Body`] its attempts send, hands it to the attempt engine
//! (`attempt.rs`: retries, hedging, transparent retry) under the call's deadline, and
//! turns the committed attempt's answer into its response. Dropping a call's future (or
//! its response stream) resets the h2 stream with `CANCEL`, which the server sees as a
//! cancellation.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tracing::Instrument;

use super::Channel;
use super::attempt::{Answer, Attempted, Body, CallOptions, Writer};
use super::interceptor::Outgoing;
use super::replay::Replay;
use super::service_config::CallPolicy;
use crate::compression::{AcceptEncodings, Encoding};
use crate::deadline::Deadline;
use crate::framing::Decoder;
use crate::headers::{RequestHead, ResponseHead};
use crate::keepalive::InFlight;
use crate::metadata::Metadata;
use crate::request::{Request, Response};
use crate::status::{Code, Status};
use crate::stream::{Encoder, Side, Streaming};
use crate::telemetry::{Attempts as Telemetry, ClientCall, Counts};

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
        self.call::<OneRequest, OneResponse<Resp>, _, Resp>(path, request)
            .await
    }

    /// A client-streaming call: the messages of `request` (sent as the server's window
    /// allows), one response. The server may answer (say, with an error) before it has
    /// read every request; its answer ends the call.
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
        self.call::<RequestStream, OneResponse<Resp>, _, Resp>(path, request)
            .await
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
        self.call::<OneRequest, StreamResponse<Resp>, _, Resp>(path, request)
            .await
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
        self.call::<RequestStream, StreamResponse<Resp>, _, Resp>(path, request)
            .await
    }

    /// Every kind: begin, then under the call's deadline encode the request side `Q`,
    /// run the attempts and read the response side `P`; `P` ends the call (now, or when
    /// its stream ends).
    async fn call<Q, P, M, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<M>,
    ) -> Result<P::Output, Status>
    where
        Q: RequestSide<M>,
        P: ResponseSide<Resp>,
        Resp: prost::Message + Default,
    {
        let Request {
            mut metadata,
            message,
            mut timeout,
            compression,
            wait_for_ready,
            ..
        } = request;
        let (call, options) = self
            .begin(&path, &mut metadata, &mut timeout, wait_for_ready)
            .await?;
        let deadline = options.deadline;
        let in_flight = self.call_started();
        let read = within(deadline, async {
            let head = self.request_head(&options, compression.encoding);
            let encoder = Encoder::new(options.max_send, head.encoding, compression);
            let answer = {
                let (body, policy) = Q::prepare(message, self, &encoder, &options)?;
                let attempted = Attempted {
                    path: path.clone(),
                    metadata: &metadata,
                    head,
                    encoder,
                    options: &options,
                    body,
                };
                self.attempts(&attempted, policy).await?
            };
            let opened = opened(answer, options.max_receive);
            self.saw_headers(&path, &opened.headers);
            P::read(opened).await
        })
        .instrument(call.span().clone())
        .await;
        let end = End {
            call,
            streams: Q::STREAMS || P::STREAMS,
            deadline,
            in_flight,
        };
        P::finish(self, &path, end, read)
    }

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

    /// Run the interceptors' `before`, in order.
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

    /// The head of a request: the time left of its deadline, and the encoding
    /// negotiated for it.
    fn request_head(&self, options: &CallOptions<'_>, wanted: Option<Encoding>) -> RequestHead {
        RequestHead {
            timeout: options.time_left(),
            encoding: self.inner.server_accepts.request_encoding(wanted),
            accept: AcceptEncodings::ALL,
            previous_attempts: 0,
        }
    }

    /// Show the interceptors the response headers.
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
}

/// The request side of a call: one message, or a stream of them.
trait RequestSide<M> {
    /// Whether the requests are a stream (the call's span then counts the messages).
    const STREAMS: bool;

    /// The request as its attempts send it, and the policy they run under (none for one
    /// message too big for the retry buffer: it is sent once).
    fn prepare<'a>(
        message: M,
        channel: &Channel,
        encoder: &Encoder,
        options: &CallOptions<'a>,
    ) -> Result<(Body, Option<&'a CallPolicy>), Status>;
}

/// One request message: encoded once (compressed if negotiated), sent by every attempt.
struct OneRequest;

impl<Req: prost::Message> RequestSide<Req> for OneRequest {
    const STREAMS: bool = false;

    fn prepare<'a>(
        message: Req,
        channel: &Channel,
        encoder: &Encoder,
        options: &CallOptions<'a>,
    ) -> Result<(Body, Option<&'a CallPolicy>), Status> {
        let encoded = encoder.encode(&message)?;
        let Some(policy) = options.policy else {
            return Ok((
                Body::One {
                    message: encoded,
                    _held: None,
                },
                None,
            ));
        };
        // A message too big for the retry buffer is sent once: the call commits at once.
        let settings = &channel.inner.settings;
        let held = settings
            .retry_buffer
            .hold(encoded.len(), settings.per_rpc_buffer_limit);
        if held.is_none() {
            tracing::debug!(
                len = encoded.len(),
                "request message outgrows the retry buffer; no retries"
            );
        }
        let policy = held.is_some().then_some(policy);
        Ok((
            Body::One {
                message: encoded,
                _held: held,
            },
            policy,
        ))
    }
}

/// A stream of request messages, each encoded as an attempt pulls it: pumped by the one
/// attempt of a call without a policy, replayed to each attempt of a call with one
/// (within the buffer limits, past which the call commits).
struct RequestStream;

impl<Req, S> RequestSide<S> for RequestStream
where
    Req: prost::Message,
    S: Stream<Item = Req> + Send + 'static,
{
    const STREAMS: bool = true;

    fn prepare<'a>(
        requests: S,
        channel: &Channel,
        encoder: &Encoder,
        options: &CallOptions<'a>,
    ) -> Result<(Body, Option<&'a CallPolicy>), Status> {
        let encoding = encoder.clone();
        let encoded = Box::pin(requests.map(move |message| encoding.encode(&message)));
        let body = match options.policy {
            None => Body::Pumped(Mutex::new(Some(encoded))),
            Some(_) => {
                let settings = &channel.inner.settings;
                Body::Replayed(Replay::new(
                    encoded,
                    settings.per_rpc_buffer_limit,
                    settings.retry_buffer.clone(),
                ))
            }
        };
        Ok((body, options.policy))
    }
}

/// The committed attempt's response, opened: its header metadata, its messages, the
/// writer still sending the request, and the attempt's counts.
struct Opened<Resp> {
    headers: Metadata,
    responses: Streaming<Resp>,
    writer: Writer,
    counts: Option<Arc<Counts>>,
}

/// Open the committed attempt's answer: a Trailers-Only `OK` is a stream already over.
fn opened<Resp: prost::Message + Default>(answer: Answer, max_receive: usize) -> Opened<Resp> {
    let Answer {
        head,
        body,
        counts,
        writer,
    } = answer;
    let (headers, responses) = match head {
        ResponseHead::Headers {
            encoding, metadata, ..
        } => {
            let decoder = Decoder::new(max_receive, encoding);
            (metadata, Streaming::new(body, Side::Client, decoder))
        }
        ResponseHead::TrailersOnly { mut status, .. } => {
            let trailers = std::mem::take(status.metadata_mut());
            (Metadata::new(), Streaming::ended(body, trailers))
        }
    };
    Opened {
        headers,
        responses: responses.with_counts(counts.clone()),
        writer,
        counts,
    }
}

/// What ends a call: its telemetry, whether its messages are a stream, its deadline
/// and its count in flight.
struct End {
    call: ClientCall,
    streams: bool,
    deadline: Option<Instant>,
    in_flight: Option<InFlight>,
}

/// The response side of a call: one message, or a stream of them.
trait ResponseSide<Resp>: Sized {
    /// Whether the responses are a stream.
    const STREAMS: bool;
    /// What the call resolves to.
    type Output;

    /// Under the call's deadline, once the response head came: what is read before the
    /// call resolves.
    fn read(opened: Opened<Resp>) -> impl Future<Output = Result<Self, Status>>;

    /// End the call now (one response), or hand its end to the response stream.
    fn finish(
        channel: &Channel,
        path: &PathAndQuery,
        end: End,
        read: Result<Self, Status>,
    ) -> Result<Self::Output, Status>;
}

/// One response message, read to the end of the stream within the call: how that went,
/// and the committed attempt's counts.
struct OneResponse<Resp>(Result<Response<Resp>, Status>, Option<Arc<Counts>>);

impl<Resp: prost::Message + Default> ResponseSide<Resp> for OneResponse<Resp> {
    const STREAMS: bool = false;
    type Output = Response<Resp>;

    async fn read(opened: Opened<Resp>) -> Result<Self, Status> {
        let Opened {
            headers,
            mut responses,
            writer,
            counts,
        } = opened;
        // The request goes on while the answer is read; the answer ends the call.
        let mut writer = writer;
        let read = pin!(single_response(headers, &mut responses));
        let response = writer.alongside(read).await;
        Ok(OneResponse(response, counts))
    }

    fn finish(
        channel: &Channel,
        path: &PathAndQuery,
        end: End,
        read: Result<Self, Status>,
    ) -> Result<Response<Resp>, Status> {
        let (result, counts) = match read {
            Ok(OneResponse(result, counts)) => (result, counts),
            Err(status) => (Err(status), None),
        };
        end.call
            .finish(code_of(&result), counts.as_deref(), end.streams);
        channel.saw_end(path, &result);
        result
    }
}

/// A stream of response messages, handed to the caller; it ends the call when it ends.
struct StreamResponse<Resp>(Opened<Resp>);

impl<Resp: prost::Message + Default> ResponseSide<Resp> for StreamResponse<Resp> {
    const STREAMS: bool = true;
    type Output = Response<Streaming<Resp>>;

    async fn read(opened: Opened<Resp>) -> Result<Self, Status> {
        Ok(StreamResponse(opened))
    }

    fn finish(
        channel: &Channel,
        path: &PathAndQuery,
        end: End,
        read: Result<Self, Status>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        let Opened {
            headers,
            responses,
            writer,
            ..
        } = match read {
            Ok(StreamResponse(opened)) => opened,
            Err(status) => {
                end.call.finish(status.code(), None, true);
                channel.saw_end::<()>(path, &Err(status.clone()));
                return Err(status);
            }
        };
        let guard = writer.into_guard(end.call.span());
        let responses = responses
            .with_deadline(Deadline::at(end.deadline))
            .with_pump_guard(guard)
            .with_in_flight(end.in_flight)
            .with_end_hook(channel.end_hook(path))
            .with_call(end.call);
        Ok(Response::from_parts(headers, responses, Metadata::new()))
    }
}

/// The code a call's result ends with.
fn code_of<T>(result: &Result<T, Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
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
