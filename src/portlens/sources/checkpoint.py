"""Check Point firewall logs from Log Exporter.

Raw forms accepted (one record per line, optional syslog header `<PRI>`, RFC 3164 or 5424)
  CEF               `CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|https|Unknown|act=Accept src=...`
                    (vendor `Check Point` or `CheckPoint`; Check Point's own keys such as origin,
                    inzone, loguid are read by name; custom fields by label)
  syslog key=value  `<13>1 2023-06-05T15:28:16-04:00 host CheckPoint 20564 - - time=...|action=Drop|src=...`
                    (`|`-separated, `\\=` `\\|` escapes)
  structured data   `<134>1 ... CheckPoint 10024 - [action:"Accept"; src:"10.0.0.1"; ...]`
  JSON lines        `{"time":"1685993296","action":"Accept","src":"10.0.0.1",...}` (Log Exporter JSON)
Records without any address (audit, e-mail, management logs) are not network sessions and are
skipped (counted); a line in none of these forms is quarantined.

Decisions
- Time: the log's `time` (epoch seconds; CEF `rt` in ms) first, then the syslog header time.
  A record with neither is quarantined (no TimeGenerated). EventStartTime = EventEndTime =
  TimeGenerated.
- DvcAction: Accept / Allow / Bypass -> Allow, Drop -> Drop, Reject / Block -> Deny,
  Encrypt / Decrypt kept; other actions (Detect, Prevent, Inform, ...) leave it empty and the
  raw value is in DvcOriginalAction. EventResult follows (Success / Failure) and is NA when
  the record has no action at all. EventSeverity High when an inspection category (threat)
  is set, otherwise the ASIM default.
- NetworkDirection: conn_direction Incoming -> Inbound, Outgoing -> Outbound, Internal ->
  Local, External -> External; otherwise from the zones: Internal->Internal/Local Local,
  Internal/Local->External Outbound, External->Internal/Local Inbound, External->External
  External. `ifdir` is relative to an interface and is not used.
- Ports: s_port -> SrcPortNumber, `service` (the destination port) -> DstPortNumber; CEF
  spt / dpt. IPv6 CEF records carry the addresses in c6a2 / c6a3 ("Source/Destination IPv6
  Address"). ICMP / ICMPv6 have no ports; icmp_type / icmp_code (CEF cn2 / cn3 labelled
  "ICMP Type" / "ICMP Code") -> NetworkIcmpType / NetworkIcmpCode.
- Bytes: client_outbound_bytes (or sent_bytes) -> SrcBytes, client_inbound_bytes (or
  received_bytes) -> DstBytes, `bytes` -> NetworkBytes; in CEF `out` -> SrcBytes, `in` ->
  DstBytes (the CommonSecurityLog convention).
- Rule: rule_name, else CEF cs2 "Rule Name", else rule_uid. App: service_id, else the CEF
  Name header (e.g. `https`) -> DstAppName. Device: origin -> Dvc / DvcIpAddr,
  originsicname `CN=<name>,...` -> DvcHostname. loguid -> EventOriginalUid, the blade
  (`product`) -> EventOriginalType. EventCount = CEF baseEventCount, else 1.
- Vendor / product: Check Point / Firewall (spec 2.7).
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
from ._sql import bag_sql, icmp_type_sql, int_sql, map_sql

NATIVE_KEYS = (
    "time", "action", "conn_direction", "inzone", "outzone", "ifdir", "ifname", "loguid",
    "origin", "originsicname", "product", "proto", "protocol", "s_port", "service", "service_id",
    "src", "dst", "xlatesrc", "xlatedst", "xlatesport", "xlatedport", "rule_name", "rule_uid",
    "layer_name", "match_id", "client_inbound_bytes", "client_outbound_bytes", "sent_bytes",
    "received_bytes", "bytes", "client_inbound_packets", "client_outbound_packets", "packets",
    "duration", "icmp_type", "icmp_code", "inspection_category", "inspection_item", "hostname",
    "src_user_name", "dst_user_name", "src_machine_name", "dst_machine_name", "sequencenum",
    "sig_id", "severity", "__policy_id_tag",
)
# CEF key (or custom-field label, lower case) -> native key
CEF_KEYS_MAP = {
    "act": "action", "src": "src", "dst": "dst", "spt": "s_port", "dpt": "service", "proto": "proto",
    "sourceTranslatedAddress": "xlatesrc", "destinationTranslatedAddress": "xlatedst",
    "sourceTranslatedPort": "xlatesport", "destinationTranslatedPort": "xlatedport",
    "deviceInboundInterface": "ifname", "suser": "src_user_name", "duser": "dst_user_name",
    "shost": "src_machine_name", "dhost": "dst_machine_name",
}
CEF_LABELS = {
    "rule_name": ("rule name",), "src": ("source ipv6 address",), "dst": ("destination ipv6 address",),
    "icmp_type": ("icmp type",), "icmp_code": ("icmp code",), "duration": ("duration in seconds",),
}
CEF_KEYS = sorted(set(CEF_KEYS_MAP) | set(NATIVE_KEYS) | {"rt", "in", "out", "baseEventCount"}
                  | set(S.cef_custom_keys()))

_SNIFF = re.compile(
    rb"\bCheckPoint \d+ - |(?:^|[|\s;\[{,])\"?(?:loguid|originsicname)\"?[=:]\s?\"?\{?",
    re.MULTILINE)

_ACTIONS = {"accept": "Allow", "allow": "Allow", "bypass": "Allow", "drop": "Drop",
            "reject": "Deny", "block": "Deny", "encrypt": "Encrypt", "decrypt": "Decrypt"}
_DIRECTIONS = {"incoming": "Inbound", "outgoing": "Outbound", "internal": "Local",
               "external": "External"}

PASSTHROUGH = {
    "DvcOriginalAction": "action", "EventOriginalUid": "loguid", "EventOriginalType": "product",
    "SrcIpAddr": "src", "DstIpAddr": "dst", "SrcZone": "inzone", "DstZone": "outzone",
    "SrcUsername": "src_user_name", "DstUsername": "dst_user_name",
    "SrcHostname": "src_machine_name", "DstHostname": "dst_machine_name",
}



def _derived_sql(carry: str = "") -> str:
    num = "TRY_CAST(TRY_CAST(NULLIF(trim({}), '') AS DOUBLE) AS BIGINT)"
    inner = (f"SELECT *, {asim.protocol_sql('proto')} AS proto_kw, lower(trim(action)) AS act_l, "
             f"lower(trim(inzone)) AS inz, lower(trim(outzone)) AS outz, "
             f"NULLIF(trim(src), '') AS src_t, NULLIF(trim(dst), '') AS dst_t, "
             f"coalesce({S.valid_ip_sql('trim(origin)')}, false) AS origin_is_ip FROM t")
    icmp = "coalesce(proto_kw IN ('ICMP', 'IPV6-ICMP'), false)"

    def port(col: str) -> str:
        return f"CASE WHEN {icmp} THEN NULL ELSE {col} END"

    zones = ("CASE WHEN inz = 'internal' AND outz IN ('internal', 'local') THEN 'Local' "
             "WHEN inz IN ('internal', 'local') AND outz = 'external' THEN 'Outbound' "
             "WHEN inz = 'external' AND outz IN ('internal', 'local') THEN 'Inbound' "
             "WHEN inz = 'external' AND outz = 'external' THEN 'External' END")
    extra = bag_sql({
        "Blade": "product", "RuleUid": "rule_uid", "Layer": "layer_name", "MatchId": "match_id",
        "InterfaceDirection": "ifdir", "Interface": "ifname", "Protocol": "protocol",
        "InspectionCategory": "inspection_category", "InspectionItem": "inspection_item",
        "LogServer": "hostname", "Origin": "origin", "OriginSicName": "originsicname",
        "NetworkProtocolNumber": "CASE WHEN proto_kw IS NULL THEN proto END",
    }, text=True)
    recognised = ("CASE WHEN form = 'cef' THEN coalesce(lower(replace(vendor, ' ', '')) = 'checkpoint', false) "
                  "WHEN form = 'none' THEN false "
                  "ELSE coalesce(loguid, origin, originsicname, product, __policy_id_tag) IS NOT NULL END")
    error = ("CASE WHEN NOT recognised THEN 'not a Check Point log record' "
             "WHEN src_t IS NULL AND dst_t IS NULL THEN NULL "
             "WHEN src_t IS NULL OR dst_t IS NULL THEN 'missing source or destination address' "
             f"WHEN NOT {S.valid_ip_sql('src_t')} THEN 'invalid source address' "
             f"WHEN NOT {S.valid_ip_sql('dst_t')} THEN 'invalid destination address' END")
    return f"""
SELECT
  time_gen AS TimeGenerated,
  time_gen AS EventStartTime,
  time_gen AS EventEndTime,
  greatest(coalesce({num.format('event_count')}, 1), 1) AS EventCount,
  'NetworkSession' AS EventType,
  CASE WHEN act_l IS NULL OR act_l = '' THEN 'NA' END AS EventResult,
  CASE WHEN NULLIF(trim(inspection_category), '') IS NOT NULL THEN 'High' END AS EventSeverity,
  coalesce(NULLIF(trim(origin), ''), hostname) AS Dvc,
  CASE WHEN origin_is_ip THEN trim(origin) END AS DvcIpAddr,
  NULLIF(regexp_extract(originsicname, '^\\s*[Cc][Nn]=([^,]+)', 1), '') AS DvcHostname,
  {map_sql('act_l', _ACTIONS)} AS DvcAction,
  proto_kw AS NetworkProtocol,
  {S.ip_version_sql('coalesce(dst_t, src_t)')} AS NetworkProtocolVersion,
  coalesce({map_sql('lower(trim(conn_direction))', _DIRECTIONS)}, {zones}) AS NetworkDirection,
  {num.format('duration')} * 1000 AS NetworkDuration,
  {num.format('bytes')} AS NetworkBytes,
  {num.format('src_bytes')} AS SrcBytes,
  {num.format('dst_bytes')} AS DstBytes,
  {num.format('packets')} AS NetworkPackets,
  {num.format('client_outbound_packets')} AS SrcPackets,
  {num.format('client_inbound_packets')} AS DstPackets,
  coalesce(NULLIF(trim(rule_name), ''), NULLIF(trim(rule_uid), '')) AS NetworkRuleName,
  CASE WHEN {icmp} THEN {icmp_type_sql('icmp_type', "proto_kw = 'IPV6-ICMP'")} END AS NetworkIcmpType,
  CASE WHEN {icmp} THEN {int_sql('icmp_code')} END AS NetworkIcmpCode,
  {port('s_port')} AS SrcPortNumber,
  {port('service')} AS DstPortNumber,
  coalesce(NULLIF(trim(service_id), ''), app_name) AS DstAppName,
  CASE WHEN trim(xlatesrc) NOT IN ('0.0.0.0', '::') THEN xlatesrc END AS SrcNatIpAddr,
  CASE WHEN trim(xlatesrc) NOT IN ('0.0.0.0', '::', '') AND NOT {icmp} AND trim(xlatesport) <> '0'
       THEN xlatesport END AS SrcNatPortNumber,
  CASE WHEN trim(xlatedst) NOT IN ('0.0.0.0', '::') THEN xlatedst END AS DstNatIpAddr,
  CASE WHEN trim(xlatedst) NOT IN ('0.0.0.0', '::', '') AND NOT {icmp} AND trim(xlatedport) <> '0'
       THEN xlatedport END AS DstNatPortNumber,
  {extra} AS AdditionalFields,
  {error} AS _error,
  recognised AND src_t IS NULL AND dst_t IS NULL AS _skip{carry}
FROM (SELECT *, ({recognised}) AS recognised FROM ({inner}) i) v"""


_DERIVED = _derived_sql(carried_sql(PASSTHROUGH))  # one statement with conform: rows go to the store
_SQL_INPUTS = ("proto", "action", "inzone", "outzone", "src", "dst", "origin", "originsicname",
               "conn_direction", "duration", "bytes", "packets", "client_outbound_packets",
               "client_inbound_packets", "rule_name", "rule_uid", "icmp_type", "icmp_code",
               "s_port", "service", "service_id", "xlatesrc", "xlatesport", "xlatedst",
               "xlatedport", "inspection_category", "inspection_item", "product", "layer_name",
               "match_id", "ifdir", "ifname", "protocol", "hostname", "loguid", "__policy_id_tag")


def _json_columns(message: pa.Array, mask: pa.Array) -> dict:
    """Native columns from JSON-object messages (Log Exporter JSON); NULL elsewhere."""
    n = len(message)
    text = S.pick(mask, message, pa.scalar("", pa.string()))
    sel = ", ".join(f"json_extract_string(y, {S.sql_str('$.' + chr(34) + k + chr(34))}) AS \"{k}\""
                    for k in NATIVE_KEYS)
    out = asim.query(f"SELECT {sel} FROM (SELECT {S.json_object_sql('x')} AS y FROM j)",
                     j=pa.table({"x": text}))
    return {k: (out[k].combine_chunks() if out[k].num_chunks else pa.nulls(n, pa.string())) for k in NATIVE_KEYS}


class CheckPoint(CefRecords):
    def sniff(self, head: bytes, path: str) -> bool:
        cef = S.first_cef_vendor(head)
        if cef is not None:
            return cef[0].replace(" ", "").lower() == "checkpoint"
        return bool(_SNIFF.search(head))

    def cef_keys(self) -> tuple[str, ...]:
        return tuple(CEF_KEYS)

    def map_cef(self, head: dict, cef_table: pa.Table, lines: pa.Array, numbers: pa.Array) -> Query:
        """(Lines where a record is not CEF are key=value, structured-data or JSON messages,
        read from `head["message"]` and `head["structured_data"]`.)"""
        n = len(lines)
        nulls = pa.nulls(n, pa.string())
        empty = pa.scalar("", pa.string())
        msg = head["message"]
        cef = S.arrays(cef_table)
        is_cef = cef["is_cef"]
        sd_text = pc.fill_null(head["structured_data"], "")
        is_sd = pc.and_(pc.invert(is_cef), pc.match_substring(sd_text, ':"'))
        trimmed = pc.utf8_ltrim_whitespace(pc.fill_null(msg, ""))
        is_json = pc.and_(pc.and_(pc.invert(is_cef), pc.invert(is_sd)), pc.starts_with(trimmed, "{"))
        is_kv = pc.and_(pc.and_(pc.invert(is_cef), pc.invert(is_sd)),
                        pc.and_(pc.invert(is_json), pc.match_substring(trimmed, "=")))
        parts = []
        if is_kv.true_count:
            parts.append(S.arrays(S.extract_pairs(S.pick(is_kv, msg, empty), NATIVE_KEYS, S.PIPE)))
        if is_sd.true_count:
            parts.append(S.arrays(S.extract_pairs(S.pick(is_sd, sd_text, empty), NATIVE_KEYS, S.SD)))
        if is_json.true_count:
            parts.append(_json_columns(trimmed, is_json))
        raw = {}
        n_cef = is_cef.true_count
        for k in NATIVE_KEYS:
            cands = [p[k] for p in parts if p[k].null_count < n]
            if n_cef:
                cef_cands = [cef[S.cef_key(std)] for std, nat in CEF_KEYS_MAP.items() if nat == k]
                if k in CEF_LABELS:
                    cef_cands.insert(0, S.cef_label(cef_table, *CEF_LABELS[k]))
                cef_cands.append(cef[S.cef_key(k)])
                cef_cands = [c for c in cef_cands if c.null_count < n]
                if cef_cands:
                    cands.append(S.pick(is_cef, pc.coalesce(*cef_cands) if len(cef_cands) > 1 else cef_cands[0],
                                        pa.scalar(None, pa.string())))
            raw[k] = pc.coalesce(*cands) if len(cands) > 1 else (cands[0] if cands else nulls)
        cef_or_null = (lambda key: S.pick(is_cef, cef[S.cef_key(key)], pa.scalar(None, pa.string()))) if n_cef else \
            (lambda key: nulls)
        src_bytes = pc.coalesce(raw["client_outbound_bytes"], raw["sent_bytes"], cef_or_null("out"))
        dst_bytes = pc.coalesce(raw["client_inbound_bytes"], raw["received_bytes"], cef_or_null("in"))
        t_native, t_rt, t_head = S.parse_timestamps_many([raw["time"], cef["rt"], head["timestamp_text"]])
        form = S.pick(is_cef, pa.scalar("cef"), S.pick(is_sd, pa.scalar("sd"), S.pick(
            is_json, pa.scalar("json"), S.pick(is_kv, pa.scalar("kv"), pa.scalar("none")))))
        inputs = {k: raw[k] for k in _SQL_INPUTS}
        inputs.update({
            "form": form, "vendor": cef["vendor"], "app_name": cef["name"],
            "time_gen": pc.coalesce(t_native, t_rt, t_head),
            "src_bytes": src_bytes, "dst_bytes": dst_bytes,
            "event_count": cef_or_null("baseEventCount"),
        })
        inputs.update(carried_inputs(raw, PASSTHROUGH))
        inputs.update({"_line": numbers, "_raw": lines})
        return Query(_DERIVED, {"t": pa.table(inputs)})


SOURCE = CheckPoint(
    name="checkpoint", vendor="Check Point", product="Firewall", priority=10,
    forms=("Log Exporter CEF (vendor Check Point or CheckPoint)",
           "Log Exporter syslog key=value (`a=b|c=d`)",
           "Log Exporter syslog structured data (`[action:\"Accept\"; ...]`)",
           "Log Exporter JSON lines"),
)
