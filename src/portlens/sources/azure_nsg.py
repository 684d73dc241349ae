"""Azure NSG flow logs, VNet flow logs and Traffic Analytics exports (source `azure-nsg`).

Raw forms accepted (gzip or not):

* **NSG flow log blobs** (`insights-logs-networksecuritygroupflowevent/.../PT1H.json`, v1 and
  v2): one JSON document `{"records": [...]}`, compact or pretty-printed; a single record
  without the wrapper; or JSON lines (one record, or one `{"records": [...]}` wrapper, per line,
  as Event Hub captures write them). Records -> `properties.flows[].flows[].flowTuples[]`.
  - v1 tuple `unixSec,src,dst,sport,dport,T|U,I|O,A|D`
  - v2 tuple adds `,B|C|E,pktsS2D,bytesS2D,pktsD2S,bytesD2S` (counters empty on B).
* **VNet flow logs** (`insights-logs-flowlogflowevent`, category `FlowLogFlowEvent`):
  `flowRecords.flows[].flowGroups[].flowTuples[]`, tuple
  `unixMs,src,dst,sport,dport,protoNumber,I|O,B|C|E|D,encryption,pktsS2D,bytesS2D,pktsD2S,bytesD2S`;
  state `D` means denied, any other state allowed. A tuple time above 1e11 is read as
  milliseconds, otherwise as seconds (the Microsoft doc mixes both).
* **Traffic Analytics** CSV exports of `NTANetAnalytics` (v3 columns: SrcIp, DestIp, DestPort,
  L4Protocol, FlowDirection, FlowStatus, ...) and of the legacy `AzureNetworkAnalytics_CL`
  (SrcIP_s, DestPort_d, FlowStatus_s A/D, ...), with ISO, US-locale
  (`8/25/2025 8:11:21.937 PM`) or Excel (`06-14-2025  07:17:00`) timestamps.

Mapping decisions (spec 2.2):

* Raw tuples: one tuple -> one row, EventType `Flow`, EventCount 1, EventStartTime =
  EventEndTime = TimeGenerated = tuple time. NSG B/C/E (and VNet B/C/E) tuples of one
  connection are separate rows, as the spec asks; the state is kept in
  AdditionalFields.FlowState so a consumer can count only `B` (or `D`) tuples if it wants one
  row per connection. A/D -> Allow/Deny (DvcOriginalAction keeps the letter); VNet state D ->
  Deny, B/C/E -> Allow (DvcOriginalAction keeps the state letter). I/O -> Inbound/Outbound
  (relative to the NIC). Counters: S2D -> SrcPackets/SrcBytes, D2S -> DstPackets/DstBytes,
  Network* = their sum. `mac` -> DstMacAddr on inbound, SrcMacAddr on outbound (colon form).
  `rule` -> NetworkRuleName; resourceId / targetResourceID -> DvcId (AzureResourceId), Dvc =
  its last path segment. Unassigned VNet protocol numbers give NetworkProtocol NULL with the
  number in AdditionalFields.NetworkProtocolNumber.
* Traffic Analytics: one CSV row -> one row, as Sentinel's parsers do (the rule counts rows).
  Internet peers: when SrcIp/DestIp is empty the first entry of SrcPublicIps/DestPublicIps
  (`ip|started|ended|pktsS2D|pktsD2S|bytesS2D|bytesD2S ...`) gives the address, exactly like
  the Sentinel parsers; the full peer lists stay in AdditionalFields. EventCount =
  max(1, AllowedIn+DeniedIn+AllowedOut+DeniedOut flows) (Sentinel's formula; CompletedFlows is
  0 for denied flows). NTA bytes: BytesSrcToDest -> SrcBytes, BytesDestToSrc -> DstBytes
  (same for packets); legacy _CL: Inbound/OutboundBytes are from the VM's side and are swapped
  on inbound rows. TimeGenerated stays the table's TimeGenerated (what the Sentinel rule bins
  on); FlowStartTime/FlowEndTime -> EventStartTime/EventEndTime, NetworkDuration = their
  difference in ms. Rows without FlowType (or with a SubType other than FlowLog) are not flows:
  skipped. `-` and empty cells are NULL. Invalid synthetic addresses in the Sentinel samples
  (e.g. 33.778.136.777) are kept as the vendor wrote them.
* EventVendor/EventProduct: Microsoft / "Azure NSG flows" for every form (spec 1.6);
  EventOriginalType tells the forms apart (NetworkSecurityGroupFlowEvent, FlowLogFlowEvent,
  NTANetAnalytics, AzureNetworkAnalytics_CL).

Line numbers: for JSON lines and CSV, the 1-based file line of the record (every tuple of a
record gets its record's line). For a multi-line JSON *document* (pretty-printed PT1H.json),
`line` is the 1-based ordinal of the record in its `records` array (finding the text line of
each record would need a second, positional JSON parse). A document that is not valid JSON
becomes one quarantine entry whose line is the error's line and whose reason names the JSON
error position.

The JSON framing reader, `_records.json_records`, is shared with aws_vpc and azure_firewall.
"""

from __future__ import annotations

import re
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._records import json_record_batches, records_query
from ._sql import bag_sql, iana_sql, looks_ip
from .base import BATCH_LINES, Batch, Query, Source, read_head, read_lines


# ---- NSG / VNet flow tuples ----------------------------------------------------------------

_MAC = ("CASE WHEN regexp_full_match({m}, '[0-9A-Fa-f]{{12}}') "
        "THEN regexp_replace(upper({m}), '^(..)(..)(..)(..)(..)(..)$', '\\1:\\2:\\3:\\4:\\5:\\6') "
        "WHEN regexp_full_match({m}, '([0-9A-Fa-f]{{2}}-){{5}}[0-9A-Fa-f]{{2}}') "
        "THEN upper(replace({m}, '-', ':')) ELSE {m} END")


def _mac(expr: str) -> str:
    return _MAC.format(m=expr)


def _tuples_sql() -> str:
    """Per flow tuple (CTE `e`: one row per tuple with its record's fields): every derived value
    is computed once in `z`, then mapped and checked."""
    num = "CASE WHEN regexp_full_match(t[1], '[0-9]{1,15}') THEN CAST(t[1] AS BIGINT) END"
    ts = ("CASE WHEN tsn BETWEEN 100000000000 AND 253402300799999 THEN to_timestamp(tsn / 1000.0) "
          "WHEN tsn BETWEEN 0 AND 99999999999 THEN to_timestamp(tsn) END")
    proto = (f"CASE WHEN vnet THEN {iana_sql('t[6]')} "
             "ELSE CASE upper(t[6]) WHEN 'T' THEN 'TCP' WHEN 'U' THEN 'UDP' END END")
    action = ("CASE WHEN vnet THEN CASE WHEN upper(t[8]) = 'D' THEN 'Deny' "
              "WHEN upper(t[8]) IN ('B', 'C', 'E') THEN 'Allow' END "
              "ELSE CASE upper(t[8]) WHEN 'A' THEN 'Allow' WHEN 'D' THEN 'Deny' END END")
    c = {k: f"CASE WHEN n = 13 THEN NULLIF(t[{i}], '') END"
         for k, i in (("ps", 10), ("bs", 11), ("pd", 12), ("bd", 13))}
    bag = bag_sql([("FlowState", "fstate"), ("FlowEncryption", "CASE WHEN vnet THEN NULLIF(t[9], '') END"),
                   ("AclId", "acl"), ("NetworkProtocolNumber", "CASE WHEN vnet THEN t[6] END"),
                   ("FlowLogVersion", "ver")], text=True)
    error = (
        "CASE WHEN n NOT IN (8, 13) THEN 'flow tuple has ' || n || ' fields, expected 8 (v1) or 13 (v2, VNet)' "
        "WHEN tg IS NULL THEN 'flow tuple time is not epoch seconds or milliseconds: ' || coalesce(t[1], '') "
        f"WHEN NOT coalesce({looks_ip('t[2]')} AND {looks_ip('t[3]')}, false) "
        "  THEN 'flow tuple addresses are not IP addresses' "
        "WHEN vnet AND proto IS NULL AND TRY_CAST(t[6] AS INTEGER) IS NULL THEN 'protocol is not a number: ' || t[6] "
        "WHEN NOT vnet AND proto IS NULL THEN 'protocol is not T or U: ' || coalesce(t[6], '') "
        "WHEN dir IS NULL THEN 'flow direction is not I or O: ' || coalesce(t[7], '') "
        "WHEN action IS NULL THEN CASE WHEN vnet THEN 'flow state is not B, C, E or D: ' "
        "  ELSE 'flow decision is not A or D: ' END || coalesce(t[8], '') "
        "WHEN n = 13 AND NOT vnet AND fstate NOT IN ('B', 'C', 'E') THEN 'flow state is not B, C or E: ' || t[9] "
        "END")
    return f"""
    , x AS (
      SELECT *, string_split(tuple, ',') AS t FROM e),
    y AS (
      SELECT *, len(t) AS n, len(t) = 13 AND regexp_full_match(t[6], '[0-9]+') AS vnet, {num} AS tsn FROM x),
    z AS (
      SELECT *, {ts} AS tg,
        CASE WHEN vnet THEN upper(t[8]) WHEN n = 13 THEN upper(t[9]) END AS fstate,
        CASE upper(t[7]) WHEN 'I' THEN 'Inbound' WHEN 'O' THEN 'Outbound' END AS dir,
        {proto} AS proto, {action} AS action
      FROM y)
    SELECT _line, tuple AS _raw,
      tg AS TimeGenerated,
      t[2] AS SrcIpAddr, t[3] AS DstIpAddr,
      NULLIF(t[4], '') AS SrcPortNumber, NULLIF(t[5], '') AS DstPortNumber,
      proto AS NetworkProtocol,
      CASE WHEN contains(t[2], ':') THEN 'IPv6' ELSE 'IPv4' END AS NetworkProtocolVersion,
      dir AS NetworkDirection,
      action AS DvcAction,
      t[8] AS DvcOriginalAction,
      {c['ps']} AS SrcPackets, {c['bs']} AS SrcBytes, {c['pd']} AS DstPackets, {c['bd']} AS DstBytes,
      TRY_CAST({c['bs']} AS BIGINT) + TRY_CAST({c['bd']} AS BIGINT) AS NetworkBytes,
      TRY_CAST({c['ps']} AS BIGINT) + TRY_CAST({c['pd']} AS BIGINT) AS NetworkPackets,
      rule AS NetworkRuleName,
      CASE WHEN dir = 'Outbound' THEN mac END AS SrcMacAddr,
      CASE WHEN dir = 'Inbound' THEN mac END AS DstMacAddr,
      rid AS DvcId, CASE WHEN rid IS NOT NULL THEN 'AzureResourceId' END AS DvcIdType,
      dvc AS Dvc,
      'Flow' AS EventType, category AS EventOriginalType, ver AS EventProductVersion,
      {bag} AS AdditionalFields,
      {error} AS _error,
      false AS _skip
    FROM z
    """


_TUPLES_SQL = _tuples_sql()

# r0 and d are MATERIALIZED: each is read twice (the tuples, and the records that gave none),
# and inlined twice DuckDB would unnest every record's JSON twice (and could number the records
# differently the second time).
_RECORDS_SQL = """
WITH r0 AS MATERIALIZED (
  SELECT _line, _raw, row_number() OVER () AS rid_, rec,
    json_extract_string(rec, ['$.category', '$.resourceId', '$.targetResourceID', '$.targetResourceId',
                              '$.properties.Version', '$.flowLogVersion', '$.macAddress']) AS j
  FROM g),
r AS (
  SELECT _line, _raw, rid_, rec, j[1] AS category, coalesce(j[2], j[3], j[4]) AS rid, coalesce(j[5], j[6]) AS ver,
    j[7] AS rmac,
    CASE WHEN contains(rec, '"flows"') THEN
      coalesce(json_extract(rec, '$.properties.flows[*]'), []) ||
      coalesce(json_extract(rec, '$.flowRecords.flows[*]'), []) ELSE [] END AS l1
  FROM r0),
a AS (SELECT * EXCLUDE (l1, rec), unnest(l1) AS f1 FROM r),
b AS (SELECT *, json_extract_string(f1, '$.rule') AS rule1, json_extract_string(f1, '$.aclID') AS acl,
        coalesce(json_extract(f1, '$.flows[*]'), []) || coalesce(json_extract(f1, '$.flowGroups[*]'), []) AS l2
      FROM a),
c AS (SELECT * EXCLUDE (l2, f1), unnest(l2) AS f2 FROM b),
d AS MATERIALIZED (SELECT *, coalesce(json_extract_string(f2, '$.rule'), rule1) AS rule,
        {mac} AS mac, NULLIF(regexp_extract(rid, '[^/]+$'), '') AS dvc,
        coalesce(json_extract_string(f2, '$.flowTuples[*]'), []) AS l3 FROM c),
e AS (SELECT * EXCLUDE (l3, f2), unnest(l3) AS tuple FROM d)
""".replace("{mac}", _mac("coalesce(json_extract_string(f2, '$.mac'), rmac)"))


# The tuples, plus one counted skip per record that gave no tuple (not a flow record, or an
# empty interval), in one statement over the same records.
_FLOWS_SQL = (_RECORDS_SQL + _TUPLES_SQL + " UNION ALL BY NAME SELECT _line, _raw, true AS _skip FROM r0 "
              "WHERE rid_ NOT IN (SELECT rid_ FROM d WHERE len(l3) > 0)")


def _flows(recs: "pa.Table | Query") -> "pa.Table | Query":
    """Records (from json_record_batches) -> one row per flow tuple; records with no tuple
    skipped. One statement (mapped and conformed together)."""
    return records_query(recs, _FLOWS_SQL)


# ---- Traffic Analytics CSV -----------------------------------------------------------------

# logical field -> candidate column names (NTANetAnalytics first, then AzureNetworkAnalytics_CL)
_TA_COLUMNS = {
    "time": ["TimeGenerated"],
    "start": ["FlowStartTime", "FlowStartTime_t"],
    "end": ["FlowEndTime", "FlowEndTime_t"],
    "src": ["SrcIp", "SrcIP_s"],
    "dst": ["DestIp", "DestIP_s"],
    "srcpub": ["SrcPublicIps", "SrcPublicIPs_s"],
    "dstpub": ["DestPublicIps", "DestPublicIPs_s"],
    "sports": ["SrcPorts", "SrcPort_d"],
    "dport": ["DestPort", "DestPort_d"],
    "l4": ["L4Protocol", "L4Protocol_s"],
    "l7": ["L7Protocol", "L7Protocol_s"],
    "dir": ["FlowDirection", "FlowDirection_s"],
    "status": ["FlowStatus", "FlowStatus_s"],
    "rule": ["NsgRule", "AclRule", "NSGRule_s"],
    "dvc": ["NsgList", "AclGroup", "NSGList_s"],
    "mac": ["MacAddress", "MACAddress_s"],
    "srcvm": ["SrcVm", "VM1_s"],
    "dstvm": ["DestVm", "VM2_s"],
    "ain": ["AllowedInFlows", "AllowedInFlows_d"],
    "din": ["DeniedInFlows", "DeniedInFlows_d"],
    "aout": ["AllowedOutFlows", "AllowedOutFlows_d"],
    "dout": ["DeniedOutFlows", "DeniedOutFlows_d"],
    "b_s2d": ["BytesSrcToDest"], "b_d2s": ["BytesDestToSrc"],
    "p_s2d": ["PacketsSrcToDest"], "p_d2s": ["PacketsDestToSrc"],
    "inb": ["InboundBytes_d"], "outb": ["OutboundBytes_d"],
    "inp": ["InboundPackets_d"], "outp": ["OutboundPackets_d"],
    "flowtype": ["FlowType", "FlowType_s"],
    "subtype": ["SubType", "SubType_s"],
    "version": ["FaSchemaVersion", "FASchemaVersion_s"],
    "type": ["Type"],
    "uid": ["_ItemId"],
    "country": ["Country", "Country_s"],
    "target": ["TargetResourceId"],
    "conn": ["ConnectionName", "ConnectionName_s"],
    "enc": ["FlowEncryption"],
    "completed": ["CompletedFlows"],
}
_TA_REQUIRED = ("dir", "status", "dport")


def _csv_fields(expr: str) -> str:
    """SQL: split one CSV line into its unquoted fields (RFC 4180 quoting, no embedded newline)."""
    return (f"list_transform(regexp_extract_all({expr} || ',', '(\"(?:[^\"]|\"\")*\"|[^,]*),', 1), "
            "lambda x: CASE WHEN regexp_full_match(x, '\"(?s:.*)\"') "
            "THEN replace(x[2:-2], '\"\"', '\"') ELSE x END)")


def _ta_header(line: str) -> list[str]:
    import csv
    try:
        # Log Analytics exports suffix time columns with their zone: "TimeGenerated [UTC]"
        return [re.sub(r"\s*\[[^\]]*\]$", "", c.strip()) for c in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return []


def _is_ta_header(names: list[str]) -> bool:
    lower = {n.lower() for n in names}
    return all(any(c.lower() in lower for c in _TA_COLUMNS[k]) for k in _TA_REQUIRED)


def _ta_sql(names: list[str]) -> str:
    index = {}
    for i, n in enumerate(names, start=1):
        index.setdefault(n.lower(), i)

    def col(key: str) -> str:
        found = [index[c.lower()] for c in _TA_COLUMNS[key] if c.lower() in index]
        exprs = [f"NULLIF(NULLIF(trim(f[{i}]), ''), '-')" for i in found]
        if not exprs:
            return "NULL::VARCHAR"
        return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"

    num = lambda k: f"coalesce(TRY_CAST(TRY_CAST({col(k)} AS DOUBLE) AS BIGINT), 0)"  # noqa: E731
    legacy = "flowstatus_s" in index or "flowdirection_s" in index
    start, end = asim.time_sql(col("start")), asim.time_sql(col("end"))
    first_peer = "NULLIF(split_part(split_part(trim({}), ' ', 1), '|', 1), '')"
    if legacy:
        inbound = "dir = 'Inbound'"
        sb = f"CASE WHEN {inbound} THEN {col('inb')} ELSE {col('outb')} END"
        db = f"CASE WHEN {inbound} THEN {col('outb')} ELSE {col('inb')} END"
        sp = f"CASE WHEN {inbound} THEN {col('inp')} ELSE {col('outp')} END"
        dp = f"CASE WHEN {inbound} THEN {col('outp')} ELSE {col('inp')} END"
    else:
        sb, db, sp, dp = col("b_s2d"), col("b_d2s"), col("p_s2d"), col("p_d2s")
    original_type = f"coalesce({col('type')}, '{'AzureNetworkAnalytics_CL' if legacy else 'NTANetAnalytics'}')"
    bag = bag_sql([("FlowType", col("flowtype")), ("Country", col("country")),
                   ("TargetResourceId", col("target")), ("ConnectionName", col("conn")),
                   ("FlowEncryption", col("enc")), ("CompletedFlows", col("completed")),
                   ("SrcPublicIps", col("srcpub")), ("DestPublicIps", col("dstpub")),
                   ("SrcVm", col("srcvm")), ("DestVm", col("dstvm"))], text=True)
    vm = "CASE WHEN {0} LIKE '%/%' THEN NULLIF(split_part({0}, '/', 2), '') ELSE {0} END"
    return f"""
    WITH s AS (SELECT _line, _raw, {_csv_fields('text')} AS f FROM b),
    v AS (SELECT *, CASE upper({col('dir')}) WHEN 'I' THEN 'Inbound' WHEN 'INBOUND' THEN 'Inbound'
                 WHEN 'O' THEN 'Outbound' WHEN 'OUTBOUND' THEN 'Outbound' ELSE {col('dir')} END AS dir
          FROM s)
    SELECT _line, _raw,
      {col('time')} AS TimeGenerated,
      {col('start')} AS EventStartTime, {col('end')} AS EventEndTime,
      CASE WHEN date_diff('millisecond', {start}, {end}) >= 0
           THEN date_diff('millisecond', {start}, {end}) END AS NetworkDuration,
      coalesce({col('src')}, {first_peer.format(col('srcpub'))}) AS SrcIpAddr,
      coalesce({col('dst')}, {first_peer.format(col('dstpub'))}) AS DstIpAddr,
      CASE WHEN regexp_full_match(split_part(trim({col('sports')}), ' ', 1), '[0-9]+(\\.0*)?')
           THEN split_part(trim({col('sports')}), ' ', 1) END AS SrcPortNumber,
      {col('dport')} AS DstPortNumber,
      CASE upper({col('l4')}) WHEN 'T' THEN 'TCP' WHEN 'U' THEN 'UDP' ELSE {col('l4')} END AS NetworkProtocol,
      NULLIF(upper({col('l7')}), 'UNKNOWN') AS NetworkApplicationProtocol,
      dir AS NetworkDirection,
      CASE upper({col('status')}) WHEN 'A' THEN 'Allow' WHEN 'ALLOWED' THEN 'Allow'
           WHEN 'D' THEN 'Deny' WHEN 'DENIED' THEN 'Deny' ELSE {col('status')} END AS DvcAction,
      {col('status')} AS DvcOriginalAction,
      {col('rule')} AS NetworkRuleName,
      {col('dvc')} AS Dvc,
      CASE WHEN lower({col('dvc')}) LIKE '/subscriptions/%' THEN {col('dvc')} END AS DvcId,
      CASE WHEN lower({col('dvc')}) LIKE '/subscriptions/%' THEN 'AzureResourceId' END AS DvcIdType,
      CASE WHEN dir = 'Outbound' THEN {_mac(col('mac'))} END AS SrcMacAddr,
      CASE WHEN dir = 'Inbound' THEN {_mac(col('mac'))} END AS DstMacAddr,
      {vm.format(col('srcvm'))} AS SrcHostname,
      {vm.format(col('dstvm'))} AS DstHostname,
      {sb} AS SrcBytes, {db} AS DstBytes, {sp} AS SrcPackets, {dp} AS DstPackets,
      TRY_CAST(TRY_CAST({sb} AS DOUBLE) AS BIGINT) + TRY_CAST(TRY_CAST({db} AS DOUBLE) AS BIGINT) AS NetworkBytes,
      TRY_CAST(TRY_CAST({sp} AS DOUBLE) AS BIGINT) + TRY_CAST(TRY_CAST({dp} AS DOUBLE) AS BIGINT) AS NetworkPackets,
      greatest(1, {num('ain')} + {num('din')} + {num('aout')} + {num('dout')}) AS EventCount,
      'Flow' AS EventType,
      {original_type} AS EventOriginalType,
      {col('uid')} AS EventOriginalUid,
      {col('version')} AS EventProductVersion,
      {bag} AS AdditionalFields,
      CASE WHEN len(f) <> {len(names)} THEN 'expected {len(names)} CSV fields, got ' || len(f) END AS _error,
      len(f) = {len(names)} AND ({col('flowtype')} IS NULL
        OR coalesce(lower({col('subtype')}), 'flowlog') <> 'flowlog') AS _skip
    FROM v
    """


# ---- the source ------------------------------------------------------------------------------

_JSON_MARKERS = re.compile(rb'"flowTuples"|"flowRecords"|NetworkSecurityGroupFlowEvent|FlowLogFlowEvent')


class AzureNsg(Source):
    reads_json_documents = True  # (reads pretty JSON documents itself: json_records)

    def sniff(self, head: bytes, path: str) -> bool:
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if text[:1] in (b"{", b"["):
            return bool(_JSON_MARKERS.search(head))
        first = text.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        return "," in first and _is_ta_header(_ta_header(first))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        head = read_head(path).lstrip(b"\xef\xbb\xbf").lstrip()
        if head[:1] in (b"{", b"["):
            for recs in json_record_batches(path, batch_lines, ("records",)):
                yield self.finish(_flows(recs), path)
            return
        yield from self._csv(path, batch_lines)

    def _csv(self, path: str, batch_lines: int) -> Iterator[Batch]:
        header: list[str] | None = None
        header_line = ""
        sql = ""
        for lines, numbers in read_lines(path, batch_lines):
            if header is None:
                header_line = lines[0].as_py()
                header = _ta_header(header_line)
                if not _is_ta_header(header):
                    bad = pa.table({"_line": numbers, "_raw": lines,
                                    "_error": pa.repeat(pa.scalar("no Traffic Analytics CSV header"),
                                                        len(lines))})
                    yield self.finish(bad, path)
                    header = []
                    continue
                sql = _ta_sql(header)
                lines, numbers = lines.slice(1), numbers.slice(1)
            if not header:
                bad = pa.table({"_line": numbers, "_raw": lines,
                                "_error": pa.repeat(pa.scalar("no Traffic Analytics CSV header"), len(lines))})
                yield self.finish(bad, path)
                continue
            # repeated header lines (concatenated exports) are not records
            keep = pc.not_equal(lines, pa.scalar(header_line))
            lines, numbers = lines.filter(keep), numbers.filter(keep)
            if not len(lines):
                continue
            batch = pa.table({"text": lines, "_line": numbers, "_raw": lines})
            yield self.finish(Query(sql, {"b": batch}), path)


SOURCE = AzureNsg(
    name="azure-nsg", vendor="Microsoft", product="Azure NSG flows", priority=10,
    forms=("NSG flow log v1/v2 JSON ({\"records\":[...]} blob, single record, or JSON lines)",
           "VNet flow log JSON (FlowLogFlowEvent, ms tuples, state D = denied)",
           "Traffic Analytics CSV export (NTANetAnalytics, AzureNetworkAnalytics_CL)"),
)
