"""The platform wheel (integration/wheel, maturin `bindings = "bin"`): one `pip install` brings
the fastdl binary and the yt-dlp plugin, and `yt-dlp --downloader fastdl` works with nothing else
on PATH. Builds the wheel as a user would (`pip wheel`), so it compiles fastdl's dist profile."""
import os
import subprocess
import sys
import tempfile
import unittest

from test_ytdlp import ROOT, Server, sha256


class WheelTests(unittest.TestCase):
    def test_platform_wheel_brings_binary_and_plugin(self):
        work = tempfile.mkdtemp(prefix="fastdl-wheel-")
        wheels = os.path.join(work, "wheels")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels,
                        os.path.join(ROOT, "integration/wheel")], check=True)
        (wheel,) = os.listdir(wheels)
        self.assertRegex(wheel, r"^fastdl-.*-py3-none-(many)?linux.*\.whl$")
        venv = os.path.join(work, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        pip = os.path.join(venv, "bin", "pip")
        subprocess.run([pip, "install", "--quiet", "yt-dlp==2026.10.26", os.path.join(wheels, wheel)], check=True)
        self.assertTrue(os.access(os.path.join(venv, "bin", "fastdl"), os.X_OK), "the binary is a script")
        srv = Server("--file", "/w.mp4=3M")
        try:
            # Only the venv and the system: no target/ directory on PATH.
            env = dict(os.environ, PATH=os.path.join(venv, "bin") + os.pathsep + "/usr/bin:/bin")
            out = os.path.join(work, "w.mp4")
            r = subprocess.run([os.path.join(venv, "bin", "yt-dlp"), "--no-config", "-v", "--downloader", "fastdl",
                                "-o", out, srv.url("/w.mp4")], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Invoking fastdl downloader", r.stderr)
            self.assertIn(os.path.join(venv, "bin"), subprocess.run(
                ["sh", "-c", "command -v fastdl"], env=env, capture_output=True, text=True).stdout)
            self.assertEqual(sha256(out), srv.files["/w.mp4"])
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
