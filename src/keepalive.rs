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

/// How a server polices its clients' PINGs (grpc-go's `EnforcementPolicy`): a PING
/// sooner than `min_time` after the previous one, or any PING while no call is in flight
/// unless `permit_without_calls`, is a strike; past [`MAX_PING_STRIKES`] the connection is
/// closed with GOAWAY `ENHANCE_YOUR_CALM` (grpc-go adds the debug data `too_many_pings`,
/// which h2 cannot send; our client reacts to the code alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    /// The shortest interval between a client's PINGs (grpc-go's default: 5 minutes).
    pub min_time: Duration,
    /// Whether PINGs are allowed while the connection carries no call.
    pub permit_without_calls: bool,
}

/// Strikes a client gets before its connection is closed (grpc-go's 2).
pub const MAX_PING_STRIKES: u32 = 2;

/// When a connection last read something, and the PINGs it received, shared by its
/// transport and its watcher.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Nanoseconds after `base` of the last read.
    last_read: AtomicU64,
    /// PING frames (not acks) received, not yet taken.
    pings: std::sync::atomic::AtomicU32,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last_read: AtomicU64::new(0),
            pings: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// The PINGs received since the last call.
    pub(crate) fn take_pings(&self) -> u32 {
        self.pings.swap(0, Ordering::Relaxed)
    }

    fn touch(&self) {
        let now = self.base.elapsed().as_nanos() as u64;
        self.last_read.store(now, Ordering::Relaxed);
    }

    fn last_read(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_read.load(Ordering::Relaxed))
    }
}

/// A transport that records in an [`Activity`] when it last read bytes and, by reading
/// the HTTP/2 frame headers as they pass, how many PINGs came in.
pub(crate) struct ActivityIo<IO> {
    io: IO,
    activity: Arc<Activity>,
    frames: FrameHeaders,
}

impl<IO> ActivityIo<IO> {
    /// A server's transport: the client's 24-byte connection preface comes first.
    pub(crate) fn server(io: IO, activity: Arc<Activity>) -> ActivityIo<IO> {
        ActivityIo {
            io,
            activity,
            frames: FrameHeaders::after(CLIENT_PREFACE_LEN),
        }
    }

    /// A client's transport.
    pub(crate) fn client(io: IO, activity: Arc<Activity>) -> ActivityIo<IO> {
        ActivityIo {
            io,
            activity,
            frames: FrameHeaders::after(0),
        }
    }
}

const CLIENT_PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const FRAME_PING: u8 = 0x6;
const FLAG_ACK: u8 = 0x1;

/// Follows the frame boundaries of a received HTTP/2 byte stream, counting PINGs.
struct FrameHeaders {
    /// Bytes still to pass before the next frame header.
    skip: usize,
    header: [u8; FRAME_HEADER_LEN],
    have: usize,
}

impl FrameHeaders {
    fn after(skip: usize) -> FrameHeaders {
        FrameHeaders {
            skip,
            header: [0; FRAME_HEADER_LEN],
            have: 0,
        }
    }

    /// Read `bytes`; the number of PING frames (not acks) whose header completed in them.
    fn read(&mut self, mut bytes: &[u8]) -> u32 {
        let mut pings = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEADER_LEN - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == FRAME_HEADER_LEN {
                let h = self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                self.have = 0;
                if h[3] == FRAME_PING && h[4] & FLAG_ACK == 0 {
                    pings += 1;
                }
            }
        }
        pings
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
            let this = &mut *self;
            this.activity.touch();
            let pings = this.frames.read(&buf.filled()[before..]);
            if pings > 0 {
                this.activity.pings.fetch_add(pings, Ordering::Relaxed);
            }
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

/// The enforcement state of one server connection.
#[derive(Debug)]
pub(crate) struct Police {
    policy: Enforcement,
    last_ping: Option<Instant>,
    strikes: u32,
}

impl Police {
    pub(crate) fn new(policy: Enforcement) -> Police {
        Police {
            policy,
            last_ping: None,
            strikes: 0,
        }
    }

    /// A new call arrived: the client is doing work, its strikes are forgiven (as
    /// grpc-go forgives them when it sends data).
    pub(crate) fn forgive(&mut self) {
        self.strikes = 0;
    }

    /// Count `pings` that arrived now, with `calls` in flight; `true` when the client
    /// is past its strikes and the connection must be closed.
    pub(crate) fn pings(&mut self, pings: u32, calls: usize) -> bool {
        let now = Instant::now();
        for _ in 0..pings {
            let too_soon = match self.last_ping {
                Some(last) => now.duration_since(last) < self.policy.min_time,
                None => false,
            };
            let idle = calls == 0 && !self.policy.permit_without_calls;
            if too_soon || idle {
                self.strikes += 1;
            }
            self.last_ping = Some(now);
        }
        self.strikes > MAX_PING_STRIKES
    }
}

/// A client's calls in flight, for keepalive without pings while there are none, and
/// for the channel's idle timeout.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    in_flight: AtomicU64,
    started: AtomicU64,
}

impl Calls {
    /// Count one call until the returned guard drops.
    pub(crate) fn start(self: &Arc<Calls>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn any(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Calls in flight now, and calls ever started.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.in_flight.load(Ordering::Acquire),
            self.started.load(Ordering::Relaxed),
        )
    }
}

/// One call in flight (see [`Calls`]).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Calls>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Watch a connection: returns when the peer failed to answer a PING in time (the
/// caller then closes the connection). Runs for as long as the peer keeps answering;
/// returns at once if pings cannot be sent (the connection is closing). With `calls`,
/// no PING goes while no call is in flight.
pub(crate) async fn watch(
    mut pings: PingPong,
    activity: Arc<Activity>,
    keepalive: Keepalive,
    calls: Option<Arc<Calls>>,
) {
    loop {
        let idle_until = activity.last_read() + keepalive.time;
        if Instant::now() < idle_until {
            tokio::time::sleep_until(idle_until).await;
            continue;
        }
        if calls.as_ref().is_some_and(|c| !c.any()) {
            // Nothing in flight and pings without calls not wanted: look again later.
            tokio::time::sleep(keepalive.time.min(Duration::from_secs(1))).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn pings_are_counted_across_any_read_boundaries() {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        wire.extend(frame(0x4, 0, &[0; 6])); // SETTINGS
        wire.extend(frame(FRAME_PING, 0, &[1; 8]));
        wire.extend(frame(0x0, 0, &[FRAME_PING; 40])); // DATA that looks like PINGs
        wire.extend(frame(FRAME_PING, FLAG_ACK, &[2; 8])); // an ack: not counted
        wire.extend(frame(FRAME_PING, 0, &[3; 8]));
        for cut in 0..wire.len() {
            let mut f = FrameHeaders::after(CLIENT_PREFACE_LEN);
            let n = f.read(&wire[..cut]) + f.read(&wire[cut..]);
            assert_eq!(n, 2, "cut at {cut}");
        }
        let mut f = FrameHeaders::after(CLIENT_PREFACE_LEN);
        assert_eq!(wire.iter().map(|b| f.read(&[*b])).sum::<u32>(), 2);
    }

    #[test]
    fn strikes_follow_the_policy() {
        let mut police = Police::new(Enforcement {
            min_time: Duration::from_secs(60),
            permit_without_calls: false,
        });
        assert!(
            !police.pings(1, 1),
            "a first ping with a call in flight is fine"
        );
        assert!(!police.pings(1, 1)); // too soon: strike 1
        assert!(!police.pings(1, 1)); // strike 2
        police.forgive();
        assert!(!police.pings(2, 1)); // strikes 1, 2
        assert!(police.pings(1, 1), "the third strike closes the connection");
        let mut idle = Police::new(Enforcement {
            min_time: Duration::ZERO,
            permit_without_calls: false,
        });
        assert!(
            idle.pings(3, 0),
            "pings without calls are strikes when not permitted"
        );
        let mut permitted = Police::new(Enforcement {
            min_time: Duration::ZERO,
            permit_without_calls: true,
        });
        assert!(!permitted.pings(10, 0));
    }
}
