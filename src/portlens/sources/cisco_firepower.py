"""Cisco Firepower (FMC eStreamer) events in CEF, as the eStreamer-to-CEF client writes them.

Forms accepted: `[syslog header] CEF:0|Cisco|Firepower|<ver>|<class id>|<name>|<sev>|ext`; the
`sentinel` source feeds CommonSecurityLog rows here (DeviceVendor Cisco, DeviceProduct
Firepower).

Mapping (Sentinel's ASimNetworkSessionCiscoFirepower 0.1.0)
- Sessions: connection statistics (RNA:1003:1), intrusion events (INTRUSION:400) and policy
  violations (PV:112), by DeviceEventClassID; other classes are skipped.
- NetworkProtocol from the IANA number in `proto`. For ICMP the ports carry the ICMP type
  (source port) and code (destination port): both port columns stay empty, NetworkIcmpType is
  the type's name and NetworkIcmpCode the code.
- DvcAction / EventResult from `act`: Allow, Monitor, Alerted, Rewrite(n) -> Allow; Block(ed),
  Reject(ed) -> Deny; Drop(ped) -> Drop; the "Would be ..." forms keep the action with
  EventResult Partial. No NetworkDirection (eStreamer does not give one).
- Src/Dst from src/dst (IPv6 in c6a2 / c6a3), ports spt/dpt; EventStartTime = `start` (epoch
  ms), else the receipt time; EventEndTime = `end`. bytesIn -> SrcBytes, bytesOut -> DstBytes
  (the parser's reading). cs2 (fwRule) -> NetworkRuleName, cs3 / cs4 -> Src/DstZone,
  deviceInbound/OutboundInterface -> DvcInbound/OutboundInterface, externalId -> DvcId.
- EventSeverity from the CEF severity: 0-3 Low, 4-6 Medium, 7-10 High.
"""

from __future__ import annotations

from ._cefsource import CefSource, map_sql, ms_time_sql
from ._sql import bag_sql, iana_sql, icmp_type_sql

ACTIONS = {  # act -> (DvcAction, EventResult), the parser's ActionLookup
    "Blocked": ("Deny", "Failure"), "Alerted": ("Allow", "Success"), "Rewritten": ("Allow", "Success"),
    "Would be Rewritten": ("Allow", "Partial"), "Would be Blocked": ("Deny", "Partial"),
    "Would Be Blocked": ("Deny", "Partial"), "Dropped": ("Drop", "Failure"), "Would be Dropped": ("Drop", "Partial"),
    "Partially Dropped": ("Drop", "Partial"), "Would be Block": ("Deny", "Partial"),
    "Partial Blocked": ("Deny", "Partial"), "Rejected": ("Deny", "Failure"), "Would be Rejected": ("Deny", "Partial"),
    "Would Rejected": ("Deny", "Partial"), "Block": ("Deny", "Failure"), "Partial Block": ("Deny", "Partial"),
    "Drop": ("Drop", "Failure"), "Would Drop": ("Drop", "Partial"), "Reject": ("Deny", "Failure"),
    "Rewrite": ("Allow", "Success"), "Allow": ("Allow", "Success"), "Monitor": ("Allow", "Success"),
}
DETAILS = {"N/A": "NA", "IP Block": "Terminated", "File Block": "Terminated", "Intrusion Block": "Terminated",
           "File Resume Block": "Terminated", "IP Monitor": "Unknown", "User Bypass": "Unknown",
           "File Monitor": "Unknown", "Intrusion Monitor": "Unknown", "File Resume Allow": "Unknown",
           "File Custom Detection": "Unknown"}


class CiscoFirepower(CefSource):
    CEF_VENDOR = "Cisco"
    CEF_PRODUCT = "firepower"
    KEYS = ("src", "dst", "spt", "dpt", "proto", "act", "app", "c6a2", "c6a3", "start", "end", "bytesIn",
            "bytesOut", "cs1", "cs2", "cs3", "cs4", "cs5", "deviceInboundInterface", "deviceOutboundInterface",
            "deviceExternalId", "extId", "suser", "duser", "reason", "dvchost", "dvc", "cn1", "request",
            "requestClientApplication", "cat")
    SQL = f"""
    WITH v AS (SELECT *, {iana_sql('proto')} AS p,
                      regexp_matches(coalesce(signature, ''), 'INTRUSION:400|PV:112|RNA:1003:1') AS session
               FROM c)
    SELECT _time AS TimeGenerated,
      coalesce({ms_time_sql('"start"')}, _time) AS EventStartTime,
      coalesce({ms_time_sql('"end"')}, {ms_time_sql('"start"')}, _time) AS EventEndTime,
      'NetworkSession' AS EventType,
      coalesce(p, CASE WHEN TRY_CAST(proto AS INTEGER) IS NULL THEN proto END) AS NetworkProtocol,
      coalesce(src, c6a2) AS SrcIpAddr, coalesce(dst, c6a3) AS DstIpAddr,
      CASE WHEN p = 'ICMP' THEN NULL ELSE spt END AS SrcPortNumber,
      CASE WHEN p = 'ICMP' THEN NULL ELSE dpt END AS DstPortNumber,
      CASE WHEN p = 'ICMP' THEN {icmp_type_sql('spt', 'false')} END AS NetworkIcmpType,
      CASE WHEN p = 'ICMP' THEN TRY_CAST(dpt AS INTEGER) END AS NetworkIcmpCode,
      {map_sql('act', {k: v[0] for k, v in ACTIONS.items()})} AS DvcAction,
      {map_sql('act', {k: v[1] for k, v in ACTIONS.items()})} AS EventResult,
      act AS DvcOriginalAction,
      {map_sql('reason', DETAILS)} AS EventResultDetails, reason AS EventOriginalResultDetails,
      CASE WHEN TRY_CAST(severity AS INTEGER) <= 3 THEN 'Low' WHEN TRY_CAST(severity AS INTEGER) <= 6 THEN 'Medium'
           WHEN TRY_CAST(severity AS INTEGER) > 6 THEN 'High' END AS EventSeverity,
      "bytesIn" AS SrcBytes, "bytesOut" AS DstBytes,
      cs2 AS NetworkRuleName, cs3 AS SrcZone, cs4 AS DstZone,
      deviceInboundInterface AS DvcInboundInterface, deviceOutboundInterface AS DvcOutboundInterface,
      deviceExternalId AS DvcId, 'Other' AS DvcIdType, extId AS EventOriginalUid,
      CASE WHEN contains(signature, 'INTRUSION:400') THEN 'INTRUSION EVENT' ELSE name END AS EventOriginalType,
      upper(app) AS NetworkApplicationProtocol, suser AS SrcUsername,
      CASE WHEN regexp_full_match(dvchost, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') THEN dvchost END AS DvcIpAddr,
      coalesce(dvchost, _host, dvc) AS Dvc, version AS EventProductVersion,
      {bag_sql({"policy": "cs1", "ipspolicy": "cs5", "clientApplicationID": "requestClientApplication",
                "clientUrl": "request", "vlan": "cn1"}, text=True)} AS AdditionalFields,
      _cef AND NOT session AS _skip,
      CASE WHEN _cef AND session AND coalesce(src, c6a2) IS NULL AND coalesce(dst, c6a3) IS NULL
           THEN 'Firepower event without addresses' END AS _error
    FROM v"""


SOURCE = CiscoFirepower(
    name="cisco-firepower", vendor="Cisco", product="Firepower", priority=10,
    forms=("Cisco Firepower eStreamer CEF (RNA:1003:1 connection statistics, INTRUSION:400, PV:112; other "
           "classes skipped); CommonSecurityLog rows via `sentinel`",),
)
