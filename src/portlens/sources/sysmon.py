"""Sysmon event 3 (NetworkConnect): Windows event XML and Sysmon for Linux syslog lines.

Forms accepted
- Windows event XML: `<Event>` documents one per line, pretty-printed over many lines, or
  wrapped in an `<Events>` export (several events may share a line); UTF-8 or UTF-16 (BOM).
  Comments, `<?xml?>` and `<Events>` framing are not records.
- Sysmon for Linux syslog lines: `<header> sysmon: <Event>...</Event>`.
EventData is read by `Data Name` (case-insensitive), never by position: Image and User may be
absent (Linux). Events other than EventID 3 of a Sysmon provider are skipped; so are lines
outside any `<Event>` that are not XML framing (other syslog programs). An `<Event>` with no
`</Event>` before the end of the file (or longer than 4 MiB) is quarantined as truncated.

Mapping decisions (spec 2.10)
- EventType EndpointNetworkSession (the direction is relative to the host); EventResult
  Success; no DvcAction; EventOriginalType 3; EventOriginalUid = EventRecordID.
- Initiated true -> Outbound, false -> Inbound. Sysmon's Source is always the initiator, so
  Source* -> Src* with no swap; Image/User/ProcessId go to the local side (Src on outbound,
  Dst on inbound): Src/DstAppName, Src/DstUsername; DvcIpAddr = the local address.
- TimeGenerated = EventStartTime = EventEndTime = UtcTime (UTC with no zone marker), falling
  back to System/TimeCreated/@SystemTime.
- Protocol -> NetworkProtocol (upper-cased); SourceIsIpv6 -> NetworkProtocolVersion;
  DestinationPortName -> NetworkApplicationProtocol (upper); `-` means unknown everywhere.
- Dvc = Computer, DvcHostname = its first label. One Vendor/Product pair: Microsoft / Sysmon;
  Linux events are marked by DvcOs "Linux" in AdditionalFields (with ProcessGuid, ProcessId,
  RuleName, SourcePortName, Provider, and Src/DstFQDN when a host name has a domain; the
  Src/DstHostname columns keep the first label).
"""

from __future__ import annotations

import codecs
import io
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from .base import BATCH_LINES, Batch, Source, open_binary, read_lines
from .zeek import bag_sql, col, lit

MAX_RECORD_CHARS = 4 << 20
_START = r"<Event[\s>]"
_EVENT = r"(?s)<Event[\s>].*?</Event>"
_FRAMING = r"(?s)<\?xml.*?\?>|<!--.*?-->|</?Events\b[^>]*>|\s+"


# ---- reading: UTF-8 or UTF-16 text, as (lines, numbers) batches --------------------------------

def read_text_lines(path: str, batch_lines: int = BATCH_LINES) -> Iterator[tuple[pa.Array, pa.Array]]:
    """base.read_lines, plus UTF-16 files (Windows event exports) detected by their BOM."""
    with open_binary(path) as f:
        bom = f.read(2)
    if bom not in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        yield from read_lines(path, batch_lines)
        return
    number = 0
    carry = ""
    with io.TextIOWrapper(open_binary(path), encoding="utf-16", errors="replace", newline="") as f:
        while True:
            chunk = f.read(4 << 20)
            data = carry + chunk
            if chunk:
                cut = max(data.rfind("\n"), data.rfind("\r"))
                if cut < 0 or (data[cut] == "\r" and cut == len(data) - 1):
                    carry = data
                    continue
                text, carry = data[:cut + 1], data[cut + 1:]
            else:
                text, carry = data, ""
            text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
            if text.endswith("\n") and chunk:
                text = text[:-1]
            lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten().cast(pa.string())
            numbers = pa.array(np.arange(number + 1, number + 1 + len(lines), dtype=np.int64))
            number += len(lines)
            keep = pc.not_equal(pc.utf8_length(pc.utf8_trim_whitespace(lines)), 0)
            lines, numbers = lines.filter(keep), numbers.filter(keep)
            for start in range(0, len(lines), batch_lines):
                yield lines.slice(start, batch_lines), numbers.slice(start, batch_lines)
            if not chunk:
                break


def head_text(head: bytes) -> str:
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


# ---- framing: lines -> one row per <Event>...</Event> record ----------------------------------

def xml_records(path: str, batch_lines: int = BATCH_LINES) -> Iterator[pa.Table]:
    """Yield tables of `_line` (the line where the record starts), `_raw` (the record text),
    `_error` (truncated record) and `_skip` (a line outside any record that is not framing).

    A line belongs to the record open before it (a running count of `<Event` starts minus
    `</Event>` ends, floored at zero); a record that is still open at the end of a batch is
    carried to the next one as a single pseudo-line."""
    carry: tuple[str, int] | None = None
    for lines, numbers in read_text_lines(path, batch_lines):
        if carry is not None:
            lines = pa.concat_arrays([pa.array([carry[0]], pa.string()), lines])
            numbers = pa.concat_arrays([pa.array([carry[1]], pa.int64()), numbers])
            carry = None
        table, carry = _frame(lines, numbers)
        if carry is not None and len(carry[0]) > MAX_RECORD_CHARS:
            table = pa.concat_tables([table, _framing_error(carry, "truncated: <Event> record "
                                      "longer than 4 MiB with no </Event>")], promote_options="default")
            carry = None
        if table.num_rows:
            yield table
    if carry is not None:
        yield _framing_error(carry, "truncated: <Event> with no </Event> before the end of the file")


def _framing_error(carry: tuple[str, int], reason: str) -> pa.Table:
    return pa.table({"_line": pa.array([carry[1]], pa.int64()),
                     "_raw": pa.array([carry[0][:65536]], pa.string()),
                     "_error": pa.array([reason], pa.string()),
                     "_skip": pa.array([False])})


def _frame(lines: pa.Array, numbers: pa.Array) -> tuple[pa.Table, tuple[str, int] | None]:
    starts = pc.count_substring_regex(lines, _START).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = pc.count_substring(lines, "</Event>").to_numpy(zero_copy_only=False).astype(np.int64)
    # Every line with an `<Event` start begins a record (records do not nest: an unclosed one
    # before it was truncated); the following lines belong to it while it is open.
    has_start = starts > 0
    group = np.cumsum(has_start)
    running = np.cumsum(starts - ends)
    before = np.concatenate([[0], running[:-1]])
    start_idx = np.flatnonzero(has_start)
    base = np.where(group > 0, before[start_idx[np.maximum(group - 1, 0)]] if len(start_idx) else 0, 0)
    inside = has_start | ((group > 0) & (before - base > 0))
    carry = None
    if len(lines) and group[-1] > 0 and running[-1] - base[-1] > 0:  # last record still open
        tail = inside & (group == group[-1])
        idx = np.flatnonzero(tail)
        carry = ("\n".join(pc.take(lines, pa.array(idx)).to_pylist()), int(numbers[int(idx[0])].as_py()))
        inside &= ~tail
    parts = []
    # the common case, one whole event on its own line: the line is the record
    size = np.bincount(group[inside], minlength=group[-1] + 1 if len(group) else 1)
    single = has_start & inside & (starts == 1) & (ends >= 1) & (size[group] == 1)
    if single.any():
        keep = pa.array(single)
        parts.append(pa.table({"_line": numbers.filter(keep), "_raw": lines.filter(keep)}))
    multi = inside & ~single
    if multi.any():
        keep = pa.array(multi)
        t = pa.table({"line": lines.filter(keep), "n": numbers.filter(keep),
                      "g": pa.array(group[multi]), "starts": pa.array(starts[multi])})
        parts.append(asim.query(f"""
            WITH recs AS (
              SELECT min(n) AS n, string_agg(line, e'\\n' ORDER BY n) AS text, sum(starts) AS starts
              FROM t GROUP BY g),
            events AS (SELECT n, text, starts, regexp_extract_all(text, {lit(_EVENT)}) AS ev FROM recs)
            SELECT n AS _line, unnest(ev) AS _raw, NULL::VARCHAR AS _error FROM events WHERE len(ev) > 0
            UNION ALL
            SELECT n, left(text, 65536), 'truncated: <Event> with no </Event>'
            FROM (SELECT n, text, unnest(range(CAST(starts - len(ev) AS BIGINT))) FROM events
                  WHERE starts > len(ev))""", t=t))
    outside = ~inside
    if carry is not None:
        outside &= ~tail
    if outside.any():
        keep = pa.array(outside)
        rest = pc.replace_substring_regex(lines.filter(keep), _FRAMING, "")
        garbage = pc.not_equal(pc.utf8_length(rest), 0)
        parts.append(pa.table({"_line": numbers.filter(keep).filter(garbage),
                               "_raw": lines.filter(keep).filter(garbage)})
                     .append_column("_skip", pa.repeat(pa.scalar(True), pc.sum(garbage).as_py() or 0)))
    if not parts:
        return pa.table({"_line": pa.array([], pa.int64()), "_raw": pa.array([], pa.string()),
                         "_error": pa.array([], pa.string()), "_skip": pa.array([], pa.bool_())}), carry
    out = pa.concat_tables(parts, promote_options="default")
    for name, typ in (("_error", pa.string()), ("_skip", pa.bool_())):
        if name not in out.column_names:
            out = out.append_column(name, pa.nulls(out.num_rows, typ))
    out = out.set_column(out.schema.get_field_index("_skip"), "_skip", pc.fill_null(out["_skip"], False))
    return out.take(pc.sort_indices(out["_line"])), carry


# ---- field extraction ------------------------------------------------------------------------

_DATA = r"""^Name\s*=\s*["'](?P<k>[^"']*)["']\s*(?:/>|>(?P<v>[^<]*)</Data>)"""  # after "<Data "
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def _clean(values: pa.Array) -> pa.Array:
    """XML-unescape and trim a text column; empty -> NULL."""
    values = pc.utf8_trim_whitespace(values)
    if pc.any(pc.fill_null(pc.match_substring(values, "&"), False)).as_py():
        for entity, char in _ENTITIES:
            values = pc.replace_substring(values, entity, char)
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def event_fields(t: pa.Table, data: tuple[str, ...], system: tuple[str, ...] = (),
                 attributes: tuple[tuple[str, str], ...] = (), record: str = "_raw") -> pa.Table:
    """Add to `t` one text column per `<Data Name=...>` in `data` (names matched
    case-insensitively, first occurrence wins, NULL when absent or empty), per `<System>`
    child tag in `system` and per (tag, attribute) in `attributes` (column `tag@attribute`).

    Vectorized with Arrow: the records are split on `<Data ` once, every piece is matched by
    one anchored regex, and each wanted name is found among the pieces with NumPy."""
    raw = t[record].combine_chunks() if isinstance(t[record], pa.ChunkedArray) else t[record]
    n = len(raw)
    if data:
        parts = pc.split_pattern(raw, "<Data ")
        parent = pc.list_parent_indices(parts).to_numpy()
        kv = pc.extract_regex(parts.flatten(), _DATA)
        keys = pc.fill_null(pc.utf8_lower(pc.utf8_trim_whitespace(kv.field("k"))), "")
        values = kv.field("v")
    for name in data:
        hit = np.flatnonzero(pc.equal(keys, name.lower()).to_numpy(zero_copy_only=False))
        rows, first = np.unique(parent[hit], return_index=True)
        if not len(hit):
            t = t.append_column(name, pa.nulls(n, pa.string()))
            continue
        index = np.full(n, -1, np.int64)
        index[rows] = hit[first]
        found = pc.take(values, pa.array(np.maximum(index, 0)))
        t = t.append_column(name, _clean(pc.if_else(pa.array(index >= 0), found, pa.scalar(None, pa.string()))))
    for tag in system:
        m = pc.extract_regex(raw, rf"<{tag}(?:\s[^>]*)?>(?P<x>[^<]*)</{tag}>")
        t = t.append_column(tag, _clean(m.field("x")))
    for tag, attr in attributes:
        m = pc.extract_regex(raw, rf"""<{tag}\s[^>]*?\b{attr}\s*=\s*["'](?P<x>[^"']*)["']""")
        t = t.append_column(f"{tag}@{attr}", _clean(m.field("x")))
    return t


def short_host_sql(expr: str) -> str:
    """First label of a host name (not of an IP address)."""
    return (f"CASE WHEN regexp_full_match({expr}, '[0-9.]+|.*:.*') THEN {expr} "
            f"ELSE split_part({expr}, '.', 1) END")


def fqdn_sql(expr: str) -> str:
    """The name when it has a domain part (not an IP address), else NULL."""
    return f"CASE WHEN contains({expr}, '.') AND NOT regexp_full_match({expr}, '[0-9.]+|.*:.*') THEN {expr} END"


# ---- Sysmon ----------------------------------------------------------------------------------

_FIELDS = ("UtcTime", "ProcessGuid", "ProcessId", "Image", "User", "Protocol", "Initiated",
           "SourceIsIpv6", "SourceIp", "SourceHostname", "SourcePort", "SourcePortName",
           "DestinationIsIpv6", "DestinationIp", "DestinationHostname", "DestinationPort",
           "DestinationPortName", "RuleName")


class Sysmon(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        text = head_text(head)
        return ("<Event" in text and ("Microsoft-Windows-Sysmon" in text or "Linux-Sysmon" in text
                                      or "sysmon: <Event" in text.lower()))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        for records in xml_records(path, batch_lines):
            yield self.finish(self.map_records(records), path)

    def map_records(self, t: pa.Table) -> pa.Table:
        f = event_fields(t, _FIELDS, ("EventID", "EventRecordID", "Computer"),
                         (("Provider", "Name"), ("TimeCreated", "SystemTime")))
        d = {name: f"NULLIF({col(name)}, '-')" for name in _FIELDS}  # `-` means unknown
        outbound, inbound = "(_initiated = 'true')", "(_initiated = 'false')"
        provider = col("Provider@Name")
        event_id = 'trim("EventID")'
        v6 = f"coalesce(lower({d['SourceIsIpv6']}) = 'true' OR contains({d['SourceIp']}, ':'), false)"

        def local(expr):
            return f"CASE WHEN {outbound} THEN {expr} END"

        def remote(expr):
            return f"CASE WHEN {inbound} THEN {expr} END"

        bag = bag_sql({
            "DvcOs": f"CASE WHEN contains({provider}, 'Linux') THEN 'Linux' ELSE 'Windows' END",
            "Provider": provider, "ProcessGuid": d["ProcessGuid"],
            "ProcessId": f"TRY_CAST({d['ProcessId']} AS BIGINT)", "RuleName": d["RuleName"],
            "SourcePortName": d["SourcePortName"],
            "SrcFQDN": fqdn_sql(d["SourceHostname"]), "DstFQDN": fqdn_sql(d["DestinationHostname"]),
        })
        time = (f"coalesce({asim.time_sql(d['UtcTime'])}, "
                f"{asim.time_sql(col('TimeCreated@SystemTime'))})")
        sql = f"""
        WITH x AS (SELECT *, {time} AS _time, lower({d['Initiated']}) AS _initiated FROM f)
        SELECT _line, _raw,
          _skip OR (_error IS NULL AND (
             ({event_id} <> '3' AND {event_id} IS NOT NULL)
             OR ({provider} IS NOT NULL AND NOT contains(lower({provider}), 'sysmon')))) AS _skip,
          CASE WHEN _error IS NOT NULL THEN _error
               WHEN {event_id} IS NULL THEN 'EventID: missing'
               WHEN _time IS NULL THEN 'UtcTime: missing or not a timestamp'
               WHEN {d['SourceIp']} IS NULL OR {d['DestinationIp']} IS NULL
                 THEN 'SourceIp/DestinationIp: missing' END AS _error,
          _time AS "TimeGenerated", _time AS "EventStartTime", _time AS "EventEndTime",
          'EndpointNetworkSession' AS "EventType", 'Success' AS "EventResult",
          {event_id} AS "EventOriginalType", "EventRecordID" AS "EventOriginalUid",
          "Computer" AS "Dvc", {short_host_sql('"Computer"')} AS "DvcHostname",
          CASE WHEN {outbound} THEN {d['SourceIp']} WHEN {inbound} THEN {d['DestinationIp']} END AS "DvcIpAddr",
          {d['Protocol']} AS "NetworkProtocol",
          CASE WHEN {v6} THEN 'IPv6' ELSE 'IPv4' END AS "NetworkProtocolVersion",
          upper({d['DestinationPortName']}) AS "NetworkApplicationProtocol",
          CASE WHEN {outbound} THEN 'Outbound' WHEN {inbound} THEN 'Inbound' END AS "NetworkDirection",
          {d['SourceIp']} AS "SrcIpAddr", {d['SourcePort']} AS "SrcPortNumber",
          {short_host_sql(d['SourceHostname'])} AS "SrcHostname",
          {local(d['User'])} AS "SrcUsername", {local(d['Image'])} AS "SrcAppName",
          {d['DestinationIp']} AS "DstIpAddr", {d['DestinationPort']} AS "DstPortNumber",
          {short_host_sql(d['DestinationHostname'])} AS "DstHostname",
          {remote(d['User'])} AS "DstUsername", {remote(d['Image'])} AS "DstAppName",
          {bag} AS "AdditionalFields"
        FROM x"""
        return asim.query(sql, f=f)


SOURCE = Sysmon(
    name="sysmon", vendor="Microsoft", product="Sysmon", priority=0,
    forms=("Sysmon event XML (one <Event> per line, pretty-printed, or an <Events> export; "
           "UTF-8/UTF-16)", "Sysmon for Linux syslog lines ('... sysmon: <Event>...</Event>')"),
)
