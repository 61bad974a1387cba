//! One call on the server. A call is a request side (one message, or a stream of them)
//! and a response side (one message, or a stream); the four kinds are the four pairs,
//! all run by `Call::run`: read the request, run the handler under the call's deadline
//! while watching for the client's reset, and answer through the call's `Responder`,
//! the one place that decides how a response starts and ends.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;

use super::interceptor::{CallContext, Interceptors, ResponseExtras};
use crate::compression::{self, Compression, Encoding};
use crate::deadline::Deadline;
use crate::exchange::{RecvBody, Respond};
use crate::framing::Decoder;
use crate::headers::{self, RequestHead};
use crate::metadata::Metadata;
use crate::peer::Peer;
use crate::protocol::json::MethodJson;
use crate::protocol::{self, Classified, Protocol, Wire};
use crate::request::{Request, Response};
use crate::status::Status;
use crate::stream::{
    Encoder, Outcome, ResponseStream, Sender, Sent, Side, Streaming, poll_source, supervise,
};
use crate::telemetry::{Counts, ServerCall};

/// A call, boxed, ready to be run by the connection or its own task.
pub type CallFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The server's settings every call follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub max_receive_message_size: usize,
    pub max_send_message_size: usize,
    /// Encoding for responses whose handler chose none (used when the client accepts it).
    pub send_compression: Option<Encoding>,
}

/// A gRPC service as the server sees it: a name and a way to start each of its methods.
/// Generated code implements it (`GrpcDemoServer<T>` for a trait `GrpcDemo`).
pub trait Service: Send + Sync + 'static {
    /// The fully qualified service name, e.g. `demo.GRPCDemo`.
    fn name(&self) -> &'static str;

    /// Start `method` (the part of the path after the service name) for `call`, or hand
    /// the call back when the service has no such method.
    #[allow(clippy::result_large_err)] // moved once per call, on the error path only
    fn call(&self, method: &str, call: Call) -> Result<CallFuture, Call>;

    /// Called once when the server's graceful shutdown begins, before any connection is
    /// told to drain (the health service sets every status NOT_SERVING here, as grpc-go's
    /// does). Does nothing by default; a service wrapping another must forward it.
    fn on_shutdown(&self) {}

    /// Called when the server starts serving, with the name of every service it serves
    /// (reflection lists them). Does nothing by default; a service wrapping another must
    /// forward it.
    fn on_serve(&self, services: &[&'static str]) {
        let _ = services;
    }

    /// The services [`Server::add_service`](crate::Server::add_service) adds for this one:
    /// itself by default. A value standing for several services returns them all (the
    /// built [`Reflection`](crate::reflection::Reflection) adds reflection v1 and v1alpha).
    fn into_services(self) -> Vec<Arc<dyn Service>>
    where
        Self: Sized,
    {
        vec![Arc::new(self)]
    }

    /// The encoded `google.protobuf.FileDescriptorSet` describing this service, which
    /// lets the server read and write its messages as JSON (Connect, `+json`). Generated
    /// code returns its package's `FILE_DESCRIPTOR_SET`; `None` (the default) refuses JSON
    /// calls to the service. A service wrapping another must forward it.
    fn file_descriptor_set(&self) -> Option<&'static [u8]> {
        None
    }
}

/// What finds the service of a call: the server's router (`router.rs`).
pub(crate) trait Route {
    /// The service owning `path` (`/package.Service/Method`) and the method's name;
    /// `UNIMPLEMENTED` for a malformed path or an unknown service.
    fn route<'p>(&self, path: &'p str) -> Result<(&dyn Service, &'p str), Status>;
}

/// What the server gives every new request: its settings, services and web options.
pub(crate) struct Accepting<'a, R> {
    pub config: Config,
    pub router: &'a R,
    pub interceptors: Option<&'a Interceptors>,
    pub peer: &'a Arc<Peer>,
    pub web: &'a super::web::Web,
}

/// Check a new request and route it. Requests answered at once (malformed, an expired
/// deadline, no such method, not a call at all) give `None`, or, for a request that is no
/// call, the plain HTTP handler's work; others give the call to run.
pub(crate) fn accept<R: Route>(
    parts: http::request::Parts,
    body: RecvBody,
    mut respond: Respond,
    accepting: &Accepting<'_, R>,
) -> Option<CallFuture> {
    let Accepting {
        config,
        router,
        interceptors,
        peer,
        web,
    } = *accepting;
    let wire = match Wire::classify(&parts.method, &parts.headers, parts.uri.query()) {
        Classified::Rpc(wire) if wire == Wire::GRPC || web.enabled() => wire,
        Classified::Rpc(_) | Classified::Refused(_) | Classified::NotRpc
            if !web.enabled() && !respond.is_http1() =>
        {
            // Only gRPC is served: what is not gRPC gets 405 or 415, as from grpc-go.
            let status = match headers::check_http(&parts.method, &parts.headers) {
                Err(status) => status,
                Ok(()) => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            };
            let _ = respond.send_response(headers::http_error(status), true);
            return None;
        }
        Classified::Refused(status) => {
            let _ = respond.send_response(
                web.decorate(&parts.headers, headers::http_error(status)),
                true,
            );
            return None;
        }
        Classified::Rpc(_) | Classified::NotRpc => {
            return web.not_a_call(parts, body, respond, router);
        }
    };
    if respond.is_http1() && !wire.allows_http1() {
        let _ = respond.send_response(
            web.decorate(
                &parts.headers,
                headers::http_error(http::StatusCode::HTTP_VERSION_NOT_SUPPORTED),
            ),
            true,
        );
        return None;
    }
    let extra = web.response_headers(&parts.headers);
    let head = match wire.request_head(&parts.headers) {
        Ok(head) => head,
        Err(refused) => {
            ServerCall::refused(refused.status().code());
            if wire == Wire::GRPC {
                let _ = respond.send_response(refused.into_response(), true);
            } else {
                let mut extra = extra;
                if matches!(refused, headers::Refused::Encoding(_)) {
                    // Say what we read, as gRPC's answer does.
                    let (name, value) = wire.accept_advertisement();
                    extra.get_or_insert_default().insert(name, value);
                }
                let mut responder = Responder::new(respond, wire);
                responder.extra = extra;
                responder.write_status(refused.into_status(), Metadata::new());
            }
            return None;
        }
    };
    let refuse = |respond: Respond, extra: Option<Box<HeaderMap>>, status: Status| {
        ServerCall::refused(status.code());
        let mut responder = Responder::new(respond, wire);
        responder.extra = extra;
        responder.write_status(status, Metadata::new());
    };
    if head.timeout.is_some_and(|t| t.is_zero()) {
        // The deadline passed before the call arrived (grpc-go sends `0n` then).
        let status = Status::deadline_exceeded("the deadline passed before the call arrived");
        refuse(respond, extra, status);
        return None;
    }
    let (service, method) = match router.route(parts.uri.path()) {
        Ok(found) => found,
        // The web protocols answer a path no service owns as HTTP does (connect-go's mux).
        Err(_) if !wire.is_grpc() => {
            let response = web.decorate(
                &parts.headers,
                headers::http_error(http::StatusCode::NOT_FOUND),
            );
            let _ = respond.send_response(response, true);
            return None;
        }
        Err(status) => {
            refuse(respond, extra, status);
            return None;
        }
    };
    let mut head = head;
    let mut body = body;
    let json = match wire.format {
        protocol::Format::Proto if wire.protocol != (Protocol::ConnectUnary { get: true }) => None,
        _ => match web.descriptors().method(parts.uri.path()) {
            Some(json) => Some(Box::new(json)),
            None if wire.format == protocol::Format::Proto => None,
            // The service has descriptors but no such method: answered as unknown below.
            None if service.file_descriptor_set().is_some() => None,
            None => {
                let status = Status::internal(format!(
                    "no descriptors for {}: JSON cannot be read for it (its service gives no \
                     file_descriptor_set)",
                    parts.uri.path()
                ));
                refuse(respond, extra, status);
                return None;
            }
        },
    };
    if wire.protocol == (Protocol::ConnectUnary { get: true }) {
        if !json.as_ref().is_some_and(|j| j.no_side_effects) {
            let response = web.decorate(
                &parts.headers,
                headers::http_error(http::StatusCode::METHOD_NOT_ALLOWED),
            );
            let _ = respond.send_response(response, true);
            return None;
        }
        match protocol::connect_get_message(parts.uri.query().unwrap_or("")) {
            Ok((message, encoding)) => {
                head.encoding = encoding;
                body = RecvBody::Full(Some(message));
            }
            Err(status) => {
                refuse(respond, extra, status);
                return None;
            }
        }
    }
    let json = json.filter(|_| wire.format == protocol::Format::Json);
    let telemetry = ServerCall::start(service.name(), method, peer);
    let span = telemetry.span().cloned();
    // Only with interceptors: the path they are shown (a `Uri` clone shares its bytes).
    let intercept = interceptors.map(|i| Box::new((i.clone(), parts.uri.clone())));
    let call = Call {
        head,
        headers: parts.headers,
        body,
        respond,
        config,
        peer: peer.clone(),
        intercept,
        telemetry,
        wire,
        json,
        extra,
    };
    match service.call(method, call) {
        // The call runs in its span, when one is on (only then is it entered at each poll).
        Ok(future) => Some(match span {
            None => future,
            Some(span) => Box::pin(tracing::Instrument::instrument(future, span)),
        }),
        Err(call) if !call.wire.is_grpc() => {
            let mut responder = Responder::new(call.respond, call.wire);
            responder.extra = call.extra;
            responder.http_error(http::StatusCode::NOT_FOUND);
            None
        }
        Err(call) => {
            let status = Status::unimplemented(format!(
                "unknown method {method} for service {}",
                service.name()
            ));
            call.reject(status);
            None
        }
    }
}

/// An accepted call, routed to a method but not yet started. Generated service code turns
/// it into a [`CallFuture`] with one of [`Call::unary`], [`Call::client_streaming`],
/// [`Call::server_streaming`] or [`Call::streaming`].
pub struct Call {
    head: RequestHead,
    headers: HeaderMap,
    body: RecvBody,
    respond: Respond,
    config: Config,
    peer: Arc<Peer>,
    /// The server's interceptors and the call's path; `None` without interceptors.
    intercept: Option<Box<(Interceptors, http::Uri)>>,
    /// The call's span, and its counts when anything listens.
    telemetry: ServerCall,
    /// The protocol and message format the call speaks.
    wire: Wire,
    /// The method's message types, for a call whose messages are JSON.
    json: Option<Box<MethodJson>>,
    /// Headers every response head carries (CORS), when any.
    extra: Option<Box<HeaderMap>>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("timeout", &self.head.timeout)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// End the call at once with `status`, as a Trailers-Only response.
    pub fn reject(self, status: Status) {
        ServerCall::refused(status.code());
        let mut responder = Responder::new(self.respond, self.wire);
        responder.extra = self.extra;
        responder.write_status(status, Metadata::new());
    }

    /// Name the call's method in full (`package.Service/Method`), the `grpc.method` of its
    /// metrics (feature `metrics`). Generated code names every method it routes; a call
    /// left unnamed is counted under `"other"`, as gRFC A66 asks for unregistered methods.
    pub fn named(mut self, full_method: &'static str) -> Call {
        self.telemetry.name(full_method);
        self
    }

    /// A unary call: one request, one response.
    pub fn unary<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        self.run::<OneRequest, OneResponse, Req, Resp, F, Fut>(handler)
    }

    /// A client-streaming call: a stream of requests, one response.
    pub fn client_streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        self.run::<RequestStream, OneResponse, Req, Resp, F, Fut>(handler)
    }

    /// A server-streaming call: one request, a stream of responses.
    pub fn server_streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<ResponseStream<Resp>>, Status>> + Send + 'static,
    {
        self.run::<OneRequest, StreamResponse, Req, Resp, F, Fut>(handler)
    }

    /// A bidirectional-streaming call: a stream of requests, a stream of responses.
    pub fn streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<ResponseStream<Resp>>, Status>> + Send + 'static,
    {
        self.run::<RequestStream, StreamResponse, Req, Resp, F, Fut>(handler)
    }

    /// Every kind: read the request side `Q`, run the handler under the deadline while
    /// watching the client's reset (a panic is `UNKNOWN`), answer with the response side `P`.
    fn run<Q, P, Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Q: RequestSide<Req>,
        P: ResponseSide<Resp>,
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: FnOnce(Request<Q::Body>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<P::Body>, Status>> + Send + 'static,
    {
        let Call {
            head,
            headers,
            body,
            respond,
            config,
            peer,
            intercept,
            telemetry,
            wire,
            json,
            extra,
        } = self;
        if wire.unary_body() && (Q::STREAM || P::STREAM) {
            // Connect's unary content types are for unary methods only (connect-go's
            // handlers answer 415 the same way).
            let mut responder = Responder::new(respond, wire);
            responder.extra = extra;
            responder.http_error(http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
            return Box::pin(std::future::ready(()));
        }
        if wire.protocol == Protocol::Connect && !Q::STREAM && !P::STREAM {
            let mut responder = Responder::new(respond, wire);
            responder.extra = extra;
            responder.http_error(http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
            return Box::pin(std::future::ready(()));
        }
        telemetry.begin();
        let counts = telemetry.counts().cloned();
        let work = async move {
            let (input, output) = match json {
                Some(json) => {
                    let MethodJson { input, output, .. } = *json;
                    (Some(input), Some(output))
                }
                None => (None, None),
            };
            let request_counts = counts.clone();
            // What interceptors add to the response; only a call with interceptors has it.
            let mut extras: Option<Box<ResponseExtras>> = None;
            // Only the stream's reset is watched while the handler runs; the Responder is
            // made after it, so the call's future does not hold both at once (smaller).
            let mut respond = respond;
            let mut deadline = Deadline::after(head.timeout);
            let outcome = {
                let extras_slot = &mut extras;
                let work = async move {
                    let mut metadata = Metadata::from_headers(headers);
                    let mut extensions = http::Extensions::new();
                    if let Some(intercept) = intercept {
                        // Before the request message is read: a refused call reads nothing.
                        let call = Intercepted {
                            peer: &peer,
                            timeout: head.timeout,
                            metadata: &mut metadata,
                            extensions: &mut extensions,
                            extras: extras_slot,
                        };
                        call.run(intercept).await?;
                    }
                    // Made here, not captured: what an async block captures it holds for
                    // its whole life, and the stream is only needed until it is taken.
                    let decoder = Decoder::for_wire(
                        config.max_receive_message_size,
                        head.encoding,
                        wire.unary_body(),
                        input,
                    );
                    let requests = Streaming::<Req>::new(body, Side::Server, decoder)
                        .with_text(wire.is_text())
                        .with_counts(request_counts);
                    let (message, compressed) = Q::take(requests).await?;
                    let mut request = Request::from_parts(metadata, message, head.timeout);
                    request.compression.received_compressed = compressed;
                    request.peer = Some(peer);
                    request.extensions = extensions;
                    handler(request).await
                };
                let mut work = std::pin::pin!(work);
                supervise(
                    |cx| match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
                        Ok(polled) => polled,
                        Err(panic) => Poll::Ready(Err(Status::from_panic(panic))),
                    },
                    |cx| respond.poll_reset(cx).is_ready(),
                    &mut deadline,
                )
                .await
            };
            let mut responder = Responder::new(respond, wire);
            responder.counts = counts;
            responder.extra = extra;
            // A failed call: the interceptors' headers held for the response headers, and
            // their trailers.
            let failed = |responder: &mut Responder, extras: Option<Box<ResponseExtras>>| {
                let Some(extras) = extras else {
                    return Metadata::new();
                };
                let ResponseExtras { headers, trailers } = *extras;
                responder.hold_metadata(headers);
                trailers
            };
            match outcome {
                Outcome::Reset => {}
                Outcome::Expired => {
                    let trailers = failed(&mut responder, extras);
                    responder.write_status(deadline_status(), trailers)
                }
                Outcome::Done(Err(status)) => {
                    let trailers = failed(&mut responder, extras);
                    responder.write_status(status, trailers)
                }
                Outcome::Done(Ok(response)) => {
                    let Response {
                        mut metadata,
                        message,
                        mut trailers,
                        compression,
                        headers_first,
                    } = response;
                    if let Some(extras) = extras {
                        let ResponseExtras {
                            headers: extra_headers,
                            trailers: extra_trailers,
                        } = *extras;
                        extra_headers.append_to(metadata.headers_mut());
                        extra_trailers.append_to(trailers.headers_mut());
                    }
                    let encoding = compression::response_encoding(
                        compression.encoding,
                        config.send_compression,
                        head.accept,
                    );
                    let encoder = Encoder::for_wire(
                        config.max_send_message_size,
                        encoding,
                        compression,
                        output,
                    );
                    responder.prepare((encoding, metadata), encoder);
                    if !headers_first || responder.write_header() {
                        P::send(responder, message, trailers, deadline).await;
                    }
                }
            }
            telemetry.finish();
        };
        Box::pin(work)
    }
}

/// What the interceptors of one call work on (see [`Intercepted::run`]).
struct Intercepted<'a> {
    peer: &'a Peer,
    timeout: Option<std::time::Duration>,
    metadata: &'a mut Metadata,
    extensions: &'a mut http::Extensions,
    extras: &'a mut Option<Box<ResponseExtras>>,
}

impl<'a> Intercepted<'a> {
    /// Run the interceptors. Boxed and not generic: a call's future holds one pointer for
    /// them, not their state, so calls without interceptors do not pay for its size.
    fn run(
        self,
        intercept: Box<(Interceptors, http::Uri)>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>> {
        Box::pin(async move {
            let (interceptors, uri) = *intercept;
            let mut context = CallContext {
                path: uri.path(),
                peer: self.peer,
                timeout: self.timeout,
                metadata: self.metadata,
                extensions: self.extensions,
                response: self.extras.insert(Box::default()),
            };
            interceptors.run(&mut context).await
        })
    }
}

fn deadline_status() -> Status {
    Status::deadline_exceeded("deadline exceeded before the server finished the call")
}

/// How the request messages reach the handler.
trait RequestSide<Req>: Send + 'static {
    /// Whether the request is a stream of messages.
    const STREAM: bool;
    /// What the handler's `Request` holds.
    type Body: Send + 'static;
    /// Take the request off the stream, and whether its (one) message was compressed.
    fn take(
        requests: Streaming<Req>,
    ) -> impl Future<Output = Result<(Self::Body, bool), Status>> + Send;
}

/// Exactly one request message, read to the end of the stream.
struct OneRequest;
/// The request stream itself.
struct RequestStream;

impl<Req: prost::Message + Default + 'static> RequestSide<Req> for OneRequest {
    const STREAM: bool = false;
    type Body = Req;

    /// Any other count than one is a cardinality violation: UNIMPLEMENTED (`doc/statuscodes.md`).
    async fn take(mut requests: Streaming<Req>) -> Result<(Req, bool), Status> {
        let Some(message) = requests.message().await? else {
            return Err(Status::unimplemented(
                "the client sent no request message; this method takes exactly one",
            ));
        };
        let compressed = requests.last_message_compressed();
        if requests.message().await?.is_some() {
            return Err(Status::unimplemented(
                "the client sent more than one request message; this method takes exactly one",
            ));
        }
        Ok((message, compressed))
    }
}

impl<Req: prost::Message + Default + 'static> RequestSide<Req> for RequestStream {
    const STREAM: bool = true;
    type Body = Streaming<Req>;

    async fn take(requests: Streaming<Req>) -> Result<(Streaming<Req>, bool), Status> {
        Ok((requests, false))
    }
}

/// How the handler's answer goes out.
trait ResponseSide<Resp>: Send + 'static {
    /// Whether the response is a stream of messages.
    const STREAM: bool;
    /// What the handler's `Response` holds.
    type Body: Send + 'static;
    /// Send `body` through `responder`, then the status with `trailers`.
    fn send(
        responder: Responder,
        body: Self::Body,
        trailers: Metadata,
        deadline: Deadline,
    ) -> impl Future<Output = ()> + Send;
}

/// One response message, already in hand.
struct OneResponse;
/// A stream of response messages.
struct StreamResponse;

impl<Resp: prost::Message + 'static> ResponseSide<Resp> for OneResponse {
    const STREAM: bool = false;
    type Body = Resp;

    /// Nothing to wait for: written at once (no future state to carry on the hot path).
    fn send(
        mut responder: Responder,
        message: Resp,
        trailers: Metadata,
        _: Deadline,
    ) -> impl Future<Output = ()> + Send {
        responder.write_one(&message, trailers);
        std::future::ready(())
    }
}

impl<Resp: prost::Message + 'static> ResponseSide<Resp> for StreamResponse {
    const STREAM: bool = true;
    type Body = ResponseStream<Resp>;

    async fn send(
        mut responder: Responder,
        mut messages: ResponseStream<Resp>,
        trailers: Metadata,
        mut deadline: Deadline,
    ) {
        // The headers go out with the first message: a stream that ends before its first
        // message (with an error or not) is a Trailers-Only response, unless it has header
        // metadata.
        if !responder.is_started() {
            let first = supervise(
                |cx| poll_source(messages.as_mut(), cx),
                |cx| responder.poll_reset(cx),
                &mut deadline,
            )
            .await;
            match first {
                Outcome::Reset => return,
                Outcome::Expired => return responder.write_status(deadline_status(), trailers),
                Outcome::Done(None) => return responder.write_status(Status::ok(), trailers),
                Outcome::Done(Some(Err(status))) => {
                    return responder.write_status(status, trailers);
                }
                Outcome::Done(Some(Ok(message))) => {
                    if !responder.write(&message) {
                        return;
                    }
                }
            }
        }
        let Some(sender) = responder.sender.as_mut() else {
            return;
        };
        match sender
            .send_all(messages.as_mut(), &mut deadline, false)
            .await
        {
            Sent::Reset => {}
            Sent::Expired => responder.write_status(deadline_status(), trailers),
            Sent::Ended(status) => responder.write_status(status, trailers),
        }
    }
}

/// The server's side of one response, the only code that writes it (grpc-go's
/// `WriteHeader` / `Write` / `WriteStatus`), in the call's wire form. The response
/// headers are held until the first message or [`Responder::write_header`]; the status
/// then goes as trailers (gRPC), as the body's last frame (gRPC-Web, Connect streaming),
/// or, when no header went out and no header metadata is held, in the headers alone
/// (Trailers-Only). A Connect unary response is one head and one body, written at the end.
pub(crate) struct Responder {
    respond: Respond,
    wire: Wire,
    /// Before the headers go out: what they will say.
    pending: Option<(Option<Encoding>, Metadata)>,
    encoder: Option<Encoder>,
    /// Once the headers are out: the stream's outbound pipeline.
    sender: Option<Sender>,
    /// What the call counts into, when anything listens; told the status.
    counts: Option<Arc<Counts>>,
    /// Headers every response head carries (CORS), when any.
    extra: Option<Box<HeaderMap>>,
}

impl Responder {
    fn new(respond: Respond, wire: Wire) -> Responder {
        Responder {
            respond,
            wire,
            pending: None,
            encoder: None,
            sender: None,
            counts: None,
            extra: None,
        }
    }

    /// Whether the client reset the stream (or the connection is gone).
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> bool {
        self.respond.poll_reset(cx).is_ready()
    }

    /// Whether the response headers are out.
    fn is_started(&self) -> bool {
        self.sender.is_some()
    }

    /// Prepare the headers (sent later) and how messages are encoded.
    fn prepare(&mut self, head: (Option<Encoding>, Metadata), encoder: Encoder) {
        self.pending = Some(head);
        self.encoder = Some(encoder);
    }

    /// Hold `metadata` for the response headers, which have not gone out.
    fn hold_metadata(&mut self, metadata: Metadata) {
        if !metadata.is_empty() && self.sender.is_none() {
            self.pending = Some((None, metadata));
        }
    }

    /// Send `response` as the head, with the call's extra headers.
    #[inline]
    fn send_head(
        &mut self,
        mut response: http::Response<()>,
        end_of_stream: bool,
    ) -> Option<crate::exchange::SendBody> {
        if let Some(extra) = &self.extra {
            for (name, value) in extra.iter() {
                response.headers_mut().insert(name, value.clone());
            }
        }
        self.respond.send_response(response, end_of_stream).ok()
    }

    /// Answer with a bare HTTP status (a request this method cannot take).
    fn http_error(mut self, status: http::StatusCode) {
        self.send_head(headers::http_error(status), true);
    }

    /// Send the response headers now, if they have not gone yet. `false` when the
    /// stream is gone. A Connect unary response holds them to the end.
    fn write_header(&mut self) -> bool {
        if self.sender.is_some() || self.wire.unary_body() {
            return true;
        }
        let (encoding, metadata) = self.pending.take().unwrap_or_default();
        let encoder = self
            .encoder
            .take()
            .unwrap_or_else(|| Encoder::new(usize::MAX, None, Compression::default()));
        let response = self.wire.response_headers(encoding, metadata);
        let Some(stream) = self.send_head(response, false) else {
            return false;
        };
        let sender = self
            .sender
            .insert(Sender::new(stream, encoder).with_text(self.wire.is_text()));
        if let Some(counts) = &self.counts {
            sender.count_into(counts.clone());
        }
        true
    }

    fn encode<M: prost::Message>(&self, message: &M) -> Result<Bytes, Status> {
        match (&self.sender, &self.encoder) {
            (Some(sender), _) => sender.encoder().encode(message),
            (None, Some(encoder)) => encoder.encode(message),
            (None, None) => Encoder::new(usize::MAX, None, Compression::default()).encode(message),
        }
    }

    /// Queue one message, sending the headers first if they have not gone. A message
    /// that cannot be encoded ends the call with its status. `false` when the call is over.
    fn write<M: prost::Message>(&mut self, message: &M) -> bool {
        let encoded = match self.encode(message) {
            Ok(encoded) => encoded,
            Err(status) => {
                self.write_status_in_place(status, Metadata::new());
                return false;
            }
        };
        if !self.write_header() {
            return false;
        }
        if let Some(sender) = &mut self.sender {
            sender.push(encoded);
        }
        true
    }

    /// A unary answer: the headers, the one message (handed to h2 whole: h2 queues it
    /// and the peer's window paces the writes) and the trailers. Nothing to wait for.
    fn write_one<M: prost::Message>(&mut self, message: &M, trailers: Metadata) {
        if self.wire.unary_body() {
            return self.write_connect_unary(message, trailers);
        }
        if self.write(message)
            && let Some(sender) = &mut self.sender
            && sender.flush_whole(false).is_ok()
        {
            if let Some(counts) = &self.counts {
                counts.end(crate::status::Code::Ok);
            }
            if self.wire.is_grpc() {
                sender.send_trailers(headers::ok_trailers(trailers));
            } else if let Some(last) = self.wire.end_frame(&Status::ok(), &trailers) {
                sender.send_last(last);
            }
        }
    }

    /// A Connect unary answer: one head (metadata, trailers as `trailer-` headers) and
    /// the message as the body.
    fn write_connect_unary<M: prost::Message>(&mut self, message: &M, trailers: Metadata) {
        let encoder = self
            .encoder
            .take()
            .unwrap_or_else(|| Encoder::new(usize::MAX, None, Compression::default()));
        let (body, encoding) = match encoder.encode_whole(message) {
            Ok(encoded) => encoded,
            Err(status) => return self.write_status_in_place(status, Metadata::new()),
        };
        if let Some(counts) = &self.counts {
            counts.sent(body.len());
            counts.end(crate::status::Code::Ok);
        }
        let (_, metadata) = self.pending.take().unwrap_or_default();
        let (head, _) = protocol::connect_unary_response(
            self.wire,
            &Status::ok(),
            encoding,
            metadata,
            &trailers,
            None,
        );
        if let Some(mut stream) = self.send_head(head, false) {
            let _ = stream.send_data(body, true);
        }
    }

    /// End the call with `status` (and, when it is `OK`, the handler's `trailers`):
    /// trailers after the headers, or Trailers-Only when no header went out and there
    /// is no header metadata.
    fn write_status(mut self, status: Status, trailers: Metadata) {
        self.write_status_in_place(status, trailers);
    }

    fn write_status_in_place(&mut self, status: Status, trailers: Metadata) {
        if let Some(counts) = &self.counts {
            counts.end(status.code());
        }
        // An error carries the trailers too (grpc-go sends `SetTrailer`'s on failure).
        let (status, trailers) = if status.is_ok() || trailers.is_empty() {
            (status, trailers)
        } else {
            let mut status = status;
            trailers.append_to(status.metadata_mut().headers_mut());
            (status, Metadata::new())
        };
        let mut status = status;
        if self.wire.unary_body() {
            let (_, mut metadata) = self.pending.take().unwrap_or_default();
            status
                .take_response_metadata()
                .append_to(metadata.headers_mut());
            let (head, body) = protocol::connect_unary_response(
                self.wire, &status, None, metadata, &trailers, None,
            );
            if let Some(mut stream) = self.send_head(head, body.is_none())
                && let Some(body) = body
            {
                let _ = stream.send_data(body, true);
            }
            return;
        }
        // Header metadata is never folded into the trailers: with any (held, or carried by
        // a failing status) the headers go out first, then the trailers (grpc-go's
        // `WriteStatus`); only a call without header metadata is Trailers-Only. Connect
        // has no Trailers-Only: its status is always the body's last frame.
        if self.sender.is_none() {
            let carried = status.take_response_metadata();
            match &mut self.pending {
                Some((_, metadata)) => carried.append_to(metadata.headers_mut()),
                None if carried.is_empty() => {}
                None => self.pending = Some((None, carried)),
            }
            let has_metadata = self.pending.as_ref().is_some_and(|(_, m)| !m.is_empty());
            if (has_metadata || self.wire.protocol == Protocol::Connect) && !self.write_header() {
                return;
            }
        }
        let wire = self.wire;
        match &mut self.sender {
            Some(sender) => match wire.end_frame(&status, &trailers) {
                Some(last) => sender.send_last(last),
                None => sender.send_trailers(if status.is_ok() {
                    headers::ok_trailers(trailers)
                } else {
                    status.into_trailers()
                }),
            },
            None => {
                let (_, metadata) = self.pending.take().unwrap_or_default();
                let status = if status.is_ok() {
                    let mut ok = Status::ok();
                    *ok.metadata_mut() = trailers;
                    ok
                } else {
                    status
                };
                let response = wire.trailers_only(metadata, status);
                self.send_head(response, true);
            }
        }
    }
}
