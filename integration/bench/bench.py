#!/usr/bin/env python3
"""fastdl's benchmark: fastdl against the anchors, interleaved, every output sha256-checked.

    python3 integration/bench/bench.py                 # all scenarios, 3 reps
    python3 integration/bench/bench.py --reps 5 capped straggler

Scenarios (see README.md beside this file):
  capped     128 MiB, 4 MiB/s per TCP connection, 40 ms RTT
  straggler  the same, every 4th connection at 1/8 speed
  loopback   1 GiB, no cap, no delay: CPU seconds and peak RSS

Runs are interleaved (A B C, A B C, ...) and medians reported, because the machine is shared
and noisy; ratios within one run are what to compare. A run whose output has the wrong sha256
counts as a failure, never as a time.
"""

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FASTDL = ROOT / "target/release/fastdl"
SERVER = ROOT / "target/release/examples/bench-server"


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "fastdl", "--example", "bench-server"],
                   cwd=ROOT, check=True)


def ensure_tools(names):
    """Installs missing anchors from Debian (aria2c comes in package aria2)."""
    packages = {"aria2c": "aria2", "axel": "axel", "curl": "curl", "wget": "wget", "/usr/bin/time": "time"}
    missing = [packages[n] for n in names if shutil.which(n) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"bench: missing {', '.join(missing)}; install them (apt-get install {' '.join(missing)})")
    print(f"bench: installing {' '.join(missing)}", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, stdout=subprocess.DEVNULL)


class Server:
    """The shaped bench server, started with the given flags; knows each file's sha256."""

    def __init__(self, *flags):
        self.proc = subprocess.Popen([str(SERVER), "--listen", "127.0.0.1:0", *flags],
                                     stdout=subprocess.PIPE, text=True)
        self.files = {}
        for line in self.proc.stdout:
            if line.startswith("listening on "):
                self.addr = line.split()[-1]
                break
            _, path, size, digest = line.split()
            self.files[path] = (int(size), digest)

    def url(self, path):
        return f"http://{self.addr}{path}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def run(cmd, cwd):
    """Runs a client under GNU time; returns (wall s, CPU s, peak RSS MiB, exit code).

    GNU time measures the client alone: rusage from wait4() in Python would also count the
    forked Python's own pages, from before exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%e %U %S %M", "-o", t.name, *cmd],
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        fields = t.read().split()
    if proc.returncode != 0 or len(fields) < 4:
        err = proc.stderr.decode(errors="replace").strip()
        print(f"  {cmd[0]} exited {proc.returncode}: {err[-300:]}", flush=True)
        return 0.0, 0.0, 0.0, proc.returncode or 1
    wall, user, sys_, rss = float(fields[-4]), float(fields[-3]), float(fields[-2]), int(fields[-1])
    return wall, user + sys_, rss / 1024, 0


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def clients(url, out_dir, name, tools):
    """Command lines of each tool, writing `name` in `out_dir`."""
    out = str(out_dir / name)
    table = {
        "fastdl -x16": [str(FASTDL), "-q", "-x", "16", "--overwrite", "-o", out, url],
        "fastdl": [str(FASTDL), "-q", "--overwrite", "-o", out, url],
        "fastdl -x1": [str(FASTDL), "-q", "-x", "1", "--overwrite", "-o", out, url],
        "aria2c -x16": ["aria2c", "-q", "-x16", "-s16", "-k1M", "--allow-overwrite=true",
                        "--auto-file-renaming=false", "-d", str(out_dir), "-o", name, url],
        "axel -n16": ["axel", "-q", "-n16", "-o", out, url],
        "curl": ["curl", "-s", "-o", out, url],
    }
    return {t: table[t] for t in tools}


def scenario(title, server_flags, path, tools, reps, note):
    print(f"\n== {title}: {note}", flush=True)
    srv = Server(*server_flags)
    size, digest = srv.files[path]
    results = {t: [] for t in tools}
    failures = {t: 0 for t in tools}
    work = Path(tempfile.mkdtemp(prefix="fastdl-bench-"))
    try:
        for rep in range(reps):
            for tool, cmd in clients(srv.url(path), work, "out.bin", tools).items():
                for f in work.iterdir():
                    f.unlink()
                wall, cpu, rss, code = run(cmd, work)
                ok = code == 0 and (work / "out.bin").exists() and sha256(work / "out.bin") == digest
                if ok:
                    results[tool].append((wall, cpu, rss))
                else:
                    failures[tool] += 1
                print(f"  rep {rep + 1} {tool:12} {wall:6.2f} s {cpu:5.2f} CPU-s {rss:6.1f} MiB"
                      f"{'' if ok else '  FAILED (exit code or sha256)'}", flush=True)
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return title, size, results, failures


def report(rows):
    lines = []
    for title, size, results, failures in rows:
        lines.append(f"\n### {title} ({size / 2**20:.0f} MiB)\n")
        lines.append("| tool | median s | MiB/s | CPU-s | peak RSS MiB | time vs fastdl | failed runs |")
        lines.append("|---|---|---|---|---|---|---|")
        base = None
        for tool, runs in results.items():
            if runs:
                base = base or statistics.median(r[0] for r in runs)
                break
        for tool, runs in results.items():
            if not runs:
                lines.append(f"| {tool} | - | - | - | - | - | {failures[tool]} |")
                continue
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            lines.append(f"| {tool} | {wall:.2f} | {size / 2**20 / wall:.1f} | {cpu:.2f} | {rss:.1f} | "
                         f"{wall / base:.2f}x | {failures[tool]} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("scenarios", nargs="*", default=["capped", "straggler", "loopback"])
    args = ap.parse_args()
    build()
    ensure_tools(["aria2c", "axel", "curl", "/usr/bin/time"])
    shaped = ["--file", "/f=128M", "--rate", "4M", "--latency", "40ms"]
    anchors = ["fastdl -x16", "aria2c -x16", "axel -n16"]
    rows = []
    for name in args.scenarios:
        if name == "capped":
            rows.append(scenario("capped", shaped, "/f", anchors, args.reps,
                                 "128 MiB, 4 MiB/s per connection, 40 ms RTT; ceiling 2.0 s at 16 connections"))
        elif name == "straggler":
            rows.append(scenario("straggler", shaped + ["--slow-every", "4", "--slow-divisor", "8"], "/f",
                                 anchors, args.reps, "as capped, every 4th connection at 512 KiB/s"))
        elif name == "loopback":
            rows.append(scenario("loopback", ["--file", "/f=1G"], "/f",
                                 ["fastdl", "fastdl -x16", "fastdl -x1", "curl", "aria2c -x16", "axel -n16"],
                                 args.reps, "1 GiB, no cap, no delay: CPU and memory cost"))
        else:
            sys.exit(f"bench: unknown scenario {name}")
    text = report(rows)
    print(text)
    out = ROOT / "integration/bench/results"
    out.mkdir(exist_ok=True)
    (out / time.strftime("%Y%m%d-%H%M%S.md")).write_text(text + "\n")


if __name__ == "__main__":
    main()
