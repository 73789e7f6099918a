"""yt-dlp plugins of fastdl, for what yt-dlp's plugin system can reach:

* importing this module registers `--downloader fastdl` (for API users whose interpreter skipped
  the .pth, `python -S`), and `--downloader fastdl-curl` for the standalone yt-dlp builds, which
  load plugins only from plugin folders and check the downloader's name before they do;
* `--use-postprocessor "FastdlConcurrent:entries=N;formats=0|1"` downloads up to N entries (and
  an entry's formats) at once (yt_dlp_fastdl/_concurrent.py, docs/ytdlp.md).
"""
import os
import sys

import yt_dlp.downloader.external as _external
from yt_dlp.postprocessor.common import PostProcessor

try:
    import yt_dlp_fastdl  # noqa: F401 - installed beside yt-dlp (pip, pipx, uv)
except ImportError:
    # A plugin folder or zip (the standalone yt-dlp builds): yt_dlp_fastdl sits beside
    # yt_dlp_plugins in it.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from yt_dlp_fastdl import register
from yt_dlp_fastdl import _concurrent

register(_external)
# The standalone builds check --downloader before they load plugins, and know only their own
# downloaders then: "fastdl-curl" passes that check (it names curl) and runs fastdl.
_external._BY_NAME.setdefault("fastdl-curl", _external._BY_NAME["fastdl"])
# YTDLP_FASTDL_CONCURRENT for builds without the .pth import hook.
_concurrent.patch_init(sys.modules["yt_dlp.YoutubeDL"].YoutubeDL)


class FastdlConcurrentPP(PostProcessor):
    """Turns on concurrent entries for the YoutubeDL it is created for; as a post-processor
    it does nothing."""

    def __init__(self, downloader=None, entries="3", formats="1", **kwargs):
        super().__init__(downloader)
        if downloader is not None:
            try:
                n = int(entries)
            except ValueError:
                downloader.report_warning(f"[fastdl] FastdlConcurrent: entries={entries!r} is not a number")
                return
            _concurrent.enable(downloader, n, str(formats).lower() not in ("0", "false", "no"))

    def run(self, info):
        return [], info
