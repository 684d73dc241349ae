"""Illumio Core / SaaS Core flow summaries (Illumio_Flow_Events_CL, Illumio_Flow_Events2_CL).

Forms accepted: the PCE's flow-summary JSON records (JSON lines, an array or one object: the
records the Illumio connector stores), with src_ip, dst_ip, dst_port, proto (IANA number), dir
(I / O), pd (policy decision), flow_count, pce_fqdn, ...; exports of the two tables come through
the `sentinel` source (same fields, with or without the `_s`/`_d` suffixes).

Mapping (Sentinel's vimNetworkSessionIllumioSaaSCore 0.1.0)
- One record -> one row, EventType Flow, EventCount = flow_count; EventResult Success for every
  record (the parser's constant), EventSeverity Low for Deny, else Informational.
- NetworkProtocol from proto through the IANA table; DvcAction from pd: 0 and 1 (allowed,
  potentially blocked) -> Allow, 2 (blocked) -> Deny; NetworkDirection: dir I -> Inbound,
  O -> Outbound. Deliberate difference: any other dir value, which the parser maps to the
  non-ASIM "Unknown", leaves NetworkDirection empty.
- dst_port -> DstPortNumber (Illumio reports no source port); dst_dbi -> SrcBytes, dst_dbo ->
  DstBytes (bytes in / out at the destination workload, as the parser); DvcIpAddr /
  DvcHostname = the source's; Dvc = pce_fqdn.
- Deliberate difference: interval_sec is seconds, so NetworkDuration = interval_sec x 1000 (the
  parser stores the seconds as milliseconds).
- Time: TimeGenerated from `timestamp` (the record's time) when present, else TimeGenerated.
- AdditionalFields: Class (M/B/U -> Multicast/Broadcast/Unicast), Network, Source_Labels,
  Dest_Labels, Src_href, Dst_href, as the parser; plus ProcessName / User (pn, un).
"""

from __future__ import annotations

import re

from ._jsonsource import JsonSource, paths
from ._sql import bag_sql, iana_sql

_FIELDS = ("src_ip", "dst_ip", "dst_port", "proto", "dir", "pd", "flow_count", "pce_fqdn", "src_hostname",
           "dst_hostname", "dst_dbi", "dst_dbo", "interval_sec", "class", "network", "src_labels",
           "dst_labels", "src_href", "dst_href", "pn", "un", "state")


class Illumio(JsonSource):
    FIELDS = {**{f: paths(f, f + "_s", f + "_d") for f in _FIELDS},
              "time": ('$."timestamp"', '$."TimeGenerated"'), "typ": ('$."Type"',)}
    MARKERS = re.compile(rb'"(src_ip|dst_ip)(_s)?"\s*:.*"(pd|pce_fqdn)(_[sd])?"\s*:', re.S)
    SQL = f"""
    SELECT _line, _raw, time AS TimeGenerated, 'Flow' AS EventType,
      greatest(coalesce(TRY_CAST(TRY_CAST(flow_count AS DOUBLE) AS BIGINT), 1), 1) AS EventCount,
      'Success' AS EventResult,
      CASE WHEN TRY_CAST(TRY_CAST(pd AS DOUBLE) AS INTEGER) = 2 THEN 'Low' ELSE 'Informational' END AS EventSeverity,
      {iana_sql('CAST(TRY_CAST(TRY_CAST(proto AS DOUBLE) AS INTEGER) AS VARCHAR)')} AS NetworkProtocol,
      CASE TRY_CAST(TRY_CAST(pd AS DOUBLE) AS INTEGER) WHEN 0 THEN 'Allow' WHEN 1 THEN 'Allow' WHEN 2 THEN 'Deny' END
        AS DvcAction,
      pd AS DvcOriginalAction,
      CASE dir WHEN 'I' THEN 'Inbound' WHEN 'O' THEN 'Outbound' END AS NetworkDirection,
      src_ip AS SrcIpAddr, dst_ip AS DstIpAddr, dst_port AS DstPortNumber,
      src_hostname AS SrcHostname, dst_hostname AS DstHostname,
      dst_dbi AS SrcBytes, dst_dbo AS DstBytes,
      TRY_CAST(TRY_CAST(interval_sec AS DOUBLE) * 1000 AS BIGINT) AS NetworkDuration,
      src_ip AS DvcIpAddr, src_hostname AS DvcHostname, pce_fqdn AS Dvc,
      CASE WHEN contains(coalesce(dst_ip, src_ip), ':') THEN 'IPv6' ELSE 'IPv4' END AS NetworkProtocolVersion,
      coalesce(typ, 'Illumio_Flow_Events_CL') AS EventOriginalType,
      {bag_sql({"Class": "CASE class WHEN 'M' THEN 'Multicast' WHEN 'B' THEN 'Broadcast' WHEN 'U' THEN 'Unicast' ELSE class END",
                "Network": "network", "Source_Labels": "src_labels", "Dest_Labels": "dst_labels",
                "Src_href": "src_href", "Dst_href": "dst_href", "ProcessName": "pn", "User": "un",
                "State": "state"}, text=True)} AS AdditionalFields,
      false AS _skip,
      CASE WHEN src_ip IS NULL AND dst_ip IS NULL THEN 'flow record without src_ip or dst_ip' END AS _error
    FROM r"""


SOURCE = Illumio(
    name="illumio", vendor="Illumio", product="Core", priority=10,
    forms=("Illumio PCE flow-summary JSON (JSON lines, array or object): src_ip, dst_ip, dst_port, proto, dir, pd, "
           "flow_count; Illumio_Flow_Events(2)_CL exports via `sentinel`",),
)
