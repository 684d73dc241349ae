"""Cisco Firepower Threat Defense (FTD) security events: connection (430002 start, 430003 end,
430007 elephant flow), intrusion (430001) and file (430005) syslog messages.

Forms accepted: `[syslog header] %FTD-<sev>-4300xx: Key: value, Key: value, ...` lines (the
message as FTD writes it, alone or behind a syslog header); the `sentinel` source feeds the
Message of CommonSecurityLog rows with DeviceProduct FTD here. Other %FTD- messages in the same
file (the ASA-form 302013, 106023, ...) are handed to the `cisco-asa` parser.

Mapping (Sentinel's ASimNetworkSessionCiscoFTD 0.1.0)
- Connection events: EventType NetworkSession, EventSubType Start (430002) / End (430003);
  AccessControlRuleAction Allow / Fastpath / Trust -> DvcAction Allow (Success), Block -> Deny
  (Failure, Terminated), Block with reset -> Reset (Failure); other actions give none.
  Initiator / Responder bytes and packets -> Src / Dst; ConnectionDuration -> NetworkDuration
  (seconds, as the parser); NAT_Initiator / NAT_Responder -> Src / Dst NAT.
- Intrusion events: EventType IDS; InlineResult Alert / Would block -> Allow, Block -> Deny;
  Priority 1/2/3 -> High/Medium/Low.
- File events: EventType EndpointNetworkSession; FileAction Malware Block -> Deny, any other
  action -> Allow; FileDirection Download / Upload -> Inbound / Outbound.
- NetworkProtocol = Protocol upper-cased; SrcIP/DstIP/SrcPort/DstPort as logged;
  IngressInterface / EgressInterface -> DvcInbound/OutboundInterface; AccessControlRuleName ->
  NetworkRuleName; FirstPacketSecond -> EventStartTime; DeviceUUID -> DvcId; ConnectionID ->
  EventOriginalUid; EventPriority -> EventSeverity (High/Medium/Low, else Informational).
- Deliberate difference: ConnectionDuration is seconds; NetworkDuration is ms, so x1000.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog as S
from ._records import extract_groups
from ._sql import bag_sql
from ._tables import is_table_export
from .base import Source

KEYS = ("DeviceUUID", "InstanceID", "FirstPacketSecond", "ConnectionID", "SrcIP", "DstIP", "SrcPort", "DstPort",
        "Protocol", "IngressInterface", "EgressInterface", "IngressZone", "EgressZone", "ACPolicy",
        "AccessControlRuleName", "AccessControlRuleAction", "EventPriority", "InitiatorPackets",
        "ResponderPackets", "InitiatorBytes", "ResponderBytes", "ApplicationProtocol", "Client",
        "ConnectionDuration", "User", "NAT_InitiatorIP", "NAT_InitiatorPort", "NAT_ResponderIP",
        "NAT_ResponderPort", "InlineResult", "Priority", "Message", "Classification", "FileAction",
        "FileDirection", "URL", "DNSQuery", "Prefilter Policy")
_EVENT = r"%FTD-(?:[A-Za-z_]+-)?(?P<sev>[0-7])-(?P<id>4300\d\d):?\s*"
_SQL = f"""
WITH v AS (SELECT *, id IN ('430002', '430003', '430007') AS conn FROM t)
SELECT _line, _raw, TRY_CAST("FirstPacketSecond" AS TIMESTAMPTZ) AS EventStartTime,
  CASE WHEN id = '430001' THEN 'IDS' WHEN id = '430005' THEN 'EndpointNetworkSession' ELSE 'NetworkSession' END
    AS EventType,
  CASE id WHEN '430002' THEN 'Start' WHEN '430003' THEN 'End' END AS EventSubType,
  "SrcIP" AS SrcIpAddr, "DstIP" AS DstIpAddr, "SrcPort" AS SrcPortNumber, "DstPort" AS DstPortNumber,
  upper("Protocol") AS NetworkProtocol,
  CASE WHEN conn THEN CASE WHEN "AccessControlRuleAction" IN ('Allow', 'Fastpath', 'Trust') THEN 'Allow'
                           WHEN "AccessControlRuleAction" = 'Block' THEN 'Deny'
                           WHEN "AccessControlRuleAction" = 'Block with reset' THEN 'Reset' END
       WHEN id = '430001' THEN CASE WHEN "InlineResult" IN ('Alert', 'Would block') THEN 'Allow'
                                    WHEN "InlineResult" = 'Block' THEN 'Deny' END
       WHEN id = '430005' THEN CASE WHEN "FileAction" = 'Malware Block' THEN 'Deny'
                                    WHEN "FileAction" IS NOT NULL THEN 'Allow' END END AS DvcAction,
  CASE WHEN conn THEN CASE WHEN "AccessControlRuleAction" IN ('Block', 'Block with reset') THEN 'Failure'
                           WHEN "AccessControlRuleAction" IN ('Allow', 'Fastpath', 'Trust') THEN 'Success' END
       WHEN id = '430001' THEN CASE WHEN "InlineResult" IN ('Alert', 'Block', 'Would block') THEN 'Success' ELSE 'Failure' END
       WHEN id = '430005' THEN CASE WHEN "FileAction" = 'Malware Block' THEN 'Success' ELSE 'Failure' END END
    AS EventResult,
  coalesce("AccessControlRuleAction", "InlineResult", "FileAction") AS DvcOriginalAction,
  CASE WHEN id = '430005' THEN CASE lower("FileDirection") WHEN 'download' THEN 'Inbound'
                                                            WHEN 'upload' THEN 'Outbound' END END AS NetworkDirection,
  CASE WHEN id = '430001' THEN CASE "Priority" WHEN '1' THEN 'High' WHEN '2' THEN 'Medium' WHEN '3' THEN 'Low'
                                               ELSE 'Informational' END
       ELSE CASE lower("EventPriority") WHEN 'high' THEN 'High' WHEN 'medium' THEN 'Medium' WHEN 'low' THEN 'Low'
                                        ELSE 'Informational' END END AS EventSeverity,
  "InitiatorBytes" AS SrcBytes, "ResponderBytes" AS DstBytes,
  "InitiatorPackets" AS SrcPackets, "ResponderPackets" AS DstPackets,
  TRY_CAST("InitiatorBytes" AS BIGINT) + TRY_CAST("ResponderBytes" AS BIGINT) AS NetworkBytes,
  TRY_CAST("InitiatorPackets" AS BIGINT) + TRY_CAST("ResponderPackets" AS BIGINT) AS NetworkPackets,
  TRY_CAST("ConnectionDuration" AS BIGINT) * 1000 AS NetworkDuration,
  "IngressInterface" AS DvcInboundInterface, "EgressInterface" AS DvcOutboundInterface,
  "IngressZone" AS SrcZone, "EgressZone" AS DstZone,
  "AccessControlRuleName" AS NetworkRuleName, "DeviceUUID" AS DvcId,
  CASE WHEN "DeviceUUID" IS NOT NULL THEN 'Other' END AS DvcIdType, "ConnectionID" AS EventOriginalUid,
  id AS EventOriginalType, upper("ApplicationProtocol") AS NetworkApplicationProtocol,
  "User" AS SrcUsername, "Client" AS SrcAppName,
  "NAT_InitiatorIP" AS SrcNatIpAddr, "NAT_InitiatorPort" AS SrcNatPortNumber,
  "NAT_ResponderIP" AS DstNatIpAddr, "NAT_ResponderPort" AS DstNatPortNumber,
  coalesce(hostname, "DeviceUUID") AS Dvc, time AS TimeGenerated,
  {bag_sql({"InstanceID": '"InstanceID"', "ACPolicy": '"ACPolicy"', "PrefilterPolicy": '"Prefilter Policy"',
            "Classification": '"Classification"', "Message": '"Message"', "URL": '"URL"', "DNSQuery": '"DNSQuery"'},
           text=True)} AS AdditionalFields,
  false AS _skip,
  CASE WHEN "SrcIP" IS NULL AND "DstIP" IS NULL THEN 'FTD event ' || id || ' without SrcIP or DstIP' END AS _error
FROM v"""


class CiscoFtd(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        return not is_table_export(head) and bool(re.search(rb"%FTD-(?:[A-Za-z_]+-)?[0-7]-4300\d\d\b", head))

    CARRIES_STATE = True  # (its ASA-form lines are cisco-asa's, with cisco-asa's state)

    def start(self, path: str) -> dict:
        from . import get
        return get("cisco-asa").start(path)

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:
        ours, ev = extract_groups(lines, _EVENT)
        parts = []
        if pc.any(ours).as_py():
            parts.append(self._events(lines.filter(ours), numbers.filter(ours)))
        rest = pc.invert(ours)
        if pc.any(rest).as_py():  # ASA-form messages: the cisco-asa parser's
            from . import get
            asa = get("cisco-asa").parse_lines(lines.filter(rest), numbers.filter(rest), state)
            parts.append(_as_text(asa))
        if not parts:
            return pa.table({"_line": numbers, "_raw": lines})
        out = pa.concat_tables([_as_text(p) for p in parts], promote_options="default")
        return out.take(pc.sort_indices(out["_line"]))

    def _events(self, lines: pa.Array, numbers: pa.Array) -> pa.Table:
        head = S.arrays(S.syslog_header(lines, parse_time=False))
        _, ev = extract_groups(lines, _EVENT)
        body = pc.replace_substring_regex(lines, r"^.*?%FTD-(?:[A-Za-z_]+-)?[0-7]-4300\d\d:?", "", max_replacements=1)
        cols = {"_line": numbers, "_raw": lines, "id": ev["id"], "hostname": head["hostname"],
                "time": S.parse_timestamps(head["timestamp_text"])}
        for key in KEYS:
            _, g = extract_groups(body, rf"(?:^|,)\s*{re.escape(key)}:\s*(?P<v>[^,]*)")
            cols[key] = pc.utf8_trim_whitespace(g["v"])
        return asim.query(_SQL, t=pa.table(cols))


def _as_text(t: pa.Table) -> pa.Table:
    """Every ASIM column as text (conform parses it) so the two parsers' tables concatenate."""
    for i, f in enumerate(t.schema):
        if not f.name.startswith("_") and not pa.types.is_string(f.type):
            t = t.set_column(i, f.name, pc.cast(t[f.name], pa.string()))
    return t


SOURCE = CiscoFtd(
    name="cisco-ftd", vendor="Cisco", product="Firepower Threat Defense", priority=11,
    forms=("Cisco FTD %FTD-*-430001/430002/430003/430005/430007 syslog (Key: value, ...); other %FTD- "
           "messages parsed as Cisco ASA; CommonSecurityLog rows (DeviceProduct FTD) via `sentinel`",),
)
