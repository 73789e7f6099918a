//! The configuration file: TOML whose keys are the long option names with underscores
//! (`--max-retry-delay` is `max_retry_delay`), filling in whatever the command line left unset.
//!
//! Precedence: built-in defaults < file < command line. The file is `--config FILE`, else
//! `$FASTDL_CONFIG`, else `$XDG_CONFIG_HOME/fastdl/config.toml` (default
//! `~/.config/fastdl/config.toml`); `--no-config` skips it. A missing default file is fine; a
//! file named explicitly must exist. An unknown key or a bad value is an error naming the file,
//! the line and the key: a typo must not silently do nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Spanned, Value};

use crate::cli::{parse_duration, parse_size, Args};
use crate::error::Error;
use crate::http::parse_header;
use crate::progress::Style;

/// Every key the file may set, in `--print-config` order.
pub const KEYS: &[&str] = &[
    "connections",
    "chunk_size",
    "concurrent_downloads",
    "max_connections_per_host",
    "max_connections",
    "limit_rate",
    "timeout",
    "connect_timeout",
    "retries",
    "retry_delay",
    "max_retry_delay",
    "dir",
    "user_agent",
    "referer",
    "headers",
    "proxy",
    "ca_certificate",
    "progress",
    "progress_interval",
];

/// Where the configuration file is, if any applies.
pub fn locate(args: &Args) -> Result<Option<PathBuf>, Error> {
    if args.no_config {
        return Ok(None);
    }
    if let Some(path) = &args.config {
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "{}: no such config file",
                path.display()
            )));
        }
        return Ok(Some(path.clone()));
    }
    if let Some(path) = std::env::var_os("FASTDL_CONFIG").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "{}: no such config file (from $FASTDL_CONFIG)",
                path.display()
            )));
        }
        return Ok(Some(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    Ok(base
        .map(|b| b.join("fastdl/config.toml"))
        .filter(|p| p.is_file()))
}

/// Loads the configuration file (if any) into the unset fields of `args`.
pub fn apply(args: &mut Args) -> Result<(), Error> {
    let Some(path) = locate(args)? else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("{}: cannot read config file: {e}", path.display())))?;
    apply_text(args, &text, &path)
}

/// Applies the TOML `text` (read from `path`) to `args`.
pub fn apply_text(args: &mut Args, text: &str, path: &Path) -> Result<(), Error> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(":{}", line_of(s.start)))
            .unwrap_or_default();
        Error::Usage(format!("{}{at}: {}", path.display(), e.message().trim()))
    })?;
    for (key, value) in table {
        let line = line_of(key.span().start);
        let name = key.get_ref().as_str();
        let bad = |msg: String| Error::Usage(format!("{}:{line}: {name}: {msg}", path.display()));
        if !KEYS.contains(&name) {
            return Err(bad(format!(
                "unknown key (known keys: {}; see docs/config.md)",
                KEYS.join(", ")
            )));
        }
        let set = set_key(args, name, value.get_ref()).map_err(bad)?;
        if set {
            args.sources
                .insert(name.to_string(), format!("{}:{line}", path.display()));
        }
    }
    Ok(())
}

/// Sets one key unless the command line already did. Returns whether the file's value is used.
fn set_key(args: &mut Args, key: &str, value: &Value) -> Result<bool, String> {
    // The command line wins: `sources` knows what it set.
    if args.sources.get(key).is_some_and(|s| s == "command line") {
        return Ok(false);
    }
    match key {
        "connections" => args.connections = Some(count(value, 1, 256)?),
        "chunk_size" => args.chunk_size = Some(size(value)?),
        "concurrent_downloads" => args.concurrent_downloads = Some(count(value, 1, 1024)?),
        "max_connections_per_host" => args.max_connections_per_host = Some(count(value, 1, 4096)?),
        "max_connections" => args.max_connections = Some(count(value, 1, 4096)?),
        "limit_rate" => args.limit_rate = Some(size(value)?).filter(|&r| r > 0),
        "timeout" => args.timeout = Some(duration(value)?),
        "connect_timeout" => args.connect_timeout = Some(duration(value)?),
        "retries" => {
            args.retries = Some(match value {
                Value::String(s) if s == "inf" => None,
                v => Some(count(v, 0, u32::MAX as usize)? as u32),
            })
        }
        "retry_delay" => args.retry_delay = Some(duration(value)?),
        "max_retry_delay" => args.max_retry_delay = Some(duration(value)?),
        "dir" => args.dir = Some(PathBuf::from(string(value)?)),
        "user_agent" => args.user_agent = Some(string(value)?),
        "referer" => args.referer = Some(string(value)?),
        "proxy" => args.proxy = Some(string(value)?),
        "ca_certificate" => args.ca_certificate = Some(PathBuf::from(string(value)?)),
        "progress" => {
            args.progress = Some(match string(value)?.as_str() {
                "auto" => Style::Auto,
                "bar" | "bars" => Style::Bars,
                "lines" | "plain" => Style::Lines,
                "json" => Style::Json,
                other => return Err(format!("{other:?}: expected auto, bar, lines or json")),
            })
        }
        "progress_interval" => args.progress_interval = Some(duration(value)?),
        "headers" => {
            // Headers from the file come first; a command-line -H of the same name replaces one.
            let from_file = headers(value)?;
            let cli = std::mem::take(&mut args.headers);
            let mut merged: Vec<_> = from_file
                .into_iter()
                .filter(|(k, _)| !cli.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)))
                .collect();
            merged.extend(cli);
            args.headers = merged;
        }
        _ => unreachable!("KEYS lists every key"),
    }
    Ok(true)
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, got {}", other.type_str())),
    }
}

fn count(v: &Value, min: usize, max: usize) -> Result<usize, String> {
    match v {
        Value::Integer(n) if (min as i64..=max as i64).contains(n) => Ok(*n as usize),
        Value::Integer(n) => Err(format!("{n} is out of range ({min} to {max})")),
        other => Err(format!("expected a whole number, got {}", other.type_str())),
    }
}

fn size(v: &Value) -> Result<u64, String> {
    match v {
        Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        Value::String(s) => parse_size(s, "size")
            .map_err(|_| format!("{s:?} is not a size (examples: 1048576, 512K, 1M)")),
        other => Err(format!(
            "expected a size like \"1M\", got {}",
            other.type_str()
        )),
    }
}

fn duration(v: &Value) -> Result<std::time::Duration, String> {
    let bad = |s: &str| format!("{s:?} is not a duration (examples: 30s, 500ms, 2m)");
    match v {
        Value::Integer(n) if *n >= 0 => Ok(std::time::Duration::from_secs(*n as u64)),
        Value::Float(f) if *f >= 0.0 => {
            std::time::Duration::try_from_secs_f64(*f).map_err(|_| bad(&f.to_string()))
        }
        Value::String(s) => parse_duration(s, "duration").map_err(|_| bad(s)),
        other => Err(format!(
            "expected a duration like \"30s\", got {}",
            other.type_str()
        )),
    }
}

fn headers(v: &Value) -> Result<Vec<(String, String)>, String> {
    let one = |text: String| parse_header(&text).map_err(|e| e.to_string());
    match v {
        Value::Array(items) => items.iter().map(|i| one(string(i)?)).collect(),
        Value::Table(t) => t
            .iter()
            .map(|(k, v)| one(format!("{k}: {}", string(v)?)))
            .collect(),
        other => Err(format!(
            "expected a list of \"Name: value\" strings or a table, got {}",
            other.type_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn apply_str(args: &mut Args, text: &str) -> Result<(), Error> {
        apply_text(args, text, Path::new("team.toml"))
    }

    #[test]
    fn file_fills_what_the_command_line_left_unset() {
        let mut args = crate::cli::parse_from(["-x", "4", "http://h/f"]).unwrap();
        let text = "connections = 16\nchunk_size = \"2M\"\ntimeout = \"45s\"\nretries = \"inf\"\n\
                    headers = [\"X-Team: a\"]\nconcurrent_downloads = 3\n";
        apply_str(&mut args, text).unwrap();
        assert_eq!(args.connections, Some(4), "command line wins");
        assert_eq!(args.chunk_size, Some(2 << 20));
        assert_eq!(args.timeout, Some(Duration::from_secs(45)));
        assert_eq!(args.retries, Some(None));
        assert_eq!(args.concurrent_downloads, Some(3));
        assert_eq!(args.headers, vec![("X-Team".into(), "a".into())]);
        assert_eq!(args.sources["chunk_size"], "team.toml:2");
        assert_eq!(args.sources["connections"], "command line");
    }

    #[test]
    fn every_bad_line_is_named() {
        let cases = [
            ("conections = 4\n", "team.toml:1: conections: unknown key"),
            (
                "timeout = \"30s\"\nchunk_size = \"1X\"\n",
                "team.toml:2: chunk_size: \"1X\" is not a size",
            ),
            (
                "connections = 0\n",
                "team.toml:1: connections: 0 is out of range",
            ),
            (
                "connections = \"many\"\n",
                "team.toml:1: connections: expected a whole number, got string",
            ),
            (
                "timeout = \"soon\"\n",
                "team.toml:1: timeout: \"soon\" is not a duration",
            ),
            (
                "headers = [\"no colon\"]\n",
                "team.toml:1: headers: bad header",
            ),
            (
                "progress = \"xml\"\n",
                "team.toml:1: progress: \"xml\": expected auto",
            ),
            ("\n\nthis is not toml\n", "team.toml:3:"),
        ];
        for (text, want) in cases {
            let mut args = crate::cli::parse_from(["http://h/f"]).unwrap();
            let err = apply_str(&mut args, text).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().starts_with(want), "{text:?}: {err}");
        }
    }
}
