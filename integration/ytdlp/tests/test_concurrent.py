"""Several entries, and an entry's formats, at once (yt_dlp_fastdl/_concurrent.py), with real
yt-dlp from PyPI and real fastdl against local servers only.

A playlist is an RSS feed served from here (yt-dlp's generic extractor makes each enclosure an
entry); the media come from bench-server with a per-connection cap, so downloads take long
enough to overlap, and every output is compared with the sha256 the server prints.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from test_ytdlp import ENV, QuietHandler, Server, serve, sha256

N = 6


def feed_handler(entries):
    """An RSS feed of `entries` [(guid, title, url)]."""
    items = "".join(
        f'<item><title>{title}</title><guid>{guid}</guid>'
        f'<enclosure url="{url}" type="video/mp4" length="1"/></item>' for guid, title, url in entries)
    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
            f'<link>http://feed.example/</link>{items}</channel></rss>').encode()

    class Feed(QuietHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Feed


class ConcurrentTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        files = [a for i in range(N) for a in ("--file", f"/e{i}.mp4=3M")]
        cls.media = Server(*files, "--rate", "2M")
        entries = [(f"ep{i}", f"Episode {i}", cls.media.url(f"/e{i}.mp4")) for i in range(N)]
        cls.feed = serve(feed_handler(entries))
        # The same id twice, and an entry whose media is missing.
        dup = entries[:2] + [entries[0]] + entries[2:3]
        cls.dup_feed = serve(feed_handler(dup))
        broken = entries[:2] + [("gone", "Gone", cls.media.url("/missing.mp4"))] + entries[2:4]
        cls.broken_feed = serve(feed_handler(broken))

    @classmethod
    def tearDownClass(cls):
        cls.media.stop()
        for srv in (cls.feed, cls.dup_feed, cls.broken_feed):
            srv.shutdown()
            srv.server_close()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fastdl-conc-")

    def url(self, srv):
        return f"http://127.0.0.1:{srv.server_address[1]}/feed.xml"

    def ytdlp(self, *args, env=None, concurrent=3, timeout=180):
        cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "--newline", "--downloader", "fastdl",
               "--downloader-args", "fastdl:-x 1", *args]
        env = dict(ENV, **(env or {}))
        if concurrent:
            env["YTDLP_FASTDL_CONCURRENT"] = str(concurrent)
        return subprocess.run(cmd, cwd=self.dir, env=env, capture_output=True, text=True, timeout=timeout)

    def files(self):
        return sorted(f for f in os.listdir(self.dir) if not f.startswith("."))

    def test_entries_at_once_keep_names_numbers_and_bytes_of_a_sequential_run(self):
        tmpl = "%(autonumber)s-%(playlist_index)s-%(title)s.%(ext)s"
        seq = self.ytdlp("-o", tmpl, self.url(self.feed), concurrent=0)
        self.assertEqual(seq.returncode, 0, seq.stderr)
        sequential = self.files()
        for f in sequential:
            os.remove(os.path.join(self.dir, f))
        r = self.ytdlp("-o", tmpl, "--print", "after_move:filepath", "--no-quiet", self.url(self.feed))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.files(), sequential)
        self.assertEqual(sequential[0], "00001-1-Episode 0.mp4")
        for i, name in enumerate(sequential):
            self.assertEqual(sha256(os.path.join(self.dir, name)), self.media.files[f"/e{i}.mp4"], name)
        # --print lines come in playlist order; every worker line names its entry.
        printed = [os.path.basename(l) for l in r.stdout.splitlines() if l.startswith(self.dir)]
        self.assertEqual(printed, sequential)
        self.assertIn("[ep3] [download] Destination: 00004-4-Episode 3.mp4", r.stdout)

    def test_entries_overlap_and_hooks_are_never_concurrent(self):
        """Through the API (the fastdl_concurrent param): downloads of different entries run at
        the same time; the progress hooks are called one at a time, and each download's bytes
        only grow and end in `finished`."""
        script = f"""
import json, threading, time, yt_dlp
events, inside, clash = [], [False], []
def hook(d):
    if inside[0]:
        clash.append(1)
    inside[0] = True
    time.sleep(0.002)
    events.append((d['info_dict']['id'], d['status'], d.get('downloaded_bytes') or 0, time.monotonic()))
    inside[0] = False
opts = {{'fastdl_concurrent': 3, 'external_downloader': {{'default': 'fastdl'}},
        'external_downloader_args': {{'fastdl': ['-x', '1']}}, 'quiet': True,
        'outtmpl': '%(id)s.%(ext)s', 'progress_hooks': [hook]}}
with yt_dlp.YoutubeDL(opts) as ydl:
    print(type(ydl).__name__)
    code = ydl.download([{self.url(self.feed)!r}])
print(json.dumps({{'code': code, 'events': events, 'clash': len(clash)}}))
"""
        r = subprocess.run([sys.executable, "-c", script], cwd=self.dir, env=ENV, capture_output=True,
                           text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("FastdlConcurrentYoutubeDL"), r.stdout)
        out = json.loads(r.stdout.splitlines()[-1])
        self.assertEqual(out["code"], 0)
        self.assertEqual(out["clash"], 0, "hooks called at the same time")
        spans = {}
        for ident, status, done, t in out["events"]:
            spans.setdefault(ident, []).append((status, done, t))
        self.assertEqual(sorted(spans), [f"ep{i}" for i in range(N)])
        for ident, evs in spans.items():
            sizes = [d for _, d, _ in evs]
            self.assertEqual(sizes, sorted(sizes), f"{ident}: bytes went down")
            self.assertEqual(evs[-1][0], "finished", ident)
        # Some entry started before another had finished.
        first, second = spans["ep0"], spans["ep1"]
        self.assertLess(second[0][2], first[-1][2], "ep1 started only after ep0 ended")
        for i in range(N):
            self.assertEqual(sha256(os.path.join(self.dir, f"ep{i}.mp4")), self.media.files[f"/e{i}.mp4"])

    def test_the_postprocessor_switch_and_off_by_default(self):
        r = self.ytdlp("-v", "--use-postprocessor", "FastdlConcurrent:entries=2;formats=0",
                       "-o", "%(id)s.%(ext)s", self.url(self.feed), concurrent=0)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[fastdl] up to 2 entries at once", r.stderr)
        self.assertIn("[ep1] [download] Destination", r.stdout)
        for f in self.files():
            os.remove(os.path.join(self.dir, f))
        r = self.ytdlp("-o", "%(id)s.%(ext)s", self.url(self.feed), concurrent=0)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("[ep1] ", r.stdout, "no switch: stock yt-dlp, one entry at a time")
        self.assertEqual(len(self.files()), N)

    def test_archive_max_downloads_and_a_failing_entry_behave_as_sequential(self):
        # A duplicate id: recorded once, downloaded once.
        r = self.ytdlp("--download-archive", "archive.txt", "-o", "%(id)s-%(playlist_index)s.%(ext)s",
                       self.url(self.dup_feed))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "archive.txt")) as f:
            self.assertEqual(sorted(f.read().split("\n")[:-1]), ["generic ep0", "generic ep1", "generic ep2"])
        self.assertEqual(len([f for f in self.files() if f.startswith("ep0-")]), 1, self.files())
        # --max-downloads 2: exactly two, exit 101.
        d = tempfile.mkdtemp(prefix="fastdl-conc-max-")
        self.dir = d
        r = self.ytdlp("--max-downloads", "2", "-o", "%(id)s.%(ext)s", self.url(self.feed))
        self.assertEqual(r.returncode, 101, r.stderr)
        self.assertEqual(self.files(), ["ep0.mp4", "ep1.mp4"])
        # A failing entry: exit 1; whatever was downloaded is whole.
        self.dir = tempfile.mkdtemp(prefix="fastdl-conc-fail-")
        r = self.ytdlp("-o", "%(id)s.%(ext)s", self.url(self.broken_feed))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("gone: Unable to download webpage", r.stderr)
        for f in self.files():
            if f.endswith(".mp4"):
                i = int(f[2:-4])
                self.assertEqual(sha256(os.path.join(self.dir, f)), self.media.files[f"/e{i}.mp4"], f)

    def test_break_options_and_abort_on_error_stop_where_a_sequential_run_stops(self):
        """Each case runs sequentially, then with 3 at once: the same files (whole), the same
        archive and the same exit code. An entry starts only once the one before has passed its
        checks, so no entry after the stopping one is downloaded."""
        cases = [
            ("archived before", self.feed, "generic ep3\n", ["--break-on-existing"]),
            ("a duplicate in the list", self.dup_feed, "", ["--break-on-existing"]),
            ("a filter that stops", self.feed, "", ["--break-match-filters", "id!=ep3"]),
            ("a failing entry", self.broken_feed, "", ["--abort-on-error"]),
        ]
        for name, feed, archive, flags in cases:
            results = []
            for concurrent in (0, 3):
                self.dir = tempfile.mkdtemp(prefix="fastdl-conc-stop-")
                with open(os.path.join(self.dir, "archive.txt"), "w") as f:
                    f.write(archive)
                r = self.ytdlp("--download-archive", "archive.txt", *flags,
                               "-o", "%(id)s-%(playlist_index)s.%(ext)s", self.url(feed), concurrent=concurrent)
                with open(os.path.join(self.dir, "archive.txt")) as f:
                    recorded = sorted(f.read().split())
                for f in self.files():
                    if f.endswith(".mp4"):
                        i = int(f[2:f.index("-")])
                        self.assertEqual(sha256(os.path.join(self.dir, f)), self.media.files[f"/e{i}.mp4"], f)
                results.append((r.returncode, self.files(), recorded))
            self.assertEqual(results[1], results[0], name)
            self.assertNotEqual(results[0][0], 0, name)
        self.assertEqual(results[0][1], ["archive.txt", "ep0-1.mp4", "ep1-2.mp4"], "abort-on-error")

    def test_exec_never_overlaps_and_playlist_work_waits_for_the_entries(self):
        # A directory as a lock: a second --exec while one runs would fail to make it.
        # (`: %(filepath)q` keeps yt-dlp from appending the path to the command.)
        check = "mkdir lock && sleep 0.3 && rmdir lock && : %(filepath)q"
        count = "ls ep*.mp4 | wc -l > count.txt"
        r = self.ytdlp("--exec", check, "--exec", f"playlist:{count}", "--write-info-json",
                       "-o", "%(id)s.%(ext)s", self.url(self.feed))
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        with open(os.path.join(self.dir, "count.txt")) as f:
            self.assertEqual(f.read().strip(), str(N), "playlist: ran after every entry")
        playlist_json = [f for f in self.files() if f.endswith(".info.json") and not f.startswith("ep")]
        self.assertEqual(len(playlist_json), 1, self.files())
        # The updated playlist JSON is written after every entry's file.
        written = os.path.getmtime(os.path.join(self.dir, playlist_json[0]))
        for i in range(N):
            self.assertLessEqual(os.path.getmtime(os.path.join(self.dir, f"ep{i}.mp4")), written)
        self.assertIn("Writing updated playlist metadata", r.stdout)

    def test_limit_rate_and_connections_are_shared(self):
        r = self.ytdlp("-v", "-r", "3M", "-o", "%(id)s.%(ext)s", self.url(self.feed))
        self.assertEqual(r.returncode, 0, r.stderr)
        # 3 entries x 2 formats can run at once: each fastdl gets a sixth.
        self.assertIn(f"--limit-rate {3 * 1024 * 1024 // 6}", r.stderr)
        self.assertIn("--max-connections-per-host 2", r.stderr)

    def test_formats_at_once_are_merged_by_ffmpeg_and_a_failed_format_fails_the_entry(self):
        """bestvideo+bestaudio of real media (made by ffmpeg here), served at 1 MiB/s per
        connection: each part reports progress before the other ends (the progress hooks are
        called in order), both parts are the served bytes (-k keeps them) and ffmpeg
        merges them into one file with both streams."""
        src = os.path.join(self.dir, "src")
        os.makedirs(src)
        ff = ["ffmpeg", "-loglevel", "error", "-f", "lavfi"]
        # (Noise and 40 s of audio, so that each part takes over half a second to download.)
        subprocess.run(ff + ["-i", "testsrc=size=640x480:rate=25,noise=alls=60:allf=t", "-t", "3", "-c:v", "mpeg4",
                             "-b:v", "4M", os.path.join(src, "v.mp4")], check=True)
        subprocess.run(ff + ["-i", "sine=frequency=440", "-t", "40", "-c:a", "aac", "-b:a", "256k",
                             os.path.join(src, "a.m4a")], check=True)
        media = Server("--serve", f"/v.mp4={src}/v.mp4", "--serve", f"/a.m4a={src}/a.m4a", "--rate", "1M")
        self.addCleanup(media.stop)
        info = {"id": "vid", "title": "Merged", "extractor": "generic", "extractor_key": "Generic",
                "webpage_url": "http://127.0.0.1/", "ext": "mp4",
                "formats": [
                    {"format_id": "v", "url": media.url("/v.mp4"), "ext": "mp4", "vcodec": "mp4v",
                     "acodec": "none", "protocol": "http", "width": 640, "height": 480},
                    {"format_id": "a", "url": media.url("/a.m4a"), "ext": "m4a", "vcodec": "none",
                     "acodec": "mp4a", "protocol": "http"}]}
        script = f"""
import json, yt_dlp
events = []
def hook(d):
    events.append((d['info_dict']['format_id'], d['status']))
opts = {{'fastdl_concurrent': 1, 'external_downloader': {{'default': 'fastdl'}},
        'external_downloader_args': {{'fastdl': ['-x', '1']}}, 'quiet': True, 'keepvideo': True,
        'format': 'v+a', 'merge_output_format': 'mkv', 'outtmpl': 'out.%(ext)s', 'progress_hooks': [hook]}}
with yt_dlp.YoutubeDL(opts) as ydl:
    ydl.process_ie_result(json.loads({json.dumps(json.dumps(info))}), download=True)
print(json.dumps(events))
"""
        r = subprocess.run([sys.executable, "-c", script], cwd=self.dir, env=ENV, capture_output=True,
                           text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        events = json.loads(r.stdout.splitlines()[-1])
        # Each part reported progress before the other had finished: they ran at the same time.
        for this, other in (("v", "a"), ("a", "v")):
            self.assertIn([this, "downloading"], events[:events.index([other, "finished"])], events)
        for part, served in (("out.fv.mp4", "/v.mp4"), ("out.fa.m4a", "/a.m4a")):
            self.assertEqual(sha256(os.path.join(self.dir, part)), media.files[served], part)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                                os.path.join(self.dir, "out.mkv")], capture_output=True, text=True, check=True)
        self.assertEqual(sorted(probe.stdout.split()), ["audio", "video"])
        # One format missing: the entry fails, as sequential yt-dlp's does, and nothing is merged.
        info["formats"][1]["url"] = media.url("/missing.m4a")
        path = os.path.join(self.dir, "vid.info.json")
        with open(path, "w") as f:
            json.dump(info, f)
        self.dir = tempfile.mkdtemp(prefix="fastdl-conc-fmt-")
        r = self.ytdlp("--load-info-json", path, "-f", "v+a", "-o", "out.%(ext)s", concurrent=2)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertNotIn("out.mp4", self.files())
        self.assertIn("[vid]", r.stderr + r.stdout)

    def test_ctrl_c_to_yt_dlp_alone_stops_every_fastdl_and_the_rerun_resumes(self):
        cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "--downloader", "fastdl",
               "--downloader-args", "fastdl:-x 1 --limit-rate 512K", "-o", "%(id)s.%(ext)s",
               self.url(self.feed)]
        env = dict(ENV, YTDLP_FASTDL_CONCURRENT="3")
        # A background job inherits SIGINT ignored (as this suite may be): yt-dlp must get it.
        proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(self.fastdl_children()) < 3:
            time.sleep(0.1)
        self.assertGreaterEqual(len(self.fastdl_children()), 3, "three fastdl running")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)  # to yt-dlp only, not its process group
        proc.wait(timeout=30)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and self.fastdl_children():
            time.sleep(0.1)
        self.assertEqual(self.fastdl_children(), [], "no fastdl left running")
        parts = [f for f in self.files() if f.endswith(".part.fastdl")]
        self.assertTrue(parts, f"progress saved: {self.files()}")
        r = self.ytdlp("-o", "%(id)s.%(ext)s", self.url(self.feed))
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in range(N):
            self.assertEqual(sha256(os.path.join(self.dir, f"ep{i}.mp4")), self.media.files[f"/e{i}.mp4"])

    def fastdl_children(self):
        """fastdl processes working in this test's directory."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{pid}/cwd") != self.dir:
                    continue
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() == "fastdl":
                        found.append(pid)
            except OSError:
                pass
        return found

    def test_a_changed_yt_dlp_falls_back_to_sequential(self):
        """The patches check what they rely on: simulate a yt-dlp whose process_info changed."""
        script = """
import yt_dlp
from yt_dlp_fastdl import _concurrent
_concurrent._EXPECTED['process_info'].append('code this yt-dlp does not have')
ydl = yt_dlp.YoutubeDL({'fastdl_concurrent': 3})
print(type(ydl).__name__)
"""
        r = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "YoutubeDL")
        self.assertIn("changed (no 'code this yt-dlp does not have'); downloading one entry at a time", r.stderr)


if __name__ == "__main__":
    unittest.main()
