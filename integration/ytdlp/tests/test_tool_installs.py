"""The two tool-manager routes docs/ytdlp.md promises: `uv tool install yt-dlp --with
./integration/ytdlp` and `pipx inject yt-dlp ./integration/ytdlp`. Each installs yt-dlp (pinned,
from PyPI) in its own isolated environment with this package beside it; the test then runs that
environment's `yt-dlp --downloader fastdl` against a local server and checks the bytes.

uv and pipx come from the test venv (integration/test.sh installs them); every directory they
write is a temporary one."""
import os
import subprocess
import sys
import tempfile
import unittest

from test_ytdlp import BIN_DIR, ROOT, Server, sha256

YTDLP = "yt-dlp==2026.10.26"
PACKAGE = os.path.join(ROOT, "integration/ytdlp")
TOOLS = os.path.dirname(sys.executable)


class ToolInstallTests(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="fastdl-tools-")
        self.bin = os.path.join(self.work, "bin")

    def install(self, env, *commands):
        env = dict(os.environ, **env)
        for cmd in commands:
            r = subprocess.run([os.path.join(TOOLS, cmd[0]), *cmd[1:]], env=env, capture_output=True,
                               text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)

    def downloads_with_fastdl(self):
        """The installed yt-dlp (found in self.bin) fetches a file through fastdl."""
        srv = Server("--file", "/t.mp4=2M")
        try:
            env = dict(os.environ, PATH=os.pathsep.join([self.bin, BIN_DIR, "/usr/bin", "/bin"]))
            out = os.path.join(self.work, "t.mp4")
            r = subprocess.run([os.path.join(self.bin, "yt-dlp"), "--no-config", "-v", "--downloader", "fastdl",
                                "-o", out, srv.url("/t.mp4")], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Invoking fastdl downloader", r.stderr)
            self.assertEqual(sha256(out), srv.files["/t.mp4"])
        finally:
            srv.stop()

    def test_uv_tool_install_with_the_package(self):
        self.install({"UV_TOOL_DIR": os.path.join(self.work, "tools"), "UV_TOOL_BIN_DIR": self.bin,
                      "UV_CACHE_DIR": os.path.join(self.work, "cache")},
                     ["uv", "tool", "install", YTDLP, "--with", PACKAGE])
        self.downloads_with_fastdl()

    def test_pipx_inject_the_package(self):
        self.install({"PIPX_HOME": os.path.join(self.work, "pipx"), "PIPX_BIN_DIR": self.bin},
                     ["pipx", "install", YTDLP], ["pipx", "inject", "yt-dlp", PACKAGE])
        self.downloads_with_fastdl()


if __name__ == "__main__":
    unittest.main()
