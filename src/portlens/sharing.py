"""Opening the store while other processes use it (issue 13).

DuckDB lets one process write a database file or several processes read it, never both at
once: a second opener fails at once with "Could not set lock on file". portlens' commands and
its service share one store, so opening waits instead of failing: it retries with growing
pauses, says once on stderr that the store is busy (naming the holder as DuckDB reports it),
and gives up after a timeout with one line. Every command holds the store only while it works
on it; the service opens it for each file and each detect, and closes it in between.

Who goes first is settled with small notes next to the store, each holding a process id (a
note whose process has died is ignored):
- `<store>.writer-waiting`: a writer is kept out. Readers arriving after it wait for it, so a
  stream of overlapping readers (an analyst's loop of `status`) cannot keep it out for ever.
- `<store>.reader-waiting.<pid>`: a reader is kept out. A long ingest checks for these
  between batches and lets the readers in (`hand_over`): it closes the store, waits until the
  readers are in, and opens it again (a file's rows stay invisible until its ingest commits,
  so readers see the store as it was before that file).
- `<store>.handover`: a writer is letting readers in mid-ingest; other writers wait for it to
  finish, so nothing is ingested twice by two interleaved writers.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from contextlib import contextmanager
from typing import Callable

import duckdb

from .errors import StoreError

WAIT_ENV = "PORTLENS_STORE_WAIT"
DEFAULT_WAIT = 300.0  # seconds a command waits for a busy store before giving up
HANDOVER_WAIT = 5.0   # seconds a writer waits for the readers it lets in to get in


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
    note = (f"{path}.reader-waiting.{os.getpid()}" if read_only else f"{path}.writer-waiting")
    noted = False
    try:
        while True:
            holder = None
            if read_only and _alive_note(f"{path}.writer-waiting"):
                holder = "a writer is waiting for it"
            elif not read_only and _alive_note(f"{path}.handover"):
                holder = "a writer is letting readers in"
            else:
                try:
                    return duckdb.connect(path, read_only=read_only)
                except duckdb.Error as e:
                    if not is_busy(e):
                        raise
                    holder = _holder(str(e))
                if not noted:
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
            _remove(note)


def readers_waiting(path: str) -> bool:
    """Is a reader kept out of the store (by this process holding it)?"""
    return any(_alive_note(n) for n in glob.glob(glob.escape(path) + ".reader-waiting.*"))


@contextmanager
def hand_over(path: str):
    """Let waiting readers in during a long write: the caller closes its connection inside
    the block and opens a new one at its end; other writers wait meanwhile."""
    note = f"{path}.handover"
    noted = _leave_note(note)
    try:
        yield
    finally:
        if noted:
            _remove(note)


def wait_for_readers(path: str, timeout: float = HANDOVER_WAIT) -> None:
    """After closing the store in `hand_over`: wait until the readers that were waiting have
    got in (their notes are gone), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while readers_waiting(path) and time.monotonic() < deadline:
        time.sleep(0.02)


def _holder(text: str) -> str:
    """'held by process n' from DuckDB's lock error, else a plain phrase."""
    if "(PID " in text:
        pid = text.split("(PID ", 1)[1].split(")", 1)[0]
        return f"held by process {pid}"
    return "held by another process"


def _leave_note(note: str) -> bool:
    try:
        with open(note, "x") as f:
            f.write(str(os.getpid()))
        return True
    except FileExistsError:
        if not _alive_note(note, mine_too=True):  # left by a process that died: take it over
            _remove(note)
            return _leave_note(note)
        return False  # another process's note stands for both
    except OSError:  # no write access next to the store: go without notes
        return False


def _remove(note: str) -> None:
    try:
        os.remove(note)
    except OSError:
        pass


def _alive_note(note: str, mine_too: bool = False) -> bool:
    """Does the note exist and name a live process (other than this one, unless mine_too)?"""
    try:
        with open(note) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return mine_too
    return process_alive(pid)


def process_alive(pid: int | None) -> bool:
    """Is `pid` a live process other than this one? (None or 0: no process.)"""
    if not pid or pid < 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
