"""Windows Filtering Platform audit events (Security 5156/5157, 5152/5153, 5154/5155).

Forms accepted
- Security-channel event XML: `<Event>` per line, pretty-printed, or an `<Events>` export,
  UTF-8 or UTF-16 (same framing as the sysmon source).
- JSON lines: a Sentinel WindowsEvent export (`EventData` an object), a SecurityEvent export
  (`EventData` the `<EventData>` XML as a string), a Winlogbeat document
  (`winlog.event_id`, `winlog.event_data`) or flat objects with the data names at top level.
- CSV with a header row (SecurityEvent / WindowsEvent exports, `TimeGenerated [UTC]` style
  headers and US-locale times accepted): `EventID` plus `EventData` (XML or JSON text) or the
  data names as columns. Quoted values may span lines; a record keeps its first line number.
Other event IDs are skipped, and so are 5158/5159 (bind to a local port: not a connection;
every outbound connection binds one, counting them would double the sessions).

Mapping decisions (spec 2.11)
- DvcAction: 5156 and 5154 Allow; 5157, 5152, 5153 and 5155 Deny (EventResult/Severity follow).
- Direction %%14592/Inbound -> Inbound, %%14593/Outbound -> Outbound, %%14594 (Forward),
  %%14595 (Bidirectional) and other values -> NA; 5154/5155 -> Listen.
- WFP's Source is always the local host: Inbound swaps (Src = DestAddress:DestPort, the remote
  peer; Dst = SourceAddress:SourcePort, the local host). Outbound/NA keep the order. Listen
  puts the listening address and port in Dst (no Src), so the listening port is DstPortNumber.
- Application is the local process: DstAppName when Inbound/Listen, SrcAppName otherwise.
- Protocol numbers are IANA (not the parser's table); for ICMP/ICMPv6 the ports are NULL and
  the raw values kept in AdditionalFields.
- EventType EndpointNetworkSession (relative to the host); Dvc = Computer, DvcHostname = its
  first label, DvcIpAddr = the local address; FilterRTID -> NetworkRuleName; EventID ->
  EventOriginalType; EventRecordID -> EventOriginalUid; ProcessID (hex or decimal),
  LayerName (decoded), LayerRTID, RemoteUserID/RemoteMachineID (S-1-0-0 dropped) and DvcOs
  -> AdditionalFields.
"""

from __future__ import annotations

import io
import re
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import asim
from .base import BATCH_LINES, Batch, Source, read_head
from .sysmon import event_fields, head_text, read_text_lines, short_host_sql, xml_records
from .zeek import bag_sql, col, error_rows, json_split, lit

MAX_CSV_RECORD_CHARS = 1 << 20


# ---- CSV with a header, quoted values may span lines (shared with mde and vmconnection) ------

def header_name(name: str) -> str:
    """Normalize an export header: quotes, BOM, and a ` [UTC]`-style suffix removed."""
    name = name.strip().lstrip("\ufeff").strip().strip('"').strip()
    return re.sub(r"\s*\[[^\]]*\]$", "", name)


def csv_records(path: str, wanted: tuple[str, ...], batch_lines: int = BATCH_LINES) -> Iterator[pa.Table]:
    """Yield tables of `_line`, `_raw`, `_error` and one text column per name in `wanted`
    (matched case-insensitively against the header; NULL when the header lacks it or the
    value is empty). A record whose quotes are unbalanced or whose field count differs from
    the header's is returned with `_error` set."""
    header: list[str] | None = None
    carry: tuple[str, int] | None = None
    for lines, numbers in read_text_lines(path, batch_lines):
        if carry is not None:
            lines = pa.concat_arrays([pa.array([carry[0]], pa.string()), lines])
            numbers = pa.concat_arrays([pa.array([carry[1]], pa.int64()), numbers])
            carry = None
        quotes = pc.count_substring(lines, '"').to_numpy(zero_copy_only=False).astype(np.int64)
        total = np.cumsum(quotes)
        starts = ((total - quotes) % 2) == 0  # even number of quotes before: a new record
        group = np.cumsum(starts)
        extra = []
        if len(total) and total[-1] % 2:  # the last record has an open quoted value
            tail = group == group[-1]
            idx = np.flatnonzero(tail)
            text = "\n".join(pc.take(lines, pa.array(idx)).to_pylist())
            first = int(numbers[int(idx[0])].as_py())
            if len(text) > MAX_CSV_RECORD_CHARS:
                extra.append(error_rows(pa.table({"n": [first], "line": [text[:65536]]}),
                                        "unterminated quoted value (record longer than 1 MiB)"))
            else:
                carry = (text, first)
            keep = pa.array(~tail)
            lines, numbers, group, starts = lines.filter(keep), numbers.filter(keep), group[~tail], starts[~tail]
        records = _join_groups(lines, numbers, group, starts)
        if header is None and records.num_rows:
            header = [header_name(h) for h in _split_csv(records.slice(0, 1))["_f"][0].as_py() or []]
            records = records.slice(1)
        if header is not None and records.num_rows:
            yield _csv_columns(records, header, wanted)
        for e in extra:
            yield e
    if carry is not None:
        yield error_rows(pa.table({"n": [carry[1]], "line": [carry[0][:65536]]}),
                         "unterminated quoted value at the end of the file")


def _join_groups(lines, numbers, group, starts) -> pa.Table:
    if starts.all():
        return pa.table({"_line": numbers, "_raw": lines})
    t = pa.table({"line": lines, "n": numbers, "g": pa.array(group)})
    return asim.query("SELECT min(n) AS _line, string_agg(line, e'\\n' ORDER BY n) AS _raw "
                      "FROM t GROUP BY g ORDER BY _line", t=t)


def _split_csv(records: pa.Table) -> pa.Table:
    return asim.query(
        "SELECT *, array_to_string(_m, '') = ',' || _raw AS _ok, "
        "list_transform(_m, lambda x: CASE WHEN starts_with(x, ',\"') "
        "THEN replace(x[3:-2], '\"\"', '\"') ELSE x[2:] END) AS _f "
        "FROM (SELECT *, regexp_extract_all(',' || _raw, ',(\"(?:[^\"]|\"\")*\"|[^,\"]*)', 0) AS _m "
        "FROM records)", records=records)


def _csv_columns(records: pa.Table, header: list[str], wanted: tuple[str, ...]) -> pa.Table:
    """Split framed CSV records into the wanted columns: Arrow's CSV reader when it stays
    aligned with the records (the usual case), the regex splitter otherwise."""
    fast = _csv_columns_arrow(records, header, wanted)
    return fast if fast is not None else _csv_columns_regex(records, header, wanted)


def _csv_columns_arrow(records: pa.Table, header: list[str], wanted: tuple[str, ...]) -> pa.Table | None:
    raws = records["_raw"].combine_chunks() if isinstance(records["_raw"], pa.ChunkedArray) else records["_raw"]
    n, width = records.num_rows, len(header)
    if not n or not width:
        return None
    block = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), raws), "\n")[0].as_py()
    invalid: list[tuple[int, int]] = []

    def on_invalid(row):
        invalid.append((row.number, row.actual_columns))
        return "skip"

    names = [f"f{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(block.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 26),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeError, OverflowError):
        return None
    bad = np.array([i for i, _ in invalid], np.int64) - 1
    if table.num_rows + len(bad) != n or (len(bad) and (bad.min() < 0 or bad.max() >= n)):
        return None  # Arrow's quoting disagreed with the record framing: use the regex path
    good = np.setdiff1d(np.arange(n), bad)
    position = {}
    for i, name in enumerate(header):
        position.setdefault(name.lower(), i)
    out = {"_line": pc.take(records["_line"], pa.array(good)), "_raw": pc.take(raws, pa.array(good)),
           "_error": pa.nulls(len(good), pa.string())}
    for name in wanted:
        i = position.get(name.lower())
        if i is None:
            out[name] = pa.nulls(len(good), pa.string())
        else:
            values = pc.utf8_trim_whitespace(table[f"f{i}"].combine_chunks())
            out[name] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    result = pa.table(out)
    if len(bad):
        errors = pa.table({
            "_line": pc.take(records["_line"], pa.array(bad)), "_raw": pc.take(raws, pa.array(bad)),
            "_error": pa.array([f"expected {width} CSV fields, found {k}" for _, k in invalid], pa.string())})
        result = pa.concat_tables([result, errors], promote_options="default")
    return result


def _csv_columns_regex(records: pa.Table, header: list[str], wanted: tuple[str, ...]) -> pa.Table:
    position = {}
    for i, name in enumerate(header):
        position.setdefault(name.lower(), i + 1)
    cols = []
    for name in wanted:
        i = position.get(name.lower())
        cols.append(f"NULLIF(trim(_f[{i}]), '') AS {col(name)}" if i else f"NULL::VARCHAR AS {col(name)}")
    n = len(header)
    return asim.query(
        f"SELECT _line, _raw, CASE WHEN NOT _ok THEN 'malformed CSV quoting' "
        f"WHEN len(_f) <> {n} THEN 'expected {n} CSV fields, found ' || len(_f) END AS _error, "
        f"{', '.join(cols)} FROM s", s=_split_csv(records))


def json_records(path: str, paths: dict[str, list[str]], batch_lines: int = BATCH_LINES) -> Iterator[pa.Table]:
    """JSON lines: yield tables of `_line`, `_raw`, `_error` and one text column per key of
    `paths`, the first non-NULL of its JSON paths (objects and arrays come back as JSON text)."""
    flat = [p for ps in paths.values() for p in ps]
    plist = ", ".join(lit(p) for p in flat)
    cols, i = [], 1
    for name, ps in paths.items():
        cols.append(f"NULLIF(trim(coalesce({', '.join(f'_v[{i + k}]' for k in range(len(ps)))})), '') AS {col(name)}")
        i += len(ps)
    for lines, numbers in read_text_lines(path, batch_lines):
        good, bad = json_split(lines, numbers)
        parsed = asim.query(
            f"SELECT n AS _line, line AS _raw, NULL::VARCHAR AS _error, {', '.join(cols)} "
            f"FROM (SELECT *, json_extract_string(line, [{plist}]) AS _v FROM good)", good=good)
        yield pa.concat_tables([parsed, error_rows(bad, "not a JSON object")], promote_options="default")


def export_time_sql(expr: str) -> str:
    """asim.time_sql, also accepting the Sentinel portal's `5/1/2024, 10:00:00.123 AM`."""
    return asim.time_sql(f"regexp_replace(trim({expr}), '^([0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{4}}),\\s*', '\\1 ')")


def file_kind(path: str) -> str:
    """'xml', 'json' or 'csv' from the first non-blank characters of the file."""
    text = head_text(read_head(path, 4096)).lstrip()
    if text.startswith("{"):
        return "json"
    if text.startswith("<") or "<Event" in text.split("\n", 1)[0]:
        return "xml"
    return "csv"


# ---- WFP --------------------------------------------------------------------------------------

DATA = ("ProcessID", "Application", "Direction", "SourceAddress", "SourcePort", "DestAddress",
        "DestPort", "Protocol", "FilterRTID", "LayerName", "LayerRTID", "RemoteUserID",
        "RemoteMachineID")
HEADER = ("EventID", "Time", "Computer", "Provider", "RecordID", "EventData")
EVENTS = ("5152", "5153", "5154", "5155", "5156", "5157")
LAYERS = {"%%14596": "IP Packet", "%%14597": "Transport", "%%14598": "Forward",
          "%%14599": "Stream", "%%14600": "Datagram Data", "%%14601": "ICMP Error",
          "%%14602": "MAC 802.3", "%%14603": "MAC Native", "%%14604": "vSwitch",
          "%%14608": "Resource Assignment", "%%14609": "Listen", "%%14610": "Receive/Accept",
          "%%14611": "Connect", "%%14612": "Flow Established", "%%14614": "Resource Release",
          "%%14615": "Endpoint Closure", "%%14616": "Connect Redirect",
          "%%14617": "Bind Redirect", "%%14624": "Stream Packet"}

_JSON_PATHS = {
    "EventID": ["$.EventID", "$.EventId", "$.event_id", "$.winlog.event_id", "$.event.code"],
    "Time": ["$.TimeGenerated", "$.TimeCreated.SystemTime", "$.TimeCreated", "$.Timestamp",
             "$.\"@timestamp\"", "$.timestamp"],
    "Computer": ["$.Computer", "$.computer_name", "$.winlog.computer_name", "$.host.name",
                 "$.MachineName"],
    "Provider": ["$.Provider", "$.EventSourceName", "$.ProviderName", "$.winlog.provider_name",
                 "$.SourceName"],
    "RecordID": ["$.EventRecordId", "$.EventRecordID", "$.RecordId", "$.winlog.record_id",
                 "$.EventOriginId"],
    "EventData": ["$.EventData", "$.event_data", "$.winlog.event_data"],
}
_CSV_NAMES = ("EventID", "TimeGenerated", "TimeCreated", "Timestamp", "Computer", "Provider",
              "EventSourceName", "EventRecordId", "EventOriginId", "EventData") + DATA


class WindowsFirewall(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        text = head_text(head)
        if "Sysmon" in text:
            return False
        markers = ("Microsoft-Windows-Security-Auditing", "FilterRTID", "LayerRTID", "%%1459",
                   "Windows Filtering Platform")
        first = text.lstrip().split("\n", 1)[0]
        if "<Event" in text and "Microsoft-Windows-Security-Auditing" in text:
            return True
        if first.startswith("{"):
            return (any(k in first for k in ('"EventID"', '"EventId"', '"event_id"'))
                    and any(m in text for m in markers))
        names = {header_name(h).lower() for h in first.split(",")}
        return "eventid" in names and ("eventdata" in names or "filterrtid" in names) and \
            (any(m in text for m in markers) or "eventdata" in names)

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        kind = file_kind(path)
        if kind == "xml":
            for records in xml_records(path, batch_lines):
                f = event_fields(records, DATA, ("EventID", "EventRecordID", "Computer"),
                                 (("Provider", "Name"), ("TimeCreated", "SystemTime")))
                f = f.rename_columns([{"EventRecordID": "RecordID", "Provider@Name": "Provider",
                                       "TimeCreated@SystemTime": "Time"}.get(c, c) for c in f.column_names])
                yield self.finish(self.map_events(f), path)
            return
        source = (json_records(path, _JSON_PATHS, batch_lines) if kind == "json"
                  else csv_records(path, _CSV_NAMES, batch_lines))
        for t in source:
            if kind == "csv":
                t = _merge_csv(t)
            yield self.finish(self.map_events(_event_data(t)), path)

    def map_events(self, f: pa.Table) -> pa.Table:
        for name in DATA + HEADER + ("_error", "_skip"):
            if name not in f.column_names:
                f = f.append_column(name, pa.nulls(f.num_rows, pa.bool_() if name == "_skip" else pa.string()))
        for name in DATA:  # `-` is Windows' "none"
            f = f.set_column(f.schema.get_field_index(name), name,
                             pc.if_else(pc.equal(f[name], "-"), pa.scalar(None, pa.string()), f[name]))
        eid = "trim(\"EventID\")"
        direction = (f"CASE WHEN {eid} IN ('5154', '5155') THEN 'Listen' "
                     f"WHEN lower(trim(\"Direction\")) IN ('%%14592', 'inbound') THEN 'Inbound' "
                     f"WHEN lower(trim(\"Direction\")) IN ('%%14593', 'outbound') THEN 'Outbound' "
                     f"WHEN \"Direction\" IS NOT NULL THEN 'NA' END")
        icmp = "(trim(\"Protocol\") IN ('1', '58') OR upper(trim(\"Protocol\")) IN ('ICMP', 'ICMPV6', 'IPV6-ICMP'))"
        layers = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in LAYERS.items())

        def port(expr):
            return f"CASE WHEN {icmp} THEN NULL ELSE {expr} END"

        def sid(expr):
            return f"NULLIF({expr}, 'S-1-0-0')"

        pid = ("CASE WHEN lower(trim(\"ProcessID\")) LIKE '0x%' "
               "THEN TRY_CAST(('0x' || substr(trim(\"ProcessID\"), 3)) AS UBIGINT)::BIGINT "
               "ELSE TRY_CAST(\"ProcessID\" AS BIGINT) END")
        bag = bag_sql({
            "DvcOs": "'Windows'", "ProcessId": pid,
            "LayerName": f"coalesce(MAP {{{layers}}}[trim(\"LayerName\")], \"LayerName\")",
            "LayerRTID": "TRY_CAST(\"LayerRTID\" AS BIGINT)",
            "NetworkProtocolNumber": "TRY_CAST(\"Protocol\" AS INTEGER)",
            "OriginalDirection": "\"Direction\"",
            "RemoteUserID": sid("\"RemoteUserID\""), "RemoteMachineID": sid("\"RemoteMachineID\""),
            "SourcePort": f"CASE WHEN {icmp} THEN \"SourcePort\" END",
            "DestPort": f"CASE WHEN {icmp} THEN \"DestPort\" END",
        })
        sql = f"""
        WITH x AS (SELECT *, {direction} AS _dir, {export_time_sql('"Time"')} AS _time FROM f)
        SELECT _line, _raw,
          coalesce(_skip, false) OR (_error IS NULL AND {eid} IS NOT NULL AND {eid} NOT IN ({', '.join(lit(e) for e in EVENTS)})) AS _skip,
          CASE WHEN _error IS NOT NULL THEN _error
               WHEN {eid} IS NULL THEN 'EventID: missing'
               WHEN _time IS NULL THEN 'time: missing or not a timestamp'
               WHEN "SourceAddress" IS NULL THEN 'SourceAddress: missing' END AS _error,
          _time AS "TimeGenerated", _time AS "EventStartTime", _time AS "EventEndTime",
          'EndpointNetworkSession' AS "EventType",
          CASE WHEN {eid} IN ('5156', '5154') THEN 'Allow' ELSE 'Deny' END AS "DvcAction",
          {eid} AS "EventOriginalType", "RecordID" AS "EventOriginalUid",
          "Computer" AS "Dvc", {short_host_sql('"Computer"')} AS "DvcHostname",
          "SourceAddress" AS "DvcIpAddr",
          "Protocol" AS "NetworkProtocol",
          CASE WHEN contains("SourceAddress", ':') OR contains("DestAddress", ':') THEN 'IPv6' ELSE 'IPv4' END
            AS "NetworkProtocolVersion",
          _dir AS "NetworkDirection", "FilterRTID" AS "NetworkRuleName",
          CASE WHEN _dir = 'Inbound' THEN "DestAddress" WHEN _dir = 'Listen' THEN NULL ELSE "SourceAddress" END AS "SrcIpAddr",
          {port('CASE WHEN _dir = ' + lit('Inbound') + ' THEN "DestPort" WHEN _dir = ' + lit('Listen') + ' THEN NULL ELSE "SourcePort" END')} AS "SrcPortNumber",
          CASE WHEN _dir IN ('Inbound', 'Listen') THEN NULL ELSE "Application" END AS "SrcAppName",
          CASE WHEN _dir IN ('Inbound', 'Listen') THEN "SourceAddress" ELSE "DestAddress" END AS "DstIpAddr",
          {port('CASE WHEN _dir IN (' + lit('Inbound') + ', ' + lit('Listen') + ') THEN "SourcePort" ELSE "DestPort" END')} AS "DstPortNumber",
          CASE WHEN _dir IN ('Inbound', 'Listen') THEN "Application" END AS "DstAppName",
          {bag} AS "AdditionalFields"
        FROM x"""
        return asim.query(sql, f=f)


def _merge_csv(t: pa.Table) -> pa.Table:
    """CSV export columns -> the common names (Time, Provider, RecordID)."""
    def first(*names):
        arrays = [t[n] for n in names if n in t.column_names] + [pa.nulls(t.num_rows, pa.string())]
        return pc.coalesce(*arrays)

    time = first("TimeGenerated", "TimeCreated", "Timestamp")
    provider = first("Provider", "EventSourceName")
    record = first("EventRecordId", "EventOriginId")
    t = t.drop_columns([c for c in ("Time", "Provider", "RecordID") if c in t.column_names])
    return t.append_column("Time", time).append_column("Provider", provider).append_column("RecordID", record)


def _event_data(t: pa.Table) -> pa.Table:
    """Fill the WFP data columns from `EventData` (a JSON object or `<EventData>` XML text),
    keeping values already present as top-level keys/columns."""
    if "EventData" not in t.column_names:
        return t
    ed = t["EventData"]
    xml = event_fields(pa.table({"_x": ed}), DATA, record="_x")
    is_json = asim.query("SELECT coalesce(CASE WHEN starts_with(ltrim(e), '{') AND json_valid(e) "
                         "THEN json_type(e) = 'OBJECT' END, false) AS ok FROM t",
                         t=pa.table({"e": ed}))["ok"]
    paths = []
    for name in DATA:
        variants = {name, name[0] + name[1:].replace("ID", "Id")}
        paths.append([f'$."{v}"' for v in sorted(variants)])
    plist = ", ".join(lit(p) for ps in paths for p in ps)
    cols, i = [], 1
    for name, ps in zip(DATA, paths):
        cols.append(f"NULLIF(trim(coalesce({', '.join(f'v[{i + k}]' for k in range(len(ps)))})), '') AS {col(name)}")
        i += len(ps)
    j = asim.query(f"SELECT {', '.join(cols)} FROM (SELECT CASE WHEN ok THEN "
                   f"json_extract_string(e, [{plist}]) END AS v FROM t)",
                   t=pa.table({"e": ed, "ok": is_json}))
    for name in DATA:
        found = pc.coalesce(j[name], xml[name])
        if name in t.column_names:
            t = t.set_column(t.schema.get_field_index(name), name, pc.coalesce(t[name], found))
        else:
            t = t.append_column(name, found)
    return t


SOURCE = WindowsFirewall(
    name="windows-firewall", vendor="Microsoft", product="Windows Firewall", priority=0,
    forms=("Security event XML 5152-5157 (per line, pretty-printed or <Events>; UTF-8/UTF-16)",
           "JSON lines: WindowsEvent / SecurityEvent exports, Winlogbeat documents",
           "CSV SecurityEvent / WindowsEvent exports (EventID + EventData)"),
)
