"""The ASIM Network Session schema as portlens keeps it: columns, Arrow types, vocabularies,
and the one function (`conform`) every source uses to turn parsed columns into valid rows.

Values follow ASIM 0.2.6 exactly (see ../shared/spec/asim-network-session.md). Anything a
vendor writes outside the vocabularies is either mapped (case, aliases, protocol numbers) or
the row is rejected with a reason and goes to quarantine; nothing is silently dropped.
"""

from __future__ import annotations

import contextvars
import threading
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


def query(text: str, **tables: pa.Table) -> pa.Table:
    """Run SQL on the compute engine over the given Arrow tables (by name); an Arrow table."""
    con = sql()
    for name, table in tables.items():
        con.register(name, table)
    try:
        return con.sql(text).to_arrow_table()
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


def protocol_sql(expr: str) -> str:
    """SQL mapping a vendor protocol value (number or name, any case) to the ASIM keyword.
    Unknown names and unassigned numbers give NULL."""
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
    into valid ASIM rows.

    - text columns are parsed to their schema type (timestamps, integers);
    - vocabulary columns are mapped case-insensitively to their canonical spelling, protocol
      numbers and aliases to IANA keywords;
    - ASIM derivations: EventStartTime/EventEndTime fall back to TimeGenerated (and back),
      EventCount to 1, EventResult from DvcAction, EventSeverity from the result;
    - a row that breaks the schema (no time, unparseable value, a time outside the plausible
      range of `time_bounds()`, port outside 0-65535, a value outside a vocabulary) is rejected
      with the first reason found.

    strict_vocabulary=False is for rows that are already ASIM (the native source): vocabulary
    columns are kept verbatim (only an empty value becomes null) and never reject a row,
    because the KQL rule counts whatever the table holds ("tcp" and "TCP" are two series,
    "Allowed" is a series of its own). `portlens status` lists such values as schema
    warnings.
    """
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    defaults = defaults or {}
    n = table.num_rows
    present = set(table.column_names)
    if n == 0:
        return Conformed(empty_table(), pa.array([], pa.int64()), pa.array([], pa.string()))

    # Vocabulary columns are mapped per distinct value (few) on the dictionary-encoded column,
    # not per row; a value outside the vocabulary marks its row in a `_bad_<name>` column.
    checks = []
    if not strict_vocabulary:
        table = _verbatim_vocabulary(table, present)
    for name, canonical in _VALUE_MAPS.items() if strict_vocabulary else ():
        if name in present:
            mapped, bad = _map_distinct(table[name], canonical)
            table = table.set_column(table.schema.get_field_index(name), name, mapped)
            table = table.append_column(f"_bad_{name}", bad)
            checks.append((f'"_bad_{name}"', _VALUE_ERRORS[name]))
        elif defaults.get(name) is not None:
            defaults = {**defaults, name: canonical(str(defaults[name]))}

    # Text columns are trimmed and blank-to-null in Arrow (an order of magnitude cheaper than
    # SQL trim over every column of every row).
    for name in present:
        if COLUMNS.get(name) == pa.string() and name not in _VALUE_MAPS:
            values = table[name]
            if not pa.types.is_string(values.type):
                values = pc.cast(values, pa.string())
            values = pc.utf8_trim_whitespace(values)
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
            table = table.set_column(table.schema.get_field_index(name), name, values)

    def raw(name: str) -> str | None:
        if name in present:
            return f'"{name}"'
        if name in defaults:
            value = defaults[name]
            return "NULL" if value is None else _literal(value)
        return None

    # Only timestamps and integers need SQL (parsing, range checks); every other column is
    # taken from Arrow as it is (text already cleaned, defaults as constants, absent as null).
    select, from_arrow = [], {}
    for name, typ in COLUMNS.items():
        src = raw(name)
        if src is None:
            from_arrow[name] = pa.nulls(n, typ)
            continue
        if typ != TIMESTAMP and not pa.types.is_integer(typ):
            if name in present:
                from_arrow[name] = table[name]
            else:
                value = defaults[name]
                from_arrow[name] = pa.repeat(pa.scalar(None if value is None else str(value), typ), n)
            continue
        text = f"NULLIF(trim(CAST({src} AS VARCHAR)), '')"
        typed_in = name in present and table.schema.field(name).type
        if typ == TIMESTAMP:
            parsed = f"CAST({src} AS TIMESTAMPTZ)" if typed_in and pa.types.is_timestamp(typed_in) else time_sql(text)
            checks.append((f"{text} IS NOT NULL AND ({parsed}) IS NULL", f"{name}: not a timestamp"))
            checks.append((time_range_sql(parsed), f"{name}: {time_bounds().describe()}"))
            select.append(f'{parsed} AS "{name}"')
        else:
            if typed_in and pa.types.is_integer(typed_in):
                parsed = f"CAST({src} AS BIGINT)"
            else:
                parsed = f"TRY_CAST(TRY_CAST({text} AS DOUBLE) AS BIGINT)"
                checks.append((f"{text} IS NOT NULL AND ({parsed}) IS NULL", f"{name}: not an integer"))
            low, high, what = _INT_RANGES.get(name, (0, 2**63 - 1, "negative"))
            checks.append((f"({parsed}) NOT BETWEEN {low} AND {high}", f"{name}: {what}"))
            select.append(f'TRY_CAST({parsed} AS {_SQL_TYPES[typ]}) AS "{name}"')  # range checked above

    reason = "CASE " + " ".join(f"WHEN {c} THEN {_literal(r)}" for c, r in checks) + " END" if checks else "NULL"
    # DuckDB keeps the input order for a plain projection (preserve_insertion_order), so the
    # SQL columns line up with the Arrow ones.
    parsed_cols = query(f"SELECT {', '.join(select + [f'{reason} AS _reason'])} FROM _conform_in",
                        _conform_in=table)
    columns = {name: (parsed_cols[name] if name in parsed_cols.column_names else from_arrow[name])
               for name in COLUMNS}
    typed = _derive(pa.table({**columns, "_reason": parsed_cols["_reason"],
                              "_i": pa.array(np.arange(n, dtype=np.int64))}))
    no_time = pc.is_null(typed["TimeGenerated"])
    reasons = pc.if_else(pc.and_(pc.is_null(typed["_reason"]), no_time),
                         pa.scalar("TimeGenerated: missing"), typed["_reason"])
    bad = pc.is_valid(reasons)
    good = typed.filter(pc.invert(bad)).select(list(COLUMNS)).cast(SCHEMA)
    rejected = typed.filter(bad)
    return Conformed(good, rejected["_i"].combine_chunks().cast(pa.int64()),
                     reasons.filter(bad).combine_chunks() if isinstance(reasons, pa.ChunkedArray)
                     else reasons.filter(bad))


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


def _verbatim_vocabulary(table: pa.Table, present: set) -> pa.Table:
    """Vocabulary columns as text, unmapped and untrimmed; only "" becomes null (KQL has no
    null string: empty is its missing value)."""
    for name in _VALUE_MAPS:
        if name in present:
            values = table[name]
            if not pa.types.is_string(values.type):
                values = pc.cast(values, pa.string())
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
            table = table.set_column(table.schema.get_field_index(name), name, values)
    return table


def _map_distinct(column, canonical) -> tuple[pa.Array, pa.Array]:
    """Map a text column through `canonical` once per distinct value. Returns the mapped
    column and a mask of rows whose non-blank value has no canonical form."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary.to_pylist()
    mapped = pa.array([canonical(v) if v.strip() else None for v in distinct], pa.string())
    out = pc.take(mapped, encoded.indices)
    blank = pa.array([not v.strip() for v in distinct], pa.bool_())
    bad = pc.and_(pc.is_null(out), pc.invert(pc.fill_null(pc.take(blank, encoded.indices), True)))
    return out, bad


_SQL_TYPES = {TIMESTAMP: "TIMESTAMPTZ", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.string(): "VARCHAR"}


def _derive(t: pa.Table) -> pa.Table:
    """ASIM fallbacks between related fields (spec part 1)."""
    def put(name, values):
        return t.set_column(t.schema.get_field_index(name), name, values)

    tg = pc.coalesce(t["TimeGenerated"], t["EventStartTime"], t["EventEndTime"])
    t = put("TimeGenerated", tg)
    t = put("EventStartTime", pc.coalesce(t["EventStartTime"], tg))
    t = put("EventEndTime", pc.coalesce(t["EventEndTime"], t["EventStartTime"]))
    t = put("EventCount", pc.coalesce(t["EventCount"], pa.scalar(1, pa.int64())))
    t = put("EventType", pc.coalesce(t["EventType"], pa.scalar("NetworkSession")))
    failing = pc.is_in(t["DvcAction"], value_set=pa.array(FAILING_ACTIONS))
    derived_result = pc.if_else(pc.is_null(t["DvcAction"]), pa.scalar(None, pa.string()),
                                pc.if_else(failing, pa.scalar("Failure"), pa.scalar("Success")))
    t = put("EventResult", pc.coalesce(t["EventResult"], derived_result))
    sev = pc.if_else(pc.equal(t["EventResult"], "Failure"), pa.scalar("Low"), pa.scalar("Informational"))
    t = put("EventSeverity", pc.coalesce(t["EventSeverity"], sev))
    return t


def _literal(value) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


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
