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


class PluginFolderTests(unittest.TestCase):
    """The standalone yt-dlp builds have no site-packages: the plugin zip in a plugin folder, with
    yt-dlp itself in an environment that does not have this package."""

    def test_plugin_zip_in_a_plugin_folder(self):
        work = tempfile.mkdtemp(prefix="fastdl-plugin-dir-")
        env = dict(os.environ, UV_CACHE_DIR=os.path.join(work, "uv-cache"))
        venv = os.path.join(work, "venv")
        for cmd in (["uv", "venv", "-q", venv],
                    ["uv", "pip", "install", "-q", "--python", os.path.join(venv, "bin", "python"), YTDLP]):
            r = subprocess.run([os.path.join(TOOLS, cmd[0]), *cmd[1:]], env=env, capture_output=True,
                               text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
        python = os.path.join(venv, "bin", "python")
        r = subprocess.run([python, "-c", "import yt_dlp_fastdl"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0, "the package must not be installed here")
        plugins = os.path.join(work, "plugins")
        sys.path.insert(0, PACKAGE)
        import plugin_zip

        plugin_zip.build(os.path.join(plugins, "yt-dlp-fastdl.zip"))
        srv = Server("--file", "/p.mp4=2M", "--file", "/q.mp4=1M")
        try:
            run_env = dict(os.environ, PATH=os.pathsep.join([BIN_DIR, "/usr/bin", "/bin"]))
            out = os.path.join(work, "p.mp4")
            r = subprocess.run([python, "-m", "yt_dlp", "--no-config", "-v", "--plugin-dirs", plugins,
                                "--downloader", "fastdl-curl", "-o", out, srv.url("/p.mp4")],
                               env=run_env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Invoking fastdl downloader", r.stderr + r.stdout)
            self.assertEqual(sha256(out), srv.files["/p.mp4"])
            # Concurrency through the post-processor switch works from the folder too.
            r = subprocess.run([python, "-m", "yt_dlp", "--no-config", "-v", "--plugin-dirs", plugins,
                                "--downloader", "fastdl-curl", "--use-postprocessor", "FastdlConcurrent:entries=2",
                                "-o", os.path.join(work, "%(id)s.%(ext)s"), srv.url("/p.mp4"), srv.url("/q.mp4")],
                               env=run_env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("[fastdl] up to 2 entries at once", r.stderr)
        finally:
            srv.stop()
