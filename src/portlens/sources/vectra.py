"""Vectra AI Stream network metadata, `metadata_isession` records (Zeek-like sessions).

Forms accepted (JSON lines)
- The Stream's own JSON: `metadata_type`, dotted keys (`id.orig_h`) or a nested `id` object.
- A Log Analytics export of `VectraStream_CL` (keys with `_s`/`_d`/`_b` type suffixes,
  `id_orig_h_s`, `metadata_type_s`, ...) or of the AMA table `vectra_isession_CL`
  (`id_orig_h`, `session_start_time` as ISO, no `metadata_type`: every row is an isession).
Records whose metadata_type is not `metadata_isession` are skipped.

Mapping decisions (spec 2.15)
- ts -> TimeGenerated (the record's own time) and EventEndTime; session_start_time ->
  EventStartTime. Both are epoch milliseconds in the Stream (seconds accepted when the value
  is below 1e11) or ISO-8601 strings.
- NetworkDuration: the unit of `duration` is not documented, so it is derived from the two
  timestamps (ts - session_start_time, in ms) when both are present; otherwise `duration` is
  taken as milliseconds (the timestamps are ms and the AMA table types it Long); the raw value
  is kept in AdditionalFields.
- Bytes are IP-level (orig_ip_bytes/resp_ip_bytes -> SrcBytes/DstBytes), packets
  orig_pkts/resp_pkts; NetworkBytes/Packets are the sums.
- local_orig/local_resp: F,T Inbound; T,F Outbound; T,T Local; F,F External.
- protoName (or the proto number) -> NetworkProtocol; id.ip_ver ("IPV4"/"ipv4"/4) ->
  IPv4/IPv6 (the parser's upper-cased "IPV4" is not a valid value); service -> upper-cased
  NetworkApplicationProtocol. ICMP sessions get NULL ports, as in the zeek source.
- conn_state, when present, maps as in the zeek source; otherwise EventResult Success.
- Host names are kept only when they match ^[A-Za-z0-9-]{1,61}$ and do not start with "IP-"
  (the parser's rule); the raw names go to AdditionalFields as Src/Dst/DvcDescription.
  sensor_uid -> DvcId (VectraId) and Dvc (unless a hostname is known); orig_huid/resp_huid ->
  AdditionalFields Src/DstDvcId; community_id -> NetworkSessionId; uid -> EventOriginalUid.
- EventType NetworkSession (seen by a sensor), EventCount 1; Vendor/Product "Vectra AI" /
  "Vectra Stream".
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from .. import asim
from ._records import head_text, json_columns_query, read_text_lines
from ._sql import bag_sql, icmp_type_sql
from .base import BATCH_LINES, Batch, Query, Source, materialize, over

_SUFFIX = {"metadata_type": "s", "id.orig_h": "s", "id.orig_p": "d", "id.resp_h": "s", "id.resp_p": "d",
           "id.ip_ver": "s", "proto": "d", "protoName": "s", "service": "s", "duration": "d",
           "conn_state": "s", "orig_pkts": "d", "orig_ip_bytes": "d", "resp_pkts": "d",
           "resp_ip_bytes": "d", "orig_hostname": "s", "resp_hostname": "s", "hostname": "s",
           "orig_huid": "s", "resp_huid": "s", "sensor_uid": "s", "community_id": "s",
           "local_orig": "b", "local_resp": "b", "orig_vlan_id": "d", "resp_vlan_id": "d",
           "session_start_time": "d", "ts": "d", "uid": "s"}


def _paths(name: str) -> list[str]:
    flat = name.replace(".", "_")
    paths = [f'$."{name}"', f'$."{flat}"', f'$."{flat}_{_SUFFIX[name]}"']
    if name.startswith("id."):
        paths.append(f"$.id.{name[3:]}")
    if _SUFFIX[name] == "d":
        paths.append(f'$."{flat}_s"')
    return list(dict.fromkeys(paths))


PATHS = {name: _paths(name) for name in _SUFFIX}
# Fields that feed only the columns in _DETAIL_COLUMNS (host names, hardware ids, VLANs, uid,
# community id, service): a statement that does not yield those does not read them (a JSON
# path read costs, and these are about a third of PATHS).
_DETAIL = ("uid", "service", "orig_hostname", "resp_hostname", "orig_huid", "resp_huid", "community_id",
           "orig_vlan_id", "resp_vlan_id")
_DETAIL_COLUMNS = frozenset({"EventOriginalUid", "NetworkApplicationProtocol", "SrcHostname", "DstHostname",
                             "AdditionalFields", "NetworkSessionId"})
LEAN_PATHS = {name: ps for name, ps in PATHS.items() if name not in _DETAIL}


def vectra_time_sql(expr: str) -> str:
    """Epoch ms (or seconds below 1e11) or ISO-8601 text -> TIMESTAMPTZ."""
    number = f"TRY_CAST({expr} AS DOUBLE)"
    micros = (f"try(CAST(CASE WHEN abs({number}) >= 1e11 THEN {number} * 1000 "
              f"ELSE {number} * 1000000 END AS BIGINT))")
    return (f"CASE WHEN {number} IS NOT NULL THEN CASE WHEN {micros} BETWEEN 0 AND 253402300799000000 "
            f"THEN CAST(make_timestamp({micros}) AS TIMESTAMPTZ) END ELSE {asim.time_sql(expr)} END")


class Vectra(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        first = head_text(head).lstrip().split("\n", 1)[0]
        if not first.startswith("{"):
            return False
        return ("metadata_isession" in first or '"metadata_type' in first
                or ("orig_huid" in first and ("id.orig_h" in first or "id_orig_h" in first))
                or ("session_start_time" in first and ("id.orig_h" in first or "id_orig_h" in first)))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        for lines, numbers in read_text_lines(path, batch_lines):
            full = self.map_query(json_columns_query(lines, numbers, PATHS))
            yield self.finish(Query(full.sql, full.inputs, narrow=lambda keep, lines=lines, numbers=numbers, full=full:
                                    self._narrow(lines, numbers, keep) or full.sql), path)

    def _narrow(self, lines: pa.Array, numbers: pa.Array, keep: frozenset) -> str | None:
        """The statement for only the columns in `keep`, reading no _DETAIL field when none of
        them needs one (None: the full statement is needed)."""
        if not keep.isdisjoint(_DETAIL_COLUMNS):
            return None
        fields = json_columns_query(lines, numbers, LEAN_PATHS)
        absent = ", ".join(f'NULL::VARCHAR AS "{name}"' for name in _DETAIL)
        return self.map_query(Query(f"SELECT *, {absent} FROM ({fields.sql})", fields.inputs)).sql

    def map_records(self, t: pa.Table) -> pa.Table:
        """Extracted fields -> parsed columns (also fed by `sentinel`)."""
        return materialize(self.map_query(t))

    def map_query(self, t: "pa.Table | Query") -> Query:
        """Extracted fields (a table, or the Query of `json_columns_query`) -> parsed columns."""
        for name in list(PATHS) + ["_error"] if not isinstance(t, Query) else ():
            if name not in t.column_names:
                t = t.append_column(name, pa.nulls(t.num_rows, pa.string()))
        c = {name: f'"{name}"' for name in PATHS}

        def flag(name):
            return f"upper(left(trim({c[name]}), 1))"

        lo, lr = flag("local_orig"), flag("local_resp")
        lo = f"CASE {lo} WHEN '1' THEN 'T' WHEN '0' THEN 'F' ELSE {lo} END"
        lr = f"CASE {lr} WHEN '1' THEN 'T' WHEN '0' THEN 'F' ELSE {lr} END"
        proto = f"lower(trim(coalesce({c['protoName']}, CAST(TRY_CAST({c['proto']} AS INTEGER) AS VARCHAR))))"
        v6 = f"(contains({c['id.orig_h']}, ':') OR contains({c['id.resp_h']}, ':'))"
        ver = f"lower(trim({c['id.ip_ver']}))"
        icmp = "(_proto IN ('icmp', '1', 'icmp6', 'icmpv6', 'ipv6-icmp', '58'))"
        icmp6 = f"(_proto IN ('icmp6', 'icmpv6', 'ipv6-icmp', '58') OR ({icmp} AND {v6}))"
        state = f"upper(trim({c['conn_state']}))"

        def hostname(name):
            v = c[name]
            return (f"CASE WHEN regexp_full_match({v}, '[A-Za-z0-9-]{{1,61}}') AND NOT starts_with(upper({v}), 'IP-') "
                    f"THEN {v} END")

        def num(name):
            return f"TRY_CAST(TRY_CAST({c[name]} AS DOUBLE) AS BIGINT)"

        def port(name):
            return f"CASE WHEN {icmp} THEN NULL ELSE {c[name]} END"

        bag = bag_sql({
            "SrcDescription": c["orig_hostname"], "DstDescription": c["resp_hostname"],
            "DvcDescription": c["hostname"], "SrcDvcId": c["orig_huid"], "DstDvcId": c["resp_huid"],
            "SrcDvcIdType": f"CASE WHEN {c['orig_huid']} IS NOT NULL THEN 'VectraId' END",
            "DstDvcIdType": f"CASE WHEN {c['resp_huid']} IS NOT NULL THEN 'VectraId' END",
            "SrcVlanId": num("orig_vlan_id"), "DstVlanId": num("resp_vlan_id"),
            "VectraDuration": f"TRY_CAST({c['duration']} AS DOUBLE)",
            "NetworkProtocolNumber": f"TRY_CAST({c['proto']} AS INTEGER)",
            "icmp_type": f"CASE WHEN {icmp} THEN TRY_CAST({c['id.orig_p']} AS INTEGER) END",
            "icmp_counterpart_type": f"CASE WHEN {icmp} THEN TRY_CAST({c['id.resp_p']} AS INTEGER) END",
        })
        dur = f"TRY_CAST({c['duration']} AS DOUBLE)"
        sql = f"""
        WITH x AS (
          SELECT *, {vectra_time_sql(c['ts'])} AS _end, {vectra_time_sql(c['session_start_time'])} AS _start,
                 {proto} AS _proto
          FROM t)
        SELECT _line, _raw,
          _error IS NULL AND coalesce(trim({c['metadata_type']}) <> 'metadata_isession', false) AS _skip,
          CASE WHEN _error IS NOT NULL THEN _error
               WHEN coalesce(_end, _start) IS NULL THEN 'ts/session_start_time: missing or not a timestamp'
               WHEN {c['id.orig_h']} IS NULL OR {c['id.resp_h']} IS NULL THEN 'id.orig_h/id.resp_h: missing'
               WHEN {c['duration']} IS NOT NULL AND NOT coalesce({dur} BETWEEN 0 AND 1e15, false)
                 THEN 'duration: not a number: ' || left({c['duration']}, 60) END AS _error,
          coalesce(_end, _start) AS "TimeGenerated", coalesce(_start, _end) AS "EventStartTime",
          coalesce(_end, _start) AS "EventEndTime",
          'NetworkSession' AS "EventType",
          CASE WHEN {state} IS NULL THEN 'Success'
               WHEN {state} IN ('S0', 'S1', 'OTH', 'SF') THEN 'Success'
               WHEN {state} IN ('REJ', 'S2', 'S3', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH', 'SH', 'SHR') THEN 'Failure'
               ELSE 'NA' END AS "EventResult",
          CASE WHEN {state} IN ('SF', 'S2', 'S3') THEN 'Terminated'
               WHEN {state} IN ('REJ', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH') THEN 'Reset'
               WHEN {state} IN ('SH', 'SHR') THEN 'Timeout' END AS "EventResultDetails",
          {c['conn_state']} AS "EventOriginalResultDetails",
          coalesce({c['metadata_type']}, 'metadata_isession') AS "EventOriginalType",
          {c['uid']} AS "EventOriginalUid",
          coalesce({hostname('hostname')}, {c['sensor_uid']}) AS "Dvc", {hostname('hostname')} AS "DvcHostname",
          {c['sensor_uid']} AS "DvcId", CASE WHEN {c['sensor_uid']} IS NOT NULL THEN 'VectraId' END AS "DvcIdType",
          CASE WHEN {icmp6} THEN 'IPV6-ICMP' WHEN _proto IN ('unknown', 'unknown_transport') THEN NULL
               ELSE coalesce({c['protoName']}, {c['proto']}) END AS "NetworkProtocol",
          CASE WHEN {ver} IN ('ipv6', '6') OR ({ver} IS NULL AND {v6}) THEN 'IPv6'
               WHEN {ver} IN ('ipv4', '4') OR ({ver} IS NULL AND {c['id.orig_h']} IS NOT NULL) THEN 'IPv4' END
            AS "NetworkProtocolVersion",
          upper({c['service']}) AS "NetworkApplicationProtocol",
          CASE WHEN {lo} = 'F' AND {lr} = 'T' THEN 'Inbound' WHEN {lo} = 'T' AND {lr} = 'F' THEN 'Outbound'
               WHEN {lo} = 'T' AND {lr} = 'T' THEN 'Local' WHEN {lo} = 'F' AND {lr} = 'F' THEN 'External'
          END AS "NetworkDirection",
          coalesce(CASE WHEN _end >= _start THEN CAST(epoch_ms(_end) - epoch_ms(_start) AS BIGINT) END,
                   CASE WHEN {dur} BETWEEN 0 AND 1e15 THEN CAST(round({dur}) AS BIGINT) END) AS "NetworkDuration",
          {c['orig_ip_bytes']} AS "SrcBytes", {c['resp_ip_bytes']} AS "DstBytes",
          try({num('orig_ip_bytes')} + {num('resp_ip_bytes')}) AS "NetworkBytes",
          {c['orig_pkts']} AS "SrcPackets", {c['resp_pkts']} AS "DstPackets",
          try({num('orig_pkts')} + {num('resp_pkts')}) AS "NetworkPackets",
          {c['community_id']} AS "NetworkSessionId",
          CASE WHEN {icmp} THEN {icmp_type_sql(c['id.orig_p'], icmp6)} END AS "NetworkIcmpType",
          {c['id.orig_h']} AS "SrcIpAddr", {port('id.orig_p')} AS "SrcPortNumber",
          {hostname('orig_hostname')} AS "SrcHostname",
          {c['id.resp_h']} AS "DstIpAddr", {port('id.resp_p')} AS "DstPortNumber",
          {hostname('resp_hostname')} AS "DstHostname",
          {bag} AS "AdditionalFields"
        FROM x"""
        return over(sql, "t", t)


SOURCE = Vectra(
    name="vectra", vendor="Vectra AI", product="Vectra Stream", priority=5,
    forms=("Vectra Stream metadata_isession JSON lines (Stream JSON, VectraStream_CL or "
           "vectra_isession_CL exports); other metadata types skipped",),
)
