//! The client's `Channel`: connects to `host:port` trying every resolved address,
//! multiplexes calls over one h2 connection, and reconnects on the next call once
//! that connection has died. Cheap to clone: clones share the connection.

mod call;
// Used by the call path once the channel rewrite wires retries in.
#[allow(dead_code)]
mod retry;
mod service_config;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::uri::{Authority, Scheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::compression::PeerAccepts;
use crate::error::Error;
use crate::framing::{DEFAULT_MAX_RECEIVE_MESSAGE_SIZE, DEFAULT_MAX_SEND_MESSAGE_SIZE};
use crate::keepalive::{self, Activity, ActivityIo, Calls, InFlight, Keepalive};
use crate::resolve::resolve;
use crate::resolve::{TcpOptions, UnixAddr};
use crate::status::Status;
use crate::tls::{ALPN_H2, ClientTls};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

pub use crate::stream::{
    DEFAULT_CONNECTION_WINDOW_BYTES, DEFAULT_DATA_FRAME_BUDGET_BYTES, DEFAULT_STREAM_WINDOW_BYTES,
};
pub use service_config::{
    CallPolicy, CodeSet, HedgingPolicy, LoadBalancing, MAX_ATTEMPTS_LIMIT, MAX_THROTTLING_TOKENS,
    MethodConfig, RetryPolicy, RetryThrottling, ServiceConfig, ServiceConfigError,
};
/// Default limit on a response's header list (headers or trailers), in bytes.
pub const DEFAULT_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// Default time one connection attempt (TCP and HTTP/2 handshake) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of a channel.
#[derive(Clone)]
struct Config {
    max_receive_message_size: usize,
    max_send_message_size: usize,
    h2: h2::client::Builder,
    connect_timeout: Duration,
    tls: Option<ClientTls>,
    keepalive: Option<Keepalive>,
    /// How many times the keepalive time was doubled at a server's request (GOAWAY
    /// `ENHANCE_YOUR_CALM`), shared by the channel's connections.
    keepalive_doublings: Arc<std::sync::atomic::AtomicU32>,
    /// Counted only when keepalive must not ping without calls.
    calls: Option<Arc<Calls>>,
    tcp: TcpOptions,
}

impl Config {
    /// The keepalive now: the configured time, doubled once per complaint.
    fn keepalive(&self) -> Option<Keepalive> {
        let k = self.keepalive?;
        let doublings = self
            .keepalive_doublings
            .load(std::sync::atomic::Ordering::Relaxed);
        let time = k.time.saturating_mul(1 << doublings.min(20));
        Some(Keepalive { time, ..k })
    }
}

/// How a channel secures its connections: the connector and the name it verifies.
#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

/// A client connection to one server, shared by every clone.
///
/// Calls made while the connection is healthy share it; a call made after it died
/// (server gone, GOAWAY, network cut) opens a new one. Calls in flight on a connection
/// that dies end `UNAVAILABLE`.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    scheme: Scheme,
    authority: Authority,
    tls: Option<Tls>,
    /// A Unix domain socket target (`unix:path`, `unix-abstract:name`).
    unix: Option<UnixAddr>,
    config: Config,
    /// The current connection and its generation number.
    current: Mutex<Option<(SendRequest<Bytes>, u64)>>,
    /// Held while connecting, so one caller connects and the others wait for it.
    connecting: tokio::sync::Mutex<u64>,
    /// What the server advertised in `grpc-accept-encoding`.
    server_accepts: PeerAccepts,
}

/// Builds a [`Channel`] with non-default settings.
pub struct ChannelBuilder {
    target: String,
    authority: Option<String>,
    config: Config,
}

impl ChannelBuilder {
    /// Limit on one received message, in bytes (default 4 MiB).
    pub fn max_receive_message_size(mut self, bytes: usize) -> Self {
        self.config.max_receive_message_size = bytes;
        self
    }

    /// Limit on one sent message, in bytes.
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.config.max_send_message_size = bytes;
        self
    }

    /// Flow-control window of each stream, in bytes.
    pub fn stream_window_size(mut self, bytes: u32) -> Self {
        self.config.h2.initial_window_size(bytes);
        self
    }

    /// Flow-control window of the connection, in bytes.
    pub fn connection_window_size(mut self, bytes: u32) -> Self {
        self.config.h2.initial_connection_window_size(bytes);
        self
    }

    /// Bytes of small received DATA frames the connection may hold unread (h2's
    /// `data_frame_budget`; see [`DEFAULT_DATA_FRAME_BUDGET_BYTES`]).
    pub fn data_frame_budget(mut self, bytes: usize) -> Self {
        self.config.h2.data_frame_budget(bytes);
        self
    }

    /// Keepalive (gRFC A8): after `time` without reading anything from the server, send
    /// a PING; when nothing arrives within `timeout`
    /// ([`DEFAULT_KEEPALIVE_TIMEOUT`](crate::keepalive::DEFAULT_KEEPALIVE_TIMEOUT) is
    /// grpc-go's), close the connection, so calls on a dead connection end `UNAVAILABLE`
    /// instead of hanging, and the next call reconnects. Off by default, as in grpc-go.
    /// Pings go whether or not calls are in flight.
    pub fn keepalive(mut self, time: Duration, timeout: Duration) -> Self {
        self.config.keepalive = Some(Keepalive::new(time, timeout));
        if self.config.calls.is_none() {
            self.config.calls = Some(Arc::default());
        }
        self
    }

    /// Whether keepalive pings go while no call is in flight (A8's
    /// `permit_without_calls`; default `false`, as in grpc-go: an idle connection then
    /// stays quiet, and a server with strict enforcement is not bothered).
    pub fn keepalive_permit_without_calls(mut self, permit: bool) -> Self {
        self.config.calls = (!permit).then(Arc::default);
        self
    }

    /// Turn on the kernel's TCP keepalive, first probe after `idle`.
    pub fn tcp_keepalive(mut self, idle: Duration) -> Self {
        self.config.tcp.keepalive = Some(idle);
        self
    }

    /// `TCP_USER_TIMEOUT` (gRFC A18; Linux): the kernel drops the connection when sent
    /// data stays unacknowledged for `timeout`.
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Self {
        self.config.tcp.user_timeout = Some(timeout);
        self
    }

    /// Time one connection attempt may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Connect over TLS (scheme `https`), verifying the server with `tls`. The name
    /// verified and sent as SNI is [`ClientTls::server_name`] if set, else the host of
    /// [`ChannelBuilder::authority`] if set, else the target's host.
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Send `authority` as `:authority` instead of the target (a name the server
    /// knows itself by, when connecting by address).
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// A channel that connects on its first call.
    pub fn lazy(self) -> Result<Channel, Error> {
        let unix = UnixAddr::parse(&self.target);
        let target: Authority = if unix.is_some() {
            // What grpc-go sends for Unix targets.
            Authority::from_static("localhost")
        } else {
            self.target
                .parse()
                .map_err(|e| Error::Address(format!("{}: {e}", self.target)))?
        };
        if unix.is_none() && target.port_u16().is_none() {
            return Err(Error::Address(format!(
                "{}: a port is required",
                self.target
            )));
        }
        let authority: Authority = match &self.authority {
            None => target,
            Some(a) => a.parse().map_err(|e| Error::Address(format!("{a}: {e}")))?,
        };
        let tls = match &self.config.tls {
            None => None,
            Some(tls) => Some(Tls {
                connector: TlsConnector::from(tls.config()?),
                name: tls.name_for(authority.host())?,
            }),
        };
        Ok(Channel {
            inner: Arc::new(Inner {
                target: self.target,
                scheme: if tls.is_some() {
                    Scheme::HTTPS
                } else {
                    Scheme::HTTP
                },
                authority,
                tls,
                unix,
                config: self.config,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(0),
                server_accepts: PeerAccepts::new(),
            }),
        })
    }

    /// A channel over an established byte stream (an in-memory duplex, a TLS stream).
    /// Its calls use this one connection; once it is gone, the channel reconnects to
    /// the target over TCP like any other.
    pub async fn connect_with<IO>(self, io: IO) -> Result<Channel, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let channel = self.lazy()?;
        let send = handshake(io, &channel.inner.config).await?;
        *channel.inner.connecting.lock().await += 1;
        *channel
            .inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((send, 1));
        Ok(channel)
    }

    /// A channel connected now. The error names the target, as a call's would.
    pub async fn connect(self) -> Result<Channel, Error> {
        let channel = self.lazy()?;
        let generation = channel.current().map_or(0, |(_, g)| g);
        channel
            .reconnect(generation)
            .await
            .map_err(|e| Error::Connect(channel.inner.target.clone(), Box::new(e)))?;
        Ok(channel)
    }
}

impl Channel {
    /// Start building a channel to `target` (`host:port`).
    pub fn builder(target: impl Into<String>) -> ChannelBuilder {
        let mut h2 = h2::client::Builder::new();
        h2.initial_window_size(DEFAULT_STREAM_WINDOW_BYTES)
            .initial_connection_window_size(DEFAULT_CONNECTION_WINDOW_BYTES)
            .max_header_list_size(DEFAULT_MAX_HEADER_LIST_BYTES)
            .data_frame_budget(DEFAULT_DATA_FRAME_BUDGET_BYTES)
            .enable_push(false);
        ChannelBuilder {
            target: target.into(),
            authority: None,
            config: Config {
                max_receive_message_size: DEFAULT_MAX_RECEIVE_MESSAGE_SIZE,
                max_send_message_size: DEFAULT_MAX_SEND_MESSAGE_SIZE,
                h2,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                tls: None,
                keepalive: None,
                keepalive_doublings: Arc::default(),
                calls: None,
                tcp: TcpOptions::default(),
            },
        }
    }

    /// Connect to `target` (`host:port`) with the default settings.
    pub async fn connect(target: impl Into<String>) -> Result<Channel, Error> {
        Channel::builder(target).connect().await
    }

    /// A channel to `target` that connects on its first call.
    pub fn lazy(target: impl Into<String>) -> Result<Channel, Error> {
        Channel::builder(target).lazy()
    }

    /// The keepalive the channel's next connection uses: the configured one, its time
    /// doubled each time a server closed a connection for pinging too often.
    pub fn keepalive(&self) -> Option<Keepalive> {
        self.inner.config.keepalive()
    }

    /// Count a call in flight, when keepalive must not ping without calls.
    pub(crate) fn call_started(&self) -> Option<InFlight> {
        match (&self.inner.config.keepalive, &self.inner.config.calls) {
            (Some(_), Some(calls)) => Some(calls.start()),
            _ => None,
        }
    }

    /// The target this channel connects to.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    fn current(&self) -> Option<(SendRequest<Bytes>, u64)> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A handle on a live connection, ready for a new stream; reconnects when the
    /// current connection is dead.
    async fn ready(&self) -> Result<SendRequest<Bytes>, Status> {
        let generation = match self.current() {
            Some((send, generation)) => match send.ready().await {
                Ok(send) => return Ok(send),
                Err(e) => {
                    tracing::debug!(error = %e, "connection is gone; reconnecting");
                    generation
                }
            },
            None => 0,
        };
        let send = self.reconnect(generation).await.map_err(|e| {
            Status::unavailable(format!("failed to connect to {}: {e}", self.inner.target))
        })?;
        send.ready().await.map_err(|e| Status::from_h2(&e))
    }

    /// Replace the connection of generation `failed` with a new one (unless another
    /// caller already did).
    async fn reconnect(&self, failed: u64) -> Result<SendRequest<Bytes>, Error> {
        let mut generation = self.inner.connecting.lock().await;
        if let Some((send, g)) = self.current()
            && g != failed
        {
            return Ok(send);
        }
        let inner = &self.inner;
        let send = match &inner.unix {
            Some(unix) => connect_unix(unix, &inner.target, &inner.config, &inner.tls).await?,
            None => connect(&inner.target, &inner.config, &inner.tls).await?,
        };
        *generation += 1;
        *self.inner.current.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((send.clone(), *generation));
        Ok(send)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.inner.target)
            .finish()
    }
}

/// The HTTP/2 handshake over `io`; the connection is driven by a task of its own.
async fn handshake<IO>(io: IO, config: &Config) -> Result<SendRequest<Bytes>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(keepalive) = config.keepalive() else {
        let (send, connection) = config.h2.handshake::<_, Bytes>(io).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "client connection ended");
            }
        });
        return Ok(send);
    };
    let activity = Activity::new();
    let io = ActivityIo::client(io, activity.clone());
    let (send, mut connection) = config.h2.handshake::<_, Bytes>(io).await?;
    let pings = connection.ping_pong();
    let doublings = config.keepalive_doublings.clone();
    let calls = config.calls.clone();
    tokio::spawn(async move {
        let watch = async {
            match pings {
                Some(pings) => keepalive::watch(pings, activity, keepalive, calls).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = connection => if let Err(e) = ended {
                tracing::debug!(error = %e, "client connection ended");
                if e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) {
                    // The server finds our pings too frequent (A8): halve their rate.
                    doublings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("server sent GOAWAY ENHANCE_YOUR_CALM: doubling the keepalive time");
                }
            },
            // Dropping the connection closes the socket: its calls end UNAVAILABLE.
            () = watch => {}
        }
    });
    Ok(send)
}

/// TLS (when the channel has it, ALPN `h2` required), then the HTTP/2 handshake.
async fn secure_and_handshake<IO>(
    io: IO,
    peer: &str,
    config: &Config,
    tls: &Option<Tls>,
) -> Result<SendRequest<Bytes>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(tls) = tls else {
        return handshake(io, config).await;
    };
    let stream = tls
        .connector
        .connect(tls.name.clone(), io)
        .await
        .map_err(|e| Error::Tls(format!("handshake with {peer}: {e}")))?;
    if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
        return Err(Error::Tls(format!(
            "{peer} did not negotiate ALPN h2 (gRPC needs it)"
        )));
    }
    handshake(stream, config).await
}

/// Open one h2 connection over the Unix domain socket `unix`.
async fn connect_unix(
    unix: &UnixAddr,
    target: &str,
    config: &Config,
    tls: &Option<Tls>,
) -> Result<SendRequest<Bytes>, Error> {
    let attempt = async {
        let socket = unix.connect().await?;
        secure_and_handshake(socket, target, config, tls).await
    };
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {target} timed out"),
        ))),
    }
}

/// Open one h2 connection to the first address of `target` that answers.
async fn connect(
    target: &str,
    config: &Config,
    tls: &Option<Tls>,
) -> Result<SendRequest<Bytes>, Error> {
    let mut last_error = Error::Address(format!("{target} resolved to no address"));
    for addr in resolve(target).await? {
        let attempt = async {
            let socket = TcpStream::connect(addr).await?;
            config.tcp.apply(&socket)?;
            secure_and_handshake(socket, &addr.to_string(), config, tls).await
        };
        match tokio::time::timeout(config.connect_timeout, attempt).await {
            Ok(Ok(send)) => return Ok(send),
            Ok(Err(e)) => last_error = e,
            Err(_) => {
                last_error = Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting to {addr} timed out"),
                ))
            }
        }
    }
    Err(last_error)
}
