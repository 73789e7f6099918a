"""Registers fastdl with yt-dlp the moment yt-dlp imports its external-downloader module.

Loaded by `yt_dlp_fastdl.pth` at interpreter start. It never imports yt-dlp itself (a `.pth`
must stay cheap: well under a millisecond); it only waits for `yt_dlp.downloader.external`.
`YTDLP_FASTDL_DISABLE=1` turns it off.
"""
import os
import sys

_TARGET = "yt_dlp.downloader.external"


class _FastdlImportHook:
    """A meta path finder (the protocol needs only `find_spec`; subclassing importlib.abc's
    would cost an import at every start-up)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        # Let the other finders locate the real module, then run our registration after its body.
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
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
            from yt_dlp_fastdl import register

            register(module)

        loader.exec_module = exec_module
        return spec


def _install():
    if os.environ.get("YTDLP_FASTDL_DISABLE") == "1":
        return
    if _TARGET in sys.modules:  # yt-dlp was imported already
        from yt_dlp_fastdl import register

        register(sys.modules[_TARGET])
        return
    if not any(isinstance(f, _FastdlImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _FastdlImportHook())


_install()
