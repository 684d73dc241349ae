"""Paths, folders and globs -> the files to read: the one place portlens expands them.

Folders are walked recursively in a stable order, hidden files and folders skipped. Files that
portlens itself writes next to logs (its store, the HTML report, PNG charts, alert files) are
not logs: inside a folder they are set aside and reported, so `ingest DIR` on a folder the demo
or a report wrote into does not fail on them. A file named explicitly is always taken.
"""

from __future__ import annotations

import fnmatch
import glob
import os
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
