"""`portlens run --watch DIR`: a small service that ingests files as they appear and runs the
rule once a day (and on demand), appending new alerts to a JSON-lines file.

Files are read as log shippers tail them (ledger.py): a file that grows has only its new
complete lines ingested, a last line without its newline waits for it, and a rotated or
compressed copy of what was read adds nothing. A file still being written (modified within
`settle` seconds) is left for a later scan, so a busy writer is read in fewer, larger steps.

The first detect runs as soon as the first files have landed and settled (none still being
written), or at the latest `first_detect_wait` after the first data landed when writers never
pause; then every `detect_every`. Each detect, and each due detect that is skipped, is logged
with its reason.

The service shares the store with the analysts' commands (sharing.py): it opens the store for
each file and each detect and closes it in between; a busy store is waited for, and an error
(store busy past the wait, a disk hiccup, a bucket out of reach) is logged in one line and
retried at the next scan: the service does not exit on it.

Signals: SIGTERM / SIGINT stop it after the step in flight (an ingest is never cut short;
it is atomic anyway); SIGUSR1 asks for a detect now.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable

import duckdb

from . import api, files, monitor, storage
from .errors import SourceError, StoreError
from .formats import write_jsonl
from .store import Store


@dataclass
class Watcher:
    folder: Path | str  # a folder, or an object-storage URL prefix
    db: str
    alerts_path: Path
    every: float = 600.0  # seconds between scans
    detect_every: timedelta = timedelta(days=1)
    config: str | None = None
    sinks: list = field(default_factory=list)  # delivery sinks (portlens.delivery), if any
    log: Callable[[str], None] = print
    profile: str = "sentinel"  # detection profile (api.PROFILES)
    _stop: threading.Event = field(default_factory=threading.Event)
    _detect_now: threading.Event = field(default_factory=threading.Event)
    settle: float = 2.0  # a file modified more recently than this may still be being written
    first_detect_wait: float = 60.0  # first detect at the latest this long after data first landed
    store_wait: float = 60.0  # how long one open of a busy store waits before the step is retried
    _done: dict = field(default_factory=dict)    # path -> its key (size, stamp) when last handled
    _last_detect: float | None = None
    _first_data: float | None = None  # when the first sessions landed (monotonic)
    _unsettled: int = 0  # files the last scan left because they were still being written
    _busy_since: dict = field(default_factory=dict)  # path -> when a scan first found it being written
    _said: str | None = None  # the last skip reason logged (a waiting first detect says it once)

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGUSR1, lambda *_: self._detect_now.set())

    def stop(self) -> None:
        self._stop.set()

    def run(self, once: bool = False) -> None:
        cfg = monitor.load_config(self.config)  # fail early on a bad configuration
        while not self._stop.is_set():
            self._step(self.scan)
            if not self._stop.is_set():
                self._step(lambda: self._maybe_detect(cfg, once))
            if once:
                return
            # Wake early for a stop or an on-demand detect.
            deadline = time.monotonic() + self.every
            while not self._stop.is_set() and not self._detect_now.is_set() and time.monotonic() < deadline:
                self._stop.wait(min(0.2, self.every))

    def _step(self, work: Callable[[], object]) -> None:
        """Run one step; an error is logged in one line and the step is tried again next time."""
        try:
            work()
        except (StoreError, SourceError, duckdb.Error, OSError) as e:
            self.log(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                     "retrying at the next scan")
        except Exception as e:  # not expected: still not a reason to stop watching
            self.log(f"unexpected error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; "
                     "retrying at the next scan")

    def _open(self, read_only: bool = False) -> Store:
        return Store(self.db, read_only=read_only, wait=self.store_wait, notify=self.log)

    def scan(self) -> int:
        """Ingest what is new in files that are new or changed and have settled (not being
        written); a file is read from its checkpoint (ledger.py)."""
        ingested = 0
        unsettled = 0
        try:
            entries = list(self._entries())
        except SourceError as e:  # a bucket out of reach: said, and tried again next scan
            self.log(f"scan failed: {e}")
            return 0
        for path, key, settled in entries:
            if self._stop.is_set():
                break
            if self._done.get(path) == key:
                continue
            if not settled:
                # A writer that never pauses still has its complete lines read, once per scan
                # interval (the checkpoint makes reading a growing file safe).
                since = self._busy_since.setdefault(path, time.monotonic())
                if time.monotonic() - since < max(self.every, self.settle):
                    unsettled += 1
                    continue
            self._busy_since.pop(path, None)
            try:
                with self._open() as store:
                    r = store.ingest(path, tail=not storage.is_url(path))
            except SourceError as e:
                self.log(f"skipped {e}")
            except StoreError:
                raise  # the store is out of reach: this scan stops, the next one retries
            except (duckdb.Error, OSError) as e:
                self.log(f"{path}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                         "retrying at the next scan")
                continue
            else:
                ingested += 1
                self.log(_landed(path, r))
                if r.sessions and self._first_data is None:
                    self._first_data = time.monotonic()
            self._done[path] = key
        self._unsettled = unsettled
        return ingested

    def _maybe_detect(self, cfg: monitor.MonitorConfig, once: bool) -> None:
        """Detect when one is asked for (SIGUSR1, --once), when the first files have settled,
        or on schedule; log a due detect that is skipped, with the reason."""
        now = time.monotonic()
        if self._detect_now.is_set() or once:
            self._detect_now.clear()
            self.detect(cfg)
            return
        if self._last_detect is None:
            if self._first_data is None:
                self._skip("first detect waits: no sessions have landed yet")
                return
            if self._unsettled and now - self._first_data < self.first_detect_wait:
                self._skip(f"first detect waits: {self._unsettled} file(s) still being written")
                return
            self.detect(cfg)
        elif now - self._last_detect >= self.detect_every.total_seconds():
            self.detect(cfg)

    def _skip(self, reason: str) -> None:
        if reason != self._said:
            self.log(reason if reason.startswith("first detect") else f"detect skipped: {reason}")
            self._said = reason

    def _entries(self):
        """(path, key, settled) for each file under the folder. An object-storage URL
        (storage hook, issue 14) is listed as a prefix; an object appears whole, and its key is
        its identity (URL, size, stamp), so an unchanged object is not looked at again."""
        if storage.is_url(self.folder):
            for obj in storage.list_files(str(self.folder)):
                yield obj.url, obj.identity, True
            return
        for path in map(Path, files.expand([self.folder]).files):
            stat = path.stat()
            yield str(path), (str(path), stat.st_size, stat.st_mtime), time.time() - stat.st_mtime >= self.settle

    def detect(self, cfg: monitor.MonitorConfig) -> int:
        """Run the rule as of just after the newest data; append alerts not written before."""
        self._last_detect = time.monotonic()
        if not os.path.exists(self.db):
            self._skip("no store yet (no file has landed)")
            return 0
        with self._open(read_only=True) as store:
            if store.newest_time() is None:
                self._skip("no sessions in the store yet")
                return 0
            result = api.detect(store, config=cfg, profile=self.profile)
        self._said = None
        seen = _written_ids(self.alerts_path)
        fresh = [a for a in result.alerts if a.id not in seen]
        if fresh:
            self.alerts_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.alerts_path, "a", encoding="utf-8") as f:
                write_jsonl(fresh, f)
        self.log(f"detect as of {result.window.as_of.isoformat()}: {len(result.alerts)} alerts, "
                 f"{len(fresh)} new -> {self.alerts_path}")
        if self.sinks:
            from . import delivery
            with self._open() as store:
                delivery.record(store, result.alerts)
                self.log(delivery.deliver(store, self.sinks).summary())
        return len(fresh)


def _landed(path: str, r) -> str:
    """One log line for an ingest."""
    if r.duplicate_of and r.waiting:
        said = "nothing new"
    elif r.duplicate_of:
        said = "already ingested" + (f" (as {r.duplicate_of})" if r.duplicate_of != storage.canonical(path) else "")
    elif r.waiting and not r.lines:
        return f"{path}: waiting for its first complete line"
    else:
        said = f"{r.sessions:,} sessions, {r.quarantined:,} quarantined"
        if r.continues and r.lines:
            said += f" (lines {r.lines[0]:,}-{r.lines[1]:,}, after those read from {r.continues})"
    return f"{path}: {said}" + ("; its last line waits for its newline" if r.waiting else "")


def _written_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                continue
    return ids


def parse_every(text: str) -> float:
    """'10m', '30s', '2h', '1d' or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            value = float(text[:-1]) * units[text[-1]]
        else:
            value = float(text)
    except ValueError:
        raise ValueError(f"{text!r}: use a number with s, m, h or d (e.g. 10m)") from None
    if value <= 0:
        raise ValueError(f"{text!r}: must be positive")
    return value
