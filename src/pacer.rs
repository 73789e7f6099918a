//! `DownloaderBuilder::max_requests_per_host_per_second`: the requests of a run to one host
//! (every file, connection, retry and redirect hop) start at least `1/rate` apart, so a list of
//! many small files from one server stays polite at any `-j`, and other hosts are not held up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hosts remembered before the ones whose turn has passed are forgotten.
const REMEMBERED: usize = 4096;

#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    /// When each host's next request may start.
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    /// `None` for a rate that is not a positive number (no pacing).
    pub fn new(per_second: f64) -> Option<Pacer> {
        let interval = Duration::try_from_secs_f64(1.0 / per_second).ok()?;
        (per_second > 0.0).then(|| Pacer {
            interval,
            next: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for `host`'s next turn (taking it).
    pub async fn wait(&self, host: &str) {
        let turn = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if next.len() >= REMEMBERED {
                next.retain(|_, at| *at > now);
            }
            let slot = next.entry(host.to_string()).or_insert(now);
            let turn = (*slot).max(now);
            *slot = turn + self.interval;
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_hosts_requests_are_spaced_and_another_host_is_not_held_up() {
        let pacer = Pacer::new(4.0).unwrap();
        let start = Instant::now();
        for i in 0..3 {
            pacer.wait("a").await;
            assert_eq!(start.elapsed(), Duration::from_millis(250 * i));
        }
        pacer.wait("b").await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(500),
            "b's first is at once"
        );
        for bad in [0.0, -1.0, f64::NAN] {
            assert!(Pacer::new(bad).is_none());
        }
    }
}
