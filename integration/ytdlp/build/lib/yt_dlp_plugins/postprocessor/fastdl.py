"""Registers fastdl for API users whose interpreter skipped the .pth (`python -S`)."""
import yt_dlp.downloader.external as _external

from yt_dlp_fastdl import register

register(_external)
