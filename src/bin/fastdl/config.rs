//! The configuration file: TOML whose keys are the long option names with underscores
//! (`--max-retry-delay` is `max_retry_delay`), filling in whatever the command line left unset.
//!
//! Precedence: built-in defaults < file < command line. The file is `--config FILE`, else
//! `$FASTDL_CONFIG`, else the first of [`default_locations`] that exists; `--no-config` skips
//! it. A missing default file is fine; a
//! file named explicitly must exist. An unknown key or a bad value is an error naming the file,
//! the line and the key: a typo must not silently do nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fastdl::Error;
use toml::{Spanned, Value};

use crate::cli::Args;
use crate::settings::{keys, Flag, Value as FlagValue};

/// Where the configuration file is, if any applies.
pub fn locate(args: &Args) -> Result<Option<PathBuf>, Error> {
    if args.no_config {
        return Ok(None);
    }
    if let Some(path) = &args.config {
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "{}: no such config file",
                path.display()
            )));
        }
        return Ok(Some(path.clone()));
    }
    if let Some(path) = std::env::var_os("FASTDL_CONFIG").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "{}: no such config file (from $FASTDL_CONFIG)",
                path.display()
            )));
        }
        return Ok(Some(path));
    }
    Ok(default_locations().into_iter().find(|p| p.is_file()))
}

/// Where a config file is looked for, in order: `$XDG_CONFIG_HOME/fastdl/config.toml` (default
/// `~/.config/fastdl/config.toml`) everywhere; on macOS also
/// `~/Library/Application Support/fastdl/config.toml`; on Windows `%APPDATA%\fastdl\config.toml`.
fn default_locations() -> Vec<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut bases: Vec<PathBuf> = Vec::new();
    bases.extend(env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config"))));
    if cfg!(target_os = "macos") {
        bases.extend(home.map(|h| h.join("Library/Application Support")));
    }
    if cfg!(windows) {
        bases.extend(env("APPDATA"));
    }
    bases
        .into_iter()
        .map(|b| b.join("fastdl").join("config.toml"))
        .collect()
}

/// Loads the configuration file (if any) into the unset fields of `args`.
pub fn apply(args: &mut Args) -> Result<(), Error> {
    let Some(path) = locate(args)? else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Invalid(format!("{}: cannot read config file: {e}", path.display())))?;
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
        Error::Invalid(format!("{}{at}: {}", path.display(), e.message().trim()))
    })?;
    for (key, value) in table {
        let line = line_of(key.span().start);
        let name = key.get_ref().as_str();
        let bad = |msg: String| Error::Invalid(format!("{}:{line}: {name}: {msg}", path.display()));
        let Some(flag) = Flag::by_key(name) else {
            return Err(bad(format!(
                "unknown key (known keys: {}; see docs/config.md)",
                keys().collect::<Vec<_>>().join(", ")
            )));
        };
        if apply_file_value(args, flag, value.get_ref()).map_err(bad)? {
            let key = flag.key.expect("found by its key");
            args.sources
                .insert(key, format!("{}:{line}", path.display()));
        }
    }
    Ok(())
}

/// Applies a config file value to `a` unless the command line set that key; false if it did.
fn apply_file_value(a: &mut Args, flag: &Flag, value: &toml::Value) -> Result<bool, String> {
    let key = flag.key.expect("config flags have a key");
    if a.sources.get(key).is_some_and(|s| s == "command line") {
        return Ok(false);
    }
    (flag.set)(a, FlagValue::Toml(value))?;
    Ok(true)
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
        assert_eq!(args.connections, 4, "command line wins");
        assert_eq!(args.chunk_size, 2 << 20);
        assert_eq!(args.timeout, Duration::from_secs(45));
        assert_eq!(args.retries, None);
        assert_eq!(args.concurrent_downloads, 3);
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
            assert!(matches!(err, Error::Invalid(_)));
            assert!(err.to_string().starts_with(want), "{text:?}: {err}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any config file: settings or an error naming the file; never a panic.
        #[test]
        fn config_files_never_panic(
            key in "(connections|chunk_size|retries|timeout|headers|progress|limit_rate|dir|[a-z_]{1,12})",
            value in "(-?[0-9]{1,12}|\"[ -~]{0,12}\"|true|\\[\"[ -~]{0,10}\"\\]|\\{ [a-z]{1,4} = \"[a-z]{0,4}\" \\}|\\PC{0,10})",
        ) {
            let mut args = Args::default();
            if let Err(e) = apply_text(&mut args, &format!("{key} = {value}\n"), Path::new("c.toml")) {
                prop_assert!(e.to_string().starts_with("c.toml"), "{}", e);
            }
        }
    }
}
