//! The one owner of stderr while downloads run: the library's events rendered as indicatif bars
//! on a terminal, plain yt-dlp-style lines in a log, or JSON lines for programs
//! (docs/progress-json.md), and the batch summary at the end.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use fastdl::{redact, Event, EventStream, Level, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::exit;

/// Version of the JSON event schema (docs/progress-json.md).
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to every file of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub done: usize,
    pub skipped: usize,
    /// Files that failed (not counting interrupted ones).
    pub failed_count: usize,
    /// The first of them, for the summary lines (`--report` has every one).
    pub failed: Vec<Failure>,
    /// Files stopped by Ctrl-C or SIGTERM, their progress saved.
    pub interrupted: usize,
    /// Entries never started (the run was interrupted first): those read from the list so far,
    /// or, with `--save-failed`, the whole rest of it.
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

impl Style {
    /// The names `--progress` takes (`bars` and `plain` are accepted too).
    pub const NAMES: [&'static str; 4] = ["auto", "bar", "lines", "json"];
}

/// Renderer settings.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    pub style: Style,
    pub quiet: bool,
    pub verbose: bool,
    /// Files in this run (`None`: not known, a list read from standard input); with more than
    /// one, bars get a total line.
    pub files: Option<usize>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            style: Style::Auto,
            quiet: false,
            verbose: false,
            files: Some(1),
        }
    }
}

/// A running renderer.
pub struct Rendering {
    summary_tx: oneshot::Sender<Option<Summary>>,
    task: tokio::task::JoinHandle<()>,
}

impl Rendering {
    /// Renders what is left, then `summary` (if any), and returns once all is printed.
    pub async fn finish(self, summary: Option<Summary>) {
        let _ = self.summary_tx.send(summary);
        let _ = self.task.await;
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
    /// Starts the renderer task on `events`. It renders until [`Rendering::finish`] hands it
    /// the summary.
    pub fn spawn(opts: RenderOptions, mut events: EventStream) -> Rendering {
        let style = match opts.style {
            Style::Auto if can_draw_bars() && !opts.quiet => Style::Bars,
            Style::Auto => Style::Lines,
            s => s,
        };
        let multi = (style == Style::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        let total = multi.as_ref().filter(|_| opts.files != Some(1)).map(|m| {
            let bar = m.add(ProgressBar::hidden());
            match opts.files {
                Some(n) => {
                    bar.set_length(n as u64);
                    bar.set_style(style_of(
                        "{prefix:.bold} [{wide_bar}] {pos}/{len} files {msg}",
                    ));
                }
                None => bar.set_style(style_of("{prefix:.bold} {pos} files {msg}")),
            }
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
        let (summary_tx, mut summary_rx) = oneshot::channel::<Option<Summary>>();
        let task = tokio::spawn(async move {
            let summary = loop {
                tokio::select! {
                    e = events.recv() => match e {
                        Some(e) => r.render(e),
                        None => break summary_rx.await.ok().flatten(),
                    },
                    s = &mut summary_rx => break s.ok().flatten(),
                }
            };
            // Every download has ended before the summary is sent: what they sent is queued.
            while let Some(e) = events.try_recv() {
                r.render(e);
            }
            if let Some(s) = summary {
                r.summary(s);
            }
            if let Some(m) = &r.multi {
                let _ = m.clear();
            }
        });
        Rendering { summary_tx, task }
    }

    fn json(&self, v: &impl Serialize) {
        let line = serde_json::to_string(v).expect("events serialise");
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", redact(&line));
        let _ = err.flush();
    }

    fn println(&self, line: &str) {
        let line = redact(line);
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
                let mut v = serde_json::to_value(&e).expect("events serialise");
                // Programs get the exit code the error would have on its own.
                let error = match &e {
                    Event::Failed { error, .. } => Some(exit::code(error)),
                    Event::Ended(end) => Some(end.error.as_ref().map_or(exit::OK, exit::code)),
                    _ => None,
                };
                if let Some(code) = error {
                    v["exit_code"] = code.into();
                }
                self.json(&v);
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
                        Some(_) => m.add(bar),
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
                        self.println(&Line::from(&p).to_string());
                    }
                }
            }
            Event::Log { level, message, .. } => self.log(level, &message),
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
            Event::Ended(r) => {
                if r.status == "skipped" && !self.opts.quiet {
                    let name = r.filename.as_deref().unwrap_or_default();
                    self.println(&format!("[download] {name} has already been downloaded"));
                }
                self.running.remove(&r.id);
                self.ended.0 += 1;
                self.ended.1 += r.bytes;
                self.update_total();
            }
            Event::Failed { id, error, .. } => {
                // A failed file's bar goes; its error line says what happened.
                if let Some(bar) = self.bars.remove(&id) {
                    bar.finish_and_clear();
                }
                // An interruption is one event for the whole run: said once, by the summary.
                if !matches!(error, fastdl::Error::Interrupted) {
                    self.println(&format!("fastdl: error: {error}"));
                }
            }
            _ => {}
        }
    }

    fn log(&self, level: Level, message: &str) {
        let show = match level {
            Level::Debug => self.opts.verbose,
            Level::Info | Level::Warning => !self.opts.quiet,
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

    /// The end of a run: the summary line of several files, the hint after an interruption.
    fn summary(&mut self, s: Summary) {
        let interrupted = s.interrupted > 0;
        if self.style == Style::Json {
            let mut v = serde_json::to_value(&s).expect("summary serialises");
            v["event"] = "summary".into();
            self.json(&v);
        } else if self.opts.files != Some(1) {
            if let Some(total) = self.total.take() {
                total.finish_and_clear();
            }
            let speed = s.bytes as f64 / s.elapsed.max(0.001);
            let mut line = format!(
                "Summary: {} done, {} skipped, {} failed",
                s.done, s.skipped, s.failed_count
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
            if !self.opts.quiet || s.failed_count > 0 {
                self.println(&line);
            }
            for f in &s.failed {
                // Errors name their URL already; say it once.
                match f.error.starts_with(&f.url) {
                    true => self.println(&format!("  failed: {}", f.error)),
                    false => self.println(&format!("  failed: {}: {}", f.url, f.error)),
                }
            }
            if s.failed_count > s.failed.len() {
                let more = s.failed_count - s.failed.len();
                self.println(&format!(
                    "  and {more} more failed (--report lists every one)"
                ));
            }
        }
        if interrupted {
            let message = "interrupted; progress is saved: run the same command again to resume";
            match self.style {
                Style::Json => self.json(&serde_json::json!({
                    "event": "log", "id": null, "level": "warning", "message": message,
                })),
                _ => self.log(Level::Warning, message),
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

/// True when stderr is a terminal bars can be drawn on: not a dumb one (it cannot move the
/// cursor: bars would pile up), and one with a size (a pseudo-terminal of 0 columns shows none).
fn can_draw_bars() -> bool {
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    let sized = console::Term::stderr()
        .size_checked()
        .is_some_and(|(_, cols)| cols > 0);
    std::io::stderr().is_terminal() && !dumb && sized
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
    // Hidden until the MultiProgress takes it: a new bar draws itself at once on setting its
    // style or prefix, and one drawn on stderr behind the MultiProgress's back stayed on screen
    // as a frozen copy.
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
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

/// What a plain progress line shows of a [`Progress`].
#[derive(Clone, Copy, Debug)]
struct Line {
    downloaded: u64,
    total: Option<u64>,
    estimate: Option<u64>,
    speed: Option<f64>,
    eta: Option<f64>,
    /// Fragments written and their number.
    fragments: Option<(usize, usize)>,
}

impl From<&Progress> for Line {
    fn from(p: &Progress) -> Line {
        Line {
            downloaded: p.downloaded_bytes,
            total: p.total_bytes,
            estimate: p.total_bytes_estimate,
            speed: p.speed,
            eta: p.eta,
            fragments: p.fragment_index.zip(p.fragment_count),
        }
    }
}

impl std::fmt::Display for Line {
    /// `[download]  42.3% of 256.00MiB at 12.40MiB/s ETA 00:13`, yt-dlp's shape.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let speed = self
            .speed
            .map(|s| format!("{}/s", human_bytes(s as u64)))
            .unwrap_or("Unknown B/s".into());
        let eta = self.eta.map(clock).unwrap_or("Unknown".into());
        // yt-dlp's suffix for downloads made of fragments.
        let frag = match self.fragments {
            Some((i, n)) => format!(" (frag {i}/{n})"),
            None => String::new(),
        };
        let percent = |t: u64| (self.downloaded as f64 * 100.0 / t as f64).min(100.0);
        match (self.total, self.estimate) {
            (Some(t), _) if t > 0 => write!(
                f,
                "[download] {:5.1}% of {} at {speed} ETA {eta}{frag}",
                percent(t),
                human_bytes(t)
            ),
            (_, Some(t)) if t > 0 => write!(
                f,
                "[download] {:5.1}% of ~{} at {speed} ETA {eta}{frag}",
                percent(t),
                human_bytes(t)
            ),
            _ => write!(
                f,
                "[download] {} at {speed}{frag}",
                human_bytes(self.downloaded)
            ),
        }
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
        let line = Line {
            downloaded: 113_553_408,
            total: Some(268_435_456),
            estimate: None,
            speed: Some(13_002_342.0),
            eta: Some(13.2),
            fragments: None,
        };
        assert_eq!(
            line.to_string(),
            "[download]  42.3% of 256.00MiB at 12.40MiB/s ETA 00:13"
        );
        // Fragments of unknown sizes: an estimate and yt-dlp's `(frag i/n)`.
        let frags = Line {
            total: None,
            estimate: Some(268_435_456),
            eta: None,
            fragments: Some((12, 600)),
            ..line
        };
        assert_eq!(
            frags.to_string(),
            "[download]  42.3% of ~256.00MiB at 12.40MiB/s ETA Unknown (frag 12/600)"
        );
    }
}
