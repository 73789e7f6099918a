//! `--generate KIND`: shell completions (bash, zsh, fish, PowerShell) and the man page, made from
//! the flag table ([`FLAGS`]) like `--help`, so they cannot drift from the parser.
//! docs/install.md says where each goes.

use crate::exit;
use crate::render::Style;
use crate::settings::{Flag, Section, FLAGS};

/// What `--generate` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bash,
    Zsh,
    Fish,
    PowerShell,
    Man,
}

impl Kind {
    /// The values `--generate` takes, in `--help` order.
    pub const NAMES: [&'static str; 5] = ["bash", "zsh", "fish", "powershell", "man"];

    pub fn parse(name: &str) -> Result<Kind, String> {
        Ok(match name {
            "bash" => Kind::Bash,
            "zsh" => Kind::Zsh,
            "fish" => Kind::Fish,
            "powershell" | "pwsh" => Kind::PowerShell,
            "man" => Kind::Man,
            _ => {
                return Err(format!(
                    "{name:?}: expected one of {}",
                    Kind::NAMES.join(", ")
                ))
            }
        })
    }
}

/// The text for `kind`.
pub fn generate(kind: Kind) -> String {
    match kind {
        Kind::Bash => bash(),
        Kind::Zsh => zsh(),
        Kind::Fish => fish(),
        Kind::PowerShell => powershell(),
        Kind::Man => man(),
    }
}

/// What a flag's value is, for a shell to offer.
#[derive(Debug, PartialEq)]
enum Hint {
    Switch,
    File,
    Dir,
    Choices(&'static [&'static str]),
    Text,
}

fn hint(f: &Flag) -> Hint {
    match f.value {
        None => Hint::Switch,
        Some("DIR") => Hint::Dir,
        Some("PATH" | "FILE" | "FILE|-" | "JOB.json") => Hint::File,
        Some("MODE") => Hint::Choices(&Style::NAMES),
        Some("KIND") => Hint::Choices(&Kind::NAMES),
        Some(_) => Hint::Text,
    }
}

/// Every name of a flag: `-x`, `--connections`, then its aliases.
fn names(f: &Flag) -> Vec<String> {
    let shorts = f.short.iter().map(|c| format!("-{c}"));
    let longs = std::iter::once(f.long).chain(f.aliases.iter().copied());
    shorts.chain(longs.map(|l| format!("--{l}"))).collect()
}

/// The help text without its parenthesized asides, up to its first semicolon: one short line
/// for a menu.
fn summary(help: &str) -> String {
    let mut depth = 0;
    let mut out = String::new();
    for c in help.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' if depth == 0 => break,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
}

fn bash() -> String {
    let all: Vec<String> = FLAGS.iter().flat_map(names).collect();
    let with = |pick: fn(&Hint) -> bool| -> String {
        let n: Vec<String> = FLAGS
            .iter()
            .filter(|f| pick(&hint(f)))
            .flat_map(names)
            .collect();
        n.join("|")
    };
    let mut choices = String::new();
    for f in FLAGS {
        if let Hint::Choices(words) = hint(f) {
            choices.push_str(&format!(
                "        {})\n            COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n            \
                 return ;;\n",
                names(f).join("|"),
                words.join(" ")
            ));
        }
    }
    format!(
        r#"# bash completion for fastdl (fastdl --generate bash)
_fastdl() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        {files})
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        {dirs})
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
{choices}        {text})
            return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "{all}" -- "$cur"))
    fi
}}
complete -o bashdefault -o default -F _fastdl fastdl
"#,
        files = with(|h| *h == Hint::File),
        dirs = with(|h| *h == Hint::Dir),
        text = with(|h| *h == Hint::Text),
        all = all.join(" "),
    )
}

fn zsh() -> String {
    // Inside '...' in the script and [...] in a spec.
    let quote = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('\'', "'\\''")
            .replace('[', "\\[")
            .replace(']', "\\]")
            .replace(':', "\\:")
    };
    let mut specs = String::new();
    for f in FLAGS {
        let action = match hint(f) {
            Hint::Switch => String::new(),
            Hint::File => format!(":{}:_files", f.value.unwrap_or_default()),
            Hint::Dir => format!(":{}:_files -/", f.value.unwrap_or_default()),
            Hint::Choices(words) => {
                format!(":{}:({})", f.value.unwrap_or_default(), words.join(" "))
            }
            Hint::Text => format!(":{}: ", quote(f.value.unwrap_or_default())),
        };
        for name in names(f) {
            // `--name=` takes the value in the same word after `=` or as the next word.
            let eq = if name.starts_with("--") && f.value.is_some() {
                "="
            } else {
                ""
            };
            specs.push_str(&format!(
                "    '*{name}{eq}[{}]{action}' \\\n",
                quote(&summary(f.help))
            ));
        }
    }
    format!(
        "#compdef fastdl\n# zsh completion for fastdl (fastdl --generate zsh)\n\n\
         _arguments -s -S \\\n{specs}    '*:URL:_urls'\n"
    )
}

fn fish() -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut out = String::from("# fish completion for fastdl (fastdl --generate fish)\n");
    for f in FLAGS {
        let mut line = String::from("complete -c fastdl");
        for c in f.short {
            line.push_str(&format!(" -s {c}"));
        }
        for l in std::iter::once(f.long).chain(f.aliases.iter().copied()) {
            line.push_str(&format!(" -l {l}"));
        }
        match hint(f) {
            Hint::Switch => {}
            Hint::File => line.push_str(" -r -F"),
            Hint::Dir => line.push_str(" -x -a '(__fish_complete_directories)'"),
            Hint::Choices(words) => line.push_str(&format!(" -x -a {}", quote(&words.join(" ")))),
            Hint::Text => line.push_str(" -x"),
        }
        line.push_str(&format!(" -d {}\n", quote(&summary(f.help))));
        out.push_str(&line);
    }
    out
}

fn powershell() -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut options = String::new();
    let mut choices = String::new();
    for f in FLAGS {
        for name in names(f) {
            options.push_str(&format!(
                "        @({}, {})\n",
                quote(&name),
                quote(&summary(f.help))
            ));
        }
        if let Hint::Choices(words) = hint(f) {
            let list: Vec<String> = words.iter().map(|w| quote(w)).collect();
            for name in names(f) {
                choices.push_str(&format!(
                    "        {} = @({})\n",
                    quote(&name),
                    list.join(", ")
                ));
            }
        }
    }
    format!(
        r#"# PowerShell completion for fastdl (fastdl --generate powershell)
Register-ArgumentCompleter -Native -CommandName @('fastdl', 'fastdl.exe') -ScriptBlock {{
    param($wordToComplete, $commandAst, $cursorPosition)
    $choices = @{{
{choices}    }}
    $before = @($commandAst.CommandElements | Where-Object {{ $_.Extent.EndOffset -lt $cursorPosition }})
    $prev = if ($before.Count -gt 0) {{ $before[-1].ToString() }} else {{ '' }}
    if ($choices.ContainsKey($prev)) {{
        $choices[$prev] | Where-Object {{ $_ -like "$wordToComplete*" }} | ForEach-Object {{
            [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
        }}
        return
    }}
    if (-not $wordToComplete.StartsWith('-')) {{ return }}
    $options = @(
{options}    )
    $options | Where-Object {{ $_[0] -like "$wordToComplete*" }} | ForEach-Object {{
        [System.Management.Automation.CompletionResult]::new($_[0], $_[0], 'ParameterName', $_[1])
    }}
}}
"#
    )
}

/// The man page (roff, man macros): the same sections and texts as `--help`.
fn man() -> String {
    // Text as roff: backslashes escaped, `-` a real minus (option names are typed), no line
    // starting with a control character.
    let roff = |s: &str| {
        let t = s.replace('\\', "\\e").replace('-', "\\-");
        if t.starts_with(['.', '\'']) {
            format!("\\&{t}")
        } else {
            t
        }
    };
    let mut out = format!(
        ".TH FASTDL 1 \"\" \"fastdl {}\" \"User Commands\"\n\
         .SH NAME\nfastdl \\- download over HTTP(S) with many connections, resumably\n\
         .SH SYNOPSIS\n\
         .B fastdl\n[\\fIOPTIONS\\fR] \\fIURL\\fR...\n.br\n\
         .B fastdl\n[\\fIOPTIONS\\fR] \\fB\\-i\\fR \\fILIST\\fR|\\fB\\-\\fR\n.br\n\
         .B fastdl\n[\\fIOPTIONS\\fR] \\fB\\-\\-fragments\\fR \\fIJOB.json\\fR\n.br\n\
         .B fastdl\n[\\fIOPTIONS\\fR] \\fB\\-\\-info\\-json\\fR \\fIINFO.json\\fR|\\fB\\-\\fR\n\
         .SH DESCRIPTION\n\
         fastdl fetches each file over several Range connections straight into its final place, \
         re-splits the work when a connection ends early or is slow, retries with backoff and \
         resumes an interrupted download (validated with If\\-Range, so a changed file is never \
         mixed). A file already downloaded by fastdl, and unchanged since, is skipped without a \
         request. Settings come from the command line, then the config file, then the defaults \
         shown below.\n",
        env!("CARGO_PKG_VERSION")
    );
    for section in Section::ALL {
        out.push_str(&format!(".SH {}\n", section.title().to_uppercase()));
        for f in FLAGS.iter().filter(|f| f.section == section) {
            let names: Vec<String> = names(f)
                .iter()
                .map(|n| format!("\\fB{}\\fR", roff(n)))
                .collect();
            let value = f
                .value
                .map(|v| format!(" \\fI{}\\fR", roff(v)))
                .unwrap_or_default();
            out.push_str(&format!(
                ".TP\n{}{value}\n{}",
                names.join(", "),
                roff(f.help)
            ));
            if let Some(d) = f.default.filter(|d| *d != "0") {
                out.push_str(&format!(" (default {})", roff(d)));
            }
            if let Some(key) = f.key {
                out.push_str(&format!("; config key \\fB{}\\fR", roff(key)));
            }
            out.push('\n');
        }
    }
    out.push_str(
        ".SH VALUES\n\\fISIZE\\fR accepts 1048576, 512K, 1M, 1.5G; \\fIDURATION\\fR accepts 30, \
         30s, 500ms, 2m.\n.SH EXIT STATUS\n",
    );
    for (code, meaning) in exit::MEANINGS {
        out.push_str(&format!(".TP\n.B {code}\n{}\n", roff(meaning)));
    }
    out.push_str(
        ".SH FILES\n.TP\n\\fI$XDG_CONFIG_HOME/fastdl/config.toml\\fR \
         (\\fI~/.config/fastdl/config.toml\\fR)\nthe config file on Linux; on macOS also \
         \\fI~/Library/Application Support/fastdl/config.toml\\fR, on Windows \
         \\fI%APPDATA%\\efastdl\\econfig.toml\\fR (\\fB\\-\\-print\\-config\\fR shows which)\n\
         .SH SEE ALSO\n\\fByt\\-dlp\\fR(1), \\fBaria2c\\fR(1), \\fBcurl\\fR(1); the guide, \
         docs/guide.md, and the exit codes, docs/exit\\-codes.md, in the source.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_value_names() {
        let by = |long| hint(Flag::by_long(long).unwrap());
        assert_eq!(by("output"), Hint::File);
        assert_eq!(by("input-file"), Hint::File);
        assert_eq!(by("dir"), Hint::Dir);
        assert_eq!(by("overwrite"), Hint::Switch);
        assert_eq!(by("connections"), Hint::Text);
        assert_eq!(by("progress"), Hint::Choices(&Style::NAMES));
        assert_eq!(by("generate"), Hint::Choices(&Kind::NAMES));
        // Every value name a hint does not know is plain text; a new file-valued flag should
        // use one of the names above.
        for f in FLAGS {
            if let Some(v) = f.value {
                let file_like = v.contains("FILE") || v.contains("PATH") || v.contains("DIR");
                assert!(!file_like || hint(f) != Hint::Text, "--{}: {v}", f.long);
            }
        }
    }

    #[test]
    fn every_name_is_in_every_completion() {
        for kind in [
            Kind::Bash,
            Kind::Zsh,
            Kind::Fish,
            Kind::PowerShell,
            Kind::Man,
        ] {
            let text = generate(kind);
            for f in FLAGS {
                let long = match kind {
                    Kind::Fish => format!("-l {}", f.long),
                    Kind::Man => format!("\\-\\-{}", f.long.replace('-', "\\-")),
                    _ => format!("--{}", f.long),
                };
                assert!(text.contains(&long), "{kind:?} lacks {long}");
            }
        }
    }

    #[test]
    fn texts_are_quoted_for_each_shell() {
        assert_eq!(summary("a (b); c"), "a");
        assert_eq!(
            summary("extra request header (repeatable)"),
            "extra request header"
        );
        assert_eq!(
            summary("auto (bars on a terminal, lines otherwise), bar, lines, or json (JSON)"),
            "auto, bar, lines, or json"
        );
        // The header flag's value name has a colon and single quotes: escaped in its spec.
        assert!(
            zsh().contains("'*--header=[extra request header]:'\\''NAME\\: VALUE'\\'': '"),
            "{}",
            zsh()
        );
        assert!(fish().contains("-d 'give the file the server\\'s Last-Modified time'"));
        assert!(powershell()
            .contains("@('--remote-time', 'give the file the server''s Last-Modified time')"));
        for line in man().lines() {
            assert!(!line.starts_with('\''), "{line}");
        }
        assert!(Kind::parse("tcsh")
            .unwrap_err()
            .contains("bash, zsh, fish, powershell, man"));
    }
}
