"""The ASIM Network Session schema as portlens keeps it: columns, Arrow types, vocabularies,
and the one function (`conform`) every source uses to turn parsed columns into valid rows.

Values follow ASIM 0.2.6 exactly (see ../shared/spec/asim-network-session.md). Anything a
vendor writes outside the vocabularies is either mapped (case, aliases, protocol numbers) or
the row is rejected with a reason and goes to quarantine; nothing is silently dropped.
"""

from __future__ import annotations

import contextvars
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


TIMESTAMP = pa.timestamp("us", tz="UTC")
PORT = pa.int32()
COUNT = pa.int64()

# Column order is the order of the store's sessions table and of every normalized batch.
COLUMNS: dict[str, pa.DataType] = {
    "TimeGenerated": TIMESTAMP,
    "EventStartTime": TIMESTAMP,
    "EventEndTime": TIMESTAMP,
    "EventCount": COUNT,
    "EventType": pa.string(),
    "EventSubType": pa.string(),
    "EventResult": pa.string(),
    "EventResultDetails": pa.string(),
    "EventSeverity": pa.string(),
    "EventOriginalType": pa.string(),
    "EventOriginalUid": pa.string(),
    "EventOriginalResultDetails": pa.string(),
    "EventVendor": pa.string(),
    "EventProduct": pa.string(),
    "EventProductVersion": pa.string(),
    "Dvc": pa.string(),
    "DvcIpAddr": pa.string(),
    "DvcHostname": pa.string(),
    "DvcId": pa.string(),
    "DvcIdType": pa.string(),
    "DvcAction": pa.string(),
    "DvcOriginalAction": pa.string(),
    "DvcInboundInterface": pa.string(),
    "DvcOutboundInterface": pa.string(),
    "NetworkProtocol": pa.string(),
    "NetworkProtocolVersion": pa.string(),
    "NetworkApplicationProtocol": pa.string(),
    "NetworkDirection": pa.string(),
    "NetworkDuration": pa.int64(),
    "NetworkBytes": pa.int64(),
    "NetworkPackets": pa.int64(),
    "SrcBytes": pa.int64(),
    "DstBytes": pa.int64(),
    "SrcPackets": pa.int64(),
    "DstPackets": pa.int64(),
    "NetworkRuleName": pa.string(),
    "NetworkSessionId": pa.string(),
    "NetworkIcmpType": pa.string(),
    "NetworkIcmpCode": pa.int32(),
    "SrcIpAddr": pa.string(),
    "SrcPortNumber": PORT,
    "SrcHostname": pa.string(),
    "SrcUsername": pa.string(),
    "SrcAppName": pa.string(),
    "SrcMacAddr": pa.string(),
    "SrcZone": pa.string(),
    "SrcNatIpAddr": pa.string(),
    "SrcNatPortNumber": PORT,
    "DstIpAddr": pa.string(),
    "DstPortNumber": PORT,
    "DstHostname": pa.string(),
    "DstUsername": pa.string(),
    "DstAppName": pa.string(),
    "DstMacAddr": pa.string(),
    "DstZone": pa.string(),
    "DstNatIpAddr": pa.string(),
    "DstNatPortNumber": PORT,
    # Vendor fields with no ASIM column, as a JSON object string (ASIM's dynamic bag).
    "AdditionalFields": pa.string(),
}
SCHEMA = pa.schema([pa.field(name, typ) for name, typ in COLUMNS.items()])
TIME_COLUMNS = [n for n, t in COLUMNS.items() if t == TIMESTAMP]
PORT_COLUMNS = ["SrcPortNumber", "DstPortNumber", "SrcNatPortNumber", "DstNatPortNumber"]

# ---- vocabularies --------------------------------------------------------------------------

DVC_ACTIONS = ("Allow", "Deny", "Drop", "Drop ICMP", "Reset", "Reset Source",
               "Reset Destination", "Encrypt", "Decrypt", "VPNroute")
NETWORK_DIRECTIONS = ("Inbound", "Outbound", "Local", "External", "Listen", "NA")
EVENT_RESULTS = ("Success", "Partial", "Failure", "NA")
EVENT_TYPES = ("NetworkSession", "Flow", "EndpointNetworkSession", "L2NetworkSession", "IDS")
EVENT_SEVERITIES = ("Informational", "Low", "Medium", "High")
EVENT_RESULT_DETAILS = ("Failover", "Invalid TCP", "Invalid Tunnel", "Maximum Retry", "Reset",
                        "Routing issue", "Simulation", "Terminated", "Timeout",
                        "Transient error", "Unknown", "NA")
PROTOCOL_VERSIONS = ("IPv4", "IPv6")
# Actions whose EventResult is Failure when the source gives no result (ASIM rule).
FAILING_ACTIONS = ("Deny", "Drop", "Drop ICMP", "Reset", "Reset Source", "Reset Destination")

# IANA protocol numbers -> keyword, upper-cased (ASIM asks for upper case). Numbers IANA leaves
# unassigned map to nothing; the raw number is then kept by the source in AdditionalFields.
_IANA = (
    "HOPOPT ICMP IGMP GGP IPV4 ST TCP CBT EGP IGP BBN-RCC-MON NVP-II PUP ARGUS EMCON XNET CHAOS "
    "UDP MUX DCN-MEAS HMP PRM XNS-IDP TRUNK-1 TRUNK-2 LEAF-1 LEAF-2 RDP IRTP ISO-TP4 NETBLT "
    "MFE-NSP MERIT-INP DCCP 3PC IDPR XTP DDP IDPR-CMTP TP++ IL IPV6 SDRP IPV6-ROUTE IPV6-FRAG "
    "IDRP RSVP GRE DSR BNA ESP AH I-NLSP SWIPE NARP MOBILE TLSP SKIP IPV6-ICMP IPV6-NONXT "
    "IPV6-OPTS - CFTP - SAT-EXPAK KRYPTOLAN RVD IPPC - SAT-MON VISA IPCV CPNX CPHB WSN PVP "
    "BR-SAT-MON SUN-ND WB-MON WB-EXPAK ISO-IP VMTP SECURE-VMTP VINES TTP NSFNET-IGP DGP TCF "
    "EIGRP OSPFIGP SPRITE-RPC LARP MTP AX.25 IPIP MICP SCC-SP ETHERIP ENCAP - GMTP IFMP PNNI PIM "
    "ARIS SCPS QNX A/N IPCOMP SNP COMPAQ-PEER IPX-IN-IP VRRP PGM - L2TP DDX IATP STP SRP UTI SMP "
    "SM PTP ISIS FIRE CRTP CRUDP SSCOPMCE IPLT SPS PIPE SCTP FC RSVP-E2E-IGNORE MOBILITY-HEADER "
    "UDPLITE MPLS-IN-IP MANET HIP SHIM6 WESP ROHC ETHERNET"
).split()
PROTOCOL_BY_NUMBER: dict[int, str] = {i: n for i, n in enumerate(_IANA) if n != "-"}
PROTOCOL_BY_NUMBER[255] = "RESERVED"
PROTOCOLS = tuple(sorted(set(PROTOCOL_BY_NUMBER.values())))

# Vendor spellings seen in the wild (spec 1.5 and part 3) -> ASIM keyword.
PROTOCOL_ALIASES = {
    "TCP/IP": "TCP", "TCPV4": "TCP", "TCPV6": "TCP", "UDP/IP": "UDP", "UDPV4": "UDP",
    "UDPV6": "UDP", "ICMP6": "IPV6-ICMP", "ICMPV6": "IPV6-ICMP", "IPV6ICMP": "IPV6-ICMP",
    "ICMPV4": "ICMP", "OSPF": "OSPFIGP", "IP": "IPV4",
}


def _canonical_map(values) -> dict[str, str]:
    """Lower-case spelling -> canonical spelling, so vocabularies match case-insensitively."""
    return {v.lower(): v for v in values}


_VOCABULARIES = {
    "DvcAction": _canonical_map(DVC_ACTIONS),
    "NetworkDirection": _canonical_map(NETWORK_DIRECTIONS),
    "EventResult": _canonical_map(EVENT_RESULTS),
    "EventType": _canonical_map(EVENT_TYPES),
    "EventSeverity": _canonical_map(EVENT_SEVERITIES),
    "EventResultDetails": _canonical_map(EVENT_RESULT_DETAILS),
    "NetworkProtocolVersion": _canonical_map(PROTOCOL_VERSIONS),
}

# ---- compute engine ------------------------------------------------------------------------

_local = threading.local()


def sql() -> duckdb.DuckDBPyConnection:
    """A per-thread in-memory DuckDB used as a vectorized compute engine (UTC clock)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 2")
        _local.con = con
    return con


# DuckDB's relation API (con.sql(text).to_arrow_table()) plans a statement twice: once to make
# the relation, once to run it. Our statements are long (hundreds of expressions: the conform
# step alone plans in about 40 ms), so running them through execute() saves that much per batch,
# more than the extra copy of the result that DuckDB warns execute() makes (measured on 100k-line
# batches). The warning is about exactly that trade, so it is silenced for those calls.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result makes an extra copy",
                        category=UserWarning)


def arrow_of(con: duckdb.DuckDBPyConnection, text: str) -> pa.Table:
    """Run one long SELECT and fetch its result as Arrow, planning it once (see above)."""
    return con.execute(text).to_arrow_table()


def parallel(table: pa.Table, parts: int = 8, least: int = 4096) -> pa.Table:
    """The table as up to `parts` record batches of at least `least` rows (slices, no copy).
    DuckDB scans an Arrow input one record batch per thread: a batch of lines handed over as
    one chunk is worked on by one thread (measured: JSON lines ingest 21% less wall time once
    their input is split). Every Arrow input of a statement goes through here."""
    if not isinstance(table, pa.Table):
        return table
    size = max(least, -(-table.num_rows // parts))
    return table if table.num_rows <= size else pa.Table.from_batches(table.to_batches(max_chunksize=size))


def query(text: str, **tables: pa.Table) -> pa.Table:
    """Run SQL on the compute engine over the given Arrow tables (by name); an Arrow table."""
    con = sql()
    for name, table in tables.items():
        con.register(name, parallel(table))
    try:
        return arrow_of(con, text)
    finally:
        for name in tables:
            con.unregister(name)


# Timestamp layouts accepted besides ISO-8601: Sentinel/Excel CSV exports in US locale.
EXTRA_TIME_FORMATS = [
    "%m/%d/%Y %I:%M:%S.%g %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S",
    "%m-%d-%Y  %H:%M:%S", "%m-%d-%Y %H:%M:%S", "%m/%d/%Y %H:%M",
]


def time_sql(expr: str) -> str:
    """SQL that parses a text timestamp (ISO-8601 with or without zone, or a US-locale export
    layout) into a UTC TIMESTAMPTZ; NULL when it cannot be parsed."""
    formats = ", ".join(f"'{f}'" for f in EXTRA_TIME_FORMATS)
    return (f"coalesce(TRY_CAST({expr} AS TIMESTAMPTZ), "
            f"TRY_CAST(try_strptime({expr}, [{formats}]) AS TIMESTAMPTZ))")


# The protocols most sessions use, by IANA number: SQL mappings compare these first.
COMMON_PROTOCOLS = {"6": "TCP", "17": "UDP", "1": "ICMP", "58": "IPV6-ICMP", "47": "GRE", "50": "ESP"}


def protocol_sql(expr: str) -> str:
    """SQL mapping a vendor protocol value (number or name, any case) to the ASIM keyword.
    Unknown names and unassigned numbers give NULL. The common protocols are settled by plain
    comparisons first: the full lookup (`protocol_lookup_sql`) costs about 3 us a row."""
    text = f"CAST({expr} AS VARCHAR)"
    numbers = " ".join(f"WHEN '{n}' THEN '{p}'" for n, p in COMMON_PROTOCOLS.items())
    names = ", ".join(f"'{p}'" for p in COMMON_PROTOCOLS.values())
    return (f"CASE {text} {numbers} ELSE CASE WHEN upper({text}) IN ({names}) "
            f"THEN upper({text}) ELSE {protocol_lookup_sql(expr)} END END")


def protocol_lookup_sql(expr: str) -> str:
    """protocol_sql's full lookup: IANA numbers, keywords and aliases."""
    numbers = ", ".join(f"{k}: '{v}'" for k, v in PROTOCOL_BY_NUMBER.items())
    aliases = ", ".join(f"'{k}': '{v}'" for k, v in PROTOCOL_ALIASES.items())
    names = ", ".join(f"'{p}'" for p in PROTOCOLS)
    up = f"upper(trim(CAST({expr} AS VARCHAR)))"
    return (f"CASE WHEN TRY_CAST({expr} AS INTEGER) IS NOT NULL "
            f"THEN MAP {{{numbers}}}[TRY_CAST({expr} AS INTEGER)] "
            f"WHEN {up} IN ({names}) THEN {up} "
            f"ELSE MAP {{{aliases}}}[{up}] END")


# ---- time sanity ---------------------------------------------------------------------------
# A record stamped far in the future (a device with a broken clock, a forged line) would
# otherwise become "the newest data" that retention and the default as-of count back from:
# one such row could empty the store. Records outside a plausible range are quarantined.

@dataclass(frozen=True)
class TimeBounds:
    """Plausible record times: not before `not_before`, not more than `max_future` after the
    wall clock of the process doing the ingest."""
    not_before: datetime = datetime(1990, 1, 1, tzinfo=timezone.utc)
    max_future: timedelta = timedelta(days=1)

    def window(self) -> tuple[datetime, datetime]:
        return self.not_before, datetime.now(timezone.utc) + self.max_future

    def describe(self) -> str:
        hours = self.max_future.total_seconds() / 3600
        return (f"outside the plausible range (not before {self.not_before:%Y-%m-%d}, "
                f"at most {hours:g} h after the ingest clock)")


_time_bounds: contextvars.ContextVar[TimeBounds] = contextvars.ContextVar("time_bounds", default=TimeBounds())


def time_bounds() -> TimeBounds:
    return _time_bounds.get()


@contextmanager
def plausible_times(bounds: TimeBounds):
    """Use `bounds` for every record conformed inside the block (ingest options)."""
    token = _time_bounds.set(bounds)
    try:
        yield bounds
    finally:
        _time_bounds.reset(token)


def time_range_sql(expr: str) -> str:
    """SQL true when the TIMESTAMPTZ `expr` is outside the plausible range."""
    low, high = time_bounds().window()
    return (f"(({expr}) < TIMESTAMPTZ '{low.isoformat()}' OR ({expr}) > TIMESTAMPTZ '{high.isoformat()}')")


# ---- conform: the one validation function --------------------------------------------------

@dataclass
class Conformed:
    """Valid ASIM rows plus, for each rejected row, its index in the input and the reason."""
    table: pa.Table
    rejected_index: pa.Array  # int64 positions into the input batch
    rejected_reason: pa.Array  # string


def empty_table() -> pa.Table:
    return SCHEMA.empty_table()


def conform(columns: pa.Table | dict, *, defaults: dict | None = None,
            strict_vocabulary: bool = True) -> Conformed:
    """Turn a batch of parsed columns (any subset of COLUMNS, already of the right type or text)
    into valid ASIM rows: `conform_sql` run over an Arrow table (see there for the rules)."""
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    n = table.num_rows
    if n == 0:
        return Conformed(empty_table(), pa.array([], pa.int64()), pa.array([], pa.string()))
    table = table.append_column("_i", pa.array(np.arange(n, dtype=np.int64)))
    out = query(conform_sql("_conform_in", arrow_kinds(table.schema), defaults,
                            strict_vocabulary=strict_vocabulary), _conform_in=table)
    bad = pc.is_valid(out["_reason"])
    rejected = out.filter(bad)
    return Conformed(out.filter(pc.invert(bad)).select(list(COLUMNS)).cast(SCHEMA),
                     rejected["_i"].combine_chunks(), rejected["_reason"].combine_chunks())


def arrow_kinds(schema: pa.Schema) -> dict[str, str]:
    """Column name -> 'int', 'time' or 'text' (how conform_sql reads it) for an Arrow schema."""
    return {f.name: "int" if pa.types.is_integer(f.type) else
            "time" if pa.types.is_timestamp(f.type) else "text" for f in schema}


def sql_kinds(described: list[tuple[str, str]]) -> dict[str, str]:
    """The same from DuckDB (name, type) pairs (DESCRIBE)."""
    ints = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT")
    return {name: "int" if typ in ints else "time" if typ.startswith("TIMESTAMP") else "text"
            for name, typ in described}


# Whitespace as Python's str.strip() and Arrow's utf8_trim_whitespace see it (SQL's trim(x)
# alone strips spaces only).
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


Q, EMPTY = '"', "''"  # a double quote and SQL's empty string, for f-strings


def _trim(expr: str) -> str:
    """SQL trimming `expr` of _WHITESPACE. A trim with a character set costs ten times a plain
    one, so it runs only when the first or last character is not printable ASCII (rare)."""
    return (f"(CASE WHEN ascii({expr}) BETWEEN 33 AND 126 AND ord({expr}[-1]) BETWEEN 33 AND 126 "
            f"THEN {expr} ELSE trim({expr}, {_literal(_WHITESPACE)}) END)")


# ---- address fields ------------------------------------------------------------------------
# ASIM's "IP address" type is an IPv4 address in dotted-decimal form or an IPv6 address (full
# or short form). SrcIpAddr and DstIpAddr are recommended fields, not mandatory ones: a record
# without them is still a valid session, and the rule counts it. So a value that is not an
# address does not reject the record; it leaves the column (which then is NULL) and is kept in
# AdditionalFields as InvalidSrcIpAddr / InvalidDstIpAddr. (Such values are also how log data
# would smuggle terminal escapes into the talkers an alert names.)
ADDRESS_COLUMNS = ("SrcIpAddr", "DstIpAddr")
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"{_OCTET}(\.{_OCTET}){{3}}"
_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = f"({_H16}:{_H16}|{IPV4_PATTERN})"
# RFC 3986's IPv6address, plus an RFC 6874 zone (fe80::1%eth0)
IPV6_PATTERN = "(" + "|".join([
    f"({_H16}:){{6}}{_LS32}",
    f"::({_H16}:){{5}}{_LS32}",
    f"({_H16})?::({_H16}:){{4}}{_LS32}",
    f"(({_H16}:){{0,1}}{_H16})?::({_H16}:){{3}}{_LS32}",
    f"(({_H16}:){{0,2}}{_H16})?::({_H16}:){{2}}{_LS32}",
    f"(({_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    f"(({_H16}:){{0,4}}{_H16})?::{_LS32}",
    f"(({_H16}:){{0,5}}{_H16})?::{_H16}",
    f"(({_H16}:){{0,6}}{_H16})?::",
]) + ")(%[0-9A-Za-z._~-]+)?"


def is_address_sql(expr: str) -> str:
    """SQL true when the trimmed text `expr` is an IPv4 or IPv6 address (NULL for NULL); the
    IPv6 pattern runs only on values with a colon."""
    return (f"(CASE WHEN {expr} IS NULL THEN NULL WHEN regexp_full_match({expr}, {_literal(IPV4_PATTERN)}) "
            f"THEN true WHEN contains({expr}, ':') THEN regexp_full_match({expr}, {_literal(IPV6_PATTERN)}) "
            f"ELSE false END)")


def _additional_fields_sql() -> str:
    """AdditionalFields with the address values that were not addresses added (see above); a
    text that is not a JSON object is kept under AdditionalFieldsText."""
    bag = '"AdditionalFields"'
    base = (f"CASE WHEN {bag} IS NULL THEN '{{}}' WHEN starts_with({bag}, '{{') AND json_valid({bag}) "
            f"THEN {bag} ELSE json_object('AdditionalFieldsText', {bag})::VARCHAR END")
    invalid = ", ".join(f"'Invalid{c}', CASE WHEN NOT \"_ok_{c}\" THEN \"{c}\" END" for c in ADDRESS_COLUMNS)
    flagged = " OR ".join(f'NOT coalesce("_ok_{c}", true)' for c in ADDRESS_COLUMNS)
    return (f"CASE WHEN {flagged} THEN json_merge_patch({base}, json_object({invalid}))::VARCHAR "
            f"ELSE {bag} END")


def conform_sql(relation: str, kinds: dict[str, str], defaults: dict | None = None, *,
                strict_vocabulary: bool = True, bounds: tuple[datetime, datetime] | None = None,
                outputs: frozenset | None = None) -> str:
    """One SELECT over `relation` that turns parsed columns into valid ASIM rows.

    `relation` has ASIM-named columns (any subset, typed or text; `kinds` says which: see
    `arrow_kinds`/`sql_kinds`) and optional bookkeeping columns: `_skip` (not a session),
    `_error` (the parser's reason a record is malformed), `_line`, `_raw`, `_i` (passed through).
    The result has every ASIM column, typed, plus `_skip` (never NULL) and `_reason` (NULL for
    a valid row and for a skipped one). The rules:
    - text is trimmed, blank is NULL; timestamps and integers are parsed from text;
    - vocabulary columns are mapped case-insensitively to their canonical spelling, protocol
      numbers and aliases to IANA keywords;
    - SrcIpAddr/DstIpAddr must be IPv4 or IPv6 addresses; another value is moved into
      AdditionalFields (see ADDRESS_COLUMNS);
    - ASIM derivations: EventStartTime/EventEndTime fall back to TimeGenerated (and back),
      EventCount to 1, EventResult from DvcAction, EventSeverity from the result;
    - a row that breaks the schema (no time, unparseable value, a time outside the plausible
      range `bounds` (default: time_bounds().window()), port outside 0-65535, a value outside
      a vocabulary) gets the first reason found; a parser `_error` comes first.

    strict_vocabulary=False is for rows that are already ASIM (the native source): vocabulary
    columns are kept verbatim (only an empty value becomes null) and never reject a row,
    because the KQL rule counts whatever the table holds ("tcp" and "TCP" are two series,
    "Allowed" is a series of its own). `portlens status` lists such values as schema
    warnings.
    The statement depends only on the columns and defaults, so a source builds it once per
    file, and it runs wherever the rows are.
    outputs: yield only these ASIM columns (the rows kept and rejected are the same; a smaller
    statement is quicker to plan, about 30 ms a batch with every column).
    """
    defaults = defaults or {}
    present = {n: k for n, k in kinds.items() if n in COLUMNS}
    earliest, latest = bounds or time_bounds().window()
    out_of_range = time_bounds().describe()
    vocabularies = _VOCABULARY_SQL if strict_vocabulary else {}
    first, second, checks = [], [], []  # text clean-up, parsing, (bad condition, reason)
    for name, typ in COLUMNS.items():
        q = f'"{name}"'
        if name in _VOCABULARY_SQL and not strict_vocabulary:
            source = f"NULLIF(CAST({q} AS VARCHAR), '')" if name in present else f"{_sql_value(defaults.get(name))}::VARCHAR"
            first.append(f"{source} AS {q}")
            second.append(q)
        elif name in vocabularies:
            if name in present:
                first.append(f'{_trim(f"CAST({q} AS VARCHAR)")} AS "_v_{name}"')
                mapped = _VOCABULARY_SQL[name](f"_v_{name}")
                second.append(f'{mapped} AS {q}')
                second.append(f'"_v_{name}"')
            else:
                value = defaults.get(name)
                value = None if value is None else _VALUE_MAPS[name](str(value))
                first.append(f"{_sql_value(value)}::VARCHAR AS {q}")
                second.append(q)
        elif typ == pa.string():
            if name in present:
                first.append(f"NULLIF({_trim(f'CAST({q} AS VARCHAR)')}, '') AS {q}")
            else:
                first.append(f"{_sql_value(defaults.get(name))}::VARCHAR AS {q}")
            second.append(q)
            if name in ADDRESS_COLUMNS:
                second.append(f'{is_address_sql(q)} AS "_ok_{name}"')
        else:
            kind = present.get(name)
            src = q if kind else (_literal(defaults[name]) if defaults.get(name) is not None else None)
            if src is None:
                first.append(f"NULL::{_SQL_TYPES[typ]} AS {q}")
                second.append(q if typ == TIMESTAMP else f'{q} AS "_n_{name}"')
                continue
            text = f"NULLIF(trim(CAST({src} AS VARCHAR)), '')"
            if typ == TIMESTAMP:
                if kind == "time":
                    first.append(f"CAST({src} AS TIMESTAMPTZ) AS {q}")
                    second.append(q)
                else:
                    first.append(f'{text} AS "_x_{name}"')
                    second.append(f'{time_sql(Q + "_x_" + name + Q)} AS {q}')
                    second.append(f'"_x_{name}"')
                    checks.append((f'"_x_{name}" IS NOT NULL AND {q} IS NULL', f"{name}: not a timestamp"))
                checks.append((f"({q} < TIMESTAMPTZ '{earliest.isoformat()}' OR {q} > TIMESTAMPTZ '{latest.isoformat()}')",
                               f"{name}: {out_of_range}"))
                continue
            if kind == "int":
                first.append(f'CAST({src} AS BIGINT) AS "_n_{name}"')
                second.append(f'"_n_{name}"')
            else:
                first.append(f'{text} AS "_x_{name}"')
                second.append(f'TRY_CAST(TRY_CAST("_x_{name}" AS DOUBLE) AS BIGINT) AS "_n_{name}"')
                second.append(f'"_x_{name}"')
                checks.append((f'"_x_{name}" IS NOT NULL AND "_n_{name}" IS NULL', f"{name}: not an integer"))
            low, high, what = _INT_RANGES.get(name, (0, 2**63 - 1, "negative"))
            checks.append((f'"_n_{name}" NOT BETWEEN {low} AND {high}', f"{name}: {what}"))
    vocabulary_checks = [(f'"_v_{name}" <> {EMPTY} AND "{name}" IS NULL', _VALUE_ERRORS[name])
                         for name in vocabularies if name in present]
    checks = vocabulary_checks + checks

    skip = "coalesce(CAST(_skip AS BOOLEAN), false)" if "_skip" in kinds else "false"
    error = "CAST(_error AS VARCHAR)" if "_error" in kinds else "NULL::VARCHAR"
    carried = [c for c in ("_line", "_raw", "_i") if c in kinds]
    tg = 'coalesce("TimeGenerated", "EventStartTime", "EventEndTime")'
    start = f'coalesce("EventStartTime", {tg})'
    result = ('coalesce("EventResult", CASE WHEN "DvcAction" IS NULL THEN NULL WHEN "DvcAction" IN ('
              + ", ".join(_literal(a) for a in FAILING_ACTIONS) + ") THEN 'Failure' ELSE 'Success' END)")
    derived = {
        "TimeGenerated": tg, "EventStartTime": start,
        "EventEndTime": f'coalesce("EventEndTime", {start})',
        "EventCount": 'coalesce("_n_EventCount", 1)',
        "EventType": "coalesce(\"EventType\", 'NetworkSession')",
        "EventResult": result,
        "EventSeverity": (f"coalesce(\"EventSeverity\", CASE WHEN {result} IS NULL THEN NULL "
                          f"WHEN {result} = 'Failure' THEN 'Low' ELSE 'Informational' END)"),
    }
    derived["AdditionalFields"] = _additional_fields_sql()
    for name in ADDRESS_COLUMNS:
        derived[name] = f'CASE WHEN "_ok_{name}" THEN "{name}" END'
    final = []
    for name, typ in COLUMNS.items():
        if outputs is not None and name not in outputs:
            continue
        if name in derived:
            expr = derived[name]
        elif typ == TIMESTAMP or typ == pa.string():
            expr = f'"{name}"'
        else:
            expr = f'TRY_CAST("_n_{name}" AS {_SQL_TYPES[typ]})'  # range checked
        final.append(f'{expr} AS "{name}"')
    reason = ("CASE WHEN _skip THEN NULL WHEN _error IS NOT NULL THEN _error "
              + " ".join(f"WHEN {c} THEN {_literal(r)}" for c, r in checks)
              + f" WHEN {tg} IS NULL THEN 'TimeGenerated: missing' END")
    keep = "".join(f", {c}" for c in carried)
    return (f"SELECT {', '.join(final)}, _skip, {reason} AS _reason{keep} FROM ("
            f"SELECT {', '.join(second)}, _skip, _error{keep} FROM ("
            f"SELECT {', '.join(first)}, {skip} AS _skip, {error} AS _error{keep} FROM {relation}))")


def _sql_value(value) -> str:
    return "NULL" if value is None else _literal(str(value))


def _protocol_sql(column: str) -> str:
    """SQL mapping a trimmed text column to an IANA keyword, as `protocol_name` does."""
    v = f'"{column}"'
    numbers = ", ".join(f"{k}: '{p}'" for k, p in PROTOCOL_BY_NUMBER.items())
    names = ", ".join(f"'{k}': '{p}'" for k, p in {**{p: p for p in PROTOCOLS}, **PROTOCOL_ALIASES}.items())
    full = (f"CASE WHEN regexp_full_match({v}, '[0-9]+') THEN MAP {{{numbers}}}[TRY_CAST({v} AS INTEGER)] "
            f"ELSE MAP {{{names}}}[upper({v})] END")
    # (most sessions use a common protocol: a plain comparison settles them at a third of the cost)
    common = " ".join(f"WHEN '{k}' THEN '{p}'" for n, p in COMMON_PROTOCOLS.items() for k in (n, p))
    return f"(CASE upper({v}) {common} ELSE {full} END)"


def _vocabulary_sql(vocab: dict[str, str]):
    """SQL mapping a trimmed text column to the vocabulary's spelling (NULL outside it)."""
    pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in vocab.items())
    return lambda column: f'MAP {{{pairs}}}[lower("{column}")]'


def protocol_name(value: str) -> str | None:
    """A vendor protocol value (IANA number or name, any case, common aliases) -> keyword."""
    v = value.strip().upper()
    if v.isdigit():
        return PROTOCOL_BY_NUMBER.get(int(v))
    return v if v in _PROTOCOL_SET else PROTOCOL_ALIASES.get(v)


_PROTOCOL_SET = frozenset(PROTOCOLS)
_VALUE_MAPS = {"NetworkProtocol": protocol_name,
               **{name: (lambda v, vocab=vocab: vocab.get(v.strip().lower()))
                  for name, vocab in _VOCABULARIES.items()}}
_VALUE_ERRORS = {"NetworkProtocol": "NetworkProtocol: unknown protocol",
                 **{name: f"{name}: not one of {', '.join(vocab.values())}" for name, vocab in _VOCABULARIES.items()}}
_INT_RANGES = {**{name: (0, 65535, "port outside 0-65535") for name in PORT_COLUMNS},
               "NetworkIcmpCode": (0, 255, "ICMP code outside 0-255")}


_SQL_TYPES = {TIMESTAMP: "TIMESTAMPTZ", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.string(): "VARCHAR"}


def _literal(value) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# Vocabulary column -> SQL mapping its trimmed text (conform_sql).
_VOCABULARY_SQL = {"NetworkProtocol": _protocol_sql,
                   **{name: _vocabulary_sql(vocab) for name, vocab in _VOCABULARIES.items()}}


# ---- quarantine rows ----------------------------------------------------------------------

QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()), ("line", pa.int64()), ("source", pa.string()),
    ("reason", pa.string()), ("raw", pa.string()),
])


def quarantine_rows(file: str, source: str, lines, reasons, raws) -> pa.Table:
    """Build quarantine rows: the file, 1-based line number, why, and the raw record text."""
    lines = pa.array(lines, pa.int64()) if not isinstance(lines, (pa.Array, pa.ChunkedArray)) else lines
    n = len(lines)
    return pa.table({
        "file": pa.repeat(pa.scalar(file, pa.string()), n),
        "line": lines.cast(pa.int64()),
        "source": pa.repeat(pa.scalar(source, pa.string()), n),
        "reason": reasons if isinstance(reasons, (pa.Array, pa.ChunkedArray)) else pa.array(reasons, pa.string()),
        "raw": raws if isinstance(raws, (pa.Array, pa.ChunkedArray)) else pa.array(raws, pa.string()),
    }, schema=QUARANTINE_SCHEMA)


def rejecting_columns(strict_vocabulary: bool = True) -> frozenset[str]:
    """The columns whose value can make conform_sql reject a row: typed ones (a time or a
    number that does not parse or is out of range) and, when strict, the vocabularies. A
    consumer that keeps only some columns must still conform these to reject the same rows."""
    typed = {n for n, t in COLUMNS.items() if t != pa.string()}
    return frozenset(typed | (set(_VOCABULARY_SQL) if strict_vocabulary else set()))
