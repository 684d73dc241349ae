"""`portlens run --watch DIR`: a small service that ingests files as they appear and runs the
rule once a day (and on demand), appending new alerts to a JSON-lines file.

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

from . import api, files, monitor, storage
from .errors import SourceError
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
    _done: set = field(default_factory=set)      # (path, size, mtime) already handled
    _last_detect: float | None = None

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGUSR1, lambda *_: self._detect_now.set())

    def stop(self) -> None:
        self._stop.set()

    def run(self, once: bool = False) -> None:
        cfg = monitor.load_config(self.config)  # fail early on a bad configuration
        while not self._stop.is_set():
            self.scan()
            due = self._last_detect is None or time.monotonic() - self._last_detect >= self.detect_every.total_seconds()
            if (due or self._detect_now.is_set()) and not self._stop.is_set():
                self._detect_now.clear()
                self.detect(cfg)
            if once:
                return
            # Wake early for a stop or an on-demand detect.
            deadline = time.monotonic() + self.every
            while not self._stop.is_set() and not self._detect_now.is_set() and time.monotonic() < deadline:
                self._stop.wait(min(0.2, self.every))

    def scan(self) -> int:
        """Ingest files that are new or changed and whose size has settled (not being written)."""
        ingested = 0
        try:
            entries = list(self._entries())
        except SourceError as e:  # a bucket out of reach: said, and tried again next scan
            self.log(f"scan failed: {e}")
            return 0
        for path, key, settled in entries:
            if self._stop.is_set():
                break
            if key in self._done or not settled:
                continue
            with Store(self.db) as store:
                try:
                    r = store.ingest(path)
                except SourceError as e:
                    self.log(f"skipped {e}")
                else:
                    ingested += 1
                    self.log(f"{path}: " + ("already ingested" if r.duplicate_of else
                                            f"{r.sessions:,} sessions, {r.quarantined:,} quarantined"))
            self._done.add(key)
        return ingested

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
            return 0
        with Store(self.db, read_only=True) as store:
            if store.newest_time() is None:
                return 0
            result = api.detect(store, config=cfg, profile=self.profile)
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
            with Store(self.db) as store:
                delivery.record(store, result.alerts)
                self.log(delivery.deliver(store, self.sinks).summary())
        return len(fresh)


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
