#!/usr/bin/env bash
# The whole test suite: Rust unit and end-to-end tests, then yt-dlp (real, pinned, from PyPI,
# in a venv under target/) driving fastdl through integration/ytdlp.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
# Every input of the fuzz targets' corpus, and every crash kept from it, through its checks
# (stable, no libFuzzer; running the fuzzers needs nightly: integration/fuzz/README.md).
cargo test --quiet --manifest-path integration/fuzz/Cargo.toml --no-default-features
cargo build --quiet --bin fastdl --example bench-server
# cargo install, and the generated completions and man page in real shells and groff.
bash integration/install/test.sh
# The merge test runs ffmpeg, as yt-dlp does for bestvideo+bestaudio.
if ! command -v ffmpeg >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: ffmpeg is missing; install it (apt-get install ffmpeg) and run again" >&2
        exit 1
    fi
    apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
venv=target/ytdlp-venv
if [ ! -x "$venv/bin/python" ]; then
    # Debian's system python3 ships venv separately.
    python3 -m venv "$venv" || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$venv"; }
fi
"$venv/bin/pip" install --quiet --upgrade "yt-dlp==2026.10.26" "pycryptodomex==3.23.0" "uv==0.13.9" "pipx==1.18.4" ./integration/ytdlp
FASTDL_BIN_DIR="$PWD/target/debug" BENCH_SERVER="$PWD/target/debug/examples/bench-server" \
    "$venv/bin/python" -m unittest discover -v -s integration/ytdlp/tests
# fastdl in a job array of a real Slurm (a one-node cluster on this machine): installing and
# starting slurm needs root.
if [ "$(id -u)" -eq 0 ]; then
    if ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null
    fi
    bash integration/slurm/test.sh
else
    echo "test.sh: SKIPPED the Slurm test (installing and starting slurm needs root)" >&2
fi
# Windows (built here, run under wine) and macOS (type-checked): .ci/cross.sh installs Debian's
# rustc, mingw and wine, so it needs root.
if [ "$(id -u)" -eq 0 ]; then
    bash .ci/cross.sh
else
    echo "test.sh: SKIPPED the Windows and macOS checks (.ci/cross.sh needs root for apt-get)" >&2
fi
