//! Progress: the events downloads emit and the one task that renders them.
//!
//! Downloads never print. They bump [`Counters`] on the hot path (two atomics), and a sampler per
//! file turns the counters into at most one [`Event::Progress`] per interval. Everything goes
//! over one channel to [`Renderer`], which owns stderr: JSON lines for programs, indicatif bars
//! on a terminal, plain lines in a log.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::http::hide_passwords;

/// Version of the JSON event schema (docs/progress-json.md).
pub const SCHEMA_VERSION: u32 = 1;

/// Live counters of one download, shared by its connections and its sampler.
#[derive(Debug, Default)]
pub struct Counters {
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
    Debug,
    Info,
    Warning,
}

/// One progress sample, with the keys yt-dlp's progress hooks use.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    pub id: usize,
    pub status: &'static str,
    pub downloaded_bytes: u64,
    pub total_bytes: Option<u64>,
    pub total_bytes_estimate: Option<u64>,
    pub speed: Option<f64>,
    pub eta: Option<f64>,
    pub elapsed: f64,
    pub filename: String,
    pub tmpfilename: String,
    pub connections: usize,
    /// Fragments written so far, for a download made of fragments (yt-dlp's `(frag i/n)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_count: Option<usize>,
}

/// Everything a download reports.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A download begins (after its first reply, so the size is known if the server tells).
    Start {
        id: usize,
        url: String,
        filename: String,
        tmpfilename: String,
        total_bytes: Option<u64>,
        resumed_bytes: u64,
    },
    Progress(Progress),
    Log {
        id: Option<usize>,
        level: Level,
        message: String,
    },
    /// A download finished and was verified.
    Finished {
        id: usize,
        filename: String,
        downloaded_bytes: u64,
        total_bytes: u64,
        elapsed: f64,
    },
    /// A download failed.
    Error {
        id: usize,
        message: String,
        exit_code: u8,
    },
    /// One fragment of a joined download is in the output (`done`) or left out (`failed`).
    Fragment {
        id: usize,
        index: usize,
        status: &'static str,
        bytes: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The outcome of one file, success or not: the line a batch summary is made of.
    Result(FileResult),
    /// The end of a run of several files.
    Summary(Summary),
}

/// What happened to every file of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub done: usize,
    pub skipped: usize,
    pub failed: Vec<Failure>,
    /// Files stopped by Ctrl-C or SIGTERM, their progress saved.
    pub interrupted: usize,
    /// Files never started (the run was interrupted first).
    pub not_started: usize,
    /// Bytes downloaded by this run (not counting resumed or skipped ones).
    pub bytes: u64,
    pub elapsed: f64,
}

/// A failed file, for the summary.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub id: usize,
    pub url: String,
    pub error: String,
}

/// How one file ended.
#[derive(Clone, Debug, Serialize)]
pub struct FileResult {
    pub id: usize,
    pub url: String,
    /// `done`, `failed` or `skipped`.
    pub status: &'static str,
    pub filename: Option<String>,
    pub bytes: u64,
    pub resumed_bytes: u64,
    pub elapsed: f64,
    pub error: Option<String>,
    pub exit_code: u8,
}

/// The sending side, cloned into every download.
#[derive(Clone, Debug)]
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
}

impl Events {
    /// Sends an event; a closed renderer (shutting down) is not an error for a download.
    pub fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    /// Sends a log line.
    pub fn log(&self, id: Option<usize>, level: Level, message: impl Into<String>) {
        self.send(Event::Log {
            id,
            level,
            message: message.into(),
        });
    }

    /// Sends download `id`'s `Start`; returns the progress its later events build on.
    pub fn start(
        &self,
        id: usize,
        url: &str,
        (filename, tmpfilename): (&std::path::Path, &std::path::Path),
        total_bytes: Option<u64>,
        resumed_bytes: u64,
    ) -> Progress {
        let filename = filename.display().to_string();
        let tmpfilename = tmpfilename.display().to_string();
        self.send(Event::Start {
            id,
            url: url.to_string(),
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
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// indicatif bars (forced).
    Bars,
    /// Plain newline-terminated lines.
    Lines,
    /// JSON lines (`--progress json`).
    Json,
}

/// Renderer settings.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    pub style: Style,
    pub quiet: bool,
    pub verbose: bool,
    /// Files in this run; with more than one, bars get a total line.
    pub files: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            style: Style::Auto,
            quiet: false,
            verbose: false,
            files: 1,
        }
    }
}

/// Samples `counters` every `interval` and sends progress events until dropped.
pub fn spawn_sampler(
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
pub fn sample(
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

/// The single owner of stderr while downloads run.
pub struct Renderer {
    opts: RenderOptions,
    style: Style,
    multi: Option<MultiProgress>,
    bars: HashMap<usize, ProgressBar>,
    /// The batch's total line (bars, more than one file), below the file bars.
    total: Option<ProgressBar>,
    /// Latest bytes and speed of each running file, for the total line.
    running: HashMap<usize, (u64, f64)>,
    /// Files ended and the bytes of those that succeeded.
    ended: (usize, u64),
    /// Last time a plain progress line was printed, per file.
    last_line: HashMap<usize, Instant>,
}

impl Renderer {
    /// Starts the renderer task; returns the sender and the task (which ends when every sender
    /// is dropped, after printing everything).
    pub fn spawn(opts: RenderOptions) -> (Events, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let style = match opts.style {
            Style::Auto if std::io::stderr().is_terminal() && !opts.quiet => Style::Bars,
            Style::Auto => Style::Lines,
            s => s,
        };
        let multi = (style == Style::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        let total = multi.as_ref().filter(|_| opts.files > 1).map(|m| {
            let bar = m.add(ProgressBar::new(opts.files as u64));
            bar.set_style(style_of(
                "{prefix:.bold} [{wide_bar}] {pos}/{len} files {msg}",
            ));
            bar.set_prefix("total");
            bar
        });
        let mut r = Renderer {
            opts,
            style,
            multi,
            bars: HashMap::new(),
            total,
            running: HashMap::new(),
            ended: (0, 0),
            last_line: HashMap::new(),
        };
        if style == Style::Json {
            r.json(&serde_json::json!({
                "event": "hello",
                "v": SCHEMA_VERSION,
                "pid": std::process::id(),
                "version": env!("CARGO_PKG_VERSION"),
            }));
        }
        let task = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                r.render(e);
            }
            if let Some(m) = &r.multi {
                let _ = m.clear();
            }
        });
        (Events { tx }, task)
    }

    fn json(&self, v: &impl Serialize) {
        let line = serde_json::to_string(v).expect("events serialise");
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", hide_passwords(&line));
        let _ = err.flush();
    }

    fn println(&self, line: &str) {
        let line = hide_passwords(line);
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
                let _ = err.flush();
            }
        }
    }

    fn render(&mut self, e: Event) {
        if self.style == Style::Json {
            let skip = matches!(&e, Event::Log { level: Level::Debug, .. } if !self.opts.verbose);
            if !skip {
                self.json(&e);
            }
            return;
        }
        match e {
            Event::Start {
                id,
                filename,
                total_bytes,
                resumed_bytes,
                ..
            } => {
                if self.opts.quiet {
                    return;
                }
                if resumed_bytes > 0 {
                    self.println(&format!(
                        "[download] Resuming {filename} at {}",
                        human_bytes(resumed_bytes)
                    ));
                } else if self.style == Style::Lines {
                    self.println(&format!("[download] Destination: {filename}"));
                }
                if let Some(m) = &self.multi {
                    let bar = new_bar(total_bytes, &filename);
                    let bar = match &self.total {
                        Some(total) => m.insert_before(total, bar),
                        None => m.add(bar),
                    };
                    bar.set_position(resumed_bytes);
                    self.bars.insert(id, bar);
                }
            }
            Event::Progress(p) => {
                if self.opts.quiet {
                    return;
                }
                self.running
                    .insert(p.id, (p.downloaded_bytes, p.speed.unwrap_or(0.0)));
                self.update_total();
                if let Some(bar) = self.bars.get(&p.id) {
                    bar.set_position(p.downloaded_bytes);
                    bar.set_message(format!("{}x", p.connections));
                } else if self.style == Style::Lines {
                    // A line every few seconds is enough for a log file.
                    let due = self
                        .last_line
                        .get(&p.id)
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(3));
                    if due {
                        self.last_line.insert(p.id, Instant::now());
                        self.println(&progress_line(&p));
                    }
                }
            }
            Event::Log { level, message, .. } => {
                let show = match level {
                    Level::Debug => self.opts.verbose,
                    Level::Info => !self.opts.quiet,
                    Level::Warning => !self.opts.quiet,
                };
                if show {
                    let prefix = if level == Level::Warning {
                        "warning: "
                    } else {
                        ""
                    };
                    self.println(&format!("fastdl: {prefix}{message}"));
                }
            }
            Event::Finished {
                id,
                filename,
                total_bytes,
                elapsed,
                ..
            } => {
                if let Some(bar) = self.bars.remove(&id) {
                    bar.finish_and_clear();
                }
                self.last_line.remove(&id);
                if !self.opts.quiet {
                    let speed = total_bytes as f64 / elapsed.max(0.001);
                    self.println(&format!(
                        "[download] 100% of {} in {} at {}/s: {filename}",
                        human_bytes(total_bytes),
                        clock(elapsed),
                        human_bytes(speed as u64)
                    ));
                }
            }
            // Bars and lines show fragments through the file's bytes; a failed one is a warning.
            Event::Fragment { .. } => {}
            Event::Result(r) => {
                self.running.remove(&r.id);
                self.ended.0 += 1;
                self.ended.1 += r.bytes;
                self.update_total();
            }
            Event::Summary(s) => {
                if self.opts.files > 1 {
                    if let Some(total) = self.total.take() {
                        total.finish_and_clear();
                    }
                    let speed = s.bytes as f64 / s.elapsed.max(0.001);
                    let mut line = format!(
                        "Summary: {} done, {} skipped, {} failed",
                        s.done,
                        s.skipped,
                        s.failed.len()
                    );
                    if s.interrupted > 0 {
                        line.push_str(&format!(", {} interrupted", s.interrupted));
                    }
                    if s.not_started > 0 {
                        line.push_str(&format!(", {} not started", s.not_started));
                    }
                    line.push_str(&format!(
                        "; {} in {} ({}/s)",
                        human_bytes(s.bytes),
                        clock(s.elapsed),
                        human_bytes(speed as u64)
                    ));
                    if !self.opts.quiet || !s.failed.is_empty() {
                        self.println(&line);
                    }
                    for f in &s.failed {
                        self.println(&format!("  failed: {}: {}", f.url, f.error));
                    }
                }
            }
            Event::Error {
                id,
                message,
                exit_code,
            } => {
                if let Some(bar) = self.bars.remove(&id) {
                    bar.abandon();
                }
                // An interruption is one event for the whole run: said once, by the summary.
                if exit_code != crate::error::exit::INTERRUPTED {
                    self.println(&format!("fastdl: error: {message}"));
                }
            }
        }
    }
}

impl Renderer {
    fn update_total(&self) {
        if let Some(total) = &self.total {
            let bytes = self.ended.1 + self.running.values().map(|r| r.0).sum::<u64>();
            let speed: f64 = self.running.values().map(|r| r.1).sum();
            total.set_position(self.ended.0 as u64);
            total.set_message(format!(
                "{} at {}/s, {} running",
                human_bytes(bytes),
                human_bytes(speed as u64),
                self.running.len()
            ));
        }
    }
}

/// A bar style; without colours and bold when `NO_COLOR` is set (https://no-color.org).
fn style_of(template: &str) -> ProgressStyle {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let template = if no_color {
        template.replace(":.bold", "")
    } else {
        template.to_string()
    };
    ProgressStyle::with_template(&template)
        .expect("valid template")
        .progress_chars("=> ")
}

fn new_bar(total: Option<u64>, name: &str) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::no_length(),
    };
    // `wide_bar` takes whatever width is left, so a line always fits the terminal.
    let template = if total.is_some() {
        "{prefix:.bold} [{wide_bar}] {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}"
    } else {
        "{prefix:.bold} {bytes} {binary_bytes_per_sec} {msg}"
    };
    bar.set_style(style_of(template));
    bar.set_prefix(shorten(name, 32));
    bar
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(max - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// `[download]  42.3% of 256.00MiB at 12.40MiB/s ETA 00:13`, yt-dlp's shape.
pub fn progress_line(p: &Progress) -> String {
    let speed = p
        .speed
        .map(|s| format!("{}/s", human_bytes(s as u64)))
        .unwrap_or("Unknown B/s".into());
    let eta = p.eta.map(clock).unwrap_or("Unknown".into());
    // yt-dlp's suffix for downloads made of fragments.
    let frag = match (p.fragment_index, p.fragment_count) {
        (Some(i), Some(n)) => format!(" (frag {i}/{n})"),
        _ => String::new(),
    };
    match (p.total_bytes, p.total_bytes_estimate) {
        (Some(t), _) if t > 0 => format!(
            "[download] {:5.1}% of {} at {speed} ETA {eta}{frag}",
            p.downloaded_bytes as f64 * 100.0 / t as f64,
            human_bytes(t)
        ),
        (_, Some(t)) if t > 0 => format!(
            "[download] {:5.1}% of ~{} at {speed} ETA {eta}{frag}",
            (p.downloaded_bytes as f64 * 100.0 / t as f64).min(100.0),
            human_bytes(t)
        ),
        _ => format!(
            "[download] {} at {speed}{frag}",
            human_bytes(p.downloaded_bytes)
        ),
    }
}

/// Binary units with two decimals, as yt-dlp prints them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[u])
    }
}

fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_look_like_yt_dlp() {
        let p = Progress {
            id: 0,
            status: "downloading",
            downloaded_bytes: 113_553_408,
            total_bytes: Some(268_435_456),
            total_bytes_estimate: None,
            speed: Some(13_002_342.0),
            eta: Some(13.2),
            elapsed: 1.0,
            filename: "f".into(),
            tmpfilename: "f.part".into(),
            connections: 8,
            fragment_index: None,
            fragment_count: None,
        };
        assert_eq!(
            progress_line(&p),
            "[download]  42.3% of 256.00MiB at 12.40MiB/s ETA 00:13"
        );
        // Fragments of unknown sizes: an estimate and yt-dlp's `(frag i/n)`.
        let frags = Progress {
            total_bytes: None,
            total_bytes_estimate: Some(268_435_456),
            eta: None,
            fragment_index: Some(12),
            fragment_count: Some(600),
            ..p
        };
        assert_eq!(
            progress_line(&frags),
            "[download]  42.3% of ~256.00MiB at 12.40MiB/s ETA Unknown (frag 12/600)"
        );
    }

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
