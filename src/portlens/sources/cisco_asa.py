"""Cisco ASA (and FTD in ASA syslog form): raw syslog lines and ASA CEF.

Raw forms accepted
  [<PRI>][:] [Mon dd [yyyy] hh:mm:ss[.frac] [ZONE][:] | ISO-8601] [host][:] %ASA-[class-]<sev>-<msgid>: text
  (also %FTD- / %PIX- / %FWSM-, RFC5424 `<PRI>1 ISO host ...` and relayed headers), and
  [syslog header] CEF:0|Cisco|ASA|version|<msgid>|name|severity|extension  (msg= holds the ASA text)

Message IDs normalized (everything else with a valid header is skipped, not quarantined):
  106001 106006 106007 106010 106014 106015 106016 106018 106021 106022 106023 106100
  302013 302014 302015 302016 302020 302021 710002 710003 710004 710005

Decisions (see also the module tests):
- 302013/302015/302020 list the outside ("foreign") tuple first. For `outbound` connections
  the initiator is the second tuple, so Src and Dst are swapped; NetworkDirection is the word
  inbound/outbound. Teardowns (302014/302016/302021) carry no direction: they take the
  orientation of their Built message in the same file (matched by connection ID, or by the
  faddr/gaddr/laddr tuple for ICMP; an as-of join, state kept across batches). A teardown with
  no Built in the file keeps the logged order and no NetworkDirection.
- The "(mapped)" tuple goes to Src/DstNat* only when it differs from the real one.
- Times are parsed by `_syslog.timestamp_sql`: a year-less header takes the current UTC year,
  or the previous one when that would put the record more than a day in the future. Zone
  names in `_syslog.ZONES` (US/EU/APAC abbreviations, CST = US Central) are applied; another
  `XYZ:` right after the time is ignored (UTC). CEF `rt=` (epoch ms or a date) wins over the
  syslog header time.
- 302014 teardown reasons map to (DvcAction, EventResult, EventResultDetails) per the spec;
  "Flow terminated by TCP Intercept" -> Drop (the ASIM-invalid "TCP Intercept" is not used);
  an unknown reason gives EventResult NA; the raw reason is in EventOriginalResultDetails.
- 106100: EventCount = hit-cnt (at least 1); "denied" -> Deny, permitted/est-allowed -> Allow;
  for ICMP the "(port)" positions are the ICMP type and code.
- ICMP ids in 302020/302021 are not ports. ICMP types are named (NetworkIcmpType), the code
  is NetworkIcmpCode.
- Non-IP host names (ASA `names`, e.g. `dmz:OCSP_Server/5678`) go to Src/DstHostname.
  Parenthesised identities: `DOMAIN\\user` or `user@x` -> username, a dotted name -> host name.
  A trailing `(user)` on 302014/302016 is the authenticated (cut-through) user -> SrcUsername.
- Interfaces: the source interface -> DvcInboundInterface, the destination interface ->
  DvcOutboundInterface, "on interface X" (packet arrival) -> DvcInboundInterface; lower-cased.
- CEF: ASA text in msg= is parsed as above and wins; CEF keys (src dst spt dpt proto act in
  out cnt rt externalId deviceDirection deviceInbound/OutboundInterface suser duser
  *TranslatedAddress/Port dvchost dvc csN with a rule/acl label or cs2) fill what the text does
  not give. in+out -> NetworkBytes only (their direction is vendor dependent).
- Vendor fields without an ASIM column go to AdditionalFields (TcpFlags, TeardownInitiator,
  AclHitInterval, DstService = the service name 710xxx printed, SyslogFacility when not ASA).
- The reporting host is the first token after the header time (`<IP>`-style placeholders are
  dropped): Dvc, and DvcIpAddr or DvcHostname.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog
from ._records import extract_groups
from ._sql import bag_sql, icmp_type_sql
from ._tables import is_table_export
from .base import Source

_NULL = pa.scalar(None, pa.string())

# ---- header ----------------------------------------------------------------------------------

# The header regex stops at the message ID (capturing the text after it would make RE2 run its
# submatch engine over the whole line); family regexes skip the header themselves (_LEAD).
_HEADER = (r"^(?P<prefix>.*?)%(?P<fac>ASA|FTD|PIX|FWSM)-(?:[A-Za-z_]+-)?(?P<sev>[0-7])-"
           r"(?P<msgid>\d{6})\b")
_LEAD = r"(?:^|%(?:ASA|FTD|PIX|FWSM)-(?:[A-Za-z_]+-)?[0-7]-\d{6}\s*:?\s*)"
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_ZONE_RE = "|".join(sorted(_syslog.ZONES, key=len, reverse=True))
_TIME = (r"(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
         rf"|(?:{_MONTHS})\s+\d{{1,2}}(?:\s+\d{{4}})?\s+\d{{1,2}}:\d\d:\d\d(?:\.\d{{1,9}})?"
         rf"(?:\s+(?:{_ZONE_RE})(?:[:\s]|$))?)(?:\s*[A-Z]{{2,5}}:)?(?P<after>.*)$")
_HOST = r"^\s*:?\s*(?P<host>[^\s:]\S*?):?(?:\s|$)"

# ---- message families ------------------------------------------------------------------------

_IFC = r"[^\s:]+"
_ADDR = r"[^\s/()]+"


def _user(name: str) -> str:
    return rf"(?:\s*\((?P<{name}>[^)]*)\))?"


_ICMP_TAIL = (r"(?:\s*\(type (?P<itype>\d+), code (?P<icode>\d+)\)|\s*\((?P<b_user>[^)]*)\))?"
              r"(?:\s*\(type (?P<itype2>\d+), code (?P<icode2>\d+)\))?"
              r"(?:\s*,?\s*type (?P<itype3>\d+), code (?P<icode3>\d+),?)?")

# (family, message IDs, regex on the message text, constant intermediate fields)
FAMILIES: list[tuple[str, tuple[str, ...], str, dict]] = [
    ("deny_src_dst", ("106010", "106014", "106023"),
     rf"^(?P<act>Deny) (?:(?:inbound|outbound) )?(?:protocol )?(?P<proto>\S+) src (?P<a_ifc>{_IFC}):"
     rf"(?P<a_ip>{_ADDR})(?:/(?P<a_port>\d+))?{_user('a_user')} dst (?P<b_ifc>{_IFC}):(?P<b_ip>{_ADDR})"
     rf"(?:/(?P<b_port>\d+))?{_ICMP_TAIL}(?:\s*by access-group\s+\"?(?P<acl>[^\"\s]+)\"?)?",
     {"action": "Deny"}),
    ("acl", ("106100",),
     rf"^access-list (?P<acl>\S+) (?P<act>permitted|denied|est-allowed) (?P<proto>\S+) "
     rf"(?P<a_ifc>[^\s/]+)/(?P<a_ip>[^\s()]+)\((?P<a_port>\d+)\){_user('a_user')} -> "
     rf"(?P<b_ifc>[^\s/]+)/(?P<b_ip>[^\s()]+)\((?P<b_port>\d+)\){_user('b_user')} hit-cnt (?P<hits>\d+)"
     r"(?: \(?(?P<interval>first hit|\d+-second interval)\)?)?",
     {}),
    ("inbound_denied", ("106001",),
     r"^Inbound (?P<proto>\S+) connection (?P<act>denied) from (?P<a_ip>[^\s/]+)/(?P<a_port>\d+) to "
     r"(?P<b_ip>[^\s/]+)/(?P<b_port>\d+) flags (?P<flags>.*?)\s+on interface (?P<ifc>\S+)",
     {"action": "Deny"}),
    ("deny_inbound", ("106006", "106007"),
     r"^(?P<act>Deny) inbound (?P<proto>\S+) from (?P<a_ip>[^\s/]+)/(?P<a_port>\d+) to "
     r"(?P<b_ip>[^\s/]+)/(?P<b_port>\d+)(?: on interface (?P<ifc>[^\s.]+(?:\.[^\s.]+)*)"
     r"| due to (?P<reason>[A-Za-z][A-Za-z ]*[A-Za-z]))?",
     {"action": "Deny"}),
    ("no_connection", ("106015",),
     r"^(?P<act>Deny) (?P<proto>\S+) \((?P<reason>no connection)\) from (?P<a_ip>[^\s/]+)/(?P<a_port>\d+)"
     r" to (?P<b_ip>[^\s/]+)/(?P<b_port>\d+) flags (?P<flags>.*?)\s+on interface (?P<ifc>\S+)",
     {"action": "Deny"}),
    ("spoof", ("106016",),
     r"^(?P<act>Deny) (?P<reason>IP spoof) from \(?(?P<a_ip>[^\s()]+?)\)? to (?P<b_ip>\S+?)\.?"
     r" on interface (?P<ifc>\S+)",
     {"action": "Deny"}),
    ("path_check", ("106021", "106022"),
     r"^(?P<act>Deny) (?P<proto>\S+) (?P<reason>reverse path check|connection spoof) from "
     r"(?P<a_ip>[^\s/]+)(?:/(?P<a_port>\d+))? to (?P<b_ip>[^\s/]+)(?:/(?P<b_port>\d+))?"
     r" on interface (?P<ifc>\S+)",
     {"action": "Deny"}),
    ("icmp_list", ("106018",),
     r"^ICMP packet type (?P<itype>\S+) (?P<act>denied) by (?:outbound |inbound )?list (?P<acl>\S+)"
     r" src (?P<a_ip>\S+) dest (?P<b_ip>[^\s,]+)",
     {"action": "Deny", "proto": "ICMP"}),
    ("built", ("302013", "302015"),
     rf"^Built (?P<dir>inbound|outbound) (?P<proto>\S+) connection (?P<sid>\d+) for (?P<a_ifc>{_IFC}):"
     rf"(?P<a_ip>{_ADDR})/(?P<a_port>\d+)(?: \((?P<a_mip>{_ADDR})/(?P<a_mport>\d+)\))?{_user('a_user')}"
     rf" to (?P<b_ifc>{_IFC}):(?P<b_ip>{_ADDR})/(?P<b_port>\d+)"
     rf"(?: \((?P<b_mip>{_ADDR})/(?P<b_mport>\d+)\))?{_user('b_user')}",
     {"action": "Allow", "subtype": "Start"}),
    ("teardown", ("302014", "302016"),
     rf"^Teardown (?P<proto>\S+) connection (?P<sid>\d+) for (?P<a_ifc>{_IFC}):(?P<a_ip>{_ADDR})"
     rf"/(?P<a_port>\d+)(?:\s*\((?P<a_user>[^)]*)\)|\s+(?P<a_user2>[^\s()]+))? to (?P<b_ifc>{_IFC}):"
     rf"(?P<b_ip>{_ADDR})/(?P<b_port>\d+)(?:\s*\((?P<b_user>[^)]*)\)|\s+(?P<b_user2>[^\s()]+))?"
     r" duration (?P<dur>\d{1,9}:\d{1,2}:\d{1,2}) bytes (?P<bytes>\d+)(?:\s+(?P<rest>.*))?",
     {"subtype": "End"}),
    ("icmp_conn", ("302020", "302021"),
     rf"^(?P<verb>Built|Teardown) (?:(?P<dir>inbound|outbound) )?(?P<proto>\S+) connection "
     rf"(?:(?P<sid>\d+) )?for faddr (?P<a_ip>{_ADDR})(?:/(?P<a_id>\d+))?{_user('a_user')} gaddr "
     rf"(?P<b_mip>{_ADDR})(?:/(?P<g_id>\d+))? laddr (?P<b_ip>{_ADDR})(?:/(?P<b_id>\d+))?"
     rf"{_user('b_user')}(?:\s+type (?P<itype>\d+) code (?P<icode>\d+))?",
     {"action": "Allow"}),
    ("to_the_box", ("710002", "710003", "710004", "710005"),
     r"^(?P<proto>\S+) (?P<act>access permitted|access denied by ACL|request discarded|connection limit "
     r"exceeded) from (?P<a_ip>[^\s/]+)/(?P<a_port>\d+) to (?P<b_ifc>[^\s:]+):(?P<b_ip>[^\s/]+)"
     r"/(?P<svc>[^\s(]+)",
     {}),
]
SUPPORTED = tuple(sorted({m for _, ids, _, _ in FAMILIES for m in ids}))

_REASON = r"^(?P<reason>.*?)(?:\s+from\s+(?P<initiator>\S+))?\s*(?:\((?P<t_user>[^)]*)\))?[\s\"]*$"

# 302014 teardown reason -> (DvcAction, EventResult, EventResultDetails); keys lower-case.
TEARDOWN_REASONS = {
    "tcp fins": (None, "Success", None), "probe completed": (None, "Success", None),
    "probe received fin": (None, "Success", None), "route change": (None, "Success", None),
    "conn-timeout": (None, "Success", "Timeout"), "flow timed out": (None, "Success", "Timeout"),
    "fin timeout": (None, "Success", "Timeout"), "syn timeout": (None, "Failure", "Timeout"),
    "pinhole timeout": (None, "Failure", "Timeout"),
    "tcp reset-i": (None, "Failure", "Reset"), "tcp reset-o": (None, "Failure", "Reset"),
    "tcp reset-appliance": (None, "Failure", "Reset"), "probe received rst": (None, "Failure", "Reset"),
    "flow timed out with reset": ("Reset", "Failure", "Timeout"),
    "deny terminate": ("Deny", "Failure", "Terminated"),
    "flow closed by inspection": ("Deny", "Failure", "Terminated"),
    "flow terminated by ips": ("Deny", "Failure", "Terminated"),
    "ips fail-close": ("Deny", "Failure", "Terminated"),
    "unauth deny": ("Deny", "Failure", "Terminated"),
    "flow reset by ips": ("Reset", "Failure", "Terminated"),
    "flow terminated by tcp intercept": ("Drop", "Failure", "Terminated"),
    "invalid syn": (None, "Failure", "Invalid TCP"), "syn control": (None, "Failure", "Invalid TCP"),
    "tcp invalid syn": (None, "Failure", "Invalid TCP"),
    "tcp segment partial overlap": (None, "Failure", "Invalid TCP"),
    "tcp unexpected window size variation": (None, "Failure", "Invalid TCP"),
    "tcp bad retransmission": (None, "Success", "Invalid TCP"),
    "tunnel has been torn down": (None, "Failure", "Invalid Tunnel"),
    "failover primary closed": (None, "Success", "Failover"),
    "probe maximum retries of retransmission exceeded": (None, "Failure", "Maximum Retry"),
    "probe maximum retransmission time elapsed": (None, "Failure", "Maximum Retry"),
    "no valid adjacency": ("Drop", "Failure", "Routing issue"),
    "no interfaces associated with zone": (None, "Failure", "Routing issue"),
    "free the flow created as result of packet injection": (None, "Success", "Simulation"),
    "unknown": (None, "Failure", "Unknown"),
    "xlate clear": (None, "Success", "Terminated"),
}

# ASA service names printed by 710xxx instead of a port number.
SERVICES = {
    "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "bootps": 67, "bootpc": 68,
    "tftp": 69, "http": 80, "www": 80, "pop3": 110, "ntp": 123, "netbios-ns": 137,
    "netbios-dgm": 138, "netbios-ssn": 139, "snmp": 161, "snmptrap": 162, "ldap": 389,
    "https": 443, "isakmp": 500, "syslog": 514, "rsh": 514, "ldaps": 636, "radius": 1645,
    "radius-acct": 1646, "h323": 1720, "pptp": 1723, "sip": 5060, "nat-t": 4500,
}

# CEF extension keys read (from the extension MAP of _syslog.parse_cef).
_CEF_KEYS = ("src", "dst", "c6a2", "c6a3", "spt", "dpt", "proto", "act", "in", "out", "cnt", "rt",
             "externalId", "deviceDirection", "deviceInboundInterface", "deviceOutboundInterface",
             "suser", "duser", "sourceTranslatedAddress", "sourceTranslatedPort",
             "destinationTranslatedAddress", "destinationTranslatedPort", "dvchost", "dvc", "msg",
             "cs2")
_CEF_ACTIONS = {"permit": "Allow", "permitted": "Allow", "allow": "Allow", "allowed": "Allow",
                "accept": "Allow", "accepted": "Allow", "built": "Allow", "deny": "Deny",
                "denied": "Deny", "block": "Deny", "blocked": "Deny", "reject": "Deny",
                "drop": "Drop", "dropped": "Drop", "discard": "Drop", "discarded": "Drop",
                "reset": "Reset"}

# Intermediate text columns every family table is padded to.
INTER = ("act", "action", "subtype", "proto", "dir", "sid", "verb", "a_ifc", "a_ip", "a_port",
         "a_mip", "a_mport", "a_user", "a_id", "b_ifc", "b_ip", "b_port", "b_mip", "b_mport",
         "b_user", "b_id", "g_id", "itype", "icode", "acl", "hits", "interval", "flags", "ifc",
         "reason", "initiator", "t_user", "dur", "bytes", "svc")

_STATE_CAP = 500_000


# ---- helpers -----------------------------------------------------------------------------------

def _sql_map(mapping: dict, key_sql: str) -> str:
    pairs = ", ".join(f"{_syslog.sql_str(k)}: {asim._literal(v)}" for k, v in mapping.items())
    return f"MAP {{{pairs}}}[{key_sql}]"


def _align(table: pa.Table, positions: pa.Array, subset_positions: pa.Array) -> pa.Table:
    """Rows of `table` (one per `subset_positions`) placed at `positions`; NULL rows elsewhere."""
    return table.take(pc.index_in(positions, value_set=subset_positions))


_CEF_OUT = ("is_cef", "cprefix", "cvendor", "cproduct", "cdver", "csig", *[f"cef_{k}" for k in _CEF_KEYS],
            "cef_rule")
_RULE_LABELS = ("rule", "rule name", "acl", "access list", "access-list", "access group", "access-group")


def _cef_columns(lines: pa.Array, positions: pa.Array) -> pa.Table:
    """CEF envelope fields for the lines that hold `CEF:` (NULL rows for the others)."""
    has = pc.fill_null(pc.match_substring(lines, "CEF:"), False)
    if not pc.any(has).as_py():
        n = len(lines)
        return pa.table({name: pa.nulls(n, pa.bool_() if name == "is_cef" else pa.string())
                         for name in _CEF_OUT})
    cef = _syslog.parse_cef(lines.filter(has), keys=list(_CEF_KEYS) + _syslog.cef_custom_keys())
    rule = asim.query(f"SELECT {_syslog.cef_label_sql(*_RULE_LABELS)} AS r FROM c", c=cef)["r"]
    out = pa.table([cef["is_cef"], cef["prefix"], cef["vendor"], cef["product"], cef["version"],
                    cef["signature"], *[cef[k] for k in _CEF_KEYS], rule], names=list(_CEF_OUT))
    return _align(out, positions, positions.filter(has))


# ---- the source --------------------------------------------------------------------------------

_SNIFF = re.compile(rb"%(?:ASA|FTD)-(?:[A-Za-z_]+-)?[0-7]-\d{6}\b|CEF:\s?\d+\|Cisco\|(?:ASA|Adaptive Security)",
                    re.IGNORECASE)


FTD_EVENTS = re.compile(rb"%FTD-(?:[A-Za-z_]+-)?[0-7]-4300\d\d\b")


class CiscoAsa(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        # a Sentinel export is the `sentinel` source's (it routes the ASA rows here); FTD
        # connection / intrusion / file events (4300xx) are `cisco-ftd`'s, which hands the
        # ASA-form lines of its files back to this parser
        return bool(_SNIFF.search(head)) and not is_table_export(head) and not FTD_EVENTS.search(head)

    CARRIES_STATE = True  # (a teardown is paired with a built message of an earlier batch)
    MAP_AHEAD = True  # (reading the messages is most of the work, and needs no state)

    def start(self, path: str) -> dict:
        return {"built": None}

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:
        return _finalize(_correlate(self._messages(lines, numbers), state))

    def map_lines_in_turn(self, lines: pa.Array, numbers: pa.Array, state: dict, turn) -> pa.Table:
        if lines.type != pa.string():  # (too large for one pass: split, all in the turn)
            with turn:
                return self.mapped(lines, numbers, state)
        messages = self._messages(lines, numbers)
        with turn:  # (only the pairing with earlier built messages reads the state)
            paired = _correlate(messages, state)
        return _finalize(paired)

    def _messages(self, lines: pa.Array, numbers: pa.Array) -> pa.Table:
        """The batch's messages read into columns (header, CEF envelope, message family fields)."""
        n = len(lines)
        positions = pa.array(range(n), pa.int64())
        cols: dict[str, pa.Array] = {"_pos": positions, "_line": numbers, "_raw": lines}
        # syslog header and CEF envelope
        hdr_ok, hdr = extract_groups(lines, _HEADER)
        cef = _cef_columns(lines, positions)
        for name in cef.column_names:
            cols[name] = cef[name].combine_chunks()
        is_cef = pc.fill_null(cols["is_cef"], False)
        cols["is_cef"] = is_cef
        cols["hdr_ok"] = hdr_ok
        msg_body = pc.replace_substring_regex(
            cols["cef_msg"], r"^.*?%(?:ASA|FTD|PIX|FWSM)-(?:[A-Za-z_]+-)?[0-7]-\d{6}:\s*", "",
            max_replacements=1)
        cols["msgid"] = pc.if_else(is_cef, cols["csig"], hdr["msgid"])
        cols["fac"] = pc.if_else(is_cef, _NULL, hdr["fac"])
        body = pc.if_else(is_cef, msg_body, lines) if pc.any(is_cef).as_py() else lines
        prefix = pc.if_else(is_cef, cols["cprefix"], hdr["prefix"])
        # time and reporting host from the syslog prefix (for CEF, rt= first)
        # the header prefix repeats (one per second and host): parse each distinct one once
        prefixes = pc.dictionary_encode(prefix)
        uniq = prefixes.dictionary
        _, tm = extract_groups(uniq, _TIME)
        ts = pc.utf8_rtrim(tm["ts"], characters=": \t")
        _, hp = extract_groups(pc.coalesce(tm["after"], uniq), _HOST)
        host = hp["host"]
        bad_host = pc.fill_null(pc.match_substring_regex(host, r"^[<\[]|^\d{4}-\d\d-\d\d|^CEF:"), False)
        host = pc.if_else(bad_host, _NULL, host)
        stamp = _syslog.parse_timestamps(ts)
        idx = prefixes.indices
        cols["host"] = host.take(idx)
        rt = cols["cef_rt"]
        if pc.any(pc.is_valid(rt)).as_py():
            stamp_rt = _syslog.parse_timestamps(rt)
            cols["tg"] = pc.if_else(pc.and_(is_cef, pc.is_valid(rt)), stamp_rt, stamp.take(idx))
        else:
            cols["tg"] = stamp.take(idx)
        # message families: one regex per family, on the rows of its message IDs
        parts = []
        for fam, ids, pattern, consts in FAMILIES:
            mask = pc.fill_null(pc.is_in(cols["msgid"], value_set=pa.array(ids)), False)
            if not pc.any(mask).as_py():
                continue
            sub = body.filter(mask)
            ok, groups = extract_groups(sub, _LEAD + pattern.removeprefix("^"))
            if fam == "teardown":
                _, rs = extract_groups(groups.pop("rest"), _REASON)
                groups.update(rs)
            m = len(sub)
            table = {"_fpos": positions.filter(mask), "fam": pa.repeat(pa.scalar(fam), m), "ok": ok}
            for name in INTER:
                if name in groups:
                    table[name] = groups[name]
                elif name in consts:
                    table[name] = pc.if_else(ok, pa.scalar(consts[name]), _NULL)
                else:
                    table[name] = pa.nulls(m, pa.string())
            parts.append(pa.table(table))
        if parts:
            fams = pa.concat_tables(parts)
            aligned = _align(fams, positions, fams["_fpos"].combine_chunks())
        else:
            aligned = pa.table({"fam": pa.nulls(n, pa.string()), "ok": pa.nulls(n, pa.bool_()),
                                **{k: pa.nulls(n, pa.string()) for k in INTER}})
        for name in aligned.column_names:
            if name != "_fpos":
                cols[name] = aligned[name].combine_chunks()
        return pa.table(cols)


def _correlate(base: pa.Table, state: dict) -> pa.Table:
    """Teardown orientation from the Built message of the same connection: an as-of join on
    the connection key (ID, or the ICMP address tuple, and the reporting host) against the
    Built rows of this and earlier batches of the file."""
    conn = pc.fill_null(pc.is_in(base["fam"], value_set=pa.array(["built", "teardown", "icmp_conn"])), False)
    if not pc.any(conn).as_py():
        return base.append_column("corr_out", pa.nulls(base.num_rows, pa.bool_()))
    keyed = asim.query("""
        SELECT _pos, _line,
               CASE WHEN fam IN ('built', 'teardown') AND sid IS NOT NULL
                      THEN 'c:' || sid || '@' || coalesce(host, '')
                    WHEN fam = 'icmp_conn'
                      THEN 'i:' || coalesce(a_ip, '') || '/' || coalesce(a_id, '') || '|' ||
                           coalesce(b_mip, '') || '/' || coalesce(g_id, '') || '|' ||
                           coalesce(b_ip, '') || '/' || coalesce(b_id, '') || '@' || coalesce(host, '')
               END AS key,
               lower(dir) = 'outbound' AS outbound,
               (fam = 'built' OR (fam = 'icmp_conn' AND verb = 'Built')) AND dir IS NOT NULL AS is_built,
               fam = 'teardown' OR (fam = 'icmp_conn' AND verb = 'Teardown' AND dir IS NULL) AS is_down
        FROM base WHERE ok""", base=base.select(["_pos", "_line", "fam", "verb", "sid", "host", "a_ip",
                                                   "a_id", "b_mip", "g_id", "b_ip", "b_id", "dir", "ok"]))
    new = asim.query("SELECT key, _line, outbound FROM keyed WHERE is_built AND key IS NOT NULL",
                     keyed=keyed)
    built = new if state.get("built") is None else pa.concat_tables([state["built"], new])
    down = asim.query("SELECT _pos, _line, key FROM keyed WHERE is_down AND key IS NOT NULL", keyed=keyed)
    corr_out = pa.nulls(base.num_rows, pa.bool_())
    if down.num_rows and built.num_rows:
        matched = asim.query("""
            SELECT d._pos, b.outbound, b._line AS bline, b.key FROM down d
            ASOF JOIN built b ON d.key = b.key AND d._line >= b._line""", down=down, built=built)
        if matched.num_rows:
            corr_out = _align(matched, base["_pos"].combine_chunks(),
                              matched["_pos"].combine_chunks())["outbound"].combine_chunks()
            built = asim.query("""
                SELECT b.* FROM built b ANTI JOIN matched m ON b.key = m.key AND b._line = m.bline""",
                               built=built, matched=matched)
    if built.num_rows > _STATE_CAP:
        built = asim.query(f"SELECT * FROM built ORDER BY _line DESC LIMIT {_STATE_CAP}", built=built)
    state["built"] = built
    return base.append_column("corr_out", corr_out)


def _finalize(base: pa.Table) -> pa.Table:
    reason_key = "lower(trim(reason))"
    r_action = _sql_map({k: v[0] for k, v in TEARDOWN_REASONS.items() if v[0]}, reason_key)
    r_result = _sql_map({k: v[1] for k, v in TEARDOWN_REASONS.items() if v[1]}, reason_key)
    r_details = _sql_map({k: v[2] for k, v in TEARDOWN_REASONS.items() if v[2]}, reason_key)
    services = _sql_map(SERVICES, "lower(svc)")
    cef_act = _sql_map(_CEF_ACTIONS, "lower(cef_act)")
    supported = ", ".join(f"'{m}'" for m in SUPPORTED)
    def ip(x: str) -> str:  # an address (vs. an ASA `names` host name); cheap, computed once per column
        return f"coalesce(contains({x}, ':') OR regexp_full_match({x}, '\\d{{1,3}}(\\.\\d{{1,3}}){{3}}'), false)"

    mapped = ("CASE WHEN {p}m_isip AND ({p}_maddr <> coalesce({p}_addr, '')"
              " OR coalesce({p}_mport, '') <> coalesce({p}_port, '')) THEN {p}_{what} END")

    def side(which: str, x: str) -> str:
        first, second = ("a", "b") if which == "s" else ("b", "a")
        return f"CASE WHEN sw THEN {second}_{x} ELSE {first}_{x} END"

    def user(expr: str) -> str:
        return f"nullif(trim(split_part({expr}, ',', 1)), '')"

    fqdn = "regexp_full_match(coalesce({u}, ''), '[^\\\\@\\s]+\\.[^\\\\@\\s]+')"
    additional = bag_sql({
        "TcpFlags": "flags",
        "TeardownInitiator": "initiator",
        "AclHitInterval": "interval",
        "DstService": "CASE WHEN fam = 'to_the_box' AND NOT regexp_full_match(svc, '\\d+') THEN svc END",
        "SyslogFacility": "CASE WHEN fac <> 'ASA' THEN fac END",
    }, text=True)
    text = f"""
    WITH o AS (
      SELECT *,
        coalesce(CASE WHEN fam IN ('built', 'icmp_conn') AND dir IS NOT NULL
                      THEN lower(dir) = 'outbound' END, corr_out, false) AS sw,
        CASE WHEN lower(dir) = 'inbound' THEN 'Inbound' WHEN lower(dir) = 'outbound' THEN 'Outbound'
             WHEN corr_out THEN 'Outbound' WHEN NOT corr_out THEN 'Inbound' END AS direction,
        coalesce(upper(proto) LIKE 'ICMP%', false) AS icmp
      FROM base
    ), s AS (
      SELECT *,
        {side('s', 'ip')} AS s_addr, {side('d', 'ip')} AS d_addr,
        CASE WHEN icmp AND fam = 'acl' THEN NULL ELSE {side('s', 'port')} END AS s_port,
        CASE WHEN icmp AND fam = 'acl' THEN NULL
             WHEN fam = 'to_the_box' THEN CASE WHEN regexp_full_match(svc, '\\d+') THEN svc
                                                ELSE CAST({services} AS VARCHAR) END
             ELSE {side('d', 'port')} END AS d_port,
        {side('s', 'mip')} AS s_maddr, {side('d', 'mip')} AS d_maddr,
        {side('s', 'mport')} AS s_mport, {side('d', 'mport')} AS d_mport,
        {user(side('s', 'user'))} AS s_ident, {user(side('d', 'user'))} AS d_ident,
        lower(coalesce({side('s', 'ifc')}, ifc)) AS in_ifc, lower({side('d', 'ifc')}) AS out_ifc,
        CASE WHEN icmp AND fam = 'acl' THEN a_port ELSE itype END AS it,
        CASE WHEN icmp AND fam = 'acl' THEN b_port ELSE icode END AS ic,
        coalesce(host, cef_dvchost, cef_dvc) AS dvc_
      FROM o
    ), g AS (
      SELECT *,
        {ip('s_addr')} AS s_isip, {ip('d_addr')} AS d_isip, {ip('dvc_')} AS dvc_isip,
        {ip('s_maddr')} AS sm_isip, {ip('d_maddr')} AS dm_isip,
        {fqdn.format(u='s_ident')} AS s_ident_host, {fqdn.format(u='d_ident')} AS d_ident_host
      FROM s
    ), f AS (
      SELECT *,
        CASE WHEN s_isip THEN s_addr END AS s_ip, CASE WHEN NOT s_isip THEN s_addr END AS s_name,
        CASE WHEN d_isip THEN d_addr END AS d_ip, CASE WHEN NOT d_isip THEN d_addr END AS d_name
      FROM g
    )
    SELECT
      _line, _raw,
      (NOT is_cef AND hdr_ok AND msgid NOT IN ({supported}))
        OR (is_cef AND coalesce(msgid, '') NOT IN ({supported}) AND lower(coalesce(cvendor, '')) = 'cisco')
        AS _skip,
      CASE
        WHEN NOT is_cef AND NOT hdr_ok THEN 'not a Cisco ASA syslog or CEF record'
        WHEN is_cef AND NOT (lower(coalesce(cvendor, '')) = 'cisco'
                             AND regexp_matches(coalesce(cproduct, ''), '(?i)ASA|Adaptive Security|FTD|Firepower'))
          THEN 'CEF record from ' || coalesce(cvendor, '') || '|' || coalesce(cproduct, '') || ', not Cisco ASA'
        WHEN is_cef AND NOT coalesce(ok, false) AND coalesce(cef_src, cef_c6a2, cef_dst, cef_c6a3) IS NULL
          THEN 'ASA ' || msgid || ' CEF record: no parsable msg= text and no src/dst'
        WHEN NOT is_cef AND NOT coalesce(ok, false)
          THEN 'ASA ' || msgid || ': message text does not match the documented format'
      END AS _error,
      tg AS "TimeGenerated",
      CASE WHEN fam = 'acl' THEN CASE WHEN TRY_CAST(hits AS BIGINT) = 0 THEN '1' ELSE hits END
           ELSE cef_cnt END AS "EventCount",
      'NetworkSession' AS "EventType",
      CASE WHEN fam = 'icmp_conn' THEN CASE verb WHEN 'Built' THEN 'Start' ELSE 'End' END
           ELSE subtype END AS "EventSubType",
      CASE WHEN fam = 'teardown' AND msgid = '302014' THEN coalesce({r_result}, 'NA') END AS "EventResult",
      CASE WHEN fam = 'teardown' AND msgid = '302014' THEN {r_details} END AS "EventResultDetails",
      msgid AS "EventOriginalType",
      reason AS "EventOriginalResultDetails",
      CASE WHEN is_cef THEN cdver END AS "EventProductVersion",
      dvc_ AS "Dvc",
      CASE WHEN dvc_isip THEN dvc_ END AS "DvcIpAddr",
      CASE WHEN NOT dvc_isip THEN dvc_ END AS "DvcHostname",
      coalesce(
        CASE fam WHEN 'acl' THEN CASE lower(act) WHEN 'denied' THEN 'Deny' ELSE 'Allow' END
                 WHEN 'to_the_box' THEN CASE msgid WHEN '710002' THEN 'Allow' WHEN '710003' THEN 'Deny'
                                                    ELSE 'Drop' END
                 WHEN 'teardown' THEN CASE WHEN msgid = '302016' THEN 'Allow' ELSE {r_action} END
                 ELSE action END,
        CASE WHEN is_cef THEN {cef_act} END) AS "DvcAction",
      coalesce(act, CASE WHEN is_cef THEN cef_act END) AS "DvcOriginalAction",
      coalesce(in_ifc, lower(cef_deviceInboundInterface)) AS "DvcInboundInterface",
      coalesce(out_ifc, lower(cef_deviceOutboundInterface)) AS "DvcOutboundInterface",
      coalesce(proto, cef_proto) AS "NetworkProtocol",
      {_syslog.ip_version_sql('coalesce(s_ip, d_ip, cef_src, cef_dst, cef_c6a2, cef_c6a3)')}
        AS "NetworkProtocolVersion",
      CASE WHEN fam = 'deny_inbound' AND msgid = '106007' THEN 'DNS' END AS "NetworkApplicationProtocol",
      coalesce(direction, CASE cef_deviceDirection WHEN '0' THEN 'Inbound' WHEN '1' THEN 'Outbound' END)
        AS "NetworkDirection",
      CASE WHEN dur IS NOT NULL THEN
        (TRY_CAST(split_part(dur, ':', 1) AS BIGINT) * 3600 + TRY_CAST(split_part(dur, ':', 2) AS BIGINT) * 60
         + TRY_CAST(split_part(dur, ':', 3) AS BIGINT)) * 1000 END AS "NetworkDuration",
      coalesce(bytes,
        CASE WHEN cef_in IS NULL AND cef_out IS NULL THEN NULL
             WHEN regexp_full_match(coalesce(cef_in, '0'), '\\d{{1,18}}')
                  AND regexp_full_match(coalesce(cef_out, '0'), '\\d{{1,18}}')
               THEN CAST(coalesce(TRY_CAST(cef_in AS BIGINT), 0) + coalesce(TRY_CAST(cef_out AS BIGINT), 0) AS VARCHAR)
             ELSE 'in/out not integers: ' || coalesce(cef_in, '') || '/' || coalesce(cef_out, '') END)
        AS "NetworkBytes",
      coalesce(acl, CASE WHEN is_cef THEN coalesce(cef_rule, cef_cs2) END) AS "NetworkRuleName",
      coalesce(sid, cef_externalId) AS "NetworkSessionId",
      {icmp_type_sql('it', "upper(coalesce(proto, '')) IN ('ICMP6', 'ICMPV6', 'IPV6-ICMP') OR coalesce(s_ip, d_ip, '') LIKE '%:%'")}
        AS "NetworkIcmpType",
      ic AS "NetworkIcmpCode",
      coalesce(s_ip, CASE WHEN s_addr IS NULL THEN coalesce(cef_src, cef_c6a2) END) AS "SrcIpAddr",
      coalesce(s_port, CASE WHEN s_addr IS NULL THEN cef_spt END) AS "SrcPortNumber",
      coalesce(s_name, CASE WHEN s_ident_host THEN s_ident END) AS "SrcHostname",
      coalesce(CASE WHEN NOT s_ident_host THEN s_ident END, {user('t_user')}, cef_suser) AS "SrcUsername",
      coalesce({mapped.format(p='s', what='maddr')},
               CASE WHEN s_addr IS NULL THEN cef_sourceTranslatedAddress END) AS "SrcNatIpAddr",
      coalesce({mapped.format(p='s', what='mport')},
               CASE WHEN s_addr IS NULL THEN cef_sourceTranslatedPort END) AS "SrcNatPortNumber",
      coalesce(d_ip, CASE WHEN d_addr IS NULL THEN coalesce(cef_dst, cef_c6a3) END) AS "DstIpAddr",
      coalesce(d_port, CASE WHEN d_addr IS NULL THEN cef_dpt END) AS "DstPortNumber",
      coalesce(d_name, CASE WHEN d_ident_host THEN d_ident END) AS "DstHostname",
      coalesce(CASE WHEN NOT d_ident_host THEN d_ident END, cef_duser) AS "DstUsername",
      coalesce({mapped.format(p='d', what='maddr')},
               CASE WHEN d_addr IS NULL THEN cef_destinationTranslatedAddress END) AS "DstNatIpAddr",
      coalesce({mapped.format(p='d', what='mport')},
               CASE WHEN d_addr IS NULL THEN cef_destinationTranslatedPort END) AS "DstNatPortNumber",
      {additional} AS "AdditionalFields"
    FROM f
    """
    return asim.query(text, base=base)


SOURCE = CiscoAsa(
    name="cisco-asa", vendor="Cisco", product="ASA", priority=10,
    forms=("ASA/FTD syslog: [<PRI>] [Mon dd [yyyy] hh:mm:ss [ZONE] | ISO] [host] : "
           "%ASA-<sev>-<msgid>: text (106001/006/007/010/014/015/016/018/021/022/023, 106100, "
           "302013/014/015/016/020/021, 710002-005; other IDs are skipped)",
           "ASA CEF: [syslog header] CEF:0|Cisco|ASA|ver|<msgid>|name|sev|ext (msg= parsed as ASA text)"),
)
