//! The crate's one random source: `fastrand`'s per-thread generator, for jitter and
//! shuffling (connection backoff, retry backoff, the server's connection age,
//! `pick_first`'s `shuffleAddressList`). Spread, not secrets.

use std::time::Duration;

/// A number in [0, 1).
pub(crate) fn fraction() -> f64 {
    fastrand::f64()
}

/// `duration` moved by up to `±spread` of itself, at random: `jittered(d, 0.1)` lies in
/// [0.9 d, 1.1 d].
pub(crate) fn jittered(duration: Duration, spread: f64) -> Duration {
    jittered_at(duration, spread, fraction())
}

/// [`jittered`] with the draw given: `unit` in [0, 1) picks where in the span.
fn jittered_at(duration: Duration, spread: f64, unit: f64) -> Duration {
    let secs = duration.as_secs_f64();
    Duration::try_from_secs_f64((secs + secs * spread * (2.0 * unit - 1.0)).max(0.0))
        .unwrap_or(duration)
}

/// `items` in a random order (Fisher-Yates).
pub(crate) fn shuffle<T>(items: &mut [T]) {
    fastrand::shuffle(items);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spans_both_sides() {
        let d = Duration::from_secs(10);
        assert_eq!(jittered_at(d, 0.2, 0.0), Duration::from_secs(8));
        assert_eq!(jittered_at(d, 0.2, 0.5), Duration::from_secs(10));
        assert!(jittered_at(d, 0.2, 0.999_999) <= Duration::from_secs(12));
        for _ in 0..64 {
            let j = jittered(d, 0.1);
            assert!(
                j >= Duration::from_secs(9) && j <= Duration::from_secs(11),
                "{j:?}"
            );
        }
    }

    #[test]
    fn fractions_are_in_the_unit_interval_and_vary() {
        let spread: Vec<f64> = (0..64).map(|_| fraction()).collect();
        assert!(spread.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(spread.iter().any(|u| *u < 0.5) && spread.iter().any(|u| *u >= 0.5));
        let other = std::thread::spawn(fraction).join().unwrap();
        assert!((0.0..1.0).contains(&other));
    }

    #[test]
    fn shuffle_keeps_every_item_and_moves_some() {
        let sorted: Vec<u32> = (0..100).collect();
        let mut items = sorted.clone();
        shuffle(&mut items);
        let mut back = items.clone();
        back.sort_unstable();
        assert_eq!(back, sorted);
        assert_ne!(items, sorted, "100 items came back in order");
    }
}
