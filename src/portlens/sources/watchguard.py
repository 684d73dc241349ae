"""WatchGuard Fireware OS traffic logs (syslog).

Forms accepted: one record per line, `[<PRI>]Mmm dd hh:mm:ss <device> [(<ISO time>)] firewall:
msg_id="3000-0148" Allow 1-Trusted 0-External 52 tcp 20 64 10.0.1.2 203.0.113.5 51234 443
offset 8 S 123456 win 512 [k="v" ...] (<policy>)`; the `sentinel` source feeds Syslog rows here.
Traffic messages 3000-0148, -0149, -0150, -0151 and -0173 are sessions; other Fireware messages
(management, proxy, authentication ...) are skipped; a line without a `msg_id` is not a
Fireware record and is quarantined.

Mapping (Sentinel's ASimNetworkSessionWatchGuardFirewareOS 0.1.2)
- DvcAction is the Allow / Deny after the msg_id (EventResult Success / Failure, EventSeverity
  Informational / Low); NetworkProtocol the tcp / udp / icmp / igmp token, upper-cased.
- The tuple after the protocol: for every message but 3000-0151, `<len> <proto> <header len>
  <ttl> <src> <dst> <sport> <dport>`; for 3000-0151 `<proto> <src> <dst> <sport> <dport>`. ICMP
  and IGMP have no ports. No NetworkDirection (the parser sets none).
- EventCount from "repeated N times" (else 1); duration (s) -> NetworkDuration x1000;
  sent_bytes / rcvd_bytes -> SrcBytes / DstBytes; src_user / dst_user -> Src/DstUsername;
  geo_src / geo_dst and the fqdn matches -> AdditionalFields.
- The two interface names before the tuple -> DvcInbound/OutboundInterface and the trailing
  `(policy)` -> NetworkRuleName (the parser captures the interfaces as its RuleName; the
  policy is Fireware's rule name).
- Time: the ISO time in parentheses after the host when present, else the syslog header time;
  Dvc = the syslog host.
No public Fireware sample was found; the fixture is built from the parser and WatchGuard's log
message format.
"""

from __future__ import annotations

import re

import pyarrow as pa

from .. import asim
from . import _syslog as S
from ._records import extract_groups
from ._sql import bag_sql
from ._tables import is_table_export
from .base import Source

SESSIONS = ("3000-0148", "3000-0149", "3000-0150", "3000-0151", "3000-0173")
_RECORD = (r'msg_id="(?P<id>[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4})"(?:\s+(?P<act>Allow|Deny)\s+(?P<ifin>\S+)\s+(?P<ifout>\S+)\s+'
           r'(?:\d{1,5}\s+)?(?P<proto>tcp|udp|icmp|igmp)\s+(?:\d{1,5}\s+\d{1,5}\s+)?(?P<src>[0-9A-Fa-f.:]+)\s+'
           r'(?P<dst>[0-9A-Fa-f.:]+)(?:\s+(?P<sport>\d{1,5})\s+(?P<dport>\d{1,5}))?)?')
_KV = ("geo_src", "geo_dst", "src_user", "dst_user", "duration", "sent_bytes", "rcvd_bytes",
       "fqdn_src_match", "fqdn_dst_match")
_SNIFF = re.compile(rb'msg_id="[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}"\s+(?:Allow|Deny)\s')
_SQL = f"""
SELECT _line, _raw, coalesce(TRY_CAST(iso AS TIMESTAMPTZ), header_time) AS TimeGenerated,
  'NetworkSession' AS EventType, id AS EventOriginalType,
  act AS DvcAction, act AS DvcOriginalAction,
  CASE act WHEN 'Allow' THEN 'Success' WHEN 'Deny' THEN 'Failure' END AS EventResult,
  CASE act WHEN 'Allow' THEN 'Informational' WHEN 'Deny' THEN 'Low' END AS EventSeverity,
  upper(proto) AS NetworkProtocol,
  src AS SrcIpAddr, dst AS DstIpAddr,
  CASE WHEN proto IN ('tcp', 'udp') THEN sport END AS SrcPortNumber,
  CASE WHEN proto IN ('tcp', 'udp') THEN dport END AS DstPortNumber,
  CASE WHEN contains(dst, ':') THEN 'IPv6' WHEN contains(dst, '.') THEN 'IPv4' END AS NetworkProtocolVersion,
  greatest(coalesce(TRY_CAST(repeated AS BIGINT), 1), 1) AS EventCount,
  TRY_CAST(TRY_CAST(duration AS DOUBLE) * 1000 AS BIGINT) AS NetworkDuration,
  sent_bytes AS SrcBytes, rcvd_bytes AS DstBytes,
  TRY_CAST(sent_bytes AS BIGINT) + TRY_CAST(rcvd_bytes AS BIGINT) AS NetworkBytes,
  src_user AS SrcUsername, dst_user AS DstUsername,
  ifin AS DvcInboundInterface, ifout AS DvcOutboundInterface, policy AS NetworkRuleName,
  host AS Dvc, host AS DvcHostname,
  {bag_sql({"SrcGeoCountry": "geo_src", "DstGeoCountry": "geo_dst", "SrcDomain": "fqdn_src_match",
            "DstDomain": "fqdn_dst_match"}, text=True)} AS AdditionalFields,
  id IS NOT NULL AND (id NOT IN {SESSIONS!r} OR act IS NULL) AS _skip,
  CASE WHEN id IS NULL THEN 'not a WatchGuard Fireware log record (no msg_id)'
       WHEN id IN {SESSIONS!r} AND act IS NOT NULL AND src IS NULL THEN 'traffic record without addresses' END AS _error
FROM t"""


class WatchGuard(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        return not is_table_export(head) and bool(_SNIFF.search(head))

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:
        head = S.arrays(S.syslog_header(lines))
        _, rec = extract_groups(lines, _RECORD)
        _, iso = extract_groups(lines, r"\((?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\)")
        _, rep = extract_groups(lines, r"repeated (?P<n>\d+) times")
        _, pol = extract_groups(lines, r"\((?P<p>[^()]*)\)\s*$")
        kv = S.arrays(S.extract_pairs(lines, _KV, S.SPACE))
        cols = {"_line": numbers, "_raw": lines, "header_time": head["timestamp"], "host": head["hostname"],
                "iso": iso["iso"], "repeated": rep["n"], "policy": pol["p"], **rec, **kv}
        return asim.query(_SQL, t=pa.table(cols))


SOURCE = WatchGuard(
    name="watchguard", vendor="WatchGuard", product="Fireware", priority=10,
    forms=('WatchGuard Fireware OS syslog traffic records msg_id="3000-0148/0149/0150/0151/0173" Allow|Deny ... '
           "(other messages skipped); Syslog rows via `sentinel`",),
)
