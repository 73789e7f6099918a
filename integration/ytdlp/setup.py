"""Builds the wheel with `yt_dlp_fastdl.pth` at its root, so pip puts it in site-packages.

The .pth line runs when Python starts and installs an import hook; stock yt-dlp checks
`--downloader NAME` before it loads plugins, so registration must happen at import time.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithPth(build_py):
    def run(self):
        super().run()
        shutil.copy(os.path.join(os.path.dirname(__file__) or ".", "yt_dlp_fastdl.pth"),
                    os.path.join(self.build_lib, "yt_dlp_fastdl.pth"))


setup(cmdclass={"build_py": BuildWithPth})
