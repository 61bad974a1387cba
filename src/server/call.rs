//! One call on the server: the four kinds (unary, client-streaming, server-streaming,
//! bidi) as futures that read the request, run the handler under the call's deadline
//! while watching for the client's reset, and write the response.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue};
use tokio::time::{Instant, Sleep};

use crate::compression::{AcceptEncodings, Encoding};
use crate::framing;
use crate::metadata::Metadata;
use crate::request::{Compression, Request, Response};
use crate::status::{GRPC_STATUS, Status};
use crate::stream::{Batch, ResponseStream, Side, Streaming, send_data};

/// A call, boxed, ready to be run by the connection or its own task.
pub type CallFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// `content-type` of every response.
const CONTENT_TYPE_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
const GRPC_ENCODING: &str = "grpc-encoding";

/// The server's settings every call follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub max_receive_message_size: usize,
    pub max_send_message_size: usize,
    /// Encoding for responses whose handler chose none (used when the client accepts it).
    pub send_compression: Option<Encoding>,
}

/// What the request's headers said about compression.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Negotiation {
    /// `grpc-encoding` of the request's messages.
    pub request_encoding: Option<Encoding>,
    /// `grpc-accept-encoding`: what the client can read.
    pub accept: AcceptEncodings,
}

/// An accepted call, routed to a method but not yet started. Generated service code turns
/// it into a [`CallFuture`] with one of [`Call::unary`], [`Call::client_streaming`],
/// [`Call::server_streaming`] or [`Call::streaming`].
pub struct Call {
    headers: HeaderMap,
    body: RecvStream,
    respond: SendResponse<Bytes>,
    timeout: Option<Duration>,
    settings: Settings,
    negotiation: Negotiation,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How supervised work ended.
enum Outcome<T> {
    Done(T),
    /// The client reset the stream (or the connection is gone): nothing more to send.
    Reset,
    /// The call's deadline passed.
    Deadline,
}

impl Call {
    pub(crate) fn new(
        headers: HeaderMap,
        body: RecvStream,
        respond: SendResponse<Bytes>,
        timeout: Option<Duration>,
        settings: Settings,
        negotiation: Negotiation,
    ) -> Call {
        Call {
            headers,
            body,
            respond,
            timeout,
            settings,
            negotiation,
        }
    }

    /// The request stream, decoding with the request's encoding.
    fn requests<Req: prost::Message + Default>(
        body: RecvStream,
        settings: &Settings,
        negotiation: &Negotiation,
    ) -> Streaming<Req> {
        let max = settings.max_receive_message_size;
        Streaming::new(body, Side::Server, max, negotiation.request_encoding)
    }

    /// End the call at once with `status`, as a Trailers-Only response.
    pub fn reject(self, status: Status) {
        send_trailers_only(self.respond, status);
    }

    /// A unary call: one request, one response.
    pub fn unary<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        let Call {
            headers,
            body,
            respond,
            timeout,
            settings,
            negotiation,
        } = self;
        Box::pin(async move {
            let work = async move {
                let mut requests = Call::requests::<Req>(body, &settings, &negotiation);
                let message = single_request(&mut requests).await?;
                let mut request =
                    Request::from_parts(Metadata::from_headers(headers), message, timeout);
                request.compression.received_compressed = requests.last_message_compressed();
                handler(request).await
            };
            respond_single(respond, timeout, settings, negotiation, work).await
        })
    }

    /// A client-streaming call: a stream of requests, one response.
    pub fn client_streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        let Call {
            headers,
            body,
            respond,
            timeout,
            settings,
            negotiation,
        } = self;
        Box::pin(async move {
            let requests = Call::requests::<Req>(body, &settings, &negotiation);
            let work = handler(Request::from_parts(
                Metadata::from_headers(headers),
                requests,
                timeout,
            ));
            respond_single(respond, timeout, settings, negotiation, work).await
        })
    }

    /// A server-streaming call: one request, a stream of responses.
    pub fn server_streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<ResponseStream<Resp>>, Status>> + Send + 'static,
    {
        let Call {
            headers,
            body,
            respond,
            timeout,
            settings,
            negotiation,
        } = self;
        Box::pin(async move {
            let work = async move {
                let mut requests = Call::requests::<Req>(body, &settings, &negotiation);
                let message = single_request(&mut requests).await?;
                let mut request =
                    Request::from_parts(Metadata::from_headers(headers), message, timeout);
                request.compression.received_compressed = requests.last_message_compressed();
                handler(request).await
            };
            respond_streaming(respond, timeout, settings, negotiation, work).await
        })
    }

    /// A bidirectional-streaming call: a stream of requests, a stream of responses.
    pub fn streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<ResponseStream<Resp>>, Status>> + Send + 'static,
    {
        let Call {
            headers,
            body,
            respond,
            timeout,
            settings,
            negotiation,
        } = self;
        Box::pin(async move {
            let requests = Call::requests::<Req>(body, &settings, &negotiation);
            let work = handler(Request::from_parts(
                Metadata::from_headers(headers),
                requests,
                timeout,
            ));
            respond_streaming(respond, timeout, settings, negotiation, work).await
        })
    }
}

/// Read the one request of a unary or server-streaming call, to the end of the stream.
/// Any other count is a cardinality violation: UNIMPLEMENTED (`doc/statuscodes.md`).
async fn single_request<Req: prost::Message + Default>(
    requests: &mut Streaming<Req>,
) -> Result<Req, Status> {
    let Some(message) = requests.message().await? else {
        return Err(Status::unimplemented(
            "the client sent no request message; this method takes exactly one",
        ));
    };
    if requests.message().await?.is_some() {
        return Err(Status::unimplemented(
            "the client sent more than one request message; this method takes exactly one",
        ));
    }
    Ok(message)
}

fn deadline_timer(timeout: Option<Duration>) -> Option<Pin<Box<Sleep>>> {
    timeout.map(|t| Box::pin(tokio::time::sleep_until(Instant::now() + t)))
}

fn deadline_status() -> Status {
    Status::deadline_exceeded("deadline exceeded before the server finished the call")
}

/// Poll `work` until it ends, the client resets the stream (`reset`), or the deadline
/// passes. A panic in `work` ends it as `UNKNOWN`.
async fn supervise<T>(
    work: impl Future<Output = Result<T, Status>>,
    mut reset: impl FnMut(&mut Context<'_>) -> bool,
    deadline: &mut Option<Pin<Box<Sleep>>>,
) -> Outcome<Result<T, Status>> {
    let mut work = std::pin::pin!(work);
    poll_fn(|cx| {
        if reset(cx) {
            return Poll::Ready(Outcome::Reset);
        }
        match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
            Ok(Poll::Ready(result)) => return Poll::Ready(Outcome::Done(result)),
            Ok(Poll::Pending) => {}
            Err(panic) => return Poll::Ready(Outcome::Done(Err(panicked(panic)))),
        }
        if let Some(sleep) = deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Outcome::Deadline);
        }
        Poll::Pending
    })
    .await
}

fn panicked(panic: Box<dyn std::any::Any + Send>) -> Status {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %what, "handler panicked");
    Status::unknown("the handler panicked")
}

/// Run a handler producing one response, then send it (or the error, Trailers-Only).
async fn respond_single<Resp: prost::Message>(
    mut respond: SendResponse<Bytes>,
    timeout: Option<Duration>,
    settings: Settings,
    negotiation: Negotiation,
    work: impl Future<Output = Result<Response<Resp>, Status>>,
) {
    let mut deadline = deadline_timer(timeout);
    let response =
        match supervise(work, |cx| respond.poll_reset(cx).is_ready(), &mut deadline).await {
            Outcome::Reset => return,
            Outcome::Deadline => return send_trailers_only(respond, deadline_status()),
            Outcome::Done(Err(status)) => return send_trailers_only(respond, status),
            Outcome::Done(Ok(response)) => response,
        };
    let encoding = negotiate(&response.compression, &settings, &negotiation);
    let Response {
        metadata,
        message,
        trailers,
        compression,
    } = response;
    let body = match framing::encode_with(
        &message,
        settings.max_send_message_size,
        compression.for_next_message(encoding),
    ) {
        Ok(body) => body,
        Err(status) => return send_trailers_only(respond, status),
    };
    let Ok(mut send) = respond.send_response(response_head(metadata, encoding), false) else {
        return;
    };
    // One message the handler already holds: h2 may queue it whole; the window paces the writes.
    if send.send_data(body, false).is_ok() {
        let _ = send.send_trailers(ok_trailers(trailers));
    }
}

/// Run a handler producing a response stream, then pump the stream into the h2 stream
/// as the peer's window allows, and end with the status.
async fn respond_streaming<Resp: prost::Message>(
    mut respond: SendResponse<Bytes>,
    timeout: Option<Duration>,
    settings: Settings,
    negotiation: Negotiation,
    work: impl Future<Output = Result<Response<ResponseStream<Resp>>, Status>>,
) {
    let mut deadline = deadline_timer(timeout);
    let response =
        match supervise(work, |cx| respond.poll_reset(cx).is_ready(), &mut deadline).await {
            Outcome::Reset => return,
            Outcome::Deadline => return send_trailers_only(respond, deadline_status()),
            Outcome::Done(Err(status)) => return send_trailers_only(respond, status),
            Outcome::Done(Ok(response)) => response,
        };
    let encoding = negotiate(&response.compression, &settings, &negotiation);
    let Response {
        metadata,
        message: mut messages,
        trailers,
        compression,
    } = response;
    let Ok(mut send) = respond.send_response(response_head(metadata, encoding), false) else {
        return;
    };
    let mut batch = Batch::default();
    let status = loop {
        // Wait for the next message, watching the client's reset and the deadline.
        let next = poll_fn(|cx| messages.as_mut().poll_next(cx).map(Ok::<_, Status>));
        let mut item =
            match supervise(next, |cx| send.poll_reset(cx).is_ready(), &mut deadline).await {
                Outcome::Reset => return,
                Outcome::Deadline => break deadline_status(),
                Outcome::Done(Err(status)) => break status,
                Outcome::Done(Ok(item)) => item,
            };
        // Then take every message already ready, up to a frame's worth (see `Batch`).
        let mut end = None;
        loop {
            let message = match item {
                None => {
                    end = Some(Status::ok());
                    break;
                }
                Some(Err(status)) => {
                    end = Some(status);
                    break;
                }
                Some(Ok(message)) => message,
            };
            let encoding = compression.for_next_message(encoding);
            match framing::encode_with(&message, settings.max_send_message_size, encoding) {
                Ok(body) => batch.push(body),
                Err(status) => {
                    end = Some(status);
                    break;
                }
            }
            if batch.is_full() {
                break;
            }
            // Ready now, or not: never waits. A panic in the stream ends it as UNKNOWN.
            let polled = poll_fn(|cx| {
                Poll::Ready(catch_unwind(AssertUnwindSafe(|| {
                    messages.as_mut().poll_next(cx)
                })))
            });
            item = match polled.await {
                Ok(Poll::Ready(item)) => item,
                Ok(Poll::Pending) => break,
                Err(panic) => Some(Err(panicked(panic))),
            };
        }
        if batch.len() > 0 {
            // Wait for the peer's window; a reset shows up here as an error.
            let sent = send_data(&mut send, batch.take(), false);
            match supervise(sent, |_| false, &mut deadline).await {
                Outcome::Done(Ok(())) => {}
                Outcome::Done(Err(_)) | Outcome::Reset => return,
                Outcome::Deadline => {
                    // Trailers would queue behind the unsent data: reset instead.
                    send.send_reset(h2::Reason::CANCEL);
                    return;
                }
            }
        }
        if let Some(status) = end {
            break status;
        }
    };
    let trailers = if status.is_ok() {
        ok_trailers(trailers)
    } else {
        status.into_trailers()
    };
    let _ = send.send_trailers(trailers);
}

/// The response encoding: the handler's choice, else the server's, if the client accepts it.
fn negotiate(
    compression: &Compression,
    settings: &Settings,
    negotiation: &Negotiation,
) -> Option<Encoding> {
    compression
        .encoding
        .or(settings.send_compression)
        .filter(|e| negotiation.accept.contains(*e))
}

fn response_head(metadata: Metadata, encoding: Option<Encoding>) -> http::Response<()> {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    headers.reserve(2 + metadata.len());
    headers.insert(http::header::CONTENT_TYPE, CONTENT_TYPE_GRPC);
    // `grpc-accept-encoding` goes only with the answer to an encoding we cannot read
    // (as grpc-go does): on every response it would cost an HPACK entry per call.
    if let Some(encoding) = encoding {
        headers.insert(GRPC_ENCODING, encoding.header_value());
    }
    metadata.append_to(headers);
    response
}

fn ok_trailers(metadata: Metadata) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1 + metadata.len());
    trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
    metadata.append_to(&mut trailers);
    trailers
}

/// A Trailers-Only response: one HEADERS frame with END_STREAM carrying the status.
pub(crate) fn send_trailers_only(respond: SendResponse<Bytes>, status: Status) {
    send_trailers_only_with(respond, status, &[]);
}

/// A Trailers-Only response with extra protocol headers (e.g. `grpc-accept-encoding`).
pub(crate) fn send_trailers_only_with(
    mut respond: SendResponse<Bytes>,
    status: Status,
    extra: &[(&'static str, &'static str)],
) {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, CONTENT_TYPE_GRPC);
    for &(name, value) in extra {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.extend(status.into_trailers());
    let _ = respond.send_response(response, true);
}

/// A plain HTTP answer for requests that are not gRPC at all (wrong method or content-type).
pub(crate) fn send_http_error(mut respond: SendResponse<Bytes>, status: http::StatusCode) {
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    let _ = respond.send_response(response, true);
}
