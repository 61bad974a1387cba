//! `Request<T>` and `Response<T>`: a message (or a stream of them) with its metadata.

use std::sync::Arc;
use std::time::Duration;

use crate::compression::{Compression, CompressionSwitch, Encoding};
use crate::metadata::Metadata;
use crate::peer::Peer;

macro_rules! compression_methods {
    ($what:literal) => {
        /// Compress the outbound messages with `encoding` (when the peer accepts it; a peer
        /// that did not advertise it gets them uncompressed).
        pub fn set_compression(&mut self, encoding: Option<Encoding>) {
            self.compression.encoding = encoding;
        }

        /// Builder form of `set_compression`.
        pub fn with_compression(mut self, encoding: Encoding) -> Self {
            self.compression.encoding = Some(encoding);
            self
        }

        /// The encoding set for outbound messages.
        pub fn compression(&self) -> Option<Encoding> {
            self.compression.encoding
        }

        /// Decide message by message whether to compress: the switch is read before each
        /// message is sent.
        pub fn set_compression_switch(&mut self, switch: CompressionSwitch) {
            self.compression.switch = Some(switch);
        }

        #[doc = concat!("Whether the ", $what, " message arrived compressed (the flag was set).")]
        pub fn message_compressed(&self) -> bool {
            self.compression.received_compressed
        }
    };
}

/// A request: metadata plus a message (or, for client-streaming calls, a stream).
///
/// On the client, [`Request::set_timeout`] sets the call's deadline (sent as
/// `grpc-timeout` and enforced locally). On the server, [`Request::timeout`] is what
/// was left of the client's deadline when the call arrived.
#[derive(Debug)]
pub struct Request<T> {
    pub(crate) metadata: Metadata,
    pub(crate) message: T,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Compression,
    /// Server side: who sent it.
    pub(crate) peer: Option<Arc<Peer>>,
    /// Client side: wait for a READY connection instead of failing fast; `None`: as the
    /// channel's service config says (fail-fast if it says nothing).
    pub(crate) wait_for_ready: Option<bool>,
    /// Server side: values the server's interceptors left for the handler.
    pub(crate) extensions: http::Extensions,
}

impl<T> Request<T> {
    /// A request with no metadata and no deadline.
    pub fn new(message: T) -> Request<T> {
        Request {
            metadata: Metadata::new(),
            message,
            timeout: None,
            compression: Compression::default(),
            peer: None,
            wait_for_ready: None,
            extensions: http::Extensions::new(),
        }
    }

    /// A request from its parts.
    pub fn from_parts(metadata: Metadata, message: T, timeout: Option<Duration>) -> Request<T> {
        Request {
            metadata,
            message,
            timeout,
            compression: Compression::default(),
            peer: None,
            wait_for_ready: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Client side: make the call wait-for-ready (gRPC's `wait-for-ready.md`): while the
    /// channel cannot connect, the call waits for a READY connection until its deadline
    /// instead of failing `UNAVAILABLE` at once. Calls are fail-fast by default.
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = Some(wait);
    }

    /// [`Request::set_wait_for_ready`]`(true)`, by value.
    pub fn with_wait_for_ready(mut self) -> Request<T> {
        self.wait_for_ready = Some(true);
        self
    }

    /// Whether the call was made wait-for-ready (`true`) or fail-fast (`false`) on
    /// purpose; `None` leaves it to the channel's service config.
    pub fn wait_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// Server side: the connection's peer (its address, and over TLS the client's
    /// certificate chain and identity).
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_deref()
    }

    /// Server side: values the server's interceptors put here for the handler
    /// ([`CallContext::extensions_mut`](crate::server::CallContext::extensions_mut)),
    /// looked up by type. Empty on the client (extensions are never sent).
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Mutable [`Request::extensions`].
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
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

    /// The message, consuming the request: [`into_message`](Self::into_message) under
    /// tonic's name, so code written for tonic reads the same.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// The message: [`message`](Self::message) under tonic's name.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// Mutable message: [`message_mut`](Self::message_mut) under tonic's name.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
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
            compression: self.compression,
            peer: self.peer,
            wait_for_ready: self.wait_for_ready,
            extensions: self.extensions,
        }
    }

    compression_methods!("request");
}

impl<T> From<T> for Request<T> {
    fn from(message: T) -> Request<T> {
        Request::new(message)
    }
}

/// A response: header metadata, a message (or a stream of them), trailer metadata.
#[derive(Debug)]
pub struct Response<T> {
    pub(crate) metadata: Metadata,
    pub(crate) message: T,
    pub(crate) trailers: Metadata,
    pub(crate) compression: Compression,
    /// Server side: send the response headers as soon as the handler returns.
    pub(crate) headers_first: bool,
}

impl<T> Response<T> {
    /// A response with no metadata.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: Metadata::new(),
            message,
            trailers: Metadata::new(),
            compression: Compression::default(),
            headers_first: false,
        }
    }

    /// A response from its parts.
    pub fn from_parts(metadata: Metadata, message: T, trailers: Metadata) -> Response<T> {
        Response {
            metadata,
            message,
            trailers,
            compression: Compression::default(),
            headers_first: false,
        }
    }

    /// Server side: send the response headers as soon as the handler returns, instead
    /// of with the first message (so a client sees them before a slow first message).
    /// Without it, a response that ends before its first message is Trailers-Only when it
    /// has no header metadata, as grpc-go and grpc's C core answer.
    pub fn send_headers_first(&mut self) {
        self.headers_first = true;
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

    /// The message, consuming the response: [`into_message`](Self::into_message) under
    /// tonic's name, so code written for tonic reads the same.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// The message: [`message`](Self::message) under tonic's name.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// Mutable message: [`message_mut`](Self::message_mut) under tonic's name.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    compression_methods!("response");
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
