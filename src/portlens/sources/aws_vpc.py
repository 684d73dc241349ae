"""AWS VPC Flow Logs, versions 2 to 8 (source `aws-vpc`).

Raw forms accepted (gzip or not):

* **Text** (S3 delivery, or any capture): space-separated fields, one flow per line.
  - A header line with the field names (`version account-id ...`, also `${field}` format
    strings and Athena-style `account_id`) sets the field order for the lines after it; a
    header can appear again later (concatenated S3 objects) and then switches the order.
  - Without a header the order comes from, in turn: the source option `format` (an AWS
    format string; `--source-option format=...`), the environment variable
    `PORTLENS_AWS_VPC_FORMAT` (the same, e.g. for Spark executors), else recognition among known layouts
    by checking every field's shape on the first lines: the v2 default (14 fields), "all
    fields" of v3/v4/v5/v7/v8 in AWS's table order, and the custom formats of AWS's own
    examples (tcp-flags, transit gateway, traffic path, NAT gateway). Records longer than
    every layout (fields appended to the default format, ECS fields, ...) are read by the
    longest default / "all fields" layout they start with; the extra fields are ignored. If no
    layout fits, the lines are quarantined with a reason asking for a header or the variable.
* **CloudWatch Logs JSON**: JSON lines with the record in `message` (and `timestamp` in ms,
  used when the format has no `start`), a subscription `{"logEvents": [...]}` document (one
  per line, concatenated `}{` or pretty-printed), or `aws logs filter-log-events` output
  `{"events": [...]}`. CloudWatch control messages are skipped.
* **JSON objects keyed by field name** (`{"srcaddr": ..., "dstport": ...}`, hyphen or
  underscore names), as Firehose/Athena exports write them.

Mapping (spec 2.1, Sentinel's vimNetworkSessionAWSVPC): ACCEPT/REJECT -> Allow/Deny (raw in
DvcOriginalAction, EventResult derived), protocol number -> IANA keyword (an unassigned number
gives NULL; the number is always in AdditionalFields.NetworkProtocolNumber), start ->
TimeGenerated and EventStartTime, end -> EventEndTime, bytes/packets -> NetworkBytes /
NetworkPackets (records are one direction, so no Src/Dst split), pkt-srcaddr/pkt-dstaddr ->
SrcNatIpAddr/DstNatIpAddr, flow-direction ingress/egress -> Inbound/Outbound (relative to the
ENI), type -> NetworkProtocolVersion (else from the address), vpc-id -> DvcId (AwsVpcId),
Dvc = vpc-id or else interface-id, interface-id -> DvcInboundInterface, pkt-*-aws-service ->
Src/DstAppName, log-status -> EventOriginalResultDetails, version -> EventProductVersion,
EventType NetworkSession, EventCount 1. account-id, subnet-id, instance-id, tcp-flags, region,
az-id, sublocation, traffic-path, ecs-* and reject-reason go to AdditionalFields.

NODATA and SKIPDATA records are skipped (counted, not quarantined): NODATA has no traffic and
SKIPDATA has no tuple (every field is `-`), so neither can be a session row. (Sentinel keeps
SKIPDATA rows, with empty ports and protocol; they cannot match any port rule.)
A record whose format has no time at all (e.g. AWS's NAT-gateway example) is quarantined
("TimeGenerated: missing"), unless CloudWatch gave its event timestamp.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import json_records
from ._sql import IP_RE, bag_sql, iana_sql, lit, looks_ip, split_whitespace_sql
from .base import BATCH_LINES, Batch, Query, Source, materialize, read_head, read_lines

FORMAT_ENV = "PORTLENS_AWS_VPC_FORMAT"

V2 = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
      "start end action log-status").split()
V3 = "vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr".split()
V4 = "region az-id sublocation-type sublocation-id".split()
V5 = "pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path".split()
V7 = ("ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id "
      "ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn "
      "ecs-task-arn ecs-task-id").split()
V8 = ["reject-reason"]
KNOWN_FIELDS = frozenset(V2 + V3 + V4 + V5 + V7 + V8)

# Layouts tried, in order, when a file has no header (AWS's examples come from
# flow-logs-records-examples.md).
CATALOGUE: list[tuple[str, list[str]]] = [
    ("v2 default", V2),
    ("v3 all fields", V2 + V3),
    ("v4 all fields", V2 + V3 + V4),
    ("v5 all fields", V2 + V3 + V4 + V5),
    ("v7 all fields", V2 + V3 + V4 + V5 + V7),
    ("v8 all fields", V2 + V3 + V4 + V5 + V7 + V8),
    ("AWS example: tcp-flags", "version vpc-id subnet-id instance-id interface-id account-id type srcaddr "
     "dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags "
     "log-status".split()),
    ("AWS example: transit gateway", "version interface-id account-id vpc-id subnet-id instance-id srcaddr "
     "dstaddr srcport dstport protocol tcp-flags type pkt-srcaddr pkt-dstaddr action log-status".split()),
    ("AWS example: traffic path", "version srcaddr dstaddr srcport dstport protocol start end type packets "
     "bytes account-id vpc-id subnet-id instance-id interface-id region az-id sublocation-type "
     "sublocation-id action tcp-flags pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service "
     "traffic-path flow-direction log-status".split()),
    ("AWS example: NAT gateway", "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr".split()),
]

# A layout read as the prefix of longer records (the fields after it have no header).
PREFIX = " + unnamed extra fields"

_IP = IP_RE
_NUM = r"[0-9]+"
_SHAPES = {
    "version": r"[0-9]{1,2}", "account-id": r"[0-9]{12}|unknown", "interface-id": r"eni-[0-9A-Za-z]+",
    "srcaddr": _IP, "dstaddr": _IP, "pkt-srcaddr": _IP, "pkt-dstaddr": _IP,
    "srcport": _NUM, "dstport": _NUM, "protocol": _NUM, "packets": _NUM, "bytes": _NUM,
    "tcp-flags": _NUM, "traffic-path": _NUM, "start": r"[0-9]{9,11}", "end": r"[0-9]{9,11}",
    "action": "ACCEPT|REJECT", "log-status": "OK|NODATA|SKIPDATA",
    "vpc-id": r"vpc-[0-9A-Za-z]+", "subnet-id": r"subnet-[0-9A-Za-z]+", "instance-id": r"i-[0-9A-Za-z]+",
    "type": "IPv4|IPv6|EFA", "region": r"[a-z]{2}(-[a-z]+)+-[0-9]+", "az-id": r"[a-z]{2,6}[0-9]*-az[0-9]+",
    "sublocation-type": "wavelength|outpost|localzone", "pkt-src-aws-service": r"[A-Z0-9_]+",
    "pkt-dst-aws-service": r"[A-Z0-9_]+", "flow-direction": "ingress|egress",
}
_SHAPE_RE = {k: re.compile(f"(?:{v})|-") for k, v in _SHAPES.items()}

_TOKEN = r"(\$\{)?[a-z][a-z0-9_-]*\}?"
HEADER_RE = (rf"^\s*{_TOKEN}(\s+{_TOKEN})*\s*$")
_HEADER_KEY_RE = re.compile(r"(^|\s)(\$\{)?(version|srcaddr|dstaddr|srcport|dstport|protocol|action|"
                            r"log[-_]status|interface[-_]id|account[-_]id|packets|bytes|start|end)\}?(\s|$)")
_DATA_HINT = re.compile(r"(^|\s)(ACCEPT|REJECT|NODATA|SKIPDATA)(\s|$)")
_JSON_HINT = re.compile(rb'"message"\s*:\s*"[^"\n]*\beni-[0-9a-zA-Z]+\b[^"\n]*\b(OK|NODATA|SKIPDATA|ACCEPT|REJECT)\b')
_JSON_KEYS_HINT = re.compile(rb'"srcaddr"\s*:')


def parse_format(text: str) -> list[str]:
    """An AWS format string or header line -> field names (`${a}` and `a_b` accepted)."""
    return [t.strip("${}").lower().replace("_", "-") for t in text.split()]


def _is_header(line: str) -> bool:
    return bool(re.match(HEADER_RE, line)) and bool(_HEADER_KEY_RE.search(line.lower()))


def _fits(fields: list[str], tokens: list[str]) -> bool:
    return len(fields) == len(tokens) and all(
        (_SHAPE_RE[f].fullmatch(t) if f in _SHAPE_RE else True) for f, t in zip(fields, tokens))


def infer_format(samples: list[str]) -> tuple[str, list[str]] | None:
    """The first catalogue layout that every sampled record fits (by field count and shape)."""
    token_lists = [s.split() for s in samples if s.strip()]
    if not token_lists:
        return None
    for name, fields in CATALOGUE:
        if all(_fits(fields, tokens) for tokens in token_lists):
            return name, fields
    # tolerate a few broken lines: keep the layout most of the sample fits
    best = max(CATALOGUE, key=lambda c: sum(_fits(c[1], t) for t in token_lists))
    if sum(_fits(best[1], t) for t in token_lists) * 2 > len(token_lists):
        return best
    # extra fields after a known layout (v3-v8 fields, ECS fields appended to the default
    # format) without a header: read the longest "all fields" layout the records start with
    for name, fields in sorted(CATALOGUE[:6], key=lambda c: -len(c[1])):
        fit = sum(len(t) > len(fields) and _fits(fields, t[:len(fields)]) for t in token_lists)
        if fit * 2 > len(token_lists):
            return name + PREFIX, fields
    return None


# ---- mapping -------------------------------------------------------------------------------

def _mapping_sql(value: dict[str, str], count_check: str = "false", count_reason: str = "NULL") -> str:
    """SELECT list mapping flow-log fields (SQL expressions, NULL for '-') to ASIM columns."""
    def v(name: str) -> str:
        return value.get(name, "NULL::VARCHAR")

    start = v("start")
    start_ts = (f"CASE WHEN regexp_full_match({start}, '[0-9]{{1,11}}') THEN to_timestamp(CAST({start} AS BIGINT)) "
                "WHEN cw_ts BETWEEN 0 AND 253402300799999 THEN to_timestamp(cw_ts / 1000.0) END")
    end = v("end")
    end_ts = f"CASE WHEN regexp_full_match({end}, '[0-9]{{1,11}}') THEN to_timestamp(CAST({end} AS BIGINT)) END"
    action, status = v("action"), v("log-status")
    proto = v("protocol")
    ptype = v("type")
    src = v("srcaddr")
    bag = bag_sql([("AccountId", v("account-id")), ("SubnetId", v("subnet-id")), ("InstanceId", v("instance-id")),
                   ("TcpFlags", v("tcp-flags")), ("NetworkProtocolNumber", proto),
                   ("TrafficType", f"CASE WHEN {ptype} NOT IN ('IPv4', 'IPv6') THEN {ptype} END"),
                   ("Region", v("region")), ("AzId", v("az-id")), ("SublocationType", v("sublocation-type")),
                   ("SublocationId", v("sublocation-id")), ("TrafficPath", v("traffic-path"))]
                  + [(f.replace("-", "_").title().replace("_", ""), v(f)) for f in V7 + V8 if f in value], text=True)
    no_time = "" if ("start" in value or "end" in value) else \
        "WHEN cw_ts IS NULL THEN 'the flow-log format has no start/end time' "
    checks = [
        (count_check, count_reason),
        (f"{action} IS NOT NULL AND {action} NOT IN ('ACCEPT', 'REJECT')",
         f"'action is not ACCEPT or REJECT: ' || {action}"),
        (f"{start} IS NOT NULL AND NOT regexp_full_match({start}, '[0-9]{{1,11}}')",
         f"'start is not epoch seconds: ' || {start}"),
        (f"{end} IS NOT NULL AND NOT regexp_full_match({end}, '[0-9]{{1,11}}')",
         f"'end is not epoch seconds: ' || {end}"),
        (f"{proto} IS NOT NULL AND NOT regexp_full_match({proto}, '[0-9]{{1,3}}')",
         f"'protocol is not a protocol number: ' || {proto}"),
    ]
    for f in ("srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"):
        if f in value:
            checks.append((f"{v(f)} IS NOT NULL AND NOT {looks_ip(v(f))}", f"'{f} is not an IP address: ' || {v(f)}"))
    if "flow-direction" in value:
        fd = v("flow-direction")
        checks.append((f"{fd} IS NOT NULL AND {fd} NOT IN ('ingress', 'egress')",
                       f"'flow-direction is not ingress or egress: ' || {fd}"))
    error = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + f" {no_time}END"
    return f"""
      {start_ts} AS TimeGenerated, {start_ts} AS EventStartTime, {end_ts} AS EventEndTime,
      {v('version')} AS EventProductVersion,
      {v('interface-id')} AS DvcInboundInterface,
      {v('vpc-id')} AS DvcId, CASE WHEN {v('vpc-id')} IS NOT NULL THEN 'AwsVpcId' END AS DvcIdType,
      coalesce({v('vpc-id')}, {v('interface-id')}) AS Dvc,
      {src} AS SrcIpAddr, {v('dstaddr')} AS DstIpAddr,
      {v('srcport')} AS SrcPortNumber, {v('dstport')} AS DstPortNumber,
      {iana_sql(proto)} AS NetworkProtocol,
      CASE WHEN {ptype} IN ('IPv4', 'IPv6') THEN {ptype}
           WHEN {src} IS NOT NULL THEN CASE WHEN contains({src}, ':') THEN 'IPv6' ELSE 'IPv4' END END
        AS NetworkProtocolVersion,
      {v('packets')} AS NetworkPackets, {v('bytes')} AS NetworkBytes,
      CASE {action} WHEN 'ACCEPT' THEN 'Allow' WHEN 'REJECT' THEN 'Deny' END AS DvcAction,
      {action} AS DvcOriginalAction,
      {status} AS EventOriginalResultDetails,
      {v('pkt-srcaddr')} AS SrcNatIpAddr, {v('pkt-dstaddr')} AS DstNatIpAddr,
      {v('pkt-src-aws-service')} AS SrcAppName, {v('pkt-dst-aws-service')} AS DstAppName,
      CASE {v('flow-direction')} WHEN 'ingress' THEN 'Inbound' WHEN 'egress' THEN 'Outbound' END
        AS NetworkDirection,
      'NetworkSession' AS EventType,
      {bag} AS AdditionalFields,
      {error} AS _error,
      coalesce(NOT ({count_check}) AND {status} IN ('NODATA', 'SKIPDATA'), false) AS _skip
    """


_S3_KEY_TIME = re.compile(r"_vpcflowlogs_.*_(\d{8}T\d{4})Z_")


def _object_time_ms(path: str) -> int | None:
    """The delivery time in an S3 flow-log object name (`..._vpcflowlogs_<region>_<id>_
    20180620T1620Z_<hash>.log.gz`): the fallback time of records whose format has no start/end."""
    m = _S3_KEY_TIME.search(os.path.basename(path))
    if not m:
        return None
    from datetime import datetime, timezone
    try:
        t = datetime.strptime(m.group(1), "%Y%m%dT%H%M").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return int(t.timestamp() * 1000)



def _text_sql(fields: list[str], fmt_name: str) -> str:
    """SQL over table `seg(text, _line, _raw, cw_ts)`: the text split at whitespace."""
    index: dict[str, int] = {}
    for i, name in enumerate(fields, start=1):
        index.setdefault(name, i)
    value = {name: f"NULLIF(f[{i}], '-')" for name, i in index.items()}
    n = len(fields)
    short = f"len(f) < {n}" if fmt_name.endswith(PREFIX) else f"len(f) <> {n}"
    want = f"at least {n}" if fmt_name.endswith(PREFIX) else str(n)
    select = _mapping_sql(value, short, f"{lit(f'expected {want} fields ({fmt_name}), got ')} || len(f)")
    return f"SELECT _line, _raw, {select} FROM (SELECT *, {split_whitespace_sql('text')} AS f FROM seg)"


def _keyed_sql() -> str:
    """SQL over `seg(rec, _line, _raw, cw_ts)`: JSON objects keyed by field name."""
    value = {}
    for name in KNOWN_FIELDS:
        under = name.replace("-", "_")
        value[name] = (f"NULLIF(coalesce(json_extract_string(rec, '$.\"{name}\"'), "
                       f"json_extract_string(rec, '$.\"{under}\"')), '-')")
    return f"SELECT _line, _raw, {_mapping_sql(value)} FROM seg"


# ---- the source ------------------------------------------------------------------------------

class AwsVpc(Source):
    reads_json_documents = True  # (reads pretty JSON documents itself: json_records)

    def sniff(self, head: bytes, path: str) -> bool:
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if text[:1] in (b"{", b"["):
            return bool(_JSON_HINT.search(head)) or (
                bool(_JSON_KEYS_HINT.search(head)) and b'"dstaddr"' in head
                and any(k in head for k in (b'"log_status"', b'"log-status"', b'"interface_id"',
                                            b'"interface-id"')))
        lines = [ln for ln in text.decode("utf-8", errors="replace").splitlines() if ln.strip()][:10]
        if len(lines) > 1 and not head.endswith((b"\n", b"\r")):
            lines = lines[:-1]  # the last line may be cut by the 4 KiB head
        if not lines:
            return False
        if _is_header(lines[0]) and sum(f in KNOWN_FIELDS for f in parse_format(lines[0])) >= 3:
            return True
        data = [ln for ln in lines if not _is_header(ln)]
        return bool(data) and all(_DATA_HINT.search(ln) or "eni-" in ln for ln in data) \
            and infer_format(data) is not None

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        head = read_head(path).lstrip(b"\xef\xbb\xbf").lstrip()
        state = self.start(path)
        if head[:1] in (b"{", b"["):
            for recs in json_records(path, batch_lines, ("logEvents", "events")):
                yield self.finish(self._json(recs, state), path)
            return
        for lines, numbers in read_lines(path, batch_lines):
            yield self.finish(self.mapped(lines, numbers, state), path)

    OPTIONS = {"format": "the flow-log format string (field order) of files without a header line"}

    CARRIES_STATE = True  # (a header line sets the field order of the lines after it)

    def start(self, path: str) -> dict:
        state = {"format": None, "file_ms": _object_time_ms(path)}
        given = str(self.options.get("format") or "").strip()
        env = os.environ.get(FORMAT_ENV, "").strip()
        if given:
            state["format"] = ("the format option", parse_format(given))
        elif env:
            state["format"] = (FORMAT_ENV, parse_format(env))
        return state

    # text lines ---------------------------------------------------------------------------
    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":
        seg = pa.table({"text": lines, "_line": numbers, "_raw": lines,
                        "cw_ts": pa.repeat(pa.scalar(state.get("file_ms"), pa.int64()), len(lines))})
        return self._segments(seg, state)

    def _segments(self, seg: pa.Table, state: dict) -> "pa.Table | Query":
        """Split at header lines (each sets the layout for what follows) and parse each part."""
        candidates = pc.indices_nonzero(pc.match_substring_regex(seg["text"], HEADER_RE)).to_pylist()
        positions = [i for i in candidates if _is_header(seg["text"][i].as_py())]  # a few at most
        out, begin = [], 0
        for pos in positions + [seg.num_rows]:
            if pos > begin:
                out.append(self._parse_part(seg.slice(begin, pos - begin), state))
            if pos < seg.num_rows:
                text = seg["text"][pos].as_py()
                state["format"] = ("header line " + str(seg["_line"][pos].as_py()), parse_format(text))
            begin = pos + 1
        if not out:
            return pa.table({"_line": pa.array([], pa.int64()), "_raw": pa.array([], pa.string())})
        if len(out) == 1:  # one layout (the usual case): stays SQL, mapped and conformed in one statement
            return out[0]
        return pa.concat_tables([materialize(p) for p in out], promote_options="default")

    def _parse_part(self, seg: pa.Table, state: dict) -> "pa.Table | Query":
        if state["format"] is None:
            sample = seg["text"].slice(0, 50).to_pylist()
            found = infer_format(sample)
            state["format"] = found if found else False
        if not state["format"]:
            return pa.table({"_line": seg["_line"], "_raw": seg["_raw"], "_error": pa.repeat(
                pa.scalar("flow-log field layout not recognised: give a header line or the format "
                          f"(--source-option format=..., or {FORMAT_ENV})"), seg.num_rows)})
        name, fields = state["format"]
        return Query(_text_sql(fields, name), {"seg": seg})

    # CloudWatch / keyed JSON ---------------------------------------------------------------
    def _json(self, recs: pa.Table, state: dict) -> pa.Table:
        ok = pc.is_null(recs["_error"])
        bad = recs.filter(pc.invert(ok)).select(["_line", "_raw", "_error"])
        good = recs.filter(ok)
        if good.num_rows == 0:
            return bad
        kinds = asim.query(
            "WITH j AS (SELECT _line, _raw, rec, "
            "  json_extract_string(rec, ['$.message', '$.timestamp', '$.srcaddr', '$.dstaddr']) AS j FROM g) "
            "SELECT _line, _raw, rec, j[1] AS text, TRY_CAST(j[2] AS BIGINT) AS cw_ts, "
            "  coalesce(j[3], j[4]) IS NOT NULL AS keyed FROM j", g=good.select(["_line", "_raw", "rec"]))
        has_text = pc.is_valid(kinds["text"])
        control = pc.fill_null(pc.starts_with(kinds["text"], "CWL CONTROL MESSAGE"), False)
        parts = [bad]
        msgs = kinds.filter(pc.and_(has_text, pc.invert(control)))
        if msgs.num_rows:
            parts.append(materialize(self._segments(msgs.select(["text", "_line", "_raw", "cw_ts"]), state)))
        ctl = kinds.filter(control)
        if ctl.num_rows:
            parts.append(pa.table({"_line": ctl["_line"], "_raw": ctl["_raw"],
                                   "_skip": pa.repeat(pa.scalar(True), ctl.num_rows)}))
        keyed = kinds.filter(pc.and_(pc.invert(has_text), kinds["keyed"]))
        if keyed.num_rows:
            parts.append(asim.query(_keyed_sql(), seg=keyed.select(["rec", "_line", "_raw", "cw_ts"])))
        other = kinds.filter(pc.and_(pc.invert(has_text), pc.invert(kinds["keyed"])))
        if other.num_rows:
            parts.append(pa.table({"_line": other["_line"], "_raw": other["_raw"], "_error": pa.repeat(
                pa.scalar("JSON record has no \"message\" and no flow-log fields"), other.num_rows)}))
        return pa.concat_tables(parts, promote_options="default")


SOURCE = AwsVpc(
    name="aws-vpc", vendor="AWS", product="VPC", priority=10,
    forms=("VPC Flow Logs text v2-v8, with or without a header line (any custom field order)",
           "CloudWatch Logs JSON (message lines, logEvents, filter-log-events output)",
           "JSON objects keyed by flow-log field name"),
)
