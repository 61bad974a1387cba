//! Server interceptors: async code run before every call's handler, in the order they
//! were added. An interceptor sees the method, the request metadata and the peer (its
//! address and, over TLS, its certificate chain and identity); it may refuse the call with
//! a `Status` (the handler then never runs and the call ends Trailers-Only), add response
//! headers and trailers, and hand values to the handler through the request's extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::metadata::Metadata;
use crate::peer::Peer;
use crate::status::Status;

/// The future an interceptor's [`Interceptor::intercept`] returns.
pub type InterceptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;

/// A call about to reach its handler, as an interceptor sees and changes it.
pub struct CallContext<'a> {
    pub(crate) path: &'a str,
    pub(crate) peer: &'a Peer,
    pub(crate) timeout: Option<Duration>,
    pub(crate) metadata: &'a mut Metadata,
    pub(crate) extensions: &'a mut http::Extensions,
    pub(crate) response: &'a mut ResponseExtras,
}

impl CallContext<'_> {
    /// The method, `/package.Service/Method`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// What was left of the client's deadline when the call arrived (`grpc-timeout`);
    /// the deadline also bounds the interceptors.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The request metadata (the client's custom headers).
    pub fn metadata(&self) -> &Metadata {
        self.metadata
    }

    /// The request metadata, to change what the handler will see (strip a credential,
    /// say).
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        self.metadata
    }

    /// The connection's peer: [`Peer::addr`], and over TLS [`Peer::certificates`] and
    /// [`Peer::identity`] (the client certificate's names, with mutual TLS).
    pub fn peer(&self) -> &Peer {
        self.peer
    }

    /// Values for the handler, read there with
    /// [`Request::extensions`](crate::Request::extensions).
    pub fn extensions(&self) -> &http::Extensions {
        self.extensions
    }

    /// Mutable [`CallContext::extensions`].
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        self.extensions
    }

    /// Metadata to send with the response headers, after the handler's own; also when
    /// the call fails before its headers went out, in the Trailers-Only answer.
    pub fn response_headers_mut(&mut self) -> &mut Metadata {
        &mut self.response.headers
    }

    /// Metadata to send with the status, after the handler's trailers, whatever the
    /// call ends with (a refusal, an error, a deadline, or `OK`).
    pub fn response_trailers_mut(&mut self) -> &mut Metadata {
        &mut self.response.trailers
    }
}

/// Code run before the handler of each call of a server ([`Server::interceptor`](super::Server::interceptor)).
///
/// `intercept` is async (look a token up, consult a cache). An error ends the call with
/// that status before the request message is read, as a Trailers-Only response; the
/// interceptors after it and the handler do not run.
pub trait Interceptor: Send + Sync + 'static {
    /// Before the handler: inspect the call, add response metadata or extensions, or
    /// refuse the call.
    fn intercept<'a>(&'a self, call: &'a mut CallContext<'_>) -> InterceptFuture<'a>;
}

/// An [`Interceptor`] from an async closure.
///
/// ```
/// use h2grpc::server::{CallContext, interceptor_fn};
/// use h2grpc::Status;
///
/// let require_tenant = interceptor_fn(|call: &mut CallContext<'_>| {
///     Box::pin(async move {
///         match call.metadata().get("x-tenant") {
///             Some(_) => Ok(()),
///             None => Err(Status::permission_denied("x-tenant is required")),
///         }
///     })
/// });
/// let _server = h2grpc::Server::new().interceptor(require_tenant);
/// ```
pub fn interceptor_fn<F>(f: F) -> impl Interceptor
where
    F: for<'a, 'b> Fn(&'a mut CallContext<'b>) -> InterceptFuture<'a> + Send + Sync + 'static,
{
    struct FnInterceptor<F>(F);
    impl<F> Interceptor for FnInterceptor<F>
    where
        F: for<'a, 'b> Fn(&'a mut CallContext<'b>) -> InterceptFuture<'a> + Send + Sync + 'static,
    {
        fn intercept<'a>(&'a self, call: &'a mut CallContext<'_>) -> InterceptFuture<'a> {
            (self.0)(call)
        }
    }
    FnInterceptor(f)
}

/// What interceptors add to a call's response.
#[derive(Debug, Default)]
pub(crate) struct ResponseExtras {
    pub headers: Metadata,
    pub trailers: Metadata,
}

/// A server's interceptors, in order; shared by every call (a clone is a reference count).
#[derive(Clone)]
pub(crate) struct Interceptors(Arc<[Arc<dyn Interceptor>]>);

impl Interceptors {
    /// `None` for an empty list: a server without interceptors carries nothing per call.
    pub(crate) fn new(list: &[Arc<dyn Interceptor>]) -> Option<Interceptors> {
        (!list.is_empty()).then(|| Interceptors(list.into()))
    }

    /// Run each interceptor in turn; the first error ends the run.
    pub(crate) async fn run(&self, call: &mut CallContext<'_>) -> Result<(), Status> {
        for interceptor in self.0.iter() {
            interceptor.intercept(call).await?;
        }
        Ok(())
    }
}
