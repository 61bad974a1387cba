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
            crate::random::jittered(self.current, self.config.jitter)
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
}
