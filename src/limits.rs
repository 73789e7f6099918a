//! Connection permits shared by every download of a run: at most `--max-connections` in total
//! and `--max-connections-per-host` to one host.
//!
//! A file's first connection waits for its permits in line (fair, first come first served), so
//! the next file of a batch starts the moment a connection frees. Extra connections of a file
//! that is already running never wait: they take permits only when nobody is queued, so large
//! files get more connections "as slots allow" without starving new files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The run's connection budget.
#[derive(Debug)]
pub struct Limits {
    total: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The right to hold one connection; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    _host: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Limits {
    /// A budget of `total` connections, `per_host` of them to any one host.
    pub fn new(total: usize, per_host: usize) -> Limits {
        Limits {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host))),
        )
    }

    /// Waits in line for a connection to `host` (a file's first connection).
    pub async fn acquire(&self, host: &str) -> Permit {
        // Host first: a queue for a busy host must not hold total permits other hosts could use.
        let host = self.host(host).acquire_owned().await.expect("never closed");
        let total = Arc::clone(&self.total)
            .acquire_owned()
            .await
            .expect("never closed");
        Permit {
            _host: host,
            _total: total,
        }
    }

    /// A connection to `host` if one is free right now (a file's extra connections).
    pub fn try_acquire(&self, host: &str) -> Option<Permit> {
        let host = self.host(host).try_acquire_owned().ok()?;
        let total = Arc::clone(&self.total).try_acquire_owned().ok()?;
        Some(Permit {
            _host: host,
            _total: total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn per_host_and_total_caps_hold() {
        let l = Limits::new(3, 2);
        let a1 = l.try_acquire("a").unwrap();
        let _a2 = l.try_acquire("a").unwrap();
        assert!(l.try_acquire("a").is_none(), "per-host cap of 2");
        let _b1 = l.try_acquire("b").unwrap();
        assert!(l.try_acquire("b").is_none(), "total cap of 3");
        drop(a1);
        assert!(
            l.try_acquire("b").is_some(),
            "a freed permit is usable by another host"
        );
    }

    #[tokio::test]
    async fn waiting_first_connections_are_not_overtaken() {
        let l = Arc::new(Limits::new(1, 1));
        let held = l.acquire("h").await;
        let l2 = Arc::clone(&l);
        let waiter = tokio::spawn(async move { l2.acquire("h").await });
        tokio::task::yield_now().await;
        drop(held);
        // The freed permit goes to the queued waiter, not to an opportunistic extra connection.
        assert!(l.try_acquire("h").is_none());
        drop(waiter.await.unwrap());
        assert!(l.try_acquire("h").is_some());
    }
}
