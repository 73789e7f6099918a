//! End-to-end tests: the real `fastdl` binary against real HTTP servers on 127.0.0.1.
//! One test binary (one link); files grouped by behaviour.

mod server;
mod util;

mod batch;
mod config;
mod faults;
mod fragments;
mod hostile;
mod integrity;
mod progress;
mod proxy;
mod ranges;
mod report;
mod resume;
mod safety;
mod shard;
mod stream;
mod tail;
mod tls;
