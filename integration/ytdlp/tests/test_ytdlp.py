"""yt-dlp (real, from PyPI) using fastdl through this package, against a local server.

Run by integration/test.sh, which builds fastdl and bench-server and sets FASTDL_BIN_DIR and
BENCH_SERVER. Every download is compared with the sha256 the server prints for it.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER = os.environ.get("BENCH_SERVER", os.path.join(ROOT, "target/debug/examples/bench-server"))
BIN_DIR = os.environ.get("FASTDL_BIN_DIR", os.path.join(ROOT, "target/debug"))
ENV = dict(os.environ, PATH=BIN_DIR + os.pathsep + os.environ.get("PATH", ""))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Server:
    """bench-server with a capped rate, so downloads last long enough to report progress."""

    def __init__(self, *flags):
        self.proc = subprocess.Popen([SERVER, "--listen", "127.0.0.1:0", *flags], stdout=subprocess.PIPE, text=True)
        self.files = {}
        for line in self.proc.stdout:
            if line.startswith("listening on "):
                self.addr = line.split()[-1]
                break
            # "file PATH SIZE SHA256", or "hls PATH SHA256" (the digest of the joined fragments)
            fields = line.split()
            self.files[fields[1]] = fields[-1]

    def url(self, path):
        return f"http://{self.addr}{path}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def serve(handler):
    """A Python HTTP server on 127.0.0.1 in a thread (for tests that need their own replies)."""
    import http.server
    import threading

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class QuietHandler(__import__("http.server").server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class YtDlpTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--file", "/video.mp4=6M", "--rate", "4M")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fastdl-ytdlp-")

    def ytdlp(self, *args):
        cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "-v", "--newline", *args]
        return subprocess.run(cmd, cwd=self.dir, env=ENV, capture_output=True, text=True, timeout=120)

    def test_cli_downloader_fastdl_on_a_direct_file(self):
        r = self.ytdlp("--downloader", "fastdl", "-o", "out.mp4", self.srv.url("/video.mp4"))
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("Invoking fastdl downloader", r.stdout + r.stderr)
        self.assertEqual(sha256(os.path.join(self.dir, "out.mp4")), self.srv.files["/video.mp4"])
        # yt-dlp's own progress lines, fed by fastdl's JSON events.
        self.assertIn("[download] 100", r.stdout)
        self.assertEqual(sorted(os.listdir(self.dir)), ["out.mp4"], "no .part or state left")

    def test_mtime_comes_from_last_modified(self):
        """`--mtime` reaches fastdl as --remote-time: the file carries the server's Last-Modified
        (the test server's is fixed), and without it the file keeps its own time."""
        import email.utils

        served = email.utils.parsedate_to_datetime("Wed, 21 Oct 2026 07:28:00 GMT").timestamp()
        url = self.srv.url("/video.mp4")
        for flag, name in [("--mtime", "m.mp4"), ("--no-mtime", "n.mp4")]:
            r = self.ytdlp("--downloader", "fastdl", flag, "-o", name, url)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sha256(os.path.join(self.dir, name)), self.srv.files["/video.mp4"])
        self.assertEqual(os.path.getmtime(os.path.join(self.dir, "m.mp4")), served)
        self.assertNotEqual(os.path.getmtime(os.path.join(self.dir, "n.mp4")), served)

    def test_output_to_stdout(self):
        cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "-q", "--downloader", "fastdl", "-o", "-",
               self.srv.url("/video.mp4")]
        r = subprocess.run(cmd, cwd=self.dir, env=ENV, capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), self.srv.files["/video.mp4"])
        self.assertEqual(os.listdir(self.dir), [], "nothing written to disk")

    def test_filesize_limits_and_http_chunk_size(self):
        """--max-filesize: a message, exit 0 and no file, as with yt-dlp's own downloader;
        --http-chunk-size: every request fastdl makes asks for at most that many bytes."""
        r = self.ytdlp("--downloader", "fastdl", "--max-filesize", "1M", "-o", "big.mp4",
                       self.srv.url("/video.mp4"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is more than --max-filesize 1048576; not downloaded. Aborting.", r.stdout)
        self.assertEqual(os.listdir(self.dir), [], "nothing written")
        r = self.ytdlp("--downloader", "fastdl", "--http-chunk-size", "1M", "-o", "c.mp4",
                       self.srv.url("/video.mp4"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sha256(os.path.join(self.dir, "c.mp4")), self.srv.files["/video.mp4"])
        import re
        ranges = re.findall(r"\[fastdl\] GET \S+ Range: bytes=(\d+)-(\d+)", r.stdout + r.stderr)
        self.assertGreaterEqual(len(ranges), 6, r.stdout)
        for start, end in ranges:
            self.assertLess(int(end) - int(start), 1 << 20)

    def test_downloader_args_reach_fastdl(self):
        r = self.ytdlp("--downloader", "fastdl", "--downloader-args", "fastdl:-x 2", "-o", "out.mp4",
                       self.srv.url("/video.mp4"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout + r.stderr, r"fastdl command line: .*-x 2 ")
        self.assertEqual(sha256(os.path.join(self.dir, "out.mp4")), self.srv.files["/video.mp4"])

    def test_api_progress_hooks_see_progress_and_finished(self):
        code = f"""
import json, yt_dlp
seen = []
def hook(d):
    seen.append((d['status'], d.get('downloaded_bytes'), d.get('total_bytes')))
opts = {{'external_downloader': {{'default': 'fastdl'}}, 'progress_hooks': [hook],
        'external_downloader_args': {{'fastdl': ['-x', '1']}},  # 4 MiB/s: ~1.5 s of progress
        'outtmpl': 'api.mp4', 'quiet': True}}
with yt_dlp.YoutubeDL(opts) as ydl:
    ydl.download([{self.srv.url('/video.mp4')!r}])
print(json.dumps(seen))
"""
        r = subprocess.run([sys.executable, "-c", code], cwd=self.dir, env=ENV, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        seen = json.loads(r.stdout.strip().splitlines()[-1])
        downloading = [b for s, b, _ in seen if s == "downloading"]
        self.assertGreaterEqual(len(downloading), 2, seen)
        self.assertEqual(downloading, sorted(downloading), "downloaded_bytes never goes back")
        self.assertEqual(seen[-1][0], "finished")
        self.assertEqual(seen[-1][1], 6 << 20)
        self.assertEqual(sha256(os.path.join(self.dir, "api.mp4")), self.srv.files["/video.mp4"])

    def test_cookies_reach_only_their_host(self):
        """The jar goes over stdin; fastdl sends each cookie only where it belongs, also after a
        redirect to another host name. fastdl's requests are the ones with a Range header."""
        import http.server

        body = os.urandom(100_000)
        seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.headers.get("Host"), self.path, self.headers.get("Range"),
                             self.headers.get("Cookie")))
                if self.path == "/r.mp4":
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{port}/c.mp4")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = serve(Handler)
        port = srv.server_address[1]
        try:
            jar = os.path.join(self.dir, "cookies.txt")
            with open(jar, "w") as f:
                f.write("# Netscape HTTP Cookie File\n"
                        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tlocal-secret\n"
                        "127.0.0.1\tFALSE\t/private/\tFALSE\t0\tpriv\tp\n"
                        ".example.com\tTRUE\t/\tFALSE\t0\tother\tx\n")
            r = self.ytdlp("--downloader", "fastdl", "--cookies", jar, "-o", "c.mp4", f"http://127.0.0.1:{port}/r.mp4")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("--cookies -", r.stdout + r.stderr, "the jar goes over stdin")
            with open(os.path.join(self.dir, "c.mp4"), "rb") as f:
                self.assertEqual(f.read(), body)
            fastdl = [s for s in seen if s[2] is not None]
            self.assertTrue(fastdl, seen)
            for host, path, _, cookie in fastdl:
                if host.startswith("127.0.0.1"):
                    self.assertEqual(cookie, "sid=local-secret", (host, path))
                else:
                    self.assertIsNone(cookie, f"cookie sent to {host} after a redirect")
            self.assertTrue(any(h.startswith("localhost") for h, *_ in fastdl), "the redirect was followed")
        finally:
            srv.shutdown()
            srv.server_close()

    def test_hls_fragments_are_delegated_to_fastdl(self):
        """Local HLS playlists (plain, EXT-X-BYTERANGE, AES-128): yt-dlp hands the fragment list to
        fastdl (--fragments), joins the pieces, and the result is the served bytes in order."""
        import http.server

        segments = [os.urandom(50_000 + i * 1000) for i in range(12)]
        whole = b"".join(segments)
        files = {f"/seg{i}.ts": seg for i, seg in enumerate(segments)}
        files["/all.ts"] = whole
        plain = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        plain += "".join(f"#EXTINF:2.0,\nseg{i}.ts\n" for i in range(len(segments)))
        plain += "#EXT-X-ENDLIST\n"
        ranged = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        offset = 0
        for seg in segments:
            ranged += f"#EXTINF:2.0,\n#EXT-X-BYTERANGE:{len(seg)}@{offset}\nall.ts\n"
            offset += len(seg)
        ranged += "#EXT-X-ENDLIST\n"
        files["/plain.m3u8"] = plain.encode()
        # Fragment 5 does not exist on the server.
        files["/gap.m3u8"] = plain.replace("seg5.ts", "missing.ts").encode()
        files["/ranged.m3u8"] = ranged.encode()
        # AES-128: every segment encrypted (CBC, PKCS#7) with one key and an explicit IV.
        from Cryptodome.Cipher import AES
        from Cryptodome.Util.Padding import pad
        key, iv = os.urandom(16), os.urandom(16)
        files["/key.bin"] = key
        encrypted = plain.replace("#EXT-X-MEDIA-SEQUENCE:0\n",
                                  f'#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x{iv.hex()}\n')
        encrypted = encrypted.replace("seg", "enc")
        for i, seg in enumerate(segments):
            files[f"/enc{i}.ts"] = AES.new(key, AES.MODE_CBC, iv).encrypt(pad(seg, 16))
        files["/aes.m3u8"] = encrypted.encode()
        ranges_seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                if rng and self.path == "/all.ts":
                    ranges_seen.append(rng)
                    start, end = rng.split("=")[1].split("-")
                    start, end = int(start), int(end) if end else len(body) - 1
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                    body = body[start:end + 1]
                else:
                    self.send_response(200)
                ctype = "application/vnd.apple.mpegurl" if self.path.endswith(".m3u8") else "video/mp2t"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = serve(Handler)
        port = srv.server_address[1]
        try:
            # Plain and BYTERANGE fragments are joined by fastdl; encrypted ones are written one
            # file each and decrypted and joined by yt-dlp.
            for name, how in (("plain", "joining"), ("ranged", "joining"), ("aes", "one file per fragment")):
                out = f"{name}.ts"
                r = self.ytdlp("--downloader", "fastdl", "-N", "4", "--fixup", "never", "-o", out,
                               f"http://127.0.0.1:{port}/{name}.m3u8")
                self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
                self.assertIn("Fragment downloads will be delegated to fastdl", r.stdout + r.stderr)
                self.assertIn("--fragments=", r.stdout + r.stderr)
                self.assertIn(f"[fastdl] {how}", r.stdout + r.stderr)
                with open(os.path.join(self.dir, out), "rb") as f:
                    self.assertEqual(f.read(), whole, f"{name}: joined pieces differ from the served bytes")
                self.assertIn("(frag 12/12)", r.stdout, "yt-dlp showed fragment progress")
            # `--downloader "dash,m3u8:fastdl"`: fastdl for fragments, yt-dlp's own for the rest.
            r = self.ytdlp("--downloader", "dash,m3u8:fastdl", "-N", "4", "--fixup", "never", "-o", "proto.ts",
                           f"http://127.0.0.1:{port}/plain.m3u8")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Fragment downloads will be delegated to fastdl", r.stdout + r.stderr)
            with open(os.path.join(self.dir, "proto.ts"), "rb") as f:
                self.assertEqual(f.read(), whole)
            os.remove(os.path.join(self.dir, "proto.ts"))
            r = self.ytdlp("--downloader", "dash,m3u8:fastdl", "-o", "direct.mp4", self.srv.url("/video.mp4"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("Invoking fastdl downloader", r.stdout + r.stderr)
            self.assertIn("Invoking http downloader", r.stdout + r.stderr)
            os.remove(os.path.join(self.dir, "direct.mp4"))
            # A missing piece: skipped by default (yt-dlp's semantics), fatal when asked.
            r = self.ytdlp("--downloader", "fastdl", "-N", "4", "--fixup", "never", "-o", "gap.ts",
                           f"http://127.0.0.1:{port}/gap.m3u8")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("skipping fragment 5", (r.stdout + r.stderr).lower())  # counted from 0
            with open(os.path.join(self.dir, "gap.ts"), "rb") as f:
                self.assertEqual(f.read(), b"".join(seg for i, seg in enumerate(segments) if i != 5))
            os.remove(os.path.join(self.dir, "gap.ts"))
            r = self.ytdlp("--downloader", "fastdl", "--abort-on-unavailable-fragment", "--fragment-retries", "1",
                           "--fixup", "never",
                           "-o", "gap2.ts", f"http://127.0.0.1:{port}/gap.m3u8")
            self.assertNotEqual(r.returncode, 0, "the missing piece aborts the download")
            self.assertFalse(os.path.exists(os.path.join(self.dir, "gap2.ts")))
            for leftover in os.listdir(self.dir):
                if leftover.startswith("gap2"):
                    os.remove(os.path.join(self.dir, leftover))
            # BYTERANGE: end is exclusive in yt-dlp, inclusive in the Range header.
            self.assertIn(f"bytes=0-{len(segments[0]) - 1}", ranges_seen)
            self.assertEqual(sorted(os.listdir(self.dir)), ["aes.ts", "plain.ts", "ranged.ts"],
                             "no pieces left behind")
        finally:
            srv.shutdown()
            srv.server_close()

    def test_interrupted_run_resumes(self):
        """Ctrl-C (SIGINT to the process group, as a terminal sends it) stops yt-dlp and fastdl;
        the next yt-dlp run resumes instead of starting over, and the file is right."""
        import signal
        import time

        srv = Server("--file", "/slow.mp4=8M", "--rate", "1M")
        try:
            cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "--downloader", "fastdl",
                   "--downloader-args", "fastdl:-x 2", "-o", "slow.mp4", srv.url("/slow.mp4")]
            proc = subprocess.Popen(cmd, cwd=self.dir, env=ENV, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            # Interrupt once fastdl has saved progress (however long yt-dlp takes to start).
            deadline = time.time() + 30
            while not any(f.endswith(".fastdl") for f in os.listdir(self.dir)) and time.time() < deadline:
                time.sleep(0.05)
            self.assertTrue(any(f.endswith(".fastdl") for f in os.listdir(self.dir)), os.listdir(self.dir))
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
            r = self.ytdlp("--downloader", "fastdl", "-o", "slow.mp4", srv.url("/slow.mp4"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("[fastdl] Resuming at byte", r.stdout)
            self.assertEqual(sha256(os.path.join(self.dir, "slow.mp4")), srv.files["/slow.mp4"])
        finally:
            srv.stop()

    def test_interrupted_hls_join_resumes(self):
        """Ctrl-C during an HLS download that fastdl joins; the next yt-dlp run goes on after the
        last fragment saved, and the joined file is the served bytes."""
        import signal
        import time

        srv = Server("--files", "/s/f=64x128K", "--hls", "/v.m3u8=/s/f:64", "--rate", "1M")
        try:
            args = ["--downloader", "fastdl", "-N", "2", "--fixup", "never", "-o", "v.ts", srv.url("/v.m3u8")]
            proc = subprocess.Popen([sys.executable, "-m", "yt_dlp", "--no-config", *args], cwd=self.dir, env=ENV,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.time() + 30
            state = os.path.join(self.dir, "v.ts.part.part.fastdl")
            while not os.path.exists(state) and time.time() < deadline:
                time.sleep(0.05)
            self.assertTrue(os.path.exists(state), os.listdir(self.dir))
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "v.ts")))
            r = self.ytdlp(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"\[fastdl\] resuming at piece [1-9]\d* of 64")
            self.assertEqual(sha256(os.path.join(self.dir, "v.ts")), srv.files["/v.m3u8"])
        finally:
            srv.stop()

    def test_dash_from_info_json_is_delegated(self):
        """A DASH format loaded with --load-info-json (no extraction request): yt-dlp resolves
        fragment_base_url + path and hands the pieces to fastdl."""
        import functools
        import http.server
        import json

        srv_dir = os.path.join(self.dir, "srv")
        os.makedirs(srv_dir)
        segments = [os.urandom(40_000 + i) for i in range(8)]
        for i, seg in enumerate(segments):
            with open(os.path.join(srv_dir, f"seg{i}.m4s"), "wb") as f:
                f.write(seg)
        handler = functools.partial(QuietHandler, directory=srv_dir)
        srv = serve(handler)
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        info = {"id": "dash", "title": "dash", "ext": "mp4", "extractor": "generic", "extractor_key": "Generic",
                "webpage_url": base + "m.mpd", "original_url": base + "m.mpd",
                "formats": [{"format_id": "v", "url": base + "m.mpd", "manifest_url": base + "m.mpd", "ext": "mp4",
                             "protocol": "http_dash_segments", "fragment_base_url": base,
                             "fragments": [{"path": f"seg{i}.m4s"} for i in range(8)],
                             "vcodec": "avc1", "acodec": "none"}]}
        with open(os.path.join(self.dir, "d.info.json"), "w") as f:
            json.dump(info, f)
        try:
            r = self.ytdlp("--load-info-json", "d.info.json", "--downloader", "fastdl", "-N", "4",
                           "--fixup", "never", "-o", "dash.mp4")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("[dashsegments] Fragment downloads will be delegated to fastdl", r.stdout)
            with open(os.path.join(self.dir, "dash.mp4"), "rb") as f:
                self.assertEqual(f.read(), b"".join(segments))
        finally:
            srv.shutdown()
            srv.server_close()

    def test_bestvideo_bestaudio_are_downloaded_by_fastdl_and_merged_by_ffmpeg(self):
        """Two formats from --load-info-json: each goes through fastdl into yt-dlp's .fID file
        (kept with -k and compared with the served bytes), then ffmpeg merges them."""
        import functools
        import http.server
        import json

        srv_dir = os.path.join(self.dir, "srv")
        os.makedirs(srv_dir)
        ffmpeg = ["ffmpeg", "-loglevel", "error", "-f", "lavfi"]
        subprocess.run(ffmpeg + ["-i", "testsrc=size=160x120:rate=10", "-t", "3", "-c:v", "mpeg4",
                                 os.path.join(srv_dir, "v.mp4")], check=True)
        subprocess.run(ffmpeg + ["-i", "sine=frequency=440", "-t", "3", "-c:a", "aac",
                                 os.path.join(srv_dir, "a.m4a")], check=True)
        handler = functools.partial(QuietHandler, directory=srv_dir)
        srv = serve(handler)
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        info = {"id": "av", "title": "av", "ext": "mp4", "extractor": "generic", "extractor_key": "Generic",
                "webpage_url": base, "original_url": base,
                "formats": [{"format_id": "v", "url": base + "v.mp4", "ext": "mp4", "protocol": "http",
                             "vcodec": "mp4v", "acodec": "none", "width": 160, "height": 120},
                            {"format_id": "a", "url": base + "a.m4a", "ext": "m4a", "protocol": "http",
                             "vcodec": "none", "acodec": "mp4a"}]}
        with open(os.path.join(self.dir, "av.info.json"), "w") as f:
            json.dump(info, f)
        try:
            r = self.ytdlp("--load-info-json", "av.info.json", "--downloader", "fastdl", "-f", "bv+ba",
                           "-k", "--merge-output-format", "mkv", "-o", "merged.%(ext)s")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual((r.stdout + r.stderr).count("Invoking fastdl downloader"), 2, r.stderr)
            self.assertIn("[Merger] Merging formats into", r.stdout)
            for part, served in (("merged.fv.mp4", "v.mp4"), ("merged.fa.m4a", "a.m4a")):
                self.assertEqual(sha256(os.path.join(self.dir, part)), sha256(os.path.join(srv_dir, served)))
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                                    os.path.join(self.dir, "merged.mkv")], capture_output=True, text=True, check=True)
            self.assertEqual(sorted(probe.stdout.split()), ["audio", "video"])
        finally:
            srv.shutdown()
            srv.server_close()

    def test_startup_hook_stays_cheap(self):
        """The .pth runs at every Python start-up: it must load the hook and nothing heavy (no
        yt-dlp, no subprocess or json, not the downloader module itself)."""
        r = subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sorted(sys.modules)))"],
                           env=ENV, capture_output=True, text=True, check=True)
        loaded = set(r.stdout.split())
        self.assertIn("yt_dlp_fastdl._hook", loaded)
        for heavy in ("yt_dlp", "yt_dlp_fastdl._fd", "subprocess", "json", "importlib.abc"):
            self.assertNotIn(heavy, loaded)

    def test_missing_binary_is_reported_once(self):
        env = dict(ENV, PATH=os.path.dirname(sys.executable))
        cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "--downloader", "fastdl", "-o", "m.mp4",
               self.srv.url("/video.mp4")]
        r = subprocess.run(cmd, cwd=self.dir, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.stderr.count("fastdl binary was not found"), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
