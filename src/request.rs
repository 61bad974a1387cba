//! `Request<T>` and `Response<T>`: a message (or a stream of them) with its metadata.

use std::time::Duration;

use crate::metadata::Metadata;

/// A request: metadata plus a message (or, for client-streaming calls, a stream).
///
/// On the client, [`Request::set_timeout`] sets the call's deadline (sent as
/// `grpc-timeout` and enforced locally). On the server, [`Request::timeout`] is what
/// was left of the client's deadline when the call arrived.
#[derive(Debug)]
pub struct Request<T> {
    metadata: Metadata,
    message: T,
    timeout: Option<Duration>,
}

impl<T> Request<T> {
    /// A request with no metadata and no deadline.
    pub fn new(message: T) -> Request<T> {
        Request {
            metadata: Metadata::new(),
            message,
            timeout: None,
        }
    }

    /// A request from its parts.
    pub fn from_parts(metadata: Metadata, message: T, timeout: Option<Duration>) -> Request<T> {
        Request {
            metadata,
            message,
            timeout,
        }
    }

    /// Its parts.
    pub fn into_parts(self) -> (Metadata, T, Option<Duration>) {
        (self.metadata, self.message, self.timeout)
    }

    /// The request metadata (headers).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Mutable request metadata.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The message.
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Mutable message.
    pub fn message_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// The message, consuming the request.
    pub fn into_message(self) -> T {
        self.message
    }

    /// The call's timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Set the call's timeout (client side).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// Builder form of [`Request::set_timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Request<T> {
        self.timeout = Some(timeout);
        self
    }

    /// Same metadata and timeout, another message.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            timeout: self.timeout,
        }
    }
}

impl<T> From<T> for Request<T> {
    fn from(message: T) -> Request<T> {
        Request::new(message)
    }
}

/// A response: header metadata, a message (or a stream of them), trailer metadata.
#[derive(Debug)]
pub struct Response<T> {
    metadata: Metadata,
    message: T,
    trailers: Metadata,
}

impl<T> Response<T> {
    /// A response with no metadata.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: Metadata::new(),
            message,
            trailers: Metadata::new(),
        }
    }

    /// A response from its parts.
    pub fn from_parts(metadata: Metadata, message: T, trailers: Metadata) -> Response<T> {
        Response {
            metadata,
            message,
            trailers,
        }
    }

    /// Its parts: header metadata, message, trailer metadata.
    pub fn into_parts(self) -> (Metadata, T, Metadata) {
        (self.metadata, self.message, self.trailers)
    }

    /// Header metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Mutable header metadata (server side: sent with the response headers).
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Trailer metadata. On the client, for streaming responses, read the trailers from
    /// the [`Streaming`](crate::Streaming) once it has ended.
    pub fn trailers(&self) -> &Metadata {
        &self.trailers
    }

    /// Mutable trailer metadata (server side: sent with `grpc-status`).
    pub fn trailers_mut(&mut self) -> &mut Metadata {
        &mut self.trailers
    }

    /// The message.
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Mutable message.
    pub fn message_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// The message, consuming the response.
    pub fn into_message(self) -> T {
        self.message
    }
}

/// What a client-streaming or bidi method takes: a stream of messages, or a
/// [`Request`] around one (to add metadata or a timeout).
pub trait IntoStreamingRequest {
    /// The message type.
    type Message;
    /// The stream of messages.
    type Stream: futures_core::Stream<Item = Self::Message> + Send + 'static;
    /// The request.
    fn into_streaming_request(self) -> Request<Self::Stream>;
}

impl<S> IntoStreamingRequest for S
where
    S: futures_core::Stream + Send + 'static,
{
    type Message = S::Item;
    type Stream = S;
    fn into_streaming_request(self) -> Request<S> {
        Request::new(self)
    }
}

impl<S> IntoStreamingRequest for Request<S>
where
    S: futures_core::Stream + Send + 'static,
{
    type Message = S::Item;
    type Stream = S;
    fn into_streaming_request(self) -> Request<S> {
        self
    }
}
