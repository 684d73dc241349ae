"""Cisco Meraki MX syslog: `<PRI>1 <epoch.nanos> <device> <logtype> <body>`.

Raw forms accepted
  <PRI>1 1647478988.289402144 MX84 flows allow src=10.0.2.170 dst=10.0.0.34 mac=.. protocol=udp sport=54841 dport=15600
  <PRI>1 1674604848.429996761 MX84 flows src=.. dst=.. protocol=tcp sport=.. dport=.. pattern: allow all
  ... firewall | cellular_firewall | vpn_firewall | bridge_anyconnect_client_vpn_firewall  (same body)
  ... ip_flow_start | ip_flow_end src=.. dst=.. protocol=.. sport=.. dport=.. translated_src_ip=.. translated_port=..
  (the `<PRI>` and a relay's `Mmm dd hh:mm:ss host` prefix are optional; `src`/`dst` may be
  `ip`, `ip:port` or `[ipv6]:port`)

Other log types (events, urls, security_event / ids-alerts, airmarshal_events, ...) are not
network sessions here and are skipped (counted). IDS alerts are skipped on purpose: they repeat
a session already reported by flows/firewall and would double-count ports.

Decisions
- Time: the header epoch with microsecond precision (Sentinel keeps whole seconds).
- DvcAction from the old-form token before `src=`, else from the pattern: the first word
  allow/allowed -> Allow, deny/denied/block/blocked -> Deny. Anything else (`pattern: 1 all`,
  `ip_flow_*`) -> no action and EventResult NA. The raw token or pattern is kept in
  DvcOriginalAction; the pattern (the rule that matched) in NetworkRuleName.
- EventType Flow for every supported log type (as the Sentinel parser), EventOriginalType = logtype.
- protocol: names and IANA numbers (`protocol=2` -> IGMP), `icmp6` -> IPV6-ICMP. `type=` is
  the ICMP type: named in NetworkIcmpType (ICMPv6 table for icmp6); NetworkIcmpCode stays empty.
- translated_src_ip -> SrcNatIpAddr (+ translated_port -> SrcNatPortNumber); translated_dst_ip
  -> DstNatIpAddr (+ DstNatPortNumber); a missing dst falls back to translated_dst_ip.
- mac -> SrcMacAddr; device -> Dvc / DvcHostname (DvcIpAddr when it is an address).
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog
from ._records import extract_groups
from ._sql import icmp_type_sql
from .base import Source

SESSION_TYPES = ("flows", "firewall", "cellular_firewall", "vpn_firewall",
                 "bridge_anyconnect_client_vpn_firewall", "ip_flow_start", "ip_flow_end")
LOG_TYPES = SESSION_TYPES + ("events", "urls", "ids-alerts", "security_event", "airmarshal_events",
                             "ids_alerted")

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_HEADER = (r"^\s*(?:<(?P<pri>\d{1,3})>)?\s*(?:(?:" + _MONTHS + r")\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\S+\s+)?"
           r"1\s+(?P<sec>\d{1,10})(?:\.(?P<frac>\d{1,9}))?\s+(?P<dev>\S+)\s+(?P<ltype>[A-Za-z][\w-]*)"
           r"(?:\s|$)(?:(?P<act>[^\s=]+)\s+[A-Za-z_]+=)?")
# (the header regex stops early: capturing the rest of the line would make RE2 run its
# submatch engine over all of it; key=value pairs are looked up in the whole line)
_KEYS = ("src", "dst", "mac", "protocol", "sport", "dport", "type", "translated_src_ip",
         "translated_dst_ip", "translated_port")
_ADDR = r"^(?:\[(?P<h1>[^\]]*)\](?::(?P<p1>\d+))?|(?P<h2>[^:\[\]]+):(?P<p2>\d+)|(?P<h3>.+))$"

_NULL = pa.scalar(None, pa.string())
_SNIFF = re.compile(rb"^\s*(?:<\d{1,3}>)?\s*(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\S+\s+)?1\s+"
                    rb"\d{9,10}(?:\.\d{1,9})?\s+\S+\s+(?:" + "|".join(LOG_TYPES).encode() + rb")\s",
                    re.MULTILINE)


class Meraki(Source):
    MAP_AHEAD = True  # (a batch's lines are parsed on their own)

    def sniff(self, head: bytes, path: str) -> bool:
        return bool(_SNIFF.search(head))

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:
        cols: dict[str, pa.Array] = {"_pos": pa.array(range(len(lines)), pa.int64()),
                                     "_line": numbers, "_raw": lines}
        ok, hdr = extract_groups(lines, _HEADER)
        cols["hdr_ok"] = ok
        for name in ("sec", "frac", "dev", "ltype"):
            cols[name] = hdr[name]
        body = pc.if_else(ok, lines, _NULL)
        for key in _KEYS:
            _, kv = extract_groups(body, rf"\s{key}='?(?P<v>[^\s']+)")
            cols["k_" + key] = kv["v"]
        cols["act"] = hdr["act"]
        _, pat = extract_groups(body, r"\spattern:\s*(?P<pattern>.*)")
        pattern = pc.utf8_trim_whitespace(pat["pattern"])
        cols["pattern"] = pc.if_else(pc.equal(pattern, ""), _NULL, pattern)
        for side in ("src", "dst"):
            value = cols["k_" + side]
            # only `ip:port` and `[ipv6]:port` need splitting; a bare address is the host
            split = pc.fill_null(pc.match_substring_regex(value, r"^\[|^[^:]+:\d+$"), False)
            host, port = value, pa.nulls(len(value), pa.string())
            if pc.any(split).as_py():
                _, addr = extract_groups(value.filter(split), _ADDR)
                host = pc.replace_with_mask(value, split, addr["h"])
                port = pc.replace_with_mask(port, split, addr["p"])
            cols[side + "_host"] = host
            cols[side + "_port"] = port
        return _finalize(pa.table(cols))


def _finalize(base: pa.Table) -> pa.Table:
    sessions = ", ".join(_syslog.sql_str(t) for t in SESSION_TYPES)
    ip = _syslog.valid_ip_sql
    v6 = "lower(coalesce(k_protocol, '')) IN ('icmp6', 'icmpv6', 'ipv6-icmp')"
    text = f"""
    WITH o AS (
      SELECT *,
        coalesce(dst_host, k_translated_dst_ip) AS d_ip,
        regexp_extract(lower(coalesce(act, '') || ' ' || coalesce(pattern, '')),
                       '\\b(allow|allowed|deny|denied|block|blocked)\\b', 1) AS verdict,
        lower(coalesce(k_protocol, '')) IN ('icmp', 'icmp6', 'icmpv6', 'ipv6-icmp', '1', '58') AS icmp
      FROM base
    )
    SELECT _line, _raw,
      hdr_ok AND ltype NOT IN ({sessions}) AS _skip,
      CASE WHEN NOT hdr_ok THEN 'not a Cisco Meraki syslog record'
           WHEN src_host IS NULL OR d_ip IS NULL THEN ltype || ' record without src= or dst='
      END AS _error,
      CAST(make_timestamp(CAST(sec AS BIGINT) * 1000000
           + coalesce(TRY_CAST(rpad(substr(frac, 1, 6), 6, '0') AS BIGINT), 0)) AS TIMESTAMPTZ) AS "TimeGenerated",
      'Flow' AS "EventType",
      CASE WHEN verdict IN ('allow', 'allowed') THEN 'Allow'
           WHEN verdict IN ('deny', 'denied', 'block', 'blocked') THEN 'Deny' END AS "DvcAction",
      CASE WHEN verdict = '' THEN 'NA' END AS "EventResult",
      coalesce(act, pattern) AS "DvcOriginalAction",
      pattern AS "NetworkRuleName",
      ltype AS "EventOriginalType",
      dev AS "Dvc",
      CASE WHEN NOT {ip('dev')} THEN dev END AS "DvcHostname",
      CASE WHEN {ip('dev')} THEN dev END AS "DvcIpAddr",
      CASE WHEN {v6} THEN 'IPV6-ICMP' ELSE k_protocol END AS "NetworkProtocol",
      CASE WHEN {v6} THEN 'IPv6' ELSE {_syslog.ip_version_sql('coalesce(src_host, d_ip)')} END
        AS "NetworkProtocolVersion",
      CASE WHEN icmp THEN {icmp_type_sql('k_type', v6)} END AS "NetworkIcmpType",
      src_host AS "SrcIpAddr",
      coalesce(k_sport, src_port) AS "SrcPortNumber",
      k_mac AS "SrcMacAddr",
      d_ip AS "DstIpAddr",
      coalesce(k_dport, dst_port) AS "DstPortNumber",
      k_translated_src_ip AS "SrcNatIpAddr",
      CASE WHEN k_translated_src_ip IS NOT NULL THEN k_translated_port END AS "SrcNatPortNumber",
      k_translated_dst_ip AS "DstNatIpAddr",
      CASE WHEN k_translated_dst_ip IS NOT NULL THEN k_translated_port END AS "DstNatPortNumber"
    FROM o
    ORDER BY _pos
    """
    return asim.query(text, base=base)


SOURCE = Meraki(
    name="meraki", vendor="Cisco", product="Meraki", priority=10,
    forms=("Meraki MX syslog `<PRI>1 <epoch.nanos> <device> <logtype> <body>`: flows (old "
           "`allow src=..` and new `pattern: ..` forms), firewall, cellular_firewall, vpn_firewall, "
           "bridge_anyconnect_client_vpn_firewall, ip_flow_start/ip_flow_end; other log types skipped",),
)
