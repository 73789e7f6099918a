//! fastdl: an HTTP(S) download engine that fetches one file over many range connections, never
//! writes a byte it cannot vouch for, and resumes after any interruption.
//!
//! # Layout
//!
//! Data flows one way: command line → [`download::Options`] and [`download::Job`] →
//! [`download::download`] (probe, plan, verify, rename) → [`scheduler`] (who fetches which
//! bytes) → [`segment`] connections → [`output`] positional writes. Progress goes over one
//! channel ([`progress::Events`]) to one renderer.
//!
//! * [`cli`]: argv into `Args`, the help text.
//! * [`http`]: the shared client, requests, redirects, credential scoping.
//! * [`range`]: byte-range maths and `Content-Range` validation.
//! * [`retry`]: backoff schedule and `Retry-After`.
//! * [`error`]: the error type, the one retry classifier, exit codes.
//! * [`resume`]: the sidecar state file.
//! * [`checksum`]: whole-file digests.
//! * [`naming`]: safe file names from servers and URLs.
//! * [`ratelimit`]: the shared token bucket.
//! * [`shutdown`]: the stop signal.

pub mod batch;
mod body;
pub mod checksum;
pub mod cli;
pub mod config;
pub mod cookies;
pub mod download;
pub mod error;
pub mod fragment;
pub mod http;
pub mod info_json;
pub mod input;
pub mod limits;
pub mod naming;
pub mod ordered;
pub mod output;
pub mod progress;
pub mod range;
pub mod ratelimit;
pub mod resume;
pub mod retry;
pub mod scheduler;
mod segment;
pub mod shutdown;

pub use download::{download, Context, Job, Options, Outcome};
pub use error::Error;
