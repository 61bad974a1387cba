//! The four call kinds on a [`Channel`]: request headers, the request message(s), the
//! response headers, message(s) and trailers turned into a `Status`, under the call's
//! deadline. Dropping a call's future (or its response stream) resets the h2 stream
//! with `CANCEL`, which the server sees as a cancellation.

use std::future::{Future, poll_fn};
use std::pin::pin;
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
use crate::compression::{Compression, Encoding};
use crate::deadline::Deadline;
use crate::framing::Decoder;
use crate::headers::{RequestHead, ResponseHead};
use crate::metadata::Metadata;
use crate::request::{Request, Response};
use crate::status::Status;
use crate::stream::{Encoder, Sender, Sent, Side, Streaming};

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
        let deadline = request.timeout.map(|t| Instant::now() + t);
        let _in_flight = self.call_started();
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
            wait_for_ready,
            ..
        } = request;
        let deadline = timeout.map(|t| Instant::now() + t);
        let _in_flight = self.call_started();
        within(deadline, async {
            let (response, sender) = self
                .start_streaming(path, &metadata, timeout, compression, wait_for_ready)
                .await?;
            let mut pump = pin!(pump(sender, requests));
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
        let in_flight = self.call_started();
        let (headers, responses) =
            within(deadline, self.open_with_message::<_, Resp>(path, request)).await?;
        let responses = responses
            .with_deadline(Deadline::at(deadline))
            .with_in_flight(in_flight);
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
            wait_for_ready,
            ..
        } = request;
        let deadline = timeout.map(|t| Instant::now() + t);
        let in_flight = self.call_started();
        let (headers, responses, guard) = within(deadline, async {
            let (response, sender) = self
                .start_streaming(path, &metadata, timeout, compression, wait_for_ready)
                .await?;
            let (guard, stop) = oneshot::channel::<()>();
            tokio::spawn(async move {
                tokio::select! {
                    _ = pump(sender, requests) => {}
                    _ = stop => {}
                }
            });
            let (headers, responses) = self.response_head::<Resp>(response).await?;
            Ok((headers, responses, guard))
        })
        .await?;
        let responses = responses
            .with_deadline(Deadline::at(deadline))
            .with_pump_guard(Some(guard))
            .with_in_flight(in_flight);
        Ok(Response::from_parts(headers, responses, Metadata::new()))
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

    /// The head of a request: its timeout, and the encoding negotiated for it.
    fn request_head(&self, timeout: Option<Duration>, wanted: Option<Encoding>) -> RequestHead {
        RequestHead {
            timeout,
            encoding: self.inner.server_accepts.request_encoding(wanted),
            accept: crate::compression::AcceptEncodings::ALL,
        }
    }

    /// Open a stream whose requests are a stream of messages: the response future and
    /// the request side's sender.
    async fn start_streaming(
        &self,
        path: PathAndQuery,
        metadata: &Metadata,
        timeout: Option<Duration>,
        compression: Compression,
        wait_for_ready: bool,
    ) -> Result<(ResponseFuture, Sender), Status> {
        let head = self.request_head(timeout, compression.encoding);
        let (response, send) = self.start(path, metadata, head, wait_for_ready).await?;
        let max = self.inner.settings.max_send_message_size;
        Ok((
            response,
            Sender::new(send, Encoder::new(max, head.encoding, compression)),
        ))
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
            wait_for_ready,
            ..
        } = request;
        let head = self.request_head(timeout, compression.encoding);
        let max = self.inner.settings.max_send_message_size;
        let encoder = Encoder::new(max, head.encoding, compression);
        let body = encoder.encode(&message)?;
        self.send_single(path, &metadata, head, encoder, body, wait_for_ready)
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
        head: RequestHead,
        encoder: Encoder,
        body: Bytes,
        wait_for_ready: bool,
    ) -> Result<(Metadata, Streaming<Resp>), Status> {
        let mut attempt = 1;
        loop {
            let (response, send) = self
                .start(path.clone(), metadata, head, wait_for_ready)
                .await?;
            // One message the caller already holds: h2 may queue it whole. An error here
            // shows again, with its cause, on the response.
            let mut sender = Sender::new(send, encoder.clone());
            sender.push(body.clone());
            let _ = sender.flush_whole(true);
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
        let (parts, body) = response.into_parts();
        if parts.status == http::StatusCode::OK && body.is_end_stream() {
            // Trailers-Only: the status is in these headers.
            return match Status::from_headers(parts.headers.clone()) {
                Some(status) if status.is_ok() => Ok((
                    Metadata::new(),
                    Streaming::ended(body, Metadata::from_headers(parts.headers)),
                )),
                Some(status) => Err(status),
                None => Err(Status::unknown("response ended without grpc-status")),
            };
        }
        let head = ResponseHead::parse(parts.status, &parts.headers)?;
        if let Some(accept) = head.accept {
            self.inner.server_accepts.learn(accept);
        }
        let decoder = Decoder::new(self.inner.settings.max_receive_message_size, head.encoding);
        let responses = Streaming::new(body, Side::Client, decoder);
        Ok((Metadata::from_headers(parts.headers), responses))
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
