"""Opening the store while other processes use it (issue 13).

DuckDB lets one process write a database file or several processes read it, never both at
once: a second opener fails at once with "Could not set lock on file". portlens' commands and
its service share one store, so opening waits instead of failing: it retries with growing
pauses, says once on stderr that the store is busy (naming the holder as DuckDB reports it),
and gives up after a timeout with one line. Every command holds the store only while it works
on it; the service opens it for each file and each detect, and closes it in between.

Readers come and go; a stream of overlapping readers (an analyst's loop of `status`) could
keep a writer out for ever. So a writer that is kept waiting leaves a note next to the store
(`<store>.writer-waiting`, holding its process id) and readers that arrive after it wait for
it to get in first. A note left by a process that died is ignored.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

import duckdb

from .errors import StoreError

WAIT_ENV = "PORTLENS_STORE_WAIT"
DEFAULT_WAIT = 300.0  # seconds a command waits for a busy store before giving up


def default_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def is_busy(error: BaseException) -> bool:
    """DuckDB's error for a database file another process holds."""
    text = str(error)
    return isinstance(error, duckdb.Error) and ("Could not set lock" in text or "Conflicting lock" in text)


def connect(path: str, read_only: bool, wait: float | None = None,
            notify: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to the store, waiting (up to `wait` seconds) while another process holds
    it. `notify` gets one line when the wait starts (default: stderr)."""
    wait = default_wait() if wait is None else wait
    notify = notify or _stderr
    deadline = time.monotonic() + wait
    pause = 0.05
    told = False
    note = path + ".writer-waiting"
    noted = False
    try:
        while True:
            holder = None
            if read_only and _writer_waiting(note):
                holder = "a writer is waiting for it"
            else:
                try:
                    return duckdb.connect(path, read_only=read_only)
                except duckdb.Error as e:
                    if not is_busy(e):
                        raise
                    holder = _holder(str(e))
                if not read_only and not noted:
                    noted = _leave_note(note)
            if time.monotonic() >= deadline:
                raise StoreError(f"{path}: store busy ({holder}); gave up after {wait:g} s "
                                 f"(set {WAIT_ENV} to wait longer)")
            if not told:
                notify(f"store busy ({holder}), waiting…")
                told = True
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 0.5)
    finally:
        if noted:
            try:
                os.remove(note)
            except OSError:
                pass


def _holder(text: str) -> str:
    """'held by PID n' from DuckDB's lock error, else a plain phrase."""
    if "(PID " in text:
        pid = text.split("(PID ", 1)[1].split(")", 1)[0]
        return f"held by process {pid}"
    return "held by another process"


def _leave_note(note: str) -> bool:
    try:
        with open(note, "x") as f:
            f.write(str(os.getpid()))
        return True
    except OSError:  # another writer waits already (its note serves both), or no write access
        return False


def _writer_waiting(note: str) -> bool:
    try:
        with open(note) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
