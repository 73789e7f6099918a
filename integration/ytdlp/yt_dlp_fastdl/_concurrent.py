"""Several yt-dlp entries, and the formats of one entry, downloaded at once (docs/ytdlp.md).

Off by default. On with `--use-postprocessor "FastdlConcurrent:entries=N;formats=0|1"`, with
`YTDLP_FASTDL_CONCURRENT=N` (and `YTDLP_FASTDL_CONCURRENT_FORMATS=0|1`), or for API users with
the `YoutubeDL` params `fastdl_concurrent` (N) and `fastdl_concurrent_formats`.

The unit of work is `process_video_result(entry, download=True)`: format selection, the
download, post-processing, the archive record and `after_video` of one entry run on one of N
worker threads, while extraction and the playlist loop stay on the main thread, in order.
Playlist-level work (the updated playlist info JSON, `playlist` post-processors) waits for that
playlist's entries; `download()` returns once every entry has ended. What a naive thread pool
gets wrong is kept as yt-dlp does it sequentially:

* `%(autonumber)s`: each entry's numbers are the ones a sequential run gives it (an entry
  announces how many downloads it makes once its formats are chosen; the next one numbers on
  from there);
* `--max-downloads N`: exactly N, then MaxDownloadsReached as usual;
* `--download-archive`: an id is recorded once; a second entry with the same id waits for the
  first, then finds it in the archive; archive writes are serialised;
* one lock per output file, so two entries never write one file;
* progress hooks are never called at the same time; post-processors (`--exec`, merges) run one at
  a time; `--print` lines come out in playlist order; every message of a worker names its entry;
* `-r/--limit-rate` is shared out: each fastdl gets the limit divided by the downloads that can
  run at once; so is the per-host connection budget;
* entries start in playlist order, each once the one before has passed its checks (see _Turns);
  an error a worker lets through stops the entries after it; running ones finish; the main
  thread raises it where the next entry would have started; Ctrl-C reaches every fastdl child.

The patches rely on yt-dlp internals. `enable` first checks that every patched function still has
what the patch relies on (or, in a frozen build without sources, that the version is one tested
here); if not, it warns once and yt-dlp runs sequentially, unpatched.
"""
import collections
import concurrent.futures
import inspect
import os
import threading

# Versions this module was tested against; a frozen build (no sources to check) must be one.
TESTED_VERSIONS = ("2026.10.26",)

# What each patched function must still contain for the patches to mean what they mean.
_EXPECTED = {
    "process_video_result": ["self.process_info(new_info)", "self._select_formats(formats, format_selector)",
                             "max_downloads_reached = True", "self.run_all_pps('after_video', info_dict)"],
    "_YoutubeDL__process_playlist": ["'updated playlist'", "self.run_all_pps('playlist', ie_result)",
                                     "self.__process_iterable_entry("],
    "process_info": ["self._num_downloads += 1", "info_dict['__real_download'] = False",
                     "partial_success, real_download = self.dl(fname, new_info)",
                     "self.post_process(dl_filename, info_dict, files_to_move)"],
    "prepare_outtmpl": ["self._num_downloads"],
    "record_download_archive": ["archive_file"],
    "download_with_info_file": ["self.process_ie_result"],
}

_warned = False
_local = threading.local()


def _warn(ydl, message):
    global _warned
    if not _warned:
        _warned = True
        ydl.report_warning(f"[fastdl] {message}; downloading one entry at a time")


def _compatible(ydl):
    """None when the patches fit this yt-dlp, else why not."""
    cls = type(ydl)
    for name, snippets in _EXPECTED.items():
        fn = getattr(cls, name, None)
        if fn is None:
            return f"this yt-dlp has no YoutubeDL.{name}"
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            from yt_dlp.version import __version__

            if __version__ in TESTED_VERSIONS:
                continue
            return f"yt-dlp {__version__} is a build without sources and was not tested"
        missing = [s for s in snippets if s not in source]
        if missing:
            return f"YoutubeDL.{name} changed (no {missing[0]!r})"
    return None


def settings_from(params, env=os.environ):
    """(entries, formats) asked for by the params or the environment; entries 0 means off."""
    entries = params.get("fastdl_concurrent") or env.get("YTDLP_FASTDL_CONCURRENT") or 0
    formats = params.get("fastdl_concurrent_formats")
    if formats is None:
        formats = env.get("YTDLP_FASTDL_CONCURRENT_FORMATS", "1") not in ("0", "false", "no")
    try:
        entries = int(entries)
    except (TypeError, ValueError):
        entries = 0
    return max(0, entries), bool(formats)


def patch_init(cls):
    """Makes every new YoutubeDL of `cls` check the params and the environment (settings_from)."""
    if getattr(cls.__init__, "_fastdl", False):
        return
    original = cls.__init__

    def __init__(self, params=None, *args, **kwargs):
        original(self, params, *args, **kwargs)
        entries, formats = settings_from(self.params)
        if entries:
            enable(self, entries, formats)

    __init__._fastdl = True
    __init__.__wrapped__ = original
    cls.__init__ = __init__


def enable(ydl, entries, formats=True):
    """Makes `ydl` download up to `entries` entries (and, with `formats`, an entry's formats) at
    once. Idempotent; does nothing for entries < 2 (formats alone still count) or when the
    patches do not fit this yt-dlp."""
    if entries < 2 and not formats:
        return False
    if state(ydl) is not None:
        ydl._fastdl.resize(entries, formats)
        return True
    why = _compatible(ydl)
    if why:
        _warn(ydl, why)
        return False
    ydl.__dict__["_fastdl_shared_num"] = ydl.__dict__.pop("_num_downloads", 0)
    ydl.__class__ = _subclass(type(ydl))
    ydl._fastdl = _State(ydl, max(1, entries), formats)
    _lock_existing_hooks(ydl)
    _patch_progress_lines()
    ydl.write_debug(f"[fastdl] up to {max(1, entries)} entries at once"
                    f"{', formats at once' if formats else ''}")
    return True


# On Windows a fastdl child of a concurrent run gets its own process group, the only way Ctrl-Break
# can be sent to it alone (the console's Ctrl-C then reaches yt-dlp only, which passes it on).
CHILD_FLAGS = {"creationflags": 0x200} if os.name == "nt" else {}  # CREATE_NEW_PROCESS_GROUP


def interrupt(proc):
    """Asks a fastdl child to save its progress and stop, as Ctrl-C does: SIGINT on POSIX,
    Ctrl-Break on Windows (where SIGINT cannot be sent to another process; fastdl treats both
    alike and exits 130). A child that has just ended is no error."""
    import signal

    try:
        proc.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT)
    except OSError:
        pass


class _Entry:
    """What a worker thread knows about the entry it runs."""

    def __init__(self, seq, ident):
        self.seq = seq
        self.ident = ident
        self.used = 0  # downloads numbered by this entry
        self.stdout = []  # --print lines, released in playlist order
        self.formats = []  # format downloads running at once: (thread, result box)


class _Numbering:
    """`_num_downloads` as a sequential run has it: entry k numbers on from the downloads of the
    entries before it, which each announce their count once their formats are chosen."""

    def __init__(self, start):
        self.start = start
        self.counts = {}
        self.cond = threading.Condition()

    def announce(self, seq, count):
        with self.cond:
            self.counts.setdefault(seq, count)
            self.cond.notify_all()

    def base(self, seq):
        with self.cond:
            self.cond.wait_for(lambda: all(s in self.counts for s in range(seq)))
            return self.start + sum(self.counts[s] for s in range(seq))


class _Turns:
    """Entry k starts once entry k-1 has passed yt-dlp's checks (the archive, `--match-filter`)
    and begun to download, or has ended. So a check that stops the run (`--break-on-existing`,
    `--break-on-reject`, `--max-downloads`, an error with `--abort-on-error`) stops exactly the
    entries a sequential run would not have started; only the downloads themselves overlap."""

    def __init__(self):
        self.open = 0  # entries below this may start
        self.cond = threading.Condition()

    def wait(self, seq, st):
        """False if Ctrl-C came first."""
        with self.cond:
            while not self.cond.wait_for(lambda: self.open >= seq, timeout=0.2):
                if st.interrupted:
                    return False
            return True

    def release(self, seq):
        with self.cond:
            if self.open <= seq:
                self.open = seq + 1
                self.cond.notify_all()


class _State:
    def __init__(self, ydl, entries, formats):
        self.ydl = ydl
        self.formats = formats
        self.entries = entries
        self.pool = concurrent.futures.ThreadPoolExecutor(entries, thread_name_prefix="fastdl-entry")
        self.lock = threading.RLock()  # archive, hooks, post-processors
        self.seq = 0
        self.numbering = _Numbering(0)
        self.turns = _Turns()
        self.error = None
        self.frames = [[]]  # futures of the playlists being processed, innermost last
        self.ids = collections.defaultdict(threading.Lock)
        self.files = collections.defaultdict(threading.Lock)
        self.printed = {}  # seq -> lines, waiting for the entries before
        self.next_print = 0
        self.children = set()  # running fastdl processes, for Ctrl-C
        self.interrupted = False  # Ctrl-C: no fastdl may start any more
        self.depth = 0  # nesting of the main thread's download calls (see _fastdl_outermost)
        self.free_lines = None  # progress lines not in use (one per running download)
        self.lines = None  # the shared progress printer

    def resize(self, entries, formats):
        self.formats = formats
        if entries > self.entries:
            self.entries = entries
            self.pool._max_workers = entries

    def started(self, proc):
        """A fastdl child started; after a Ctrl-C it is stopped at once."""
        with self.lock:
            self.children.add(proc)
            if self.interrupted:
                interrupt(proc)

    def slots(self):
        """Downloads that may run at once."""
        return self.entries * (2 if self.formats else 1)

    def progress_line(self, fd):
        """A line of the shared progress display for the download `fd` starts: one line per
        running download on a terminal, plain lines otherwise."""
        from yt_dlp.minicurses import BreaklineStatusPrinter, MultilineLogger, MultilinePrinter, \
            QuietMultilinePrinter

        with self.lock:
            if self.lines is None:
                n = self.slots()
                out = self.ydl._out_files.out
                tty = hasattr(out, "isatty") and out.isatty()
                if fd.params.get("noprogress"):
                    self.lines = QuietMultilinePrinter()
                elif self.ydl.params.get("logger"):
                    self.lines = MultilineLogger(self.ydl.params["logger"], n)
                elif fd.params.get("progress_with_newline") or not tty:
                    self.lines = BreaklineStatusPrinter(out, n)
                else:
                    self.lines = MultilinePrinter(out, n, not fd.params.get("quiet"))
                colors = self.ydl._allow_colors.out
                self.lines.allow_colors = colors and colors != "no_color"
                self.lines._HAVE_FULLCAP = colors
                self.free_lines = list(range(n))
            line = self.free_lines.pop(0) if self.free_lines else self.slots() - 1
            return _EntryLine(self, line, getattr(_local, "entry", None))


def _on_worker():
    return getattr(_local, "entry", None) is not None


def _subclass(base):
    class FastdlConcurrentYoutubeDL(base):
        # `_num_downloads` per entry: see _Numbering.
        @property
        def _num_downloads(self):
            entry = getattr(_local, "entry", None)
            if entry is None:
                return self.__dict__["_fastdl_shared_num"]
            st = self._fastdl
            return st.numbering.base(entry.seq) + entry.used

        @_num_downloads.setter
        def _num_downloads(self, value):
            entry = getattr(_local, "entry", None)
            if entry is None:
                self.__dict__["_fastdl_shared_num"] = value
                return
            st = self._fastdl
            entry.used = value - st.numbering.base(entry.seq)

        def process_video_result(self, info_dict, download=True):
            if not download or _on_worker():
                return super().process_video_result(info_dict, download=download)
            st = self._fastdl
            self._fastdl_raise_pending()
            with st.lock:
                if st.seq == 0:
                    # Numbering goes on from whatever was downloaded before this run's entries.
                    st.numbering = _Numbering(self.__dict__["_fastdl_shared_num"])
                seq = st.seq
                st.seq += 1
            work = dict(info_dict)
            future = st.pool.submit(self._fastdl_run_entry, seq, work)
            st.frames[-1].append((future, info_dict))
            return info_dict

        def _fastdl_run_entry(self, seq, info_dict):
            st = self._fastdl
            ident = info_dict.get("id") or str(seq + 1)
            entry = _Entry(seq, ident)
            _local.entry = entry
            archive_id = self._make_archive_id(info_dict) if self.params.get("download_archive") else None
            id_lock = st.ids[archive_id] if archive_id else threading.Lock()
            from yt_dlp.utils import DownloadCancelled, ExtractorError, MaxDownloadsReached

            try:
                if not st.turns.wait(seq, st) or st.error is not None:
                    return None  # an earlier entry stopped the run: a sequential one ends there
                with id_lock:
                    # The numbers before this entry's are known before it downloads: past
                    # --max-downloads, it does not start (a sequential run would not have).
                    max_downloads = self.params.get("max_downloads")
                    if max_downloads and st.numbering.base(seq) >= int(max_downloads):
                        raise MaxDownloadsReached()
                    try:
                        return super().process_video_result(info_dict, download=True)
                    except DownloadCancelled:
                        raise
                    except ExtractorError as e:
                        # As __process_iterable_entry would have: reported, fatal unless -i.
                        self.report_error(str(e), e.format_traceback())
                        return None
            except BaseException as e:  # noqa: B902 - stops the entries after this one
                with st.lock:
                    if st.error is None:
                        st.error = e
                raise
            finally:
                st.turns.release(seq)
                st.numbering.announce(seq, entry.used)
                self._fastdl_release_prints(seq, entry.stdout)
                _local.entry = None

        def _select_formats(self, formats, selector):
            chosen = super()._select_formats(formats, selector)
            entry = getattr(_local, "entry", None)
            if entry is not None:
                ranges = self.params.get("download_ranges")
                n_ranges = 1
                if ranges:
                    try:
                        n_ranges = max(1, len(tuple(ranges({}, self))))
                    except Exception:
                        n_ranges = 1
                self._fastdl.numbering.announce(entry.seq, max(1, len(chosen)) * n_ranges)
            return chosen

        def _fastdl_raise_pending(self):
            """A worker's error stops new entries: running ones finish, then it is raised here."""
            st = self._fastdl
            if st.error is not None:
                self._fastdl_join_all()
                error, st.error = st.error, None
                raise error

        def _fastdl_join(self, frame):
            """Waits for the entries of `frame`; their results replace the placeholders."""
            st = self._fastdl
            for future, placeholder in frame:
                # In short waits: a signal may be delivered to a worker thread, and Python runs
                # its handler (Ctrl-C's KeyboardInterrupt) only when the main thread wakes.
                while True:
                    try:
                        concurrent.futures.wait([future], timeout=0.2)
                    except KeyboardInterrupt:
                        raise
                    if future.done():
                        break
                try:
                    result = future.result()
                except BaseException as e:  # noqa: B902 - re-raised on the main thread
                    with st.lock:
                        if st.error is None:
                            st.error = e
                    continue
                if isinstance(result, dict) and result is not placeholder:
                    placeholder.clear()
                    placeholder.update(result)
            frame.clear()

        def _fastdl_join_all(self):
            for frame in self._fastdl.frames:
                self._fastdl_join(frame)

        def _YoutubeDL__process_playlist(self, ie_result, download):
            if _on_worker():
                return super()._YoutubeDL__process_playlist(ie_result, download)
            st = self._fastdl
            st.frames.append([])
            try:
                result = super()._YoutubeDL__process_playlist(ie_result, download)
            except KeyboardInterrupt:
                st.frames.pop()  # no waiting: the outermost call stops the children
                raise
            except BaseException:
                self._fastdl_join(st.frames.pop())
                raise
            self._fastdl_join(st.frames.pop())
            return result

        def _write_info_json(self, label, ie_result, infofn, *args, **kwargs):
            if label == "updated playlist" and not _on_worker():
                self._fastdl_join(self._fastdl.frames[-1])
                self._fastdl_raise_pending()
            return super()._write_info_json(label, ie_result, infofn, *args, **kwargs)

        def run_all_pps(self, key, info, *args, **kwargs):
            if key == "playlist" and not _on_worker():
                self._fastdl_join(self._fastdl.frames[-1])
                self._fastdl_raise_pending()
            return super().run_all_pps(key, info, *args, **kwargs)

        def run_pp(self, pp, infodict):
            # Post-processors one at a time: --exec commands never overlap, nor do merges.
            with self._fastdl.lock:
                return super().run_pp(pp, infodict)

        def record_download_archive(self, info_dict):
            with self._fastdl.lock:
                return super().record_download_archive(info_dict)

        # The calls that may download: when the outermost one returns, every entry it started
        # has ended (and a worker's error is raised), as a sequential run's would have.
        def download(self, *args, **kwargs):
            return self._fastdl_outermost(super().download, *args, **kwargs)

        def download_with_info_file(self, *args, **kwargs):
            return self._fastdl_outermost(super().download_with_info_file, *args, **kwargs)

        def extract_info(self, *args, **kwargs):
            return self._fastdl_outermost(super().extract_info, *args, **kwargs)

        def process_ie_result(self, *args, **kwargs):
            return self._fastdl_outermost(super().process_ie_result, *args, **kwargs)

        def _fastdl_outermost(self, call, *args, **kwargs):
            st = self._fastdl
            if _on_worker() or st.depth > 0:
                st.depth += 1 if not _on_worker() else 0
                try:
                    return call(*args, **kwargs)
                finally:
                    st.depth -= 1 if not _on_worker() else 0
            st.depth = 1
            try:
                result = call(*args, **kwargs)
            except KeyboardInterrupt:
                self._fastdl_interrupt()
                raise
            except BaseException:
                self._fastdl_join_all()
                raise
            finally:
                st.depth = 0
            self._fastdl_join_all()
            if st.lines is not None:
                st.lines.end()
                st.lines = None
            self._fastdl_raise_pending()
            return result

        def _fastdl_interrupt(self):
            """Ctrl-C reached only this process (or the whole group): every fastdl child gets it,
            saves its progress and ends; the workers are given a moment to wind down."""
            import time

            st = self._fastdl
            st.error = None
            with st.lock:
                st.interrupted = True
                children = list(st.children)
            for proc in children:
                interrupt(proc)
            deadline = time.monotonic() + 5
            for proc in children:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except Exception:
                    proc.kill()
            st.pool.shutdown(wait=False, cancel_futures=True)

        def dl(self, name, info, subtitle=False, test=False):
            st = self._fastdl
            entry = getattr(_local, "entry", None)
            if entry is not None:
                st.turns.release(entry.seq)  # past its checks: the next entry may start
            lock = st.files[os.path.abspath(name)] if name != "-" else threading.Lock()
            # A format of a merge (process_info's loop over requested_formats): start it and
            # go on with the next; post_process waits for them.
            if (entry is not None and st.formats and not test and "__real_download" in info
                    and not info.get("requested_formats") and name != "-"):
                box = {}

                def run():
                    _local.entry = entry
                    try:
                        with lock:
                            box["result"] = super(FastdlConcurrentYoutubeDL, self).dl(name, info, subtitle, test)
                    except BaseException as e:  # noqa: B902 - raised in post_process
                        box["error"] = e
                    finally:
                        _local.entry = None

                thread = threading.Thread(target=run, name=f"fastdl-format-{entry.ident}", daemon=True)
                thread.start()
                entry.formats.append((thread, box))
                return True, True
            with lock:
                return super().dl(name, info, subtitle, test)

        def post_process(self, filename, info, files_to_move=None):
            self._fastdl_wait_formats()
            return super().post_process(filename, info, files_to_move)

        def _fastdl_wait_formats(self):
            entry = getattr(_local, "entry", None)
            if entry is None or not entry.formats:
                return
            running, entry.formats = entry.formats, []
            for thread, _ in running:
                thread.join()
            for _, box in running:
                if "error" in box:
                    raise box["error"]
            for _, box in running:
                success, _ = box.get("result", (False, False))
                if not success:
                    from yt_dlp.utils import DownloadError

                    raise DownloadError(f"[{entry.ident}] a format could not be downloaded")

        # Messages of a worker name its entry; its --print lines wait for the entries before.
        def to_screen(self, message, skip_eol=False, quiet=None, only_once=False):
            entry = getattr(_local, "entry", None)
            if entry is not None and message and not str(message).startswith("\r"):
                message = f"[{entry.ident}] {message}"
            return super().to_screen(message, skip_eol=skip_eol, quiet=quiet, only_once=only_once)

        def to_stderr(self, message, only_once=False):
            entry = getattr(_local, "entry", None)
            if entry is not None and message:
                message = f"[{entry.ident}] {message}"
            return super().to_stderr(message, only_once=only_once)

        def to_stdout(self, message, skip_eol=False, quiet=None):
            entry = getattr(_local, "entry", None)
            if entry is not None:
                entry.stdout.append(message)
                return
            return super().to_stdout(message)

        def _fastdl_release_prints(self, seq, lines):
            st = self._fastdl
            with st.lock:
                st.printed[seq] = lines
                while st.next_print in st.printed:
                    for line in st.printed.pop(st.next_print):
                        super().to_stdout(line)
                    st.next_print += 1

        def add_progress_hook(self, ph):
            return super().add_progress_hook(_locked(self._fastdl.lock, ph))

    return FastdlConcurrentYoutubeDL


def _locked(lock, hook):
    """`hook`, called under `lock`: API progress hooks are never called at the same time."""
    if getattr(hook, "_fastdl_locked", False):
        return hook

    def call(d):
        with lock:
            return hook(d)

    call._fastdl_locked = True
    call.__wrapped__ = hook
    return call


class _EntryLine:
    """One download's line of the shared progress display, named after its entry."""

    def __init__(self, st, line, entry):
        self._st, self._line = st, line
        self._ident = entry.ident if entry is not None else "?"

    def print_at_line(self, text, pos):
        self._st.lines.print_at_line(f"[{self._ident}] {text}", self._line)

    def end(self):
        with self._st.lock:
            if self._line not in self._st.free_lines:
                self._st.free_lines.append(self._line)

    def __getattr__(self, name):
        return getattr(self._st.lines, name)


_patched_progress = False


def _patch_progress_lines():
    """yt-dlp gives each download its own one-line printer: several at once would all draw
    on the same line. For downloads of a concurrent YoutubeDL they share one printer instead."""
    global _patched_progress
    if _patched_progress:
        return
    _patched_progress = True
    from yt_dlp.downloader.common import FileDownloader

    prepare, finish = FileDownloader._prepare_multiline_status, FileDownloader._finish_multiline_status

    def _prepare_multiline_status(self, lines=1):
        st = state(self.ydl) if self.ydl is not None else None
        if st is None or not _on_worker():
            return prepare(self, lines)
        self._multiline = st.progress_line(self)

    def _finish_multiline_status(self):
        if isinstance(getattr(self, "_multiline", None), _EntryLine):
            self._multiline.end()
            return
        return finish(self)

    FileDownloader._prepare_multiline_status = _prepare_multiline_status
    FileDownloader._finish_multiline_status = _finish_multiline_status


def _lock_existing_hooks(ydl):
    lock = ydl._fastdl.lock
    ydl._progress_hooks[:] = [_locked(lock, h) for h in ydl._progress_hooks]


def state(ydl):
    """The concurrency state of `ydl`, or None when it is off."""
    return ydl.__dict__.get("_fastdl")
