"""Sources that read CEF records. `CefRecords` is the CEF mapping step, in two parts: the CEF
fields of a syslog line (its header's host name and time, `_syslog.parse_cef` of the message
with `cef_keys()`), then `map_cef` of those fields, so that the fields can also come from
elsewhere: the `sentinel` source reads them from a CommonSecurityLog export's columns. Fortinet,
Palo Alto, Check Point and Zscaler map their CEF records this way, besides their other forms.

`CefSource` is the shape shared by the CEF-borne vendor sources (SonicWall, CrowdStrike, Cisco
Firepower, Forcepoint, Barracuda): a syslog line holding one CEF record of the vendor is split
into the CEF header and the extension keys the vendor's mapping reads, and the mapping is one
SQL statement over those columns, whatever the input.

A subclass sets `CEF_VENDOR` (a regex on the CEF vendor), `CEF_PRODUCT` (a regex on the
product, '' for any), `KEYS` (the extension keys its SQL reads, besides the header columns
vendor, product, version, signature, name, severity) and `SQL`, a query over table `c` that
returns ASIM columns plus `_skip` (the record is not a network session) and `_error`. The
table `c` also has `_time` (the CEF `rt`, else the syslog header time), `_host` (the syslog
header's host name) and `_cef` (the record is CEF of this vendor)."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog as S
from ._tables import is_table_export
from .base import Query, Source


class CefRecords(Source):
    """A source whose lines hold CEF records: `map_lines` is `map_cef_lines`, unless the source
    reads other forms too (then it calls `map_cef_lines` or `map_cef` for its CEF records)."""

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":
        return self.map_cef_lines(lines, numbers)

    def map_cef_lines(self, lines: pa.Array, numbers: pa.Array, text: pa.Array | None = None) -> "pa.Table | Query":
        """`map_cef` of syslog lines; `text`: what their header and CEF are read from, when
        not the lines themselves."""
        head = S.arrays(S.syslog_header(lines if text is None else text, parse_time=False))
        return self.map_cef(head, S.parse_cef(head["message"], self.cef_keys()), lines, numbers)

    def cef_keys(self) -> tuple[str, ...]:  # pragma: no cover - interface
        """The CEF extension keys `map_cef` reads."""
        raise NotImplementedError

    def map_cef(self, head: dict, cef: pa.Table, lines: pa.Array,
                numbers: pa.Array) -> "pa.Table | Query":  # pragma: no cover - interface
        """CEF records' fields (see `cef_keys`) -> the parsed columns; `lines` is the records' text."""
        raise NotImplementedError


class CefSource(CefRecords):
    CEF_VENDOR = ""
    CEF_PRODUCT = ""
    KEYS: tuple[str, ...] = ()
    SQL = ""

    def sniff(self, head: bytes, path: str) -> bool:
        if is_table_export(head):  # exports are the `sentinel` source's; it routes the rows here
            return False
        cef = S.first_cef_vendor(head)
        return cef is not None and self._ours(*cef)

    def _ours(self, vendor: str, product: str) -> bool:
        return bool(re.fullmatch(self.CEF_VENDOR, vendor, re.I)) and \
            bool(re.search(self.CEF_PRODUCT, product, re.I) if self.CEF_PRODUCT else True)

    def cef_keys(self) -> tuple[str, ...]:
        return ("rt",) + tuple(self.KEYS)

    def map_cef(self, head: dict, cef: pa.Table, lines: pa.Array, numbers: pa.Array) -> pa.Table:
        cef = S.arrays(cef)
        vendor_ok = pc.and_(pc.fill_null(pc.match_substring_regex(cef["vendor"], f"(?i)^(?:{self.CEF_VENDOR})$"), False),
                            pc.fill_null(pc.match_substring_regex(cef["product"], f"(?i){self.CEF_PRODUCT}"), False)
                            if self.CEF_PRODUCT else pa.repeat(pa.scalar(True), len(lines)))
        rt, header_time = S.parse_timestamps_many([cef["rt"], head["timestamp_text"]])
        cols = {k: v for k, v in cef.items() if k not in ("prefix", "extension")}
        cols.update({"_time": pc.coalesce(rt, header_time), "_host": head["hostname"],
                     "_cef": pc.and_(cef["is_cef"], vendor_ok)})
        out = asim.query(self.SQL, c=pa.table(cols))
        label = f"{self.vendor} CEF record".strip()
        not_ours = pc.invert(pc.fill_null(cols["_cef"], False))
        if pc.any(not_ours).as_py():
            out = out.set_column(out.schema.get_field_index("_error"), "_error",
                                 pc.if_else(not_ours, pa.scalar(f"not a {label}"), out["_error"]))
            out = out.set_column(out.schema.get_field_index("_skip"), "_skip",
                                 pc.and_(pc.fill_null(out["_skip"], False), pc.invert(not_ours)))
        return out.append_column("_line", numbers).append_column("_raw", lines)


def ms_time_sql(expr: str) -> str:
    """Epoch milliseconds text -> TIMESTAMPTZ (NULL when not a number)."""
    return f"make_timestamp(TRY_CAST(TRY_CAST({expr} AS DOUBLE) AS BIGINT) * 1000)::TIMESTAMPTZ"


def map_sql(expr: str, mapping: dict, default: str = "NULL") -> str:
    """CASE mapping of text values (exact match) to text; `default` otherwise."""
    whens = " ".join(f"WHEN {S.sql_str(k)} THEN {S.sql_str(v) if v is not None else 'NULL'}"
                     for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"
