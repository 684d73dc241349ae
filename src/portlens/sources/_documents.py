"""JSON documents for line-oriented JSON sources.

Several sources read JSON one record per line (mde, vmconnection, vectra, zeek, zscaler, native,
windows-firewall, ...). Exports and API dumps often come as one document instead: a pretty-
printed object or an array of records. `as_json_lines` turns such a document into the JSON
lines those sources read (one compact record per line, in order; a record's line number is then
its ordinal, as for the document readers in `_records`), so every JSON source accepts both
forms. Sources that read documents themselves (`Source.reads_json_documents`) are left alone.

Only multi-line documents are converted: a file whose first line is a complete JSON value is
JSON lines already. A document is read whole (as `_records.json_records` does), up to
`MAX_BYTES`; a trailing comma before `}` or `]` is forgiven; an unreadable document is left as
it is, for the source to quarantine line by line.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from contextlib import contextmanager
from typing import Iterator

from ._tables import load_lenient
from .base import open_binary

MAX_BYTES = 1 << 30
_WRAPPERS = ("records", "value", "data", "events", "Records")


def is_document_head(head: bytes) -> bool:
    """The file starts a JSON document spread over several lines."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] not in (b"{", b"["):
        return False
    first = text.split(b"\n", 1)[0].strip()
    try:
        json.loads(first)
        return False
    except ValueError:
        return True


def records(doc) -> list:
    """The records of a document: an array's elements, a wrapper's array, else the object."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in _WRAPPERS:
            if isinstance(doc.get(key), list) and len(doc) <= 3:
                return doc[key]
    return [doc]


def head_lines(head: bytes, path: str) -> bytes | None:
    """The first records of a document file as JSON lines (for sniffers), else None."""
    if not is_document_head(head):
        return None
    try:
        with open_binary(path) as f:
            data = f.read(4 << 20)
    except OSError:
        return None
    doc, error = load_lenient(data.decode("utf-8", errors="replace").lstrip("\ufeff"))
    if error is not None:
        return None
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records(doc)[:20]).encode() + b"\n"


@contextmanager
def as_json_lines(path: str) -> Iterator[str | None]:
    """A temporary JSON-lines copy of a JSON document file (None when the file is not a
    readable multi-line document); removed afterwards."""
    try:
        with open_binary(path) as f:
            head = f.read(65536)
        if not is_document_head(head):
            yield None
            return
        with open_binary(path) as f:
            data = f.read(MAX_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        yield None  # a cut or corrupt gzip: the line reader reports it with its line
        return
    if len(data) > MAX_BYTES:
        yield None
        return
    doc, error = load_lenient(data.decode("utf-8", errors="replace").lstrip("\ufeff"))
    if error is not None:
        yield None
        return
    fd, tmp = tempfile.mkstemp(prefix="portlens-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for r in records(doc):
                out.write(json.dumps(r, ensure_ascii=False))
                out.write("\n")
        yield tmp
    finally:
        os.unlink(tmp)
