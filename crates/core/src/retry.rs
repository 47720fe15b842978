//! Retry backoff: exponential with jitter, honouring the provider's `Retry-After`.

use std::time::Duration;

/// Delay before retry number `attempt` (1-based): `initial * 2^(attempt-1)` capped at `max`,
/// times a jitter factor `jitter` in `[0.8, 1.2]`, capped at `max` again (Bifrost's schedule).
/// A `Retry-After` from the provider wins when it is longer.
pub fn backoff(
    attempt: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let base = initial.saturating_mul(1u32 << exp).min(max);
    let jittered = base.mul_f64(jitter.clamp(0.8, 1.2)).min(max);
    match retry_after {
        Some(ra) if ra > jittered => ra,
        _ => jittered,
    }
}

/// A random jitter factor in `[0.8, 1.2]`.
pub fn jitter() -> f64 {
    0.8 + fastrand::f64() * 0.4
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn schedule_doubles_and_caps() {
        let got: Vec<Duration> = (1..=6)
            .map(|a| backoff(a, 100 * MS, 1000 * MS, None, 1.0))
            .collect();
        assert_eq!(
            got,
            vec![100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
    }

    #[test]
    fn jitter_stays_in_bounds_and_under_cap() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.8..=1.2).contains(&j));
            let d = backoff(2, 100 * MS, 1000 * MS, None, j);
            assert!(d >= 160 * MS && d <= 240 * MS, "{d:?}");
            assert!(backoff(10, 100 * MS, 1000 * MS, None, j) <= 1000 * MS);
        }
    }

    #[test]
    fn retry_after_wins_when_longer() {
        assert_eq!(
            backoff(1, 100 * MS, 1000 * MS, Some(2000 * MS), 1.0),
            2000 * MS
        );
        assert_eq!(
            backoff(3, 100 * MS, 1000 * MS, Some(10 * MS), 1.0),
            400 * MS
        );
    }
}
