//! Keepalive (gRFC A8), the same on both sides: after `time` without reading anything
//! from the peer, send an HTTP/2 PING; if no byte (the ack or anything else) arrives
//! within `timeout`, the peer is gone (a NAT dropped the mapping, a host died without a
//! FIN or RST), and the connection is closed so its calls end at once instead of
//! hanging. `ActivityIo` wraps a connection's transport to note when it last read, count
//! the PINGs it receives (for the server's enforcement), read the debug data of a GOAWAY
//! it receives, and add the reason to the GOAWAY frames h2 writes (which h2 cannot).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
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
/// closed with GOAWAY `ENHANCE_YOUR_CALM` and the debug data `too_many_pings`, as grpc-go
/// sends it (on which grpc-go's client, and ours, double their keepalive time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    /// The shortest interval between a client's PINGs (grpc-go's default: 5 minutes).
    pub min_time: Duration,
    /// Whether PINGs are allowed while the connection carries no call.
    pub permit_without_calls: bool,
}

/// Strikes a client gets before its connection is closed (grpc-go's 2).
pub const MAX_PING_STRIKES: u32 = 2;

/// Why a connection is told to go away: the debug data its GOAWAY frames carry, as
/// grpc-go sends it (h2 writes GOAWAY without debug data; [`ActivityIo`] adds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum GoAwayWhy {
    /// The client pinged too often (with `ENHANCE_YOUR_CALM`).
    TooManyPings = 1,
    /// The connection reached its maximum age.
    MaxAge = 2,
    /// The connection had no call for its maximum idle time.
    MaxIdle = 3,
    /// The server is shutting down.
    GracefulStop = 4,
}

impl GoAwayWhy {
    /// The debug data, byte for byte as grpc-go's.
    pub(crate) fn debug_data(self) -> &'static [u8] {
        match self {
            GoAwayWhy::TooManyPings => TOO_MANY_PINGS,
            GoAwayWhy::MaxAge => b"max_age",
            GoAwayWhy::MaxIdle => b"max_idle",
            GoAwayWhy::GracefulStop => b"graceful_stop",
        }
    }

    fn from_u8(value: u8) -> Option<GoAwayWhy> {
        match value {
            1 => Some(GoAwayWhy::TooManyPings),
            2 => Some(GoAwayWhy::MaxAge),
            3 => Some(GoAwayWhy::MaxIdle),
            4 => Some(GoAwayWhy::GracefulStop),
            _ => None,
        }
    }
}

/// The debug data of a GOAWAY `ENHANCE_YOUR_CALM` sent for pinging too often; the only
/// one a client acts on (it doubles its keepalive time).
pub(crate) const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// When a connection last read something, the PINGs it received and what its GOAWAY
/// frames say, shared by its transport and the code that watches the connection.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Nanoseconds after `base` of the last read.
    last_read: AtomicU64,
    /// PING frames (not acks) received, not yet taken.
    pings: AtomicU32,
    /// The [`GoAwayWhy`] to write into GOAWAY frames sent from now on (0: none).
    goaway_why: AtomicU8,
    /// A GOAWAY received said `too_many_pings`.
    told_too_many_pings: AtomicBool,
    /// A DATA or HEADERS frame was written since [`Activity::take_data_written`] last
    /// looked: the peer's next PING is no strike (grpc-go's `resetPingStrikes`).
    data_written: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last_read: AtomicU64::new(0),
            pings: AtomicU32::new(0),
            goaway_why: AtomicU8::new(0),
            told_too_many_pings: AtomicBool::new(false),
            data_written: AtomicBool::new(false),
        })
    }

    /// The PINGs received since the last call.
    pub(crate) fn take_pings(&self) -> u32 {
        self.pings.swap(0, Ordering::Relaxed)
    }

    /// Whether a DATA or HEADERS frame was written since the last look.
    pub(crate) fn take_data_written(&self) -> bool {
        self.data_written.swap(false, Ordering::Relaxed)
    }

    /// Write `why` as the debug data of the GOAWAY frames h2 sends from now on.
    pub(crate) fn go_away_saying(&self, why: GoAwayWhy) {
        self.goaway_why.store(why as u8, Ordering::Relaxed);
    }

    /// Whether the peer sent a GOAWAY whose debug data is `too_many_pings`.
    pub(crate) fn told_too_many_pings(&self) -> bool {
        self.told_too_many_pings.load(Ordering::Relaxed)
    }

    fn touch(&self) {
        let now = self.base.elapsed().as_nanos() as u64;
        self.last_read.store(now, Ordering::Relaxed);
    }

    pub(crate) fn last_read(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_read.load(Ordering::Relaxed))
    }
}

/// A transport that records in an [`Activity`] when it last read bytes and, by reading
/// the HTTP/2 frame headers as they pass, how many PINGs came in and what a GOAWAY said.
/// On the way out it follows the frames written and, once the connection is told why it
/// goes away, adds that as debug data to the GOAWAY frames h2 writes.
pub(crate) struct ActivityIo<IO> {
    io: IO,
    activity: Arc<Activity>,
    frames: FrameHeaders,
    written: Written,
}

impl<IO> ActivityIo<IO> {
    /// A server's transport: the client's 24-byte connection preface comes first.
    pub(crate) fn server(io: IO, activity: Arc<Activity>) -> ActivityIo<IO> {
        ActivityIo {
            io,
            activity,
            frames: FrameHeaders::after(CLIENT_PREFACE_LEN),
            written: Written::after(0),
        }
    }

    /// A client's transport.
    pub(crate) fn client(io: IO, activity: Arc<Activity>) -> ActivityIo<IO> {
        ActivityIo {
            io,
            activity,
            frames: FrameHeaders::after(0),
            written: Written::after(CLIENT_PREFACE_LEN),
        }
    }
}

const CLIENT_PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const FRAME_DATA: u8 = 0x0;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_PING: u8 = 0x6;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
/// A GOAWAY's last stream id and error code, before any debug data.
const GOAWAY_FIXED_LEN: usize = 8;

/// Where a byte stream is in its HTTP/2 frames, whatever cuts it arrives in.
struct Boundaries {
    /// Bytes of the current frame's payload still to pass.
    skip: usize,
    header: [u8; FRAME_HEADER_LEN],
    /// Bytes of the next frame header seen so far.
    have: usize,
}

/// The next piece of a byte stream, by [`Boundaries::next`].
enum Piece<'a> {
    /// Payload bytes of the current frame (its length still to pass is `skip`).
    Payload(&'a [u8]),
    /// Bytes of a frame header not yet complete.
    Partial,
    /// A frame header completed: type and flags at 3 and 4, length already taken.
    Header([u8; FRAME_HEADER_LEN]),
}

impl Boundaries {
    fn after(skip: usize) -> Boundaries {
        Boundaries {
            skip,
            header: [0; FRAME_HEADER_LEN],
            have: 0,
        }
    }

    /// Pass whole frames at the front of `bytes` whose headers need no look (`look`
    /// says which do, by type and flags): the number of bytes passed. Stops before a
    /// header `look` wants, or a header cut by the end of `bytes`, for [`Boundaries::next`].
    /// Eight instructions or so a frame: the walk every write and read pays.
    #[inline]
    fn skim(&mut self, bytes: &[u8], look: impl Fn(u8, u8) -> bool) -> usize {
        if self.have != 0 {
            return 0;
        }
        let mut at = self.skip;
        while let Some(h) = bytes.get(at..at + FRAME_HEADER_LEN) {
            if look(h[3], h[4]) {
                break;
            }
            let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            at += FRAME_HEADER_LEN + len;
        }
        if at >= bytes.len() {
            self.skip = at - bytes.len();
            return bytes.len();
        }
        self.skip = 0;
        at
    }

    /// Take the next piece off the front of `bytes` (not empty).
    #[inline]
    fn next<'a>(&mut self, bytes: &mut &'a [u8]) -> Piece<'a> {
        if self.skip > 0 {
            let (payload, rest) = bytes.split_at(self.skip.min(bytes.len()));
            self.skip -= payload.len();
            *bytes = rest;
            return Piece::Payload(payload);
        }
        if self.have == 0
            && let Some((header, rest)) = bytes.split_first_chunk::<FRAME_HEADER_LEN>()
        {
            // The usual case, a whole header in the bytes: read it in place.
            self.header = *header;
            *bytes = rest;
        } else {
            let n = (FRAME_HEADER_LEN - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            *bytes = &bytes[n..];
            if self.have < FRAME_HEADER_LEN {
                return Piece::Partial;
            }
            self.have = 0;
        }
        self.skip = usize::from(self.header[0]) << 16
            | usize::from(self.header[1]) << 8
            | usize::from(self.header[2]);
        Piece::Header(self.header)
    }
}

/// What [`FrameHeaders::read`] found in the bytes it read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    /// PING frames (not acks).
    pings: u32,
    /// A GOAWAY whose debug data is `too_many_pings`.
    too_many_pings: bool,
}

/// Follows the frames of a received HTTP/2 byte stream, counting PINGs and reading the
/// debug data of a GOAWAY as far as `too_many_pings` is long.
struct FrameHeaders {
    at: Boundaries,
    /// In a GOAWAY with debug data: payload bytes passed so far, and the debug data's
    /// first bytes.
    goaway: Option<(usize, [u8; TOO_MANY_PINGS.len()])>,
}

impl FrameHeaders {
    fn after(skip: usize) -> FrameHeaders {
        FrameHeaders {
            at: Boundaries::after(skip),
            goaway: None,
        }
    }

    /// Read `bytes`, which follow the bytes read before.
    fn read(&mut self, mut bytes: &[u8]) -> Seen {
        let mut seen = Seen::default();
        if self.goaway.is_none() {
            let look = |kind, _| kind == FRAME_PING || kind == FRAME_GOAWAY;
            bytes = &bytes[self.at.skim(bytes, look)..];
        }
        while !bytes.is_empty() {
            match self.at.next(&mut bytes) {
                Piece::Payload(payload) => {
                    let Some((at, debug)) = &mut self.goaway else {
                        continue;
                    };
                    for &b in payload {
                        if let Some(slot) = at.checked_sub(GOAWAY_FIXED_LEN)
                            && let Some(d) = debug.get_mut(slot)
                        {
                            *d = b;
                        }
                        *at += 1;
                    }
                    if self.at.skip == 0 {
                        let full = GOAWAY_FIXED_LEN + TOO_MANY_PINGS.len();
                        seen.too_many_pings |= *at == full && debug == TOO_MANY_PINGS;
                        self.goaway = None;
                    }
                }
                Piece::Partial => {}
                Piece::Header(h) => {
                    if h[3] == FRAME_PING && h[4] & FLAG_ACK == 0 {
                        seen.pings += 1;
                    }
                    if h[3] == FRAME_GOAWAY && self.at.skip > GOAWAY_FIXED_LEN {
                        self.goaway = Some((0, [0; TOO_MANY_PINGS.len()]));
                    }
                }
            }
        }
        seen
    }
}

/// Follows the frames written, and rewrites them once the connection is told why it goes
/// away: a GOAWAY frame that h2 writes without debug data goes out with it. Until then
/// bytes pass untouched (only their frame headers are followed: a few instructions a
/// frame); after, they are copied into `out` and written from there.
struct Written {
    at: Boundaries,
    /// Of the header bytes seen so far, those already written as they were.
    header_sent: usize,
    /// Debug data to write once the current frame's payload has passed.
    then: &'static [u8],
    /// Rewritten bytes not yet written, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
}

impl Written {
    fn after(skip: usize) -> Written {
        Written {
            at: Boundaries::after(skip),
            header_sent: 0,
            then: &[],
            out: Vec::new(),
            out_at: 0,
        }
    }

    /// `bytes` were written as they are: follow their frame headers. With `find_data`,
    /// say whether a DATA or HEADERS frame begins in them (looked for only until found:
    /// the caller asks again only once the finding was taken).
    fn passed(&mut self, mut bytes: &[u8], find_data: bool) -> bool {
        let mut found = false;
        if find_data {
            let is_data = |kind, _| kind == FRAME_DATA || kind == FRAME_HEADERS;
            bytes = &bytes[self.at.skim(bytes, is_data)..];
            while !found && !bytes.is_empty() {
                if let Piece::Header(h) = self.at.next(&mut bytes) {
                    found = is_data(h[3], h[4]);
                }
            }
        }
        bytes = &bytes[self.at.skim(bytes, |_, _| false)..];
        while !bytes.is_empty() {
            self.at.next(&mut bytes);
        }
        self.header_sent = self.at.have;
        found
    }

    /// Take `bytes` into `out`, giving each GOAWAY without debug data `debug`.
    fn rewrite(&mut self, mut bytes: &[u8], debug: &'static [u8]) {
        while !bytes.is_empty() {
            match self.at.next(&mut bytes) {
                Piece::Payload(payload) => {
                    self.out.extend_from_slice(payload);
                    if self.at.skip == 0 {
                        self.out.extend_from_slice(std::mem::take(&mut self.then));
                    }
                }
                // Held until whole: its length may change.
                Piece::Partial => {}
                Piece::Header(mut h) => {
                    // A header begun before the rewriting started went out in part as
                    // it was: the rest follows unchanged.
                    let sent = std::mem::take(&mut self.header_sent);
                    if sent == 0 && h[3] == FRAME_GOAWAY && self.at.skip == GOAWAY_FIXED_LEN {
                        let len = (GOAWAY_FIXED_LEN + debug.len()) as u32;
                        h[..3].copy_from_slice(&len.to_be_bytes()[1..]);
                        self.then = debug;
                    }
                    self.out.extend_from_slice(&h[sent..]);
                }
            }
        }
    }

    fn pending(&self) -> bool {
        self.out_at < self.out.len()
    }
}

impl<IO: AsyncWrite + Unpin> ActivityIo<IO> {
    /// Write out what [`Written::rewrite`] holds.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written.pending() {
            let w = &mut self.written;
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &w.out[w.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            w.out_at += n;
        }
        self.written.out.clear();
        self.written.out_at = 0;
        Poll::Ready(Ok(()))
    }

    /// Follow `bytes` written as they were, and note in the activity when a DATA or
    /// HEADERS frame went out (one relaxed load a write once noted, until taken).
    fn note_written(&mut self, bytes: &[u8]) {
        let find = !self.activity.data_written.load(Ordering::Relaxed);
        if self.written.passed(bytes, find) {
            self.activity.data_written.store(true, Ordering::Relaxed);
        }
    }

    /// Once the connection is told why it goes away: the debug data to add.
    fn rewriting(&self) -> Option<&'static [u8]> {
        GoAwayWhy::from_u8(self.activity.goaway_why.load(Ordering::Relaxed))
            .map(GoAwayWhy::debug_data)
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
            let seen = this.frames.read(&buf.filled()[before..]);
            if seen.pings > 0 {
                this.activity.pings.fetch_add(seen.pings, Ordering::Relaxed);
            }
            if seen.too_many_pings {
                let told = &this.activity.told_too_many_pings;
                told.store(true, Ordering::Relaxed);
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
        let this = &mut *self;
        if let Some(debug) = this.rewriting() {
            ready!(this.poll_drain(cx))?;
            this.written.rewrite(buf, debug);
            // Taken whole: what the socket does not take now goes out on the next call.
            let _ = this.poll_drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.note_written(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(debug) = this.rewriting() {
            ready!(this.poll_drain(cx))?;
            let mut total = 0;
            for buf in bufs {
                this.written.rewrite(buf, debug);
                total += buf.len();
            }
            let _ = this.poll_drain(cx)?;
            return Poll::Ready(Ok(total));
        }
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = written;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let n = left.min(buf.len());
            this.note_written(&buf[..n]);
            left -= n;
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
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

    /// The server wrote DATA or HEADERS since the PINGs last counted: the strikes are
    /// forgiven and the next PING is not too soon (grpc-go resets its strikes when it
    /// writes either; a client's BDP pings answer the server's DATA frames).
    pub(crate) fn data_written(&mut self) {
        self.strikes = 0;
        self.last_ping = None;
    }

    /// Count `pings` that arrived now, while the connection carries calls or not; `true`
    /// when the client is past its strikes and the connection must be closed.
    pub(crate) fn pings(&mut self, pings: u32, calls: bool) -> bool {
        let now = Instant::now();
        for _ in 0..pings {
            let too_soon = match self.last_ping {
                Some(last) => now.duration_since(last) < self.policy.min_time,
                None => false,
            };
            let idle = !calls && !self.policy.permit_without_calls;
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
            let n = f.read(&wire[..cut]).pings + f.read(&wire[cut..]).pings;
            assert_eq!(n, 2, "cut at {cut}");
        }
        let mut f = FrameHeaders::after(CLIENT_PREFACE_LEN);
        assert_eq!(wire.iter().map(|b| f.read(&[*b]).pings).sum::<u32>(), 2);
    }

    fn goaway(last: u32, code: u32, debug: &[u8]) -> Vec<u8> {
        let mut payload = last.to_be_bytes().to_vec();
        payload.extend(code.to_be_bytes());
        payload.extend(debug);
        frame(FRAME_GOAWAY, 0, &payload)
    }

    #[test]
    fn a_goaway_saying_too_many_pings_is_seen_across_any_read_boundaries() {
        for (debug, expected) in [
            (&b"too_many_pings"[..], true),
            (b"too_many_pingsX", false),
            (b"too_many_ping", false),
            (b"max_age", false),
            (b"", false),
        ] {
            let mut wire = frame(0x4, 0, &[0; 6]);
            wire.extend(frame(0x0, 0, b"too_many_pings")); // DATA that looks like it
            wire.extend(goaway(5, 11, debug));
            for cut in 0..wire.len() {
                let mut f = FrameHeaders::after(0);
                let a = f.read(&wire[..cut]).too_many_pings;
                let b = f.read(&wire[cut..]).too_many_pings;
                assert_eq!(a || b, expected, "{debug:?} cut at {cut}");
            }
        }
    }

    /// Writes `chunks` through a [`Written`], arming the rewrite with `debug` before the
    /// chunk numbered `arm_at`; the bytes that went out.
    fn write_through(chunks: &[&[u8]], arm_at: usize, debug: &'static [u8]) -> Vec<u8> {
        let mut w = Written::after(0);
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            if i >= arm_at {
                w.rewrite(chunk, debug);
                out.append(&mut w.out);
            } else {
                w.passed(chunk, false);
                out.extend_from_slice(chunk);
            }
        }
        out
    }

    #[test]
    fn goaway_frames_written_after_the_reason_is_known_carry_it_as_debug_data() {
        let settings = frame(0x4, 0, &[0, 3, 0, 0, 0, 100]);
        let data = frame(0x0, 0, &goaway(1, 2, &[]));
        let wire = [
            settings.clone(),
            data.clone(),
            goaway(7, 11, &[]),
            frame(FRAME_PING, 0, &[9; 8]),
        ]
        .concat();
        let expected = [
            settings.clone(),
            data.clone(),
            goaway(7, 11, b"too_many_pings"),
            frame(FRAME_PING, 0, &[9; 8]),
        ]
        .concat();
        for cut in 0..wire.len() {
            for second in cut..wire.len() {
                let chunks = [&wire[..cut], &wire[cut..second], &wire[second..]];
                for arm_at in 0..=1 {
                    // Armed before the GOAWAY starts: rewritten wherever the cuts fall.
                    if arm_at == 1 && second > settings.len() + data.len() {
                        continue;
                    }
                    let out = write_through(&chunks, arm_at, TOO_MANY_PINGS);
                    assert_eq!(out, expected, "cuts {cut}, {second}, armed at {arm_at}");
                }
            }
        }
        // A GOAWAY that already has debug data (h2's own) is left as it is.
        let theirs = [settings, goaway(3, 1, b"h2 said")].concat();
        assert_eq!(write_through(&[&theirs], 0, b"max_age"), theirs);
    }

    #[test]
    fn strikes_follow_the_policy() {
        let mut police = Police::new(Enforcement {
            min_time: Duration::from_secs(60),
            permit_without_calls: false,
        });
        assert!(
            !police.pings(1, true),
            "a first ping with a call in flight is fine"
        );
        assert!(!police.pings(1, true)); // too soon: strike 1
        assert!(!police.pings(1, true)); // strike 2
        police.forgive();
        assert!(!police.pings(2, true)); // strikes 1, 2
        assert!(
            police.pings(1, true),
            "the third strike closes the connection"
        );
        let mut idle = Police::new(Enforcement {
            min_time: Duration::ZERO,
            permit_without_calls: false,
        });
        assert!(
            idle.pings(3, false),
            "pings without calls are strikes when not permitted"
        );
        let mut permitted = Police::new(Enforcement {
            min_time: Duration::ZERO,
            permit_without_calls: true,
        });
        assert!(!permitted.pings(10, false));
    }
}
