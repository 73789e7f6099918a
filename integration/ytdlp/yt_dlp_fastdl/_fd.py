"""fastdl as a yt-dlp external downloader (`--downloader fastdl`).

`FastdlFD` turns what yt-dlp knows about a download into fastdl flags, hands the cookie jar over
on stdin (scoped by fastdl per request and redirect, never a flat Cookie header), and turns
fastdl's JSON progress lines (stderr) into yt-dlp progress-hook calls, so yt-dlp's bar,
`--progress-template` and API `progress_hooks` all work.
"""
import io
import json
import os
import shutil
import subprocess
import threading

from . import _concurrent

_WARNED = False


class _OutsideFilesize(Exception):
    """fastdl did not download a file outside --max-filesize/--min-filesize (exit code 3)."""


def register(external):
    """Adds FastdlFD to yt-dlp's registry of external downloaders (idempotent)."""
    if "fastdl" in external._BY_NAME:
        return
    external._BY_NAME["fastdl"] = _make_class(external)


def _make_class(external):
    from yt_dlp.utils import Popen

    class FastdlFD(external.ExternalFD):
        # The *_frag_urls protocols make yt-dlp's HLS/DASH downloaders delegate fragment lists.
        SUPPORTED_PROTOCOLS = ("http", "https", "m3u8_frag_urls", "dash_frag_urls")
        AVAILABLE_OPT = "--version"
        # `-o -`: fastdl streams to its stdout, which yt-dlp's own stdout is.
        SUPPORTED_FEATURES = (external.Features.TO_STDOUT,)
        _CAPTURE_STDERR = False

        @classmethod
        def available(cls, path=None):
            # `fastdl-curl` is this downloader's name for the standalone builds, not a path.
            exe = cls.EXE_NAME if path in (None, cls.get_basename(), "fastdl-curl") else path
            if shutil.which(exe) is None:
                global _WARNED
                if not _WARNED:
                    _WARNED = True
                    import sys

                    print(f"WARNING: [fastdl] the fastdl binary was not found on PATH ({exe}); "
                          "yt-dlp will use its own downloader", file=sys.stderr)
                return False
            cls.exe = exe
            return exe

        @classmethod
        def supports(cls, info_dict):
            # POST bodies are never handed to external downloaders.
            return not info_dict.get("request_data") and super().supports(info_dict)

        @staticmethod
        def supports_manifest(manifest):
            # HlsFD delegates only when this is true (the base returns None).
            return True

        def real_download(self, filename, info_dict):
            self._final_filename = filename
            # HLS/DASH delegation attaches only the screen reporter: re-attach the API hooks.
            for ph in getattr(self.ydl, "_progress_hooks", []):
                if ph not in self._progress_hooks:
                    self.add_progress_hook(ph)
            try:
                return super().real_download(filename, info_dict)
            except _OutsideFilesize as e:
                # As yt-dlp's own downloader: a message, no error, nothing downloaded.
                self.to_screen(f"[download] {e}. Aborting.")
                return False

        def _call_downloader(self, tmpfilename, info_dict):
            code = self._run(tmpfilename, info_dict)
            if code == 3:  # fastdl's exit code for --max/--min-filesize
                raise _OutsideFilesize(getattr(self, "_last_error", "File size outside the limits"))
            return code

        def _make_cmd(self, tmpfilename, info_dict):
            cmd = [self.exe, "--progress", "json", "--cookies", "-", "--overwrite"]
            for key, val in (info_dict.get("http_headers") or {}).items():
                cmd += ["--header", f"{key}: {val}"]
            shared = _concurrent.state(self.ydl)
            rate = self.params.get("ratelimit")
            if shared is not None:
                # Several downloads run at once: the limit is their total, and so is the host's
                # connection budget (fastdl's default, 16).
                if rate:
                    cmd += ["--limit-rate", str(max(1, int(rate) // shared.slots()))]
                cmd += ["--max-connections-per-host", str(max(1, 16 // shared.slots()))]
            elif rate:
                cmd += ["--limit-rate", str(int(rate))]
            chunk = self.params.get("http_chunk_size") or (info_dict.get("downloader_options") or {}).get(
                "http_chunk_size")
            if chunk:
                cmd += ["--http-chunk-size", str(int(chunk))]
            cmd += self._option("--max-filesize", "max_filesize")
            cmd += self._option("--min-filesize", "min_filesize")
            retries = self.params.get("retries")
            if retries is not None:
                cmd += ["--retries", "inf" if retries in (float("inf"), "inf", "infinite") else str(int(retries))]
            cmd += self._option("--proxy", "proxy")
            cmd += self._option("--source-address", "source_address")
            cmd += self._valueless_option("--no-check-certificate", "nocheckcertificate")
            cmd += self._valueless_option("--remote-time", "updatetime")
            if self.params.get("continuedl") is False:
                cmd += ["--no-continue"]
            cmd += self._valueless_option("--verbose", "verbose")
            # The user's own knobs (-x, --chunk-size ...), before the flags that must win.
            cmd += self._configuration_args()
            if "fragments" in info_dict:
                return cmd + self._fragment_args(tmpfilename, info_dict)
            cmd += [f"--output={tmpfilename}", "--", info_dict["url"]]
            return cmd

        def _run(self, tmpfilename, info_dict):
            """Unencrypted fragments are joined by fastdl straight into `tmpfilename` as they
            arrive, so yt-dlp's own pass (read every piece back, write it again) is skipped.
            Encrypted ones (or --keep-fragments) go to one file each, for yt-dlp to decrypt."""
            self._joined = "fragments" in info_dict and self._can_join(info_dict)
            if "fragments" in info_dict:
                self.write_debug(f"[fastdl] joining {len(info_dict['fragments'])} fragments into {tmpfilename}"
                                 if self._joined else "[fastdl] one file per fragment, for yt-dlp to decrypt")
            if not self._joined:
                return super()._call_downloader(tmpfilename, info_dict)
            cmd = [external.encodeArgument(a) for a in self._make_cmd(tmpfilename, info_dict)]
            self._debug_cmd(cmd)
            _, _, code = self._call_process(cmd, info_dict)
            if code == 0:
                self.try_remove(f"{tmpfilename}.frag.urls")
            return code

        def _can_join(self, info_dict):
            # YTDLP_FASTDL_JOIN=0 leaves the joining to yt-dlp (the benchmark compares the two).
            if self.params.get("keep_fragments") or os.environ.get("YTDLP_FASTDL_JOIN") == "0":
                return False
            return all((frag.get("decrypt_info") or {}).get("METHOD", "NONE") == "NONE"
                       for frag in info_dict["fragments"])

        def _fragment_args(self, tmpfilename, info_dict):
            """Writes the structured job (never a line-based list: CVE-2026-50574) where
            ExternalFD deletes it afterwards, and the flags that go with it."""
            joined = getattr(self, "_joined", False)
            pieces = []
            for i, frag in enumerate(info_dict["fragments"]):
                rng = frag.get("byte_range") or None
                piece = {
                    "url": frag["url"],
                    "byte_range": {"start": rng["start"], "end": rng["end"]} if rng else None,
                }
                if not joined:
                    piece["out"] = f"{tmpfilename}-Frag{i}"
                pieces.append(piece)
            job = f"{tmpfilename}.frag.urls"
            document = {"version": 1, "fragments": pieces}
            if joined:
                document["output"] = tmpfilename
            with open(job, "w", encoding="utf-8") as f:
                json.dump(document, f)
            self._fragment_count = len(pieces)
            cmd = [f"--fragments={job}"]
            n = self.params.get("concurrent_fragment_downloads") or 1
            if n > 1:
                cmd += ["--concurrent-fragments", str(n)]
            retries = self.params.get("fragment_retries")
            if retries is not None:
                cmd += ["--fragment-retries",
                        "inf" if retries in (float("inf"), "inf", "infinite") else str(int(retries))]
            if not self.params.get("skip_unavailable_fragments", True):
                cmd += ["--abort-on-unavailable-fragment"]
            return cmd

        def _call_process(self, cmd, info_dict):
            jar = io.StringIO()
            self.ydl.cookiejar._really_save(jar, True, True)
            shared = _concurrent.state(self.ydl)
            # One of several at once: stopped by the plugin (_concurrent.interrupt). Alone, it
            # shares yt-dlp's console or terminal and gets the user's Ctrl-C directly.
            group = _concurrent.CHILD_FLAGS if shared is not None else {}
            proc = Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                         **group)
            if shared is not None:
                shared.started(proc)

            def feed():
                try:
                    proc.stdin.write(jar.getvalue())
                    proc.stdin.close()
                except OSError:
                    pass

            # A large jar must not deadlock against a full stderr pipe.
            threading.Thread(target=feed, daemon=True).start()
            try:
                for line in proc.stderr:
                    self._handle_line(line, info_dict)
                proc.wait()
            finally:
                if shared is not None:
                    with shared.lock:
                        shared.children.discard(proc)
            return "", "", proc.returncode

        def _handle_line(self, line, info_dict):
            try:
                event = json.loads(line)
            except ValueError:
                self.to_stderr(line.rstrip("\n"))
                return
            kind = event.get("event")
            if getattr(self, "_fragment_count", None) and not getattr(self, "_joined", False):
                self._fragment_progress(kind, event, info_dict)
            elif kind == "progress":
                status = {
                    "status": "downloading",
                    "downloaded_bytes": event.get("downloaded_bytes"),
                    "total_bytes": event.get("total_bytes"),
                    "total_bytes_estimate": event.get("total_bytes_estimate"),
                    "speed": event.get("speed"),
                    "eta": event.get("eta"),
                    "elapsed": event.get("elapsed"),
                    "filename": getattr(self, "_final_filename", event.get("filename")),
                    "tmpfilename": event.get("filename"),
                    "ctx_id": info_dict.get("ctx_id"),
                }
                if event.get("fragment_count"):
                    status["fragment_index"] = event.get("fragment_index")
                    status["fragment_count"] = event["fragment_count"]
                self._hook_progress(status, info_dict)
            if kind == "start" and event.get("resumed_bytes"):
                self.to_screen(f"[fastdl] Resuming at byte {event['resumed_bytes']}")
            if kind == "log":
                message = f"[fastdl] {event.get('message', '')}"
                if event.get("level") == "warning":
                    self.report_warning(message)
                elif event.get("level") == "debug":
                    self.write_debug(message)
                else:
                    self.to_screen(message)
            elif kind == "error":
                self._last_error = event.get("message", "")
                if event.get("exit_code") != 3:
                    self.to_stderr(f"[fastdl] {self._last_error}")

        def _fragment_progress(self, kind, event, info_dict):
            """One progress dict for all pieces: `(frag i/n)` in yt-dlp's line."""
            state = self.__dict__.setdefault("_frags", {"done": 0, "bytes": 0, "live": {}, "speed": None})
            if kind == "progress":
                state["live"][event.get("id")] = event.get("downloaded_bytes") or 0
                # Pieces are many and short: the sum of their speeds is the download's speed.
                state.setdefault("speeds", {})[event.get("id")] = event.get("speed") or 0
                state["speed"] = sum(state["speeds"].values()) or state["speed"]
            elif kind == "result" and event.get("status") in ("done", "skipped"):
                state["live"].pop(event.get("id"), None)
                state.get("speeds", {}).pop(event.get("id"), None)
                state["done"] += 1
                state["bytes"] += event.get("bytes") or 0
            else:
                return
            done, count = state["done"], self._fragment_count
            downloaded = state["bytes"] + sum(state["live"].values())
            self._hook_progress({
                "status": "downloading",
                "downloaded_bytes": downloaded,
                # Average size of the finished pieces times their number: steady, unlike one that
                # counts half-downloaded pieces.
                "total_bytes_estimate": state["bytes"] * count // done if done else None,
                "fragment_index": done,
                "fragment_count": count,
                "elapsed": event.get("elapsed"),
                "speed": state["speed"],
                "eta": None,
                "filename": getattr(self, "_final_filename", None),
                "tmpfilename": None,
                "ctx_id": info_dict.get("ctx_id"),
            }, info_dict)

    return FastdlFD
