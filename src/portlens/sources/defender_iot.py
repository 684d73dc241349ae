"""Microsoft Defender for IoT micro-agent network activity (SecurityIoTRawEvent, NetworkActivity).

Forms accepted: SecurityIoTRawEvent records as JSON (JSON lines, an array, or `{"records":
[...]}`): RawEventName, EventDetails (the agent's event as a JSON object or a JSON string with
LocalAddress, RemoteAddress, LocalPort, RemotePort, BytesIn, BytesOut, Protocol, ProcessId,
UserId, ApplicationProtocol, DeviceId, MessageSource, OriginalEventId, TimestampUTC),
AgentVersion, DeviceId; table exports come through the `sentinel` source. Raw events other
than NetworkActivity (process, login, baseline ...) are skipped.

Mapping (Sentinel's ASimNetworkSessionMicrosoftMD4IoT 0.1)
- The side is guessed as the parser does: a connection is outbound when LocalPort > RemotePort
  (Src = local, Dst = remote, SrcBytes = BytesOut), otherwise inbound (Src = remote, Dst = local,
  SrcBytes = BytesIn). No NetworkDirection and no DvcAction (the parser sets neither);
  EventResult Success, EventSeverity Informational, EventType NetworkSession.
- NetworkProtocol = Protocol; NetworkApplicationProtocol = ApplicationProtocol; DvcId = DeviceId
  (DvcIdType MD4IoTid is not an ASIM value: Other), DvcIpAddr = LocalAddress, DvcOs =
  MessageSource (AdditionalFields); EventOriginalUid = OriginalEventId; EventProductVersion =
  AgentVersion. TimeGenerated from the table, else TimestampUTC.
No public SecurityIoTRawEvent sample was found; the fixture is built from the parser (its field
order) and the micro-agent's documented event fields.
"""

from __future__ import annotations

import re

from ._jsonsource import JsonSource
from ._sql import bag_sql

_DETAILS = ("LocalAddress", "RemoteAddress", "LocalPort", "RemotePort", "BytesIn", "BytesOut", "Protocol",
            "ProcessId", "UserId", "ApplicationProtocol", "DeviceId", "MessageSource", "OriginalEventId",
            "TimestampUTC")


def _detail(name: str) -> str:
    return f"NULLIF(json_extract_string(d, '$.\"{name}\"'), '')"


class DefenderIot(JsonSource):
    FIELDS = {"name": ('$."RawEventName"', '$."RawEventName_s"'), "details": ('$."EventDetails"', '$."EventDetails_s"'),
              "agent": ('$."AgentVersion"', '$."AgentVersion_s"'), "device": ('$."DeviceId"', '$."DeviceId_s"'),
              "tg": ('$."TimeGenerated"',)}
    MARKERS = re.compile(rb'"RawEventName(_s)?"\s*:.*"EventDetails(_s)?"\s*:|"EventDetails(_s)?"\s*:.*"RawEventName(_s)?"\s*:',
                         re.S)
    SQL = f"""
    WITH j AS (SELECT *, CASE WHEN coalesce(try(json_type(details)) = 'OBJECT', false) THEN details END AS d FROM r),
    v AS (SELECT *, {', '.join(f'{_detail(n)} AS "{n}"' for n in _DETAILS)} FROM j),
    w AS (SELECT *, coalesce(TRY_CAST("LocalPort" AS BIGINT) > TRY_CAST("RemotePort" AS BIGINT), false) AS outbound FROM v)
    SELECT _line, _raw, coalesce(tg, "TimestampUTC") AS TimeGenerated, 'NetworkSession' AS EventType,
      'Success' AS EventResult, 'Informational' AS EventSeverity,
      CASE WHEN outbound THEN "LocalAddress" ELSE "RemoteAddress" END AS SrcIpAddr,
      CASE WHEN outbound THEN "LocalPort" ELSE "RemotePort" END AS SrcPortNumber,
      CASE WHEN outbound THEN "RemoteAddress" ELSE "LocalAddress" END AS DstIpAddr,
      CASE WHEN outbound THEN "RemotePort" ELSE "LocalPort" END AS DstPortNumber,
      CASE WHEN outbound THEN "BytesOut" ELSE "BytesIn" END AS SrcBytes,
      CASE WHEN outbound THEN "BytesIn" ELSE "BytesOut" END AS DstBytes,
      upper("Protocol") AS NetworkProtocol, upper("ApplicationProtocol") AS NetworkApplicationProtocol,
      coalesce("DeviceId", device) AS DvcId, 'Other' AS DvcIdType, coalesce("DeviceId", device) AS Dvc,
      "LocalAddress" AS DvcIpAddr, "OriginalEventId" AS EventOriginalUid, agent AS EventProductVersion,
      name AS EventOriginalType,
      {bag_sql({"DvcOs": '"MessageSource"', "ProcessId": '"ProcessId"', "UserId": '"UserId"'}, text=True)}
        AS AdditionalFields,
      coalesce(name, '') <> 'NetworkActivity' AS _skip,
      CASE WHEN name = 'NetworkActivity' AND d IS NULL THEN 'NetworkActivity without EventDetails'
           WHEN name = 'NetworkActivity' AND "LocalAddress" IS NULL AND "RemoteAddress" IS NULL
             THEN 'NetworkActivity without LocalAddress or RemoteAddress' END AS _error
    FROM w"""

    def map_records(self, recs):
        # EventDetails may be an object or a JSON string holding one: unwrap the string form
        import pyarrow as pa
        from .. import asim
        recs = recs.select(["_line", "_raw", "rec"])
        fixed = asim.query("SELECT _line, _raw, CASE WHEN json_type(rec, '$.EventDetails') = 'VARCHAR' "
                           "AND try(json_valid(json_extract_string(rec, '$.EventDetails'))) "
                           "THEN CAST(json_merge_patch(rec, json_object('EventDetails', "
                           "json(json_extract_string(rec, '$.EventDetails')))) AS VARCHAR) ELSE rec END AS rec FROM r",
                           r=recs)
        return super().map_records(pa.table({"_line": fixed["_line"], "_raw": fixed["_raw"], "rec": fixed["rec"]}))


SOURCE = DefenderIot(
    name="defender-iot", vendor="Microsoft", product="Azure Defender for IoT", priority=10,
    forms=("SecurityIoTRawEvent JSON (NetworkActivity; other raw events skipped); exports via `sentinel`",),
)
