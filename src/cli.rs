//! The command line: a plain lexopt loop into [`Args`], which holds what the user typed and
//! nothing else (no I/O, no defaults from elsewhere). Turning it into [`Options`] is
//! [`Args::options`].

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::checksum::{parse_checksum, Expected};
use crate::download::Options;
use crate::error::Error;
use crate::http::parse_header;
use crate::progress::{RenderOptions, Style};

/// The help text (`-h`). Keep in step with docs/guide.md, which explains each option.
pub const HELP: &str = "\
fastdl: download over HTTP(S) with many connections, resumably, never writing a wrong byte

Usage: fastdl [OPTIONS] URL...
       fastdl [OPTIONS] -i LIST|-
       fastdl [OPTIONS] --fragments JOB.json
       fastdl [OPTIONS] --info-json INFO.json|-

Output:
  -o, --output PATH           save to exactly PATH (one URL only); default: the name the server
                              gives (Content-Disposition) or the last part of the URL
  -d, --dir DIR               directory for output files (default: current directory)
      --overwrite             replace an existing output file (default: refuse, exit 4)
      --remote-time           give the file the server's Last-Modified time (yt-dlp --mtime)
      --no-continue           ignore an interrupted download's state and start over
      --checksum TYPE=HEX     verify the file (md5, sha-1, sha-256, sha-512); exit 5 on mismatch
      --max-filesize SIZE, --min-filesize SIZE
                              skip a file whose announced size is outside these bounds, before
                              writing anything (exit 3)

Connections:
  -x, --connections N         connections per file, 1-256 (default 8)
  -k, --chunk-size SIZE       smallest range worth its own connection (default 1M)
      --no-preconnect         do not open a file's extra connections while a slow first
                              reply (> 10 ms) is awaited; by default they are, for one file
      --http-chunk-size SIZE  ask for at most SIZE bytes per request (servers that throttle
                              longer ranges; yt-dlp passes it)
      --limit-rate RATE       cap the speed of all downloads together, e.g. 500K or 10M
      --timeout DURATION      give up on a connection that delivers nothing this long; the
                              download continues on a new one (default 30s)
      --connect-timeout DUR   limit for connecting (default 10s)
      --retries N|inf         retries per request after a transient failure (default 10)
      --retry-delay DURATION  first retry delay, doubled each time, with jitter (default 500ms)
      --max-retry-delay DUR   longest wait between retries, Retry-After included (default 30s)

Requests:
  -H, --header 'NAME: VALUE'  extra request header (repeatable); Authorization and Cookie are
                              never sent to another host after a redirect
      --user-agent UA         User-Agent (default fastdl/VERSION)
      --referer URL           Referer
      --proxy URL             http://, https://, socks5:// or socks5h:// proxy; '' ignores
                              the proxy environment variables
      --ca-certificate FILE   also trust the CA certificates in this PEM file (a company or
                              test CA) besides the system's
      --no-check-certificate  do not verify TLS certificates
      --fragments JOB.json    download HLS/DASH pieces listed in a JSON job (docs/ytdlp.md),
                              each to exactly its out path; missing pieces are left out
                              (exit 0) unless --abort-on-unavailable-fragment
      --concurrent-fragments N, --fragment-retries N|inf   for --fragments
      --info-json FILE|-      download the format(s) of a yt-dlp info JSON (yt-dlp -j): its
                              url and http_headers, DASH fragments joined, requested_formats
                              each to NAME.fID.EXT (docs/ytdlp.md)
      --cookies FILE|-        Netscape cookies file (- reads standard input, as yt-dlp passes
                              it); each request and redirect gets only the cookies whose
                              domain, path and secure flag match its URL
      --source-address IP     connect from this local address

Batches:
  -i, --input-file FILE|-     download every URL listed in FILE (- reads standard input);
                              aria2c's format: indented out=, dir=, checksum=, header=, referer=,
                              user-agent=, split=, limit-rate= lines per URL; TAB-separated URLs
                              are mirrors, sharing the file's connections (docs/input-file.md).
                              Alias: -a, --batch-file
  -j, --concurrent-downloads N  files at once (default 16)
      --max-connections-per-host N  connections to one host in total (default 16)
      --max-connections N     connections in total (default 64)
  A file already downloaded by fastdl (and unchanged since) is skipped without a request.

Configuration:
      --config FILE           read settings from FILE (TOML; keys are long option names with
                              underscores, docs/config.md); default $FASTDL_CONFIG, else
                              $XDG_CONFIG_HOME/fastdl/config.toml (~/.config/fastdl/config.toml)
      --no-config             ignore any config file
      --print-config          print the effective settings and where each comes from

Progress:
      --progress MODE         auto (bars on a terminal, lines otherwise), bar, lines, or json
                              (JSON lines on stderr, see docs/progress-json.md)
      --progress-interval DUR time between progress updates (default 500ms)
  -q, --quiet                 print errors only
  -v, --verbose               print retries and connection changes
  -h, --help                  print this help
  -V, --version               print the version

SIZE accepts 1048576, 512K, 1M, 1.5G; DURATION accepts 30, 30s, 500ms, 2m.

Exit codes:
  0 success   1 download failed   2 usage error   3 outside --max/--min-filesize
  4 output exists
  5 checksum or length mismatch   6 local file error   130 interrupted (resumable)
";

/// What the user typed.
#[derive(Debug, Default, PartialEq)]
pub struct Args {
    pub urls: Vec<String>,
    pub output: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub overwrite: bool,
    pub remote_time: bool,
    pub no_continue: bool,
    pub no_preconnect: bool,
    pub checksums: Vec<Expected>,
    pub connections: Option<usize>,
    pub chunk_size: Option<u64>,
    pub http_chunk_size: Option<u64>,
    pub max_filesize: Option<u64>,
    pub min_filesize: Option<u64>,
    pub limit_rate: Option<u64>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    /// `Some(None)` is `--retries inf`.
    pub retries: Option<Option<u32>>,
    pub retry_delay: Option<Duration>,
    pub max_retry_delay: Option<Duration>,
    pub headers: Vec<(String, String)>,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
    pub proxy: Option<String>,
    pub insecure: bool,
    pub ca_certificate: Option<PathBuf>,
    pub source_address: Option<IpAddr>,
    pub progress: Option<Style>,
    pub progress_interval: Option<Duration>,
    pub quiet: bool,
    pub verbose: bool,
    pub help: bool,
    pub version: bool,
    /// `-i FILE` (`-` is standard input).
    pub input_file: Option<String>,
    pub concurrent_downloads: Option<usize>,
    pub max_connections_per_host: Option<usize>,
    pub max_connections: Option<usize>,
    pub config: Option<PathBuf>,
    pub no_config: bool,
    pub print_config: bool,
    /// Where each setting came from, by config key: "command line" or "FILE:LINE".
    pub sources: std::collections::BTreeMap<String, String>,
    /// `--cookies FILE|-`: a Netscape cookies file (`-` reads standard input).
    pub cookies: Option<String>,
    /// `--fragments JOB.json`: HLS/DASH pieces to download (fragment.rs).
    pub fragments: Option<String>,
    /// `--info-json FILE|-`: a yt-dlp info or format dict (info_json.rs).
    pub info_json: Option<String>,
    /// `Some(None)` is `--fragment-retries inf`.
    pub fragment_retries: Option<Option<u32>>,
    pub abort_on_unavailable_fragment: bool,
    /// The jar read from `cookies` (filled by the binary, which does the I/O).
    pub cookie_jar: Option<std::sync::Arc<crate::cookies::CookieJar>>,
}

/// Parses the process arguments.
pub fn parse() -> Result<Args, Error> {
    parse_from(std::env::args_os().skip(1))
}

/// Parses `args` (without the program name).
pub fn parse_from<I>(args: I) -> Result<Args, Error>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;
    let mut a = Args::default();
    let mut p = lexopt::Parser::from_args(args);
    let usage = |e: lexopt::Error| Error::Usage(e.to_string());
    while let Some(arg) = p.next().map_err(usage)? {
        match arg {
            Short('o') | Long("output") => a.output = Some(p.value().map_err(usage)?.into()),
            Short('d') | Long("dir") => {
                a.dir = Some(p.value().map_err(usage)?.into());
                mark(&mut a, "dir");
            }
            Long("overwrite") => a.overwrite = true,
            Long("remote-time") => a.remote_time = true,
            Long("no-continue") => a.no_continue = true,
            Long("no-preconnect") => a.no_preconnect = true,
            Long("continue") => a.no_continue = false,
            Long("checksum") => a.checksums.push(parse_checksum(&text(&mut p)?)?),
            Short('x') | Long("connections") => {
                let n = parse_count(&text(&mut p)?, "--connections")?;
                if !(1..=256).contains(&n) {
                    return Err(Error::Usage(format!(
                        "--connections must be 1 to 256, not {n}"
                    )));
                }
                {
                    a.connections = Some(n);
                    mark(&mut a, "connections");
                }
            }
            Short('k') | Long("chunk-size") | Long("min-split-size") => {
                a.chunk_size = Some(parse_size(&text(&mut p)?, "--chunk-size")?);
                mark(&mut a, "chunk_size");
            }
            Long("http-chunk-size") => {
                let n = parse_size(&text(&mut p)?, "--http-chunk-size")?;
                a.http_chunk_size = Some(n).filter(|&n| n > 0);
            }
            Long("max-filesize") => {
                a.max_filesize = Some(parse_size(&text(&mut p)?, "--max-filesize")?)
            }
            Long("min-filesize") => {
                a.min_filesize = Some(parse_size(&text(&mut p)?, "--min-filesize")?)
            }
            Long("limit-rate") => {
                let v = text(&mut p)?;
                let rate = parse_size(&v, "--limit-rate")?;
                // 0 means "no limit", as in curl and yt-dlp.
                {
                    a.limit_rate = (rate > 0).then_some(rate);
                    mark(&mut a, "limit_rate");
                }
            }
            Long("timeout") => {
                a.timeout = Some(parse_duration(&text(&mut p)?, "--timeout")?);
                mark(&mut a, "timeout");
            }
            Long("connect-timeout") => {
                a.connect_timeout = Some(parse_duration(&text(&mut p)?, "--connect-timeout")?);
                mark(&mut a, "connect_timeout");
            }
            Long("retries") => {
                let v = text(&mut p)?;
                a.retries = Some(match v.as_str() {
                    "inf" | "infinite" => None,
                    n => Some(parse_count(n, "--retries")? as u32),
                });
                mark(&mut a, "retries");
            }
            Long("retry-delay") => {
                a.retry_delay = Some(parse_duration(&text(&mut p)?, "--retry-delay")?);
                mark(&mut a, "retry_delay");
            }
            Long("max-retry-delay") => {
                a.max_retry_delay = Some(parse_duration(&text(&mut p)?, "--max-retry-delay")?);
                mark(&mut a, "max_retry_delay");
            }
            Short('H') | Long("header") => {
                a.headers.push(parse_header(&text(&mut p)?)?);
                // Command-line and file headers combine (see config.rs); not marked.
            }
            Short('i') | Long("input-file") | Short('a') | Long("batch-file") => {
                a.input_file = Some(text(&mut p)?)
            }
            Short('j') | Long("concurrent-downloads") => {
                let n = parse_count(&text(&mut p)?, "--concurrent-downloads")?;
                if !(1..=1024).contains(&n) {
                    return Err(Error::Usage(format!(
                        "--concurrent-downloads must be 1 to 1024, not {n}"
                    )));
                }
                a.concurrent_downloads = Some(n);
                mark(&mut a, "concurrent_downloads");
            }
            Long("max-connections-per-host") => {
                let n = parse_count(&text(&mut p)?, "--max-connections-per-host")?.max(1);
                a.max_connections_per_host = Some(n);
                mark(&mut a, "max_connections_per_host");
            }
            Long("max-connections") => {
                a.max_connections = Some(parse_count(&text(&mut p)?, "--max-connections")?.max(1));
                mark(&mut a, "max_connections");
            }
            Long("config") => a.config = Some(p.value().map_err(usage)?.into()),
            Long("no-config") => a.no_config = true,
            Long("print-config") => a.print_config = true,
            Long("user-agent") => {
                a.user_agent = Some(text(&mut p)?);
                mark(&mut a, "user_agent");
            }
            Long("referer") => {
                a.referer = Some(text(&mut p)?);
                mark(&mut a, "referer");
            }
            Long("proxy") => {
                a.proxy = Some(text(&mut p)?);
                mark(&mut a, "proxy");
            }
            Long("no-check-certificate") => a.insecure = true,
            Long("ca-certificate") => {
                a.ca_certificate = Some(PathBuf::from(text(&mut p)?));
                mark(&mut a, "ca_certificate");
            }
            Long("fragments") => a.fragments = Some(text(&mut p)?),
            Long("info-json") | Long("load-info-json") => a.info_json = Some(text(&mut p)?),
            Long("concurrent-fragments") => {
                a.concurrent_downloads =
                    Some(parse_count(&text(&mut p)?, "--concurrent-fragments")?.max(1));
                mark(&mut a, "concurrent_downloads");
            }
            Long("fragment-retries") => {
                let v = text(&mut p)?;
                a.fragment_retries = Some(match v.as_str() {
                    "inf" | "infinite" => None,
                    n => Some(parse_count(n, "--fragment-retries")? as u32),
                });
            }
            Long("abort-on-unavailable-fragment") => a.abort_on_unavailable_fragment = true,
            Long("cookies") | Long("load-cookies") => a.cookies = Some(text(&mut p)?),
            Long("source-address") => {
                let v = text(&mut p)?;
                a.source_address = Some(v.parse().map_err(|_| {
                    Error::Usage(format!("--source-address: {v:?} is not an IP address"))
                })?);
            }
            Long("progress") => {
                let v = text(&mut p)?;
                a.progress = Some(match v.as_str() {
                    "auto" => Style::Auto,
                    "bar" | "bars" => Style::Bars,
                    "lines" | "plain" => Style::Lines,
                    "json" => Style::Json,
                    _ => {
                        return Err(Error::Usage(format!(
                            "--progress must be auto, bar, lines or json, not {v:?}"
                        )))
                    }
                });
                mark(&mut a, "progress");
            }
            Long("progress-interval") => {
                a.progress_interval = Some(parse_duration(&text(&mut p)?, "--progress-interval")?);
                mark(&mut a, "progress_interval");
            }
            Short('q') | Long("quiet") => a.quiet = true,
            Short('v') | Long("verbose") => a.verbose = true,
            Short('h') | Long("help") => a.help = true,
            Short('V') | Long("version") => a.version = true,
            Value(url) => a.urls.push(
                url.into_string()
                    .map_err(|u| Error::Usage(format!("URL {u:?} is not valid UTF-8")))?,
            ),
            _ => {
                return Err(Error::Usage(format!(
                    "{}; see fastdl --help",
                    arg.unexpected()
                )))
            }
        }
    }
    if a.help || a.version || a.print_config {
        return Ok(a);
    }
    if a.urls.is_empty() && a.input_file.is_none() && a.fragments.is_none() && a.info_json.is_none()
    {
        return Err(Error::Usage("no URL given; see fastdl --help".into()));
    }
    if a.output.is_some() && (a.urls.len() > 1 || a.input_file.is_some()) {
        return Err(Error::Usage(
            "-o/--output names one file, but several URLs were given; use -d instead".into(),
        ));
    }
    Ok(a)
}

/// Records that the command line set config key `key` (it then wins over the file).
fn mark(a: &mut Args, key: &str) {
    a.sources
        .insert(key.to_string(), "command line".to_string());
}

fn text(p: &mut lexopt::Parser) -> Result<String, Error> {
    let v = p.value().map_err(|e| Error::Usage(e.to_string()))?;
    v.into_string()
        .map_err(|v| Error::Usage(format!("{v:?} is not valid UTF-8")))
}

impl Args {
    /// The download options: built-in defaults overridden by what the user typed.
    pub fn options(&self) -> Options {
        let mut o = Options::default();
        let h = &mut o.http;
        h.headers = self.headers.clone();
        if let Some(ua) = &self.user_agent {
            h.user_agent = ua.clone();
        }
        h.referer = self.referer.clone();
        h.proxy = self.proxy.clone();
        h.insecure = self.insecure;
        h.ca_certificate = self.ca_certificate.clone();
        h.cookies = self.cookie_jar.clone();
        h.source_address = self.source_address;
        if let Some(t) = self.timeout {
            h.timeout = t;
        }
        if let Some(t) = self.connect_timeout {
            h.connect_timeout = t;
        }
        if let Some(n) = self.connections {
            o.connections = n;
        }
        if let Some(k) = self.chunk_size {
            o.min_split = k.max(1);
        }
        if let Some(r) = self.retries {
            o.retry.retries = r;
        }
        if let Some(d) = self.retry_delay {
            o.retry.delay = d;
        }
        if let Some(d) = self.max_retry_delay {
            o.retry.max_delay = d;
        }
        o.limit_rate = self.limit_rate;
        o.http_chunk_size = self.http_chunk_size;
        o.filesize = (self.min_filesize, self.max_filesize);
        if self.fragments.is_some() {
            if let Some(r) = self.fragment_retries {
                o.retry.retries = r;
            }
            o.failures_allowed = !self.abort_on_unavailable_fragment;
        }
        if let Some(n) = self.concurrent_downloads {
            o.concurrent_downloads = n;
        }
        if let Some(n) = self.max_connections_per_host {
            o.max_connections_per_host = n;
        }
        if let Some(n) = self.max_connections {
            o.max_connections = n;
        }
        o.resume = !self.no_continue;
        o.overwrite = self.overwrite;
        o.remote_time = self.remote_time;
        if let Some(i) = self.progress_interval {
            o.progress_interval = i;
        }
        o
    }

    /// How progress is shown.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            style: self.progress.unwrap_or(Style::Auto),
            quiet: self.quiet,
            verbose: self.verbose,
            // The number of files is known once the lists are read: main sets it.
            ..RenderOptions::default()
        }
    }

    /// The effective settings, one `key = value  # source` line each (`--print-config`).
    pub fn print_config(&self) -> String {
        let o = self.options();
        let dur = |d: Duration| format!("\"{}ms\"", d.as_millis());
        let value = |key: &str| -> String {
            match key {
                "connections" => o.connections.to_string(),
                "chunk_size" => o.min_split.to_string(),
                "concurrent_downloads" => o.concurrent_downloads.to_string(),
                "max_connections_per_host" => o.max_connections_per_host.to_string(),
                "max_connections" => o.max_connections.to_string(),
                "limit_rate" => o.limit_rate.map_or("0".into(), |r| r.to_string()),
                "timeout" => dur(o.http.timeout),
                "connect_timeout" => dur(o.http.connect_timeout),
                "retries" => o.retry.retries.map_or("\"inf\"".into(), |n| n.to_string()),
                "retry_delay" => dur(o.retry.delay),
                "max_retry_delay" => dur(o.retry.max_delay),
                "dir" => format!(
                    "{:?}",
                    self.dir
                        .as_deref()
                        .unwrap_or(std::path::Path::new("."))
                        .display()
                        .to_string()
                ),
                "user_agent" => format!("{:?}", o.http.user_agent),
                "referer" => format!("{:?}", o.http.referer.clone().unwrap_or_default()),
                "headers" => format!(
                    "{:?}",
                    o.http
                        .headers
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                ),
                "proxy" => format!("{:?}", o.http.proxy.clone().unwrap_or_default()),
                "ca_certificate" => format!(
                    "{:?}",
                    o.http
                        .ca_certificate
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                "progress" => format!(
                    "{:?}",
                    format!("{:?}", self.progress.unwrap_or(Style::Auto)).to_lowercase()
                ),
                "progress_interval" => dur(o.progress_interval),
                _ => unreachable!(),
            }
        };
        crate::config::KEYS
            .iter()
            .map(|k| {
                let source = self.sources.get(*k).map_or("default", String::as_str);
                format!("{k} = {}  # {source}\n", value(k))
            })
            .collect()
    }
}

fn parse_count(s: &str, flag: &str) -> Result<usize, Error> {
    s.trim()
        .parse()
        .map_err(|_| Error::Usage(format!("{flag}: {s:?} is not a whole number")))
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024), optional `iB`/`B`.
pub fn parse_size(s: &str, what: &str) -> Result<u64, Error> {
    let bad = || {
        Error::Usage(format!(
            "{what}: {s:?} is not a size (examples: 1048576, 512K, 1M, 1.5G)"
        ))
    };
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 || v * mult as f64 > u64::MAX as f64 {
        return Err(bad());
    }
    Ok((v * mult as f64).round() as u64)
}

/// Parses a duration: seconds, or a number with `ms`, `s`, `m` or `h`.
pub fn parse_duration(s: &str, what: &str) -> Result<Duration, Error> {
    let bad = || {
        Error::Usage(format!(
            "{what}: {s:?} is not a duration (examples: 30, 30s, 500ms, 2m)"
        ))
    };
    let t = s.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * unit).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_urls() {
        let a = parse_from([
            "-x",
            "16",
            "-o",
            "out.bin",
            "--retries=inf",
            "-H",
            "X-A: 1",
            "http://h/f",
        ])
        .unwrap();
        assert_eq!(a.connections, Some(16));
        assert_eq!(a.output, Some(PathBuf::from("out.bin")));
        assert_eq!(a.retries, Some(None));
        assert_eq!(a.headers, vec![("X-A".into(), "1".into())]);
        assert_eq!(a.urls, vec!["http://h/f".to_string()]);
    }

    #[test]
    fn a_url_after_double_dash_is_never_an_option() {
        let a = parse_from(["--", "--output=/etc/passwd"]).unwrap();
        assert_eq!(a.urls, vec!["--output=/etc/passwd".to_string()]);
        assert_eq!(a.output, None);
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for args in [
            vec!["-x", "0", "http://h/"],
            vec!["-x", "many", "http://h/"],
            vec!["--bogus", "http://h/"],
            vec![],
            vec!["-o", "a", "http://h/1", "http://h/2"],
            vec!["--limit-rate", "fast", "http://h/"],
            vec!["--progress", "xml", "http://h/"],
        ] {
            let e = parse_from(args.clone()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("512K", "x").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1.5M", "x").unwrap(), 1_572_864);
        assert_eq!(parse_size("2MiB", "x").unwrap(), 2 << 20);
        assert_eq!(parse_size("100", "x").unwrap(), 100);
        assert!(parse_size("-1M", "x").is_err());
        assert_eq!(
            parse_duration("500ms", "x").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("2m", "x").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("1.5", "x").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("soon", "x").is_err());
    }
}
