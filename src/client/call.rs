//! The four call kinds on a [`Channel`]: request headers, the request message(s), the
//! response headers, message(s) and trailers turned into a `Status`, under the call's
//! deadline. Dropping a call's future (or its response stream) resets the h2 stream
//! with `CANCEL`, which the server sees as a cancellation.

use std::future::{Future, poll_fn};
use std::pin::pin;
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
use crate::framing;
use crate::metadata::{self, Metadata};
use crate::request::{Request, Response};
use crate::status::Status;
use crate::stream::{Side, Streaming, send_data};

const CONTENT_TYPE_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
const TE_TRAILERS: HeaderValue = HeaderValue::from_static("trailers");

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
        let (metadata, message, timeout) = request.into_parts();
        let deadline = timeout.map(|t| Instant::now() + t);
        within(deadline, async {
            let body = framing::encode(&message, self.inner.config.max_send_message_size)?;
            let (response, mut send) = self.start(path, metadata, timeout).await?;
            // One message the caller already holds: h2 may queue it whole.
            send.send_data(body, true)?;
            let (headers, mut responses) = self.response_head::<Resp>(response).await?;
            let message = single_response(&mut responses).await?;
            Ok(Response::from_parts(
                headers,
                message,
                responses.trailers().cloned().unwrap_or_default(),
            ))
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
        let (metadata, requests, timeout) = request.into_parts();
        let deadline = timeout.map(|t| Instant::now() + t);
        within(deadline, async {
            let (response, send) = self.start(path, metadata, timeout).await?;
            let mut pump = pin!(pump(
                send,
                requests,
                self.inner.config.max_send_message_size
            ));
            let mut pumping = true;
            let mut answer = pin!(async {
                let (headers, mut responses) = self.response_head::<Resp>(response).await?;
                let message = single_response(&mut responses).await?;
                Ok(Response::from_parts(
                    headers,
                    message,
                    responses.trailers().cloned().unwrap_or_default(),
                ))
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
        let (metadata, message, timeout) = request.into_parts();
        let deadline = timeout.map(|t| Instant::now() + t);
        let (headers, responses) = within(deadline, async {
            let body = framing::encode(&message, self.inner.config.max_send_message_size)?;
            let (response, mut send) = self.start(path, metadata, timeout).await?;
            send.send_data(body, true)?;
            self.response_head::<Resp>(response).await
        })
        .await?;
        let responses =
            responses.with_deadline(deadline.map(|d| Box::pin(tokio::time::sleep_until(d))));
        Ok(Response::from_parts(headers, responses, Metadata::new()))
    }

    /// A bidirectional-streaming call: the messages of `request` are sent by a task of
    /// their own (at the pace of the server's window) while the caller reads the
    /// response stream. Dropping the response stream stops the sending and cancels the call.
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
        let (metadata, requests, timeout) = request.into_parts();
        let deadline = timeout.map(|t| Instant::now() + t);
        let max_send = self.inner.config.max_send_message_size;
        let (headers, responses, guard) = within(deadline, async {
            let (response, send) = self.start(path, metadata, timeout).await?;
            let (guard, stop) = oneshot::channel::<()>();
            tokio::spawn(async move {
                tokio::select! {
                    _ = pump(send, requests, max_send) => {}
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
        metadata: Metadata,
        timeout: Option<Duration>,
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
        headers.reserve(4 + metadata.len());
        headers.insert(http::header::CONTENT_TYPE, CONTENT_TYPE_GRPC);
        headers.insert(http::header::TE, TE_TRAILERS);
        headers.insert(http::header::USER_AGENT, self.inner.user_agent.clone());
        if let Some(timeout) = timeout {
            headers.insert("grpc-timeout", metadata::format_timeout(timeout));
        }
        metadata.append_to(headers);
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
        if !is_grpc(&head.headers) {
            return Err(Status::unknown(format!(
                "response content-type {:?} is not application/grpc",
                head.headers.get(http::header::CONTENT_TYPE)
            )));
        }
        let responses = Streaming::new(
            body,
            Side::Client,
            self.inner.config.max_receive_message_size,
        );
        Ok((Metadata::from_headers(head.headers), responses))
    }
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
    match deadline {
        None => call.await,
        Some(deadline) => tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded"))),
    }
}

/// The one response of a unary or client-streaming call, read to the end of the stream.
async fn single_response<Resp: prost::Message + Default>(
    responses: &mut Streaming<Resp>,
) -> Result<Resp, Status> {
    let Some(message) = responses.message().await? else {
        return Err(Status::unimplemented(
            "the server sent no response message for a unary response",
        ));
    };
    if responses.message().await?.is_some() {
        return Err(Status::unimplemented(
            "the server sent more than one response message for a unary response",
        ));
    }
    Ok(message)
}

/// Send every message of `requests`, each as the server's window allows, then END_STREAM.
async fn pump<Req: prost::Message>(
    mut send: SendStream<Bytes>,
    requests: impl Stream<Item = Req>,
    max_send: usize,
) {
    let mut requests = pin!(requests);
    while let Some(message) = poll_fn(|cx| requests.as_mut().poll_next(cx)).await {
        let body = match framing::encode(&message, max_send) {
            Ok(body) => body,
            Err(status) => {
                tracing::warn!(%status, "request message not sent; cancelling the call");
                send.send_reset(h2::Reason::CANCEL);
                return;
            }
        };
        if send_data(&mut send, body, false).await.is_err() {
            return;
        }
    }
    let _ = send.send_data(Bytes::new(), true);
}
