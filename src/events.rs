//! What downloads report: typed events, sent to every subscriber.
//!
//! Downloads never print. They bump [`Counters`] on the hot path (two atomics), and a sampler per
//! file turns the counters into at most one [`Event::Progress`] per interval. Events go to every
//! [`EventStream`] subscribed with [`Downloader::events`](crate::Downloader::events); with none,
//! they are dropped. The `fastdl` binary renders them as bars, plain lines or JSON.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::redact::SafeUrl;
use crate::request::Outcome;

/// Live counters of one download, shared by its connections and its sampler.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Bytes on disk, including bytes resumed from an earlier run.
    pub downloaded: AtomicU64,
    /// Connections currently receiving a body.
    pub connections: AtomicUsize,
    /// Fragments written, for downloads made of fragments.
    pub fragments: AtomicUsize,
}

/// Severity of a log event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Every request and reply, retries, connection changes (the binary's `-v`).
    Debug,
    Info,
    Warning,
}

/// One progress sample of a download, with the keys yt-dlp's progress hooks use.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// The download's id (see [`Event`]).
    pub id: usize,
    /// Always `"downloading"` (yt-dlp's hook status).
    pub status: &'static str,
    /// Bytes in the output so far, including bytes resumed from an earlier run.
    pub downloaded_bytes: u64,
    pub total_bytes: Option<u64>,
    /// For joined fragments of unknown sizes: the average fragment times their number.
    pub total_bytes_estimate: Option<u64>,
    /// Bytes per second over the last few seconds.
    pub speed: Option<f64>,
    /// Seconds left at that speed.
    pub eta: Option<f64>,
    /// Seconds since the download started.
    pub elapsed: f64,
    /// The output path (`-` for a writer).
    pub filename: String,
    /// Where the bytes go until the download is verified (`FILE.part`).
    pub tmpfilename: String,
    /// Connections receiving data now.
    pub connections: usize,
    /// Fragments written so far, for a download made of fragments (yt-dlp's `(frag i/n)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_count: Option<usize>,
}

/// Everything a download reports. Every event about one download carries its `id`: the order
/// in which the [`Downloader`](crate::Downloader) started it, from 0 (for
/// [`download_all`](crate::Downloader::download_all), the request's position in the list).
/// URLs in events never show a password.
///
/// Every download ends with exactly one [`Event::Ended`], after its `Finished` or `Failed`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A download begins (after its first reply, so the size is known if the server tells).
    #[non_exhaustive]
    Start {
        id: usize,
        url: SafeUrl,
        filename: String,
        tmpfilename: String,
        total_bytes: Option<u64>,
        resumed_bytes: u64,
    },
    Progress(Progress),
    /// Something worth telling: a retry, a fallback, a warning.
    #[non_exhaustive]
    Log {
        id: Option<usize>,
        level: Level,
        message: String,
    },
    /// A download finished and was verified.
    #[non_exhaustive]
    Finished {
        id: usize,
        filename: String,
        downloaded_bytes: u64,
        total_bytes: u64,
        elapsed: f64,
    },
    /// A download failed.
    #[non_exhaustive]
    #[serde(rename = "error")]
    Failed {
        id: usize,
        #[serde(rename = "message", serialize_with = "as_message")]
        error: Error,
    },
    /// One fragment of a joined download is in the output (`done`) or left out (`failed`).
    #[non_exhaustive]
    Fragment {
        id: usize,
        index: usize,
        status: &'static str,
        bytes: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// How one download ended, success or not: always its last event.
    #[serde(rename = "result")]
    Ended(Ended),
}

/// How one download ended ([`Event::Ended`]).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Ended {
    pub id: usize,
    pub url: SafeUrl,
    /// `done`, `failed`, or `skipped` (already complete: nothing was downloaded).
    pub status: &'static str,
    pub filename: Option<String>,
    pub bytes: u64,
    pub resumed_bytes: u64,
    pub elapsed: f64,
    /// The output's SHA-256 (hex), with `DownloaderBuilder::sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Tries it took ([`Outcome::attempts`]), failed or not.
    pub attempts: u32,
    #[serde(serialize_with = "as_optional_message")]
    pub error: Option<Error>,
}

fn as_message<S: serde::Serializer>(e: &Error, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&e.to_string())
}

fn as_optional_message<S: serde::Serializer>(e: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => as_message(e, s),
        None => s.serialize_none(),
    }
}

/// A subscription to a downloader's events ([`Downloader::events`](crate::Downloader::events)).
/// It ends (`None`) when the downloader and every download it started are gone. Events are
/// queued without bound, so a subscriber that stops reading should be dropped.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// The next event; `None` once no more can come.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is queued now.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// The sending side, cloned into every download: each event goes to every live subscriber.
#[derive(Clone, Debug, Default)]
pub(crate) struct Events {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Event>>>>,
}

impl Events {
    /// A new subscriber, from the next event on.
    pub fn subscribe(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        EventStream { rx }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<Event>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends an event; one nobody listens to is dropped.
    pub fn send(&self, e: Event) {
        let mut subscribers = self.lock();
        subscribers.retain(|tx| !tx.is_closed());
        if let Some((last, others)) = subscribers.split_last() {
            for tx in others {
                let _ = tx.send(e.clone());
            }
            let _ = last.send(e);
        }
    }

    /// Sends a log line.
    pub fn log(&self, id: Option<usize>, level: Level, message: impl Into<String>) {
        self.send(Event::Log {
            id,
            level,
            message: crate::redact::redact(&message.into()).into_owned(),
        });
    }

    /// Sends download `id`'s `Start`; returns the progress its later events build on.
    pub fn start(
        &self,
        id: usize,
        url: &str,
        (filename, tmpfilename): (&Path, &Path),
        total_bytes: Option<u64>,
        resumed_bytes: u64,
    ) -> Progress {
        let filename = filename.display().to_string();
        let tmpfilename = tmpfilename.display().to_string();
        self.send(Event::Start {
            id,
            url: SafeUrl::new(url),
            filename: filename.clone(),
            tmpfilename: tmpfilename.clone(),
            total_bytes,
            resumed_bytes,
        });
        Progress {
            id,
            status: "downloading",
            downloaded_bytes: resumed_bytes,
            total_bytes,
            total_bytes_estimate: None,
            speed: None,
            eta: None,
            elapsed: 0.0,
            filename,
            tmpfilename,
            connections: 0,
            fragment_index: None,
            fragment_count: None,
        }
    }

    /// Sends the last `Progress` of a finished download (all `bytes`, with this run's average
    /// speed, so the last line shows one) and its `Finished`.
    pub fn finish(&self, base: &Progress, bytes: u64, resumed: u64, elapsed: Duration) {
        self.send(Event::Progress(Progress {
            downloaded_bytes: bytes,
            total_bytes: Some(bytes),
            speed: Some((bytes - resumed) as f64 / elapsed.as_secs_f64().max(0.001)),
            eta: Some(0.0),
            elapsed: elapsed.as_secs_f64(),
            fragment_index: base.fragment_count,
            ..base.clone()
        }));
        self.send(Event::Finished {
            id: base.id,
            filename: base.filename.clone(),
            downloaded_bytes: bytes,
            total_bytes: bytes,
            elapsed: elapsed.as_secs_f64(),
        });
    }

    /// Sends how download `id` of `url` ended after `attempts` tries and `elapsed` (a failure's;
    /// an outcome has its own): `Failed` first if it did, then `Ended`.
    pub fn ended(
        &self,
        (id, url): (usize, &str),
        result: &Result<Outcome, Error>,
        attempts: u32,
        elapsed: Duration,
    ) {
        let url = SafeUrl::new(url);
        let ended = match result {
            Ok(o) => Ended {
                id,
                url,
                status: if o.skipped { "skipped" } else { "done" },
                filename: Some(
                    o.path
                        .as_ref()
                        .map_or("-".into(), |p| p.display().to_string()),
                ),
                bytes: o.bytes,
                resumed_bytes: o.resumed,
                elapsed: o.elapsed.as_secs_f64(),
                sha256: o.sha256.clone(),
                attempts,
                error: None,
            },
            Err(e) => {
                self.send(Event::Failed {
                    id,
                    error: e.clone(),
                });
                Ended {
                    id,
                    url,
                    status: "failed",
                    filename: None,
                    bytes: 0,
                    resumed_bytes: 0,
                    elapsed: elapsed.as_secs_f64(),
                    sha256: None,
                    attempts,
                    error: Some(e.clone()),
                }
            }
        };
        self.send(Event::Ended(ended));
    }
}

/// Samples `counters` every `interval` and sends progress events until dropped.
pub(crate) fn spawn_sampler(
    events: Events,
    counters: Arc<Counters>,
    base: Progress,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        // (time, bytes) samples over the last few seconds, for a speed that reacts but is smooth.
        let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
        // The starting point, so the first sample already has a speed.
        window.push_back((start, counters.downloaded.load(Ordering::Relaxed)));
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            events.send(Event::Progress(sample(
                &counters,
                &base,
                start,
                &mut window,
            )));
        }
    })
}

/// The current progress of a download.
fn sample(
    counters: &Counters,
    base: &Progress,
    start: Instant,
    window: &mut std::collections::VecDeque<(Instant, u64)>,
) -> Progress {
    let now = Instant::now();
    let bytes = counters.downloaded.load(Ordering::Relaxed);
    window.push_back((now, bytes));
    while window.len() > 2 && now.duration_since(window[0].0) > Duration::from_secs(3) {
        window.pop_front();
    }
    let (t0, b0) = window[0];
    let dt = now.duration_since(t0).as_secs_f64();
    let speed = (dt > 0.05).then(|| (bytes - b0) as f64 / dt);
    // Fragments without sizes: the average fragment so far times their number.
    let fragment_index = base
        .fragment_count
        .map(|_| counters.fragments.load(Ordering::Relaxed));
    let total_bytes_estimate = match (base.total_bytes, base.fragment_count, fragment_index) {
        (None, Some(count), Some(done)) if done > 0 => Some(bytes * count as u64 / done as u64),
        _ => base.total_bytes_estimate,
    };
    let eta = match (base.total_bytes.or(total_bytes_estimate), speed) {
        (Some(total), Some(s)) if s > 0.0 => Some(total.saturating_sub(bytes) as f64 / s),
        _ => None,
    };
    Progress {
        downloaded_bytes: bytes,
        total_bytes_estimate,
        speed,
        eta,
        elapsed: start.elapsed().as_secs_f64(),
        connections: counters.connections.load(Ordering::Relaxed),
        fragment_index,
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_json_has_the_hook_keys() {
        let p = Event::Progress(Progress {
            id: 3,
            status: "downloading",
            downloaded_bytes: 1,
            total_bytes: None,
            total_bytes_estimate: None,
            speed: None,
            eta: None,
            elapsed: 0.5,
            filename: "f".into(),
            tmpfilename: "f.part".into(),
            connections: 1,
            fragment_index: None,
            fragment_count: None,
        });
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        assert_eq!(v["event"], "progress");
        for key in [
            "downloaded_bytes",
            "total_bytes",
            "speed",
            "eta",
            "elapsed",
            "filename",
            "tmpfilename",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v["total_bytes"].is_null());
    }
}
