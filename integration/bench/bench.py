#!/usr/bin/env python3
"""fastdl's benchmark: fastdl against the anchors, interleaved, every output sha256-checked.

    python3 integration/bench/bench.py                 # all scenarios, 3 reps
    python3 integration/bench/bench.py --reps 5 capped straggler

Scenarios (see README.md beside this file):
  capped     128 MiB, 4 MiB/s per TCP connection, 40 ms RTT
  straggler  the same, every 4th connection at 1/8 speed
  trickle    32 MiB on loopback; the reply starting near the middle trickles at 1 KiB/s
  loopback   1 GiB, no cap, no delay: CPU seconds and peak RSS
  smallfiles 2000 files of 32 KiB, 20 ms RTT: files per second
  mixed      3 files of 256 MiB among 500 of 32 KiB, 4 MiB/s per connection, 20 ms RTT
  hls        yt-dlp on an HLS VOD of 600 x 256 KiB fragments, 40 ms RTT: --downloader fastdl
             -N 16 against yt-dlp's native -N 16 and -N 1
  ytdlp-file yt-dlp on a 256 MiB file, 4 MiB/s per connection, 40 ms RTT: fastdl vs native
  playlist   yt-dlp on 6 entries x 8 MiB: one at a time, 3 and 6 at once, xargs -P 3, native
  merge      yt-dlp on 3 bestvideo+bestaudio entries (ffmpeg merges): formats and entries at once
  scale      lists of 10^4..10^6 entries (10^7 read only): peak RSS and entries/s, against aria2c
             loading the same lists; then 10^5 files of 4 KiB: files/s

Runs are interleaved (every tool once per rep, in a new order each rep) and medians reported,
because the machine is shared and noisy; ratios within one run are what to compare. A run whose
output has the wrong sha256 counts as a failure, never as a time.
"""

import argparse
import atexit
import hashlib
import json
import os
import random
import shlex
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
    packages = {"aria2c": "aria2", "axel": "axel", "curl": "curl", "wget": "wget", "/usr/bin/time": "time",
                "ffmpeg": "ffmpeg"}
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
        self.flags = flags
        self.proc = subprocess.Popen([str(SERVER), "--listen", "127.0.0.1:0", *flags],
                                     stdout=subprocess.PIPE, text=True)
        self.files = {}
        self.hls = {}
        for line in self.proc.stdout:
            if line.startswith("listening on "):
                self.addr = line.split()[-1]
                break
            if line.startswith("hls "):
                _, path, digest = line.split()
                self.hls[path] = digest
                continue
            _, path, size, digest = line.split()
            self.files[path] = (int(size), digest)

    def url(self, path):
        scheme = "https" if "--tls" in self.flags else "http"
        return f"{scheme}://{self.addr}{path}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


RUN_TIMEOUT = 300


def run(cmd, cwd):
    """Runs a client under GNU time; returns (wall s, CPU s, peak RSS MiB, exit code).

    GNU time measures the client alone: rusage from wait4() in Python would also count the
    forked Python's own pages, from before exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        try:
            proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%e %U %S %M", "-o", t.name, *cmd],
                                  cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  {cmd[0]} still running after {RUN_TIMEOUT} s: killed", flush=True)
            return float(RUN_TIMEOUT), 0.0, 0.0, 1
        fields = t.read().split()
    if proc.returncode != 0 or len(fields) < 4:
        err = proc.stderr.decode(errors="replace").strip()
        print(f"  {cmd[0]} exited {proc.returncode}: {err[-300:]}", flush=True)
        return 0.0, 0.0, 0.0, proc.returncode or 1
    wall, user, sys_, rss = float(fields[-4]), float(fields[-3]), float(fields[-2]), int(fields[-1])
    return wall, user + sys_, rss / 1024, 0


def measure(cmd, cwd):
    """(wall s, peak RSS MiB, exit code) of `cmd` under GNU time, whatever its exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%e %M", "-o", t.name, *cmd], cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=RUN_TIMEOUT)
        wall, rss = t.read().split()[-2:]
    return float(wall), int(rss) / 1024, proc.returncode


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
        # Without opening the extra connections during the probe (what preconnecting saves).
        "fastdl -x16 --no-preconnect": [str(FASTDL), "-q", "-x", "16", "--no-preconnect", "--overwrite", "-o", out,
                                        url],
        "fastdl": [str(FASTDL), "-q", "--overwrite", "-o", out, url],
        "fastdl -x1": [str(FASTDL), "-q", "-x", "1", "--overwrite", "-o", out, url],
        "aria2c -x16": ["aria2c", "-q", "-x16", "-s16", "-k1M", "--allow-overwrite=true",
                        "--auto-file-renaming=false", "-d", str(out_dir), "-o", name, url],
        "axel -n16": ["axel", "-q", "-n16", "-o", out, url],
        "curl": ["curl", "-s", "-o", out, url],
        # HTTPS from the bench server's self-signed certificate.
        "fastdl -k": [str(FASTDL), "-q", "--no-check-certificate", "--overwrite", "-o", out, url],
        "fastdl -k -x16": [str(FASTDL), "-q", "--no-check-certificate", "-x", "16", "--overwrite", "-o", out,
                           url],
        "aria2c -k -x16": ["aria2c", "-q", "--check-certificate=false", "-x16", "-s16", "-k1M",
                           "--allow-overwrite=true", "--auto-file-renaming=false", "-d", str(out_dir), "-o", name,
                           url],
        "curl -k": ["curl", "-s", "-k", "-o", out, url],
    }
    return {t: table[t] for t in tools}


def output_ok(code, out, digest):
    """A run counts only if it succeeded and wrote exactly the served bytes."""
    return code == 0 and out.exists() and sha256(out) == digest


TRASH = None


def set_aside(work):
    """Moves the last run's output out of the way without deleting its small files until the
    benchmark ends. ext4 scans past inodes freed in the last ~30 s when it creates a file
    (`recently_deleted`), so deleting 2000 files before the next run made that run's creates
    several times slower: a cost of the benchmark, not of the tool, and heaviest on
    single-threaded tools. Large files are deleted at once (few inodes, much disk)."""
    global TRASH
    if not work.exists():
        return
    if TRASH is None:
        TRASH = Path(tempfile.mkdtemp(prefix="fastdl-bench-trash-"))
        atexit.register(shutil.rmtree, TRASH, ignore_errors=True)
    for f in work.rglob("*"):
        if f.is_file() and f.stat().st_size > 1 << 20:
            f.unlink()
    work.rename(TRASH / str(len(list(TRASH.iterdir()))))


def interleave(tools, reps, work, attempt, note=lambda wall: ""):
    """Runs `attempt(tool)` for every tool once per rep, in a fresh `work` directory: in the
    listed order first, then shuffled (seeded: a rerun repeats the orders). `attempt` returns
    (wall, cpu, rss, ok); failed runs are counted, never timed. Returns ({tool: [(wall, cpu,
    rss)]}, {tool: failures}).

    The shuffle is because a run depends on the one before it. This VM (Firecracker) hands free
    memory back to its host, and touching it again faults on the host. Page-cache folios are as
    large as the writes: small writes reuse what the last run freed, large ones take large free
    blocks, the ones given back. So a large writer after a small one pays: 1 GiB by
    `dd bs=408k` took 0.25 s after the same dd and 1.3-1.8 s after curl; fastdl (400 KiB writes)
    0.75 s after fastdl and 2.1-3.0 s after curl or axel, every -x alike. A rotation (A B C,
    B C A, ...) keeps each tool's predecessor, and fastdl's default, always after axel, took
    3.2 s where -x 16 and -x 1 took 1.1 s."""
    results = {t: [] for t in tools}
    failures = {t: 0 for t in tools}
    order = random.Random(13)
    for rep in range(reps):
        for tool in tools if rep == 0 else order.sample(tools, len(tools)):
            set_aside(work)
            work.mkdir()
            # The previous run's dirty pages written back now, not during this run: without it
            # the tool after a 1 GiB write ran up to 2.5x slower (loopback, first in each rep).
            os.sync()
            wall, cpu, rss, ok = attempt(tool)
            if ok:
                results[tool].append((wall, cpu, rss))
            else:
                failures[tool] += 1
            print(f"  rep {rep + 1} {tool:34} {wall:6.2f} s{note(wall)} {cpu:5.2f} CPU-s {rss:6.1f} MiB"
                  f"{'' if ok else '  FAILED (exit code, missing file or sha256)'}", flush=True)
    return results, failures


def scenario(title, server_flags, path, tools, reps, note, fresh_server=False):
    """One file; with `fresh_server`, a new server for every run (a --trickle hits once)."""
    print(f"\n== {title}: {note}", flush=True)
    servers = [Server(*server_flags)]
    size, digest = servers[0].files[path]
    work = Path(tempfile.mkdtemp(prefix="fastdl-bench-"))

    def attempt(tool):
        if fresh_server:
            servers[0].stop()
            servers[0] = Server(*server_flags)
        url = servers[0].url(path)
        wall, cpu, rss, code = run(clients(url, work, "out.bin", [tool])[tool], work)
        return wall, cpu, rss, output_ok(code, work / "out.bin", digest)

    try:
        results, failures = interleave(tools, reps, work, attempt)
    finally:
        servers[0].stop()
        shutil.rmtree(work, ignore_errors=True)
    return title, size, results, failures


def batch_clients(urls, list_file, out_dir, tools):
    """Command lines that download every URL of `list_file` into `out_dir`."""
    out = str(out_dir)
    table = {
        "fastdl": [str(FASTDL), "-q", "-i", str(list_file), "-d", out],
        "fastdl -x16 -c64": [str(FASTDL), "-q", "-x", "16", "--max-connections-per-host", "64",
                             "-i", str(list_file), "-d", out],
        "aria2c -j16": ["aria2c", "-q", "-i", str(list_file), "-d", out, "-j16",
                        "--allow-overwrite=true", "--auto-file-renaming=false"],
        "aria2c -j16 (-x1)": ["aria2c", "-q", "-i", str(list_file), "-d", out, "-j16",
                              "--allow-overwrite=true", "--auto-file-renaming=false"],
        "aria2c -j16 -x16": ["aria2c", "-q", "-i", str(list_file), "-d", out, "-j16", "-x16", "-s16",
                             "-k1M", "--allow-overwrite=true", "--auto-file-renaming=false"],
        "curl --parallel 16": ["curl", "--parallel", "--parallel-max", "16", "-s", "--create-dirs",
                               "--remote-name-all", "--output-dir", out, *urls],
        "wget -i": ["wget", "-q", "-i", str(list_file), "-P", out],
    }
    return {t: table[t] for t in tools}


def batch_scenario(title, server_flags, tools, reps, note):
    """Like scenario(), for many files: every file of the server is downloaded and checked."""
    print(f"\n== {title}: {note}", flush=True)
    srv = Server(*server_flags)
    urls = [srv.url(p) for p in srv.files]
    total = sum(size for size, _ in srv.files.values())
    base = Path(tempfile.mkdtemp(prefix="fastdl-bench-"))
    list_file = base / "list.txt"
    list_file.write_text("".join(u + "\n" for u in urls))
    out = base / "out"

    def attempt(tool):
        wall, cpu, rss, code = run(batch_clients(urls, list_file, out, [tool])[tool], base)
        names = [p.rsplit("/", 1)[1] for p in srv.files]
        ok = code == 0 and sorted(f.name for f in out.iterdir()) == sorted(names) and all(
            sha256(out / name) == digest for name, (_, digest) in zip(names, srv.files.values()))
        return wall, cpu, rss, ok

    try:
        results, failures = interleave(tools, reps, out, attempt,
                                       note=lambda wall: f" {len(urls) / max(wall, 1e-9):7.1f} files/s")
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)
    return title, total, results, failures, len(urls)


def ytdlp_python():
    """A venv with pinned yt-dlp and this repository's plugin (shared with integration/test.sh)."""
    venv = ROOT / "target/ytdlp-venv"
    if not (venv / "bin/python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "yt-dlp==2026.10.26",
                    str(ROOT / "integration/ytdlp")], check=True)
    return str(venv / "bin/python")


# yt-dlp's own part, the same whatever downloads: start, extraction, the manifest. It downloads
# nothing, so it has no output to check and no MiB/s.
EXTRACTION_ONLY = "yt-dlp --simulate"


def ytdlp_scenario(title, server_flags, path, tools, reps, note):
    """yt-dlp downloading `path` with each tool's settings; output checked against the server."""
    print(f"\n== {title}: {note}", flush=True)
    python = ytdlp_python()
    srv = Server(*server_flags)
    digest = srv.hls.get(path) or srv.files[path][1]
    size = srv.files[path][0] if path in srv.files else sum(s for s, _ in srv.files.values())
    os.environ["PATH"] = f"{FASTDL.parent}{os.pathsep}{os.environ['PATH']}"
    base = [python, "-m", "yt_dlp", "--no-config", "-q", "--fixup", "never", "--no-part", "-o", "out.bin"]
    table = {
        "yt-dlp --downloader fastdl -N 16": ["--downloader", "fastdl", "-N", "16"],
        # The same, but yt-dlp reads the pieces back and joins them (what fastdl's join saves).
        "yt-dlp --downloader fastdl -N 16, yt-dlp joins": ["--downloader", "fastdl", "-N", "16"],
        "yt-dlp --downloader fastdl": ["--downloader", "fastdl"],
        "yt-dlp native -N 16": ["-N", "16"],
        "yt-dlp native -N 1": [],
        "yt-dlp native": [],
        EXTRACTION_ONLY: ["--simulate"],
    }
    work = Path(tempfile.mkdtemp(prefix="fastdl-bench-"))

    def attempt(tool):
        os.environ["YTDLP_FASTDL_JOIN"] = "0" if tool.endswith("yt-dlp joins") else "1"
        wall, cpu, rss, code = run(base + table[tool] + [srv.url(path)], work)
        if tool == EXTRACTION_ONLY:
            return wall, cpu, rss, code == 0 and not (work / "out.bin").exists()
        return wall, cpu, rss, output_ok(code, work / "out.bin", digest)

    try:
        results, failures = interleave(tools, reps, work, attempt)
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return title, size, results, failures


def playlist_scenario(title, reps, merge=False):
    """yt-dlp on a playlist: 6 entries of 8 MiB (or, with `merge`, 3 entries of bestvideo +
    bestaudio, real media merged by ffmpeg), 2 MiB/s per connection, fastdl with one connection
    per file: one entry at a time, 3 and 6 at once, `xargs -P 3` (one yt-dlp per URL), native."""
    python = ytdlp_python()
    os.environ["PATH"] = f"{FASTDL.parent}{os.pathsep}{os.environ['PATH']}"
    media = Path(tempfile.mkdtemp(prefix="fastdl-bench-media-"))
    flags = ["--rate", "2M", "--latency", "20ms"]
    if merge:
        note = "3 entries of bestvideo+bestaudio (about 7 + 2 MiB, merged by ffmpeg), 2 MiB/s per connection"
        ff = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi"]
        subprocess.run(ff + ["-i", "testsrc=size=1280x720:rate=30", "-t", "10", "-c:v", "libx264",
                             "-preset", "ultrafast", "-b:v", "6M", "-an", str(media / "v.mp4")], check=True)
        subprocess.run(ff + ["-i", "sine=frequency=440", "-t", "60", "-c:a", "aac", "-b:a", "256k",
                             str(media / "a.m4a")], check=True)
        for i in range(3):
            flags += ["--serve", f"/v{i}.mp4={media / 'v.mp4'}", "--serve", f"/a{i}.m4a={media / 'a.m4a'}"]
    else:
        note = "6 entries of 8 MiB, 2 MiB/s per connection, 20 ms RTT, fastdl -x 1"
        for i in range(6):
            flags += ["--file", f"/e{i}.mp4=8M"]
        flags += ["--rss", "/feed.xml"]
    print(f"\n== {title}: {note}", flush=True)
    srv = Server(*flags)
    work = Path(tempfile.mkdtemp(prefix="fastdl-bench-"))
    target = srv.url("/feed.xml")
    if merge:
        entries = [{
            "_type": "video", "id": f"m{i}", "title": f"Merged {i}", "extractor": "generic",
            "extractor_key": "Generic", "webpage_url": srv.url(f"/m{i}"), "ext": "mp4",
            "formats": [
                {"format_id": "v", "url": srv.url(f"/v{i}.mp4"), "ext": "mp4", "vcodec": "h264",
                 "acodec": "none", "protocol": "http"},
                {"format_id": "a", "url": srv.url(f"/a{i}.m4a"), "ext": "m4a", "vcodec": "none",
                 "acodec": "aac", "protocol": "http"}]} for i in range(3)]
        info = media / "playlist.info.json"
        info.write_text(json.dumps({"_type": "playlist", "id": "pl", "title": "Bench", "entries": entries,
                                    "extractor": "generic", "extractor_key": "Generic",
                                    "webpage_url": srv.url("/pl")}))
    base = [python, "-m", "yt_dlp", "--no-config", "-q", "--no-part", "-o", "%(id)s.%(ext)s"]
    fastdl1 = ["--downloader", "fastdl", "--downloader-args", "fastdl:-x 1"]
    # (--no-clean-info-json: yt-dlp would drop a loaded playlist's entries.)
    source = ["--load-info-json", str(info), "--no-clean-info-json", "-f", "v+a"] if merge else [target]
    table = {
        "yt-dlp --downloader fastdl, one at a time": (base + fastdl1 + source, {}),
        "... formats at once": (base + fastdl1 + source, {"YTDLP_FASTDL_CONCURRENT": "1"}),
        "... entries=3": (base + fastdl1 + source, {"YTDLP_FASTDL_CONCURRENT": "3"}),
        "... entries=6": (base + fastdl1 + source, {"YTDLP_FASTDL_CONCURRENT": "6"}),
        "xargs -P 3 yt-dlp --downloader fastdl": (None, {}),
        "yt-dlp native": (base + source, {}),
    }
    tools = (["yt-dlp --downloader fastdl, one at a time", "... formats at once", "... entries=3",
              "yt-dlp native"] if merge else
             ["yt-dlp --downloader fastdl, one at a time", "... entries=3", "... entries=6",
              "xargs -P 3 yt-dlp --downloader fastdl", "yt-dlp native"])
    urls = [srv.url(f"/e{i}.mp4") for i in range(6)]

    def attempt(tool):
        cmd, env = table[tool]
        if cmd is None:
            # What users do today: one yt-dlp per URL, three at a time.
            one = shlex.join(base + fastdl1)
            cmd = ["sh", "-c", f"printf '%s\\n' {shlex.join(urls)} | xargs -P 3 -n 1 {one}"]
        os.environ.pop("YTDLP_FASTDL_CONCURRENT", None)
        os.environ.update(env)
        wall, cpu, rss, code = run(cmd, work)
        os.environ.pop("YTDLP_FASTDL_CONCURRENT", None)
        if merge:
            ok = code == 0 and all((work / f"m{i}.mp4").exists() for i in range(3))
        else:
            ok = code == 0 and all(output_ok(0, work / f"e{i}.mp4", srv.files[f"/e{i}.mp4"][1])
                                   for i in range(6))
        return wall, cpu, rss, ok

    try:
        results, failures = interleave(tools, reps, work, attempt)
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(media, ignore_errors=True)
    size = 3 * (9 << 20) if merge else 6 * (8 << 20)
    return title, size, results, failures


def scale_scenario(reps, sizes=(10**4, 10**5, 10**6), parse_only=(10**7,), download=10**5):
    """How cost grows with the list: reading and checking a list of n entries (a shard that holds
    none of them, so nothing is fetched), fastdl against aria2c loading the same list (aria2c
    reads the whole list before it starts: it is stopped after 20 s, its peak RSS so far kept);
    then `download` files of 4 KiB from the local server, every one sha256-checked."""
    print("\n== scale: lists of " + ", ".join(f"{n:,}" for n in (*sizes, *parse_only)) +
          f" entries; then {download:,} files of 4 KiB", flush=True)
    base = Path(tempfile.mkdtemp(prefix="fastdl-bench-scale-"))
    table = []
    try:
        for n in (*sizes, *parse_only):
            lst = base / f"list-{n}.txt"
            with open(lst, "w") as f:
                for i in range(n):
                    # Port 9 refuses at once: nothing leaves the machine, whatever a tool does.
                    f.write(f"http://127.0.0.1:9/data/set-{i % 97}/file-{i}.bin?sig=s{i}\n")
            # fastdl: a shard that (almost surely) holds none of them, so it reads, checks and
            # shards the whole list and fetches nothing. aria2c: every URL refused at once (it
            # exits 1 for that); it reads the whole list before it starts.
            tools = {"fastdl (read, check, shard)": ([str(FASTDL), "-q", "-i", str(lst), "--shard",
                                                     f"{(1 << 62) - 1}/{1 << 62}"], 0)}
            if n in sizes:
                tools["aria2c (load, 20 s at most)"] = (["timeout", "20", "aria2c", "-q", "-i", str(lst),
                                                         "-d", str(base / "aria2-out"), "--max-tries=1",
                                                         "--dry-run=true"], None)
            for tool, (cmd, want) in tools.items():
                runs = []
                for _ in range(reps):
                    wall, rss, code = measure(cmd, base)
                    ok = want is None or code == want
                    if ok:
                        runs.append((wall, rss))
                    print(f"  {n:>10,} {tool:30} {wall:7.2f} s {rss:7.1f} MiB (exit {code})"
                          f"{'' if ok else '  FAILED'}", flush=True)
                if runs:
                    wall = statistics.median(r[0] for r in runs)
                    rss = max(r[1] for r in runs)
                    # GNU time counts in hundredths: no rate from a run that short.
                    rate = f"{n / wall:,.0f}" if tool.startswith("fastdl") and wall >= 0.1 else "-"
                    table.append(f"| {n:,} | {tool} | {wall:.2f} | {rate} | {rss:.1f} |")
            lst.unlink()
        srv = Server("--files", f"/s/f={download}x4K")
        lst = base / "download.txt"
        lst.write_text("".join(srv.url(p) + "\n" for p in srv.files))
        out = base / "out"
        runs = []
        for _ in range(reps):
            set_aside(out)
            out.mkdir()
            wall, cpu, rss, code = run([str(FASTDL), "-q", "-i", str(lst), "-d", str(out)], base)
            names = {p.rsplit("/", 1)[1]: d for p, (_, d) in srv.files.items()}
            ok = code == 0 and all(sha256(out / name) == d for name, d in names.items())
            print(f"  {download:>10,} files fastdl {wall:7.2f} s {download / max(wall, 1e-9):7.0f} files/s "
                  f"{cpu:6.2f} CPU-s {rss:6.1f} MiB{'' if ok else '  FAILED'}", flush=True)
            if ok:
                runs.append((wall, cpu, rss))
        if runs:
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            table.append(f"| {download:,} files of 4 KiB | fastdl (download) | {wall:.2f} | "
                         f"{download / wall:,.0f} files/s, {cpu:.1f} CPU-s | {max(r[2] for r in runs):.1f} |")
        srv.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return ["\n### scale\n", "| entries | tool | median s | entries/s | peak RSS MiB |", "|---|---|---|---|---|",
            *table]


def report(rows):
    lines = []
    for row in rows:
        if isinstance(row, list):  # a scenario with its own table (scale)
            lines += row
            continue
        title, size, results, failures, *files = row
        files = files[0] if files else None
        lines.append(f"\n### {title} ({size / 2**20:.0f} MiB{f' in {files} files' if files else ''})\n")
        lines.append("| tool | median s | MiB/s | files/s | CPU-s | peak RSS MiB | time vs fastdl | failed runs |")
        lines.append("|---|---|---|---|---|---|---|---|")
        base = None
        for tool, runs in results.items():
            if runs:
                base = base or statistics.median(r[0] for r in runs)
                break
        for tool, runs in results.items():
            if not runs:
                lines.append(f"| {tool} | - | - | - | - | - | - | {failures[tool]} |")
                continue
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            rate = f"{files / wall:.0f}" if files else "-"
            speed = "-" if tool == EXTRACTION_ONLY else f"{size / 2**20 / wall:.1f}"
            lines.append(f"| {tool} | {wall:.2f} | {speed} | {rate} | {cpu:.2f} | {rss:.1f} | "
                         f"{wall / base:.2f}x | {failures[tool]} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("scenarios", nargs="*",
                    default=["capped", "straggler", "trickle", "loopback", "loopback-tls", "smallfiles", "mixed", "hls", "ytdlp-file",
                             "playlist", "merge", "scale"])
    args = ap.parse_args()
    build()
    ensure_tools(["aria2c", "axel", "curl", "wget", "/usr/bin/time", "ffmpeg"])
    shaped = ["--file", "/f=128M", "--rate", "4M", "--latency", "40ms"]
    anchors = ["fastdl -x16", "aria2c -x16", "axel -n16"]
    rows = []
    for name in args.scenarios:
        if name == "capped":
            rows.append(scenario("capped", shaped, "/f", anchors + ["fastdl -x16 --no-preconnect"], args.reps,
                                 "128 MiB, 4 MiB/s per connection, 40 ms RTT; ceiling 2.0 s at 16 connections"))
        elif name == "straggler":
            rows.append(scenario("straggler", shaped + ["--slow-every", "4", "--slow-divisor", "8"], "/f",
                                 anchors, args.reps, "as capped, every 4th connection at 512 KiB/s"))
        elif name == "trickle":
            rows.append(scenario("trickle", ["--file", "/f=32M", "--trickle", "12M-20M=1K"], "/f",
                                 ["fastdl", "aria2c -x16", "axel -n16"], args.reps,
                                 "32 MiB on loopback, default settings; the reply starting near the "
                                 "middle trickles at 1 KiB/s", fresh_server=True))
        elif name == "playlist":
            rows.append(playlist_scenario("playlist", args.reps))
        elif name == "merge":
            rows.append(playlist_scenario("merge", args.reps, merge=True))
        elif name == "loopback":
            rows.append(scenario("loopback", ["--file", "/f=1G"], "/f",
                                 ["fastdl", "fastdl -x16", "fastdl -x1", "curl", "aria2c -x16", "axel -n16"],
                                 args.reps, "1 GiB, no cap, no delay: CPU and memory cost"))
        elif name == "loopback-tls":
            rows.append(scenario("loopback-tls", ["--file", "/f=1G", "--tls"], "/f",
                                 ["fastdl -k", "fastdl -k -x16", "curl -k", "aria2c -k -x16"], args.reps,
                                 "1 GiB over HTTPS on loopback (the server encrypts on the same 2 cores)"))
        elif name == "smallfiles":
            rows.append(batch_scenario("smallfiles", ["--files", "/s/f=2000x32K", "--latency", "20ms"],
                                       ["fastdl", "aria2c -j16", "curl --parallel 16", "wget -i"], args.reps,
                                       "2000 files of 32 KiB, 20 ms RTT; ceiling ~780 files/s at 16 connections"))
        elif name == "mixed":
            rows.append(batch_scenario(
                "mixed",
                ["--file", "/big0=256M", "--file", "/big1=256M", "--file", "/big2=256M",
                 "--files", "/s/f=500x32K", "--rate", "4M", "--latency", "20ms"],
                ["fastdl", "fastdl -x16 -c64", "aria2c -j16 (-x1)", "aria2c -j16 -x16", "curl --parallel 16"],
                args.reps,
                "3 x 256 MiB among 500 x 32 KiB, 4 MiB/s per connection, 20 ms RTT"))
        elif name == "hls":
            rows.append(ytdlp_scenario(
                "hls", ["--files", "/s/f=600x256K", "--hls", "/v.m3u8=/s/f:600", "--latency", "40ms"], "/v.m3u8",
                ["yt-dlp --downloader fastdl -N 16", "yt-dlp --downloader fastdl -N 16, yt-dlp joins",
                 "yt-dlp native -N 16", "yt-dlp native -N 1", EXTRACTION_ONLY], args.reps,
                "HLS VOD, 600 fragments of 256 KiB, 40 ms RTT (CPU-s include yt-dlp itself)"))
        elif name == "scale":
            rows.append(scale_scenario(args.reps))
        elif name == "ytdlp-file":
            rows.append(ytdlp_scenario(
                "ytdlp-file", ["--file", "/f.mp4=256M", "--rate", "4M", "--latency", "40ms"], "/f.mp4",
                ["yt-dlp --downloader fastdl", "yt-dlp native"], args.reps,
                "256 MiB through yt-dlp, 4 MiB/s per connection, 40 ms RTT"))
        else:
            sys.exit(f"bench: unknown scenario {name}")
    text = report(rows)
    print(text)
    out = ROOT / "integration/bench/results"
    out.mkdir(exist_ok=True)
    (out / time.strftime("%Y%m%d-%H%M%S.md")).write_text(text + "\n")


if __name__ == "__main__":
    main()
