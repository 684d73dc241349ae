"""Barracuda Web Application Firewall network-firewall logs (log type NF): barracuda_CL rows and CEF.

Forms accepted
- CEF: `[syslog header] CEF:0|Barracuda|WAF|<ver>|<id>|<name>|<sev>|cat=NF src= spt= dst= dpt=
  act= proto= rt= ...` (vendor Barracuda*, product WAF or WAAS);
- barracuda_CL records as JSON (JSON lines, an array, or `{"records": [...]}`): LogType,
  ActionID, SourceIP, SourcePort, DestinationIP, DestinationPort, Protocol, Severity, UnitName,
  DeviceReceiptTime, ... with or without the `_s`/`_d` suffixes; CSV and JSON exports of
  barracuda_CL and CommonSecurityLog come through the `sentinel` source.
Log types other than NF (web firewall WF, access TR, audit, system) are web or management
records, not network sessions: skipped.

Mapping (Sentinel's ASimNetworkSessionBarracudaWAF / BarracudaCEF 0.2.1): one mapping over the
barracuda_CL fields; CEF keys are read as those fields (cat -> LogType, act -> ActionID, src /
dst / spt / dpt, proto -> Protocol, severity -> Severity, dvchost -> UnitName, rt ->
DeviceReceiptTime).
- DvcAction / EventResult from ActionID: ALLOW -> Allow / Success, DENY -> Deny / Failure.
- NetworkProtocol: TCP, TCP/ip -> TCP; UDP, UDP/ip -> UDP; ICMP, ICMPv6 -> ICMP (the parser's
  table; anything else none). Ports as logged, also for ICMP (the parser keeps them).
- EventSeverity from Severity: 0-2 High, 3 Medium, 4-5 Low, 6-7 Informational.
- EventStartTime = DeviceReceiptTime (epoch ms) minus TimeTaken; Dvc = UnitName, DvcHostname =
  host, DvcIpAddr = HostIP. In barracuda_CL the typed columns win over the CEF text in Message
  (the Sentinel parser reads the columns; they disagree in the public sample).
No public Barracuda CloudGen Firewall log was found; its records are not mapped here.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog as S
from ._cefsource import CefSource, ms_time_sql
from ._jsonsource import JsonSource, paths
from .base import BATCH_LINES, read_head

_COLUMNS = ("LogType", "ActionID", "SourceIP", "SourcePort", "DestinationIP", "DestinationPort", "Protocol",
            "Severity", "UnitName", "host", "HostIP", "DeviceReceiptTime", "TimeTaken", "DeviceVersion")

MAP_SQL = f"""
SELECT _line, _raw, coalesce(tg, CAST({ms_time_sql('DeviceReceiptTime')} AS VARCHAR)) AS TimeGenerated,
  {ms_time_sql('TRY_CAST(DeviceReceiptTime AS DOUBLE) - coalesce(TRY_CAST(TimeTaken AS DOUBLE), 0)')} AS EventStartTime,
  {ms_time_sql('TRY_CAST(DeviceReceiptTime AS DOUBLE) - coalesce(TRY_CAST(TimeTaken AS DOUBLE), 0)')} AS EventEndTime,
  'NetworkSession' AS EventType,
  CASE upper(ActionID) WHEN 'ALLOW' THEN 'Allow' WHEN 'DENY' THEN 'Deny' END AS DvcAction,
  CASE upper(ActionID) WHEN 'ALLOW' THEN 'Success' WHEN 'DENY' THEN 'Failure' END AS EventResult,
  ActionID AS DvcOriginalAction,
  CASE Protocol WHEN 'TCP' THEN 'TCP' WHEN 'TCP/ip' THEN 'TCP' WHEN 'UDP' THEN 'UDP' WHEN 'UDP/ip' THEN 'UDP'
    WHEN 'ICMP' THEN 'ICMP' WHEN 'ICMPv6' THEN 'ICMP' END AS NetworkProtocol,
  CASE WHEN Protocol = 'ICMPv6' OR contains(DestinationIP, ':') THEN 'IPv6' ELSE 'IPv4' END AS NetworkProtocolVersion,
  SourceIP AS SrcIpAddr, SourcePort AS SrcPortNumber, DestinationIP AS DstIpAddr, DestinationPort AS DstPortNumber,
  CASE WHEN TRY_CAST(Severity AS INTEGER) BETWEEN 0 AND 2 THEN 'High' WHEN Severity = '3' THEN 'Medium'
       WHEN Severity IN ('4', '5') THEN 'Low' WHEN Severity IN ('6', '7') THEN 'Informational' END AS EventSeverity,
  coalesce(UnitName, host) AS Dvc, host AS DvcHostname, HostIP AS DvcIpAddr, DeviceVersion AS EventProductVersion,
  LogType AS EventOriginalType,
  coalesce(upper(LogType), '') <> 'NF' AS _skip,
  CASE WHEN upper(LogType) = 'NF' AND SourceIP IS NULL AND DestinationIP IS NULL
       THEN 'NF record without addresses' END AS _error
FROM b"""

_CEF_AS_COLUMNS = ("SELECT *, NULL::VARCHAR AS tg FROM (SELECT _line, _raw, cat AS LogType, act AS ActionID, "
                   "src AS SourceIP, spt AS SourcePort, dst AS DestinationIP, dpt AS DestinationPort, "
                   "proto AS Protocol, severity AS Severity, coalesce(dvchost, _host) AS UnitName, "
                   "dvchost AS host, dvc AS HostIP, "
                   "coalesce(rt_raw, CAST(epoch_ms(_time) AS VARCHAR)) AS DeviceReceiptTime, "
                   "flexNumber2 AS TimeTaken, version AS DeviceVersion, _cef FROM c)")


class _Table(JsonSource):
    FIELDS = {**{c: paths(c, c + "_s", c + "_d") for c in _COLUMNS}, "tg": ('$."TimeGenerated"',)}
    MARKERS = re.compile(rb'"LogType(_s)?"\s*:.*"(ActionID|UnitName)(_s)?"\s*:', re.S)
    SQL = MAP_SQL.replace("FROM b", "FROM r")


class Barracuda(CefSource):
    CEF_VENDOR = "Barracuda.*"
    CEF_PRODUCT = "^(WAF|WAAS)$"
    KEYS = ("cat", "act", "src", "dst", "spt", "dpt", "proto", "dvchost", "dvc", "flexNumber2")
    SQL = ""  # CEF records are renamed to the table's fields and mapped by MAP_SQL

    def map_cef(self, head: dict, cef: pa.Table, lines: pa.Array, numbers: pa.Array) -> pa.Table:
        cef = S.arrays(cef)
        rt, header_time = S.parse_timestamps_many([cef["rt"], head["timestamp_text"]])
        ours = pc.and_(cef["is_cef"], pc.fill_null(pc.and_(
            pc.match_substring_regex(cef["vendor"], "(?i)^barracuda"),
            pc.match_substring_regex(cef["product"], "(?i)^(WAF|WAAS)$")), False))
        cols = {k: v for k, v in cef.items() if k not in ("prefix", "extension", "rt")}
        cols.update({"rt_raw": pc.if_else(pc.match_substring_regex(cef["rt"], r"^\d{12,13}$"), cef["rt"],
                                          pa.scalar(None, pa.string())),
                     "_time": pc.coalesce(rt, header_time), "_host": head["hostname"], "_cef": ours,
                     "_line": numbers, "_raw": lines})
        b = asim.query(_CEF_AS_COLUMNS, c=pa.table(cols))
        out = asim.query(MAP_SQL, b=b)
        bad = pc.invert(pc.fill_null(b["_cef"], False))
        out = out.set_column(out.schema.get_field_index("_error"), "_error",
                             pc.if_else(bad, pa.scalar("not a Barracuda WAF CEF record"), out["_error"]))
        return out.set_column(out.schema.get_field_index("_skip"), "_skip", pc.and_(out["_skip"], pc.invert(bad)))

    def map_records(self, recs: pa.Table) -> pa.Table:
        """barracuda_CL rows as JSON records (`_line`, `_raw`, `rec`) -> parsed columns."""
        return _TABLE.map_records(recs)

    def sniff(self, head: bytes, path: str) -> bool:
        return super().sniff(head, path) or _TABLE.sniff(head, path)

    def parse(self, path: str, batch_lines: int = BATCH_LINES):
        """JSON files are barracuda_CL records; anything else is CEF lines."""
        if read_head(path).lstrip(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"["):
            return _TABLE.parse(path, batch_lines)
        return super().parse(path, batch_lines)


_TABLE = _Table(name="barracuda", vendor="Barracuda", product="WAF")

SOURCE = Barracuda(
    name="barracuda", vendor="Barracuda", product="WAF", priority=10,
    forms=("Barracuda WAF CEF, cat=NF network-firewall records (other log types skipped)",
           "barracuda_CL records as JSON (LogType NF); barracuda_CL / CommonSecurityLog exports via `sentinel`"),
)
