"""Forcepoint NGFW (Stonesoft) firewall logs in CEF.

Forms accepted: `[syslog header] CEF:0|FORCEPOINT|Firewall|<ver>|<event id>|<situation>|<sev>|ext`
(also vendor `Forcepoint`, product `NGFW`); the `sentinel` source feeds CommonSecurityLog rows
here.

Mapping (Sentinel's ASimNetworkSessionForcePointFirewall 1.0)
- DvcAction from `act` (Allow / Permit -> Allow, Discard -> Drop, Refuse -> Deny, Terminate ->
  Reset Source, Terminate (passive) -> Reset Destination, Terminate (reset) -> Reset; Terminate
  (failed) and the Wait ... actions give none), else from the event id (70018 / 70011 Allow,
  70019 / 70013 Deny, 70021 / 70022 Reset), else from the message (Connection dropped and the
  low-memory removal -> Drop, reset by client / server -> Reset Source / Destination, TCP state
  violations -> Deny). EventResult follows the same three tables (the timeout messages carry
  their own result).
- NetworkProtocol from `proto` (name or IANA number); ports and addresses as logged; the NAT'ed
  pair from the translated keys; cs1 (and cs2) -> NetworkRuleName; rt -> EventStart/EndTime.
- Sessions: records of the facilities Inspection, Packet Filtering, File Filtering, IPsec VPN and
  Protocol Agent; other facilities are skipped. Deliberate differences: the parser only reads
  vendor "FORCEPOINT" / product "Firewall" (case-sensitive) and a set facility; here the vendor
  is matched in any case, product NGFW is accepted, and a record without a facility (the
  public NGFW CEF samples have none) is kept.
"""

from __future__ import annotations

from ._cefsource import CefSource, map_sql
from ._sql import bag_sql, iana_sql

ACTIONS = {"Allow": ("Allow", "Success"), "Permit": ("Allow", "Success"), "Discard": ("Drop", "Failure"),
           "Refuse": ("Deny", "Failure"), "Terminate": ("Reset Source", "Failure"),
           "Terminate (failed)": (None, "Failure"), "Terminate (passive)": ("Reset Destination", "Failure"),
           "Terminate (reset)": ("Reset", "Failure"), "Wait for Authentication": (None, "Success"),
           "Wait for Further Actions": (None, "Success"), "Wait for RPC Reply": (None, "Success")}
EVENTS = {"70011": ("Allow", "Success"), "70013": ("Deny", "Failure"), "70018": ("Allow", "Success"),
          "70019": ("Deny", "Failure"), "70021": ("Reset", "Failure"), "70022": ("Reset", "Failure"),
          "70026": (None, "Success")}
MESSAGES = {"Connection dropped": ("Drop", "Failure"),
            "Connection removed because NGFW Engine is low on memory.": ("Drop", "Failure"),
            "Connection was reset by client": ("Reset Source", "Failure"),
            "Connection was reset by server": ("Reset Destination", "Failure"),
            "TCP state violation": ("Deny", "Failure"),
            "TCP state violation: Connection end-point replied with ACK to SYN-packet. Connection refused.":
                ("Deny", "Failure")}
_TIMEOUT_OK = ("TCP_CLOSE_WAIT", "TCP_CLOSE_WAIT_ACK", "TCP_CLOSING", "TCP_CLOSING_ACK", "TCP_FIN_WAIT_1",
               "TCP_FIN_WAIT_2", "TCP_LAST_ACK", "TCP_SYN_FIN_SEEN", "TCP_TIME_WAIT")
_FACILITIES = ("inspection", "packet filtering", "file filtering", "ipsec vpn", "protocol agent")


def _pick(i: int, table: dict) -> dict:
    return {k: v[i] for k, v in table.items()}


class Forcepoint(CefSource):
    CEF_VENDOR = "forcepoint"
    KEYS = ("src", "dst", "spt", "dpt", "proto", "act", "msg", "cs1", "cs2", "cs3", "deviceFacility",
            "sourceTranslatedAddress", "sourceTranslatedPort", "destinationTranslatedAddress",
            "destinationTranslatedPort", "in", "out", "deviceInboundInterface", "deviceOutboundInterface",
            "deviceExternalId", "dvc", "dvchost", "app", "cat")
    SQL = f"""
    WITH v AS (SELECT *, NULLIF(regexp_extract(msg, '^Connection timeout in state (\\S+)', 1), '') AS timeout FROM c)
    SELECT _time AS TimeGenerated, 'NetworkSession' AS EventType,
      src AS SrcIpAddr, spt AS SrcPortNumber, dst AS DstIpAddr, dpt AS DstPortNumber,
      {iana_sql('proto')} AS NetworkProtocol,
      coalesce({map_sql('act', _pick(0, ACTIONS))}, {map_sql('signature', _pick(0, EVENTS))},
               {map_sql('msg', _pick(0, MESSAGES))}) AS DvcAction,
      coalesce({map_sql('act', _pick(1, ACTIONS))}, {map_sql('signature', _pick(1, EVENTS))},
               {map_sql('msg', _pick(1, MESSAGES))},
               CASE WHEN timeout IN {_TIMEOUT_OK!r} THEN 'Success' WHEN timeout IS NOT NULL THEN 'Failure' END)
        AS EventResult,
      CASE WHEN timeout IS NOT NULL THEN 'Timeout' END AS EventResultDetails,
      act AS DvcOriginalAction,
      CASE WHEN cs2 IS NOT NULL THEN concat_ws(',', cs1, cs2) ELSE cs1 END AS NetworkRuleName,
      sourceTranslatedAddress AS SrcNatIpAddr, sourceTranslatedPort AS SrcNatPortNumber,
      destinationTranslatedAddress AS DstNatIpAddr, destinationTranslatedPort AS DstNatPortNumber,
      "out" AS SrcBytes, "in" AS DstBytes,
      deviceInboundInterface AS DvcInboundInterface, deviceOutboundInterface AS DvcOutboundInterface,
      deviceExternalId AS DvcId, dvc AS DvcIpAddr, coalesce(dvchost, _host, dvc) AS Dvc,
      signature AS EventOriginalType, deviceFacility AS EventOriginalSubType, version AS EventProductVersion,
      {bag_sql({"Situation": "name", "ApplicationProtocol": "app", "ThreatId": "cs3", "Category": "cat"}, text=True)}
        AS AdditionalFields,
      _cef AND deviceFacility IS NOT NULL AND lower(deviceFacility) NOT IN {_FACILITIES!r} AS _skip,
      CASE WHEN _cef AND NOT (deviceFacility IS NOT NULL AND lower(deviceFacility) NOT IN {_FACILITIES!r})
                AND src IS NULL AND dst IS NULL THEN 'Forcepoint record without addresses' END AS _error
    FROM v"""


SOURCE = Forcepoint(
    name="forcepoint", vendor="Forcepoint", product="Firewall", priority=10,
    forms=("Forcepoint NGFW CEF (FORCEPOINT|Firewall or Forcepoint|NGFW; facilities other than inspection, packet "
           "filtering, file filtering, IPsec VPN, protocol agent skipped); CommonSecurityLog rows via `sentinel`",),
)
