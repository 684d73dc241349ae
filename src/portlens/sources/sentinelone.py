"""SentinelOne network alerts (SentinelOne_CL `Alerts.` records of event type TCPV4).

Forms accepted: SentinelOne cloud-detection alert JSON as the management API returns it
(nested `alertInfo`, `ruleInfo`, `agentDetectionInfo`, `sourceProcessInfo` objects; JSON lines,
an array, or `{"data": [...]}`) and the connector's flattened form (`alertInfo_dstIp`, with or
without the `_s` suffixes), which is also what `sentinel` feeds from SentinelOne_CL exports.

Mapping (Sentinel's ASimNetworkSessionSentinelOne 0.1.0)
- Sessions are alerts (event_name `Alerts.`, or any record with an alertInfo when event_name
  is absent, as in the API form) whose alertInfo.eventType is TCPV4; other records are skipped.
- NetworkProtocol TCP, NetworkProtocolVersion IPv4, DvcAction Allow, EventResult Success,
  EventType EndpointNetworkSession (the parser's constants); NetworkDirection from
  netEventDirection: OUTGOING -> Outbound, INCOMING -> Inbound.
- Src/Dst from alertInfo srcIp/srcPort and dstIp/dstPort as logged (SentinelOne reports the
  connection's own source and destination); DvcIpAddr = SrcIpAddr as the parser.
- Severity: ruleInfo.severity, Critical -> High. DvcId = agentDetectionInfo.uuid, Dvc the agent
  name; SrcAppName / SrcUsername from sourceProcessInfo.
- Deliberate difference: EventStartTime is alertInfo.createdAt (the parser takes the source
  process's start time, which can be days earlier); TimeGenerated from the table, else createdAt.
"""

from __future__ import annotations

import re

from ._jsonsource import JsonSource, paths

_FIELDS = ("event_name", "alertInfo_eventType", "alertInfo_srcIp", "alertInfo_srcPort", "alertInfo_dstIp",
           "alertInfo_dstPort", "alertInfo_netEventDirection", "alertInfo_dvEventId", "alertInfo_createdAt",
           "ruleInfo_severity", "ruleInfo_name", "agentDetectionInfo_uuid", "agentDetectionInfo_name",
           "agentDetectionInfo_osName", "sourceProcessInfo_name", "sourceProcessInfo_user",
           "sourceProcessInfo_pid", "alertInfo_alertId")


class SentinelOne(JsonSource):
    FIELDS = {**{f: paths(f, f + "_s", f + "_d", f + "_g", f + "_t") for f in _FIELDS},
              "tg": ('$."TimeGenerated"',), "has_alert": ('$."alertInfo"', '$."alertInfo_alertId"', '$."alertInfo_eventType"')}
    MARKERS = re.compile(rb'"alertInfo(_[A-Za-z]+)?"\s*:')
    ARRAYS = ("records", "data")
    SQL = """
    WITH v AS (SELECT *, coalesce(event_name = 'Alerts.', event_name IS NULL AND has_alert IS NOT NULL) AS alert,
                      TRY_CAST(alertInfo_createdAt AS TIMESTAMPTZ) AS created FROM r)
    SELECT _line, _raw,
      coalesce(tg, CAST(created AS VARCHAR)) AS TimeGenerated, created AS EventStartTime, created AS EventEndTime,
      'EndpointNetworkSession' AS EventType, 'TCP' AS NetworkProtocol, 'IPv4' AS NetworkProtocolVersion,
      'Allow' AS DvcAction, 'Success' AS EventResult,
      CASE alertInfo_netEventDirection WHEN 'OUTGOING' THEN 'Outbound' WHEN 'INCOMING' THEN 'Inbound' END AS NetworkDirection,
      alertInfo_srcIp AS SrcIpAddr, alertInfo_srcPort AS SrcPortNumber,
      alertInfo_dstIp AS DstIpAddr, alertInfo_dstPort AS DstPortNumber,
      alertInfo_srcIp AS DvcIpAddr, agentDetectionInfo_name AS DvcHostname, agentDetectionInfo_name AS SrcHostname,
      coalesce(agentDetectionInfo_uuid, agentDetectionInfo_name, alertInfo_srcIp) AS Dvc,
      agentDetectionInfo_uuid AS DvcId, CASE WHEN agentDetectionInfo_uuid IS NOT NULL THEN 'Other' END AS DvcIdType,
      CASE WHEN ruleInfo_severity = 'Critical' THEN 'High' WHEN ruleInfo_severity IN ('High', 'Medium', 'Low', 'Informational')
           THEN ruleInfo_severity END AS EventSeverity,
      alertInfo_dvEventId AS EventOriginalUid, alertInfo_eventType AS EventOriginalType,
      ruleInfo_name AS NetworkRuleName,
      sourceProcessInfo_name AS SrcAppName, sourceProcessInfo_user AS SrcUsername,
      NOT (alert AND coalesce(alertInfo_eventType = 'TCPV4', false)) AS _skip,
      CASE WHEN alert AND alertInfo_eventType = 'TCPV4' AND alertInfo_srcIp IS NULL AND alertInfo_dstIp IS NULL
           THEN 'TCPV4 alert without srcIp or dstIp' END AS _error
    FROM v"""


SOURCE = SentinelOne(
    name="sentinelone", vendor="SentinelOne", product="SentinelOne", priority=10,
    forms=("SentinelOne alert JSON (API nested or connector-flattened; TCPV4 alerts, others skipped); "
           "SentinelOne_CL exports via `sentinel`",),
)
