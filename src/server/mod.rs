//! The server: a builder with the h2 settings and settings, listeners on every address a
//! host name resolves to, one h2 connection task per socket, and graceful shutdown.
//!
//! # How calls run
//!
//! The connection task takes every stream h2 has ready, routes each one and polls its
//! call once, right there. A short call (the usual unary call, whose request arrived
//! whole) finishes in that poll, and its answer joins the answers of the other ready
//! streams in the connection's next flush: one write for the batch, not one per call.
//! A call that is still pending after that poll (it waits for more request data, a
//! timer, another service, or streams for long) moves to a task of its own, so it never
//! holds up the other calls on its connection. [`Server::spawn_calls`] gives every
//! call its own task from the start, for handlers that may block the thread.

mod call;
mod faults;
mod interceptor;
mod lifetime;
mod router;
mod web;

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
#[cfg(feature = "tls")]
use tokio_rustls::TlsAcceptor;

pub use call::{Call, CallFuture};
pub use interceptor::{CallContext, InterceptFuture, Interceptor, interceptor_fn};
pub use router::Service;
pub use web::{Cors, HttpHandler, http_fn};

use crate::error::Error;
use crate::exchange::{RecvBody, Respond};
use crate::framing::{DEFAULT_MAX_RECEIVE_MESSAGE_SIZE, DEFAULT_MAX_SEND_MESSAGE_SIZE};
use crate::http1;
use crate::keepalive::{Activity, ActivityIo, DEFAULT_KEEPALIVE_TIMEOUT, Enforcement, Keepalive};
use crate::peer::Peer;
use crate::resolve::{IntoAddress, TcpOptions, UnixAddr, resolve};
#[cfg(feature = "tls")]
use crate::tls::{ALPN_H2, ServerTls};
use call::{Accepting, Config};
use faults::{Fault, Faults};
use interceptor::Interceptors;
use lifetime::{Lifetime, Next};
use router::Router;

pub use crate::stream::{
    DEFAULT_CONNECTION_WINDOW_BYTES, DEFAULT_DATA_FRAME_BUDGET_BYTES, DEFAULT_STREAM_WINDOW_BYTES,
};
/// Default limit on concurrent streams per connection.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Default limit on a request's header list, in bytes (h2's own default is 16 MiB).
pub const DEFAULT_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Streams a client may reset before the server accepts them, per connection, before the
/// connection is closed with `ENHANCE_YOUR_CALM` (rapid-reset protection).
pub const DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 64;
/// Streams the server may reset for protocol errors, per connection, before it closes
/// the connection with `ENHANCE_YOUR_CALM`.
pub const DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Time a new connection has to complete the HTTP/2 preface and settings exchange.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight calls get to finish after a shutdown signal.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// Idle time after which the server PINGs a client (grpc-go's server default: 2 hours).
pub const DEFAULT_SERVER_KEEPALIVE_TIME: Duration = Duration::from_secs(2 * 3600);
/// How the server polices its clients' PINGs unless told otherwise (grpc-go's default
/// `EnforcementPolicy`): at most one PING per 5 minutes, none while no call is in flight.
pub const DEFAULT_ENFORCEMENT: Enforcement = Enforcement {
    min_time: Duration::from_secs(5 * 60),
    permit_without_calls: false,
};
pub use faults::DEFAULT_FAULT_SUMMARY_INTERVAL;

/// Shutdown states broadcast to connections.
const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const ABORTING: u8 = 2;

/// A gRPC server: services plus settings. Build it, then [`Server::bind`] or [`Server::serve`].
///
/// ```no_run
/// # async fn run(service: impl h2grpc::server::Service) -> Result<(), h2grpc::Error> {
/// h2grpc::Server::new()
///     .add_service(service)
///     .serve("localhost:23333") // or .serve_with_shutdown(addr, signal)
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    router: Router,
    interceptors: Vec<Arc<dyn Interceptor>>,
    config: Config,
    h2: h2::server::Builder,
    spawn_calls: bool,
    handshake_timeout: Duration,
    grace_period: Duration,
    #[cfg(feature = "tls")]
    tls: Option<ServerTls>,
    keepalive: Option<Keepalive>,
    enforcement: Option<Enforcement>,
    limits: ConnectionLimits,
    tcp: TcpOptions,
    fault_summary_interval: Duration,
    /// Serve gRPC-Web and Connect (and HTTP/1.1 for them) beside gRPC.
    web: bool,
    cors: Option<Cors>,
    http_handler: Option<Arc<dyn HttpHandler>>,
    /// The limits of HTTP/1.1 connections (only the head's read timeout is settable).
    http1: http1::Limits,
}

/// How long connections may live and how many there may be (gRFC A9).
#[derive(Debug, Clone, Copy, Default)]
struct ConnectionLimits {
    max_idle: Option<Duration>,
    max_age: Option<Duration>,
    max_age_grace: Option<Duration>,
    max_connections: Option<usize>,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A server with no services and the default settings.
    pub fn new() -> Server {
        let mut h2 = h2::server::Builder::new();
        h2.initial_window_size(DEFAULT_STREAM_WINDOW_BYTES)
            .initial_connection_window_size(DEFAULT_CONNECTION_WINDOW_BYTES)
            .max_concurrent_streams(DEFAULT_MAX_CONCURRENT_STREAMS)
            .max_header_list_size(DEFAULT_MAX_HEADER_LIST_BYTES)
            .max_pending_accept_reset_streams(DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS)
            .max_local_error_reset_streams(Some(DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS))
            .data_frame_budget(DEFAULT_DATA_FRAME_BUDGET_BYTES);
        Server {
            router: Router::default(),
            interceptors: Vec::new(),
            config: Config {
                max_receive_message_size: DEFAULT_MAX_RECEIVE_MESSAGE_SIZE,
                max_send_message_size: DEFAULT_MAX_SEND_MESSAGE_SIZE,
                send_compression: None,
            },
            h2,
            spawn_calls: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            grace_period: DEFAULT_GRACE_PERIOD,
            #[cfg(feature = "tls")]
            tls: None,
            keepalive: Some(Keepalive::new(
                DEFAULT_SERVER_KEEPALIVE_TIME,
                DEFAULT_KEEPALIVE_TIMEOUT,
            )),
            enforcement: Some(DEFAULT_ENFORCEMENT),
            limits: ConnectionLimits::default(),
            tcp: TcpOptions::default(),
            fault_summary_interval: DEFAULT_FAULT_SUMMARY_INTERVAL,
            web: true,
            cors: None,
            http_handler: None,
            http1: http1::Limits::default(),
        }
    }

    /// Serve gRPC-Web (`doc/PROTOCOL-WEB.md`) and the Connect protocol beside gRPC, on the
    /// same port, over HTTP/2 and HTTP/1.1, with protobuf or JSON messages (on by
    /// default, as connect-go serves all three). Off, the server speaks gRPC over HTTP/2
    /// only: other content types get HTTP 415, and a connection's first bytes are not
    /// looked at, so one that does not open with the HTTP/2 preface (an HTTP/1.1 request)
    /// is closed without an answer, as grpc-go's server does.
    pub fn web_protocols(mut self, on: bool) -> Server {
        self.web = on;
        self
    }

    /// Let browsers on other origins call the server (CORS preflights answered, responses
    /// exposing the status headers). Off by default.
    pub fn cors(mut self, cors: Cors) -> Server {
        self.cors = Some(cors);
        self
    }

    /// Time an HTTP/1.1 client has, from the first byte of a request, to send the whole
    /// request head (default 10 s); past it the server answers 408 and closes. It is
    /// what bounds a slowloris client, which holds a connection by sending its head a
    /// byte at a time. (HTTP/2 connections have [`Server::handshake_timeout`] instead.)
    pub fn http1_header_read_timeout(mut self, timeout: Duration) -> Server {
        self.http1.header_read_timeout = timeout;
        self
    }

    /// Answer the requests that are not calls (any path no service owns, a method other
    /// than a call's) with `handler`: a page, `/healthz`, `/metrics`. Without one they
    /// get 404.
    pub fn http_handler(mut self, handler: impl HttpHandler) -> Server {
        self.http_handler = Some(Arc::new(handler));
        self
    }

    /// Serve `service` (a generated `...Server<T>`). A second service of the same name replaces the first.
    pub fn add_service(mut self, service: impl Service) -> Server {
        for service in service.into_services() {
            self.router.add(service);
        }
        self
    }

    /// Run `interceptor` before the handler of every call; several run in the order they
    /// were added, and the first to refuse a call ends it (see [`Interceptor`]). A server
    /// without interceptors does no work for them per call.
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Server {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Limit on one received message, in bytes (default 4 MiB); larger is `RESOURCE_EXHAUSTED`.
    pub fn max_receive_message_size(mut self, bytes: usize) -> Server {
        self.config.max_receive_message_size = bytes;
        self
    }

    /// Limit on one sent message, in bytes; larger is `RESOURCE_EXHAUSTED`.
    pub fn max_send_message_size(mut self, bytes: usize) -> Server {
        self.config.max_send_message_size = bytes;
        self
    }

    /// Compress responses with `encoding` when their handler chose no encoding and the
    /// client accepts it (default: none).
    pub fn send_compression(mut self, encoding: Option<crate::Encoding>) -> Server {
        self.config.send_compression = encoding;
        self
    }

    /// Flow-control window of each stream, in bytes.
    pub fn stream_window_size(mut self, bytes: u32) -> Server {
        self.h2.initial_window_size(bytes);
        self
    }

    /// Flow-control window of each connection, in bytes.
    pub fn connection_window_size(mut self, bytes: u32) -> Server {
        self.h2.initial_connection_window_size(bytes);
        self
    }

    /// Bytes of small received DATA frames a connection may hold unread before h2 closes
    /// it with `ENHANCE_YOUR_CALM` (h2's `data_frame_budget`: flow control counts payload
    /// bytes, not the memory each frame costs). Peers that send one message per DATA
    /// frame to a slow handler need room here; see `DEFAULT_DATA_FRAME_BUDGET_BYTES`.
    pub fn data_frame_budget(mut self, bytes: usize) -> Server {
        self.h2.data_frame_budget(bytes);
        self
    }

    /// Limit on concurrent streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub fn max_concurrent_streams(mut self, streams: u32) -> Server {
        self.h2.max_concurrent_streams(streams);
        self
    }

    /// Limit on a request's header list, in bytes (`SETTINGS_MAX_HEADER_LIST_SIZE`).
    pub fn max_header_list_size(mut self, bytes: u32) -> Server {
        self.h2.max_header_list_size(bytes);
        self
    }

    /// Give every call its own task from the start (default: only calls that do not
    /// finish in their first poll). Use it when handlers may block the thread.
    pub fn spawn_calls(mut self, spawn: bool) -> Server {
        self.spawn_calls = spawn;
        self
    }

    /// Keepalive (gRFC A8) from the server's side: after `time` without reading anything
    /// from a client, send a PING; when nothing arrives within `timeout`, close the
    /// connection (its calls are cancelled). On by default, as in grpc-go: 2 hours
    /// ([`DEFAULT_SERVER_KEEPALIVE_TIME`]) and 20 seconds.
    pub fn keepalive(mut self, time: Duration, timeout: Duration) -> Server {
        self.keepalive = Some(Keepalive::new(time, timeout));
        self
    }

    /// Send no keepalive PINGs: a client that vanishes without a FIN or RST is noticed
    /// only by TCP (see [`Server::tcp_keepalive`]).
    pub fn disable_keepalive(mut self) -> Server {
        self.keepalive = None;
        self
    }

    /// Police the clients' keepalive PINGs (grpc-go's `EnforcementPolicy`): a PING sooner
    /// than `min_time` after the last, or while no call is in flight unless
    /// `permit_without_calls`, is a strike; after two, the connection is closed with
    /// GOAWAY `ENHANCE_YOUR_CALM` and the debug data `too_many_pings` (on which grpc-go's
    /// client, and ours, double their keepalive time). On by default with grpc-go's
    /// values, [`DEFAULT_ENFORCEMENT`]: 5 minutes, no pings without calls.
    pub fn keepalive_enforcement(
        mut self,
        min_time: Duration,
        permit_without_calls: bool,
    ) -> Server {
        self.enforcement = Some(Enforcement {
            min_time,
            permit_without_calls,
        });
        self
    }

    /// Accept any PINGs at any rate (grpc-go cannot turn enforcement off; C-core can).
    pub fn disable_keepalive_enforcement(mut self) -> Server {
        self.enforcement = None;
        self
    }

    /// Failures a client can cause at will (failed TLS or HTTP/2 handshakes, protocol
    /// errors, too many pings) are each logged at DEBUG; at WARN they are summed up with
    /// a count at most once per `interval` (default [`DEFAULT_FAULT_SUMMARY_INTERVAL`],
    /// a minute), so whoever connects cannot decide how much the server logs.
    pub fn fault_summary_interval(mut self, interval: Duration) -> Server {
        self.fault_summary_interval = interval;
        self
    }

    /// Close a connection that has had no call for `idle` (gRFC A9's MAX_CONNECTION_IDLE),
    /// gracefully: GOAWAY, and the client reconnects when it next calls. Default: never.
    pub fn max_connection_idle(mut self, idle: Duration) -> Server {
        self.limits.max_idle = Some(idle);
        self
    }

    /// Close each connection gracefully after about `age` (±10% jitter, so connections
    /// made together do not all go at once): GOAWAY, then the calls in flight get
    /// [`Server::max_connection_age_grace`] to finish. Spreads clients over new backends
    /// behind a load balancer. Default: never.
    pub fn max_connection_age(mut self, age: Duration) -> Server {
        self.limits.max_age = Some(age);
        self
    }

    /// Time calls in flight get after the max-age GOAWAY before the connection is
    /// closed (default: as long as they take).
    pub fn max_connection_age_grace(mut self, grace: Duration) -> Server {
        self.limits.max_age_grace = Some(grace);
        self
    }

    /// Serve at most `connections` connections at once. Past it, new connections are not
    /// accepted: they wait in the kernel's listen backlog (their TCP connect succeeds,
    /// the HTTP/2 handshake waits) until a connection closes, as Go's
    /// `netutil.LimitListener` does; the handshake timeout starts once accepted.
    pub fn max_connections(mut self, connections: usize) -> Server {
        self.limits.max_connections = Some(connections.max(1));
        self
    }

    /// Turn on the kernel's TCP keepalive on accepted sockets, first probe after `idle`
    /// (below gRPC's own keepalive; for peers that cannot ping).
    pub fn tcp_keepalive(mut self, idle: Duration) -> Server {
        self.tcp.keepalive = Some(idle);
        self
    }

    /// `TCP_USER_TIMEOUT` on accepted sockets (gRFC A18; Linux): a connection whose sent
    /// data stays unacknowledged for `timeout` is dropped by the kernel.
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Server {
        self.tcp.user_timeout = Some(timeout);
        self
    }

    /// Serve over TLS: every connection's first bytes are a TLS handshake, which must
    /// negotiate ALPN `h2`. Keep a clone of `tls` to [`ServerTls::reload`] its certificate.
    /// (Feature `tls`, on by default.)
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ServerTls) -> Server {
        self.tls = Some(tls);
        self
    }

    /// Time a new connection has to complete the TLS handshake (when TLS is on) and the
    /// HTTP/2 preface and settings exchange before it is closed (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Server {
        self.handshake_timeout = timeout;
        self
    }

    /// Time in-flight calls get to finish after a shutdown signal (default 10 s).
    pub fn grace_period(mut self, grace: Duration) -> Server {
        self.grace_period = grace;
        self
    }

    /// Bind every address `addr` (`host:port`, or a `SocketAddr`: any [`IntoAddress`], the
    /// types [`Channel::connect`](crate::Channel::connect) takes) resolves to; `localhost`
    /// gives IPv4 and IPv6. Fails only when no address can be bound.
    ///
    /// `unix:path`, `unix:/absolute/path` and `unix-abstract:name` listen on a Unix domain
    /// socket instead; a socket file left by an earlier process that no longer listens is
    /// replaced, and the file is removed when serving ends.
    pub async fn bind(self, addr: impl IntoAddress) -> Result<Listening, Error> {
        let addr = addr.into_address();
        let addr = addr.as_str();
        if let Some(unix) = UnixAddr::parse(addr) {
            let listener = unix
                .bind()
                .map_err(|e| Error::Address(format!("{addr}: {e}")))?;
            return Ok(Listening {
                server: self,
                listeners: vec![Listener::Unix(listener, unix)],
            });
        }
        let mut listeners = Vec::new();
        let mut last_error = None;
        for a in resolve(addr).await? {
            match TcpListener::bind(a).await {
                Ok(l) => listeners.push(Listener::Tcp(l)),
                Err(e) => {
                    tracing::warn!(address = %a, error = %e, "could not bind");
                    last_error = Some(e);
                }
            }
        }
        if listeners.is_empty() {
            return Err(last_error
                .map(Error::Io)
                .unwrap_or_else(|| Error::Address(addr.to_owned())));
        }
        Ok(Listening {
            server: self,
            listeners,
        })
    }

    /// Serve one connection over any byte stream (an in-memory duplex, a Unix socket, a
    /// TLS stream), until the peer closes it or it fails.
    pub async fn serve_io<IO>(&self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = match self.shared() {
            Ok(shared) => shared,
            Err(e) => return tracing::error!(error = %e, "cannot serve"),
        };
        // Never signalled: this connection runs until the peer ends it.
        let (_state, state_rx) = watch::channel(RUNNING);
        let deadline = Instant::now() + shared.handshake_timeout;
        let peer = Arc::new(Peer::default());
        serve_connection(io, &shared, state_rx, peer, deadline).await;
    }

    fn shared(&self) -> Result<Shared, Error> {
        self.router.on_serve();
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some(tls) => Some(TlsAcceptor::from(tls.config(self.web)?)),
            None => None,
        };
        let web = web::Web {
            enabled: self.web,
            descriptors: if self.web {
                self.router.descriptors()
            } else {
                Default::default()
            },
            cors: self.cors.clone(),
            handler: self.http_handler.clone(),
        };
        Ok(Shared {
            web,
            http1: self.http1.clone(),
            router: self.router.clone(),
            interceptors: Interceptors::new(&self.interceptors),
            config: self.config,
            h2: self.h2.clone(),
            spawn_calls: self.spawn_calls,
            handshake_timeout: self.handshake_timeout,
            #[cfg(feature = "tls")]
            tls,
            keepalive: self.keepalive,
            enforcement: self.enforcement,
            limits: self.limits,
            faults: Faults::new(self.fault_summary_interval),
            connections: self
                .limits
                .max_connections
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
        })
    }

    /// Bind `addr` and serve until the process ends. For a graceful stop, see
    /// [`Server::serve_with_shutdown`].
    pub async fn serve(self, addr: impl IntoAddress) -> Result<(), Error> {
        self.serve_with_shutdown(addr, std::future::pending()).await
    }

    /// Bind `addr` and serve until `signal` completes (for instance
    /// `server::shutdown_signal()`, feature `signal`), then shut down gracefully.
    pub async fn serve_with_shutdown(
        self,
        addr: impl IntoAddress,
        signal: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        self.bind(addr).await?.serve_with_shutdown(signal).await
    }
}

/// A server bound to its addresses, not yet serving.
pub struct Listening {
    server: Server,
    listeners: Vec<Listener>,
}

/// One bound socket.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, UnixAddr),
}

impl Listening {
    /// The bound TCP addresses (with the ports the OS chose for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(l) => l.local_addr().ok(),
                Listener::Unix(..) => None,
            })
            .collect()
    }

    /// Serve until `signal` completes; then send GOAWAY on every connection, let in-flight
    /// calls finish within the grace period, and close what is left.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        let Listening { server, listeners } = self;
        let shared = Arc::new(server.shared()?);
        let (state_tx, state_rx) = watch::channel(RUNNING);
        // Every connection holds a clone; when all are dropped, `recv` returns None.
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let mut socket_files = Vec::new();
        for listener in listeners {
            let (shared, state, alive) = (shared.clone(), state_rx.clone(), alive_tx.clone());
            match listener {
                Listener::Tcp(l) => {
                    let options = server.tcp;
                    tokio::spawn(accept_loop((l, options), shared, state, alive))
                }
                Listener::Unix(l, addr) => {
                    if let UnixAddr::Path(path) = addr {
                        socket_files.push(path);
                    }
                    tokio::spawn(accept_loop(l, shared, state, alive))
                }
            };
        }
        drop(alive_tx);
        signal.await;
        tracing::info!(
            "shutting down: no new connections, in-flight calls get {:?}",
            server.grace_period
        );
        shared.router.on_shutdown();
        let _ = state_tx.send(DRAINING);
        if tokio::time::timeout(server.grace_period, alive_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("grace period over: closing the remaining connections");
            let _ = state_tx.send(ABORTING);
            let _ = tokio::time::timeout(Duration::from_secs(1), alive_rx.recv()).await;
        }
        for path in socket_files {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

/// Ctrl-C or SIGTERM (feature `signal`).
#[cfg(feature = "signal")]
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// What every connection of one server shares.
struct Shared {
    web: web::Web,
    /// The limits of HTTP/1.1 connections (the web protocols).
    http1: http1::Limits,
    router: Router,
    interceptors: Option<Interceptors>,
    config: Config,
    h2: h2::server::Builder,
    spawn_calls: bool,
    handshake_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<TlsAcceptor>,
    keepalive: Option<Keepalive>,
    enforcement: Option<Enforcement>,
    limits: ConnectionLimits,
    /// Failures peers caused, for the WARN summary.
    faults: Faults,
    /// One permit per connection, when their number is limited.
    connections: Option<Arc<tokio::sync::Semaphore>>,
}

/// A listening socket of either kind.
trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection and the peer's address (TCP only).
    fn accept(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Io, Option<SocketAddr>)>> + Send;
}

impl Accept for (TcpListener, TcpOptions) {
    type Io = TcpStream;
    async fn accept(&self) -> std::io::Result<(TcpStream, Option<SocketAddr>)> {
        let (socket, addr) = self.0.accept().await?;
        if let Err(e) = self.1.apply(&socket) {
            tracing::warn!(peer = %addr, error = %e, "could not set TCP options");
        }
        Ok((socket, Some(addr)))
    }
}

impl Accept for UnixListener {
    type Io = UnixStream;
    async fn accept(&self) -> std::io::Result<(UnixStream, Option<SocketAddr>)> {
        let (socket, _addr) = UnixListener::accept(self).await?;
        Ok((socket, None))
    }
}

async fn accept_loop<L: Accept>(
    listener: L,
    shared: Arc<Shared>,
    mut state: watch::Receiver<u8>,
    alive: mpsc::Sender<()>,
) {
    loop {
        // Past the connection limit, wait for a connection to close before accepting.
        let permit = match &shared.connections {
            None => None,
            Some(limit) => tokio::select! {
                permit = limit.clone().acquire_owned() => permit.ok(),
                _ = state.wait_for(|&s| s != RUNNING) => return,
            },
        };
        let socket = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = state.wait_for(|&s| s != RUNNING) => return,
        };
        match socket {
            Ok((socket, addr)) => {
                let (shared, state, alive) = (shared.clone(), state.clone(), alive.clone());
                tokio::spawn(async move {
                    serve_socket(socket, addr, &shared, state).await;
                    drop((alive, permit));
                });
            }
            Err(e) => {
                // Out of descriptors and the like: back off a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// `duration` ±10%, at random.
fn jittered(duration: Duration) -> Duration {
    crate::random::jittered(duration, 0.1)
}

/// Serve one accepted socket: the TLS handshake first when the server has TLS (ALPN
/// `h2` required), then the connection. TLS and HTTP/2 handshakes together must end
/// within the handshake timeout.
async fn serve_socket<IO>(
    socket: IO,
    addr: Option<SocketAddr>,
    shared: &Shared,
    state: watch::Receiver<u8>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + shared.handshake_timeout;
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        // Boxed: inline, the TLS handshake's state would make every connection's task
        // about 2.5 KB larger, plaintext ones included (5.2 KB instead of 2.8 KB).
        return Box::pin(serve_tls(socket, addr, acceptor, shared, state, deadline)).await;
    }
    let peer = Arc::new(Peer::new(addr, Vec::new()));
    if shared.web.enabled {
        return serve_sniffed(socket, shared, state, peer, deadline, true).await;
    }
    serve_connection(socket, shared, state, peer, deadline).await
}

/// Tell HTTP/2 from HTTP/1.1 by the first bytes (the HTTP/2 preface or not), then serve
/// the connection in its version (HTTP/2 only when `http2`).
async fn serve_sniffed<IO>(
    mut io: IO,
    shared: &Shared,
    state: watch::Receiver<u8>,
    peer: Arc<Peer>,
    deadline: Instant,
    http2: bool,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sniffed, prefix) = match tokio::time::timeout_at(deadline, http1::sniff(&mut io)).await {
        Ok(Ok(sniffed)) => sniffed,
        Ok(Err(_)) | Err(_) => return,
    };
    let io = http1::Rewind::new(prefix, io);
    match sniffed {
        http1::Sniffed::Http2 if !http2 => {
            let why = "no ALPN h2 (gRPC needs it): connection closed";
            shared.faults.record(Fault::NoAlpnH2, peer.addr(), &why)
        }
        http1::Sniffed::Http2 => serve_connection(io, shared, state, peer, deadline).await,
        http1::Sniffed::Http1 => Box::pin(serve_http1(io, shared, state, peer)).await,
    }
}

/// Serve HTTP/1.1 on `io`: gRPC-Web and Connect calls, one at a time, and the plain HTTP
/// handler; gRPC itself needs HTTP/2 (505).
async fn serve_http1<IO>(io: IO, shared: &Shared, mut state: watch::Receiver<u8>, peer: Arc<Peer>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = async move {
        let _ = state.wait_for(|&s| s != RUNNING).await;
    };
    let accepting = Accepting {
        config: shared.config,
        router: &shared.router,
        interceptors: shared.interceptors.as_ref(),
        peer: &peer,
        web: &shared.web,
    };
    http1::serve(io, shared.http1.clone(), shutdown, |request, respond| {
        let (parts, body) = request.into_parts();
        call::accept(
            parts,
            RecvBody::Http1(body),
            Respond::Http1(respond),
            &accepting,
        )
    })
    .await
}

/// The TLS handshake (ALPN `h2` required), then the connection over it.
#[cfg(feature = "tls")]
async fn serve_tls<IO>(
    socket: IO,
    addr: Option<SocketAddr>,
    acceptor: &TlsAcceptor,
    shared: &Shared,
    state: watch::Receiver<u8>,
    deadline: Instant,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(socket)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return shared.faults.record(Fault::TlsHandshake, addr, &e),
        Err(_) => {
            tracing::debug!(peer = ?addr, "TLS handshake timed out");
            return;
        }
    };
    let session = tls.get_ref().1;
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let certificates = session
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let peer = Arc::new(Peer::new(addr, certificates));
    match alpn.as_deref() {
        Some(ALPN_H2) => serve_connection(tls, shared, state, peer, deadline).await,
        // The web protocols over HTTP/1.1; without ALPN, the first bytes tell.
        Some(crate::tls::ALPN_HTTP1) if shared.web.enabled => {
            Box::pin(serve_http1(tls, shared, state, peer)).await
        }
        // Without ALPN: HTTP/1.1 is served; gRPC still needs ALPN h2 (as grpc-go asks).
        None if shared.web.enabled => {
            serve_sniffed(tls, shared, state, peer, deadline, false).await
        }
        _ => {
            let why = "no ALPN h2 (gRPC needs it): connection closed";
            shared.faults.record(Fault::NoAlpnH2, addr, &why)
        }
    }
}

/// Serve one connection: accept every ready stream, start its call, and flush the
/// answers of all calls that finished at once in one write.
async fn serve_connection<IO>(
    io: IO,
    shared: &Shared,
    state: watch::Receiver<u8>,
    peer: Arc<Peer>,
    handshake_deadline: Instant,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Every transport (TCP, TLS, Unix, with or without the keepalive wrapper) as one
    // type: h2's connection code is compiled once, not once per transport. The cost is
    // one indirect call per read or write, not per call.
    if shared.keepalive.is_none() && shared.enforcement.is_none() {
        let io: Transport = Box::new(io);
        return drive(io, shared, state, peer, handshake_deadline, None).await;
    }
    let activity = Activity::new();
    let io: Transport = Box::new(ActivityIo::server(io, activity.clone()));
    drive(io, shared, state, peer, handshake_deadline, Some(activity)).await
}

/// A connection's byte stream, whatever carries it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Transport = Box<dyn Io>;

/// The HTTP/2 handshake, then the connection loop (see [`serve_connection`]): take every
/// ready stream and start its call; the [`Lifetime`] says when the connection must say
/// GOAWAY or end. With `activity` (the transport's reads, PINGs and GOAWAY debug data),
/// keepalive and ping enforcement are on.
async fn drive(
    io: Transport,
    shared: &Shared,
    state: watch::Receiver<u8>,
    peer: Arc<Peer>,
    handshake_deadline: Instant,
    activity: Option<Arc<Activity>>,
) {
    let handshake = shared.h2.handshake::<_, Bytes>(io);
    let mut conn = match tokio::time::timeout_at(handshake_deadline, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            shared.faults.record(Fault::Http2Handshake, peer.addr(), &e);
            return;
        }
        Err(_) => {
            tracing::debug!("h2 handshake timed out");
            return;
        }
    };
    let mut lifetime = Lifetime::new(
        &mut conn,
        state,
        activity,
        shared.keepalive,
        shared.enforcement,
        shared.limits,
    );
    let mut ready = Vec::new();
    poll_fn(|cx| {
        loop {
            // Read every buffered frame and take every ready stream; this also writes out
            // whatever the calls started below have queued, all in one flush.
            loop {
                match conn.poll_accept(cx) {
                    Poll::Ready(Some(Ok(stream))) => ready.push(stream),
                    Poll::Ready(Some(Err(e))) => {
                        shared.faults.record(Fault::Connection, peer.addr(), &e);
                        return Poll::Ready(());
                    }
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            match lifetime.poll(cx, &conn) {
                Poll::Ready(Next::Drain) => {
                    conn.graceful_shutdown();
                    continue;
                }
                Poll::Ready(Next::Close(reason)) => {
                    if reason == h2::Reason::ENHANCE_YOUR_CALM {
                        let why = "GOAWAY ENHANCE_YOUR_CALM too_many_pings";
                        shared.faults.record(Fault::TooManyPings, peer.addr(), &why);
                    }
                    conn.abrupt_shutdown(reason);
                    continue;
                }
                Poll::Ready(Next::Drop) => return Poll::Ready(()),
                Poll::Pending => {}
            }
            if ready.is_empty() {
                return Poll::Pending;
            }
            let accepting = Accepting {
                config: shared.config,
                router: &shared.router,
                interceptors: shared.interceptors.as_ref(),
                peer: &peer,
                web: &shared.web,
            };
            for (request, respond) in ready.drain(..) {
                let (parts, body) = request.into_parts();
                let Some(mut call) = call::accept(parts, body.into(), respond.into(), &accepting)
                else {
                    continue;
                };
                lifetime.call_started();
                if shared.spawn_calls || call.as_mut().poll(cx).is_pending() {
                    tokio::spawn(call);
                }
            }
            // A burst of new streams (hundreds at once) grows this list to tens of KB
            // (about 330 bytes a stream); do not keep that for the connection's lifetime.
            if ready.capacity() > 64 {
                ready = Vec::new();
            }
        }
    })
    .await;
}
