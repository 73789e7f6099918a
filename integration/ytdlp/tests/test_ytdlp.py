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
            _, path, size, digest = line.split()
            self.files[path] = digest

    def url(self, path):
        return f"http://{self.addr}{path}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


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
        import threading

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

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
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

    def test_missing_binary_is_reported_once(self):
        env = dict(ENV, PATH=os.path.dirname(sys.executable))
        cmd = [sys.executable, "-m", "yt_dlp", "--no-config", "--downloader", "fastdl", "-o", "m.mp4",
               self.srv.url("/video.mp4")]
        r = subprocess.run(cmd, cwd=self.dir, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.stderr.count("fastdl binary was not found"), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
