#!/usr/bin/env bash
# The hostile-server test over many seeds (docs/testing.md): every reply misbehaves at random,
# fastdl runs with random settings, only invariants are checked.
#   bash integration/soak.sh              # seeds 1..5000
#   bash integration/soak.sh 20000 5001   # 20000 seeds from 5001
set -euo pipefail
cd "$(dirname "$0")/.."
FASTDL_HOSTILE_SEEDS=${1:-5000} FASTDL_HOSTILE_FIRST_SEED=${2:-1} \
    cargo test --release --test e2e hostile::a_hostile_server_never_gets_a_wrong_file -- --nocapture
