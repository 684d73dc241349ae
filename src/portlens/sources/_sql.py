"""SQL-building helpers shared by the source parsers: literals and column references, value
maps, the AdditionalFields JSON bag, protocol / ICMP lookups, IP and host-name shapes, export
timestamps. (The syslog / CEF / key=value helpers live in `_syslog`.)"""

from __future__ import annotations

from .. import asim


# ---- literals and references -------------------------------------------------------------------

def lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def col(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def map_sql(expr: str, mapping: dict) -> str:
    """SQL: `mapping[expr]` as a MAP literal of text keys and text values (NULL when absent)."""
    pairs = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in mapping.items())
    return f"MAP {{{pairs}}}[{expr}]"


def bag_sql(pairs, *, text: bool = False) -> str:
    """SQL for AdditionalFields, the one builder every source uses: a JSON object of the
    values that are not NULL and not blank, NULL when none is left.

    `pairs` is a dict or a list of (name, SQL expression) pairs. Text values are trimmed;
    other values keep their SQL type (numbers stay JSON numbers) unless `text`, which casts
    every value to VARCHAR first (the syslog sources, whose fields are all text)."""
    items = pairs.items() if isinstance(pairs, dict) else pairs

    def value(v: str) -> str:
        trimmed = f"to_json(NULLIF(trim(CAST({v} AS VARCHAR)), ''))"
        return trimmed if text else f"CASE WHEN typeof({v}) = 'VARCHAR' THEN {trimmed} ELSE to_json({v}) END"
    # json_merge_patch drops members whose value is null (RFC 7396): cheaper than list_filter
    args = ", ".join(f"{lit(k)}, {value(v)}" for k, v in items)
    return f"NULLIF(CAST(json_merge_patch('{{}}', json_object({args})) AS VARCHAR), '{{}}')"


# ---- text ------------------------------------------------------------------------------------

_ASCII_SPACE = (" ", "\t", "\n", "\v", "\f", "\r")


def split_whitespace_sql(expr: str) -> str:
    """SQL splitting text at runs of ASCII whitespace, ignoring it at either end (Arrow's
    ascii_trim_whitespace then ascii_split_whitespace), for text with a character other than
    whitespace. Text whose only separators are single spaces (the usual case) is split by
    string_split: inside the statement, that measured about half the CPU of Arrow's split
    plus handing DuckDB the list. Other text is split by a regex."""
    odd = " OR ".join([f"contains({expr}, '  ')", f"{expr}[1] = ' '", f"{expr}[-1] = ' '"]
                      + [f"contains({expr}, chr({ord(c)}))" for c in _ASCII_SPACE[1:]])
    spaces = " || ".join(f"chr({ord(c)})" for c in _ASCII_SPACE)
    return (f"CASE WHEN {odd} THEN regexp_split_to_array(trim({expr}, {spaces}), '[ \\t\\n\\v\\f\\r]+') "
            f"ELSE string_split({expr}, ' ') END")


# ---- protocols -------------------------------------------------------------------------------

# asim.protocol_sql, under the name the sources use (it settles the common protocols first)
iana_sql = asim.protocol_sql


# ---- addresses and host names ---------------------------------------------------------------

IP_RE = r"[0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*"


def looks_ip(expr: str) -> str:
    """SQL: the text has the shape of an IPv4 or IPv6 address."""
    return f"regexp_full_match({expr}, '{IP_RE}')"


def short_host_sql(expr: str) -> str:
    """First label of a host name (not of an IP address)."""
    return (f"CASE WHEN regexp_full_match({expr}, '[0-9.]+|.*:.*') THEN {expr} "
            f"ELSE split_part({expr}, '.', 1) END")


def fqdn_sql(expr: str) -> str:
    """The name when it has a domain part (not an IP address), else NULL."""
    return f"CASE WHEN contains({expr}, '.') AND NOT regexp_full_match({expr}, '[0-9.]+|.*:.*') THEN {expr} END"


# ---- ICMP: the one table every source names types from ---------------------------------------

# IANA ICMP type names (RFC 792 / 950 / 1256 / 1393 and the registry's later, mostly deprecated
# types), ICMPv6 (RFC 4443 / 4861 / 2710 / 3810).
ICMP4_TYPES = {0: "Echo Reply", 3: "Destination Unreachable", 4: "Source Quench", 5: "Redirect",
               6: "Alternate Host Address", 8: "Echo", 9: "Router Advertisement",
               10: "Router Solicitation", 11: "Time Exceeded", 12: "Parameter Problem",
               13: "Timestamp", 14: "Timestamp Reply", 15: "Information Request",
               16: "Information Reply", 17: "Address Mask Request", 18: "Address Mask Reply",
               30: "Traceroute", 31: "Datagram Conversion Error", 32: "Mobile Host Redirect",
               33: "IPv6 Where-Are-You", 34: "IPv6 I-Am-Here", 35: "Mobile Registration Request",
               36: "Mobile Registration Reply", 37: "Domain Name Request", 38: "Domain Name Reply",
               39: "SKIP", 40: "Photuris", 42: "Extended Echo Request", 43: "Extended Echo Reply"}
ICMP6_TYPES = {1: "Destination Unreachable", 2: "Packet Too Big", 3: "Time Exceeded",
               4: "Parameter Problem", 128: "Echo Request", 129: "Echo Reply",
               130: "Multicast Listener Query", 131: "Multicast Listener Report",
               132: "Multicast Listener Done", 133: "Router Solicitation",
               134: "Router Advertisement", 135: "Neighbor Solicitation",
               136: "Neighbor Advertisement", 137: "Redirect Message",
               143: "Version 2 Multicast Listener Report"}


def int_sql(expr: str) -> str:
    """Decimal or 0x-hex integer text -> BIGINT (NULL when neither)."""
    x = f"trim(CAST({expr} AS VARCHAR))"
    return (f"CASE WHEN regexp_full_match({x}, '0[xX][0-9A-Fa-f]{{1,15}}') THEN TRY_CAST({x} AS BIGINT) "
            f"ELSE TRY_CAST(TRY_CAST({x} AS DOUBLE) AS BIGINT) END")


def icmp_type_sql(expr: str, v6: str = "false") -> str:
    """ICMP type number (decimal or 0x hex, text or number) -> ASIM NetworkIcmpType name
    (`Echo`, ...); the number as text when the name is unknown; NULL when not a number. `v6`
    is a SQL boolean selecting the ICMPv6 table."""
    n = int_sql(expr)
    v4 = ", ".join(f"{k}: {lit(v)}" for k, v in ICMP4_TYPES.items())
    v6m = ", ".join(f"{k}: {lit(v)}" for k, v in ICMP6_TYPES.items())
    return (f"CASE WHEN {n} IS NOT NULL THEN coalesce(CASE WHEN {v6} THEN MAP {{{v6m}}}[{n}] "
            f"ELSE MAP {{{v4}}}[{n}] END, CAST({n} AS VARCHAR)) END")


# ---- time --------------------------------------------------------------------------------------

def export_time_sql(expr: str) -> str:
    """asim.time_sql, also accepting the Sentinel portal's `5/1/2024, 10:00:00.123 AM`."""
    return asim.time_sql(f"regexp_replace(trim({expr}), '^([0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{4}}),\\s*', '\\1 ')")
