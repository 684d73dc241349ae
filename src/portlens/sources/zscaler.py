"""Zscaler Internet Access (ZIA) firewall logs from an NSS feed.

Raw forms accepted (one record per line)
  CEF   `Mon dd hh:mm:ss zscaler-nss-fw CEF:0|Zscaler|NSSFWlog|5.7|Allow|rule|3| act=Allow suser=...
        src= spt= dst= dpt= ... in= out= cs1=dept cs1Label=dept ... cn1=durationms cn1Label=durationms
        cn2=numsessions cn2Label=numsessions ...` (the NSS firewall feed template; keys by name,
        custom fields by label; the template's duplicated cs5 keeps its first value, threatcat)
  JSON  `{"sourcetype":"zscalernss-fw","event":{"datetime":"Fri Dec 17 07:27:54 2021","csip":...}}`
        (the Splunk-style wrapper) or the bare event object
Other NSS feeds (NSSWeblog, NSSDNSlog, `zscalernss-web`, `zscalernss-dns`, ...) are skipped
(counted). A line that is neither form is quarantined.

Decisions
- Time: `epochtime` / `rt` when the feed carries them, else `datetime` (JSON) or the syslog
  header of the CEF feed. The NSS CEF template has no year: the header year is inferred (the
  current year, or the previous one when the date would be in the future; see `_syslog`).
  NSS times are taken as UTC (configure the feed's time zone to GMT).
- src/spt -> Src, dst/dpt -> Dst (csip/csport, cdip/cdport in JSON); sourceTranslatedAddress
  (tsip, the tunnel source) -> SrcNatIpAddr, destinationTranslatedAddress (sdip) ->
  DstNatIpAddr (spec 2.8); the Zscaler egress address (deviceTranslatedAddress / ssip) goes
  to AdditionalFields. 0.0.0.0 translations count as none.
- Bytes: out / outbytes (client -> server) -> SrcBytes, in / inbytes -> DstBytes.
- NetworkDuration = durationms (already ms). EventCount = numsessions (cn2), not cn1 (spec
  part 3, item 6), at least 1.
- DvcAction: Allow (and "Allow due to insufficient app data") -> Allow; Block/Drop, Drop,
  IPS Drop -> Drop; Block/ICMP, Block ICMP -> Drop ICMP; Block/Reset, IPS Reset, Reset -> Reset;
  EventResult follows DvcAction (so the "insufficient app data" allow is a Success).
- nwsvc -> NetworkApplicationProtocol (upper case), nwapp -> DstAppName, rulelabel ->
  NetworkRuleName (URL-decoded, as the JSON feed encodes it), login -> SrcUsername unless it is
  the location name, devicehostname -> SrcHostname.
- NetworkDirection from CEF deviceDirection (0 Inbound, 1 Outbound; the template writes 1);
  the JSON feed states none.
- ICMP has no ports (NULL). Dvc: the NSS syslog host, else "ZIA Firewall" (cloud service).
- Vendor / product: Zscaler / ZIA Firewall.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog as S
from ._cefsource import CefRecords
from ._kv_sql import carried_inputs, carried_sql
from .base import Query
from ._sql import bag_sql, map_sql

# unified (NSS JSON) name -> (CEF key, custom-field labels)
FIELDS = {
    "csip": ("src", None), "csport": ("spt", None), "cdip": ("dst", None), "cdport": ("dpt", None),
    "ssip": ("deviceTranslatedAddress", None), "ssport": ("deviceTranslatedPort", None),
    "sdip": ("destinationTranslatedAddress", None), "sdport": ("destinationTranslatedPort", None),
    "tsip": ("sourceTranslatedAddress", None), "tunsport": ("sourceTranslatedPort", None),
    "proto": ("proto", None), "tuntype": ("tunnelType", None), "dnat": ("dnat", None),
    "stateful": ("stateful", None), "location": ("spriv", None), "rulelabel": ("reason", None),
    "inbytes": ("in", None), "outbytes": ("out", None), "department": ("cs1", ("dept", "department")),
    "nwsvc": ("cs2", ("nwservice",)), "nwapp": ("cs3", ("nwapp",)), "aggregate": ("cs4", ("aggregated",)),
    "threatcat": ("cs5", ("threatcat",)), "threatname": ("cs6", ("threatname",)),
    "durationms": ("cn1", ("durationms",)), "numsessions": ("cn2", ("numsessions",)),
    "ipcat": ("ipCat", ("ipcat",)), "destcountry": ("destCountry", None),
    "avgduration": ("avgduration", None), "action": ("act", None), "user": ("suser", None),
    "epochtime": ("rt", None), "direction": ("deviceDirection", None),
    "devicehostname": ("shost", None), "deviceowner": ("deviceowner", None),
    "ipsrulelabel": ("ipsrulelabel", None),
}
JSON_KEYS = sorted(set(FIELDS) - {"location", "user", "direction"}) + [
    "locationname", "location", "user", "login", "datetime", "time"]
CEF_KEYS = sorted({k for k, _ in FIELDS.values()} | set(S.cef_custom_keys()))

_SNIFF = re.compile(rb"\"sourcetype\"\s*:\s*\"zscalernss-"
                    rb"|\{[^\r\n]*\"csip\"\s*:[^\r\n]*\"cdip\"\s*:", re.MULTILINE)

_ACTIONS = {"allow": "Allow", "allow due to insufficient app data": "Allow",
            "block/drop": "Drop", "block drop": "Drop", "drop": "Drop", "block": "Drop",
            "ips drop": "Drop", "block/icmp": "Drop ICMP", "block icmp": "Drop ICMP",
            "block/reset": "Reset", "block reset": "Reset", "ips reset": "Reset", "reset": "Reset"}

PASSTHROUGH = {"DvcOriginalAction": "action", "SrcIpAddr": "csip", "DstIpAddr": "cdip",
               "DstAppName": "nwapp", "SrcHostname": "devicehostname"}



def _derived_sql(carry: str = "") -> str:
    num = "TRY_CAST(TRY_CAST(NULLIF(trim({}), '') AS DOUBLE) AS BIGINT)"
    inner = (f"SELECT *, {asim.protocol_sql('proto')} AS proto_kw, "
             f"lower(regexp_replace(trim(action), '\\s+', ' ', 'g')) AS act_l, "
             f"NULLIF(trim(csip), '') AS src_t, NULLIF(trim(cdip), '') AS dst_t, "
             f"lower(trim(sourcetype)) AS st FROM t")
    icmp = "coalesce(proto_kw IN ('ICMP', 'IPV6-ICMP'), false)"

    def port(col: str) -> str:
        return f"CASE WHEN {icmp} THEN NULL ELSE {num.format(col)} END"

    def nat(ip: str, p: str) -> tuple[str, str]:
        keep = f"trim({ip}) NOT IN ('0.0.0.0', '::', '')"
        return (f"CASE WHEN {keep} THEN {ip} END",
                f"CASE WHEN {keep} AND {num.format(p)} > 0 THEN {port(p)} END")

    src_nat, src_nat_port = nat("tsip", "tunsport")
    dst_nat, dst_nat_port = nat("sdip", "sdport")
    url = "CASE WHEN contains({0}, '%') THEN url_decode({0}) ELSE {0} END"
    extra = bag_sql({
        "Department": url.format("department"), "Location": url.format("location"),
        "TunnelType": "tuntype", "Dnat": "dnat", "Stateful": "stateful", "Aggregated": "aggregate",
        "IpCategory": url.format("ipcat"), "DstCountry": "destcountry",
        "ThreatCategory": "CASE WHEN lower(threatcat) <> 'none' THEN threatcat END",
        "ThreatName": "CASE WHEN lower(threatname) <> 'none' THEN threatname END",
        "IpsRuleLabel": f"CASE WHEN lower(ipsrulelabel) <> 'none' THEN {url.format('ipsrulelabel')} END",
        "DeviceOwner": "deviceowner", "AvgDuration": "avgduration",
        "ServerSourceIp": "CASE WHEN trim(ssip) NOT IN ('0.0.0.0', '::', '') THEN ssip END",
        "ServerSourcePort": "CASE WHEN trim(ssip) NOT IN ('0.0.0.0', '::', '') THEN ssport END",
        "NetworkProtocolName": "CASE WHEN proto_kw IS NULL THEN proto END",
    }, text=True)
    recognised = ("CASE WHEN form = 'cef' THEN coalesce(lower(trim(vendor)) = 'zscaler', false) "
                  "WHEN form = 'json' THEN coalesce(st LIKE 'zscalernss-%', false) "
                  "OR coalesce(csip, cdip, cdport) IS NOT NULL "
                  "ELSE false END")
    firewall = ("CASE WHEN form = 'cef' THEN coalesce(lower(trim(product)) = 'nssfwlog', false) "
                "ELSE coalesce(st, 'zscalernss-fw') = 'zscalernss-fw' END")
    error = ("CASE WHEN NOT recognised THEN 'not a Zscaler NSS record' WHEN NOT firewall THEN NULL "
             "WHEN src_t IS NULL OR dst_t IS NULL THEN 'missing source or destination address' "
             f"WHEN NOT {S.valid_ip_sql('src_t')} THEN 'invalid source address' "
             f"WHEN NOT {S.valid_ip_sql('dst_t')} THEN 'invalid destination address' END")
    user = f"NULLIF(trim({url.format('coalesce(login, ' + chr(117) + 'ser)')}), '')"
    return f"""
SELECT
  time_gen AS TimeGenerated,
  time_gen AS EventStartTime,
  time_gen AS EventEndTime,
  greatest(coalesce({num.format('numsessions')}, 1), 1) AS EventCount,
  'NetworkSession' AS EventType,
  {map_sql('act_l', _ACTIONS)} AS DvcAction,
  coalesce(hostname, 'ZIA Firewall') AS Dvc,
  hostname AS DvcHostname,
  proto_kw AS NetworkProtocol,
  {S.ip_version_sql('coalesce(dst_t, src_t)')} AS NetworkProtocolVersion,
  upper(NULLIF(trim(nwsvc), '')) AS NetworkApplicationProtocol,
  CASE trim(direction) WHEN '0' THEN 'Inbound' WHEN '1' THEN 'Outbound' END AS NetworkDirection,
  {num.format('durationms')} AS NetworkDuration,
  {num.format('outbytes')} AS SrcBytes,
  {num.format('inbytes')} AS DstBytes,
  {num.format('outbytes')} + {num.format('inbytes')} AS NetworkBytes,
  {url.format('rulelabel')} AS NetworkRuleName,
  {port('csport')} AS SrcPortNumber,
  {port('cdport')} AS DstPortNumber,
  CASE WHEN {user} = NULLIF(trim({url.format('location')}), '') THEN NULL ELSE {user} END AS SrcUsername,
  {src_nat} AS SrcNatIpAddr,
  {src_nat_port} AS SrcNatPortNumber,
  {dst_nat} AS DstNatIpAddr,
  {dst_nat_port} AS DstNatPortNumber,
  {extra} AS AdditionalFields,
  {error} AS _error,
  recognised AND NOT firewall AS _skip{carry}
FROM (SELECT *, ({recognised}) AS recognised, ({firewall}) AS firewall FROM ({inner}) i) v"""


_DERIVED = _derived_sql(carried_sql(PASSTHROUGH))  # one statement with conform: rows go to the store


def _json_columns(message: pa.Array, mask: pa.Array) -> dict:
    """NSS JSON fields (inside `event` when wrapped) and `sourcetype`; NULL for other rows."""
    n = len(message)
    text = S.pick(mask, message, pa.scalar("", pa.string()))
    keys = JSON_KEYS
    sel = ", ".join(f"json_extract_string(e, {S.sql_str('$.' + chr(34) + k + chr(34))}) AS \"{k}\"" for k in keys)
    sql = (f"SELECT {sel}, json_extract_string(y, '$.sourcetype') AS sourcetype FROM ("
           f"SELECT y, CASE WHEN coalesce(json_type(y, '$.event') = 'OBJECT', false) "
           f"THEN json_extract(y, '$.event') ELSE y END AS e FROM (SELECT {S.json_object_sql('x')} AS y FROM j))")
    out = asim.query(sql, j=pa.table({"x": text}))
    return {k: (out[k].combine_chunks() if out[k].num_chunks else pa.nulls(n, pa.string()))
            for k in keys + ["sourcetype"]}


class Zscaler(CefRecords):
    def sniff(self, head: bytes, path: str) -> bool:
        cef = S.first_cef_vendor(head)
        if cef is not None:
            return cef[0] == "Zscaler" and cef[1].startswith("NSS")
        return bool(_SNIFF.search(head))

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> Query:
        is_json = pc.starts_with(pc.utf8_ltrim_whitespace(S.as_strings(lines)), "{")
        return self.map_cef_lines(lines, numbers, S.pick(is_json, pa.scalar("", pa.string()), lines))

    def cef_keys(self) -> tuple[str, ...]:
        return tuple(CEF_KEYS)

    def map_cef(self, head: dict, cef_table: pa.Table, lines: pa.Array, numbers: pa.Array) -> Query:
        """(Lines where a record is not CEF may be JSON events, read from `lines`.)"""
        n = len(lines)
        nulls = pa.nulls(n, pa.string())
        none = pa.scalar(None, pa.string())
        cef = S.arrays(cef_table)
        is_cef = cef["is_cef"]
        # (a JSON line is never CEF: its syslog header and CEF are read from an empty text)
        trimmed = pc.utf8_ltrim_whitespace(S.as_strings(lines))
        is_json = pc.and_(pc.invert(is_cef), pc.starts_with(trimmed, "{"))
        n_cef, n_json = is_cef.true_count, is_json.true_count
        js = _json_columns(trimmed, is_json) if n_json else {}
        raw = {}
        for name, (key, labels) in FIELDS.items():
            cands = []
            if n_cef:
                c = cef[S.cef_key(key)]
                if labels:
                    c = pc.coalesce(S.cef_label(cef_table, *labels), c)
                cands.append(S.pick(is_cef, c, none))
            if n_json and name in js:
                cands.append(js[name])
            raw[name] = pc.coalesce(*cands) if len(cands) > 1 else (cands[0] if cands else nulls)
        if n_json:
            raw["location"] = pc.coalesce(raw["location"], js["locationname"])
            raw["user"] = pc.coalesce(raw["user"], js["user"])
        login = js["login"] if n_json else nulls
        t_epoch, t_json, t_json2, t_head = S.parse_timestamps_many(
            [raw["epochtime"], js["datetime"] if n_json else nulls, js["time"] if n_json else nulls,
             head["timestamp_text"]])
        form = S.pick(is_cef, pa.scalar("cef"), S.pick(is_json, pa.scalar("json"), pa.scalar("none")))
        inputs = dict(raw)
        inputs.update({
            "form": form, "vendor": cef["vendor"], "product": cef["product"],
            "sourcetype": js["sourcetype"] if n_json else nulls, "login": login,
            "hostname": S.pick(is_cef, head["hostname"], none) if n_cef else nulls,
            "time_gen": pc.coalesce(t_epoch, t_json, t_json2, t_head),
        })
        inputs.update(carried_inputs(raw, PASSTHROUGH))
        inputs.update({"_line": numbers, "_raw": lines})
        return Query(_DERIVED, {"t": pa.table(inputs)})


SOURCE = Zscaler(
    name="zscaler", vendor="Zscaler", product="ZIA Firewall", priority=10,
    forms=("NSS firewall feed CEF (CEF:0|Zscaler|NSSFWlog|...; other NSS feeds skipped)",
           "NSS firewall feed JSON ({\"sourcetype\":\"zscalernss-fw\",\"event\":{...}} or the bare event)"),
)
