//! A token bucket shared by every connection it limits (`--limit-rate`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Caps the combined rate of whoever shares it. Callers take tokens *after* receiving bytes and
/// sleep off any debt; because a connection is not read while its task sleeps, TCP flow control
/// slows the sender too.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter for `bytes_per_sec`, allowing bursts of a tenth of a second.
    pub fn new(bytes_per_sec: u64) -> RateLimiter {
        let rate = bytes_per_sec.max(1) as f64;
        let burst = (rate / 10.0).max(16.0 * 1024.0);
        RateLimiter {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Accounts for `n` bytes, sleeping as long as the budget is overdrawn.
    pub async fn take(&self, n: usize) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (tokens, last) = &mut *s;
            *tokens =
                (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
            *last = now;
            *tokens -= n as f64;
            if *tokens < 0.0 {
                Duration::from_secs_f64(-*tokens / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate() {
        let l = RateLimiter::new(100_000);
        let start = tokio::time::Instant::now();
        for _ in 0..100 {
            l.take(10_000).await; // 1 MB in total
        }
        let secs = start.elapsed().as_secs_f64();
        assert!((9.5..10.5).contains(&secs), "{secs}");
    }
}
