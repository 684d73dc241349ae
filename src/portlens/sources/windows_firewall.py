"""Windows Filtering Platform audit events (Security 5156/5157, 5152/5153, 5154/5155).

Forms accepted
- Security-channel event XML: `<Event>` per line, pretty-printed, or an `<Events>` export,
  UTF-8 or UTF-16 (same framing as the sysmon source: `_records.xml_records`).
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

from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import csv_records, event_fields, file_kind, head_text, header_name, json_columns, xml_records
from ._sql import bag_sql, col, export_time_sql, lit, short_host_sql
from ._tables import is_table_export
from .base import BATCH_LINES, Batch, Query, Source, mapped_ahead


# ---- WFP --------------------------------------------------------------------------------------

DATA = ("ProcessID", "Application", "Direction", "SourceAddress", "SourcePort", "DestAddress",
        "DestPort", "Protocol", "FilterRTID", "LayerName", "LayerRTID", "RemoteUserID",
        "RemoteMachineID")
HEADER = ("EventID", "Time", "Computer", "RecordID", "EventData")
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
    "RecordID": ["$.EventRecordId", "$.EventRecordID", "$.RecordId", "$.winlog.record_id",
                 "$.EventOriginId"],
    "EventData": ["$.EventData", "$.event_data", "$.winlog.event_data"],
}
_CSV_NAMES = ("EventID", "TimeGenerated", "TimeCreated", "Timestamp", "Computer", "EventRecordId",
              "EventOriginId", "EventData") + DATA


class WindowsFirewall(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        if is_table_export(head):  # CommonSecurityLog/Event exports are the `sentinel` source's
            return False
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
            def mapped(records: pa.Table) -> Batch:
                f = event_fields(records, DATA, ("EventID", "EventRecordID", "Computer"),
                                 (("TimeCreated", "SystemTime"),))
                f = f.rename_columns([{"EventRecordID": "RecordID", "TimeCreated@SystemTime": "Time"}.get(c, c)
                                      for c in f.column_names])
                return self.finish(self.map_events(f), path)
            yield from mapped_ahead(xml_records(path, batch_lines), mapped)
            return
        source = (json_columns(path, _JSON_PATHS, batch_lines) if kind == "json"
                  else csv_records(path, _CSV_NAMES, batch_lines))
        for t in source:
            if kind == "csv":
                t = _merge_csv(t)
            yield self.finish(self.map_events(_event_data(t)), path)

    def map_events(self, f: pa.Table) -> Query:
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
        return Query(sql, {"f": f})


def _merge_csv(t: pa.Table) -> pa.Table:
    """CSV export columns -> the common names (Time, RecordID)."""
    def first(*names):
        arrays = [t[n] for n in names if n in t.column_names] + [pa.nulls(t.num_rows, pa.string())]
        return pc.coalesce(*arrays)

    time = first("TimeGenerated", "TimeCreated", "Timestamp")
    record = first("EventRecordId", "EventOriginId")
    t = t.drop_columns([c for c in ("Time", "RecordID") if c in t.column_names])
    return t.append_column("Time", time).append_column("RecordID", record)


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
