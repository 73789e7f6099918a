//! The Ctrl-C / SIGTERM signal, as a value every task can check or wait on.

use tokio::sync::watch;

/// Cloneable view of "stop now". The binary triggers it on SIGINT/SIGTERM; the library only
/// listens, so embedders can trigger it however they like.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The triggering side of [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A signal and its trigger.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// True once stop was requested.
    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when stop is requested (never, if the trigger is dropped without firing).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl ShutdownTrigger {
    /// Asks every task to stop.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}
