"""Zeek / Corelight conn.log: TSV with `#` headers, and JSON lines (Zeek's JSON writer or a
Corelight stream).

Forms accepted
- TSV: `#separator`, `#fields`, `#types`, `#path`, `#unset_field` (`-`), `#empty_field`
  (`(empty)`) headers, which may repeat mid-file (concatenated logs); lines are read by the
  `#fields` names, not by position. Lines before any `#fields` header are read with the
  default conn.log layout (21 or 22 fields). A line whose field count differs from `#fields`
  is quarantined (truncated). A `#path` other than conn/conn_red marks its lines skipped.
- JSON lines: dotted keys (`id.orig_h`) or nested (`"id": {"orig_h": ...}`), `ts` as epoch
  seconds (float) or ISO-8601; Corelight extras (`_path`, `_system_name`, `community_id`,
  `vlan`, `orig_l2_addr`...). Objects whose `_path` is not conn/conn_red, or with no `_path`
  and none of the conn-only keys (conn_state, orig_pkts, orig_ip_bytes), are skipped.

Mapping decisions (spec 2.9 and part 3)
- EventType Flow, EventCount 1, no DvcAction (Zeek is passive).
- TimeGenerated = EventStartTime = ts; EventEndTime = ts + duration (ts when no duration).
  ts is epoch seconds, ISO-8601, or epoch milliseconds (JSON::TS_MILLIS: values >= 1e11).
- NetworkDuration = round(duration * 1000) ms.
- Bytes: payload bytes orig_bytes/resp_bytes -> SrcBytes/DstBytes (as the Corelight parser);
  the IP-level orig_ip_bytes/resp_ip_bytes go to AdditionalFields. NetworkBytes/Packets are
  the sums when both sides are present.
- local_orig/local_resp: F,T Inbound; T,F Outbound; T,T Local; F,F External; unset -> NULL.
- conn_state: S0/S1/OTH Success; SF Success/Terminated; REJ Failure/Reset (a SYN answered by
  RST); S2/S3 Failure/Terminated; RSTO/RSTR/RSTOS0/RSTRH Failure/Reset; SH/SHR Failure/Timeout;
  missing or unknown -> NA. The raw state goes to EventOriginalResultDetails.
- ICMP: Zeek puts the ICMP type in id.orig_p and the *counterpart* type in id.resp_p (8 -> 0,
  135 -> 136): neither is a port, so Src/DstPortNumber are NULL, NetworkIcmpType is the type
  name (RFC 792 / RFC 4443; the number as text when unnamed), NetworkIcmpCode stays NULL (Zeek
  does not log the code); both raw numbers go to AdditionalFields. `icmp` over IPv6 (ip_proto
  58 or an IPv6 address) is IPV6-ICMP. `unknown_transport` uses ip_proto when IANA names it,
  else NetworkProtocol NULL; its zero ports are NULL too.
- btest baselines mask `ts` as XXXXXXXXXX.XXXXXX: those records are sessions with no time,
  quarantined with the reason "ts: masked timestamp ...".
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import error_rows, json_split
from ._sql import bag_sql, col, icmp_type_sql, lit
from .base import Query, Source, materialize

# Canonical Zeek field names this parser reads (JSON keys and TSV #fields names).
FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
    "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
    "tunnel_parents", "ip_proto", "community_id", "orig_l2_addr", "resp_l2_addr", "vlan",
    "inner_vlan", "_path", "_system_name",
)
DEFAULT_FIELDS = FIELDS[:22]  # Zeek's default conn.log layout (ip_proto since Zeek 6)
CONN_PATHS = ("conn", "conn_red")


# ---- time ------------------------------------------------------------------------------------

def epoch_sql(expr: str, scale: int = 1) -> str:
    """SQL: TIMESTAMPTZ from epoch text (seconds when scale=1, milliseconds when 1000);
    NULL when not a plain number or out of range."""
    micros = f"try(CAST(TRY_CAST({expr} AS DECIMAL(38,9)) * {1_000_000 // scale} AS BIGINT))"
    return (f"CASE WHEN regexp_full_match(trim({expr}), '-?[0-9]{{1,16}}(\\.[0-9]*)?') "
            f"AND {micros} BETWEEN 0 AND 253402300799000000 "
            f"THEN CAST(make_timestamp({micros}) AS TIMESTAMPTZ) END")


def _usual_ts(expr: str) -> str:
    """SQL true for the `ts` Zeek writes (epoch seconds with six decimals, 9-11 digits before
    the point): its digits without the point are the microseconds, read with one integer cast
    instead of epoch_sql's decimal arithmetic (same value, several times faster)."""
    return (f"(length({expr}) BETWEEN 16 AND 18 AND strpos({expr}, '.') = length({expr}) - 6 "
            f"AND ltrim(replace({expr}, '.', ''), '0123456789') = '')")


def any_time_sql(expr: str, scale: int = 1) -> str:
    """SQL: epoch (see epoch_sql) or ISO-8601 / export layouts (asim.time_sql)."""
    return f"coalesce({epoch_sql(expr, scale)}, {asim.time_sql(expr)})"


# ---- Zeek ----------------------------------------------------------------------------------

_HEADER = re.compile(r"#(separator|set_separator|empty_field|unset_field|path|fields|types)\b(.*)")


def _unescape(value: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


class Zeek(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        lines = [l for l in text.replace("\r", "\n").split("\n") if l.strip()]
        if not lines:
            return False
        if any(l.startswith("#fields") and "id.orig_h" in l for l in lines):
            paths = [l.split(None, 1)[1].strip() for l in lines
                     if l.startswith("#path") and len(l.split(None, 1)) == 2]
            fields = next(l for l in lines if l.startswith("#fields"))
            return (paths[0] in CONN_PATHS) if paths else "conn_state" in fields
        first = lines[0].lstrip()
        if not first.startswith("{"):
            return False
        if any(k in first for k in ('"metadata_type', '"orig_huid"', '"session_start_time"')):
            return False  # Vectra Stream, Zeek-like but not Zeek
        zeek_id = '"id.orig_h"' in first or re.search(r'"id"\s*:\s*\{\s*"orig_h"', first)
        return bool(zeek_id) and ('"conn_state"' in first or '"_path"' in first
                                  or '"uid"' in first)

    CARRIES_STATE = True  # (a header line sets the fields of the lines after it)

    def start(self, path: str) -> dict:
        return {"separator": "\t", "unset": "-", "empty": "(empty)", "path": None,
                "fields": None}

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":
        stripped = pc.utf8_ltrim_whitespace(lines)
        is_json = pc.or_(pc.starts_with(stripped, "{"), pc.starts_with(stripped, "["))
        is_header = pc.starts_with(lines, "#")
        is_tsv = pc.invert(pc.or_(is_json, is_header))
        parts = []
        if pc.any(is_json).as_py():
            parts.append(self._json(lines.filter(is_json), numbers.filter(is_json)))
        if pc.any(is_header).as_py() or pc.any(is_tsv).as_py():
            parts.append(self._tsv(lines, numbers, is_header, is_tsv, state))
        parts = [p for p in parts if isinstance(p, Query) or p.num_rows]
        if not parts:
            return pa.table({"_line": pa.array([], pa.int64()), "_raw": pa.array([], pa.string())})
        if len(parts) == 1 and isinstance(parts[0], Query):  # one TSV layout (the usual case): all SQL
            return self._to_asim(parts[0])
        canon = pa.concat_tables([materialize(p) for p in parts], promote_options="default")
        line = canon["_line"]
        if canon.num_rows > 1 and not pc.all(pc.less(line[:-1], line[1:])).as_py():
            canon = canon.take(pc.sort_indices(line))  # mixed JSON/TSV or header blocks
        return self._to_asim(canon)

    # -- TSV: header lines update the per-file state; data lines use the state in force --------
    def _tsv(self, lines, numbers, is_header, is_tsv, state) -> pa.Table:
        header_idx = np.flatnonzero(is_header.to_numpy(zero_copy_only=False))
        configs = [self._config(state)]
        for i in header_idx:  # a Python loop over header lines only (a handful per file)
            m = _HEADER.match(lines[int(i)].as_py())
            if m:
                self._header(state, m.group(1), m.group(2))
            configs.append(self._config(state))
        tsv_idx = np.flatnonzero(is_tsv.to_numpy(zero_copy_only=False))
        if not len(tsv_idx):
            return pa.table({})
        if len(tsv_idx) == len(lines) and len(set(configs)) == 1:  # no header in this batch
            return self._tsv_segment(lines, numbers, configs[0])
        which = np.searchsorted(header_idx, tsv_idx)  # headers before each data line
        keys = {}
        config_of = np.array([keys.setdefault(c, len(keys)) for c in configs], np.int64)[which]
        out = []
        for config, k in keys.items():
            sel = tsv_idx[config_of == k]
            if len(sel):
                take = pa.array(sel, pa.int64())
                out.append(self._tsv_segment(pc.take(lines, take), pc.take(numbers, take), config))
        if len(out) == 1:
            return out[0]
        return pa.concat_tables([materialize(p) for p in out], promote_options="default")

    @staticmethod
    def _config(state) -> tuple:
        return (state["separator"], state["unset"], state["empty"], state["path"],
                state["fields"])

    @staticmethod
    def _header(state, key, rest) -> None:
        if key == "separator":
            state["separator"] = _unescape(rest.strip()) or "\t"
            return
        value = rest[len(state["separator"]):] if rest.startswith(state["separator"]) else rest.strip()
        if key == "unset_field":
            state["unset"] = value
        elif key == "empty_field":
            state["empty"] = value
        elif key == "path":
            state["path"] = value.strip()
        elif key == "fields":
            state["fields"] = tuple(value.split(state["separator"]))

    def _tsv_segment(self, lines, numbers, config) -> Query:
        """Split on the separator and pick the #fields columns by name (`f[i]`) in SQL, so the
        statement that maps and conforms them reads only the fields it uses (DuckDB's split
        in that statement measured half the CPU of Arrow's plus handing DuckDB the list)."""
        sep, unset, empty, path, fields = config
        if fields:
            expected = (len(fields),)
            reason = f"expected {len(fields)} fields as in #fields, found "
        else:
            expected = (21, 22)
            reason = "no #fields header: expected the default conn.log layout (21 or 22 fields), found "
        fields = fields or DEFAULT_FIELDS
        markers = f"({lit(unset)}, {lit(empty)})"
        good = f"len(f) IN ({', '.join(map(str, expected))})"
        picked = {}
        for i, name in enumerate(fields, start=1):
            if name in FIELDS and name not in picked:
                picked[name] = (f"CASE WHEN {good} AND len(f) >= {i} AND f[{i}] NOT IN {markers} "
                                f"THEN f[{i}] END AS {col(name)}")
        skip = (path is not None and path not in CONN_PATHS) or "id.orig_h" not in fields
        columns = [picked.get(name, f"NULL::VARCHAR AS {col(name)}") for name in FIELDS]
        sql = (f"SELECT _line, _raw, {', '.join(columns)}, "
               f"CASE WHEN NOT {good} THEN {lit(reason)} || len(f) END AS _shape, NULL::VARCHAR AS _error, "
               f"{'true' if skip else 'false'} AS _skip, {lit(path or 'conn')} AS _zpath "
               f"FROM (SELECT *, string_split(_raw, {lit(sep)}) AS f FROM _tsv)")
        table = pa.table({"_line": numbers, "_raw": lines})
        return Query(sql, {"_tsv": table})

    # -- JSON lines ----------------------------------------------------------------------
    def _json(self, lines, numbers) -> pa.Table:
        good, bad = json_split(lines, numbers)
        paths = []
        for name in FIELDS:
            paths.append(f'$."{name}"')
        nested = [f"$.id.{k}" for k in ("orig_h", "orig_p", "resp_h", "resp_p")]
        plist = ", ".join(lit(p) for p in paths + nested)
        select = []
        for i, name in enumerate(FIELDS):
            v = f"v[{i + 1}]"
            if name.startswith("id."):
                v = f"coalesce({v}, v[{len(FIELDS) + 1 + ('orig_h', 'orig_p', 'resp_h', 'resp_p').index(name[3:])}])"
            select.append(f"{v} AS {col(name)}")
        def v(name):
            return f"v[{FIELDS.index(name) + 1}]"

        conn = (f"({v('_path')} IN ('conn', 'conn_red') OR ({v('_path')} IS NULL AND "
                f"({v('conn_state')} IS NOT NULL OR {v('orig_pkts')} IS NOT NULL "
                f"OR {v('orig_ip_bytes')} IS NOT NULL)))")
        parsed = asim.query(
            f"SELECT n AS _line, line AS _raw, {', '.join(select)}, NULL::VARCHAR AS _shape, "
            f"NOT {conn} AS _skip, coalesce({v('_path')}, 'conn') AS _zpath "
            f"FROM (SELECT *, json_extract_string(line, [{plist}]) AS v FROM good)", good=good)
        return pa.concat_tables([parsed, error_rows(bad, "not a JSON object")],
                                promote_options="default")

    # -- canonical Zeek fields -> ASIM ---------------------------------------------------------
    def _to_asim(self, t: "pa.Table | Query") -> Query:
        if not isinstance(t, Query):
            for name in FIELDS + ("_shape", "_error", "_zpath"):
                if name not in t.column_names:
                    t = t.append_column(name, pa.nulls(t.num_rows, pa.string()))
            if "_skip" not in t.column_names:
                t = t.append_column("_skip", pa.nulls(t.num_rows, pa.bool_()))
        c = {name: col(name) for name in FIELDS}
        ts = c["ts"]
        v6 = f"(contains({c['id.orig_h']}, ':') OR contains({c['id.resp_h']}, ':'))"
        proto = f"lower(trim({c['proto']}))"
        icmp = "(_proto = 'icmp')"
        icmp6 = f"({icmp} AND (trim({c['ip_proto']}) = '58' OR {v6}))"
        unknown = "(_proto = 'unknown_transport')"
        no_ports = f"({icmp} OR {unknown})"

        def flag(name):
            return f"upper(left(trim({c[name]}), 1))"

        lo, lr = flag("local_orig"), flag("local_resp")
        state = f"upper(trim({c['conn_state']}))"
        result = (f"CASE WHEN {state} IN ('S0', 'S1', 'OTH', 'SF') THEN 'Success' "
                  f"WHEN {state} IN ('REJ', 'S2', 'S3', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH', 'SH', "
                  f"'SHR') THEN 'Failure' ELSE 'NA' END")
        details = (f"CASE WHEN {state} IN ('SF', 'S2', 'S3') THEN 'Terminated' "
                   f"WHEN {state} IN ('REJ', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH') THEN 'Reset' "
                   f"WHEN {state} IN ('SH', 'SHR') THEN 'Timeout' END")

        def num(name):
            return f"TRY_CAST(TRY_CAST({c[name]} AS DOUBLE) AS BIGINT)"

        bag = bag_sql({
            "history": c["history"], "missed_bytes": num("missed_bytes"),
            "orig_ip_bytes": num("orig_ip_bytes"), "resp_ip_bytes": num("resp_ip_bytes"),
            "NetworkProtocolNumber": f"TRY_CAST({c['ip_proto']} AS INTEGER)",
            "ZeekProto": f"CASE WHEN {unknown} THEN {c['proto']} END",
            "vlan": f"TRY_CAST({c['vlan']} AS INTEGER)",
            "inner_vlan": f"TRY_CAST({c['inner_vlan']} AS INTEGER)",
            "icmp_type": f"CASE WHEN {icmp} THEN TRY_CAST({c['id.orig_p']} AS INTEGER) END",
            "icmp_counterpart_type": f"CASE WHEN {icmp} THEN TRY_CAST({c['id.resp_p']} AS INTEGER) END",
        })
        error = (f"CASE WHEN _error IS NOT NULL THEN _error WHEN _shape IS NOT NULL THEN _shape "
                 f"WHEN {ts} IS NULL THEN 'ts: missing' "
                 f"WHEN regexp_full_match(trim({ts}), 'X+(\\.X+)?') THEN "
                 f"'ts: masked timestamp ' || trim({ts}) || ' (btest baseline); no event time' "
                 f"WHEN _start IS NULL THEN 'ts: not a timestamp: ' || left({ts}, 60) "
                 f"WHEN {c['id.orig_h']} IS NULL OR {c['id.resp_h']} IS NULL "
                 f"THEN 'id.orig_h/id.resp_h: missing' "
                 f"WHEN {c['duration']} IS NOT NULL AND (_dur IS NULL OR NOT (_dur BETWEEN 0 AND 1e9)) "
                 f"THEN 'duration: not a number of seconds: ' || left({c['duration']}, 60) END")

        def port(name):
            return f"CASE WHEN {no_ports} THEN NULL ELSE {c[name]} END"

        canon = f"canon AS ({t.sql})," if isinstance(t, Query) else ""
        sql = f"""
        WITH {canon} pre AS (
          SELECT *, CASE WHEN {_usual_ts(ts)} THEN make_timestamp(TRY_CAST(replace({ts}, '.', '') AS BIGINT))::TIMESTAMPTZ
                         WHEN TRY_CAST({ts} AS DOUBLE) >= 1e11 THEN {epoch_sql(ts, 1000)}
                         ELSE {any_time_sql(ts)} END AS _start,
                 TRY_CAST({c['duration']} AS DOUBLE) AS _dur,
                 {proto} AS _proto
          FROM canon)
        SELECT _line, _raw, coalesce(_skip, false) AS _skip, {error} AS _error,
          _start AS "TimeGenerated", _start AS "EventStartTime",
          coalesce(CASE WHEN _dur BETWEEN 0 AND 1e9 THEN
                     try(_start + to_microseconds(CAST(round(_dur * 1e6) AS BIGINT))) END, _start)
            AS "EventEndTime",
          'Flow' AS "EventType", {result} AS "EventResult", {details} AS "EventResultDetails",
          {c['conn_state']} AS "EventOriginalResultDetails", _zpath AS "EventOriginalType",
          {c['uid']} AS "EventOriginalUid",
          {c['_system_name']} AS "Dvc", {c['_system_name']} AS "DvcHostname",
          CASE WHEN {icmp6} THEN 'IPV6-ICMP'
               WHEN {unknown} THEN {asim.protocol_sql(c['ip_proto'])}
               ELSE {c['proto']} END AS "NetworkProtocol",
          CASE WHEN {v6} THEN 'IPv6' WHEN {c['id.orig_h']} IS NOT NULL THEN 'IPv4' END
            AS "NetworkProtocolVersion",
          upper({c['service']}) AS "NetworkApplicationProtocol",
          CASE WHEN {lo} = 'F' AND {lr} = 'T' THEN 'Inbound' WHEN {lo} = 'T' AND {lr} = 'F' THEN 'Outbound'
               WHEN {lo} = 'T' AND {lr} = 'T' THEN 'Local' WHEN {lo} = 'F' AND {lr} = 'F' THEN 'External'
          END AS "NetworkDirection",
          CASE WHEN _dur BETWEEN 0 AND 1e9 THEN CAST(round(_dur * 1000) AS BIGINT) END AS "NetworkDuration",
          {c['orig_bytes']} AS "SrcBytes", {c['resp_bytes']} AS "DstBytes",
          try({num('orig_bytes')} + {num('resp_bytes')}) AS "NetworkBytes",
          {c['orig_pkts']} AS "SrcPackets", {c['resp_pkts']} AS "DstPackets",
          try({num('orig_pkts')} + {num('resp_pkts')}) AS "NetworkPackets",
          {c['community_id']} AS "NetworkSessionId",
          CASE WHEN {icmp} THEN {icmp_type_sql(c['id.orig_p'], icmp6)} END AS "NetworkIcmpType",
          {c['id.orig_h']} AS "SrcIpAddr", {port('id.orig_p')} AS "SrcPortNumber",
          {c['id.resp_h']} AS "DstIpAddr", {port('id.resp_p')} AS "DstPortNumber",
          {c['orig_l2_addr']} AS "SrcMacAddr", {c['resp_l2_addr']} AS "DstMacAddr",
          {bag} AS "AdditionalFields"
        FROM pre
        """
        return Query(sql, t.inputs if isinstance(t, Query) else {"canon": t})


SOURCE = Zeek(
    name="zeek", vendor="Corelight", product="Zeek", priority=0,
    forms=("Zeek conn.log TSV (#separator/#fields/#types headers, '-' unset, '(empty)')",
           "Zeek / Corelight conn JSON lines (epoch or ISO ts; other _path values skipped)"),
)
