//! Every setting of the command line and the config file, defined once ([`FLAGS`]): its names,
//! its help line, its default, whether the config file may set it, how its value is read (the
//! same code for `--retries inf` and `retries = "inf"`) and how `--print-config` shows it. The
//! parser, `--help`, the config keys, `--print-config` and [`Args::default`] are all driven by
//! this table, so adding a setting touches one place and the two sources cannot disagree.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use fastdl::{Checksum, CookieJar};

use crate::generate::Kind;
use crate::render::Style;
use crate::shard::ShardSpec;
pub use crate::units::{parse_duration, parse_size};

/// What the user asked for: the command line over the config file over the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub urls: Vec<String>,
    pub output: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub overwrite: bool,
    pub remote_time: bool,
    pub no_continue: bool,
    pub no_preconnect: bool,
    pub checksums: Vec<Checksum>,
    pub max_filesize: Option<u64>,
    pub min_filesize: Option<u64>,
    pub connections: usize,
    pub chunk_size: u64,
    pub http_chunk_size: Option<u64>,
    pub limit_rate: Option<u64>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// `None` retries forever.
    pub retries: Option<u32>,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub headers: Vec<(String, String)>,
    pub user_agent: String,
    pub referer: Option<String>,
    pub proxy: Option<String>,
    pub insecure: bool,
    pub ca_certificate: Option<PathBuf>,
    pub source_address: Option<IpAddr>,
    /// `--fragments JOB.json`: HLS/DASH pieces to download (fragment.rs).
    pub fragments: Option<String>,
    /// `--fragment-retries`, for `--fragments` (else `retries` applies); `Some(None)` is inf.
    pub fragment_retries: Option<Option<u32>>,
    pub abort_on_unavailable_fragment: bool,
    /// `--info-json FILE|-`: a yt-dlp info or format dict (info_json.rs).
    pub info_json: Option<String>,
    /// `--cookies FILE|-`: a Netscape cookies file (`-` reads standard input).
    pub cookies: Option<String>,
    /// `-i FILE` (`-` is standard input).
    pub input_file: Option<String>,
    /// `--shard K/N|auto`: this run's part of the URLs and the list (shard.rs).
    pub shard: Option<ShardSpec>,
    /// `--report FILE|-`: a JSON line per entry (report.rs).
    pub report: Option<String>,
    /// `--save-failed FILE`: the entries that did not finish, as an input list.
    pub save_failed: Option<PathBuf>,
    pub concurrent_downloads: usize,
    pub max_connections_per_host: usize,
    pub max_connections: usize,
    /// `--max-requests-per-host-per-second`; 0 is no limit.
    pub requests_per_host: f64,
    pub config: Option<PathBuf>,
    pub no_config: bool,
    pub print_config: bool,
    /// `--generate KIND`: print a shell completion or the man page (generate.rs).
    pub generate: Option<Kind>,
    pub progress: Style,
    pub progress_interval: Duration,
    pub quiet: bool,
    pub verbose: bool,
    pub help: bool,
    pub version: bool,
    /// Where each config key's value came from: "command line" or "FILE:LINE" (absent: the
    /// default).
    pub sources: BTreeMap<&'static str, String>,
    /// The jar read from `cookies` (filled by main, which does the I/O).
    pub cookie_jar: Option<CookieJar>,
}

impl Default for Args {
    /// Every flag's default, read by the flag itself.
    fn default() -> Args {
        let mut a = Args {
            urls: Vec::new(),
            output: None,
            dir: None,
            overwrite: false,
            remote_time: false,
            no_continue: false,
            no_preconnect: false,
            checksums: Vec::new(),
            max_filesize: None,
            min_filesize: None,
            connections: 0,
            chunk_size: 0,
            http_chunk_size: None,
            limit_rate: None,
            timeout: Duration::ZERO,
            connect_timeout: Duration::ZERO,
            retries: None,
            retry_delay: Duration::ZERO,
            max_retry_delay: Duration::ZERO,
            headers: Vec::new(),
            user_agent: String::new(),
            referer: None,
            proxy: None,
            insecure: false,
            ca_certificate: None,
            source_address: None,
            fragments: None,
            fragment_retries: None,
            abort_on_unavailable_fragment: false,
            info_json: None,
            cookies: None,
            input_file: None,
            shard: None,
            report: None,
            save_failed: None,
            concurrent_downloads: 0,
            max_connections_per_host: 0,
            max_connections: 0,
            requests_per_host: 0.0,
            config: None,
            no_config: false,
            print_config: false,
            generate: None,
            progress: Style::Auto,
            progress_interval: Duration::ZERO,
            quiet: false,
            verbose: false,
            help: false,
            version: false,
            sources: BTreeMap::new(),
            cookie_jar: None,
        };
        for flag in FLAGS {
            if let Some(default) = flag.default {
                (flag.set)(&mut a, Value::Text(default)).expect("defaults are valid");
            }
        }
        a.user_agent = concat!("fastdl/", env!("CARGO_PKG_VERSION")).to_string();
        a
    }
}

/// A value for a flag: from the command line (text, or nothing for a switch) or the config file.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Switch,
    Text(&'a str),
    Toml(&'a toml::Value),
}

/// The sections of `--help`, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Output,
    Connections,
    Requests,
    Batches,
    Configuration,
    Progress,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Output,
        Section::Connections,
        Section::Requests,
        Section::Batches,
        Section::Configuration,
        Section::Progress,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Output => "Output",
            Section::Connections => "Connections",
            Section::Requests => "Requests",
            Section::Batches => "Batches",
            Section::Configuration => "Configuration",
            Section::Progress => "Progress",
        }
    }
}

/// One setting. See the module docs.
pub struct Flag {
    pub long: &'static str,
    pub short: &'static [char],
    /// Other names it answers to (aria2c's, yt-dlp's).
    pub aliases: &'static [&'static str],
    /// The value's name in `--help`; `None` for a switch.
    pub value: Option<&'static str>,
    pub section: Section,
    pub help: &'static str,
    /// Read into [`Args::default`] and shown in `--help`.
    pub default: Option<&'static str>,
    /// The config file key, when the file may set it.
    pub key: Option<&'static str>,
    pub set: fn(&mut Args, Value<'_>) -> Result<(), String>,
    /// The effective value in TOML syntax, for `--print-config` (config keys only).
    pub show: fn(&Args) -> String,
}

impl Flag {
    /// Finds a flag by a long name or alias.
    pub fn by_long(name: &str) -> Option<&'static Flag> {
        FLAGS
            .iter()
            .find(|f| f.long == name || f.aliases.contains(&name))
    }

    pub fn by_short(c: char) -> Option<&'static Flag> {
        FLAGS.iter().find(|f| f.short.contains(&c))
    }

    pub fn by_key(key: &str) -> Option<&'static Flag> {
        FLAGS.iter().find(|f| f.key == Some(key))
    }
}

/// The config keys, in `--print-config` order.
pub fn keys() -> impl Iterator<Item = &'static str> {
    FLAGS.iter().filter_map(|f| f.key)
}

fn none(_: &Args) -> String {
    String::new()
}

// Value readers: one per kind of value, for the command line and the config file alike.

/// The text of a value; a TOML value must be a string.
fn text(v: Value<'_>) -> Result<String, String> {
    match v {
        Value::Text(s) => Ok(s.to_string()),
        Value::Toml(toml::Value::String(s)) => Ok(s.clone()),
        Value::Toml(other) => Err(format!("expected a string, got {}", other.type_str())),
        Value::Switch => Err("needs a value".into()),
    }
}

/// A switch: on from the command line; `true` or `false` in the config file.
fn switch(v: Value<'_>) -> Result<bool, String> {
    match v {
        Value::Switch => Ok(true),
        Value::Toml(toml::Value::Boolean(b)) => Ok(*b),
        Value::Toml(other) => Err(format!("expected true or false, got {}", other.type_str())),
        Value::Text(_) => Err("takes no value".into()),
    }
}

/// A whole number from `min` to `max`.
fn count(v: Value<'_>, min: u64, max: u64) -> Result<u64, String> {
    let n: i128 = match v {
        Value::Toml(toml::Value::Integer(n)) => *n as i128,
        Value::Toml(other) => {
            return Err(format!("expected a whole number, got {}", other.type_str()))
        }
        _ => {
            let t = text(v)?;
            t.trim()
                .parse()
                .map_err(|_| format!("{t:?} is not a whole number"))?
        }
    };
    if n < min as i128 || n > max as i128 {
        return Err(format!("{n} is out of range ({min} to {max})"));
    }
    Ok(n as u64)
}

/// A whole number, or `inf`/`infinite` (`None`).
fn count_or_inf(v: Value<'_>) -> Result<Option<u32>, String> {
    match v {
        Value::Text("inf" | "infinite") => Ok(None),
        Value::Toml(toml::Value::String(s)) if s == "inf" || s == "infinite" => Ok(None),
        Value::Toml(toml::Value::String(s)) => count(Value::Text(s), 0, u32::MAX as u64)
            .map(|n| Some(n as u32))
            .map_err(|_| format!("{s:?} is not a whole number or \"inf\"")),
        _ => count(v, 0, u32::MAX as u64).map(|n| Some(n as u32)),
    }
}

/// A number of times per second: 0 or more, fractions allowed.
fn rate(v: Value<'_>) -> Result<f64, String> {
    let r = match v {
        Value::Toml(toml::Value::Integer(n)) => *n as f64,
        Value::Toml(toml::Value::Float(f)) => *f,
        _ => {
            let t = text(v)?;
            t.trim()
                .parse()
                .map_err(|_| format!("{t:?} is not a number"))?
        }
    };
    if !(r.is_finite() && r >= 0.0) {
        return Err(format!(
            "{r} is not a number of times per second (0 or more)"
        ));
    }
    Ok(r)
}

fn size(v: Value<'_>) -> Result<u64, String> {
    match v {
        Value::Toml(toml::Value::Integer(n)) if *n >= 0 => Ok(*n as u64),
        Value::Toml(toml::Value::Integer(n)) => Err(format!("{n} is not a size")),
        Value::Toml(toml::Value::String(s)) => parse_size(s),
        Value::Toml(other) => Err(format!(
            "expected a size like \"1M\", got {}",
            other.type_str()
        )),
        _ => parse_size(&text(v)?),
    }
}

fn duration(v: Value<'_>) -> Result<Duration, String> {
    match v {
        Value::Toml(toml::Value::Integer(n)) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        Value::Toml(toml::Value::Float(f)) if *f >= 0.0 => {
            Duration::try_from_secs_f64(*f).map_err(|_| format!("{f} is not a duration"))
        }
        Value::Toml(toml::Value::String(s)) => parse_duration(s),
        Value::Toml(other) => Err(format!(
            "expected a duration like \"30s\", got {}",
            other.type_str()
        )),
        _ => parse_duration(&text(v)?),
    }
}

/// Checks a `Name: value` header: a valid name, and a value without control characters (which
/// could split the request).
pub fn parse_header(arg: &str) -> Result<(String, String), String> {
    let bad = |why: &str| format!("bad header {arg:?}: {why}");
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| bad("expected \"Name: value\""))?;
    let (name, value) = (name.trim(), value.trim());
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| bad("invalid header name"))?;
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad("control characters in the value"));
    }
    reqwest::header::HeaderValue::from_str(value).map_err(|_| bad("invalid header value"))?;
    Ok((name.to_string(), value.to_string()))
}

/// Headers from the config file: a list of `"Name: value"` strings, or a table.
fn toml_headers(v: &toml::Value) -> Result<Vec<(String, String)>, String> {
    let one = |text: String| parse_header(&text);
    let string = |v: &toml::Value| text(Value::Toml(v));
    match v {
        toml::Value::Array(items) => items.iter().map(|i| one(string(i)?)).collect(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| one(format!("{k}: {}", string(v)?)))
            .collect(),
        other => Err(format!(
            "expected a list of \"Name: value\" strings or a table, got {}",
            other.type_str()
        )),
    }
}

fn style(v: Value<'_>) -> Result<Style, String> {
    let t = text(v)?;
    Ok(match t.as_str() {
        "auto" => Style::Auto,
        "bar" | "bars" => Style::Bars,
        "lines" | "plain" => Style::Lines,
        "json" => Style::Json,
        _ => return Err(format!("{t:?}: expected {}", Style::NAMES.join(", "))),
    })
}

fn show_duration(d: Duration) -> String {
    format!("\"{}ms\"", d.as_millis())
}

fn show_text(t: Option<&str>) -> String {
    format!("{:?}", t.unwrap_or_default())
}

fn show_path(p: Option<&std::path::Path>) -> String {
    format!(
        "{:?}",
        p.map(|p| p.display().to_string()).unwrap_or_default()
    )
}

/// Every setting, in `--help` order within each section.
pub static FLAGS: &[Flag] = &[
    // Output
    Flag {
        long: "output",
        short: &['o'],
        aliases: &[],
        value: Some("PATH"),
        section: Section::Output,
        help: "save to exactly PATH (one URL only; - is standard output); default: the name \
               the server gives (Content-Disposition) or the last part of the URL",
        default: None,
        key: None,
        set: |a, v| {
            a.output = Some(text(v)?.into());
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "dir",
        short: &['d'],
        aliases: &[],
        value: Some("DIR"),
        section: Section::Output,
        help: "directory for output files (default: current directory)",
        default: None,
        key: Some("dir"),
        set: |a, v| {
            a.dir = Some(text(v)?.into());
            Ok(())
        },
        show: |a| show_path(Some(a.dir.as_deref().unwrap_or(std::path::Path::new(".")))),
    },
    Flag {
        long: "overwrite",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Output,
        help: "replace an existing output file (default: refuse, exit 4)",
        default: None,
        key: None,
        set: |a, v| {
            a.overwrite = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "remote-time",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Output,
        help: "give the file the server's Last-Modified time (yt-dlp --mtime)",
        default: None,
        key: None,
        set: |a, v| {
            a.remote_time = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "no-continue",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Output,
        help: "ignore an interrupted download's state and start over",
        default: None,
        key: None,
        set: |a, v| {
            a.no_continue = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "continue",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Output,
        help: "resume an interrupted download (the default; undoes --no-continue)",
        default: None,
        key: None,
        set: |a, v| {
            a.no_continue = !switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "checksum",
        short: &[],
        aliases: &[],
        value: Some("TYPE=HEX"),
        section: Section::Output,
        help: "verify the file (md5, sha-1, sha-256, sha-512); exit 5 on mismatch",
        default: None,
        key: None,
        set: |a, v| {
            let c = text(v)?.parse::<Checksum>().map_err(|e| e.to_string())?;
            a.checksums.push(c);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "max-filesize",
        short: &[],
        aliases: &[],
        value: Some("SIZE"),
        section: Section::Output,
        help: "skip a file announced larger than SIZE, before writing anything (exit 3)",
        default: None,
        key: None,
        set: |a, v| {
            a.max_filesize = Some(size(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "min-filesize",
        short: &[],
        aliases: &[],
        value: Some("SIZE"),
        section: Section::Output,
        help: "skip a file announced smaller than SIZE (exit 3)",
        default: None,
        key: None,
        set: |a, v| {
            a.min_filesize = Some(size(v)?);
            Ok(())
        },
        show: none,
    },
    // Connections
    Flag {
        long: "connections",
        short: &['x'],
        aliases: &[],
        value: Some("N"),
        section: Section::Connections,
        help: "connections per file, 1-256",
        default: Some("8"),
        key: Some("connections"),
        set: |a, v| {
            a.connections = count(v, 1, 256)? as usize;
            Ok(())
        },
        show: |a| a.connections.to_string(),
    },
    Flag {
        long: "chunk-size",
        short: &['k'],
        aliases: &["min-split-size"],
        value: Some("SIZE"),
        section: Section::Connections,
        help: "smallest range worth its own connection",
        default: Some("1M"),
        key: Some("chunk_size"),
        set: |a, v| {
            a.chunk_size = size(v)?.max(1);
            Ok(())
        },
        show: |a| a.chunk_size.to_string(),
    },
    Flag {
        long: "no-preconnect",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Connections,
        help: "do not open a file's extra connections while a slow first reply (over 10 ms) \
               is awaited; by default they are, for one file",
        default: None,
        key: None,
        set: |a, v| {
            a.no_preconnect = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "http-chunk-size",
        short: &[],
        aliases: &[],
        value: Some("SIZE"),
        section: Section::Connections,
        help: "ask for at most SIZE bytes per request (servers that throttle longer ranges; \
               yt-dlp passes it)",
        default: None,
        key: None,
        set: |a, v| {
            a.http_chunk_size = Some(size(v)?).filter(|&n| n > 0);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "limit-rate",
        short: &[],
        aliases: &[],
        value: Some("RATE"),
        section: Section::Connections,
        help: "cap the speed of all downloads together, e.g. 500K or 10M (0: no cap)",
        default: Some("0"),
        key: Some("limit_rate"),
        set: |a, v| {
            a.limit_rate = Some(size(v)?).filter(|&r| r > 0);
            Ok(())
        },
        show: |a| a.limit_rate.unwrap_or(0).to_string(),
    },
    Flag {
        long: "timeout",
        short: &[],
        aliases: &[],
        value: Some("DURATION"),
        section: Section::Connections,
        help: "give up on a connection that delivers nothing this long; the download \
               continues on a new one",
        default: Some("30s"),
        key: Some("timeout"),
        set: |a, v| {
            a.timeout = duration(v)?;
            Ok(())
        },
        show: |a| show_duration(a.timeout),
    },
    Flag {
        long: "connect-timeout",
        short: &[],
        aliases: &[],
        value: Some("DURATION"),
        section: Section::Connections,
        help: "limit for connecting",
        default: Some("10s"),
        key: Some("connect_timeout"),
        set: |a, v| {
            a.connect_timeout = duration(v)?;
            Ok(())
        },
        show: |a| show_duration(a.connect_timeout),
    },
    Flag {
        long: "retries",
        short: &[],
        aliases: &[],
        value: Some("N|inf"),
        section: Section::Connections,
        help: "retries per request after a transient failure",
        default: Some("10"),
        key: Some("retries"),
        set: |a, v| {
            a.retries = count_or_inf(v)?;
            Ok(())
        },
        show: |a| a.retries.map_or("\"inf\"".into(), |n| n.to_string()),
    },
    Flag {
        long: "retry-delay",
        short: &[],
        aliases: &[],
        value: Some("DURATION"),
        section: Section::Connections,
        help: "first retry delay, doubled each time, with jitter",
        default: Some("500ms"),
        key: Some("retry_delay"),
        set: |a, v| {
            a.retry_delay = duration(v)?;
            Ok(())
        },
        show: |a| show_duration(a.retry_delay),
    },
    Flag {
        long: "max-retry-delay",
        short: &[],
        aliases: &[],
        value: Some("DURATION"),
        section: Section::Connections,
        help: "longest wait between retries, Retry-After included",
        default: Some("30s"),
        key: Some("max_retry_delay"),
        set: |a, v| {
            a.max_retry_delay = duration(v)?;
            Ok(())
        },
        show: |a| show_duration(a.max_retry_delay),
    },
    // Requests
    Flag {
        long: "header",
        short: &['H'],
        aliases: &[],
        value: Some("'NAME: VALUE'"),
        section: Section::Requests,
        help: "extra request header (repeatable); Authorization and Cookie are never sent to \
               another host after a redirect",
        default: None,
        key: Some("headers"),
        set: |a, v| {
            match v {
                // The file's headers come first; a command-line -H of the same name replaces one.
                Value::Toml(t) => {
                    let cli = std::mem::take(&mut a.headers);
                    a.headers = toml_headers(t)?
                        .into_iter()
                        .filter(|(k, _)| !cli.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)))
                        .collect();
                    a.headers.extend(cli);
                }
                _ => a.headers.push(parse_header(&text(v)?)?),
            }
            Ok(())
        },
        show: |a| {
            let lines: Vec<String> = a.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{lines:?}")
        },
    },
    Flag {
        long: "user-agent",
        short: &[],
        aliases: &[],
        value: Some("UA"),
        section: Section::Requests,
        help: "User-Agent (default fastdl/VERSION)",
        default: None,
        key: Some("user_agent"),
        set: |a, v| {
            a.user_agent = text(v)?;
            Ok(())
        },
        show: |a| format!("{:?}", a.user_agent),
    },
    Flag {
        long: "referer",
        short: &[],
        aliases: &[],
        value: Some("URL"),
        section: Section::Requests,
        help: "Referer",
        default: None,
        key: Some("referer"),
        set: |a, v| {
            a.referer = Some(text(v)?);
            Ok(())
        },
        show: |a| show_text(a.referer.as_deref()),
    },
    Flag {
        long: "proxy",
        short: &[],
        aliases: &[],
        value: Some("URL"),
        section: Section::Requests,
        help: "http://, https://, socks5:// or socks5h:// proxy; '' ignores the proxy \
               environment variables",
        default: None,
        key: Some("proxy"),
        set: |a, v| {
            a.proxy = Some(text(v)?);
            Ok(())
        },
        show: |a| show_text(a.proxy.as_deref()),
    },
    Flag {
        long: "ca-certificate",
        short: &[],
        aliases: &[],
        value: Some("FILE"),
        section: Section::Requests,
        help: "also trust the CA certificates in this PEM file (a company or test CA) besides \
               the system's",
        default: None,
        key: Some("ca_certificate"),
        set: |a, v| {
            a.ca_certificate = Some(text(v)?.into());
            Ok(())
        },
        show: |a| show_path(a.ca_certificate.as_deref()),
    },
    Flag {
        long: "no-check-certificate",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Requests,
        help: "do not verify TLS certificates",
        default: None,
        key: None,
        set: |a, v| {
            a.insecure = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "fragments",
        short: &[],
        aliases: &[],
        value: Some("JOB.json"),
        section: Section::Requests,
        help: "download HLS/DASH pieces listed in a JSON job (docs/ytdlp.md), each to exactly \
               its out path; missing pieces are left out (exit 0) unless \
               --abort-on-unavailable-fragment",
        default: None,
        key: None,
        set: |a, v| {
            a.fragments = Some(text(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "concurrent-fragments",
        short: &[],
        aliases: &[],
        value: Some("N"),
        section: Section::Requests,
        help: "pieces fetched at once, for --fragments (the same as -j)",
        default: None,
        key: None,
        set: |a, v| {
            a.concurrent_downloads = count(v, 1, 1024)? as usize;
            a.sources
                .insert("concurrent_downloads", "command line".into());
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "fragment-retries",
        short: &[],
        aliases: &[],
        value: Some("N|inf"),
        section: Section::Requests,
        help: "retries per piece, for --fragments (instead of --retries)",
        default: None,
        key: None,
        set: |a, v| {
            a.fragment_retries = Some(count_or_inf(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "abort-on-unavailable-fragment",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Requests,
        help: "fail a --fragments job when a piece cannot be downloaded",
        default: None,
        key: None,
        set: |a, v| {
            a.abort_on_unavailable_fragment = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "info-json",
        short: &[],
        aliases: &["load-info-json"],
        value: Some("FILE|-"),
        section: Section::Requests,
        help: "download the format(s) of a yt-dlp info JSON (yt-dlp -j): its url and \
               http_headers, DASH fragments joined, requested_formats each to NAME.fID.EXT \
               (docs/ytdlp.md)",
        default: None,
        key: None,
        set: |a, v| {
            a.info_json = Some(text(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "cookies",
        short: &[],
        aliases: &["load-cookies"],
        value: Some("FILE|-"),
        section: Section::Requests,
        help: "Netscape cookies file (- reads standard input, as yt-dlp passes it); each \
               request and redirect gets only the cookies whose domain, path and secure flag \
               match its URL",
        default: None,
        key: None,
        set: |a, v| {
            a.cookies = Some(text(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "source-address",
        short: &[],
        aliases: &[],
        value: Some("IP"),
        section: Section::Requests,
        help: "connect from this local address",
        default: None,
        key: None,
        set: |a, v| {
            let t = text(v)?;
            a.source_address = Some(
                t.parse()
                    .map_err(|_| format!("{t:?} is not an IP address"))?,
            );
            Ok(())
        },
        show: none,
    },
    // Batches
    Flag {
        long: "input-file",
        short: &['i', 'a'],
        aliases: &["batch-file"],
        value: Some("FILE|-"),
        section: Section::Batches,
        help: "download every URL listed in FILE (- reads standard input); aria2c's format: \
               indented out=, dir=, checksum=, header=, referer=, user-agent=, split=, \
               limit-rate= lines per URL; TAB-separated URLs are mirrors, sharing the file's \
               connections (docs/input-file.md). Alias: -a, --batch-file",
        default: None,
        key: None,
        set: |a, v| {
            a.input_file = Some(text(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "shard",
        short: &[],
        aliases: &[],
        value: Some("K/N|auto"),
        section: Section::Batches,
        help: "take only shard K of N (K from 0) of the URLs and the -i list, so that N runs \
               split one list, each entry in exactly one shard (by a stable hash of its out= \
               name, else its URL); auto reads a Slurm job array, a Kubernetes Indexed Job \
               (JOB_COMPLETION_INDEX and FASTDL_SHARD_COUNT) or FASTDL_SHARD=K/N \
               (docs/scale.md)",
        default: None,
        key: None,
        set: |a, v| {
            a.shard = Some(ShardSpec::parse(&text(v)?)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "max-requests-per-host-per-second",
        short: &[],
        aliases: &[],
        value: Some("N"),
        section: Section::Batches,
        help: "start requests to one host at most N times a second over the whole run (every \
               file, connection, retry and redirect; e.g. 0.5 or 20; 0: no limit); other hosts \
               are not held up",
        default: Some("0"),
        key: Some("max_requests_per_host_per_second"),
        set: |a, v| {
            a.requests_per_host = rate(v)?;
            Ok(())
        },
        show: |a| a.requests_per_host.to_string(),
    },
    Flag {
        long: "report",
        short: &[],
        aliases: &[],
        value: Some("FILE|-"),
        section: Section::Batches,
        help: "write one JSON line per entry as it ends (url, path, status done/skipped/failed, \
               bytes, sha256 computed while writing, attempts, seconds, error), then a summary \
               line; - is standard output (docs/scale.md)",
        default: None,
        key: None,
        set: |a, v| {
            a.report = Some(text(v)?);
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "save-failed",
        short: &[],
        aliases: &[],
        value: Some("FILE"),
        section: Section::Batches,
        help: "write the entries that did not finish (failed, interrupted, not started) to FILE \
               as an input list, for `-i FILE` with the same -d; removed when none is left",
        default: None,
        key: None,
        set: |a, v| {
            a.save_failed = Some(PathBuf::from(text(v)?));
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "concurrent-downloads",
        short: &['j'],
        aliases: &[],
        value: Some("N"),
        section: Section::Batches,
        help: "files at once, 1-1024",
        default: Some("16"),
        key: Some("concurrent_downloads"),
        set: |a, v| {
            a.concurrent_downloads = count(v, 1, 1024)? as usize;
            Ok(())
        },
        show: |a| a.concurrent_downloads.to_string(),
    },
    Flag {
        long: "max-connections-per-host",
        short: &[],
        aliases: &[],
        value: Some("N"),
        section: Section::Batches,
        help: "connections to one host in total, 1-4096",
        default: Some("16"),
        key: Some("max_connections_per_host"),
        set: |a, v| {
            a.max_connections_per_host = count(v, 1, 4096)? as usize;
            Ok(())
        },
        show: |a| a.max_connections_per_host.to_string(),
    },
    Flag {
        long: "max-connections",
        short: &[],
        aliases: &[],
        value: Some("N"),
        section: Section::Batches,
        help: "connections in total, 1-4096",
        default: Some("64"),
        key: Some("max_connections"),
        set: |a, v| {
            a.max_connections = count(v, 1, 4096)? as usize;
            Ok(())
        },
        show: |a| a.max_connections.to_string(),
    },
    // Configuration
    Flag {
        long: "config",
        short: &[],
        aliases: &[],
        value: Some("FILE"),
        section: Section::Configuration,
        help: "read settings from FILE (TOML; keys are long option names with underscores, \
               docs/config.md); default $FASTDL_CONFIG, else \
               $XDG_CONFIG_HOME/fastdl/config.toml (~/.config/fastdl/config.toml)",
        default: None,
        key: None,
        set: |a, v| {
            a.config = Some(text(v)?.into());
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "no-config",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Configuration,
        help: "ignore any config file",
        default: None,
        key: None,
        set: |a, v| {
            a.no_config = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "print-config",
        short: &[],
        aliases: &[],
        value: None,
        section: Section::Configuration,
        help: "print the effective settings and where each comes from",
        default: None,
        key: None,
        set: |a, v| {
            a.print_config = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "generate",
        short: &[],
        aliases: &[],
        value: Some("KIND"),
        section: Section::Configuration,
        help: "print a shell completion (bash, zsh, fish, powershell) or the man page (man) \
               made from these flags; docs/install.md says where each goes",
        default: None,
        key: None,
        set: |a, v| {
            a.generate = Some(Kind::parse(&text(v)?)?);
            Ok(())
        },
        show: none,
    },
    // Progress
    Flag {
        long: "progress",
        short: &[],
        aliases: &[],
        value: Some("MODE"),
        section: Section::Progress,
        help: "auto (bars on a terminal, lines otherwise), bar, lines, or json (JSON lines on \
               stderr, see docs/progress-json.md)",
        default: Some("auto"),
        key: Some("progress"),
        set: |a, v| {
            a.progress = style(v)?;
            Ok(())
        },
        show: |a| format!("{:?}", format!("{:?}", a.progress).to_lowercase()),
    },
    Flag {
        long: "progress-interval",
        short: &[],
        aliases: &[],
        value: Some("DURATION"),
        section: Section::Progress,
        help: "time between progress updates",
        default: Some("500ms"),
        key: Some("progress_interval"),
        set: |a, v| {
            a.progress_interval = duration(v)?;
            Ok(())
        },
        show: |a| show_duration(a.progress_interval),
    },
    Flag {
        long: "quiet",
        short: &['q'],
        aliases: &[],
        value: None,
        section: Section::Progress,
        help: "print errors only",
        default: None,
        key: None,
        set: |a, v| {
            a.quiet = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "verbose",
        short: &['v'],
        aliases: &[],
        value: None,
        section: Section::Progress,
        help: "print every request and reply, retries and connection changes",
        default: None,
        key: None,
        set: |a, v| {
            a.verbose = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "help",
        short: &['h'],
        aliases: &[],
        value: None,
        section: Section::Progress,
        help: "print this help",
        default: None,
        key: None,
        set: |a, v| {
            a.help = switch(v)?;
            Ok(())
        },
        show: none,
    },
    Flag {
        long: "version",
        short: &['V'],
        aliases: &[],
        value: None,
        section: Section::Progress,
        help: "print the version",
        default: None,
        key: None,
        set: |a, v| {
            a.version = switch(v)?;
            Ok(())
        },
        show: none,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_keys_are_long_names() {
        let mut names = std::collections::HashSet::new();
        for f in FLAGS {
            for n in std::iter::once(f.long).chain(f.aliases.iter().copied()) {
                assert!(names.insert(n), "{n} twice");
            }
            if let Some(key) = f.key {
                assert!(
                    key == f.long.replace('-', "_") || (f.long, key) == ("header", "headers"),
                    "{key}"
                );
            }
        }
        let shorts: Vec<char> = FLAGS.iter().flat_map(|f| f.short.iter().copied()).collect();
        let unique: std::collections::HashSet<_> = shorts.iter().collect();
        assert_eq!(unique.len(), shorts.len());
    }

    #[test]
    fn the_command_line_and_the_file_read_values_alike() {
        for (flag, text, toml_value) in [
            (
                "retries",
                "infinite",
                toml::Value::String("infinite".into()),
            ),
            ("retries", "inf", toml::Value::String("inf".into())),
            ("retries", "7", toml::Value::Integer(7)),
            ("max-connections", "4096", toml::Value::Integer(4096)),
            ("chunk-size", "2M", toml::Value::String("2M".into())),
            ("timeout", "45s", toml::Value::String("45s".into())),
            ("progress", "json", toml::Value::String("json".into())),
        ] {
            let f = Flag::by_long(flag).unwrap();
            let (mut a, mut b) = (Args::default(), Args::default());
            (f.set)(&mut a, Value::Text(text)).unwrap();
            (f.set)(&mut b, Value::Toml(&toml_value)).unwrap();
            assert_eq!(a, b, "{flag}");
        }
        for (flag, text, toml_value) in [
            ("max-connections", "100000", toml::Value::Integer(100_000)),
            ("connections", "0", toml::Value::Integer(0)),
            ("retries", "-1", toml::Value::Integer(-1)),
        ] {
            let f = Flag::by_long(flag).unwrap();
            let mut a = Args::default();
            assert!((f.set)(&mut a, Value::Text(text)).is_err(), "{flag} {text}");
            assert!((f.set)(&mut a, Value::Toml(&toml_value)).is_err(), "{flag}");
        }
    }

    #[test]
    fn defaults_come_from_the_table() {
        let a = Args::default();
        assert_eq!(a.connections, 8);
        assert_eq!(a.chunk_size, 1 << 20);
        assert_eq!(a.retries, Some(10));
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert_eq!(a.max_connections, 64);
        assert_eq!(a.progress, Style::Auto);
    }

    #[test]
    fn header_arguments_are_checked() {
        assert_eq!(
            parse_header("X-A:  b c ").unwrap(),
            ("X-A".to_string(), "b c".to_string())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("X-A: b\r\nEvil: 1").is_err());
        assert!(parse_header("Bad Name: v").is_err());
    }
}
