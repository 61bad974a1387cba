//! Client interceptors: async code run around every call of a channel, in the order
//! they were added. Before the call an interceptor sees the method and may change the
//! outgoing metadata and the timeout, or fail the call with a `Status`; after, it sees the
//! response headers, and the final status with the trailers.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::metadata::Metadata;
use crate::status::Status;

/// The future an interceptor's [`Interceptor::before`] returns.
pub type InterceptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;

/// A call about to go out, as an interceptor sees and changes it.
pub struct Outgoing<'a> {
    pub(crate) path: &'a str,
    pub(crate) metadata: &'a mut Metadata,
    pub(crate) timeout: &'a mut Option<Duration>,
}

impl Outgoing<'_> {
    /// The method, `/package.Service/Method`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The request metadata, to read or change.
    pub fn metadata(&mut self) -> &mut Metadata {
        self.metadata
    }

    /// The call's timeout (its deadline, from now), to read or change.
    pub fn timeout(&mut self) -> &mut Option<Duration> {
        self.timeout
    }
}

/// Code run around each call of a channel ([`ChannelBuilder::interceptor`](super::ChannelBuilder::interceptor)).
///
/// `before` is async (fetch a token, consult a cache); `headers` and `end` observe. An
/// error from `before` fails the call with that status before anything is sent, and the
/// interceptors after it do not run.
pub trait Interceptor: Send + Sync + 'static {
    /// Before the call is sent: change metadata or timeout, or refuse the call.
    fn before<'a>(&'a self, call: &'a mut Outgoing<'_>) -> InterceptFuture<'a>;

    /// The response headers arrived (not called for a Trailers-Only response).
    fn headers(&self, _path: &str, _headers: &Metadata) {}

    /// The call ended with `status`; `trailers` when the server sent any.
    fn end(&self, _path: &str, _status: &Status, _trailers: Option<&Metadata>) {}
}

/// An [`Interceptor`] from an async closure that only acts before the call.
pub fn interceptor_fn<F>(f: F) -> impl Interceptor
where
    F: for<'a, 'b> Fn(&'a mut Outgoing<'b>) -> InterceptFuture<'a> + Send + Sync + 'static,
{
    struct FnInterceptor<F>(F);
    impl<F> Interceptor for FnInterceptor<F>
    where
        F: for<'a, 'b> Fn(&'a mut Outgoing<'b>) -> InterceptFuture<'a> + Send + Sync + 'static,
    {
        fn before<'a>(&'a self, call: &'a mut Outgoing<'_>) -> InterceptFuture<'a> {
            (self.0)(call)
        }
    }
    FnInterceptor(f)
}
