//! Keepalive (gRFC A8), the same on both sides: after `time` without reading anything
//! from the peer, send an HTTP/2 PING; if no byte (the ack or anything else) arrives
//! within `timeout`, the peer is gone (a NAT dropped the mapping, a host died without a
//! FIN or RST), and the connection is closed so its calls end at once instead of
//! hanging. `ActivityIo` wraps a connection's transport to note when it last read.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use h2::{Ping, PingPong};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Keepalive settings of one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time (nothing read) after which a PING is sent.
    pub time: Duration,
    /// Time the peer has to answer a PING before the connection is closed.
    pub timeout: Duration,
}

/// Default time to wait for a PING's ack (grpc-go's and C-core's 20 s).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The shortest keepalive time accepted; shorter values are raised to it. (grpc-go
/// raises a client's to 10 s; we leave the choice to the operator, and servers bound
/// pings with their own enforcement.)
pub const MIN_KEEPALIVE_TIME: Duration = Duration::from_millis(10);

impl Keepalive {
    /// PING after `time` idle, and give up `timeout` after an unanswered PING.
    pub fn new(time: Duration, timeout: Duration) -> Keepalive {
        Keepalive {
            time: time.max(MIN_KEEPALIVE_TIME),
            timeout,
        }
    }
}

/// When a connection last read something, shared by its transport and its watcher.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Nanoseconds after `base` of the last read.
    last_read: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last_read: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = self.base.elapsed().as_nanos() as u64;
        self.last_read.store(now, Ordering::Relaxed);
    }

    fn last_read(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_read.load(Ordering::Relaxed))
    }
}

/// A transport that records in an [`Activity`] when it last read bytes.
pub(crate) struct ActivityIo<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> ActivityIo<IO> {
    pub(crate) fn new(io: IO, activity: Arc<Activity>) -> ActivityIo<IO> {
        ActivityIo { io, activity }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ActivityIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ActivityIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Watch a connection: returns when the peer failed to answer a PING in time (the
/// caller then closes the connection). Runs for as long as the peer keeps answering;
/// returns at once if pings cannot be sent (the connection is closing).
pub(crate) async fn watch(mut pings: PingPong, activity: Arc<Activity>, keepalive: Keepalive) {
    loop {
        let idle_until = activity.last_read() + keepalive.time;
        if Instant::now() < idle_until {
            tokio::time::sleep_until(idle_until).await;
            continue;
        }
        let sent = Instant::now();
        if pings.send_ping(Ping::opaque()).is_err() {
            return;
        }
        let mut give_up = sent + keepalive.timeout;
        loop {
            let pong = std::future::poll_fn(|cx| pings.poll_pong(cx));
            match tokio::time::timeout_at(give_up, pong).await {
                Ok(Ok(_)) => break,
                Ok(Err(_)) => return,
                Err(_) => {
                    // Bytes that arrived meanwhile show the peer alive, only slow to ack.
                    let last = activity.last_read();
                    if last > sent && last + keepalive.timeout > Instant::now() {
                        give_up = last + keepalive.timeout;
                        continue;
                    }
                    tracing::debug!(
                        timeout = ?keepalive.timeout,
                        "keepalive PING unanswered: closing the connection"
                    );
                    return;
                }
            }
        }
    }
}
