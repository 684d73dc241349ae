"""The shape shared by the JSON-record vendor sources (Illumio, Carbon Black Cloud, SentinelOne,
Defender for IoT, Barracuda's table): records are read by `_records.json_records` (JSON lines,
one pretty-printed object or array, `{"records": [...]}` wrappers), each wanted field is the
first non-empty of its JSON paths, and the mapping is one SQL statement over those fields.
The `sentinel` source feeds `map_records` the JSON object of each exported table row (column
names without their type suffix), so a vendor has one mapping whatever the input.

A subclass sets `FIELDS` (name -> JSON paths, tried in order), `MARKERS` (a bytes regex that
must match a file's head for the sniffer) and `SQL`, a query over table `r` (the fields, as
text, plus `_line`, `_raw`) that returns ASIM columns plus `_skip` and `_error`."""

from __future__ import annotations

import re
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import json_records
from ._sql import col, lit
from ._tables import is_table_export
from .base import BATCH_LINES, Batch, Source


def paths(*names: str) -> tuple[str, ...]:
    """JSON paths for a field the table flattens (`alertInfo_dstIp`) and the API nests
    (`alertInfo.dstIp`): every name as given, then with `_` read as nesting at the first `_`."""
    out = []
    for n in names:
        out.append("$." + '"' + n + '"')
    for n in names:
        if "_" in n.strip("_"):
            head, tail = n.split("_", 1)
            out.append(f'$."{head}"."{tail}"')
    return tuple(dict.fromkeys(out))


class JsonSource(Source):
    reads_json_documents = True  # (reads pretty JSON documents itself: json_records)

    FIELDS: dict[str, tuple[str, ...]] = {}
    MARKERS: re.Pattern | None = None
    ARRAYS: tuple[str, ...] = ("records",)  # wrapper keys whose array holds the records
    SQL = ""

    def sniff(self, head: bytes, path: str) -> bool:
        if is_table_export(head):  # exports are the `sentinel` source's; it routes the rows here
            return False
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        return text[:1] in (b"{", b"[") and self.MARKERS is not None and bool(self.MARKERS.search(head))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        for recs in json_records(path, batch_lines, self.ARRAYS):
            ok = pc.is_null(recs["_error"])
            bad = recs.filter(pc.invert(ok)).select(["_line", "_raw", "_error"])
            good = recs.filter(ok)
            parts = [self.map_records(good)] if good.num_rows else []
            if bad.num_rows:
                parts.append(bad)
            if parts:
                yield self.finish(pa.concat_tables(parts, promote_options="default"), path)

    def map_records(self, recs: pa.Table) -> pa.Table:
        """JSON records (`_line`, `_raw`, `rec`) -> parsed columns."""
        flat = [p for ps in self.FIELDS.values() for p in ps]
        plist = ", ".join(lit(p) for p in flat)
        cols, i = [], 1
        for name, ps in self.FIELDS.items():
            items = [f"NULLIF(NULLIF(trim(_v[{i + k}]), ''), 'null')" for k in range(len(ps))]
            cols.append(f"{items[0] if len(items) == 1 else 'coalesce(' + ', '.join(items) + ')'} AS {col(name)}")
            i += len(ps)
        fields = asim.query(f"SELECT _line, _raw, {', '.join(cols)} FROM "
                            f"(SELECT _line, _raw, json_extract_string(rec, [{plist}]) AS _v FROM recs)",
                            recs=recs.select(["_line", "_raw", "rec"]))
        return asim.query(self.SQL, r=fields)
