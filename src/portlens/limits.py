"""Bounds on what one input file can cost, so a hostile or broken file gives a quarantined
record or a one-line error instead of exhausting memory:

- a record (line) longer than `max_record_bytes` (default 1 MiB) is quarantined with its
  size and the first `RAW_KEPT` bytes of its text; reading skips the rest of it without
  holding it, and the records after it land as usual;
- compressed input that inflates to more than `max_inflation` times its compressed size
  (default 200; gzip cannot exceed about 1032) once past `inflation_floor` bytes (default
  64 MiB) stops the file with a one-line error (`InflationLimit`): a decompression bomb
  costs at most the floor in time and memory. Text logs compress about 5-30 times (a
  400,000-line ASIM JSON file here: 15 times).

`applied(InputLimits(...))` sets them for a block (the ingest and normalize options);
`current()` is what readers use.
"""

from __future__ import annotations

import contextvars
import gzip
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .errors import SourceError

RAW_KEPT = 4096  # bytes of an oversized record's text kept in quarantine


@dataclass(frozen=True)
class InputLimits:
    max_record_bytes: int = 1 << 20
    max_inflation: float = 200.0
    inflation_floor: int = 64 << 20


_current: contextvars.ContextVar[InputLimits] = contextvars.ContextVar("input_limits", default=InputLimits())


def current() -> InputLimits:
    return _current.get()


@contextmanager
def applied(limits: InputLimits):
    """Use `limits` for every file read inside the block."""
    if limits.max_record_bytes < 1 or limits.max_inflation < 1 or limits.inflation_floor < 0:
        raise ValueError(f"input limits must be positive: {limits}")
    token = _current.set(limits)
    try:
        yield limits
    finally:
        _current.reset(token)


# ---- decompression ---------------------------------------------------------------------------

class InflationLimit(SourceError):
    """Compressed input inflates beyond the limit (a decompression bomb, or a limit too low)."""


class GuardedGzip(gzip.GzipFile):
    """A gzip reader that counts what it inflates against what it has read of the compressed
    stream, and raises InflationLimit past the ratio (see the module doc). Every read path
    (read, read1, readinto, readline, iteration) is counted; readline reads in pieces so a
    bomb without line breaks is stopped at the floor, not held whole."""

    def __init__(self, compressed, path: str, limits: InputLimits | None = None):
        super().__init__(fileobj=compressed, mode="rb")
        self._compressed, self._path = compressed, path
        self._limits = limits or current()
        self._inflated = 0

    def _count(self, n: int) -> None:
        self._inflated += n
        limits = self._limits
        if self._inflated > limits.inflation_floor:
            ratio = self._inflated / max(1, self._compressed.tell())
            if ratio > limits.max_inflation:
                raise InflationLimit(
                    f"{self._path}: compressed data inflates more than {limits.max_inflation:g} times "
                    f"(already {self._inflated >> 20} MiB from {self._compressed.tell():,} bytes): "
                    "a decompression bomb? Reading stopped")

    def read(self, size: int | None = -1) -> bytes:
        piece = 1 << 20
        if size is not None and 0 <= size <= piece:
            data = super().read(size)
            self._count(len(data))
            return data
        # a whole-file or large read: in pieces, so the limit stops it before it is held
        parts, left = [], None if size is None or size < 0 else size
        while left is None or left > 0:
            part = self.read(piece if left is None else min(left, piece))
            if not part:
                break
            parts.append(part)
            if left is not None:
                left -= len(part)
        return b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        data = super().read1(size)
        self._count(len(data))
        return data

    def readinto(self, b) -> int:
        n = super().readinto(b)
        self._count(n)
        return n

    def readline(self, size: int | None = -1) -> bytes:
        if size is not None and 0 <= size <= (1 << 20):
            line = super().readline(size)
            self._count(len(line))
            return line
        parts: list[bytes] = []
        left = -1 if size is None or size < 0 else size
        while left:
            part = super().readline(1 << 20 if left < 0 else min(left, 1 << 20))
            self._count(len(part))
            if not part:
                break
            parts.append(part)
            if part.endswith(b"\n"):
                break
            if left > 0:
                left -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._compressed.close()  # GzipFile leaves a fileobj it was given open


# ---- oversized records -----------------------------------------------------------------------
# The line reader finds records over the limit; the file's parse (base.parse_file) collects
# them and hands them on as quarantine. A reader with no collector for its file raises instead:
# a record is never dropped silently.

_collectors = threading.local()


@dataclass
class LongRecord:
    line: int
    size: int  # bytes, at least; the whole record was not held
    head: str  # its first RAW_KEPT bytes, decoded

    def reason(self, limit: int) -> str:
        return (f"record of {self.size:,} bytes is longer than the {limit:,}-byte limit "
                f"(raw text cut to its first {RAW_KEPT:,} bytes)")


@contextmanager
def collecting(path: str) -> Iterator[list[LongRecord]]:
    """Collect the oversized records the line reader finds in `path` during the block."""
    registry = getattr(_collectors, "by_path", None)
    if registry is None:
        registry = _collectors.by_path = {}
    found: list[LongRecord] = []
    registry.setdefault(path, []).append(found)
    try:
        yield found
    finally:
        stack = registry.get(path, [])
        if found in stack:
            stack.remove(found)
        if not stack:
            registry.pop(path, None)


def _report(path: str, record: LongRecord) -> None:
    stack = getattr(_collectors, "by_path", {}).get(path)
    if not stack:
        raise SourceError(f"{path}:{record.line}: {record.reason(current().max_record_bytes)}")
    stack[-1].append(record)


class LineGuard:
    """The line reader's side (base._line_pieces): cut records over the limit out of the
    stream, keeping only their head, and report them."""

    def __init__(self, path: str):
        self.path = path
        self.limit = current().max_record_bytes
        self.skipping: LongRecord | None = None  # the oversized record being skipped
        self._cr = False  # it ended on a CR that closed the last chunk read

    def too_long(self, head: bytes, number: int) -> int:
        """`head` (no line end yet) already exceeds the limit: it becomes record number+1,
        and the rest of it is skipped. Returns the last line number used."""
        self.skipping = LongRecord(number + 1, len(head), _decode(head[:RAW_KEPT]))
        return number + 1

    def skip(self, chunk: bytes) -> bytes:
        """While skipping: the bytes of `chunk` after the oversized record's end (LF, CRLF or
        a lone CR, as the line reader splits), b"" while it goes on; the record is reported
        once it ends."""
        record = self.skipping
        if self._cr:  # it ended on a CR at the end of the last chunk: its LF may follow
            self.end()
            return chunk[1:] if chunk.startswith(b"\n") else chunk
        ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
        if not ends:
            record.size += len(chunk)
            return b""
        end = min(ends)
        record.size += end
        if chunk[end:end + 1] == b"\r":
            if end + 1 == len(chunk):
                self._cr = True
                return b""
            self.end()
            return chunk[end + 2:] if chunk[end + 1:end + 2] == b"\n" else chunk[end + 1:]
        self.end()
        return chunk[end + 1:]

    def end(self) -> None:
        """The input ended (or the record did): report the record being skipped."""
        self._cr = False
        if self.skipping is not None:
            record, self.skipping = self.skipping, None
            _report(self.path, record)

    def drop_long(self, lines: pa.Array, numbers: pa.Array) -> tuple[pa.Array, pa.Array]:
        """Complete lines over the limit are reported and left out."""
        sizes = pc.binary_length(lines)
        over = pc.greater(sizes, self.limit)
        if not pc.any(over).as_py():
            return lines, numbers
        long = lines.filter(over)
        for text, size, line in zip(pc.utf8_slice_codeunits(long, 0, RAW_KEPT).to_pylist(),
                                    sizes.filter(over).to_pylist(), numbers.filter(over).to_pylist()):
            _report(self.path, LongRecord(line, size, text))
        keep = pc.invert(over)
        return lines.filter(keep), numbers.filter(keep)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
