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

from typing import Iterator

import pyarrow as pa

from .. import asim
from ._records import event_fields, head_text, xml_records
from ._sql import bag_sql, col, fqdn_sql, short_host_sql
from ._tables import is_table_export
from .base import BATCH_LINES, Batch, Query, Source, mapped_ahead, materialize


# ---- Sysmon ----------------------------------------------------------------------------------

_FIELDS = ("UtcTime", "ProcessGuid", "ProcessId", "Image", "User", "Protocol", "Initiated",
           "SourceIsIpv6", "SourceIp", "SourceHostname", "SourcePort", "SourcePortName",
           "DestinationIsIpv6", "DestinationIp", "DestinationHostname", "DestinationPort",
           "DestinationPortName", "RuleName")


class Sysmon(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        if is_table_export(head):  # an Event-table export: the `sentinel` source routes it here
            return False
        text = head_text(head)
        return ("<Event" in text and ("Microsoft-Windows-Sysmon" in text or "Linux-Sysmon" in text
                                      or "sysmon: <Event" in text.lower()))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        yield from mapped_ahead(xml_records(path, batch_lines),
                                lambda records: self.finish(self.map_query(records), path))

    def map_records(self, t: pa.Table) -> pa.Table:
        """Event records (`_line`, `_raw`, ...) -> parsed columns (also fed by `sentinel`)."""
        return materialize(self.map_query(t))

    def map_query(self, t: pa.Table) -> Query:
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
        return Query(sql, {"f": f})


SOURCE = Sysmon(
    name="sysmon", vendor="Microsoft", product="Sysmon", priority=0,
    forms=("Sysmon event XML (one <Event> per line, pretty-printed, or an <Events> export; "
           "UTF-8/UTF-16)", "Sysmon for Linux syslog lines ('... sysmon: <Event>...</Event>')"),
)
