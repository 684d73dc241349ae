"""Fortinet FortiGate traffic logs.

Raw forms accepted (one record per line; an optional syslog header `<PRI>`, RFC 3164 or 5424)
  key=value syslog  `date=2019-05-10 time=11:37:47 logid="0000000013" type="traffic" subtype="forward"
                     ... srcip= srcport= dstip= dstport= proto=6 action="close" ...` (FortiOS)
  CEF               `CEF:0|Fortinet|Fortigate|v7.2.0|00013|traffic:forward accept|3|src= ... act= ...`
                     with the FortiGate keys prefixed `FTNTFGT` (FortiOS), unprefixed (FortiAnalyzer)
                     or prefixed `FortinetFortiGate`
  (CommonSecurityLog exports are read by the `sentinel` source, which rebuilds each Fortinet
   row's CEF record and hands it to this parser.)
Only traffic logs are sessions: other types (event, utm, ...) and DNS rows (action `dns`, as
the Sentinel parser) are skipped (counted). A line that is not a FortiGate record is quarantined.

Decisions
- Time: `eventtime` (epoch s/ms/us/ns, UTC) first; else `date`+`time` with `tz` when present
  (otherwise taken as UTC); CEF `rt`; the syslog header. EventStartTime = `start` when given, else TimeGenerated minus `duration`;
  EventEndTime = TimeGenerated.
- NetworkDuration: `duration` is seconds -> x1000 (spec part 3, item 3).
- Bytes: sentbyte (CEF `out`) -> SrcBytes, rcvdbyte (CEF `in`) -> DstBytes, sums for
  NetworkBytes / NetworkPackets.
- DvcAction / EventResult (Sentinel's table): accept -> Allow/Success, deny -> Deny/Failure,
  client-rst -> Reset Source/Failure, server-rst -> Reset Destination/Failure, close ->
  (none)/Success, timeout -> (none)/Failure (details Timeout), ip-conn -> (none)/Failure
  (details Unknown; "IP connection error" is not an ASIM value). utmaction=allow forces
  Success. Deliberate addition: action accept/close with utmaction block -> EventResult
  Partial (the session ran but UTM blocked content).
- EventSeverity from `level` (emergency/alert/critical -> High, error/warning -> Low, others
  Informational), else the CEF severity 1-8 (1-3 Informational, 4-5 Low, 6 High, 7 Medium,
  8 High: Sentinel's "Critical"/"Alert" clamped).
- NetworkDirection from the interface roles: lan/dmz/internal are inside, wan/external
  outside: inside->outside Outbound, outside->inside Inbound, inside->inside Local,
  outside->outside External; anything else (`undefined`) leaves it empty. The roles are also
  SrcZone / DstZone.
- ICMP / ICMPv6 have no ports (NULL); icmptype / icmpcode (hex) -> NetworkIcmpType (name) /
  NetworkIcmpCode. Protocol numbers go through the IANA table.
- transip/transport -> SrcNat*, tranip/tranport -> DstNat* (0.0.0.0 means none).
- NetworkRuleName = policyname, else the policy id. Vendor / product: Fortinet / FortiGate.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from functools import partial

from .. import asim
from . import _syslog as S
from ._cefsource import CefRecords
from ._kv_sql import any_timestamp_sql, mask_quoted_blanks, space_pairs_sql
from ._sql import bag_sql, icmp_type_sql, int_sql, map_sql
from .base import Query
from ._tables import is_table_export

NATIVE_KEYS = (
    "date", "time", "tz", "eventtime", "devname", "devid", "logid", "type", "subtype", "level",
    "vd", "srcip", "srcport", "srcintf", "srcintfrole", "dstip", "dstport", "dstintf",
    "dstintfrole", "sessionid", "proto", "action", "policyid", "policyname", "policytype",
    "poluuid", "service", "trandisp", "transip", "transport", "tranip", "tranport", "duration",
    "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "app", "appcat", "apprisk", "utmaction",
    "srcmac", "dstmac", "user", "srcname", "dstname", "srccountry", "dstcountry", "crscore",
    "craction", "icmptype", "icmpcode", "icmpid", "start", "externalID",
)
# CEF key -> FortiOS key (FortiOS CEF mapping; `app` carries the service)
CEF_STANDARD = {
    "src": "srcip", "spt": "srcport", "dst": "dstip", "dpt": "dstport", "proto": "proto",
    "act": "action", "externalId": "sessionid", "deviceInboundInterface": "srcintf",
    "deviceOutboundInterface": "dstintf", "out": "sentbyte", "in": "rcvdbyte",
    "dvchost": "devname", "deviceExternalId": "devid", "sourceTranslatedAddress": "transip",
    "sourceTranslatedPort": "transport", "destinationTranslatedAddress": "tranip",
    "destinationTranslatedPort": "tranport", "smac": "srcmac", "dmac": "dstmac", "suser": "user",
    "duser": "user", "app": "service", "start": "start", "shost": "srcname", "dhost": "dstname",
}
PREFIXES = ("FTNTFGT", "FortinetFortiGate", "")
CEF_KEYS = sorted(set(CEF_STANDARD) | {"rt", "cat"} | set(S.cef_custom_keys()) | {
    p + k for k in NATIVE_KEYS for p in PREFIXES if p or k not in CEF_STANDARD})

_SNIFF = re.compile(
    rb"(?:^|[\s>])logid=\"?\d{10}\"?\s.*\btype=\"?(?:traffic|event|utm|anomaly|dlp|dns|ips|emailfilter|"
    rb"webfilter|virus|app-ctrl|waf|voip|ssh|ssl|file-filter)\b"
    rb"|(?:^|[\s>])date=\d{4}-\d{2}-\d{2} time=\d{1,2}:\d{2}:\d{2} (?:[^\r\n]*\s)?(?:logid|devname|devid)=",
    re.MULTILINE)

_ACTIONS = {"accept": "Allow", "deny": "Deny", "client-rst": "Reset Source",
            "server-rst": "Reset Destination"}
_RESULTS = {"accept": "Success", "close": "Success", "deny": "Failure", "client-rst": "Failure",
            "server-rst": "Failure", "timeout": "Failure", "ip-conn": "Failure"}
_DETAILS = {"timeout": "Timeout", "ip-conn": "Unknown"}
_LEVELS = {"emergency": "High", "alert": "High", "critical": "High", "error": "Low",
           "warning": "Low", "notice": "Informational", "notification": "Informational",
           "information": "Informational", "informational": "Informational",
           "debug": "Informational"}
_SEVERITIES = {"0": "Informational", "1": "Informational", "2": "Informational",
               "3": "Informational", "4": "Low", "5": "Low", "6": "High", "7": "Medium", "8": "High",
               "9": "High", "10": "High"}
_INSIDE = ("lan", "dmz", "internal")
_OUTSIDE = ("wan", "external")

PASSTHROUGH = {
    "DvcOriginalAction": "action", "DvcId": "devid", "DvcInboundInterface": "srcintf",
    "DvcOutboundInterface": "dstintf", "SrcBytes": "sentbyte", "DstBytes": "rcvdbyte",
    "SrcPackets": "sentpkt", "DstPackets": "rcvdpkt", "NetworkSessionId": "sessionid",
    "SrcIpAddr": "srcip", "DstIpAddr": "dstip", "SrcZone": "srcintfrole", "DstZone": "dstintfrole",
    "SrcMacAddr": "srcmac", "DstMacAddr": "dstmac", "SrcUsername": "user", "SrcHostname": "srcname",
    "DstHostname": "dstname", "DstAppName": "app",
}



def _role(col: str) -> str:
    inside = ", ".join(S.sql_str(r) for r in _INSIDE)
    outside = ", ".join(S.sql_str(r) for r in _OUTSIDE)
    return (f"CASE WHEN lower(trim({col})) IN ({inside}) THEN 'in' "
            f"WHEN lower(trim({col})) IN ({outside}) THEN 'out' END")


def _derived_sql() -> str:
    inner = (f"SELECT *, {asim.protocol_sql('proto')} AS proto_kw, "
             f"lower(trim(action)) AS act_l, lower(trim(utmaction)) AS utm_l, "
             f"lower(trim(type)) AS type_l, "
             f"TRY_CAST(TRY_CAST(duration AS DOUBLE) AS BIGINT) AS duration_s, "
             f"coalesce({S.valid_ip_sql('hostname')}, false) AS host_is_ip, "
             f"{_role('srcintfrole')} AS src_side, {_role('dstintfrole')} AS dst_side, "
             f"NULLIF(trim(srcip), '') AS src_t, NULLIF(trim(dstip), '') AS dst_t FROM t")
    icmp = "coalesce(proto_kw IN ('ICMP', 'IPV6-ICMP'), false)"

    def port(col: str) -> str:
        return f"CASE WHEN {icmp} THEN NULL ELSE {col} END"

    def num(col: str) -> str:
        return f"TRY_CAST(TRY_CAST(NULLIF(trim({col}), '') AS DOUBLE) AS BIGINT)"

    result = (f"CASE WHEN utm_l = 'allow' THEN 'Success' "
              f"WHEN act_l IN ('accept', 'close') AND utm_l IN ('block', 'blocked', 'deny') THEN 'Partial' "
              f"ELSE {map_sql('act_l', _RESULTS)} END")
    extra = bag_sql({
        "Vdom": "vd", "LogId": "logid", "Subtype": "subtype", "Level": "level", "Service": "service",
        "AppCategory": "appcat", "AppRisk": "apprisk", "SrcCountry": "srccountry",
        "DstCountry": "dstcountry", "CrScore": "crscore", "CrAction": "craction",
        "UtmAction": "utmaction", "PolicyId": "policyid", "PolicyType": "policytype",
        "PolicyUuid": "poluuid", "TranslationType": "trandisp",
        "NetworkProtocolNumber": "CASE WHEN proto_kw IS NULL THEN proto END",
    }, text=True)
    recognised = ("CASE WHEN form = 'kv' THEN (type IS NOT NULL OR logid IS NOT NULL) "
                  "ELSE coalesce(lower(trim(vendor)) = 'fortinet' AND lower(trim(product)) LIKE 'forti%', false) END")
    is_session = "coalesce(type_l = 'traffic', false) AND coalesce(act_l, '') <> 'dns'"
    error = (f"CASE WHEN NOT recognised THEN 'not a FortiGate log record' "
             f"WHEN NOT ({is_session}) THEN NULL "
             f"WHEN src_t IS NULL OR dst_t IS NULL THEN 'missing source or destination address' "
             f"WHEN NOT {S.valid_ip_sql('src_t')} THEN 'invalid source address' "
             f"WHEN NOT {S.valid_ip_sql('dst_t')} THEN 'invalid destination address' END")
    skip = f"CASE WHEN NOT recognised THEN false ELSE NOT ({is_session}) END"
    passthrough = ", ".join(f"{name} AS {column}" for column, name in PASSTHROUGH.items())
    return f"""
SELECT
  time_gen AS TimeGenerated,
  coalesce(time_start, CASE WHEN duration_s > 0 THEN time_gen - to_seconds(duration_s) END, time_gen)
    AS EventStartTime,
  time_gen AS EventEndTime,
  'NetworkSession' AS EventType,
  {result} AS EventResult,
  CASE WHEN utm_l = 'allow' THEN NULL ELSE {map_sql('act_l', _DETAILS)} END AS EventResultDetails,
  coalesce({map_sql('lower(trim(level))', _LEVELS)}, {map_sql('trim(severity)', _SEVERITIES)}) AS EventSeverity,
  subtype AS EventOriginalType,
  coalesce(version, CASE WHEN form = 'kv' THEN NULL END) AS EventProductVersion,
  coalesce(NULLIF(trim(devname), ''), hostname, NULLIF(trim(devid), '')) AS Dvc,
  CASE WHEN host_is_ip THEN hostname END AS DvcIpAddr,
  coalesce(NULLIF(trim(devname), ''), CASE WHEN NOT host_is_ip THEN hostname END) AS DvcHostname,
  CASE WHEN NULLIF(trim(devid), '') IS NOT NULL THEN 'Other' END AS DvcIdType,
  {map_sql('act_l', _ACTIONS)} AS DvcAction,
  proto_kw AS NetworkProtocol,
  {S.ip_version_sql('coalesce(dst_t, src_t)')} AS NetworkProtocolVersion,
  upper(NULLIF(trim(service), '')) AS NetworkApplicationProtocol,
  CASE WHEN src_side = 'in' AND dst_side = 'out' THEN 'Outbound'
       WHEN src_side = 'out' AND dst_side = 'in' THEN 'Inbound'
       WHEN src_side = 'in' AND dst_side = 'in' THEN 'Local'
       WHEN src_side = 'out' AND dst_side = 'out' THEN 'External' END AS NetworkDirection,
  duration_s * 1000 AS NetworkDuration,
  {num('sentbyte')} + {num('rcvdbyte')} AS NetworkBytes,
  {num('sentpkt')} + {num('rcvdpkt')} AS NetworkPackets,
  coalesce(NULLIF(trim(policyname), ''), NULLIF(trim(policyid), '')) AS NetworkRuleName,
  CASE WHEN {icmp} THEN {icmp_type_sql('icmptype', "proto_kw = 'IPV6-ICMP'")} END AS NetworkIcmpType,
  CASE WHEN {icmp} THEN {int_sql('icmpcode')} END AS NetworkIcmpCode,
  {port('srcport')} AS SrcPortNumber,
  {port('dstport')} AS DstPortNumber,
  CASE WHEN trim(transip) NOT IN ('0.0.0.0', '::') THEN transip END AS SrcNatIpAddr,
  CASE WHEN trim(transip) NOT IN ('0.0.0.0', '::', '') THEN {port('transport')} END AS SrcNatPortNumber,
  CASE WHEN trim(tranip) NOT IN ('0.0.0.0', '::') THEN tranip END AS DstNatIpAddr,
  CASE WHEN trim(tranip) NOT IN ('0.0.0.0', '::', '') THEN {port('tranport')} END AS DstNatPortNumber,
  {extra} AS AdditionalFields,
  {passthrough},
  {error} AS _error,
  {skip} AS _skip,
  _line, _raw
FROM ({inner.replace("FROM t", f"FROM (SELECT *, ({recognised}) AS recognised FROM t)")}) v"""


_DERIVED = _derived_sql()


_SQL_INPUTS = ("proto", "action", "utmaction", "type", "logid", "duration", "srcintfrole",
               "dstintfrole", "srcip", "dstip", "level", "subtype", "devname", "devid", "service",
               "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "policyname", "policyid", "icmptype",
               "icmpcode", "srcport", "dstport", "transip", "transport", "tranip", "tranport", "vd",
               "appcat", "apprisk", "srccountry", "dstcountry", "crscore", "craction", "policytype",
               "poluuid", "trandisp")


def _kv_sql(reference=None, mark: str | None = None) -> str:
    """The whole mapping of a batch of key=value records as one statement over `_lines`
    (message, hostname, timestamp_text, _line, _raw): pairs, times, then `_DERIVED`. With
    `mark`, the message's quoted blanks are masked (`_kv_sql.mask_quoted_blanks`)."""
    ts = partial(any_timestamp_sql, reference=reference)
    return f"""
WITH kv AS ({space_pairs_sql('_lines', 'message', NATIVE_KEYS, mark)}),
t AS (SELECT *, 'kv' AS form, NULL::VARCHAR AS vendor, NULL::VARCHAR AS product,
        NULL::VARCHAR AS version, NULL::VARCHAR AS severity,
        coalesce({ts('eventtime')}, {ts("date || ' ' || time || coalesce(tz, '')")}, {ts('timestamp_text')})
          AS time_gen,
        {ts('start')} AS time_start
      FROM kv)
{_DERIVED}"""


def _cef_unified(cef: dict, n: int) -> dict:
    """FortiOS-named columns from CEF (or export) columns: standard CEF keys first, then the
    FTNTFGT / FortinetFortiGate prefixed and the bare FortiAnalyzer keys."""
    out = {}
    for k in NATIVE_KEYS + ("sessionid",):
        cands = [cef[std] for std, nat in CEF_STANDARD.items() if nat == k and std in cef]
        cands += [cef[p + k] for p in PREFIXES if (p + k) in cef]
        if k == "sessionid":
            cands += [cef[p + "externalID"] for p in PREFIXES if (p + "externalID") in cef]
        cands = [c for c in cands if c.null_count < len(c)]
        out[k] = pc.coalesce(*cands) if len(cands) > 1 else (cands[0] if cands else pa.nulls(n, pa.string()))
    # type / subtype / action from `cat` (traffic:forward) or the name (traffic:forward accept)
    label = pc.coalesce(cef.get("cat", pa.nulls(n, pa.string())), cef["name"])
    parts = pc.extract_regex(pc.fill_null(label, ""), r"^\s*(?P<type>[A-Za-z-]+)(?::(?P<sub>[A-Za-z0-9_-]+))?")
    name_act = pc.extract_regex(pc.fill_null(cef["name"], ""), r":\S+\s+(?P<act>[A-Za-z-]+)\s*$")
    nul = pa.scalar(None, pa.string())
    def nz(a):
        return pc.if_else(pc.equal(a, ""), nul, a)
    out["type"] = pc.coalesce(out["type"], nz(pc.struct_field(parts, "type")))
    out["subtype"] = pc.coalesce(out["subtype"], nz(pc.struct_field(parts, "sub")))
    out["action"] = pc.coalesce(out["action"], nz(pc.struct_field(name_act, "act")))
    return out


class Fortinet(CefRecords):
    def sniff(self, head: bytes, path: str) -> bool:
        if is_table_export(head):  # a Sentinel export: the `sentinel` source routes its rows here
            return False
        cef = S.first_cef_vendor(head)
        if cef is not None:
            return cef[0] == "Fortinet" and cef[1].lower().startswith("forti")
        return bool(_SNIFF.search(head))

    def start(self, path: str) -> dict:
        # the statements are built once per file (a header without a year reads the clock)
        return {"kv_sql": {}}

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> Query:
        head = S.arrays(S.syslog_header(lines, parse_time=False))
        msg = head["message"]
        if not pc.any(pc.match_substring(msg, "CEF:")).as_py():  # key=value only: all in SQL
            masked = mask_quoted_blanks(msg)
            mark = None
            if masked is not None:
                msg, mark = masked
            cache = state.setdefault("kv_sql", {})
            if mark not in cache:
                cache[mark] = _kv_sql(mark=mark)
            return Query(cache[mark], {"_lines": pa.table({
                "message": msg, "hostname": head["hostname"], "timestamp_text": head["timestamp_text"],
                "_line": numbers, "_raw": lines})})
        return self.map_cef(head, S.parse_cef(msg, CEF_KEYS), lines, numbers)

    def cef_keys(self) -> tuple[str, ...]:
        return tuple(CEF_KEYS)

    def map_cef(self, head: dict, cef_table: pa.Table, lines: pa.Array, numbers: pa.Array) -> Query:
        """(Lines where a record is not CEF are key=value messages, read from `head["message"]`.)"""
        n = len(lines)
        cef = S.arrays(cef_table)
        is_cef = cef["is_cef"]
        n_cef = is_cef.true_count
        if n_cef < n:
            msg = head["message"]
            kv_text = S.pick(is_cef, pa.scalar("", pa.string()), msg) if n_cef else msg
            kv = S.arrays(S.extract_pairs(kv_text, NATIVE_KEYS, S.SPACE))
        else:
            kv = {k: pa.nulls(n, pa.string()) for k in NATIVE_KEYS}
        if n_cef:
            uni = _cef_unified(cef, n)
            # FortiOS 5.x wrote the policy id as a labelled custom string (cs5Label=Policy Id)
            uni["policyid"] = pc.coalesce(uni["policyid"], S.cef_label(cef_table, "policy id"))
            raw = {k: S.pick(is_cef, uni[k], kv[k]) for k in uni}
        else:
            raw = kv
        form = S.pick(is_cef, pa.scalar("cef"), pa.scalar("kv"))
        date_time = pc.binary_join_element_wise(
            pc.binary_join_element_wise(raw["date"], raw["time"], " "), pc.fill_null(raw["tz"], ""), "")
        times = [raw["eventtime"], date_time] + ([cef["rt"]] if n_cef else []) + [head["timestamp_text"]]
        parsed = S.parse_timestamps_many(times + [raw["start"]])
        inputs = {k: raw[k] for k in dict.fromkeys(_SQL_INPUTS + tuple(PASSTHROUGH.values()))}
        inputs.update({"form": form, "vendor": cef["vendor"], "product": cef["product"],
                       "version": cef["version"], "severity": cef["severity"], "hostname": head["hostname"],
                       "time_gen": pc.coalesce(*parsed[:-1]), "time_start": parsed[-1],
                       "_line": numbers, "_raw": lines})
        return Query(_DERIVED, {"t": pa.table(inputs)})


SOURCE = Fortinet(
    name="fortinet", vendor="Fortinet", product="FortiGate", priority=10,
    forms=("FortiOS key=value syslog, type=traffic (other types and DNS rows skipped)",
           "FortiGate CEF (FTNTFGT-prefixed, unprefixed FortiAnalyzer, FortinetFortiGate-prefixed keys)"),
)
