"""yt-dlp plugins of fastdl, for what yt-dlp's plugin system can reach:

* importing this module registers `--downloader fastdl` (for API users whose interpreter skipped
  the .pth, `python -S`, and for yt-dlp builds that load plugins only from plugin folders);
* `--use-postprocessor "FastdlConcurrent:entries=N;formats=0|1"` downloads up to N entries (and
  an entry's formats) at once (yt_dlp_fastdl/_concurrent.py, docs/ytdlp.md).
"""
import yt_dlp.downloader.external as _external
from yt_dlp.postprocessor.common import PostProcessor

from yt_dlp_fastdl import register
from yt_dlp_fastdl import _concurrent

register(_external)


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
