#!/usr/bin/env bash
# The install channels a user takes without Python (docs/install.md): `cargo install --locked
# --path .` installs exactly one binary, and the completions and man page it generates work in
# the real shells (typed into bash and zsh in tmux, asked of fish's completion engine) and in
# man. Needs zsh, fish and groff (installed with apt-get when root).
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
for tool in zsh fish groff tmux; do command -v $tool >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install/test.sh: missing ${missing[*]}; install them (apt-get install zsh fish groff-base tmux)" >&2
        exit 1
    fi
    apt-get update -qq && apt-get install -y -qq --no-install-recommends zsh fish groff-base tmux >/dev/null
fi
W=$(mktemp -d)
SOCK="$W/tmux"
trap 'tmux -S "$SOCK" kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
fail() { echo "install/test.sh: $*" >&2; exit 1; }

echo "== cargo install --locked --path . (debug, reusing target/)"
CARGO_TARGET_DIR=$PWD/target cargo install --quiet --locked --debug --path . --root "$W/root"
[ "$(ls "$W/root/bin")" = fastdl ] || fail "cargo install did not install exactly fastdl: $(ls "$W/root/bin")"
F=$W/root/bin/fastdl
"$F" --version | grep -q '^fastdl ' || fail "the installed binary does not run"
mkdir -p "$W/home/bash" "$W/home/zsh" "$W/home/fish" "$W/home/man/man1" "$W/files"
"$F" --generate bash > "$W/home/bash/fastdl"
"$F" --generate zsh > "$W/home/zsh/_fastdl"
"$F" --generate fish > "$W/home/fish/fastdl.fish"
"$F" --generate powershell > "$W/home/fastdl.ps1"
"$F" --generate man > "$W/home/man/man1/fastdl.1"
touch "$W/files/list-one.txt"; mkdir "$W/files/outdir"

# Types `keys` into the shell in tmux session `name`, then presses Tab (a second Tab lists the
# candidates) until every `want` is on the screen, for up to 8 presses.
completes() {
    local name=$1 keys=$2; shift 2
    local screen="" want missing
    tmux -S "$SOCK" send-keys -t "$name" "$keys"
    for _ in $(seq 8); do
        sleep 0.5
        tmux -S "$SOCK" send-keys -t "$name" Tab
        sleep 0.5
        screen=$(tmux -S "$SOCK" capture-pane -p -t "$name")
        missing=""
        for want in "$@"; do grep -qF -- "$want" <<<"$screen" || missing=$want; done
        [ -z "$missing" ] && break
    done
    tmux -S "$SOCK" send-keys -t "$name" C-u C-c
    sleep 0.3
    tmux -S "$SOCK" send-keys -t "$name" clear Enter
    sleep 0.3
    [ -z "$missing" ] || { printf '%s\n' "$screen"; fail "$name: after '$keys' Tab, $missing is not on the screen"; }
}

echo "== bash: completion typed in a real terminal"
cat > "$W/home/bashrc" <<EOF
PS1='bash$ '
PATH=$W/root/bin:\$PATH
source $W/home/bash/fastdl
cd $W/files
EOF
tmux -S "$SOCK" new-session -d -s bash -x 200 -y 50 "env -i HOME=$W/home TERM=xterm bash --rcfile $W/home/bashrc --noprofile -i"
sleep 1
completes bash "fastdl --conn" --connect-timeout --connections
completes bash "fastdl --progress " lines json
completes bash "fastdl -i list" list-one.txt
completes bash "fastdl -d out" outdir/

echo "== zsh: completion typed in a real terminal"
cat > "$W/home/.zshrc" <<EOF
PS1='zsh%# '
path=($W/root/bin \$path)
fpath=($W/home/zsh \$fpath)
autoload -Uz compinit && compinit -u -d $W/home/zcompdump
cd $W/files
EOF
tmux -S "$SOCK" new-session -d -s zsh -x 200 -y 50 "env -i HOME=$W/home ZDOTDIR=$W/home TERM=xterm zsh -i"
sleep 2
completes zsh "fastdl --max-con" --max-connections-per-host
completes zsh "fastdl --progress " json lines
completes zsh "fastdl --generate p" "fastdl --generate powershell"
completes zsh "fastdl --input-file list" list-one.txt

echo "== fish: its completion engine"
out=$(env HOME="$W/home" fish --no-config -c "source $W/home/fish/fastdl.fish; complete -C 'fastdl --conn'")
grep -q '^--connections' <<<"$out" || fail "fish --conn: $out"
out=$(env HOME="$W/home" fish --no-config -c "source $W/home/fish/fastdl.fish; complete -C 'fastdl --progress '")
[ "$(sort <<<"$out" | cut -f1 | tr '\n' ' ')" = "auto bar json lines " ] || fail "fish --progress: $out"

echo "== PowerShell: not installed here (Debian has no pwsh); checked for balanced braces only"
python3 - "$W/home/fastdl.ps1" <<'EOF'
import sys
text = open(sys.argv[1]).read()
for open_, close in ("{}", "()"):
    assert text.count(open_) == text.count(close), f"unbalanced {open_}{close}"
assert "Register-ArgumentCompleter -Native" in text
EOF

echo "== man: no groff warnings, and the page reads"
warnings=$(groff -ww -z -man "$W/home/man/man1/fastdl.1" 2>&1)
[ -z "$warnings" ] || fail "groff: $warnings"
page=$(groff -man -Tutf8 -P-cbou "$W/home/man/man1/fastdl.1")
for want in "-x, --connections N" "EXIT STATUS" "another fastdl is writing the output" "--generate KIND"; do
    grep -qF -- "$want" <<<"$page" || fail "the man page lacks $want"
done
echo "install/test.sh: passed"
