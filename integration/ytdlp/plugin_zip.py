"""Builds the plugin zip for the standalone yt-dlp builds (yt-dlp.exe, yt-dlp_macos, yt-dlp_linux),
which load plugins only from plugin folders:

    python3 integration/ytdlp/plugin_zip.py [OUT.zip]      # default: dist/yt-dlp-fastdl.zip

Put the zip in a yt-dlp plugin folder (`~/.config/yt-dlp/plugins/`, on Windows
`%APPDATA%\\yt-dlp\\plugins\\`, or any folder given to `--plugin-dirs`), put fastdl on PATH, and run
`yt-dlp --downloader fastdl-curl URL` (docs/ytdlp.md says why the name).
"""
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def build(out):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for package in ("yt_dlp_fastdl", "yt_dlp_plugins"):
            for root, _, files in os.walk(os.path.join(HERE, package)):
                for name in sorted(files):
                    if name.endswith(".py"):
                        path = os.path.join(root, name)
                        z.write(path, os.path.relpath(path, HERE))
    return out


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.getcwd(), "dist", "yt-dlp-fastdl.zip")))
