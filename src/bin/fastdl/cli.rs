//! The command line: a lexopt loop over [`FLAGS`](crate::settings::FLAGS) into [`Args`], the
//! `--help` text made from the same table, and the downloader and requests the settings make.

use std::ffi::OsString;

use fastdl::{DownloaderBuilder, Error, Request};

use crate::render::RenderOptions;
pub use crate::settings::{parse_header, parse_size, Args};
use crate::settings::{Flag, Section, FLAGS};

/// Help lines are wrapped to this width.
const WIDTH: usize = 96;
/// Where help texts start.
const HELP_COLUMN: usize = 30;

/// The help text (`-h`), from the flag table. docs/guide.md explains each option.
pub fn help() -> String {
    let mut out = String::from(
        "fastdl: download over HTTP(S) with many connections, resumably, never writing a wrong \
         byte\n\n\
         Usage: fastdl [OPTIONS] URL...\n       fastdl [OPTIONS] -i LIST|-\n       \
         fastdl [OPTIONS] --fragments JOB.json\n       fastdl [OPTIONS] --info-json INFO.json|-\n",
    );
    for section in Section::ALL {
        out.push_str(&format!("\n{}:\n", section.title()));
        for f in FLAGS.iter().filter(|f| f.section == section) {
            let short = match f.short.first() {
                Some(c) => format!("-{c}, "),
                None => "    ".into(),
            };
            let value = f.value.map(|v| format!(" {v}")).unwrap_or_default();
            let mut text = f.help.to_string();
            if let Some(d) = f.default.filter(|d| *d != "0") {
                text.push_str(&format!(" (default {d})"));
            }
            let names = format!("  {short}--{}{value}", f.long);
            out.push_str(&wrap(&names, &text));
        }
        if section == Section::Batches {
            out.push_str(
                "  A file already downloaded by fastdl (and unchanged since) is skipped without \
                 a request.\n",
            );
        }
    }
    out.push_str(
        "\nSIZE accepts 1048576, 512K, 1M, 1.5G; DURATION accepts 30, 30s, 500ms, 2m.\n\n",
    );
    out.push_str("Exit codes:\n");
    let mut line = String::new();
    for (code, meaning) in crate::exit::MEANINGS {
        let item = format!("  {code} {meaning} ");
        if line.len() + item.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line.clear();
        }
        line.push_str(&item);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// `names` and `text` as help lines: the text from [`HELP_COLUMN`], wrapped at [`WIDTH`].
fn wrap(names: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = names.to_string();
    if line.len() + 2 > HELP_COLUMN {
        out.push_str(&line);
        out.push('\n');
        line.clear();
    }
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line.clear();
            empty = true;
        }
        if empty {
            line = format!("{line:HELP_COLUMN$}");
        } else {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
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
    let usage = |e: lexopt::Error| Error::Invalid(e.to_string());
    while let Some(arg) = p.next().map_err(usage)? {
        let flag = match &arg {
            Short(c) => Flag::by_short(*c),
            Long(name) => Flag::by_long(name),
            Value(url) => {
                let url = url
                    .clone()
                    .into_string()
                    .map_err(|u| Error::Invalid(format!("URL {u:?} is not valid UTF-8")))?;
                a.urls.push(url);
                continue;
            }
        };
        let Some(flag) = flag else {
            return Err(Error::Invalid(format!(
                "{}; see fastdl --help",
                arg.unexpected()
            )));
        };
        let bad = |why: String| Error::Invalid(format!("--{}: {why}", flag.long));
        let result = match flag.value {
            Some(_) => {
                let v = p.value().map_err(usage)?;
                let v = v
                    .into_string()
                    .map_err(|v| bad(format!("{v:?} is not valid UTF-8")))?;
                (flag.set)(&mut a, crate::settings::Value::Text(&v))
            }
            None => (flag.set)(&mut a, crate::settings::Value::Switch),
        };
        result.map_err(bad)?;
        // The command line wins over the file; headers combine (see the header flag).
        if let Some(key) = flag.key.filter(|k| *k != "headers") {
            a.sources.insert(key, "command line".into());
        }
    }
    if a.help || a.version || a.print_config || a.generate.is_some() {
        return Ok(a);
    }
    if a.urls.is_empty() && a.input_file.is_none() && a.fragments.is_none() && a.info_json.is_none()
    {
        return Err(Error::Invalid("no URL given; see fastdl --help".into()));
    }
    if a.output.is_some() && (a.urls.len() > 1 || a.input_file.is_some()) {
        return Err(Error::Invalid(
            "-o/--output names one file, but several URLs were given; use -d instead".into(),
        ));
    }
    Ok(a)
}

impl Args {
    /// The downloader these settings describe. Every value is passed, so the library's own
    /// defaults never matter to the binary: the flag table's are the ones that apply.
    pub fn downloader(&self) -> DownloaderBuilder {
        let mut b = fastdl::Downloader::builder()
            .connections(self.connections)
            .min_split(self.chunk_size)
            .concurrent_downloads(self.concurrent_downloads)
            .max_connections(self.max_connections)
            .max_connections_per_host(self.max_connections_per_host)
            .retries(match (&self.fragments, self.fragment_retries) {
                (Some(_), Some(r)) => r,
                _ => self.retries,
            })
            .retry_delay(self.retry_delay)
            .max_retry_delay(self.max_retry_delay)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(&self.user_agent)
            .limit_rate(self.limit_rate.unwrap_or(0))
            .http_chunk_size(self.http_chunk_size.unwrap_or(0))
            .danger_accept_invalid_certs(self.insecure)
            .resume(!self.no_continue)
            .overwrite(self.overwrite)
            .remote_time(self.remote_time)
            .sha256(self.report.is_some())
            .max_requests_per_host_per_second(self.requests_per_host)
            .progress_interval(self.progress_interval);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        if let Some(v) = &self.referer {
            b = b.referer(v);
        }
        if let Some(v) = &self.proxy {
            b = b.proxy(v);
        }
        if let Some(v) = &self.ca_certificate {
            b = b.ca_certificate(v);
        }
        if let Some(jar) = &self.cookie_jar {
            b = b.cookies(jar.clone());
        }
        if let Some(v) = self.source_address {
            b = b.source_address(v);
        }
        b
    }

    /// What the command line adds to every request: size bounds; for fragment jobs, whether a
    /// failed piece is left out.
    pub fn request(&self, mut r: Request) -> Request {
        if let Some(n) = self.max_filesize {
            r = r.max_size(n);
        }
        if let Some(n) = self.min_filesize {
            r = r.min_size(n);
        }
        r.skip_failed_pieces(self.fragments.is_some() && !self.abort_on_unavailable_fragment)
    }

    /// How progress is shown.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            style: self.progress,
            quiet: self.quiet,
            verbose: self.verbose,
            // The number of files is known once the lists are read: main sets it.
            ..RenderOptions::default()
        }
    }

    /// The effective settings, one `key = value  # source` line each (`--print-config`).
    pub fn print_config(&self) -> String {
        FLAGS
            .iter()
            .filter_map(|f| Some((f.key?, f)))
            .map(|(key, f)| {
                let source = self.sources.get(key).map_or("default", String::as_str);
                format!("{key} = {}  # {source}\n", (f.show)(self))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
        assert_eq!(a.connections, 16);
        assert_eq!(a.output, Some(PathBuf::from("out.bin")));
        assert_eq!(a.retries, None);
        assert_eq!(a.headers, vec![("X-A".into(), "1".into())]);
        assert_eq!(a.urls, vec!["http://h/f".to_string()]);
        assert_eq!(a.sources["connections"], "command line");
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
            vec!["--max-connections", "100000", "http://h/"],
        ] {
            let e = parse_from(args.clone()).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{args:?}: {e}");
        }
    }

    #[test]
    fn help_lists_every_flag_with_its_default() {
        let h = help();
        for f in FLAGS {
            assert!(h.contains(&format!("--{}", f.long)), "{}", f.long);
        }
        assert!(h.contains("-x, --connections N"), "{h}");
        assert!(h.contains("(default 8)"), "{h}");
        assert!(h.lines().all(|l| l.len() <= WIDTH), "{h}");
    }
}
