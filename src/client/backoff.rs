//! Reconnection backoff, as gRPC's `connection-backoff.md` specifies it: the first
//! attempt waits 1 s, each next one 1.6 times longer up to 120 s, every wait jittered by
//! ±20%, and every attempt given at least 20 s to connect.

use std::time::Duration;

/// How a subchannel paces its connection attempts (`connection-backoff.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectBackoff {
    /// Wait after the first failed attempt (`INITIAL_BACKOFF`, 1 s).
    pub initial: Duration,
    /// Growth of the wait per failed attempt (`MULTIPLIER`, 1.6).
    pub multiplier: f64,
    /// Randomisation of each wait, as a fraction of it (`JITTER`, 0.2).
    pub jitter: f64,
    /// Upper bound of the wait (`MAX_BACKOFF`, 120 s).
    pub max: Duration,
    /// Time every attempt may take at least (`MIN_CONNECT_TIMEOUT`, 20 s).
    pub min_connect_timeout: Duration,
}

impl Default for ConnectBackoff {
    fn default() -> Self {
        ConnectBackoff {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The state of one run of attempts: the wait for the next one.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    config: ConnectBackoff,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(config: ConnectBackoff) -> Backoff {
        Backoff {
            config,
            current: config.initial,
        }
    }

    /// Start over (after a connection succeeded).
    pub(crate) fn reset(&mut self) {
        self.current = self.config.initial;
    }

    /// Timing of the next attempt: when the attempt after it may start (the attempt's
    /// start plus the jittered backoff), and how long this attempt may take:
    /// `max(backoff deadline, now + MIN_CONNECT_TIMEOUT)`.
    pub(crate) fn next_attempt(&mut self, first: bool) -> Attempt {
        if !first {
            let grown = self.current.as_secs_f64() * self.config.multiplier;
            self.current = Duration::from_secs_f64(grown.min(self.config.max.as_secs_f64()));
        }
        let backoff = if first {
            // The spec's first deadline is exactly INITIAL_BACKOFF; jitter applies after.
            self.current
        } else {
            jittered(self.current, self.config.jitter, random_unit())
        };
        Attempt {
            backoff,
            timeout: backoff.max(self.config.min_connect_timeout),
        }
    }
}

/// One connection attempt's timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Attempt {
    /// From the attempt's start to the earliest start of the next one.
    pub backoff: Duration,
    /// How long the attempt may take.
    pub timeout: Duration,
}

/// `duration` moved by up to `±jitter` of itself; `unit` in [0, 1) picks where.
fn jittered(duration: Duration, jitter: f64, unit: f64) -> Duration {
    let secs = duration.as_secs_f64();
    Duration::from_secs_f64((secs + secs * jitter * (2.0 * unit - 1.0)).max(0.0))
}

/// A number in [0, 1), different on every call (std's per-instance random hash keys;
/// backoff needs spread, not cryptographic quality).
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_the_spec_initial_times_1_6_up_to_the_cap_within_jitter() {
        let mut backoff = Backoff::new(ConnectBackoff::default());
        let first = backoff.next_attempt(true);
        assert_eq!(first.backoff, Duration::from_secs(1));
        assert_eq!(first.timeout, Duration::from_secs(20));
        let mut expected = 1.0f64;
        for _ in 0..30 {
            expected = (expected * 1.6).min(120.0);
            let attempt = backoff.next_attempt(false);
            let got = attempt.backoff.as_secs_f64();
            assert!(
                got >= expected * 0.8 - 1e-9 && got <= expected * 1.2 + 1e-9,
                "{got} not within 20% of {expected}"
            );
            assert_eq!(
                attempt.timeout,
                attempt.backoff.max(Duration::from_secs(20))
            );
        }
        assert_eq!(expected, 120.0);
        backoff.reset();
        assert_eq!(backoff.next_attempt(true).backoff, Duration::from_secs(1));
    }

    #[test]
    fn jitter_spans_both_sides() {
        let d = Duration::from_secs(10);
        assert_eq!(jittered(d, 0.2, 0.0), Duration::from_secs(8));
        assert_eq!(jittered(d, 0.2, 0.5), Duration::from_secs(10));
        assert!(jittered(d, 0.2, 0.999_999) <= Duration::from_secs(12));
        let spread: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(spread.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(spread.iter().any(|u| *u < 0.5) && spread.iter().any(|u| *u >= 0.5));
    }
}
