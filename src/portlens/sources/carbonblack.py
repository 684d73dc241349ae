"""VMware Carbon Black Cloud network connection events (endpoint.event.netconn).

Forms accepted: the Carbon Black Cloud event JSON records (Data Forwarder / API, JSON lines, an
array or one object) with type / eventType `endpoint.event.netconn`, action
(ACTION_CONNECTION_CREATE / _LISTEN / _CREATE_FAILED / _ESTABLISHED ...), netconn_protocol,
local_ip/local_port, remote_ip/remote_port, netconn_inbound, sensor_action; exports of
CarbonBlackEvents_CL come through the `sentinel` source (same fields with `_s`/`_d`/`_b`).
Other event types (process, file, module, cross-process ...) are skipped.

Mapping (Sentinel's ASimNetworkSessionVMwareCarbonBlackCloud 0.1.1)
- EventType EndpointNetworkSession; NetworkProtocol PROTO_TCP -> TCP, PROTO_UDP -> UDP.
- DvcAction from sensor_action: ACTION_ALLOW -> Allow, ACTION_SUSPEND / _TERMINATE / _BREAK ->
  Drop, ACTION_BLOCK -> Deny; no sensor action -> none. EventResult Failure for
  ACTION_CONNECTION_CREATE_FAILED, Success when the sensor allowed or did nothing, else Failure.
- NetworkDirection: action ACTION_CONNECTION_LISTEN -> Listen, netconn_inbound true -> Inbound.
  Deliberate difference: the parser's "Unknown" for every other row (outbound connections
  included) is not an ASIM value; those rows have no NetworkDirection.
- Sides as the parser: local -> Src (SrcIpAddr, SrcPortNumber, the process), remote -> Dst
  (DstIpAddr, DstPortNumber) for every row, inbound included. DstPortNumber is one of the
  rule's keys and Sentinel counts inbound rows under the remote port, so the sides are not
  swapped; AdditionalFields.Initiator says "remote" on inbound rows.
- EventStartTime = createTime (its `+0000 UTC` tail dropped), else event_create_time /
  backend_timestamp; TimeGenerated from the table, else that time.
- DvcIpAddr = device_external_ip; Dvc = device_name; DvcId = device_id; SrcAppName /
  SrcUsername = process_path / process_username.
"""

from __future__ import annotations

import re

from ._jsonsource import JsonSource, paths
from ._sql import bag_sql

_FIELDS = ("eventType", "type", "action", "netconn_protocol", "sensor_action", "local_ip", "local_port",
           "remote_ip", "remote_port", "netconn_inbound", "device_name", "device_id", "device_external_ip",
           "device_os", "process_path", "process_username", "process_pid", "process_guid", "event_id",
           "event_description", "org_key", "createTime", "create_time", "event_create_time",
           "backend_timestamp", "netconn_domain", "alert_id")
_TIME = "TRY_CAST(trim(regexp_replace(regexp_replace({0}, '\\s*(\\+0000)?\\s*UTC$', ''), '\\s*\\+0000$', '')) AS TIMESTAMP)"


class CarbonBlack(JsonSource):
    FIELDS = {**{f: paths(f, f + "_s", f + "_d", f + "_b", f + "_g") for f in _FIELDS},
              "tg": ('$."TimeGenerated"',)}
    MARKERS = re.compile(rb'endpoint\.event\.netconn|"netconn_protocol(_s)?"\s*:')
    SQL = f"""
    WITH v AS (
      SELECT *, coalesce(eventType, type) AS etype, split_part(action, '|', 1) AS act,
        coalesce({_TIME.format('createTime')}, {_TIME.format('create_time')},
                 {_TIME.format('event_create_time')}, {_TIME.format('backend_timestamp')}) AS start,
        lower(netconn_inbound) IN ('true', '1') AS inbound
      FROM r)
    SELECT _line, _raw,
      coalesce(tg, CAST(start AS VARCHAR)) AS TimeGenerated, start AS EventStartTime, start AS EventEndTime,
      'EndpointNetworkSession' AS EventType,
      CASE netconn_protocol WHEN 'PROTO_TCP' THEN 'TCP' WHEN 'PROTO_UDP' THEN 'UDP' END AS NetworkProtocol,
      CASE sensor_action WHEN 'ACTION_ALLOW' THEN 'Allow' WHEN 'ACTION_SUSPEND' THEN 'Drop'
        WHEN 'ACTION_TERMINATE' THEN 'Drop' WHEN 'ACTION_BREAK' THEN 'Drop' WHEN 'ACTION_BLOCK' THEN 'Deny' END AS DvcAction,
      sensor_action AS DvcOriginalAction,
      CASE WHEN act = 'ACTION_CONNECTION_CREATE_FAILED' THEN 'Failure'
           WHEN sensor_action = 'ACTION_ALLOW' OR sensor_action IS NULL THEN 'Success' ELSE 'Failure' END AS EventResult,
      CASE sensor_action WHEN 'ACTION_ALLOW' THEN 'Informational' WHEN 'ACTION_BLOCK' THEN 'Low'
        WHEN 'ACTION_SUSPEND' THEN 'Low' WHEN 'ACTION_TERMINATE' THEN 'Low' WHEN 'ACTION_BREAK' THEN 'Low' END AS EventSeverity,
      CASE WHEN act = 'ACTION_CONNECTION_LISTEN' THEN 'Listen' WHEN inbound THEN 'Inbound' END AS NetworkDirection,
      local_ip AS SrcIpAddr, local_port AS SrcPortNumber, remote_ip AS DstIpAddr, remote_port AS DstPortNumber,
      CASE WHEN contains(remote_ip, '.') THEN 'IPv4' WHEN contains(remote_ip, ':') THEN 'IPv6' END AS NetworkProtocolVersion,
      process_path AS SrcAppName, process_username AS SrcUsername,
      device_external_ip AS DvcIpAddr, coalesce(device_name, device_id, device_external_ip) AS Dvc,
      device_name AS DvcHostname, device_id AS DvcId, CASE WHEN device_id IS NOT NULL THEN 'Other' END AS DvcIdType,
      action AS EventOriginalType, event_id AS EventOriginalUid,
      {bag_sql({"ProcessGuid": "process_guid", "ProcessId": "process_pid", "DvcOs": "device_os",
                "OrgKey": "org_key", "Domain": "netconn_domain", "AlertId": "alert_id",
                "Initiator": "CASE WHEN inbound THEN 'remote' END", "Description": "event_description"}, text=True)}
        AS AdditionalFields,
      coalesce(etype, '') <> 'endpoint.event.netconn' AS _skip,
      CASE WHEN etype = 'endpoint.event.netconn' AND local_ip IS NULL AND remote_ip IS NULL
           THEN 'netconn event without local_ip or remote_ip' END AS _error
    FROM v"""


SOURCE = CarbonBlack(
    name="carbonblack", vendor="VMware", product="Carbon Black Cloud", priority=10,
    forms=("Carbon Black Cloud event JSON (endpoint.event.netconn; other event types skipped); "
           "CarbonBlackEvents_CL exports via `sentinel`",),
)
