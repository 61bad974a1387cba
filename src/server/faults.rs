//! Connection failures a peer can cause at will (a failed TLS or HTTP/2 handshake, a
//! protocol error, a reset, a client that pings too often): whoever connects must not
//! decide how much the server logs. Each is one DEBUG line with its peer and error, and
//! a WARN line sums them up at most once per interval, with the count of each kind.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Default time between two WARN summaries.
pub const DEFAULT_FAULT_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// A kind of connection failure a peer can cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The TLS handshake failed (garbage, a plaintext client, no shared cipher...).
    TlsHandshake,
    /// The TLS client did not offer ALPN `h2`.
    NoAlpnH2,
    /// The HTTP/2 preface or SETTINGS exchange failed.
    Http2Handshake,
    /// The connection ended in an error (protocol error, reset, I/O).
    Connection,
    /// The client pinged more often than the enforcement policy allows.
    TooManyPings,
}

const KINDS: usize = 5;

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::TlsHandshake => "TLS handshake failed",
            Fault::NoAlpnH2 => "TLS client without ALPN h2",
            Fault::Http2Handshake => "HTTP/2 handshake failed",
            Fault::Connection => "connection error",
            Fault::TooManyPings => "client pinged too often",
        }
    }
}

/// The failures of one server's connections, counted for the next summary.
#[derive(Debug)]
pub(crate) struct Faults {
    interval: Duration,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// When the last summary went out.
    last_warn: Option<Instant>,
    /// Failures since then, by kind.
    since: [u64; KINDS],
}

impl Faults {
    pub(crate) fn new(interval: Duration) -> Faults {
        Faults {
            interval,
            state: Mutex::new(Counts::default()),
        }
    }

    /// One failure of `kind` on the connection from `peer`.
    pub(crate) fn record(&self, kind: Fault, peer: Option<SocketAddr>, error: &dyn fmt::Display) {
        tracing::debug!(peer = ?peer, error = %error, "{}", kind.describe());
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        counts.since[kind as usize] += 1;
        let now = Instant::now();
        if counts
            .last_warn
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            return;
        }
        counts.last_warn = Some(now);
        let since = std::mem::take(&mut counts.since);
        drop(counts);
        let total: u64 = since.iter().sum();
        let summary = summary(&since);
        tracing::warn!(
            failures = total,
            "connection failures caused by peers (next summary in {:?} at the earliest; each is logged at DEBUG): {summary}",
            self.interval
        );
    }
}

/// "3 TLS handshake failed, 1 connection error".
fn summary(counts: &[u64; KINDS]) -> String {
    const ALL: [Fault; KINDS] = [
        Fault::TlsHandshake,
        Fault::NoAlpnH2,
        Fault::Http2Handshake,
        Fault::Connection,
        Fault::TooManyPings,
    ];
    let mut out = String::new();
    for kind in ALL {
        let n = counts[kind as usize];
        if n > 0 {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&format!("{n} {}", kind.describe()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_names_each_kind_with_its_count() {
        let mut counts = [0; KINDS];
        counts[Fault::TlsHandshake as usize] = 998;
        counts[Fault::Connection as usize] = 2;
        assert_eq!(
            summary(&counts),
            "998 TLS handshake failed, 2 connection error"
        );
    }
}
