"""VM Insights / Service Map `VMConnection` table exports.

Forms accepted
- CSV with a header row (a Log Analytics / Sentinel export; `[UTC]` header suffixes and
  US-locale times accepted; quoted values may span lines).
- JSON lines, one table row per line (column names as keys).

Mapping decisions (spec 2.13)
- Each row aggregates one connection group over one minute. Direction (lower case in the
  table) -> Inbound/Outbound; SourceIp/DestinationIp/DestinationPort are already initiator ->
  responder, so they are not swapped; there is no source port.
- Bytes are counted on the monitored machine: outbound SrcBytes = BytesSent, DstBytes =
  BytesReceived; inbound the reverse (SrcBytes = BytesReceived). NetworkBytes is the sum.
- EventCount = max(1, LinksEstablished + LinksFailed): the connections opened or attempted in
  the minute; a row with only live/terminated links stands for one continuing session. (The
  port-anomaly rule counts rows, as KQL `count()` does in Sentinel, so EventCount does not
  change its counts.) EventResult: Failure when every link in the row failed
  (LinksFailed > 0, LinksEstablished = 0), Partial when some failed, else Success. No DvcAction.
- ResponseTimeMax is a response time, not a duration: NetworkDuration stays NULL and the
  response-time columns go to AdditionalFields.
- EventType EndpointNetworkSession; TimeGenerated = EventStartTime = EventEndTime.
- Computer -> Dvc, DvcHostname (first label) and the local side's hostname; Machine -> DvcId
  (DvcIdType VMConnectionId); the local address -> DvcIpAddr; ProcessName -> the local
  AppName; RemoteDnsCanonicalNames[0] -> the remote hostname (first label; FQDNs in
  AdditionalFields); ConnectionId -> NetworkSessionId; Severity 0-3 -> Informational, Low,
  Medium, High; threat and geo columns, Links*, Process -> AdditionalFields.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from ._records import csv_records, file_kind, head_text, header_name, json_columns
from ._sql import bag_sql, export_time_sql, fqdn_sql, short_host_sql
from .base import BATCH_LINES, Batch, Query, Source

FIELDS = ("TimeGenerated", "Computer", "Direction", "ProcessName", "Process", "SourceIp",
          "DestinationIp", "DestinationPort", "Protocol", "RemoteIp", "RemoteDnsCanonicalNames",
          "RemoteCountry", "RemoteLatitude", "RemoteLongitude", "BytesSent", "BytesReceived",
          "LinksEstablished", "LinksTerminated", "LinksLive", "LinksFailed", "Responses",
          "ResponseTimeSum", "ResponseTimeMax", "ResponseTimeMin", "IndicatorThreatType",
          "Confidence", "Severity", "Machine", "ConnectionId", "AgentId")


class VmConnection(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        text = head_text(head)
        first = text.lstrip().split("\n", 1)[0]
        if first.startswith("{"):
            return '"LinksEstablished"' in first or ('"VMConnection"' in first and '"DestinationPort"' in first)
        names = {header_name(h) for h in first.split(",")}
        return "LinksEstablished" in names or (
            {"SourceIp", "DestinationIp", "DestinationPort", "Direction"} <= names
            and bool({"Machine", "ConnectionId"} & names))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        if file_kind(path) == "json":
            tables = json_columns(path, {f: [f'$."{f}"'] for f in FIELDS}, batch_lines)
        else:
            tables = csv_records(path, FIELDS, batch_lines)
        for t in tables:
            yield self.finish(self.map_rows(t), path)

    def map_rows(self, t: pa.Table) -> Query:
        for name in FIELDS + ("_error",):
            if name not in t.column_names:
                t = t.append_column(name, pa.nulls(t.num_rows, pa.string()))

        def num(name):
            return f"TRY_CAST(TRY_CAST(\"{name}\" AS DOUBLE) AS BIGINT)"

        inbound = "(_dir = 'Inbound')"

        def local(expr):  # the monitored machine is the source on outbound rows
            return f"CASE WHEN {inbound} THEN NULL ELSE {expr} END"

        def loc_dst(expr):  # ... and the destination on inbound rows
            return f"CASE WHEN {inbound} THEN {expr} END"

        remote_fqdn = ("CASE WHEN json_valid(\"RemoteDnsCanonicalNames\") "
                       "THEN NULLIF(json_extract_string(\"RemoteDnsCanonicalNames\", '$[0]'), '') "
                       "ELSE NULLIF(trim(split_part(\"RemoteDnsCanonicalNames\", ',', 1)), '') END")
        computer = '"Computer"'
        host = short_host_sql(computer)
        severity = "MAP {'0': 'Informational', '1': 'Low', '2': 'Medium', '3': 'High'}[trim(\"Severity\")]"
        bag = bag_sql({
            "LocalAppId": '"Process"', "RemoteIp": '"RemoteIp"',
            "RemoteGeoCountry": '"RemoteCountry"',
            "RemoteGeoLatitude": 'TRY_CAST("RemoteLatitude" AS DOUBLE)',
            "RemoteGeoLongitude": 'TRY_CAST("RemoteLongitude" AS DOUBLE)',
            "LinksEstablished": num("LinksEstablished"), "LinksTerminated": num("LinksTerminated"),
            "LinksLive": num("LinksLive"), "LinksFailed": num("LinksFailed"),
            "Responses": num("Responses"), "ResponseTimeSum": num("ResponseTimeSum"),
            "ResponseTimeMax": num("ResponseTimeMax"), "ResponseTimeMin": num("ResponseTimeMin"),
            "ThreatName": '"IndicatorThreatType"', "ThreatConfidence": num("Confidence"),
            "EventOriginalSeverity": '"Severity"', "AgentId": '"AgentId"',
            "SrcFQDN": f"CASE WHEN {inbound} THEN {fqdn_sql('_rfqdn')} ELSE {fqdn_sql(computer)} END",
            "DstFQDN": f"CASE WHEN {inbound} THEN {fqdn_sql(computer)} ELSE {fqdn_sql('_rfqdn')} END",
        })
        links = f"coalesce({num('LinksEstablished')}, 0) + coalesce({num('LinksFailed')}, 0)"
        sql = f"""
        WITH x AS (
          SELECT *, CASE lower(trim("Direction")) WHEN 'inbound' THEN 'Inbound' WHEN 'outbound' THEN 'Outbound'
                    ELSE "Direction" END AS _dir,
                 {export_time_sql('"TimeGenerated"')} AS _time, {remote_fqdn} AS _rfqdn
          FROM t)
        SELECT _line, _raw, false AS _skip,
          CASE WHEN _error IS NOT NULL THEN _error
               WHEN _time IS NULL THEN 'TimeGenerated: missing or not a timestamp'
               WHEN "SourceIp" IS NULL OR "DestinationIp" IS NULL THEN 'SourceIp/DestinationIp: missing' END AS _error,
          _time AS "TimeGenerated", _time AS "EventStartTime", _time AS "EventEndTime",
          CASE WHEN {links} > 0 THEN {links} ELSE 1 END AS "EventCount",
          'EndpointNetworkSession' AS "EventType",
          CASE WHEN coalesce({num('LinksFailed')}, 0) > 0 AND coalesce({num('LinksEstablished')}, 0) = 0 THEN 'Failure'
               WHEN coalesce({num('LinksFailed')}, 0) > 0 THEN 'Partial' ELSE 'Success' END AS "EventResult",
          {severity} AS "EventSeverity",
          "Computer" AS "Dvc", {host} AS "DvcHostname",
          CASE WHEN {inbound} THEN "DestinationIp" ELSE "SourceIp" END AS "DvcIpAddr",
          "Machine" AS "DvcId", CASE WHEN "Machine" IS NOT NULL THEN 'VMConnectionId' END AS "DvcIdType",
          "Protocol" AS "NetworkProtocol",
          CASE WHEN contains("SourceIp", ':') OR contains("DestinationIp", ':') THEN 'IPv6' ELSE 'IPv4' END
            AS "NetworkProtocolVersion",
          _dir AS "NetworkDirection",
          CASE WHEN {inbound} THEN "BytesReceived" ELSE "BytesSent" END AS "SrcBytes",
          CASE WHEN {inbound} THEN "BytesSent" ELSE "BytesReceived" END AS "DstBytes",
          try({num('BytesSent')} + {num('BytesReceived')}) AS "NetworkBytes",
          "ConnectionId" AS "NetworkSessionId",
          "SourceIp" AS "SrcIpAddr",
          CASE WHEN {inbound} THEN {short_host_sql('_rfqdn')} ELSE {host} END AS "SrcHostname",
          {local('"ProcessName"')} AS "SrcAppName",
          "DestinationIp" AS "DstIpAddr", "DestinationPort" AS "DstPortNumber",
          CASE WHEN {inbound} THEN {host} ELSE {short_host_sql('_rfqdn')} END AS "DstHostname",
          {loc_dst('"ProcessName"')} AS "DstAppName",
          {bag} AS "AdditionalFields"
        FROM x"""
        return Query(sql, {"t": t})


SOURCE = VmConnection(
    name="vmconnection", vendor="Microsoft", product="VMConnection", priority=0,
    forms=("VMConnection table export: CSV with a header", "VMConnection table export: JSON lines"),
)
