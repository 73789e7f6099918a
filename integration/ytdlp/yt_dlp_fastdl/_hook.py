"""Registers fastdl with yt-dlp the moment yt-dlp imports its external-downloader module, and
lets `YTDLP_FASTDL_CONCURRENT` and the `fastdl_concurrent` param reach every YoutubeDL.

Loaded by `yt_dlp_fastdl.pth` at interpreter start. It never imports yt-dlp itself (a `.pth`
must stay cheap: well under a millisecond); it only waits for `yt_dlp.downloader.external` and
`yt_dlp.YoutubeDL`. `YTDLP_FASTDL_DISABLE=1` turns it off.
"""
import os
import sys

_TARGET = "yt_dlp.downloader.external"
_YDL = "yt_dlp.YoutubeDL"


def _after(fullname, module):
    """What to do once one of the watched modules has run."""
    if fullname == _TARGET:
        from yt_dlp_fastdl import register

        register(module)
    elif fullname == _YDL:
        from yt_dlp_fastdl._concurrent import patch_init

        patch_init(module.YoutubeDL)


class _FastdlImportHook:
    """A meta path finder (the protocol needs only `find_spec`; subclassing importlib.abc's
    would cost an import at every start-up)."""

    def __init__(self):
        self.pending = {_TARGET, _YDL}

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)
        if not self.pending:
            sys.meta_path.remove(self)
        # Let the other finders locate the real module, then run ours after its body.
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            _after(fullname, module)

        loader.exec_module = exec_module
        return spec


def _install():
    if os.environ.get("YTDLP_FASTDL_DISABLE") == "1":
        return
    if _TARGET in sys.modules:  # yt-dlp was imported already
        for name in (_TARGET, _YDL):
            if name in sys.modules:
                _after(name, sys.modules[name])
        return
    if not any(isinstance(f, _FastdlImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _FastdlImportHook())


_install()
