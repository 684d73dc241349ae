"""Reading Sentinel (Log Analytics) table exports: the framing shared by the `sentinel` source
and the vendor sources whose sniffers must leave exports to it.

A table export is what a Sentinel user gets from the portal or the API:
* CSV with a header row; the time columns carry their zone in the header
  (`TimeGenerated [UTC]`, `TimeGenerated [Local Time]`), times look like
  `9/24/2024, 7:27:24.000 PM` (US locale, 12-hour) or `25/06/2026, 11:32:29.479` (other
  locales: day first, 24-hour), empty values may be the literal `null`, and custom-log columns
  carry type suffixes (`_s`, `_d`, `_b`, `_g`, `_t`, `_r`) in some exports and not in others;
* JSON: an array of row objects (pretty-printed, as the portal writes it), JSON lines, or the
  query API's `{"tables": [{"columns": [...], "rows": [[...]]}]}` response.

`records(path)` yields tables of text columns, one per export column under its *normal name*
(zone and type suffix removed; the first non-empty of columns that normalize alike wins), plus
`_line` (the CSV line where the record starts; the ordinal of a JSON document's record), `_raw`
(the record text) and `_error` (a record that cannot be read). `zones` tells which columns
carried which zone. `export_time_sql` parses the export's time texts.
"""

from __future__ import annotations

import csv
import json
import re
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import csv_records, head_text, header_name, json_records
from ._sql import col
from .base import BATCH_LINES, open_binary

_ZONE = re.compile(r"\s*\[([^\]]*)\]\s*$")
_TYPE_SUFFIX = re.compile(r"^(.+?)_(s|d|b|g|t|r)$")
NULL_LITERALS = ("null", "NULL", "Null")
MAX_DOCUMENT_BYTES = 1 << 30  # a JSON document export is read whole (the portal caps exports far below)


def normal_name(name: str) -> tuple[str, str | None]:
    """(the column's normal name, the zone its header named or None)."""
    name = name.strip().lstrip("\ufeff").strip().strip('"').strip()
    zone = None
    m = _ZONE.search(name)
    if m:
        zone = m.group(1).strip()
        name = name[: m.start()]
    t = _TYPE_SUFFIX.match(name)
    if t and not name.startswith("_"):
        name = t.group(1)
    return name, zone


# ---- recognising an export from a file's head ------------------------------------------------

def csv_header(head: bytes) -> list[str] | None:
    """The raw CSV header names when the file's first line is a table export header (it has a
    TimeGenerated column and at least one other), else None."""
    text = head_text(head)
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if "," not in first or "TimeGenerated" not in first:
        return None
    try:
        names = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    if not any(normal_name(n)[0] == "TimeGenerated" for n in names):
        return None
    return names


_JSON_TIME = re.compile(r'"TimeGenerated(?: \[[^\]]*\])?"\s*:')
_API = re.compile(r'^\s*\{\s*"tables"\s*:\s*\[')


def json_head(head: bytes) -> str | None:
    """'api' for a query API response, 'rows' for an array / JSON lines of row objects with a
    TimeGenerated key, else None."""
    text = head_text(head).lstrip()
    if not text.startswith(("[", "{")):
        return None
    if _API.match(text) and '"columns"' in text:
        return "api"
    # the first record must be a table row (TimeGenerated before its first closing brace): a
    # file of raw vendor records that holds an exported row further down is not an export
    first = text[: text.find("}") + 1] if "}" in text else text
    return "rows" if _JSON_TIME.search(first) else None


def head_names(head: bytes) -> set[str]:
    """Normal column names visible in an export's head (CSV header, or the JSON keys seen)."""
    names = csv_header(head)
    if names is not None:
        return {normal_name(n)[0] for n in names}
    kind = json_head(head)
    if kind is None:
        return set()
    text = head_text(head)
    if kind == "api":
        keys = re.findall(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    else:
        keys = re.findall(r'"((?:[^"\\]|\\.)*)"\s*:', text)
    return {normal_name(k)[0] for k in keys}


def head_types(head: bytes) -> set[str]:
    """Table names given by a `Type` column/key in the head (empty when none is visible)."""
    text = head_text(head)
    found = set(re.findall(r'"Type"\s*:\s*"([A-Za-z0-9_]+)"', text))
    names = csv_header(head)
    if names is not None:
        idx = [i for i, n in enumerate(names) if normal_name(n)[0] == "Type"]
        if idx:
            for row in csv.reader(re.split(r"\r\n|\r|\n", text)[1:6]):
                if len(row) > idx[0] and row[idx[0]].strip():
                    found.add(row[idx[0]].strip())
    return found


# ---- reading records -------------------------------------------------------------------------

class Export:
    """The records of one export file, batch by batch, and the zones its columns named."""

    def __init__(self, path: str, batch_lines: int = BATCH_LINES):
        self.path = path
        self.batch_lines = batch_lines
        self.zones: dict[str, str] = {}
        with open_binary(path) as f:
            head = f.read(65536)
        names = csv_header(head)
        self.kind = "csv" if names is not None else (json_head(head) or "csv")
        # the columns of a CSV export (None for JSON: each record has its own keys)
        self.width = len(names) if names is not None else None

    def records(self) -> Iterator[pa.Table]:
        if self.kind == "csv":
            yield from self._csv()
        elif self.kind == "api" or self._is_document():
            yield from self._document()
        else:
            yield from self._json_lines()

    # CSV ------------------------------------------------------------------------------------
    def _csv(self) -> Iterator[pa.Table]:
        with open_binary(self.path) as f:
            head = f.read(1 << 20)
        names = csv_header(head) or []
        for n in names:  # csv_records names columns without their zone: remember it here
            name, zone = normal_name(n)
            if zone is not None:
                self.zones.setdefault(name, zone)
        wanted = tuple(dict.fromkeys(header_name(n) for n in names))
        for t in csv_records(self.path, wanted, self.batch_lines):
            yield self._normalize(t, [c for c in t.column_names if not c.startswith("_")])

    # JSON lines -------------------------------------------------------------------------------
    def _json_lines(self) -> Iterator[pa.Table]:
        for recs in json_records(self.path, self.batch_lines, ("records", "value")):
            ok = recs.filter(pc.is_null(recs["_error"]))
            bad = recs.filter(pc.is_valid(recs["_error"])).select(["_line", "_raw", "_error"])
            keys: list[str] = []
            if ok.num_rows:
                found = asim.query("SELECT DISTINCT unnest(json_keys(rec)) AS k FROM r", r=ok)["k"].to_pylist()
                keys = sorted(k for k in found if k is not None)
            if keys:
                paths = ", ".join("'$.\"" + k.replace("'", "''").replace('"', '\\"') + "\"'" for k in keys)
                values = asim.query(f"SELECT json_extract_string(rec, [{paths}]) AS v FROM r", r=ok)["v"]
                cols = {"_line": ok["_line"], "_raw": ok["_raw"], "_error": ok["_error"]}
                for i, k in enumerate(keys):
                    cols[k] = pc.list_element(values, i)
                table = pa.table(cols)
            else:
                table = ok.select(["_line", "_raw", "_error"])
            out = self._normalize(table, keys)
            if bad.num_rows:
                out = pa.concat_tables([out, bad], promote_options="default")
            yield out

    # JSON documents ---------------------------------------------------------------------------
    def _is_document(self) -> bool:
        with open_binary(self.path) as f:
            text = f.read(65536).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
        if text.startswith("["):
            return True
        first = text.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return False  # a whole object on the first line: JSON lines
        except ValueError:
            return True

    def _document(self) -> Iterator[pa.Table]:
        with open_binary(self.path) as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
        text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
        if len(data) > MAX_DOCUMENT_BYTES:
            yield _error_table(1, text[:65536], "JSON document larger than 1 GiB: export it as JSON lines")
            return
        doc, error = load_lenient(text)
        if error is not None:
            yield _error_table(error[0], text[:65536], error[1])
            return
        rows = _document_rows(doc)
        if isinstance(rows, str):
            yield _error_table(1, text[:65536], rows)
            return
        for start in range(0, max(len(rows), 1), self.batch_lines):
            part = rows[start:start + self.batch_lines]
            if not part:
                return
            yield self._from_objects(part, start)

    def _from_objects(self, part: list, start: int) -> pa.Table:
        keys: dict[str, None] = {}
        for r in part:
            if isinstance(r, dict):
                keys.update(dict.fromkeys(r))
        cols: dict[str, list] = {k: [] for k in keys}
        lines, raws, errors = [], [], []
        for i, r in enumerate(part):
            lines.append(start + i + 1)
            raws.append(json.dumps(r, ensure_ascii=False)[:65536])
            ok = isinstance(r, dict)
            errors.append(None if ok else "record is not a JSON object")
            for k in keys:
                cols[k].append(_text(r.get(k)) if ok else None)
        table = pa.table({"_line": pa.array(lines, pa.int64()), "_raw": pa.array(raws, pa.string()),
                          "_error": pa.array(errors, pa.string()),
                          **{k: pa.array(v, pa.string()) for k, v in cols.items()}})
        return self._normalize(table, list(keys))

    # names ------------------------------------------------------------------------------------
    def _normalize(self, table: pa.Table, names: list[str]) -> pa.Table:
        """Rename columns to their normal names (merging columns that normalize alike), turn
        blanks and `null` literals into NULL, and remember each column's zone."""
        out: dict[str, pa.Array] = {c: table[c] for c in ("_line", "_raw", "_error") if c in table.column_names}
        n = table.num_rows
        for raw in names:
            name, zone = normal_name(raw)
            if not name or name.startswith("_") and name in out:
                continue
            if zone is not None:
                self.zones.setdefault(name, zone)
            values = table[raw]
            values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
            values = pc.utf8_trim_whitespace(values.cast(pa.string()))
            blank = pc.or_(pc.equal(values, ""), pc.is_in(values, value_set=pa.array(NULL_LITERALS)))
            values = pc.if_else(blank, pa.scalar(None, pa.string()), values)
            out[name] = pc.coalesce(out[name], values) if name in out else values
        if "_error" not in out:
            out["_error"] = pa.nulls(n, pa.string())
        return pa.table(out)


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e18:
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _error_table(line: int, raw: str, reason: str) -> pa.Table:
    return pa.table({"_line": pa.array([line], pa.int64()), "_raw": pa.array([raw], pa.string()),
                     "_error": pa.array([reason], pa.string())})


_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])')


def load_lenient(text: str):
    """(document, None) or (None, (line, reason)). A trailing comma before `}` or `]` (hand-
    edited exports) is forgiven; any other JSON error is reported with its position."""
    try:
        return json.loads(text), None
    except RecursionError:
        return None, (1, "invalid JSON document: nested too deeply")
    except ValueError as first:
        fixed = _TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text)
        try:
            return json.loads(fixed), None
        except (ValueError, RecursionError):
            e = first
            if isinstance(e, json.JSONDecodeError):
                return None, (e.lineno, f"invalid JSON document: {e.msg} at line {e.lineno} column {e.colno}")
            return None, (1, f"invalid JSON document: {e}")


def _document_rows(doc) -> list | str:
    """The row objects of a JSON export document, or a reason it has none."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if isinstance(doc.get("tables"), list):
            rows: list = []
            for table in doc["tables"]:
                if not isinstance(table, dict):
                    return "query API response: a table is not an object"
                columns = [c.get("name") if isinstance(c, dict) else None for c in table.get("columns") or []]
                if not columns or any(not isinstance(c, str) for c in columns):
                    return "query API response: a table has no column names"
                for r in table.get("rows") or []:
                    rows.append(dict(zip(columns, r)) if isinstance(r, list) else r)
            return rows
        for key in ("value", "records"):
            if isinstance(doc.get(key), list):
                return doc[key]
        return [doc]
    return "JSON document is not an object or array"


# ---- export times ----------------------------------------------------------------------------

_US = ["%m/%d/%Y %I:%M:%S.%g %p", "%m/%d/%Y %I:%M:%S.%f %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p"]
_DAY_FIRST = ["%d/%m/%Y %H:%M:%S.%g", "%d/%m/%Y %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
              "%d.%m.%Y %H:%M:%S.%g", "%d.%m.%Y %H:%M:%S", "%d-%m-%y %H:%M", "%d-%m-%Y %H:%M:%S"]


def export_time_sql(expr: str, local_zone: str | None = None) -> str:
    """SQL: an export's time text -> TIMESTAMPTZ (NULL when unreadable).

    ISO texts with a zone keep it; `M/D/YYYY, h:mm:ss[.fff] AM|PM` (US locale) and day-first
    24-hour layouts (`D/M/YYYY, HH:mm:ss[.fff]`, `D.M.YYYY`, `DD-MM-YY HH:mm`: every other
    portal locale) and zone-less ISO are wall-clock times: read in `local_zone` (an IANA name)
    when given, else as UTC."""
    x = f"regexp_replace(trim({expr}), '^([0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-][0-9]{{2,4}}),\\s*', '\\1 ')"
    us = ", ".join(f"'{f}'" for f in _US)
    day = ", ".join(f"'{f}'" for f in _DAY_FIRST)
    naive = (f"CASE WHEN regexp_matches({x}, '(?i)[ap]m$') THEN try_strptime({x}, [{us}]) "
             f"WHEN regexp_matches({x}, '^[0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-][0-9]{{2,4}} ') "
             f"THEN try_strptime({x}, [{day}]) "
             f"ELSE TRY_CAST({x} AS TIMESTAMP) END")
    zoned = f"regexp_matches({x}, '(?i)(z|[+-][0-9]{{2}}:?[0-9]{{2}})$')"
    wall = f"timezone({col_literal(local_zone)}, {naive})" if local_zone else f"CAST({naive} AS TIMESTAMPTZ)"
    # (TIMESTAMPTZ casts of naive values are UTC: the engine's session zone is UTC)
    return f"CASE WHEN {zoned} THEN TRY_CAST({x} AS TIMESTAMPTZ) ELSE {wall} END"


def col_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parse_times(values: pa.Array, local_zone: str | None = None) -> pa.Array:
    """`export_time_sql` over an Arrow text column -> timestamp[us, UTC]."""
    t = pa.table({"x": values})
    return asim.query(f"SELECT {export_time_sql(col('x'), local_zone)} AS t FROM t", t=t)["t"].combine_chunks()


# ---- which exports the `sentinel` source reads -------------------------------------------------

# Tables the export family routes (sentinel.TABLE_ROUTES plus the vendor-mixing tables).
ROUTED_TABLES = ("Illumio_Flow_Events_CL", "Illumio_Flow_Events2_CL", "CarbonBlackEvents_CL",
                 "CarbonBlackNotifications_CL", "CarbonBlackAuditLogs_CL", "SentinelOne_CL", "barracuda_CL",
                 "SecurityIoTRawEvent", "AZFWNetworkRule", "AZFWNatRule", "AZFWThreatIntel", "AZFWIdpsSignature")
MIXED_TABLES = ("CommonSecurityLog", "Syslog", "Event")
LEFT_TO_OTHERS = ("NTANetAnalytics", "AzureNetworkAnalytics_CL")

# Columns a row fills, when the export has no Type column: (table, columns that must be set).
SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CommonSecurityLog", ("DeviceVendor", "DeviceProduct")),
    ("Syslog", ("SyslogMessage",)),
    ("Event", ("EventData", "Source")),
    ("Illumio_Flow_Events_CL", ("src_ip", "dst_ip", "pd", "pce_fqdn")),
    ("CarbonBlackEvents_CL", ("eventType", "netconn_protocol")),
    ("CarbonBlackEvents_CL", ("type", "netconn_protocol")),
    ("SentinelOne_CL", ("alertInfo_eventType",)),
    ("SentinelOne_CL", ("event_name", "agentDetectionInfo_uuid")),
    ("barracuda_CL", ("LogType", "UnitName")),
    ("SecurityIoTRawEvent", ("RawEventCategory", "RawEventName", "EventDetails")),
    ("AZFWNetworkRule", ("SourceIp", "DestinationIp", "RuleCollection", "Action")),
    ("NTANetAnalytics", ("FlowType", "FaSchemaVersion")),
    ("AzureNetworkAnalytics_CL", ("FlowType", "FlowStatus")),
)


def table_of_head(head: bytes) -> set[str]:
    """The tables an export's head shows (its Type values, else the signature its columns
    fill); empty when the head is not a table export."""
    if csv_header(head) is None and json_head(head) is None:
        return set()
    types = head_types(head)
    if types:
        return types
    names = head_names(head)
    for table, needed in SIGNATURES:
        if all(n in names for n in needed):
            return {table}
    return set()


def claims(tables: set[str]) -> bool:
    """Whether the export family reads an export holding these tables."""
    if not tables:
        return False
    routed = set(ROUTED_TABLES) | set(MIXED_TABLES)
    if tables & set(LEFT_TO_OTHERS):
        return False
    return bool(tables & routed)


def is_table_export(head: bytes) -> bool:
    """For other sources' sniffers: the file is a table export the `sentinel` source reads."""
    return claims(table_of_head(head))


