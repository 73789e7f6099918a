//! What the connections of one segmented file share: its scheduler, its `.part`, its sources
//! (the probe's server and mirrors) and its counters.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use url::Url;

use crate::context::Context;
use crate::error::Error;
use crate::events::{Counters, Level};
use crate::http::Validators;
use crate::output::PartFile;
use crate::resume::{self, ResumeState};
use crate::scheduler::Scheduler;

/// Shared by the connections of one segmented download.
pub(crate) struct Transfer {
    pub ctx: Arc<Context>,
    pub id: usize,
    /// The URL after the probe's redirects; every segment asks it directly.
    pub url: Url,
    pub size: u64,
    pub validators: Validators,
    /// Other servers of the same file; connections are spread over them and `url`.
    pub mirrors: Vec<Mirror>,
    pub(crate) next_source: std::sync::atomic::AtomicUsize,
    pub part: PartFile,
    pub sched: Scheduler,
    pub counters: Arc<Counters>,
}

/// Another server of the file. Its replies are checked like the probe's server's, against the
/// file's size and its own validators (servers' ETags differ), learned from its first reply.
/// One that fails is dropped: its connections go to the probe's server.
pub(crate) struct Mirror {
    pub url: Url,
    pub validators: std::sync::OnceLock<Validators>,
    pub dead: std::sync::atomic::AtomicBool,
}

/// Where a connection fetches from: the probe's server, or one of the mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Primary,
    Mirror(usize),
}

impl Transfer {
    /// The source for a new connection: the probe's server and the live mirrors in turn.
    pub fn pick_source(&self) -> Source {
        let live: Vec<usize> = (0..self.mirrors.len())
            .filter(|&i| !self.mirrors[i].dead.load(Ordering::Relaxed))
            .collect();
        let n = self.next_source.fetch_add(1, Ordering::Relaxed) % (live.len() + 1);
        match n {
            0 => Source::Primary,
            n => Source::Mirror(live[n - 1]),
        }
    }

    pub fn source_url(&self, source: Source) -> &Url {
        match source {
            Source::Primary => &self.url,
            Source::Mirror(i) => &self.mirrors[i].url,
        }
    }

    /// The validators `source`'s replies must carry, if known yet.
    pub fn source_validators(&self, source: Source) -> Option<&Validators> {
        match source {
            Source::Primary => Some(&self.validators),
            Source::Mirror(i) => self.mirrors[i].validators.get(),
        }
    }

    pub fn log(&self, level: Level, message: String) {
        self.ctx.events.log(Some(self.id), level, message);
    }

    /// Syncs the data, then records it: the state never claims bytes that are not on disk.
    pub(crate) async fn save(&self, state: &Path) -> Result<(), Error> {
        let done = self.sched.done();
        self.part.extend_to(self.size)?;
        self.part.sync().await?;
        let s = ResumeState::new(self.url.as_str(), self.size, self.validators.clone(), done);
        let path = state.to_owned();
        tokio::task::spawn_blocking(move || resume::save(&path, &s))
            .await
            .expect("state save does not panic")
    }
}
