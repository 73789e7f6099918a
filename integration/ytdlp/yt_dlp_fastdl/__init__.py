"""fastdl as a yt-dlp external downloader (`--downloader fastdl`): the downloader class is in
`_fd`, the import hook the `.pth` installs in `_hook`.

This file stays tiny: Python imports it at every start-up (through the `.pth`), so it imports
nothing; `register` loads the downloader only when yt-dlp itself is being imported.
"""

__all__ = ["register"]


def register(external):
    """Adds FastdlFD to yt-dlp's registry of external downloaders (idempotent)."""
    from ._fd import register as _register

    _register(external)
