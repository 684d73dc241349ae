"""SonicWall SonicOS firewall logs in CEF (ArcSight format), raw or as CommonSecurityLog rows.

Forms accepted: `[syslog header] CEF:0|SonicWall|<model>|<version>|<msg id>|<message>|<sev>|ext`
with SonicOS extension keys (gcat, fw_action, snpt/dnpt, srcV6/dstV6, susr, appcat, ...); the
`sentinel` source feeds CommonSecurityLog rows here (DeviceVendor SonicWall).

Mapping (Sentinel's ASimNetworkSessionSonicWallFirewall 0.1.0)
- Sessions are the events of categories gcat 3, 5, 6 and 10 (Security Services, Firewall
  Settings, Network, Firewall) with both addresses, except message IDs 14, 97, 1382, 440, 441,
  442, 646, 647, 734 and 735 (web site hits, VPN and management chatter): the rest is skipped.
- DvcAction from fw_action: allow / "forward" -> Allow, deny -> Deny, "drop" -> Drop, drop ICMP
  -> Drop ICMP, reset client / server / both -> Reset Source / Destination / Reset. The quotes
  SonicOS puts around some values are ignored (the parser's table lists a few with, a few
  without). Deliberate difference: "mgmt" and "NA", which the parser maps to the non-ASIM value
  "Other", leave DvcAction empty (EventResult NA), which ASIM allows.
- NetworkProtocol: the part of `proto` (`udp/dns`, `tcp/https`, `udp/1900`, `igmp`) before the
  slash, upper-cased; the part after it is NetworkApplicationProtocol.
- NetworkDirection from the zones (cs3Label source zone, cs4Label destination zone, as SonicOS
  writes them): both empty -> NA; WAN -> WAN -> Inbound unless the destination ends `.255`
  (External); WAN -> other Inbound; VPN -> WAN Outbound; VPN -> other Inbound; -> MULTICAST NA;
  -> WAN Outbound; else Local.
- EventSeverity from the CEF severity: <= 4 Informational, <= 6 Low, <= 8 Medium, else High.
- cs1 is the rule (NetworkRuleName); cs1Label / cs2Label hold the NAT'ed source / destination
  address (SonicOS reuses the label keys); EventCount 1 (the parser ignores `cnt`, a running
  connection counter).
"""

from __future__ import annotations

from ._cefsource import CefSource, map_sql
from ._sql import bag_sql

_ACTIONS = {"allow": "Allow", "forward": "Allow", "deny": "Deny", "drop": "Drop", "drop icmp": "Drop ICMP",
            "reset client": "Reset Source", "reset server": "Reset Destination", "reset both": "Reset"}
_EXCLUDED = ("14", "97", "1382", "440", "441", "442", "646", "647", "734", "735")


class SonicWall(CefSource):
    CEF_VENDOR = "SonicWall"
    KEYS = ("src", "dst", "spt", "dpt", "proto", "srcV6", "dstV6", "gcat", "fw_action", "cs1", "cs1Label",
            "cs2Label", "cs3Label", "cs4Label", "in", "out", "deviceInboundInterface", "deviceOutboundInterface",
            "smac", "dmac", "suser", "susr", "appName", "app", "cn1", "cn2", "dvchost", "dvc", "cat")
    SQL = f"""
    WITH v AS (
      SELECT *, coalesce(NULLIF(src, ''), srcV6) AS s_ip, coalesce(NULLIF(dst, ''), dstV6) AS d_ip,
        lower(trim(fw_action, '" ')) AS fwa, trim(coalesce(cs3Label, '')) AS szone,
        trim(coalesce(cs4Label, '')) AS dzone, lower(coalesce(proto, '')) AS p
      FROM c)
    SELECT _time AS TimeGenerated,
      'NetworkSession' AS EventType,
      s_ip AS SrcIpAddr, d_ip AS DstIpAddr, spt AS SrcPortNumber, dpt AS DstPortNumber,
      upper(CASE WHEN contains(p, '-') AND NOT contains(p, '/') THEN regexp_replace(p, '.*-', '')
                 ELSE regexp_replace(p, '/.*', '') END) AS NetworkProtocol,
      CASE WHEN contains(p, '/') THEN upper(regexp_replace(p, '.*/', '')) END AS NetworkApplicationProtocol,
      {map_sql('fwa', _ACTIONS)} AS DvcAction,
      trim(fw_action) AS DvcOriginalAction,
      CASE WHEN fwa IN ('mgmt', 'na') THEN 'NA' END AS EventResult,
      CASE WHEN szone = '' AND dzone = '' THEN 'NA'
           WHEN szone = 'WAN' AND dzone = 'WAN' AND NOT coalesce(d_ip LIKE '%.255', false) THEN 'Inbound'
           WHEN szone = 'WAN' AND dzone = 'WAN' THEN 'External'
           WHEN szone = 'WAN' THEN 'Inbound'
           WHEN szone = 'VPN' AND dzone = 'WAN' THEN 'Outbound'
           WHEN szone = 'VPN' THEN 'Inbound'
           WHEN dzone = 'MULTICAST' THEN 'NA'
           WHEN dzone = 'WAN' THEN 'Outbound'
           ELSE 'Local' END AS NetworkDirection,
      NULLIF(szone, '') AS SrcZone, NULLIF(dzone, '') AS DstZone,
      CASE WHEN TRY_CAST(severity AS INTEGER) <= 4 THEN 'Informational'
           WHEN TRY_CAST(severity AS INTEGER) <= 6 THEN 'Low'
           WHEN TRY_CAST(severity AS INTEGER) <= 8 THEN 'Medium'
           WHEN TRY_CAST(severity AS INTEGER) > 8 THEN 'High' END AS EventSeverity,
      trim(cs1, '" ') AS NetworkRuleName,
      cs1Label AS SrcNatIpAddr, cs2Label AS DstNatIpAddr,
      "out" AS SrcBytes, "in" AS DstBytes,
      TRY_CAST("in" AS BIGINT) + TRY_CAST("out" AS BIGINT) AS NetworkBytes,
      deviceInboundInterface AS DvcInboundInterface, deviceOutboundInterface AS DvcOutboundInterface,
      smac AS SrcMacAddr, dmac AS DstMacAddr, coalesce(susr, suser) AS SrcUsername,
      signature AS EventOriginalType, name AS EventOriginalSubType, version AS EventProductVersion,
      coalesce(dvchost, _host, dvc) AS Dvc,
      {bag_sql({"gcat": "gcat", "Model": "product", "AppName": "trim(appName, chr(39))", "Category": "cat"}, text=True)}
        AS AdditionalFields,
      CASE WHEN _cef AND (signature IN {_EXCLUDED!r} OR gcat NOT IN ('3', '5', '6', '10') OR gcat IS NULL
                          OR s_ip IS NULL OR d_ip IS NULL) THEN true ELSE false END AS _skip,
      NULL::VARCHAR AS _error
    FROM v"""


SOURCE = SonicWall(
    name="sonicwall", vendor="SonicWall", product="Firewall", priority=10,
    forms=("SonicOS CEF (ArcSight) syslog, CEF:0|SonicWall|...: gcat 3/5/6/10 connection events "
           "(others skipped); CommonSecurityLog rows via `sentinel`",),
)
