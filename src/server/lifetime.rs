//! A server connection's lifetime, apart from its calls: everything that decides when a
//! connection must say GOAWAY or end. The server's shutdown (a drain, then the end of the
//! grace period), keepalive (a PING after idle time; the connection dropped when the
//! client stops answering), the policing of the client's PINGs, and the idle and age
//! limits with the age's grace. One [`Lifetime::poll`] says what the connection must do
//! next, with one timer set to the earliest deadline (grpc-go's server `keepalive()` loop
//! is the model); the connection loop only acts on the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::{Ping, PingPong};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::{ABORTING, ConnectionLimits, DRAINING, RUNNING, Transport, jittered};
use crate::keepalive::{Activity, Enforcement, GoAwayWhy, Keepalive, Police};

/// An h2 server connection over any transport.
pub(super) type Connection = h2::server::Connection<Transport, Bytes>;

/// What the connection must do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Say GOAWAY and let the calls in flight finish (h2's graceful shutdown).
    Drain,
    /// Say GOAWAY with this code now; calls still open end with the connection.
    Close(h2::Reason),
    /// Drop the connection at once: the client stopped answering.
    Drop,
}

/// How long "never" is for the one timer: tokio's timer wheel holds about two years.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The lifetime of one connection (see the module docs).
pub(super) struct Lifetime {
    /// The transport's reads, PINGs and GOAWAY debug data; `None` when neither keepalive
    /// nor enforcement is on (the transport is then not wrapped).
    activity: Option<Arc<Activity>>,
    /// Waits for the server's next shutdown state.
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    state: watch::Receiver<u8>,
    shutdown_seen: u8,
    /// The one timer, at the earliest deadline below.
    timer: Pin<Box<Sleep>>,
    /// Set the timer again before waiting on it.
    rearm: bool,
    keepalive: Option<(Keepalive, PingPong)>,
    /// When the PING now awaiting its ack went out.
    ping_sent: Option<Instant>,
    police: Option<Police>,
    max_idle: Option<Duration>,
    /// Since when the connection has had no stream (only counted with `max_idle`).
    idle_since: Option<Instant>,
    age_at: Option<Instant>,
    age_grace: Option<Duration>,
    /// The end of the age's grace period.
    close_at: Option<Instant>,
    draining: bool,
    closing: bool,
}

async fn wait_state(mut state: watch::Receiver<u8>, at_least: u8) {
    let _ = state.wait_for(|&s| s >= at_least).await;
}

impl Lifetime {
    /// The lifetime of a connection that has just completed its handshake.
    pub(super) fn new(
        conn: &mut Connection,
        state: watch::Receiver<u8>,
        activity: Option<Arc<Activity>>,
        keepalive: Option<Keepalive>,
        enforcement: Option<Enforcement>,
        limits: ConnectionLimits,
    ) -> Lifetime {
        let now = Instant::now();
        let keepalive = match (&activity, keepalive) {
            (Some(_), Some(k)) => conn.ping_pong().map(|pings| (k, pings)),
            _ => None,
        };
        Lifetime {
            shutdown: Box::pin(wait_state(state.clone(), DRAINING)),
            state,
            shutdown_seen: RUNNING,
            timer: Box::pin(tokio::time::sleep_until(now + FAR)),
            rearm: true,
            police: enforcement.filter(|_| activity.is_some()).map(Police::new),
            activity,
            keepalive,
            ping_sent: None,
            max_idle: limits.max_idle,
            idle_since: limits.max_idle.map(|_| now),
            age_at: limits.max_age.map(|age| now + jittered(age)),
            age_grace: limits.max_age_grace,
            close_at: None,
            draining: false,
            closing: false,
        }
    }

    /// A call started: the client is doing work, its PING strikes are forgiven (as
    /// grpc-go forgives them when it sends data).
    pub(super) fn call_started(&mut self) {
        if let Some(police) = &mut self.police {
            police.forgive();
        }
    }

    /// What the connection must do now, if anything. Call again after acting on a
    /// `Ready` answer: `Pending` is the only answer that waits on everything.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>, conn: &Connection) -> Poll<Next> {
        if let Some(next) = self.poll_shutdown(cx) {
            return Poll::Ready(next);
        }
        if let Some(next) = self.police(conn) {
            return Poll::Ready(next);
        }
        loop {
            if let (Some((_, pings)), Some(_)) = (&mut self.keepalive, self.ping_sent) {
                match pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.ping_sent = None;
                        self.rearm = true;
                    }
                    // The connection is closing: no more PINGs.
                    Poll::Ready(Err(_)) => self.keepalive = None,
                    Poll::Pending => {}
                }
            }
            if self.max_idle.is_some() {
                if conn.has_streams() {
                    self.idle_since = None;
                } else if self.idle_since.is_none() {
                    self.idle_since = Some(Instant::now());
                    self.rearm = true;
                }
            }
            if !self.rearm && self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.rearm = false;
            let now = Instant::now();
            if let Some(next) = self.on_time(now) {
                return Poll::Ready(next);
            }
            let at = self.next_deadline(now);
            self.timer.as_mut().reset(at);
        }
    }

    /// The server's shutdown: a drain, then the end of its grace period.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Option<Next> {
        if self.shutdown_seen == ABORTING || self.shutdown.as_mut().poll(cx).is_pending() {
            return None;
        }
        if self.shutdown_seen == RUNNING {
            self.shutdown_seen = DRAINING;
            self.shutdown = Box::pin(wait_state(self.state.clone(), ABORTING));
            return self.drain(GoAwayWhy::GracefulStop);
        }
        self.shutdown_seen = ABORTING;
        // Grace period over: GOAWAY now; streams still open end with the connection.
        self.close(h2::Reason::NO_ERROR, None)
    }

    /// The PINGs the transport counted since the last look, against the policy.
    fn police(&mut self, conn: &Connection) -> Option<Next> {
        let (police, activity) = (self.police.as_mut()?, self.activity.as_ref()?);
        let pings = activity.take_pings();
        if pings == 0 {
            return None;
        }
        if activity.take_data_written() {
            police.data_written();
        }
        if !police.pings(pings, conn.has_streams()) {
            return None;
        }
        tracing::debug!("client pings too often: GOAWAY ENHANCE_YOUR_CALM too_many_pings");
        self.close(h2::Reason::ENHANCE_YOUR_CALM, Some(GoAwayWhy::TooManyPings))
    }

    /// The timer fired (or was to be set again): whatever is due at `now`.
    fn on_time(&mut self, now: Instant) -> Option<Next> {
        if let (Some((keepalive, pings)), Some(activity)) = (&mut self.keepalive, &self.activity) {
            let last_read = activity.last_read();
            match self.ping_sent {
                // Any byte since the PING shows the client alive, if slow to ack.
                Some(sent) if now >= last_read.max(sent) + keepalive.timeout => {
                    tracing::debug!(
                        timeout = ?keepalive.timeout,
                        "keepalive PING unanswered: closing the connection"
                    );
                    return Some(Next::Drop);
                }
                Some(_) => {}
                None if now >= last_read + keepalive.time => {
                    if pings.send_ping(Ping::opaque()).is_ok() {
                        self.ping_sent = Some(now);
                    } else {
                        self.keepalive = None;
                    }
                }
                None => {}
            }
        }
        if let (Some(max), Some(since)) = (self.max_idle, self.idle_since)
            && now >= since + max
        {
            self.max_idle = None;
            tracing::debug!("max connection idle reached: GOAWAY");
            return self.drain(GoAwayWhy::MaxIdle);
        }
        if let Some(at) = self.age_at
            && now >= at
        {
            self.age_at = None;
            self.close_at = self.age_grace.map(|grace| now + grace);
            tracing::debug!("max connection age reached: GOAWAY");
            return self.drain(GoAwayWhy::MaxAge);
        }
        if let Some(at) = self.close_at
            && now >= at
        {
            self.close_at = None;
            return self.close(h2::Reason::NO_ERROR, None);
        }
        None
    }

    /// The earliest deadline still ahead.
    fn next_deadline(&self, now: Instant) -> Instant {
        let keepalive = match (&self.keepalive, &self.activity) {
            (Some((keepalive, _)), Some(activity)) => {
                let last_read = activity.last_read();
                Some(match self.ping_sent {
                    Some(sent) => last_read.max(sent) + keepalive.timeout,
                    None => last_read + keepalive.time,
                })
            }
            _ => None,
        };
        let idle = self.max_idle.zip(self.idle_since).map(|(max, s)| s + max);
        [keepalive, idle, self.age_at, self.close_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + FAR)
    }

    /// A graceful GOAWAY saying `why`, unless one went already.
    fn drain(&mut self, why: GoAwayWhy) -> Option<Next> {
        if self.draining || self.closing {
            return None;
        }
        self.draining = true;
        self.say(why);
        Some(Next::Drain)
    }

    /// A GOAWAY with `reason` now (saying `why`, if given), unless one went already.
    fn close(&mut self, reason: h2::Reason, why: Option<GoAwayWhy>) -> Option<Next> {
        if self.closing {
            return None;
        }
        self.closing = true;
        if let Some(why) = why {
            self.say(why);
        }
        Some(Next::Close(reason))
    }

    fn say(&self, why: GoAwayWhy) {
        if let Some(activity) = &self.activity {
            activity.go_away_saying(why);
        }
    }
}
