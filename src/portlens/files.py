"""Paths, folders and globs -> the files to read: the one place portlens expands them; and
`check_output`, the check every output path passes before any work starts.

Folders are walked recursively in a stable order, hidden files and folders skipped. Files that
portlens itself writes next to logs (its store, the HTML report, PNG charts, alert files) are
not logs: inside a folder they are set aside and reported, so `ingest DIR` on a folder the demo
or a report wrote into does not fail on them. A file named explicitly is always taken.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import storage
from .errors import UsageError

# What portlens writes: a DuckDB store and its WAL, reports, charts, temporary files.
NOT_LOGS = ("*.duckdb", "*.duckdb.wal", "*.html", "*.png", "*.tmp")


@dataclass
class Expanded:
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # known non-log files found in folders


def not_a_log(path: str | os.PathLike) -> bool:
    name = os.path.basename(os.fspath(path)).lower()
    return any(fnmatch.fnmatch(name, p) for p in NOT_LOGS)


def _walk(folder: Path, pattern: str) -> list[Path]:
    return sorted(f for f in folder.rglob(pattern) if f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def expand(patterns: list[str | os.PathLike], *, pattern: str = "*",
           skip_not_logs: bool = True) -> Expanded:
    """Expand files, folders (recursively, files matching `pattern`) and globs, in order.
    A path that is neither a file, a folder nor a matching glob is an error."""
    out = Expanded()
    for item in patterns:
        text = os.fspath(item)
        if storage.is_url(text):  # object storage (issue 14): a prefix or glob lists its objects
            objects = [o.url for o in storage.list_files(text)]
            if pattern != "*" and not any(ch in text for ch in "*?[") and objects != [text.rstrip("/")]:
                objects = [u for u in objects if fnmatch.fnmatch(u.rsplit("/", 1)[-1], pattern)]
            out.files += objects
            continue
        path = Path(text)
        if path.is_dir():
            for f in _walk(path, pattern):
                (out.skipped if skip_not_logs and not_a_log(f) else out.files).append(str(f))
        elif path.is_file():
            out.files.append(text)
        elif any(ch in text for ch in "*?["):
            found = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
            if not found:
                raise UsageError(f"{text}: no files match")
            for f in found:
                (out.skipped if skip_not_logs and not_a_log(f) else out.files).append(f)
        else:
            raise UsageError(f"{text}: no such file or folder")
    return out


def check_output(path: str | os.PathLike, label: str) -> None:
    """Make sure a file can be written at `path` before any work starts; a one-line
    UsageError (`label` names the option or argument) when it cannot: a folder, a missing or
    read-only folder, a read-only file. Nothing is left behind: the folder is probed with a
    temporary file that is removed at once, an existing file is opened for appending and
    closed unchanged. ('-', stdout, is always fine.)"""
    text = os.fspath(path)
    if text == "-":
        return
    where = f"{label} {text}" if label else text
    if os.path.isdir(text):
        raise UsageError(f"{where}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise UsageError(f"{where}: no such folder {folder}" if not os.path.exists(folder)
                         else f"{where}: {folder} is not a folder")
    try:
        if os.path.exists(text):
            os.close(os.open(text, os.O_WRONLY | os.O_APPEND))
        else:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".portlens-probe-")
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        why = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "read-only file system"}.get(e.errno, e.strerror or str(e))
        target = text if os.path.exists(text) else folder
        raise UsageError(f"{where}: cannot write {target} ({why})") from None
