#!/usr/bin/env bash
# fastdl under a real Slurm: a one-node cluster on this machine (cluster.sh) runs a job array
# of 4 tasks, each `fastdl --shard auto --report` over the same list into the same directory.
# Checks: every entry is in exactly one task's report, done, with the SHA-256 of the file on
# disk; the array run again downloads nothing (every entry skipped). Needs root, slurm-wlm and
# munge (integration/test.sh installs them) and the debug fastdl and bench-server binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$PWD/target/debug/fastdl
server_bin=$PWD/target/debug/examples/bench-server
work=$(mktemp -d /tmp/fastdl-slurm.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    for daemon in slurmd slurmctld; do
        [ -f "$work/slurm/$daemon.pid" ] && kill "$(cat "$work/slurm/$daemon.pid")" 2>/dev/null || true
    done
}
trap cleanup EXIT

SLURM_CONF=$(integration/slurm/cluster.sh "$work/slurm")
export SLURM_CONF

"$server_bin" --listen 127.0.0.1:0 --files /f=40x64K > "$work/server.out" &
server_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.out" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$addr" ] || { echo "slurm test: the bench server did not start" >&2; exit 1; }
# Every 4th entry named with out= (its name, not its URL, is then its shard key).
for i in $(seq 0 39); do
    echo "http://$addr/f$i"
    if [ $((i % 4)) -eq 0 ]; then echo "  out=named/$i.bin"; fi
done > "$work/list.txt"

run_array() {
    local round=$1
    mkdir -p "$work/reports$round" "$work/logs$round"
    cat > "$work/job$round.sh" <<JOB
#!/bin/bash
#SBATCH --array=0-3
#SBATCH --output=$work/logs$round/%a.out
exec "$bin" -i "$work/list.txt" -d "$work/data" --shard auto -j 4 --progress lines \
    --report "$work/reports$round/\$SLURM_ARRAY_TASK_ID.jsonl"
JOB
    if ! sbatch --wait --quiet "$work/job$round.sh"; then
        echo "slurm test: a task of round $round failed; its logs:" >&2
        tail -n 5 "$work/logs$round"/*.out >&2
        exit 1
    fi
}

run_array 1
run_array 2
python3 - "$work" <<'PY'
import hashlib, json, pathlib, sys
work = pathlib.Path(sys.argv[1])
def lines(round):
    reports = sorted((work / f"reports{round}").glob("*.jsonl"))
    assert len(reports) == 4, f"round {round}: {len(reports)} reports, want one per task"
    entries, tasks = [], []
    for report in reports:
        rows = [json.loads(l) for l in report.read_text().splitlines()]
        assert rows[-1]["status"] == "summary", report
        tasks.append(len(rows) - 1)
        entries += rows[:-1]
    return entries, tasks
first, tasks = lines(1)
urls = [e["url"] for e in first]
assert len(urls) == 40 and len(set(urls)) == 40, f"each entry once: {len(urls)} lines, {len(set(urls))} URLs"
assert all(n > 0 for n in tasks), f"every task took a share: {tasks}"
for e in first:
    assert e["status"] == "done", e
    data = pathlib.Path(e["path"]).read_bytes()
    assert len(data) == 64 * 1024 == e["bytes"], e
    assert hashlib.sha256(data).hexdigest() == e["sha256"], e
again, _ = lines(2)
assert sorted(e["url"] for e in again) == sorted(urls)
assert all(e["status"] == "skipped" for e in again), [e for e in again if e["status"] != "skipped"]
assert {e["url"]: e["sha256"] for e in again} == {e["url"]: e["sha256"] for e in first}
print(f"slurm test: 40 entries over 4 array tasks ({tasks}), each once; the rerun skipped all")
PY
