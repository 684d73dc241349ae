"""Which part of a local log file is new: file identity and read checkpoints (issue 13).

Log shippers (Filebeat's registry, Vector's file checkpoints) know a file by what it holds, not
by its name, and remember how far they read it. The files ledger does the same:

- a file's *fingerprint* is the SHA-256 of the first FINGERPRINT_BYTES bytes of its
  decompressed content (fewer when it holds fewer): it finds, cheaply, the ledger entries
  the file may continue;
- each entry keeps a *checkpoint*: how far its lineage was read, as decompressed bytes
  (`read_bytes`), lines (`read_lines`) and the SHA-256 of those bytes (`prefix_sha256`).

A file whose decompressed content starts with exactly the bytes an entry read (same prefix
hash at that offset) continues that entry's lineage: only the lines after the checkpoint are
new. So a rotated copy (`fw.log` -> `fw.log.1` -> `fw.log.1.gz`) adds only the lines written
after the last read, if any; an appended file adds its new lines; a truncated or replaced
file no longer starts with what was read, so it is a new file. The fingerprint only narrows
the search: the prefix hash decides, so two logs that share a long header (a CSV export's
column list) are never taken for one another.

Two ways of reading, as Logstash's file input has them:
- `tail` (the service, `run --watch`): a file may still be growing, so a last line without
  its newline waits for it;
- `read` (`portlens ingest`): a file named is complete, so its last line counts with or
  without a newline.

Files that are not read line by line (Parquet, UTF-16 text, a multi-line JSON document whose
records are numbered by ordinal) have no line checkpoint: they are recognised only when their
whole decompressed content was read before.
"""

from __future__ import annotations

import contextvars
import gzip
import hashlib
import threading
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field

from . import storage

FINGERPRINT_BYTES = 1024
_CHUNK = 1 << 20

# Columns the ledger adds to `files` (store.py creates them).
COLUMNS = {
    "fingerprint": "VARCHAR",        # SHA-256 of the first fingerprint_bytes decompressed bytes
    "fingerprint_bytes": "INTEGER",
    "read_bytes": "BIGINT",          # checkpoint: decompressed bytes of the lineage read so far
    "read_lines": "BIGINT",          # ... and lines (as the line reader numbers them)
    "prefix_sha256": "VARCHAR",      # ... and the SHA-256 of those bytes
    "first_line": "BIGINT",          # the entry holds lines first_line..read_lines
    "continues": "INTEGER",          # the entry this one continues (same lineage), if any
}


@dataclass
class Reading:
    """One pass over a file's decompressed content."""
    total_bytes: int = 0           # decompressed bytes readable now
    end_bytes: int = 0             # the part to take: through the last complete line (tail) or all (read)
    end_lines: int = 0             # lines in that part
    prefix_sha256: str = ""        # SHA-256 of that part
    raw_sha256: str | None = None  # SHA-256 of the file's bytes, when they were all read and are not compressed
    line_based: bool = True
    partial: bool = False          # a last line without its newline was left for later (tail)
    cut: bool = False              # compressed data that breaks off (still being written, or broken)
    at: dict = field(default_factory=dict)  # offset -> SHA-256 of the content before it


@dataclass
class Plan:
    """What to read of a file: lines first_line..end_lines (1-based, inclusive) of its first
    end_bytes decompressed bytes, continuing entry `continues` (None: a new lineage)."""
    reading: Reading
    fingerprint: str
    fingerprint_bytes: int
    first_line: int = 1
    continues: int | None = None
    continues_path: str | None = None
    nothing_new: bool = False
    replace: bool = False  # read whole, replacing the lineage's entries (store._CannotResume)
    # A plan made before the file was measured: `reading` is filled in by `measured()`,
    # while the file is parsed (see `plan(..., alongside=True)`).
    measuring: "Future | None" = None

    def measured(self) -> Reading:
        """The reading, once the measuring pass that runs alongside the parse is done."""
        if self.measuring is not None:
            self.reading, self.measuring = self.measuring.result(), None
        return self.reading

    @property
    def skip_lines(self) -> int:
        return self.first_line - 1


def head(path: str) -> bytes:
    """The first FINGERPRINT_BYTES bytes of the decompressed content."""
    with _open(path) as f:
        try:
            return f.read(FINGERPRINT_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile):
            return b""


def line_based(path: str) -> bool:
    """Is the content read line by line (numbered by physical line)? Not Parquet, UTF-16 text
    or a multi-line JSON document (its records are numbered by ordinal). A first line not
    finished yet is a line."""
    from .sources._documents import is_document_head
    with _open(path) as f:
        try:
            first = f.read(65536)
        except (EOFError, zlib.error, gzip.BadGzipFile):
            return True
    if first[:4] == b"PAR1" or first[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    return b"\n" not in first or not is_document_head(first)


def measure(path: str, offsets: set[int], tail: bool) -> Reading:
    """Read the file once: where its complete lines end, how many there are, the SHA-256 of
    that part and of the content before each of `offsets`. Lines are counted as the line
    reader numbers them (LF, CRLF and a lone CR each end one). A plain file read whole has its
    content hash too (the same hash); a compressed file's is left None."""
    r = Reading(line_based=line_based(path))
    counter = _Counter(offsets, r.at)
    at_newline = (counter.h.copy(), 0, 0)  # hash, offset and lines at the last LF
    packed = compressed(path)
    from .sources.base import readable
    with _open(path) as f:
        while not r.cut:
            if packed:  # (read up to a cut as the line reader reads it, so both count the same lines)
                chunk, broken = readable(f, 1 << 16)
                r.cut = broken is not None  # what was readable is the content (the parser reports the cut)
            else:
                chunk = f.read(_CHUNK)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if cut:
                counter.feed(chunk, 0, cut)
                at_newline = (counter.h.copy(), counter.pos, counter.lines)
            counter.feed(chunk, cut, len(chunk))
    r.total_bytes = counter.pos
    if not r.line_based or not tail or counter.pos == at_newline[1]:
        r.end_bytes, r.prefix_sha256 = counter.pos, counter.h.hexdigest()
        # an unterminated last line is a line of its own (the line reader numbers it so)
        r.end_lines = counter.lines + (1 if counter.pos > at_newline[1] else 0)
        r.raw_sha256 = None if packed else r.prefix_sha256
    else:
        r.end_bytes, r.end_lines, r.prefix_sha256 = at_newline[1], at_newline[2], at_newline[0].hexdigest()
        r.partial = True
    return r


class _Counter:
    """A running SHA-256 and line count over content fed in order, with the hash noted at
    each wanted offset."""

    def __init__(self, offsets: set[int], notes: dict):
        self.h = hashlib.sha256()
        self.pos = self.lines = 0
        self.prev_cr = False
        self.wanted = sorted(o for o in offsets if o > 0)
        self.notes = notes
        if 0 in offsets:
            notes[0] = self.h.hexdigest()

    def feed(self, data: bytes, start: int, end: int) -> None:
        """Feed data[start:end] (ranges of one read, so nothing is copied)."""
        while self.wanted and self.wanted[0] <= self.pos + end - start:
            k = start + self.wanted.pop(0) - self.pos
            self._add(data, start, k)
            self.notes[self.pos] = self.h.hexdigest()
            start = k
        self._add(data, start, end)

    def _add(self, data: bytes, start: int, end: int) -> None:
        if start >= end:
            return
        self.h.update(memoryview(data)[start:end])
        self.lines += _breaks(data, start, end, self.prev_cr)
        self.prev_cr = data[end - 1] == 13  # (a CR)
        self.pos += end - start


def _breaks(data: bytes, start: int, end: int, prev_cr: bool) -> int:
    """Line ends in data[start:end] (LF, CRLF, lone CR), given whether the byte before it was a CR."""
    n = data.count(b"\n", start, end)
    if data.find(b"\r", start, end) >= 0:  # (else, the usual case, one count rather than three)
        n += data.count(b"\r", start, end) - data.count(b"\r\n", start, end)
    return n - 1 if prev_cr and data[start] == 10 else n


def fingerprint(first: bytes, end_bytes: int) -> tuple[str, int]:
    """The fingerprint of content whose first bytes are `first`, taken over what was read."""
    n = min(FINGERPRINT_BYTES, end_bytes, len(first))
    return hashlib.sha256(first[:n]).hexdigest(), n


def plan(con, path: str, tail: bool, run, alongside: int | None = None) -> Plan:
    """Find the lineage `path` continues, if any, and what of it is new. `run(con, sql, params)`
    runs a statement on the store (store._run).

    alongside=SIZE (a pinned file whose parse the caller limits to its first SIZE stored bytes,
    see `alongside_possible`): when the file continues no entry, the measuring pass of those
    bytes is not waited for but runs in a thread while the file is parsed (hashing releases
    the GIL), since nothing in it can change what is read. `Plan.measured()` gives its result."""
    first = head(path)
    lengths = [n for (n,) in run(con, "SELECT DISTINCT fingerprint_bytes FROM files WHERE state = 'done' "
                                      "AND fingerprint IS NOT NULL AND read_bytes > 0")]
    prints = {(hashlib.sha256(first[:n]).hexdigest(), n) for n in lengths if n <= len(first)}
    candidates = []
    if prints:
        where = " OR ".join("(fingerprint = ? AND fingerprint_bytes = ?)" for _ in prints)
        params = [v for p in sorted(prints) for v in p]
        candidates = run(con, f"SELECT file_id, path, read_bytes, read_lines, prefix_sha256 FROM files "
                              f"WHERE state = 'done' AND read_bytes > 0 AND ({where}) "
                              "ORDER BY read_bytes DESC, file_id DESC", params)
    if alongside is not None and not candidates and not tail:
        # (read whole: end_bytes >= len(first), so the fingerprint needs no reading)
        p = Plan(Reading(line_based=line_based(path)), *fingerprint(first, len(first)))
        p.measuring = _in_thread(_measure_first, path, alongside)
        return p
    reading = measure(path, {c[2] for c in candidates}, tail)
    fp, fp_bytes = fingerprint(first, reading.end_bytes)
    for file_id, seen_path, read_bytes, read_lines, prefix in candidates:
        if reading.at.get(read_bytes) != prefix:
            continue
        if not reading.line_based and read_bytes != reading.total_bytes:
            continue  # no line checkpoint: only the whole content is recognised
        p = Plan(reading, fp, fp_bytes, read_lines + 1, file_id, seen_path)
        p.nothing_new = read_bytes >= reading.end_bytes or _read_further(con, run, file_id, reading.end_bytes)
        return p
    return Plan(reading, fp, fp_bytes)


def alongside_possible(con, run, path: str) -> bool:
    """Can `path` be measured while it is parsed (both bounded to the size it has now)? Only
    if every entry read whole has a fingerprint: then a file whose fingerprint matches no
    entry cannot hold content read before, so its content hash is not needed before parsing."""
    return not run(con, "SELECT 1 FROM files WHERE state = 'done' AND sha256 IS NOT NULL "
                        "AND fingerprint IS NULL AND object_id IS NULL LIMIT 1")


def _measure_first(path: str, size: int) -> Reading:
    """measure() of the file's first `size` stored bytes, read whole."""
    from .sources.base import RAW_LIMITS
    RAW_LIMITS.set({**RAW_LIMITS.get(), path: size})  # (in the thread's own context)
    return measure(path, set(), False)


def _in_thread(fn, *args) -> Future:
    """fn(*args) in a thread, with this context (the pinned file, the read limits)."""
    future: Future = Future()
    context = contextvars.copy_context()

    def work():
        try:
            future.set_result(context.run(fn, *args))
        except BaseException as e:  # (raised where the result is taken)
            future.set_exception(e)
    threading.Thread(target=work, name="portlens-measure", daemon=True).start()
    return future


def later_entries(con, run, file_ids: list[int]) -> list[int]:
    """The entries that continue any of `file_ids`, directly or not. Forgetting an entry must
    forget these too: they hold lines after its checkpoint and vouch for the lines before."""
    if not file_ids:
        return []
    marks = ", ".join("?" for _ in file_ids)
    return [r[0] for r in run(con, "WITH RECURSIVE later(id) AS (SELECT file_id FROM files WHERE continues "
                                   f"IN ({marks}) UNION SELECT f.file_id FROM files f JOIN later "
                                   "ON f.continues = later.id) SELECT id FROM later ORDER BY id", list(file_ids))]


def _read_further(con, run, file_id: int, end_bytes: int) -> bool:
    """Did a later entry of the lineage read past `end_bytes`? Then a file that matches an
    earlier checkpoint but ends before the later one is an incomplete copy of what was read
    (a rotated file being compressed, a copy in progress): nothing in it is new."""
    later = later_entries(con, run, [file_id])
    if not later:
        return False
    marks = ", ".join("?" for _ in later)
    row = run(con, f"SELECT count(*) FROM files WHERE file_id IN ({marks}) AND state = 'done' "
                   "AND read_bytes > ?", [*later, end_bytes])
    return bool(row and row[0][0])


def compressed(path: str) -> bool:
    """gzip, by its magic bytes."""
    with storage.open_input(path) as f:
        return f.peek(2)[:2] == b"\x1f\x8b"


def _open(path: str):
    """The decompressed content, opened as the sources open it (gzip by magic bytes)."""
    from .sources.base import open_binary
    return open_binary(path)
