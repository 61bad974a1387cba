//! Opening one connection: TCP (with the channel's socket options) or a Unix socket,
//! TLS when the channel has it (ALPN `h2` required), the HTTP/2 handshake, and the task
//! that drives the connection (with keepalive when configured).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use h2::client::SendRequest;
#[cfg(feature = "tls")]
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;

use super::resolver::Endpoint;
use crate::error::Error;
use crate::keepalive::{self, Activity, ActivityIo, Calls, Keepalive};
use crate::resolve::TcpOptions;
#[cfg(feature = "tls")]
use crate::tls::ALPN_H2;

/// Without the feature `tls` there is no TLS to have.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum Tls {}

/// How a channel secures its connections: the connector and the name it verifies.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) connector: TlsConnector,
    pub(crate) name: ServerName<'static>,
}

/// Everything a connection attempt needs, shared by a channel's subchannels.
pub(crate) struct Connector {
    pub(crate) h2: h2::client::Builder,
    pub(crate) tls: Option<Tls>,
    pub(crate) tcp: TcpOptions,
    pub(crate) keepalive: Option<Keepalive>,
    /// How many times the keepalive time was doubled at a server's request (GOAWAY
    /// `ENHANCE_YOUR_CALM`), shared by the channel's connections.
    pub(crate) keepalive_doublings: Arc<AtomicU32>,
    /// The channel's calls; keepalive pings only while some are in flight unless
    /// `permit_without_calls`.
    pub(crate) calls: Arc<Calls>,
    pub(crate) permit_without_calls: bool,
}

/// A live connection's other end: dropping `close` unsent leaves the connection to
/// finish its calls and close when they are done; sending on it closes the connection at
/// once (its calls, if any, end `UNAVAILABLE`).
pub(crate) struct Link {
    pub(crate) close: oneshot::Sender<()>,
    /// Completes when the connection has ended.
    pub(crate) ended: oneshot::Receiver<()>,
}

/// A new connection: the handle to open streams on, and its [`Link`].
pub(crate) type Connected = (SendRequest<Bytes>, Link);

impl Connector {
    /// The keepalive now: the configured time, doubled once per complaint.
    pub(crate) fn keepalive(&self) -> Option<Keepalive> {
        let k = self.keepalive?;
        let doublings = self.keepalive_doublings.load(Ordering::Relaxed);
        let time = k.time.saturating_mul(1 << doublings.min(20));
        Some(Keepalive { time, ..k })
    }

    /// Open one connection to `endpoint`.
    pub(crate) async fn connect(&self, endpoint: &Endpoint) -> Result<Connected, Error> {
        match endpoint {
            Endpoint::Tcp(addr) => {
                let socket = TcpStream::connect(addr).await?;
                self.tcp.apply(&socket)?;
                self.secure_and_handshake(socket).await
            }
            Endpoint::Unix(unix) => {
                let socket = unix.connect().await?;
                self.secure_and_handshake(socket).await
            }
            Endpoint::Given => Err(Error::Address(
                "a connection given to the channel cannot be redialled".into(),
            )),
        }
    }

    /// TLS (when the channel has it, ALPN `h2` required), then the HTTP/2 handshake.
    async fn secure_and_handshake<IO>(&self, io: IO) -> Result<Connected, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match &self.tls {
            None => self.handshake(io, true).await,
            Some(tls) => self.secure(tls, io).await,
        }
    }

    /// The TLS handshake (ALPN `h2` required), then the HTTP/2 handshake over it.
    #[cfg(feature = "tls")]
    async fn secure<IO>(&self, tls: &Tls, io: IO) -> Result<Connected, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let stream = tls
            .connector
            .connect(tls.name.clone(), io)
            .await
            .map_err(|e| Error::Tls(format!("handshake failed: {e}")))?;
        if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(Error::Tls(
                "the server did not negotiate ALPN h2 (gRPC needs it)".into(),
            ));
        }
        self.handshake(stream, true).await
    }

    #[cfg(not(feature = "tls"))]
    async fn secure<IO>(&self, tls: &Tls, _io: IO) -> Result<Connected, Error> {
        match *tls {}
    }

    /// The HTTP/2 handshake over `io`; the connection is driven by a task of its own,
    /// which ends when the connection does, when keepalive finds the peer silent, or
    /// when the [`Link`] closes it. With `probe`, it returns only once the server has
    /// answered a PING (a connection handed over by the user is taken as it is).
    pub(crate) async fn handshake<IO>(&self, io: IO, probe: bool) -> Result<Connected, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (close, closing) = oneshot::channel::<()>();
        let (done, ended) = oneshot::channel::<()>();
        // Closing is a sent signal; a dropped Link leaves the connection be.
        let closing = async move {
            if closing.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let link = Link { close, ended };
        let send = match self.keepalive() {
            None => self.drive(io, None, probe, closing, done).await?,
            Some(keepalive) => {
                let activity = Activity::new();
                let io = ActivityIo::client(io, activity.clone());
                self.drive(io, Some((keepalive, activity)), probe, closing, done)
                    .await?
            }
        };
        Ok((send, link))
    }

    /// The handshake, and the task that drives the connection until it ends, keepalive
    /// finds the peer silent, or `closing` completes; `done` then fires.
    async fn drive<IO>(
        &self,
        io: IO,
        keepalive: Option<(Keepalive, Arc<Activity>)>,
        probe: bool,
        closing: impl std::future::Future<Output = ()> + Send + 'static,
        done: oneshot::Sender<()>,
    ) -> Result<SendRequest<Bytes>, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut connection) = self.h2.handshake::<_, Bytes>(io).await?;
        let mut pings = connection.ping_pong();
        let doublings = self.keepalive_doublings.clone();
        let calls = (!self.permit_without_calls).then(|| self.calls.clone());
        let told = keepalive.as_ref().map(|(_, activity)| activity.clone());
        let (answered, answer) = oneshot::channel::<Result<(), h2::Error>>();
        tokio::spawn(async move {
            let watch = async {
                let Some(mut pings) = pings.take() else {
                    let _ = answered.send(Ok(()));
                    return std::future::pending().await;
                };
                // READY only once the server speaks HTTP/2: its SETTINGS come before
                // its answer to this PING (grpc-go waits for the SETTINGS too).
                if probe && let Err(e) = pings.ping(h2::Ping::opaque()).await {
                    let _ = answered.send(Err(e));
                    return std::future::pending().await;
                }
                let _ = answered.send(Ok(()));
                match keepalive {
                    Some((keepalive, activity)) => {
                        keepalive::watch(pings, activity, keepalive, calls).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!(error = %e, "client connection ended");
                    let calm = e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM);
                    if calm && told.is_some_and(|activity| activity.told_too_many_pings()) {
                        // The server finds our pings too frequent (A8, and only when its
                        // GOAWAY says `too_many_pings`, as grpc-go): halve their rate.
                        doublings.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings: doubling the keepalive time");
                    }
                },
                // Dropping the connection closes the socket: its calls end UNAVAILABLE.
                () = watch => {}
                () = closing => {}
            }
            let _ = done.send(());
        });
        match answer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the connection closed before the server's HTTP/2 SETTINGS arrived (not an HTTP/2 server, or TLS expected?)",
                )));
            }
        }
        Ok(send)
    }
}
