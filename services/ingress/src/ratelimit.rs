//! Sliding-window rate limits per key (tenant and endpoint), kept in this
//! process. With several ingress replicas each enforces the limit on its
//! share of the traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A sliding-window counter: the previous window's count weighted by how
/// much of it still overlaps the last `period`, plus the current count.
#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    /// Most keys held. Keys come from request paths before anything is
    /// authenticated (a failed signature is counted under the tenant id it
    /// names, existing or not), so the map is bounded: past this, windows
    /// that have run out are dropped, and while it is still full a new key
    /// is refused as over its limit.
    capacity: usize,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    previous: u32,
    current: u32,
}

impl Window {
    fn advance(&mut self, now: Instant, period: Duration) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= period * 2 {
            *self = Window {
                start: now,
                previous: 0,
                current: 0,
            };
        } else if elapsed >= period {
            self.previous = self.current;
            self.current = 0;
            self.start += period;
        }
    }

    fn estimate(&self, now: Instant, period: Duration) -> f64 {
        let into = now.saturating_duration_since(self.start).as_secs_f64() / period.as_secs_f64();
        f64::from(self.previous) * (1.0 - into).max(0.0) + f64::from(self.current)
    }
}

impl RateLimiter {
    pub fn new(period: Duration) -> Self {
        Self::with_capacity(period, 100_000)
    }

    pub fn with_capacity(period: Duration, capacity: usize) -> Self {
        Self {
            period,
            capacity,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The window of `key`, made if there is room for it.
    fn window<'a>(
        &self,
        windows: &'a mut HashMap<String, Window>,
        key: &str,
        now: Instant,
    ) -> Option<&'a mut Window> {
        if !windows.contains_key(key) && windows.len() >= self.capacity {
            let period = self.period;
            windows.retain(|_, window| now.saturating_duration_since(window.start) < period * 2);
            if windows.len() >= self.capacity {
                return None;
            }
        }
        let window = windows.entry(key.to_owned()).or_insert(Window {
            start: now,
            previous: 0,
            current: 0,
        });
        window.advance(now, self.period);
        Some(window)
    }

    /// Counts one request under `key` if it is within `limit`; otherwise
    /// returns how long to wait (at least a second).
    pub fn acquire(&self, key: &str, limit: u32, now: Instant) -> Result<(), Duration> {
        let mut windows = self.windows.lock().expect("rate limiter lock");
        let Some(window) = self.window(&mut windows, key, now) else {
            return Err(self.period);
        };
        if window.estimate(now, self.period) + 1.0 <= f64::from(limit) {
            window.current += 1;
            return Ok(());
        }
        let window = *window;
        Err(self.wait(&window, limit, now))
    }

    /// Counts one request under `key` whatever the limit, and says whether
    /// the count is now beyond it.
    pub fn record(&self, key: &str, limit: u32, now: Instant) -> Result<(), Duration> {
        let mut windows = self.windows.lock().expect("rate limiter lock");
        let Some(window) = self.window(&mut windows, key, now) else {
            return Err(self.period);
        };
        window.current = window.current.saturating_add(1);
        if window.estimate(now, self.period) <= f64::from(limit) {
            Ok(())
        } else {
            let window = *window;
            Err(self.wait(&window, limit, now))
        }
    }

    /// The time until one more request fits under `limit`.
    fn wait(&self, window: &Window, limit: u32, now: Instant) -> Duration {
        let period = self.period.as_secs_f64();
        let elapsed = now.saturating_duration_since(window.start).as_secs_f64();
        let room = f64::from(limit) - 1.0 - f64::from(window.current);
        let seconds = if room < 0.0 || window.previous == 0 {
            // Only the next window has room.
            period - elapsed
        } else {
            // The previous window's weight must fall by enough.
            period * (1.0 - room / f64::from(window.previous)) - elapsed
        };
        Duration::from_secs_f64(seconds.max(1.0).ceil())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_within_the_limit_pass_and_the_next_one_waits() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..100 {
            limiter.acquire("acme:/webhook", 100, start).unwrap();
        }
        let wait = limiter.acquire("acme:/webhook", 100, start).unwrap_err();
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        // Other keys have their own budget.
        limiter.acquire("globex:/webhook", 100, start).unwrap();
    }

    #[test]
    fn the_window_slides_so_capacity_returns_gradually() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire("k", 10, start).unwrap();
        }
        // Half-way through the next window half of the old count still weighs.
        let later = start + Duration::from_secs(90);
        for _ in 0..5 {
            limiter.acquire("k", 10, later).unwrap();
        }
        assert!(limiter.acquire("k", 10, later).is_err());
        // Two periods on, everything is forgotten.
        let much_later = start + Duration::from_secs(200);
        for _ in 0..10 {
            limiter.acquire("k", 10, much_later).unwrap();
        }
    }

    #[test]
    fn keys_are_bounded_and_a_new_key_past_the_bound_is_refused_until_windows_run_out() {
        let limiter = RateLimiter::with_capacity(Duration::from_secs(60), 100);
        let now = Instant::now();
        for n in 0..100 {
            assert!(limiter.record(&format!("tenant-{n}"), 10, now).is_ok());
        }
        // Full of live windows: a new key is refused, a known one counted.
        assert!(limiter.record("tenant-new", 10, now).is_err());
        assert!(limiter.acquire("tenant-new", 10, now).is_err());
        assert!(limiter.record("tenant-7", 10, now).is_ok());
        assert_eq!(limiter.windows.lock().unwrap().len(), 100);
        // Two periods on, the old windows make room.
        let later = now + Duration::from_secs(121);
        assert!(limiter.record("tenant-new", 10, later).is_ok());
        assert_eq!(limiter.windows.lock().unwrap().len(), 1);
    }

    #[test]
    fn recorded_failures_report_when_they_pass_the_cap() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..10 {
            assert!(limiter.record("acme", 10, now).is_ok());
        }
        assert!(limiter.record("acme", 10, now).is_err());
    }
}
