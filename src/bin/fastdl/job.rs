//! What the command line, an input list, a fragment job or an info JSON asks to download, before
//! it becomes a [`fastdl::Request`]. Plain data, so each parser can be tested on its fields.

use std::path::PathBuf;

use fastdl::{Checksum, Piece, Request};

/// One download as the user's input describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Job {
    pub url: String,
    /// Other URLs of the same file (TAB-separated in input lists).
    pub mirrors: Vec<String>,
    /// Exact output path (`-o`, `out=`); `-` is standard output.
    pub output: Option<PathBuf>,
    /// Directory for the output (`-d`, `dir=`).
    pub dir: Option<PathBuf>,
    pub checksums: Vec<Checksum>,
    pub headers: Vec<(String, String)>,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    /// Connections for this file (`split=`).
    pub connections: Option<usize>,
    /// Bytes per second for this file (`limit-rate=`).
    pub limit_rate: Option<u64>,
    /// When not empty, the output is these pieces joined in order.
    pub pieces: Vec<Piece>,
}

impl Job {
    /// What `--shard` hashes (shard.rs): the `out=` path as written, else the URL.
    pub fn shard_key(&self) -> std::borrow::Cow<'_, str> {
        match &self.output {
            Some(out) => out.to_string_lossy(),
            None => self.url.as_str().into(),
        }
    }

    /// The library's request for this job.
    pub fn into_request(self) -> Request {
        let mut r = match self.pieces.is_empty() {
            true => Request::new(self.url),
            false => Request::joined(self.pieces),
        };
        match self.output {
            Some(out) if out.as_os_str() == "-" => r = r.writer(tokio::io::stdout()),
            Some(out) => r = r.output(out),
            None => {}
        }
        if let Some(dir) = self.dir {
            r = r.dir(dir);
        }
        for m in self.mirrors {
            r = r.mirror(m);
        }
        for c in self.checksums {
            r = r.checksum(c);
        }
        for (k, v) in self.headers {
            r = r.header(k, v);
        }
        if let Some(v) = self.referer {
            r = r.referer(v);
        }
        if let Some(v) = self.user_agent {
            r = r.user_agent(v);
        }
        if let Some(n) = self.connections {
            r = r.connections(n);
        }
        if let Some(n) = self.limit_rate {
            r = r.limit_rate(n);
        }
        r
    }
}
