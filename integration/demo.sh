#!/usr/bin/env bash
# fastdl's main job on a machine with no internet: serve a 64 MiB file locally with each TCP
# connection capped at 4 MiB/s and 20 ms of latency (like a CDN edge), download it with fastdl
# over 16 connections, and check the sha256. A single connection would need 16 s.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fastdl --example bench-server
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
./target/release/examples/bench-server --listen 127.0.0.1:0 --file /demo.bin=64M --rate 4M --latency 20ms >"$work/server.out" &
server=$!
until grep -q '^listening on' "$work/server.out" 2>/dev/null; do sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/server.out")
expected=$(awk '$1 == "file" { print $4 }' "$work/server.out")
echo "demo: downloading 64 MiB from http://$addr/demo.bin (4 MiB/s per connection)"
start=$(date +%s.%N)
./target/release/fastdl -x 16 -o "$work/demo.bin" "http://$addr/demo.bin"
end=$(date +%s.%N)
actual=$(sha256sum "$work/demo.bin" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then
    echo "demo: sha256 mismatch: got $actual, expected $expected" >&2
    exit 1
fi
printf 'demo: sha256 verified; %.2f s (one connection would take 16 s)\n' "$(echo "$end - $start" | bc -l 2>/dev/null || python3 -c "print($end - $start)")"
