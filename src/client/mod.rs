//! The client's `Channel`: resolves its target (`host:port`, `http://host:port`,
//! `https://host:port`, `dns:`, `ipv4:`, `ipv6:`, `unix:`, or
//! the user's [`Resolver`]), keeps a subchannel per address, balances calls over them
//! (`pick_first` or `round_robin`), and tracks its connectivity state, reconnecting with
//! backoff. Cheap to clone: clones share everything.
//!
//! - `resolver`: targets and name resolution.
//! - `subchannel`: one address's connection and its states; `backoff`: the reconnect pacing.
//! - `balancer`: the control task, the policies and the picker calls use.
//! - `connect`: opening one connection (TCP or Unix, TLS, HTTP/2, keepalive).
//! - `call`: the four call kinds, one runner over a request side times a response side.
//! - `attempt`: the attempt engine every call goes through (transparent retry, retries
//!   and hedging by the method's policy); `retry`: throttle, backoff and pushback;
//!   `replay`: the replay buffer of a streaming request.

mod attempt;
mod backoff;
mod balancer;
mod call;
mod connect;
mod interceptor;
mod replay;
mod resolver;
mod retry;
mod service_config;
mod subchannel;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;

use crate::compression::PeerAccepts;
use crate::error::Error;
use crate::framing::{DEFAULT_MAX_RECEIVE_MESSAGE_SIZE, DEFAULT_MAX_SEND_MESSAGE_SIZE};
use crate::keepalive::{Calls, InFlight, Keepalive};
use crate::resolve::{IntoAddress, TcpOptions};
#[cfg(feature = "tls")]
use crate::tls::ClientTls;
use balancer::Settings;
use connect::Connector;
#[cfg(feature = "tls")]
use connect::Tls;
use resolver::{Source, Target, UriScheme};

pub use backoff::ConnectBackoff;
pub use interceptor::{InterceptFuture, Interceptor, Outgoing, interceptor_fn};
pub use replay::{DEFAULT_PER_RPC_BUFFER_LIMIT, DEFAULT_RETRY_BUFFER_SIZE};
pub use resolver::{DEFAULT_PORT, ManualResolver, ResolveFuture, Resolver};

pub use crate::stream::{
    DEFAULT_CONNECTION_WINDOW_BYTES, DEFAULT_DATA_FRAME_BUDGET_BYTES, DEFAULT_STREAM_WINDOW_BYTES,
};
pub use service_config::{
    CallPolicy, CodeSet, HedgingPolicy, LoadBalancing, MAX_ATTEMPTS_LIMIT, MAX_THROTTLING_TOKENS,
    MethodConfig, RetryPolicy, RetryThrottling, ServiceConfig, ServiceConfigError,
};
/// Default limit on a response's header list (headers or trailers), in bytes.
pub const DEFAULT_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// Default time one connection attempt may take at least (`connection-backoff.md`'s
/// `MIN_CONNECT_TIMEOUT`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default least time between two re-resolutions of the target (grpc-go's DNS
/// resolver waits 30 s).
pub const DEFAULT_MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default time without calls after which a channel closes its connections and goes
/// IDLE (grpc-go's 30 minutes).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A channel's connectivity state (gRPC's `connectivity-semantics-and-api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection and none being made; the next call (or
    /// [`Channel::state`]`(true)`) starts connecting.
    Idle,
    /// Connecting (resolving the target or opening connections).
    Connecting,
    /// Connected: calls go out at once.
    Ready,
    /// Connecting failed; attempts go on with backoff. Fail-fast calls fail
    /// `UNAVAILABLE`; wait-for-ready calls wait.
    TransientFailure,
    /// The channel is gone.
    Shutdown,
}

/// Settings the calls of a channel use.
struct CallSettings {
    max_receive_message_size: usize,
    max_send_message_size: usize,
    /// Bytes of request messages one streaming call may hold for replay.
    per_rpc_buffer_limit: usize,
    /// Bytes all the channel's calls may hold for replay.
    retry_buffer: Arc<replay::RetryBuffer>,
}

/// A client channel to a target: one or more servers, shared by every clone.
///
/// Calls pick a READY connection by the channel's [`LoadBalancing`] policy. While the
/// channel is connecting, calls wait; in TRANSIENT_FAILURE a call fails `UNAVAILABLE` at
/// once unless it is wait-for-ready ([`Request::set_wait_for_ready`](crate::Request::set_wait_for_ready)),
/// which waits for READY until its deadline. Calls in flight on a connection that dies
/// end `UNAVAILABLE`.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    settings: CallSettings,
    connector: Arc<Connector>,
    balancer: balancer::Handle,
    /// What the server advertised in `grpc-accept-encoding`.
    server_accepts: PeerAccepts,
    service_config: Option<ServiceConfig>,
    /// Retry throttling (A6), when the service config asks for it.
    throttle: Option<Arc<retry::RetryThrottle>>,
    /// Run around every call, in order.
    interceptors: Arc<[Arc<dyn Interceptor>]>,
}

/// Builds a [`Channel`] with non-default settings.
pub struct ChannelBuilder {
    target: String,
    authority: Option<String>,
    resolver: Option<Arc<dyn Resolver>>,
    max_receive_message_size: usize,
    max_send_message_size: usize,
    per_rpc_buffer_limit: usize,
    retry_buffer_size: usize,
    h2: h2::client::Builder,
    #[cfg(feature = "tls")]
    tls: Option<ClientTls>,
    keepalive: Option<Keepalive>,
    permit_without_calls: bool,
    tcp: TcpOptions,
    settings: Settings,
    /// Whether [`ChannelBuilder::load_balancing`] chose the policy (over the service config's).
    policy_chosen: bool,
    service_config: Option<Result<ServiceConfig, ServiceConfigError>>,
    interceptors: Vec<Arc<dyn Interceptor>>,
}

impl ChannelBuilder {
    /// Limit on one received message, in bytes (default 4 MiB).
    pub fn max_receive_message_size(mut self, bytes: usize) -> Self {
        self.max_receive_message_size = bytes;
        self
    }

    /// Limit on one sent message, in bytes.
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.max_send_message_size = bytes;
        self
    }

    /// Bytes of request messages one call under a retry or hedging policy may hold so
    /// that a new attempt can send them again (A6's per-RPC buffer limit; default
    /// [`DEFAULT_PER_RPC_BUFFER_LIMIT`]). A client- or bidi-streaming call whose messages
    /// grow past it commits to its current attempt: no more retries or hedges. A unary
    /// or server-streaming call whose message is bigger is sent once.
    pub fn per_rpc_buffer_limit(mut self, bytes: usize) -> Self {
        self.per_rpc_buffer_limit = bytes;
        self
    }

    /// Bytes of request messages all the channel's calls together may hold for retries
    /// and hedging (A6's retry buffer size; default [`DEFAULT_RETRY_BUFFER_SIZE`]). A
    /// message that does not fit commits its call as [`ChannelBuilder::per_rpc_buffer_limit`] does.
    pub fn retry_buffer_size(mut self, bytes: usize) -> Self {
        self.retry_buffer_size = bytes;
        self
    }

    /// Flow-control window of each stream, in bytes.
    pub fn stream_window_size(mut self, bytes: u32) -> Self {
        self.h2.initial_window_size(bytes);
        self
    }

    /// Flow-control window of the connection, in bytes.
    pub fn connection_window_size(mut self, bytes: u32) -> Self {
        self.h2.initial_connection_window_size(bytes);
        self
    }

    /// Bytes of small received DATA frames the connection may hold unread (h2's
    /// `data_frame_budget`; see [`DEFAULT_DATA_FRAME_BUDGET_BYTES`]).
    pub fn data_frame_budget(mut self, bytes: usize) -> Self {
        self.h2.data_frame_budget(bytes);
        self
    }

    /// Keepalive (gRFC A8): after `time` without reading anything from the server, send
    /// a PING; when nothing arrives within `timeout`
    /// ([`DEFAULT_KEEPALIVE_TIMEOUT`](crate::keepalive::DEFAULT_KEEPALIVE_TIMEOUT) is
    /// grpc-go's), close the connection, so calls on a dead connection end `UNAVAILABLE`
    /// instead of hanging, and the next call reconnects. Off by default, as in grpc-go.
    /// Pings go whether or not calls are in flight.
    pub fn keepalive(mut self, time: Duration, timeout: Duration) -> Self {
        self.keepalive = Some(Keepalive::new(time, timeout));
        self
    }

    /// Whether keepalive pings go while no call is in flight (A8's
    /// `permit_without_calls`; default `false`, as in grpc-go: an idle connection then
    /// stays quiet, and a server with strict enforcement is not bothered).
    pub fn keepalive_permit_without_calls(mut self, permit: bool) -> Self {
        self.permit_without_calls = permit;
        self
    }

    /// Turn on the kernel's TCP keepalive, first probe after `idle`.
    pub fn tcp_keepalive(mut self, idle: Duration) -> Self {
        self.tcp.keepalive = Some(idle);
        self
    }

    /// `TCP_USER_TIMEOUT` (gRFC A18; Linux): the kernel drops the connection when sent
    /// data stays unacknowledged for `timeout`.
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Self {
        self.tcp.user_timeout = Some(timeout);
        self
    }

    /// Time one connection attempt may take at least (the backoff's
    /// `min_connect_timeout`; an attempt also gets as long as its backoff wait).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.backoff.min_connect_timeout = timeout;
        self
    }

    /// Connect over TLS (scheme `https`), verifying the server with `tls`. (A target
    /// written `https://host:port` needs no call: it trusts the system's roots, as tonic's
    /// `tls-native-roots` does; `http://host:port` with this set is an error.) The name
    /// verified and sent as SNI is [`ClientTls::server_name`] if set, else the host of
    /// [`ChannelBuilder::authority`] if set, else the target's host. (Feature `tls`, on
    /// by default.)
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Send `authority` as `:authority` instead of the target (a name the server
    /// knows itself by, when connecting by address).
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// Spread calls by `policy` (default [`LoadBalancing::PICK_FIRST`]).
    pub fn load_balancing(mut self, policy: LoadBalancing) -> Self {
        self.settings.policy = policy;
        self.policy_chosen = true;
        self
    }

    /// Run `interceptor` around every call, after the ones added before it (see
    /// [`Interceptor`]).
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// The channel's service config (JSON, as gRPC's `service_config.md` defines it):
    /// per-method `timeout`, `waitForReady`, `maxRequestMessageBytes`,
    /// `maxResponseMessageBytes`, `retryPolicy` or `hedgingPolicy`; `retryThrottling`;
    /// `loadBalancingConfig` (used unless [`ChannelBuilder::load_balancing`] was called).
    /// Invalid JSON or values fail the build ([`Error::ServiceConfig`]).
    pub fn service_config(mut self, json: &str) -> Self {
        self.service_config = Some(ServiceConfig::from_json(json));
        self
    }

    /// Take addresses from `resolver` instead of resolving the target; the target then
    /// only names the `:authority` (and the TLS server name).
    pub fn resolver(mut self, resolver: impl Resolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Pacing of reconnection attempts (default: `connection-backoff.md`'s 1 s, ×1.6,
    /// ±20%, 120 s cap, 20 s minimum connect timeout).
    pub fn connect_backoff(mut self, backoff: ConnectBackoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Least time between two re-resolutions of the target, which happen when a
    /// connection is lost or fails (default [`DEFAULT_MIN_RESOLVE_INTERVAL`]).
    pub fn min_resolve_interval(mut self, interval: Duration) -> Self {
        self.settings.min_resolve_interval = interval;
        self
    }

    /// Close the connections and go IDLE after `timeout` without calls (default
    /// [`DEFAULT_IDLE_TIMEOUT`]; `None`: never). The channel notices within twice the timeout.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// A channel that connects on its first call (or [`Channel::state`]`(true)`).
    pub fn lazy(self) -> Result<Channel, Error> {
        self.build(None)
    }

    fn build(mut self, seed: Option<connect::Connected>) -> Result<Channel, Error> {
        let target = Target::parse(&self.target)?;
        // `https://` without a `tls(..)` trusts the system's roots; `http://` is plaintext.
        #[cfg(not(feature = "tls"))]
        if let Some(UriScheme::Https) = target.scheme {
            return Err(Error::Address(format!(
                "{}: https:// needs h2grpc's feature `tls` (off in this build)",
                self.target
            )));
        }
        #[cfg(feature = "tls")]
        let tls_config = match (self.tls.take(), target.scheme) {
            (Some(_), Some(UriScheme::Http)) => {
                return Err(Error::Address(format!(
                    "{}: http:// is plaintext but the channel has a TLS config: write https://",
                    self.target
                )));
            }
            (None, Some(UriScheme::Https)) => Some(ClientTls::with_native_roots().or_else(
                |e| {
                    tracing::debug!(error = %e, "no system roots; using the compiled-in Mozilla roots");
                    Ok::<_, Error>(ClientTls::with_webpki_roots())
                },
            )?),
            (tls, _) => tls,
        };
        let service_config = self.service_config.take().transpose()?;
        if let Some(policy) = service_config
            .as_ref()
            .and_then(ServiceConfig::load_balancing)
            && !self.policy_chosen
        {
            self.settings.policy = *policy;
        }
        let throttle = service_config
            .as_ref()
            .and_then(ServiceConfig::retry_throttling)
            .map(|t| Arc::new(retry::RetryThrottle::new(t)));
        let source = match self.resolver {
            Some(resolver) => Source::Custom(resolver),
            None => target.source,
        };
        let authority: http::uri::Authority = match &self.authority {
            None => target.authority,
            Some(a) => a.parse().map_err(|e| Error::Address(format!("{a}: {e}")))?,
        };
        #[cfg(feature = "tls")]
        let tls = match &tls_config {
            None => None,
            Some(tls) => Some(Tls {
                connector: TlsConnector::from(tls.config()?),
                name: tls.name_for(authority.host())?,
            }),
        };
        #[cfg(not(feature = "tls"))]
        let tls: Option<connect::Tls> = None;
        let scheme = if tls.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let connector = Arc::new(Connector {
            h2: self.h2,
            tls,
            tcp: self.tcp,
            keepalive: self.keepalive,
            keepalive_doublings: Arc::default(),
            calls: Arc::new(Calls::default()),
            permit_without_calls: self.permit_without_calls,
        });
        let balancer = balancer::Handle::new(source, self.settings, connector.clone(), seed);
        Ok(Channel {
            inner: Arc::new(Inner {
                target: self.target,
                scheme,
                authority,
                settings: CallSettings {
                    max_receive_message_size: self.max_receive_message_size,
                    max_send_message_size: self.max_send_message_size,
                    per_rpc_buffer_limit: self.per_rpc_buffer_limit,
                    retry_buffer: Arc::new(replay::RetryBuffer::new(self.retry_buffer_size)),
                },
                connector,
                balancer,
                server_accepts: PeerAccepts::new(),
                service_config,
                throttle,
                interceptors: self.interceptors.into(),
            }),
        })
    }

    /// A channel over an established byte stream (an in-memory duplex, a TLS stream).
    /// Its calls use this one connection; once it is gone, the channel connects to the
    /// target's addresses like any other.
    pub async fn connect_with<IO>(self, io: IO) -> Result<Channel, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // The handshake needs the connector the channel would build: build a throwaway
        // one from the same settings.
        let probe = Connector {
            h2: self.h2.clone(),
            tls: None,
            tcp: self.tcp,
            keepalive: self.keepalive,
            keepalive_doublings: Arc::default(),
            calls: Arc::new(Calls::default()),
            permit_without_calls: self.permit_without_calls,
        };
        let connected = probe.handshake(io, false).await?;
        self.build(Some(connected))
    }

    /// A channel connected now: it waits until a connection is READY. The error names
    /// the target, as a call's would.
    pub async fn connect(self) -> Result<Channel, Error> {
        let channel = self.lazy()?;
        let mut state = channel.state(true);
        loop {
            match state {
                ConnectivityState::Ready => return Ok(channel),
                ConnectivityState::TransientFailure | ConnectivityState::Shutdown => {
                    let why = channel
                        .inner
                        .balancer
                        .error()
                        .map_or_else(|| "no address is reachable".to_string(), |e| e.to_string());
                    return Err(Error::Connect(
                        channel.inner.target.clone(),
                        Box::new(Error::Unreachable(why)),
                    ));
                }
                _ => state = channel.wait_for_state_change(state).await,
            }
        }
    }
}

impl Channel {
    /// Start building a channel to `target` (see the [module docs](self) for the forms):
    /// `host:port`, `http://host:port` (plaintext), `https://host:port` (TLS with the
    /// system's roots unless [`ChannelBuilder::tls`] says otherwise), `dns:`, `ipv4:`,
    /// `ipv6:`, `unix:` targets, or a `SocketAddr`.
    pub fn builder(target: impl IntoAddress) -> ChannelBuilder {
        let mut h2 = h2::client::Builder::new();
        h2.initial_window_size(DEFAULT_STREAM_WINDOW_BYTES)
            .initial_connection_window_size(DEFAULT_CONNECTION_WINDOW_BYTES)
            .max_header_list_size(DEFAULT_MAX_HEADER_LIST_BYTES)
            .data_frame_budget(DEFAULT_DATA_FRAME_BUDGET_BYTES)
            .enable_push(false);
        ChannelBuilder {
            target: target.into_address(),
            authority: None,
            resolver: None,
            max_receive_message_size: DEFAULT_MAX_RECEIVE_MESSAGE_SIZE,
            max_send_message_size: DEFAULT_MAX_SEND_MESSAGE_SIZE,
            per_rpc_buffer_limit: DEFAULT_PER_RPC_BUFFER_LIMIT,
            retry_buffer_size: DEFAULT_RETRY_BUFFER_SIZE,
            h2,
            #[cfg(feature = "tls")]
            tls: None,
            keepalive: None,
            permit_without_calls: false,
            tcp: TcpOptions::default(),
            settings: Settings {
                policy: LoadBalancing::PICK_FIRST,
                backoff: ConnectBackoff::default(),
                min_resolve_interval: DEFAULT_MIN_RESOLVE_INTERVAL,
                idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            },
            policy_chosen: false,
            service_config: None,
            interceptors: Vec::new(),
        }
    }

    /// Connect to `target` with the default settings; waits until READY. `target` is
    /// any form [`Channel::builder`] takes: `"localhost:50051"`,
    /// `"http://localhost:50051"`, `"https://api.example.com"`, a `SocketAddr`.
    pub async fn connect(target: impl IntoAddress) -> Result<Channel, Error> {
        Channel::builder(target).connect().await
    }

    /// A channel to `target` that connects on its first call.
    pub fn lazy(target: impl IntoAddress) -> Result<Channel, Error> {
        Channel::builder(target).lazy()
    }

    /// The channel's connectivity state now; with `connect`, an IDLE channel starts
    /// connecting (gRPC's `GetState(try_to_connect)`).
    pub fn state(&self, connect: bool) -> ConnectivityState {
        self.inner.balancer.state(connect)
    }

    /// Wait until the state is no longer `from`, and return the new one.
    pub async fn wait_for_state_change(&self, from: ConnectivityState) -> ConnectivityState {
        self.inner.balancer.changed(from).await
    }

    /// The keepalive the channel's next connection uses: the configured one, its time
    /// doubled each time a server closed a connection for pinging too often.
    pub fn keepalive(&self) -> Option<Keepalive> {
        self.inner.connector.keepalive()
    }

    /// Count a call in flight (keepalive without calls, the idle timeout).
    pub(crate) fn call_started(&self) -> Option<InFlight> {
        Some(self.inner.connector.calls.start())
    }

    /// The target this channel connects to.
    pub fn target(&self) -> &str {
        &self.inner.target
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.inner.target)
            .field("state", &self.state(false))
            .finish()
    }
}
