//! The four call kinds on a [`Channel`]: request headers, the request message(s), the
//! response headers, message(s) and trailers turned into a `Status`, under the call's
//! deadline. Dropping a call's future (or its response stream) resets the h2 stream
//! with `CANCEL`, which the server sees as a cancellation.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use h2::SendStream;
use h2::client::ResponseFuture;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Channel;
use crate::compression::{self, AcceptEncodings, Encoding, UnsupportedEncoding};
use crate::framing;
use crate::metadata::{self, Metadata};
use crate::request::{Compression, Request, Response};
use crate::status::Status;
use crate::stream::{Batch, Side, Streaming, ready_now, send_data};

const CONTENT_TYPE_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
const TE_TRAILERS: HeaderValue = HeaderValue::from_static("trailers");
/// Attempts of a call whose stream the server refused unprocessed.
const MAX_TRANSPARENT_ATTEMPTS: u32 = 3;
const ACCEPT_ENCODING_VALUE: HeaderValue = HeaderValue::from_static(compression::ACCEPT_ENCODING);

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
        let deadline = request.timeout.map(|t| Instant::now() + t);
        within(deadline, async {
            let (headers, mut responses) = self.open_with_message::<_, Resp>(path, request).await?;
            single_response(headers, &mut responses).await
        })
        .await
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
            metadata,
            message: requests,
            timeout,
            compression,
        } = request;
        let deadline = timeout.map(|t| Instant::now() + t);
        within(deadline, async {
            let encoding = self.negotiate(compression.encoding);
            let (response, send) = self.start(path, &metadata, timeout, encoding).await?;
            let outbound = Outbound {
                max_send: self.inner.config.max_send_message_size,
                encoding,
                compression,
            };
            let mut pump = pin!(pump(send, requests, outbound));
            let mut pumping = true;
            let mut answer = pin!(async {
                let (headers, mut responses) = self.response_head::<Resp>(response).await?;
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
        let deadline = request.timeout.map(|t| Instant::now() + t);
        let (headers, responses) =
            within(deadline, self.open_with_message::<_, Resp>(path, request)).await?;
        let responses =
            responses.with_deadline(deadline.map(|d| Box::pin(tokio::time::sleep_until(d))));
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
            metadata,
            message: requests,
            timeout,
            compression,
        } = request;
        let deadline = timeout.map(|t| Instant::now() + t);
        let (headers, responses, guard) = within(deadline, async {
            let encoding = self.negotiate(compression.encoding);
            let (response, send) = self.start(path, &metadata, timeout, encoding).await?;
            let outbound = Outbound {
                max_send: self.inner.config.max_send_message_size,
                encoding,
                compression,
            };
            let (guard, stop) = oneshot::channel::<()>();
            tokio::spawn(async move {
                tokio::select! {
                    _ = pump(send, requests, outbound) => {}
                    _ = stop => {}
                }
            });
            let (headers, responses) = self.response_head::<Resp>(response).await?;
            Ok((headers, responses, guard))
        })
        .await?;
        let responses = responses
            .with_deadline(deadline.map(|d| Box::pin(tokio::time::sleep_until(d))))
            .with_pump_guard(Some(guard));
        Ok(Response::from_parts(headers, responses, Metadata::new()))
    }

    /// Open the stream: send the request headers.
    async fn start(
        &self,
        path: PathAndQuery,
        metadata: &Metadata,
        timeout: Option<Duration>,
        encoding: Option<Encoding>,
    ) -> Result<(ResponseFuture, SendStream<Bytes>), Status> {
        let uri = http::Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.inner.scheme.clone());
            parts.authority = Some(self.inner.authority.clone());
            parts.path_and_query = Some(path);
            parts
        })
        .map_err(|e| Status::internal(format!("invalid request path: {e}")))?;
        let mut request = http::Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(6 + metadata.len());
        headers.insert(http::header::CONTENT_TYPE, CONTENT_TYPE_GRPC);
        headers.insert(http::header::TE, TE_TRAILERS);
        headers.insert(http::header::USER_AGENT, self.inner.user_agent.clone());
        headers.insert("grpc-accept-encoding", ACCEPT_ENCODING_VALUE);
        if let Some(encoding) = encoding {
            headers.insert("grpc-encoding", encoding.header_value());
        }
        if let Some(timeout) = timeout {
            headers.insert("grpc-timeout", metadata::format_timeout(timeout));
        }
        metadata.copy_to(headers);
        let mut send = self.ready().await?;
        send.send_request(request, false)
            .map_err(|e| Status::from_h2(&e))
    }

    /// Wait for the response headers. A non-200 `:status` maps by the HTTP table; a
    /// Trailers-Only response ends here with its status.
    async fn response_head<Resp: prost::Message + Default>(
        &self,
        response: ResponseFuture,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let response = response.await.map_err(|e| Status::from_h2(&e))?;
        self.read_head(response)
    }

    /// Encode a call's one request message (compressed if negotiated) and send the call;
    /// the response headers and stream.
    async fn open_with_message<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: PathAndQuery,
        request: Request<Req>,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let Request {
            metadata,
            message,
            timeout,
            compression,
        } = request;
        let encoding = self.negotiate(compression.encoding);
        let body = framing::encode_with(
            &message,
            self.inner.config.max_send_message_size,
            compression.for_next_message(encoding),
        )?;
        self.send_single(path, &metadata, timeout, encoding, body)
            .await
    }

    /// Send a call whose request is one message already encoded, and wait for its
    /// response headers. A stream the server refused before processing it (RST_STREAM
    /// REFUSED_STREAM, or above the last stream id of a GOAWAY) is sent again on a
    /// live connection, transparently, as the spec allows.
    async fn send_single<Resp: prost::Message + Default>(
        &self,
        path: PathAndQuery,
        metadata: &Metadata,
        timeout: Option<Duration>,
        encoding: Option<Encoding>,
        body: Bytes,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let mut attempt = 1;
        loop {
            let (response, mut send) = self
                .start(path.clone(), metadata, timeout, encoding)
                .await?;
            // One message the caller already holds: h2 may queue it whole. An error here
            // shows again, with its cause, on the response.
            let _ = send.send_data(body.clone(), true);
            match response.await {
                Ok(response) => return self.read_head(response),
                Err(e) if attempt < MAX_TRANSPARENT_ATTEMPTS && never_processed(&e) => {
                    tracing::debug!(error = %e, attempt, "stream refused before processing; sending again");
                    attempt += 1;
                }
                Err(e) => return Err(Status::from_h2(&e)),
            }
        }
    }

    /// Check the response headers: a non-200 `:status` maps by the HTTP table; a
    /// Trailers-Only response ends here with its status.
    fn read_head<Resp: prost::Message + Default>(
        &self,
        response: http::Response<h2::RecvStream>,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let (head, body) = response.into_parts();
        if head.status != http::StatusCode::OK {
            return Err(Status::from_http(head.status));
        }
        if body.is_end_stream() {
            // Trailers-Only: the status is in these headers.
            return match Status::from_headers(head.headers.clone()) {
                Some(status) if status.is_ok() => Ok((
                    Metadata::new(),
                    Streaming::ended(body, Metadata::from_headers(head.headers)),
                )),
                Some(status) => Err(status),
                None => Err(Status::unknown("response ended without grpc-status")),
            };
        }
        if let Some(accept) = head.headers.get("grpc-accept-encoding") {
            self.learn_accepted(AcceptEncodings::parse(accept.as_bytes()));
        }
        if !is_grpc(&head.headers) {
            return Err(Status::unknown(format!(
                "response content-type {:?} is not application/grpc",
                head.headers.get(http::header::CONTENT_TYPE)
            )));
        }
        let encoding = match head.headers.get("grpc-encoding") {
            None => None,
            Some(name) => Encoding::parse(name.as_bytes()).map_err(|UnsupportedEncoding| {
                Status::internal(format!(
                    "the server compressed with {:?}, which this client does not support",
                    String::from_utf8_lossy(name.as_bytes())
                ))
            })?,
        };
        let max = self.inner.config.max_receive_message_size;
        let responses = Streaming::new(body, Side::Client, max, encoding);
        Ok((Metadata::from_headers(head.headers), responses))
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

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Run `call` under `deadline`: past it the call is dropped (its stream reset with
/// `CANCEL`) and the result is `DEADLINE_EXCEEDED`, whether or not the server answers.
async fn within<T>(
    deadline: Option<Instant>,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let Some(deadline) = deadline else {
        return call.await;
    };
    match tokio::time::timeout_at(deadline, call).await {
        Err(_elapsed) => Err(Status::deadline_exceeded("deadline exceeded")),
        Ok(Err(status)) => Err(past_deadline(status, deadline)),
        Ok(result) => result,
    }
}

/// A cancellation seen once the deadline has passed is the deadline's doing (the server
/// gave up on it): report DEADLINE_EXCEEDED, as the spec says.
pub(crate) fn past_deadline(status: Status, deadline: Instant) -> Status {
    if status.code() == crate::Code::Cancelled && Instant::now() >= deadline {
        Status::deadline_exceeded(format!("deadline exceeded ({})", status.message()))
    } else {
        status
    }
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

/// How the request messages of a streaming call are sent.
struct Outbound {
    max_send: usize,
    /// The call's negotiated encoding.
    encoding: Option<Encoding>,
    /// The request's compression choices (per-message switch).
    compression: Compression,
}

/// Send every message of `requests` as the server's window allows, then END_STREAM.
/// Messages ready together share a DATA frame (see [`Batch`]); the last frame carries
/// END_STREAM when the stream ends while a batch is being gathered.
async fn pump<Req: prost::Message>(
    mut send: SendStream<Bytes>,
    requests: impl Stream<Item = Req>,
    outbound: Outbound,
) {
    let mut requests = pin!(requests);
    let mut batch = Batch::default();
    let encode = |message: &Req| {
        let encoding = outbound.compression.for_next_message(outbound.encoding);
        framing::encode_with(message, outbound.max_send, encoding)
    };
    loop {
        let Some(first) = poll_fn(|cx| requests.as_mut().poll_next(cx)).await else {
            let _ = send.send_data(Bytes::new(), true);
            return;
        };
        let mut next = Some(first);
        let mut ended = false;
        while let Some(message) = next.take() {
            match encode(&message) {
                Ok(body) => batch.push(body),
                Err(status) => {
                    tracing::warn!(%status, "request message not sent; cancelling the call");
                    send.send_reset(h2::Reason::CANCEL);
                    return;
                }
            }
            if batch.is_full() {
                break;
            }
            match ready_now(&mut requests).await {
                Poll::Ready(Some(message)) => next = Some(message),
                Poll::Ready(None) => ended = true,
                Poll::Pending => {}
            }
        }
        if send_data(&mut send, batch.take(), ended).await.is_err() || ended {
            return;
        }
    }
}
