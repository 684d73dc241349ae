"""CrowdStrike Falcon host firewall events (CEF from the Falcon SIEM connector).

Forms accepted: `[syslog header] CEF:0|CrowdStrike|FalconHost|...` records; the `sentinel`
source feeds CommonSecurityLog rows here (DeviceVendor CrowdStrike, DeviceProduct FalconHost),
whose network fields are all in AdditionalExtensions.

Mapping (Sentinel's ASimNetworkSessionCrowdStrikeFalconHost 0.1.0)
- Sessions: FirewallMatchEvent and "Network Access In A Detection Summary Event"; every other
  event class (detections, audit, authentication ...) is skipped.
- FirewallMatchEvent: NetworkDirection from connectionDirection (1 Inbound, 2 Outbound);
  DstPortNumber = localPort on inbound, remotePort on outbound (as the parser); DvcAction from
  ruleAction: 1 allowed -> Allow, 0 invalid and 2 blocked -> Deny; NetworkProtocol from the
  IANA number in `protocol`; EventCount = matchCount; NetworkRuleName = ruleName; EventStartTime
  = the CEF receipt time (rt, epoch ms).
  Deliberate difference (a parser bug): Sentinel sets both SrcIpAddr and DstIpAddr to the
  remote address (inbound) or the local one (outbound); here inbound is remote -> local and
  outbound local -> remote, with SrcPortNumber the other side's port.
- Network Access detection summaries: src / dst / spt / dpt as logged (IPv6 in c6a2 / c6a3);
  DvcAction and EventResult from EventOutcome through the parser's table (detections and
  "policy disabled" -> Allow, prevention / kill / block / quarantine -> Deny).
- EventSeverity from the CEF severity: 0-1 Informational, 2 Low, 3 Medium, 4-5 High.
- DvcId = deviceId, Dvc the host name (DvcIpAddr when the host name is an address).
"""

from __future__ import annotations

from ._cefsource import CefSource, map_sql, ms_time_sql
from ._sql import bag_sql, iana_sql

# EventOutcome -> DvcAction (the parser's ActionLookup; EventResult is Success for Allow).
OUTCOMES = {
    "0": "Allow", "2": "Allow", "16": "Deny", "128": "Allow", "144": "Deny", "272": "Allow", "400": "Allow",
    "512": "Deny", "640": "Deny", "768": "Allow", "1024": "Deny", "1040": "Deny", "1152": "Deny", "1168": "Deny",
    "1280": "Allow", "1296": "Allow", "2048": "Deny", "2176": "Deny", "2304": "Allow", "2432": "Allow",
    "4096": "Deny", "4112": "Deny", "4224": "Deny", "4240": "Deny", "4352": "Allow", "4368": "Allow",
    "4638": "Allow", "5120": "Deny", "8192": "Allow", "8208": "Allow", "8320": "Allow", "8704": "Allow",
    "9216": "Allow", "10240": "Allow", "12304": "Allow", "16400": "Deny", "32768": "Deny", "32896": "Deny",
    "33024": "Allow", "65536": "Allow", "65552": "Deny", "65792": "Allow", "65808": "Allow", "73728": "Allow",
    "73744": "Allow", "131088": "Deny", "131216": "Deny", "131584": "Deny", "131712": "Deny", "2099200": "Deny",
    "2099328": "Deny", "4196352": "Deny", "4196480": "Deny", "1048576": "Deny", "524288": "Deny",
    "262144": "Allow", "16384": "Allow", "131072": "Deny", "256": "Allow", "2097152": "Deny", "4194304": "Deny",
}
_FW = "FirewallMatchEvent"
_NA = "Network Access In A Detection Summary Event"


class CrowdStrike(CefSource):
    CEF_VENDOR = "CrowdStrike"
    CEF_PRODUCT = "falcon"
    KEYS = ("deviceId", "cmdLine", "connectionDirection", "eventType", "hostName", "icmpCode", "icmpType",
            "localAddress", "localPort", "matchCount", "networkProfile", "protocol", "remoteAddress",
            "remotePort", "ruleAction", "ruleDescription", "ruleGroupName", "ruleName", "src", "dst", "spt",
            "dpt", "c6a2", "c6a3", "outcome", "deviceCustomDate1", "extId", "duser", "fname", "smac", "proto",
            "dhost", "dntdom")
    SQL = f"""
    WITH v AS (SELECT *, signature = '{_FW}' AS fw, contains(coalesce(signature, ''), '{_NA}') AS na,
                      TRY_CAST(connectionDirection AS INTEGER) AS dir FROM c)
    SELECT coalesce({ms_time_sql('rt')}, _time) AS TimeGenerated,
      coalesce({ms_time_sql('rt')}, TRY_CAST(deviceCustomDate1 AS TIMESTAMPTZ), _time) AS EventStartTime,
      'EndpointNetworkSession' AS EventType,
      CASE WHEN fw THEN CASE dir WHEN 1 THEN 'Inbound' WHEN 2 THEN 'Outbound' END END AS NetworkDirection,
      CASE WHEN fw THEN CASE dir WHEN 1 THEN remoteAddress WHEN 2 THEN localAddress END
           ELSE coalesce(src, c6a2) END AS SrcIpAddr,
      CASE WHEN fw THEN CASE dir WHEN 1 THEN remotePort WHEN 2 THEN localPort END ELSE spt END AS SrcPortNumber,
      CASE WHEN fw THEN CASE dir WHEN 1 THEN localAddress WHEN 2 THEN remoteAddress END
           ELSE coalesce(dst, c6a3) END AS DstIpAddr,
      CASE WHEN fw THEN CASE dir WHEN 1 THEN localPort WHEN 2 THEN remotePort END ELSE dpt END AS DstPortNumber,
      CASE WHEN fw THEN {iana_sql('protocol')} ELSE {iana_sql('proto')} END AS NetworkProtocol,
      CASE WHEN fw THEN CASE ruleAction WHEN '1' THEN 'Allow' WHEN '0' THEN 'Deny' WHEN '2' THEN 'Deny' END
           ELSE {map_sql('outcome', OUTCOMES)} END AS DvcAction,
      CASE WHEN fw THEN CASE ruleAction WHEN '0' THEN 'invalid' WHEN '1' THEN 'allowed' WHEN '2' THEN 'blocked' END
           ELSE outcome END AS DvcOriginalAction,
      CASE WHEN fw THEN greatest(coalesce(TRY_CAST(matchCount AS BIGINT), 1), 1) ELSE 1 END AS EventCount,
      CASE WHEN fw THEN ruleName END AS NetworkRuleName,
      CASE WHEN fw AND {iana_sql('protocol')} IN ('ICMP', 'IPV6-ICMP') THEN TRY_CAST(icmpCode AS INTEGER) END AS NetworkIcmpCode,
      CASE WHEN TRY_CAST(severity AS INTEGER) <= 1 THEN 'Informational' WHEN severity = '2' THEN 'Low'
           WHEN severity = '3' THEN 'Medium' WHEN TRY_CAST(severity AS INTEGER) >= 4 THEN 'High' END AS EventSeverity,
      signature AS EventOriginalType, eventType AS EventOriginalSubType, version AS EventProductVersion,
      coalesce(deviceId, extId) AS DvcId, CASE WHEN coalesce(deviceId, extId) IS NOT NULL THEN 'Other' END AS DvcIdType,
      CASE WHEN regexp_full_match(hostName, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') THEN hostName END AS DvcIpAddr,
      CASE WHEN NOT regexp_full_match(hostName, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') THEN hostName END AS DvcHostname,
      coalesce(deviceId, extId, hostName) AS Dvc,
      CASE WHEN na THEN duser END AS SrcUsername, CASE WHEN na THEN fname END AS SrcAppName,
      CASE WHEN na THEN smac END AS SrcMacAddr,
      {bag_sql({"networkProfile": "networkProfile", "ruleDescription": "ruleDescription",
                "ruleGroupName": "ruleGroupName", "cmdLine": "cmdLine"}, text=True)} AS AdditionalFields,
      _cef AND NOT (fw OR na) AS _skip,
      CASE WHEN _cef AND fw AND (dir NOT IN (1, 2) OR dir IS NULL)
           THEN 'FirewallMatchEvent without connectionDirection 1 or 2' END AS _error
    FROM v"""


SOURCE = CrowdStrike(
    name="crowdstrike", vendor="CrowdStrike", product="FalconHost", priority=10,
    forms=("CrowdStrike Falcon CEF (FirewallMatchEvent, Network Access detection summaries; other events "
           "skipped); CommonSecurityLog rows via `sentinel`",),
)
