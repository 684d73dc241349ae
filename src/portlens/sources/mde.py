"""Microsoft Defender for Endpoint DeviceNetworkEvents.

Forms accepted
- Streaming API / Event Hub JSON lines: `{"category": "AdvancedHunting-DeviceNetworkEvents",
  "properties": {...}}`, also wrapped as `{"records": [...]}` (every record of a line keeps
  that line's number). Records of other AdvancedHunting categories are skipped.
- Flat JSON lines (a DeviceNetworkEvents table export: the columns at top level).
- Advanced-hunting / Sentinel CSV export with a header (Timestamp, DeviceId, DeviceName,
  ActionType, LocalIP, LocalPort, RemoteIP, RemotePort, Protocol, ...; `[UTC]` header
  suffixes and US-locale times accepted).
`AdditionalFields` may be a JSON string or an object; it is kept, parsed, in AdditionalFields
under `MdeAdditionalFields`.

Mapping decisions (spec 2.12)
- ActionType: ConnectionSuccess, ConnectionFailed, ConnectionRequest -> Outbound;
  InboundConnectionAccepted -> Inbound; ListeningConnectionCreated -> Listen;
  ConnectionFound -> NA (the parser's "Unknown" is not a valid value). Every other ActionType
  (…Inspected, ConnectionAttempt, ...) is skipped, as the parser's join drops it.
- EventResult: ConnectionFailed -> Failure, otherwise Success; no DvcAction.
- Orientation: outbound/NA: Local -> Src, Remote -> Dst; inbound: Remote -> Src, Local -> Dst;
  listen: the listening LocalIP:LocalPort -> Dst (no Src), so the port is DstPortNumber.
- Protocol: Tcp/TcpV4/TcpV6 -> TCP, Udp* -> UDP, Icmp -> ICMP, IcmpV6 -> IPV6-ICMP,
  Unknown/Other -> NULL. ICMP rows have no ports.
- EventType EndpointNetworkSession (the spec's parser writes NetworkSession; the direction is
  relative to the host and Listen is only valid for endpoint sessions).
- Dvc = DeviceName, DvcHostname = its first label (also the local side's hostname),
  DvcId = DeviceId (DvcIdType MDEid), DvcIpAddr = LocalIP; RemoteUrl without scheme, path and
  port -> the remote side's hostname; InitiatingProcessFileName -> the local AppName;
  InitiatingProcessAccountDomain\\Name -> the local Username; host names keep their first
  label, the full name goes to AdditionalFields Src/DstFQDN; ReportId -> EventOriginalUid;
  ActionType -> EventOriginalType; Timestamp -> TimeGenerated = EventStartTime = EventEndTime.
- One Vendor/Product pair: Microsoft / "Microsoft Defender XDR for Endpoint" (the ASIM list).
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import (csv_records, error_rows, file_kind, head_text, header_name, json_object_values,
                       json_split, read_text_lines)
from ._sql import bag_sql, col, export_time_sql, fqdn_sql, lit, short_host_sql
from .base import BATCH_LINES, Batch, Query, Source, over

CATEGORY = "AdvancedHunting-DeviceNetworkEvents"
FIELDS = ("Timestamp", "TimeGenerated", "DeviceId", "DeviceName", "ActionType", "LocalIP",
          "LocalPort", "RemoteIP", "RemotePort", "RemoteUrl", "Protocol", "LocalIPType",
          "RemoteIPType", "InitiatingProcessFileName", "InitiatingProcessId",
          "InitiatingProcessFolderPath", "InitiatingProcessAccountDomain",
          "InitiatingProcessAccountName", "InitiatingProcessAccountSid",
          "InitiatingProcessAccountUpn", "ReportId", "AdditionalFields")
# Fields that feed only the columns in _DETAIL_COLUMNS (ids, URL, user, process details, the
# vendor's bag): a statement that does not yield those does not read them (each JSON path read
# costs; these are about half of the paths).
_DETAIL = ("DeviceId", "RemoteUrl", "LocalIPType", "RemoteIPType", "InitiatingProcessId",
           "InitiatingProcessFolderPath", "InitiatingProcessAccountDomain", "InitiatingProcessAccountName",
           "InitiatingProcessAccountSid", "InitiatingProcessAccountUpn", "ReportId", "AdditionalFields")
_DETAIL_COLUMNS = frozenset({"DvcId", "DvcIdType", "SrcHostname", "DstHostname", "SrcUsername", "DstUsername",
                             "AdditionalFields", "EventOriginalUid"})
LEAN_FIELDS = tuple(f for f in FIELDS if f not in _DETAIL)
DIRECTIONS = {"ConnectionSuccess": "Outbound", "ConnectionFailed": "Outbound",
              "ConnectionRequest": "Outbound", "InboundConnectionAccepted": "Inbound",
              "ListeningConnectionCreated": "Listen", "ConnectionFound": "NA"}


class Mde(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        text = head_text(head)
        if CATEGORY in text:
            return True
        first = text.lstrip().split("\n", 1)[0]
        keys = ('"ActionType"', '"RemoteIP"', '"LocalIP"')
        if first.startswith("{"):
            return all(k in first for k in keys)
        names = {header_name(h) for h in first.split(",")}
        return {"ActionType", "RemoteIP", "LocalIP", "RemotePort"} <= names

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        if file_kind(path) == "json":
            for lines, numbers in read_text_lines(path, batch_lines):
                parsed = self._json(lines, numbers)
                full = self.map_events(parsed)
                if isinstance(parsed, Query):  # (a batch with record wrappers is parsed in Arrow already)
                    full = Query(full.sql, full.inputs, narrow=lambda keep, lines=lines, numbers=numbers, full=full:
                                 self._narrow(lines, numbers, keep) or full.sql)
                yield self.finish(full, path)
        else:
            for t in csv_records(path, FIELDS, batch_lines):
                t = t.append_column("_category", pa.nulls(t.num_rows, pa.string()))
                yield self.finish(self.map_events(t), path)

    def _narrow(self, lines: pa.Array, numbers: pa.Array, keep: frozenset) -> str | None:
        """The statement for only the columns in `keep`, reading no _DETAIL field when none of
        them needs one (None: the full statement is needed)."""
        if not keep.isdisjoint(_DETAIL_COLUMNS):
            return None
        fields = _plain_json(lines, numbers, LEAN_FIELDS)
        absent = ", ".join(f"NULL::VARCHAR AS {col(name)}" for name in _DETAIL)
        return self.map_events(Query(f"SELECT *, {absent} FROM ({fields.sql})", fields.inputs)).sql

    def _json(self, lines: pa.Array, numbers: pa.Array) -> "pa.Table | Query":
        if not pc.any(pc.match_substring(lines, "records")).as_py():
            return _plain_json(lines, numbers)  # no {"records": [...]} wrapper in this batch
        plist, cols = _field_paths(FIELDS)
        good, bad = json_split(lines, numbers)
        wrapped = asim.query("SELECT coalesce(json_type(line, '$.records') = 'ARRAY', false) AS w FROM good",
                             good=good)["w"]
        if pc.any(wrapped).as_py():  # {"records": [...]}: one record per element, same line number
            expanded = asim.query(
                "SELECT n, CAST(unnest(json_extract(line, '$.records[*]')) AS VARCHAR) AS line FROM w",
                w=good.filter(wrapped))
            good = pa.concat_tables([good.filter(pc.invert(wrapped)), expanded.select(["line", "n"])])
        parsed = asim.query(f"""
            SELECT n AS _line, line AS _raw,
                   CASE WHEN NOT obj THEN 'not a JSON object' END AS _error, v[1] AS _category,
                   {', '.join(cols)}
            FROM (SELECT n, line, obj, CASE WHEN obj THEN json_extract_string(line, [{plist}]) END AS v
                  FROM (SELECT *, coalesce(json_type(line) = 'OBJECT', false) AS obj FROM good))""", good=good)
        return pa.concat_tables([parsed, error_rows(bad, "not a JSON object")], promote_options="default")

    def map_events(self, t: "pa.Table | Query") -> Query:
        for name in FIELDS + ("_error", "_category") if not isinstance(t, Query) else ():
            if name not in t.column_names:
                t = t.append_column(name, pa.nulls(t.num_rows, pa.string()))
        known = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in DIRECTIONS.items())
        proto = "lower(trim(\"Protocol\"))"
        protocol = (f"CASE WHEN {proto} LIKE 'tcp%' THEN 'TCP' WHEN {proto} LIKE 'udp%' THEN 'UDP' "
                    f"WHEN {proto} IN ('unknown', 'other', 'none') THEN NULL ELSE \"Protocol\" END")
        icmp = f"({proto} IN ('icmp', 'icmpv4', 'icmpv6', 'icmp6', 'ipv6-icmp'))"
        remote_host = ("NULLIF(regexp_extract(trim(\"RemoteUrl\"), "
                       "'^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/]*@)?(\\[[^\\]]*\\]|[^/:?#]+)', 1), '')")
        user = ("CASE WHEN \"InitiatingProcessAccountName\" IS NULL THEN NULL "
                "WHEN \"InitiatingProcessAccountDomain\" IS NULL THEN \"InitiatingProcessAccountName\" "
                "ELSE \"InitiatingProcessAccountDomain\" || '\\' || \"InitiatingProcessAccountName\" END")
        vendor_bag = ("CASE WHEN json_valid(\"AdditionalFields\") THEN CAST(\"AdditionalFields\" AS JSON) "
                      "ELSE to_json(\"AdditionalFields\") END")
        def side(local_expr, remote_expr, want):
            """`want` is 'src' or 'dst': pick the local or remote value by direction."""
            if want == "src":
                return (f"CASE WHEN _dir = 'Inbound' THEN {remote_expr} WHEN _dir = 'Listen' THEN NULL "
                        f"ELSE {local_expr} END")
            return f"CASE WHEN _dir IN ('Inbound', 'Listen') THEN {local_expr} ELSE {remote_expr} END"

        bag = bag_sql({
            "MdeAdditionalFields": vendor_bag,
            "InitiatingProcessId": "TRY_CAST(\"InitiatingProcessId\" AS BIGINT)",
            "InitiatingProcessFolderPath": "\"InitiatingProcessFolderPath\"",
            "InitiatingProcessAccountSid": "\"InitiatingProcessAccountSid\"",
            "InitiatingProcessAccountUpn": "\"InitiatingProcessAccountUpn\"",
            "LocalIPType": "\"LocalIPType\"", "RemoteIPType": "\"RemoteIPType\"",
            "RemoteUrl": "\"RemoteUrl\"", "OriginalProtocol": "\"Protocol\"",
            "SrcFQDN": side(fqdn_sql('"DeviceName"'), fqdn_sql("_rhost"), "src"),
            "DstFQDN": side(fqdn_sql('"DeviceName"'), fqdn_sql("_rhost"), "dst"),
        })

        def port(expr):
            return f"CASE WHEN {icmp} THEN NULL ELSE {expr} END"

        host = short_host_sql('"DeviceName"')
        sql = f"""
        WITH x AS (
          SELECT *, MAP {{{known}}}[trim("ActionType")] AS _dir,
                 {export_time_sql('coalesce("Timestamp", "TimeGenerated")')} AS _time,
                 {remote_host} AS _rhost
          FROM t)
        SELECT _line, _raw,
          _error IS NULL AND (coalesce(_category <> {lit(CATEGORY)}, false)
                              OR ("ActionType" IS NOT NULL AND _dir IS NULL)) AS _skip,
          CASE WHEN _error IS NOT NULL THEN _error
               WHEN "ActionType" IS NULL THEN 'ActionType: missing'
               WHEN _time IS NULL THEN 'Timestamp: missing or not a timestamp'
               WHEN "LocalIP" IS NULL AND "RemoteIP" IS NULL THEN 'LocalIP/RemoteIP: missing' END AS _error,
          _time AS "TimeGenerated", _time AS "EventStartTime", _time AS "EventEndTime",
          'EndpointNetworkSession' AS "EventType",
          CASE WHEN trim("ActionType") = 'ConnectionFailed' THEN 'Failure' ELSE 'Success' END AS "EventResult",
          trim("ActionType") AS "EventOriginalType", "ReportId" AS "EventOriginalUid",
          "DeviceName" AS "Dvc", {host} AS "DvcHostname", "LocalIP" AS "DvcIpAddr",
          "DeviceId" AS "DvcId", CASE WHEN "DeviceId" IS NOT NULL THEN 'MDEid' END AS "DvcIdType",
          {protocol} AS "NetworkProtocol",
          CASE WHEN contains(coalesce("LocalIP", "RemoteIP"), ':') OR {proto} LIKE '%v6' THEN 'IPv6' ELSE 'IPv4' END
            AS "NetworkProtocolVersion",
          _dir AS "NetworkDirection",
          {side('"LocalIP"', '"RemoteIP"', 'src')} AS "SrcIpAddr",
          {port(side('"LocalPort"', '"RemotePort"', 'src'))} AS "SrcPortNumber",
          {side(host, short_host_sql('_rhost'), 'src')} AS "SrcHostname",
          {side(user, 'NULL', 'src')} AS "SrcUsername",
          {side('"InitiatingProcessFileName"', 'NULL', 'src')} AS "SrcAppName",
          {side('"LocalIP"', '"RemoteIP"', 'dst')} AS "DstIpAddr",
          {port(side('"LocalPort"', '"RemotePort"', 'dst'))} AS "DstPortNumber",
          {side(host, short_host_sql('_rhost'), 'dst')} AS "DstHostname",
          {side(user, 'NULL', 'dst')} AS "DstUsername",
          {side('"InitiatingProcessFileName"', 'NULL', 'dst')} AS "DstAppName",
          {bag} AS "AdditionalFields"
        FROM x"""
        return over(sql, "t", t)


def _field_paths(fields: tuple[str, ...]) -> tuple[str, list[str]]:
    """The JSON paths to extract (category, then each field under properties and at the top
    level) and the SQL of each field's column from the extracted list `v`."""
    k = len(fields)
    plist = ", ".join([lit("$.category")]
                      + [lit(f'$.properties."{f}"') for f in fields] + [lit(f'$."{f}"') for f in fields])
    cols = [f"NULLIF(trim(coalesce(v[{i + 2}], v[{i + 2 + k}])), '') AS {col(f)}" for i, f in enumerate(fields)]
    return plist, cols


def _plain_json(lines: pa.Array, numbers: pa.Array, fields: tuple[str, ...] = FIELDS) -> Query:
    """One JSON object per line (no records wrapper): the fields, all in SQL."""
    plist, cols = _field_paths(fields)
    return Query(f"""
        SELECT n AS _line, line AS _raw, CASE WHEN v IS NULL THEN 'not a JSON object' END AS _error,
               v[1] AS _category, {', '.join(cols)}
        FROM (SELECT n, line, {json_object_values(plist)} AS v FROM _lines)""",
                 {"_lines": pa.table({"line": lines, "n": numbers})})


SOURCE = Mde(
    name="mde", vendor="Microsoft", product="Microsoft Defender XDR for Endpoint", priority=0,
    forms=("DeviceNetworkEvents streaming API / Event Hub JSON lines (category + properties, "
           "optionally in a records array)", "DeviceNetworkEvents flat JSON lines",
           "Advanced hunting / Sentinel CSV export with a header"),
)
