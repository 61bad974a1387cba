//! The pure pieces of retries and hedging (gRFC A6), for the call path to use: the
//! per-server retry throttle (a token bucket), the randomized exponential backoff
//! between attempts, and the server's pushback (`grpc-retry-pushback-ms`).
//! Synchronous and free of I/O; the call path owns the timers and the attempts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::HeaderMap;

use super::service_config::{RetryPolicy, RetryThrottling};

use crate::headers::GRPC_RETRY_PUSHBACK_MS;

/// Tokens are kept in thousandths, the precision of `tokenRatio`.
const MILLI: u32 = 1000;

/// The retry throttle of one server (gRFC A6, "Throttling Retry Attempts and Hedged
/// RPCs"): a bucket that starts full at `maxTokens`, loses one token per failed call and
/// gains `tokenRatio` per successful one; retries and further hedged attempts are allowed
/// only while it holds more than half of `maxTokens`.
///
/// Lock-free: one atomic counter of thousandths of a token, shared by every call to the
/// server.
#[derive(Debug)]
pub(crate) struct RetryThrottle {
    milli_tokens: AtomicU32,
    max_milli_tokens: u32,
    milli_token_ratio: u32,
}

impl RetryThrottle {
    /// A full bucket for `config`.
    pub(crate) fn new(config: &RetryThrottling) -> RetryThrottle {
        let max_milli_tokens = config.max_tokens.saturating_mul(MILLI);
        // `as` saturates; the config holds the ratio in whole thousandths already.
        let milli_token_ratio = (config.token_ratio * f64::from(MILLI)).round() as u32;
        RetryThrottle {
            milli_tokens: AtomicU32::new(max_milli_tokens),
            max_milli_tokens,
            milli_token_ratio,
        }
    }

    /// Count a failed call: one token less, never below zero. Only failures that could be
    /// retried count (a retryable or non-fatal code, or a pushback saying not to retry).
    /// Returns whether retries are still allowed after it, decided on the same update so
    /// that concurrent calls cannot both see the last token above the threshold.
    pub(crate) fn on_failure(&self) -> bool {
        let before = self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(MILLI))
            })
            .unwrap_or_else(|t| t);
        self.above_threshold(before.saturating_sub(MILLI))
    }

    /// Count a successful call: `tokenRatio` tokens more, never above `maxTokens`.
    pub(crate) fn on_success(&self) {
        let (ratio, max) = (self.milli_token_ratio, self.max_milli_tokens);
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(ratio).min(max))
            });
    }

    /// Whether a retry or a further hedged attempt may be sent now: the bucket holds more
    /// than half of `maxTokens`.
    pub(crate) fn allows_retry(&self) -> bool {
        self.above_threshold(self.milli_tokens.load(Ordering::Relaxed))
    }

    fn above_threshold(&self, milli_tokens: u32) -> bool {
        // Compared doubled, so an odd number of thousandths has no rounding.
        u64::from(milli_tokens) * 2 > u64::from(self.max_milli_tokens)
    }
}

/// The delay before the `retry`-th retry (1 for the first) under `policy` (gRFC A6,
/// "Exponential Backoff"): `random(0, min(initialBackoff * backoffMultiplier^(retry-1),
/// maxBackoff))`, with `random` a number in [0, 1), such as `random::fraction` gives.
///
/// After a retry that a server's pushback timed, A6 starts the count again: the next retry
/// is again the first.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32, random: f64) -> Duration {
    let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let max = policy.max_backoff.as_secs_f64();
    let ceiling =
        (policy.initial_backoff.as_secs_f64() * policy.backoff_multiplier.powi(exponent)).min(max);
    // A NaN (only from a hand-made policy) or an out-of-range `random` waits the least.
    let random = if random.is_nan() {
        0.0
    } else {
        random.clamp(0.0, 1.0)
    };
    let seconds = ceiling * random;
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(Duration::ZERO)
        .min(policy.max_backoff)
}

/// What a server's `grpc-retry-pushback-ms` says about retrying a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushback {
    /// No pushback: the policy decides (backoff, or the next hedging delay).
    None,
    /// Retry (or send the next hedged attempt) after this delay, if the policy allows
    /// another attempt at all.
    Delay(Duration),
    /// Do not retry, and send no further hedged attempts.
    Stop,
}

/// The pushback in a failed attempt's trailers (gRFC A6, "Pushback"): a non-negative
/// decimal 32-bit integer of milliseconds is a delay; a negative value, one that does not
/// parse, or more than one value means do not retry.
pub(crate) fn pushback(trailers: &HeaderMap) -> Pushback {
    let mut values = trailers.get_all(GRPC_RETRY_PUSHBACK_MS).iter();
    let Some(value) = values.next() else {
        return Pushback::None;
    };
    if values.next().is_some() {
        return Pushback::Stop;
    }
    let millis = value
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    match millis.map(u64::try_from) {
        Some(Ok(ms)) => Pushback::Delay(Duration::from_millis(ms)),
        _ => Pushback::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::service_config::CodeSet;
    use crate::status::Code;
    use http::HeaderValue;

    fn throttle(max_tokens: u32, token_ratio: f64) -> RetryThrottle {
        RetryThrottle::new(&RetryThrottling {
            max_tokens,
            token_ratio,
        })
    }

    fn tokens(t: &RetryThrottle) -> f64 {
        f64::from(t.milli_tokens.load(Ordering::Relaxed)) / 1000.0
    }

    #[test]
    fn throttle_follows_the_a6_example_of_ten_tokens_and_a_tenth() {
        // maxTokens 10, tokenRatio 0.1: retries stop once the bucket is down to 5.
        let t = throttle(10, 0.1);
        assert!(t.allows_retry());
        for left in [9.0, 8.0, 7.0, 6.0] {
            assert!(t.on_failure(), "{left}");
            assert_eq!(tokens(&t), left);
        }
        assert!(!t.on_failure(), "5 tokens is at the threshold, not over it");
        assert_eq!(tokens(&t), 5.0);
        assert!(!t.allows_retry());
        t.on_success();
        assert_eq!(tokens(&t), 5.1);
        assert!(t.allows_retry());
        // One failure per ten successes holds the bucket where it is (a ~10% failure rate).
        for _ in 0..100 {
            for _ in 0..10 {
                t.on_success();
            }
            t.on_failure();
        }
        assert!((tokens(&t) - 5.1).abs() < 1e-9, "{}", tokens(&t));
    }

    #[test]
    fn throttle_never_goes_below_zero_or_above_max() {
        let t = throttle(3, 0.5);
        for _ in 0..10 {
            t.on_failure();
        }
        assert_eq!(tokens(&t), 0.0);
        t.on_success();
        assert_eq!(tokens(&t), 0.5);
        for _ in 0..100 {
            t.on_success();
        }
        assert_eq!(tokens(&t), 3.0);
    }

    #[test]
    fn throttle_threshold_is_half_of_an_odd_max_exactly() {
        // maxTokens 3: 1.5 is the threshold; 1.501 is above it, 1.5 is not.
        let t = throttle(3, 0.001);
        assert!(t.on_failure()); // 2
        assert!(!t.on_failure()); // 1
        for _ in 0..500 {
            t.on_success();
        }
        assert_eq!(tokens(&t), 1.5);
        assert!(!t.allows_retry());
        t.on_success();
        assert!(t.allows_retry());
    }

    #[test]
    fn throttle_counts_every_update_from_many_threads() {
        let t = std::sync::Arc::new(throttle(1000, 1.0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        t.on_failure();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(tokens(&t), 600.0);
    }

    fn policy(initial_ms: u64, max_ms: u64, multiplier: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            backoff_multiplier: multiplier,
            retryable_status_codes: CodeSet::new().with(Code::Unavailable),
            per_attempt_recv_timeout: None,
        }
    }

    /// The ceiling of a retry's delay: what a `random` just under 1 gives.
    fn ceiling(p: &RetryPolicy, retry: u32) -> Duration {
        backoff(p, retry, 1.0)
    }

    #[test]
    fn backoff_ceiling_grows_by_the_multiplier_up_to_max() {
        let p = policy(100, 1000, 2.0);
        let ceilings: Vec<_> = (1..=6).map(|n| ceiling(&p, n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        // Retry 0 is taken as the first.
        assert_eq!(ceiling(&p, 0), Duration::from_millis(100));
        // A multiplier under 1 shrinks the ceiling.
        let p = policy(800, 1000, 0.5);
        let ceilings: Vec<_> = (1..=3).map(|n| ceiling(&p, n).as_millis()).collect();
        assert_eq!(ceilings, [800, 400, 200]);
        // An initial backoff above the max is held to the max.
        assert_eq!(ceiling(&policy(5000, 1000, 1.0), 1), Duration::from_secs(1));
    }

    #[test]
    fn backoff_is_random_between_zero_and_the_ceiling() {
        let p = policy(100, 1000, 2.0);
        assert_eq!(backoff(&p, 3, 0.0), Duration::ZERO);
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_millis(200));
        assert_eq!(backoff(&p, 3, -4.0), Duration::ZERO);
        assert_eq!(backoff(&p, 3, f64::NAN), Duration::ZERO);
        assert_eq!(backoff(&p, 3, 7.0), Duration::from_millis(400));
        let mut below_half = 0;
        for _ in 0..1000 {
            let d = backoff(&p, 2, crate::random::fraction());
            assert!(d < Duration::from_millis(200), "{d:?}");
            below_half += usize::from(d < Duration::from_millis(100));
        }
        // Uniform: about half of them under half the ceiling.
        assert!((350..650).contains(&below_half), "{below_half}");
    }

    #[test]
    fn backoff_survives_extreme_policies() {
        let p = policy(1, 10_000, 1e300);
        assert_eq!(ceiling(&p, u32::MAX), Duration::from_secs(10));
        let p = policy(1, 10_000, 1e-300);
        assert_eq!(ceiling(&p, u32::MAX), Duration::ZERO);
        let p = RetryPolicy {
            max_backoff: Duration::MAX,
            ..policy(1, 1, 10.0)
        };
        assert!(ceiling(&p, 1000) <= Duration::MAX);
    }

    fn trailers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", HeaderValue::from_static("14"));
        for v in values {
            map.append(GRPC_RETRY_PUSHBACK_MS, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    #[test]
    fn pushback_parses_milliseconds() {
        assert_eq!(pushback(&trailers(&[])), Pushback::None);
        assert_eq!(
            pushback(&trailers(&[b"0"])),
            Pushback::Delay(Duration::ZERO)
        );
        assert_eq!(
            pushback(&trailers(&[b"1500"])),
            Pushback::Delay(Duration::from_millis(1500))
        );
        assert_eq!(
            pushback(&trailers(&[b"2147483647"])),
            Pushback::Delay(Duration::from_millis(i32::MAX as u64))
        );
        assert_eq!(
            pushback(&trailers(&[b" 20 "])),
            Pushback::Delay(Duration::from_millis(20))
        );
    }

    #[test]
    fn pushback_that_is_negative_unparsable_or_repeated_means_stop() {
        for bad in [
            &b"-1"[..],
            b"-2147483648",
            b"2147483648",
            b"99999999999999999999",
            b"",
            b"abc",
            b"1.5",
            b"1e3",
            b"10ms",
            b"0x10",
            b"\xff\xfe",
        ] {
            assert_eq!(
                pushback(&trailers(&[bad])),
                Pushback::Stop,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(pushback(&trailers(&[b"10", b"20"])), Pushback::Stop);
    }
}
