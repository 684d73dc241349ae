"""Palo Alto Networks PAN-OS TRAFFIC logs.

Raw forms accepted (one record per line, optional syslog header `<PRI>`, RFC 3164 or 5424)
  native CSV   `1,2018/11/30 16:09:07,012801096514,TRAFFIC,end,2049,2018/11/30 16:09:07,src,dst,...`
               (the PAN-OS 8.1-11.x TRAFFIC field order; fields past 46 are optional, so older
               and newer releases both read; quoted fields with commas are handled)
  CEF          `CEF:0|Palo Alto Networks|PAN-OS|10.2.9|end|TRAFFIC|1|rt=... src=... act=allow ...`
               (PAN's documented CEF TRAFFIC template; keys by name in any order, custom fields
               found by their labels; DeviceProduct `LF` from Cortex Data Lake is accepted)
Other log types (THREAT, SYSTEM, CONFIG, GLOBALPROTECT, ...) are skipped (counted). A line
that is neither form is quarantined.

Decisions
- Time: TimeGenerated = EventEndTime = the log's generated time; EventStartTime = the session
  start time (native) or generated time minus elapsed seconds (CEF has no start time: its
  `start=` key carries $time_generated). Native times are the firewall's local time; the
  PAN-OS 10+ high resolution timestamp (field 102, ISO with offset) gives that offset when
  present, otherwise they are taken as UTC. CEF times (`start`, else `rt`) carry their zone.
- Bytes: native bytes_sent / bytes_received and CEF `in` / `out` are client->server and
  server->client: SrcBytes = bytes_sent = CEF `in`, DstBytes = bytes_received = CEF `out`
  (the Sentinel parser swaps them, spec part 3 item 2). Cortex Data Lake's CEF (product
  `LF`, TRAFFIC in the signature field) documents the opposite (`in` = bytes_received), so
  for LF records SrcBytes = `out`. NetworkBytes = total bytes.
- EventCount = repeat count (sessions folded into the record within 5 s), at least 1.
- DvcAction: allow, deny, drop, drop-icmp / "drop ICMP", reset-client -> Reset Source,
  reset-server -> Reset Destination, reset-both -> Reset (any case, hyphen or space); any
  other action leaves DvcAction empty (raw value in DvcOriginalAction); EventResult follows
  DvcAction (conform's ASIM rule), EventSeverity likewise.
- ICMP / ICMPv6 have no ports: PAN writes 0, kept as NULL (also the NAT ports).
- EventSubType Start / End from the start / end subtypes; the raw subtype in EventOriginalType;
  session end reason in EventOriginalResultDetails (aged-out -> Timeout, tcp-rst-* -> Reset,
  threat -> Terminated in EventResultDetails).
- App-ID upper-cased into NetworkApplicationProtocol; no NetworkDirection (PAN does not state
  one and zone names are site-specific).
- Vendor / product: Palo Alto / PanOS (ASIM list).
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

# native CSV positions (PAN-OS TRAFFIC format, 0-based)
CSV_FIELDS = {
    "receive_time": 1, "serial": 2, "type": 3, "subtype": 4, "time_generated": 6, "src": 7,
    "dst": 8, "natsrc": 9, "natdst": 10, "rule": 11, "srcuser": 12, "dstuser": 13, "app": 14,
    "vsys": 15, "from_zone": 16, "to_zone": 17, "inbound_if": 18, "outbound_if": 19,
    "logset": 20, "sessionid": 22, "repeatcnt": 23, "sport": 24, "dport": 25, "natsport": 26,
    "natdport": 27, "flags": 28, "proto": 29, "action": 30, "bytes": 31, "bytes_sent": 32,
    "bytes_received": 33, "packets": 34, "start": 35, "elapsed": 36, "category": 37,
    "seqno": 39, "srcloc": 41, "dstloc": 42, "pkts_sent": 44, "pkts_received": 45,
    "reason": 46, "device_name": 52, "action_source": 53, "rule_uuid": 65, "src_host": 82,
    "src_mac": 83, "dst_host": 90, "dst_mac": 91, "highres": 102,
}
MIN_TRAFFIC_FIELDS = 34  # through bytes_received

# CEF: unified name -> (extension key, custom-field label(s) or None)
CEF_FIELDS = {
    "serial": ("deviceExternalId", None), "src": ("src", None), "dst": ("dst", None),
    "natsrc": ("sourceTranslatedAddress", None), "natdst": ("destinationTranslatedAddress", None),
    "rule": ("cs1", ("rule", "rule name")), "srcuser": ("suser", None), "dstuser": ("duser", None),
    "app": ("app", None), "vsys": ("cs3", ("virtual system",)), "from_zone": ("cs4", ("source zone",)),
    "to_zone": ("cs5", ("destination zone",)), "inbound_if": ("deviceInboundInterface", None),
    "outbound_if": ("deviceOutboundInterface", None), "logset": ("cs6", ("logprofile", "log profile")),
    "sessionid": ("cn1", ("sessionid", "session id")), "repeatcnt": ("cnt", None),
    "sport": ("spt", None), "dport": ("dpt", None), "natsport": ("sourceTranslatedPort", None),
    "natdport": ("destinationTranslatedPort", None), "flags": ("flexString1", ("flags",)),
    "proto": ("proto", None), "action": ("act", None),
    "bytes": ("flexNumber1", ("total bytes",)), "bytes_sent": ("in", None),
    "bytes_received": ("out", None), "packets": ("cn2", ("packets",)),
    "elapsed": ("cn3", ("elapsed time in seconds", "elapsed time")),
    "category": ("cs2", ("url category",)), "seqno": ("externalId", None),
    "srcloc": ("PanOSSourceLocation", None), "dstloc": ("PanOSDestinationLocation", None),
    "pkts_sent": ("PanOSPacketsSent", None), "pkts_received": ("PanOSPacketsReceived", None),
    "reason": ("reason", None), "device_name": ("dvchost", None), "action_source": ("cat", None),
    "rule_uuid": ("PanOSRuleUUID", None), "src_host": ("PanOSSourceDeviceHost", None),
    "src_mac": ("smac", None), "dst_host": ("PanOSDestinationDeviceHost", None),
    "dst_mac": ("dmac", None),
}
CEF_KEYS = sorted({k for k, _ in CEF_FIELDS.values()} | {"rt", "start"} | set(S.cef_custom_keys()))
LOG_TYPES = ("TRAFFIC", "THREAT", "SYSTEM", "CONFIG", "HIPMATCH", "GLOBALPROTECT", "USERID",
             "DECRYPTION", "AUTHENTICATION", "TUNNEL", "CORRELATION", "SCTP", "IPTAG", "GTP",
             "URL", "DATA", "WILDFIRE", "AUDIT")

_SNIFF = re.compile(
    rb"(?:^|[\s>,])\d{1,2},\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2},[^,\r\n]*,(?:"
    + "|".join(LOG_TYPES).encode() + rb"),", re.MULTILINE)

_ACTIONS = {"allow": "Allow", "deny": "Deny", "drop": "Drop", "drop icmp": "Drop ICMP",
            "reset client": "Reset Source", "reset server": "Reset Destination",
            "reset both": "Reset"}
_END_REASONS = {"aged-out": "Timeout", "tcp-rst-from-client": "Reset",
                "tcp-rst-from-server": "Reset", "threat": "Terminated"}



# ASIM columns copied straight from a unified field (conform trims them and maps '' to NULL)
PASSTHROUGH = {
    "EventOriginalUid": "seqno", "DvcOriginalAction": "action", "DvcId": "serial",
    "DvcInboundInterface": "inbound_if", "DvcOutboundInterface": "outbound_if",
    "NetworkBytes": "bytes", "SrcBytes": "bytes_sent", "DstBytes": "bytes_received",
    "NetworkPackets": "packets", "SrcPackets": "pkts_sent", "DstPackets": "pkts_received",
    "NetworkRuleName": "rule", "NetworkSessionId": "sessionid", "SrcIpAddr": "src",
    "SrcHostname": "src_host", "SrcUsername": "srcuser", "SrcMacAddr": "src_mac",
    "SrcZone": "from_zone", "DstIpAddr": "dst", "DstHostname": "dst_host",
    "DstUsername": "dstuser", "DstMacAddr": "dst_mac", "DstZone": "to_zone",
}


def _derived_sql(carry: str = "") -> str:
    types = ", ".join(S.sql_str(t) for t in LOG_TYPES)
    ptype = (f"CASE WHEN is_cef THEN (CASE WHEN upper(cef_name) IN ({types}) THEN upper(cef_name) "
             f"WHEN upper(cef_signature) IN ({types}) THEN upper(cef_signature) ELSE upper(cef_name) END) "
             f"ELSE upper(trim(f3)) END")
    psub = (f"CASE WHEN is_cef THEN (CASE WHEN upper(cef_name) IN ({types}) THEN cef_signature "
            f"ELSE cef_name END) ELSE NULLIF(trim(f4), '') END")
    recognised = ("CASE WHEN is_cef THEN coalesce(cef_vendor = 'Palo Alto Networks', false) "
                  "ELSE coalesce(regexp_full_match(upper(trim(f3)), '[A-Z][A-Z_-]{1,30}') AND "
                  "regexp_matches(f1, '^\\s*\\d{4}/\\d{1,2}/\\d{1,2}'), false) END")
    shift = ("CASE WHEN off_hh IS NOT NULL THEN to_minutes(CAST((CASE WHEN off_sign = '-' THEN -1 ELSE 1 END)"
             " * (CAST(off_hh AS INTEGER) * 60 + CAST(off_mm AS INTEGER)) AS BIGINT)) ELSE INTERVAL 0 MINUTE END")
    inner = (f"SELECT *, {asim.protocol_sql('proto')} AS proto_kw, "
             f"TRY_CAST(TRY_CAST(elapsed AS DOUBLE) AS BIGINT) AS elapsed_s, "
             f"coalesce({S.valid_ip_sql('hostname')}, false) AS host_is_ip, "
             f"({recognised}) AS recognised, ({ptype}) AS ptype, ({psub}) AS psubtype, "
             f"CASE WHEN is_cef THEN time_cef ELSE time_gen_csv - {shift} END AS time_gen, "
             f"CASE WHEN is_cef THEN NULL ELSE time_start_csv - {shift} END AS time_start, "
             f"NULLIF(trim(src), '') AS src_t, NULLIF(trim(dst), '') AS dst_t FROM t")
    action = map_sql("lower(regexp_replace(trim(action), '[-_ ]+', ' ', 'g'))", _ACTIONS)
    extra = bag_sql({
        "Vsys": "vsys", "LogProfile": "logset", "Flags": "flags", "UrlCategory": "category",
        "SrcLocation": "srcloc", "DstLocation": "dstloc", "ActionSource": "action_source",
        "RuleUuid": "rule_uuid", "RepeatCount": "repeatcnt", "LogType": "ptype",
        "NetworkProtocolName": "CASE WHEN proto_kw IS NULL THEN proto END",
    }, text=True)
    icmp = "coalesce(proto_kw IN ('ICMP', 'IPV6-ICMP'), false)"

    def port(col: str) -> str:
        return f"CASE WHEN {icmp} THEN NULL ELSE {col} END"

    error = (f"CASE WHEN NOT recognised THEN 'not a PAN-OS log record' "
             f"WHEN ptype <> 'TRAFFIC' THEN NULL "
             f"WHEN NOT is_cef AND _nfields < {MIN_TRAFFIC_FIELDS} "
             f"THEN 'truncated TRAFFIC record: ' || _nfields || ' fields' "
             f"WHEN src_t IS NULL OR dst_t IS NULL THEN 'missing source or destination address' "
             f"WHEN NOT {S.valid_ip_sql('src_t')} THEN 'invalid source address' "
             f"WHEN NOT {S.valid_ip_sql('dst_t')} THEN 'invalid destination address' END")
    return f"""
SELECT
  time_gen AS TimeGenerated,
  CASE WHEN NOT is_cef THEN coalesce(time_start, time_gen)
       WHEN elapsed_s > 0 THEN time_gen - to_seconds(elapsed_s) ELSE time_gen END AS EventStartTime,
  time_gen AS EventEndTime,
  greatest(coalesce(TRY_CAST(TRY_CAST(repeatcnt AS DOUBLE) AS BIGINT), 1), 1) AS EventCount,
  'NetworkSession' AS EventType,
  CASE lower(psubtype) WHEN 'start' THEN 'Start' WHEN 'end' THEN 'End' END AS EventSubType,
  {map_sql('lower(trim(reason))', _END_REASONS)} AS EventResultDetails,
  psubtype AS EventOriginalType,
  CASE WHEN lower(trim(reason)) <> 'n/a' THEN reason END AS EventOriginalResultDetails,
  coalesce(NULLIF(trim(device_name), ''), hostname, NULLIF(trim(serial), '')) AS Dvc,
  CASE WHEN host_is_ip THEN hostname END AS DvcIpAddr,
  coalesce(NULLIF(trim(device_name), ''), CASE WHEN NOT host_is_ip THEN hostname END) AS DvcHostname,
  CASE WHEN NULLIF(trim(serial), '') IS NOT NULL THEN 'Other' END AS DvcIdType,
  {action} AS DvcAction,
  proto_kw AS NetworkProtocol,
  {S.ip_version_sql('coalesce(dst_t, src_t)')} AS NetworkProtocolVersion,
  upper(app) AS NetworkApplicationProtocol,
  elapsed_s * 1000 AS NetworkDuration,
  {port('sport')} AS SrcPortNumber,
  {port('dport')} AS DstPortNumber,
  CASE WHEN trim(natsrc) NOT IN ('0.0.0.0', '::') THEN natsrc END AS SrcNatIpAddr,
  CASE WHEN trim(natsrc) NOT IN ('0.0.0.0', '::', '') THEN {port('natsport')} END AS SrcNatPortNumber,
  CASE WHEN trim(natdst) NOT IN ('0.0.0.0', '::') THEN natdst END AS DstNatIpAddr,
  CASE WHEN trim(natdst) NOT IN ('0.0.0.0', '::', '') THEN {port('natdport')} END AS DstNatPortNumber,
  {extra} AS AdditionalFields,
  {error} AS _error,
  recognised AND ptype <> 'TRAFFIC' AS _skip{carry}
FROM ({inner}) v"""


_CARRIED = {**PASSTHROUGH, "EventProductVersion": "cef_version"}
_DERIVED = _derived_sql(carried_sql(_CARRIED))  # one statement with conform: rows go to the store
# the columns the derived query reads
_SQL_INPUTS = ("proto", "elapsed", "repeatcnt", "reason", "device_name", "serial", "action", "app",
               "sport", "dport", "natsrc", "natsport", "natdst", "natdport", "vsys", "logset",
               "flags", "category", "srcloc", "dstloc", "action_source", "rule_uuid", "src", "dst")


class PaloAlto(CefRecords):
    def sniff(self, head: bytes, path: str) -> bool:
        cef = S.first_cef_vendor(head)
        if cef is not None:
            return cef[0] == "Palo Alto Networks"
        return bool(_SNIFF.search(head))

    def cef_keys(self) -> tuple[str, ...]:
        return tuple(CEF_KEYS)

    def map_cef(self, head: dict, cef_table: pa.Table, lines: pa.Array, numbers: pa.Array) -> Query:
        """(Lines where a record is not CEF are native CSV messages, read from `head["message"]`.)"""
        n = len(lines)
        msg = head["message"]
        cef = S.arrays(cef_table)
        is_cef = cef["is_cef"]
        n_cef = is_cef.true_count
        nulls = pa.nulls(n, pa.string())
        csv_idx = sorted(set(CSV_FIELDS.values()) | {1, 3, 4})
        csv = S.arrays(S.split_fields(S.pick(is_cef, pa.scalar("", pa.string()), msg) if n_cef else msg,
                                      csv_idx))
        raw = {}
        for name in sorted(set(CSV_FIELDS) | set(CEF_FIELDS)):
            csv_col = csv[f"f{CSV_FIELDS[name]}"] if name in CSV_FIELDS else nulls
            if n_cef and name in CEF_FIELDS:
                key, labels = CEF_FIELDS[name]
                cef_col = cef[key]
                if labels:
                    cef_col = pc.coalesce(S.cef_label(cef_table, *labels), cef_col)
                raw[name] = S.pick(is_cef, cef_col, csv_col)
            else:
                raw[name] = csv_col
        if n_cef:  # Cortex Data Lake (product LF) writes in = bytes_received, out = bytes_sent
            lf = pc.fill_null(pc.and_(is_cef, pc.equal(cef["product"], "LF")), False)
            if lf.true_count:
                raw["bytes_sent"] = pc.if_else(lf, cef["out"], raw["bytes_sent"])
                raw["bytes_received"] = pc.if_else(lf, cef["in"], raw["bytes_received"])
        offset = pc.extract_regex(pc.fill_null(csv[f"f{CSV_FIELDS['highres']}"], ""),
                                  r"(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})$")
        t_gen, t_start, t_cef_start, t_rt, t_head = S.parse_timestamps_many([
            csv[f"f{CSV_FIELDS['time_generated']}"], csv[f"f{CSV_FIELDS['start']}"],
            cef["start"], cef["rt"], head["timestamp_text"]])
        inputs = {k: raw[k] for k in _SQL_INPUTS}
        inputs.update({
            "is_cef": is_cef, "cef_vendor": cef["vendor"], "cef_name": cef["name"],
            "cef_signature": cef["signature"], "f1": csv["f1"], "f3": csv["f3"], "f4": csv["f4"],
            "_nfields": csv["_nfields"], "hostname": head["hostname"],
            "time_gen_csv": t_gen, "time_start_csv": t_start,
            "time_cef": pc.coalesce(t_cef_start, t_rt, t_head) if n_cef else pa.nulls(n, asim.TIMESTAMP),
            "off_sign": pc.struct_field(offset, "sign"), "off_hh": pc.struct_field(offset, "hh"),
            "off_mm": pc.struct_field(offset, "mm"),
        })
        inputs.update(carried_inputs({**raw, "cef_version": cef["version"]}, _CARRIED))
        inputs.update({"_line": numbers, "_raw": lines})
        return Query(_DERIVED, {"t": pa.table(inputs)})


SOURCE = PaloAlto(
    name="paloalto", vendor="Palo Alto", product="PanOS", priority=10,
    forms=("PAN-OS native CSV syslog, TRAFFIC (optional syslog header; other types skipped)",
           "PAN-OS CEF (CEF:0|Palo Alto Networks|PAN-OS|...|TRAFFIC|...; other types skipped)"),
)
