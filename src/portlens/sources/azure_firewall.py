"""Azure Firewall network and NAT rule logs (source `azure-firewall`).

Raw forms accepted (gzip or not): diagnostic-setting JSON lines (storage PT1H.json), Event Hub
`{"records": [...]}` wrappers (one per line or one pretty-printed document) and Log Analytics
JSON exports (top-level `msg_s` / `SourceIp` ... columns with `Category` / `Type`), of:

* **Legacy AzureDiagnostics**, category `AzureFirewallNetworkRule` (operations NetworkRuleLog,
  NatRuleLog, ThreatIntelLog), free-text `properties.msg` (`msg_s`):
  - `<PROTO> request from <ip>:<port> to <ip>:<port>. Action: <Allow|Deny>. [Rule Collection…]`
    (`Action: Allow..` with a double dot is fine),
  - `ICMP Type=8 request from <ip> to <ip>. Action: Deny.` (no ports),
  - empty ports (`192.168.0.2:` -> NULL port),
  - DNAT: `… to <ip>:<port> was DNAT'ed to <ip>:<port>[. Policy: …]` (no Action -> Allow),
  - ThreatIntel: `HTTP request from … to <fqdn>:80. Url: …. Action: Deny. ThreatIntel: …`,
  - IDPS: `… Action: drop|alert. Signature: N. IDS: …. Priority: N. Classification: …`.
* **Resource-specific** tables `AZFWNetworkRule`, `AZFWNatRule`, `AZFWIdpsSignature`,
  `AZFWThreatIntel` (structured properties SourceIp, SourcePort, DestinationIp,
  DestinationPort, Protocol, Action, ActionReason, Policy, RuleCollectionGroup, RuleCollection,
  Rule, TranslatedIp, TranslatedPort, SignatureId, Severity, ...).

Decisions (spec 2.3, Sentinel's vimNetworkSessionAzureFirewall 0.2.0):

* Action (any case): Allow -> Allow, Deny -> Deny, Drop -> Drop; a NAT rule record (no
  Action) -> Allow. `Alert` (IDPS signature or threat-intel alert mode) is **not a firewall
  action**: the traffic was neither allowed nor blocked by that log line, and the same session
  is logged again by its network/NAT rule, so alert records are skipped (counted, not rows) --
  the Sentinel parser drops ALERT rows for the same reason. Another unknown action word keeps
  the raw value in DvcOriginalAction with DvcAction NULL.
* Out of scope, skipped (counted): application rules (`AzureFirewallApplicationRule`,
  `AZFWApplicationRule`: web sessions, ASIM WebSession), DNS proxy / `AZFWDnsQuery`,
  `AZFWFqdnResolveFailure`, `AZFWFlowTrace`, the `*Aggregation` tables and any non-firewall
  record. Unlike Sentinel (whose legacy `parse-where` needs ports), legacy ICMP lines without
  ports are kept, with NULL ports.
* Protocol: upper-cased; anything starting `ICMP` -> ICMP with the `Type=N` number mapped to
  its IANA name in NetworkIcmpType (Sentinel puts the *type* number in NetworkIcmpCode; we
  leave the code NULL since the log has none). HTTP/HTTPS (threat-intel lines) -> TCP with
  NetworkApplicationProtocol HTTP/HTTPS. A name that is no IANA keyword -> NULL, raw value in
  AdditionalFields.OriginalProtocol.
* An FQDN where an address would be (threat-intel lines) goes to Src/DstHostname, the IP column
  stays NULL. IPv6 endpoints may be bracketed (`[::1]:443`); a bare multi-colon token is an
  address without port.
* DNAT: "to" endpoint -> DstIpAddr/DstPortNumber, "DNAT'ed to" / TranslatedIp:Port ->
  DstNatIpAddr/DstNatPortNumber.
* Severity: ThreatIntel -> Medium; IDPS Severity/Priority 1..4 -> High, Medium, Low,
  Informational; else derived from the action. Rule -> NetworkRuleName; ActionReason ->
  EventOriginalResultDetails; Policy, RuleCollection(Group), ThreatIntel, signature and URL
  details -> AdditionalFields. resourceId -> DvcId (AzureResourceId), Dvc = firewall name.
  EventType NetworkSession, EventCount 1, TimeGenerated = EventStart = EventEnd = `time`.
* Line numbers: file line for JSON lines; record ordinal for a multi-line JSON document
  (see _records.json_records). A legacy message that does not read as a session (no
  "request from … to …", or no Action outside DNAT) is quarantined.
"""

from __future__ import annotations

import re
from typing import Iterator

import pyarrow as pa

from ._json_fields import Fields, json_field_batches, record_fields
from ._sql import ICMP4_TYPES, bag_sql, iana_sql, lit, looks_ip
from ._tables import is_table_export
from .base import BATCH_LINES, Batch, Query, Source, materialize

_STRUCTURED = ("AZFWNetworkRule", "AZFWNatRule", "AZFWIdpsSignature", "AZFWThreatIntel")
_LEGACY = ("AzureFirewallNetworkRule",)

_MSG_RE = (r"^\s*(\S+?)(?: Type=(\d+))? request from (\S+) to (\S+?)"
           r"(?: was DNAT'ed to (\S+?))?(?:\.(?:\s+(.*))?)?\s*$")

# JSON paths read from each record: storage layout (properties.X) then export layout (X).
_FIELDS = ["SourceIp", "SourcePort", "DestinationIp", "DestinationPort", "Protocol", "Action",
           "ActionReason", "Policy", "RuleCollectionGroup", "RuleCollection", "Rule", "TranslatedIp",
           "TranslatedPort", "SignatureId", "Description", "Severity", "ThreatDescription", "Fqdn",
           "TargetUrl", "IsTlsInspected"]
_TOP = {"category": ["$.category"], "typ": ["$.Type"], "cat2": ["$.Category"],
        "op": ["$.operationName", "$.OperationName"], "msg": ["$.properties.msg", "$.msg_s", "$.msg"],
        "time": ["$.time", "$.TimeGenerated", "$.timeStamp"],
        "rid": ["$.resourceId", "$.ResourceId", "$._ResourceId"], "uid": ["$._ItemId"],
        "idps_category": ["$.properties.Category"]}


_MSG_GROUPS = ("proto", "itype", "src", "dst", "nat", "rest")
# The two shapes of nearly every message, as whole-message patterns (DFA, no captures: several
# times cheaper than capturing with _MSG_RE): `... to <dst>.[ <rest>]` and
# `... to <dst> was DNAT'ed to <nat>[ ...|.[ <rest>]]`, blanks being single spaces (RE2's \s is
# [\t\n\f\r ]). On these, _MSG_RE's captures are the message cut at its spaces (`_message`).
_HEAD = r"[^\s]+(?: Type=[0-9]+)? request from [^\s]+ to "
_REST = r"(?: [^\t\n\f\r]*)?"
_DOTTED = _HEAD + r"[^\s]+\." + _REST
_DNAT = _HEAD + r"[^\s]*[^\s.] was DNAT'ed to (?:[^\s]*[^\s.] *|[^\s]+\." + _REST + ")"


def _shape(msg: str) -> str:
    """SQL: 1 for a message of the _DOTTED shape, 2 for _DNAT, 0 for another."""
    return (f"CASE WHEN regexp_full_match({msg}, {lit(_DOTTED)}) THEN 1 "
            f"WHEN regexp_full_match({msg}, {lit(_DNAT)}) THEN 2 ELSE 0 END")


def _message(msg: str, shape: str, words: str) -> str:
    """SQL: `regexp_extract(msg, _MSG_RE, _MSG_GROUPS)`, given `shape` (`_shape(msg)`) and, for
    a common shape, `words`: `string_split(msg, ' ')` (one split: split_part costs as much
    each). There the lazy destination (or DNAT target) is its word less the final dot when a
    dot ends it, and the rest is what follows the spaces after that."""
    o = f"({words}[2] <> 'request')::INTEGER"  # 1: `Type=N` after the protocol

    def word(i: int) -> str:
        return f"{words}[{i} + {o}]"
    # where what follows the destination starts: P [Type=N] `request from ` S ` to ` T
    after = (f"length({words}[1]) + 1 + {o} * (length({words}[2]) + 1) + 13 + length({word(4)}) + 4 "
             f"+ length({word(6)}) + 1")
    after_nat = f"{after} + 16 + length({word(10)})"  # ` was DNAT'ed to ` N

    def struct(dst: str, nat: str, rest: str) -> str:
        itype = f"CASE WHEN {o} = 1 THEN substr({words}[2], 6) ELSE '' END"
        values = (f"{words}[1]", itype, word(4), dst, nat, rest)
        return "{" + ", ".join(f"{lit(g)}: {v}" for g, v in zip(_MSG_GROUPS, values)) + "}"

    def less_dot(token: str) -> str:
        return f"left({token}, length({token}) - 1)"
    groups = ", ".join(lit(g) for g in _MSG_GROUPS)
    return f"""CASE {shape}
        WHEN 1 THEN {struct(less_dot(word(6)), "''", f"ltrim(substr({msg}, {after}))")}
        WHEN 2 THEN CASE WHEN ends_with({word(10)}, '.')
          THEN {struct(word(6), less_dot(word(10)), f"ltrim(substr({msg}, {after_nat}))")}
          ELSE {struct(word(6), word(10), "''")} END
        ELSE regexp_extract({msg}, {lit(_MSG_RE)}, [{groups}]) END"""


_ENDPOINT_RE = r"^(?:\[([^\]]*)\](?::([0-9]*))?|([^:]*):([0-9]*)|(.*))$"


def _endpoint(token: str) -> str:
    """SQL struct (v6, v6p, h, p, bare) from an endpoint token: `[v6]:p`, `host:p`, `host:` or
    a bare host (an IPv6 address without brackets has several colons: it is bare)."""
    return f"regexp_extract({token}, '{_ENDPOINT_RE}', ['v6', 'v6p', 'h', 'p', 'bare'])"


def _host(ep: str) -> str:
    return f"coalesce(NULLIF({ep}.v6, ''), NULLIF({ep}.h, ''), NULLIF({ep}.bare, ''))"


def _port(ep: str) -> str:
    return f"coalesce(NULLIF({ep}.v6p, ''), NULLIF({ep}.p, ''))"


def _after(label: str) -> str:
    """SQL extracting `Label: value` (value up to the next `. ` or the end) from `rest`; the
    regex runs only on messages that contain the label."""
    return (f"CASE WHEN contains(rest, '{label}:') THEN NULLIF(trim(regexp_extract(rest, "
            f"'(?:^|[.]\\s+){label}:\\s*(.*?)(?:[.](?:\\s|$)|$)', 1)), '') END")


# Values that feed only the columns in _DETAIL_COLUMNS: a statement that does not yield those
# does not read them (each JSON path read costs, see _json_fields).
_DETAIL = frozenset({"uid", "idps_category", *(f"p_{f}" for f in (
    "ActionReason", "Policy", "RuleCollectionGroup", "RuleCollection", "Rule", "TranslatedIp", "SignatureId",
    "Description", "TargetUrl", "IsTlsInspected"))})
_DETAIL_COLUMNS = frozenset({"AdditionalFields", "NetworkRuleName", "EventOriginalResultDetails", "DstNatIpAddr",
                             "EventOriginalUid"})


def _named_paths(lean: bool = False) -> list[tuple[str, list[str]]]:
    """(value, its JSON paths in the order tried) for every value the mapping reads (lean:
    but the _DETAIL ones)."""
    named = [*_TOP.items(), *((f"p_{f}", [f"$.properties.{f}", f"$.{f}"]) for f in _FIELDS)]
    return [(name, ps) for name, ps in named if not (lean and name in _DETAIL)]


def paths(lean: bool = False) -> list[str]:
    """The JSON paths whose texts `_sql(lean)` reads from `_v`, in order."""
    return [p for _, ps in _named_paths(lean) for p in ps]


def _sql(lean: bool = False) -> str:
    """The mapping, as the CTEs that follow `a`: the records' `_line`, `_raw`, `_error` (framing's
    reason; such a row is neither parsed nor skipped) and `_v`, the texts at paths(lean). Lean:
    the _DETAIL values are NULL, so the _DETAIL_COLUMNS are wrong (the others are the same)."""
    pos, cols = 1, []
    for name, ps in _named_paths(lean):
        items = [f"NULLIF(_v[{pos + i}], '')" for i in range(len(ps))]
        cols.append(f"{items[0] if len(items) == 1 else 'coalesce(' + ', '.join(items) + ')'} AS \"{name}\"")
        pos += len(ps)
    if lean:
        cols.extend(f'NULL::VARCHAR AS "{name}"' for name in sorted(_DETAIL))
    icmp_map = ", ".join(f"{k}: '{v}'" for k, v in ICMP4_TYPES.items())  # unnamed types: NULL
    legacy_cats = ", ".join(f"'{c}'" for c in _LEGACY)
    struct_cats = ", ".join(f"'{c}'" for c in _STRUCTURED)
    bag = bag_sql([("Policy", "policy"), ("RuleCollectionGroup", "rcg"), ("RuleCollection", "rc"),
                   ("ThreatIntel", "threat"), ("SignatureId", "sig"), ("IdpsDescription", "ids"),
                   ("IdpsCategory", "idpscat"), ("Url", "url"), ("Fqdn", "fqdn"),
                   ("IsTlsInspected", "tls"),
                   ("OriginalProtocol", "CASE WHEN iana IS NULL THEN rawproto END")], text=True)
    return f"""
    b AS (
      SELECT _line, _raw, _error AS _framing, {', '.join(cols)} FROM a),
    c AS (
      SELECT *, coalesce(category, NULLIF(typ, 'AzureDiagnostics'), cat2) AS cat FROM b),
    c1 AS (
      SELECT *, cat IN ({struct_cats}) AS structured, cat IN ({legacy_cats}) AS legacy,
        CASE WHEN cat IN ({legacy_cats}) THEN {_shape('msg')} END AS _shape
      FROM c),
    c2 AS (
      SELECT *, CASE WHEN _shape > 0 THEN string_split(msg, ' ') END AS _words FROM c1),
    d AS (
      SELECT *, CASE WHEN legacy THEN {_message('msg', '_shape', '_words')} END AS m FROM c2),
    e AS (
      SELECT *, m.rest AS rest,
        CASE WHEN legacy THEN {_endpoint('m.src')} END AS es,
        CASE WHEN legacy THEN {_endpoint('m.dst')} END AS ed,
        CASE WHEN legacy AND m.nat <> '' THEN {_endpoint('m.nat')} END AS en
      FROM d),
    f AS (
      SELECT _line, _raw, _framing, structured, legacy, cat, op, time, rid, uid, msg,
        legacy AND NULLIF(m.src, '') IS NOT NULL AS parsed,
        CASE WHEN structured THEN p_Protocol ELSE NULLIF(m.proto, '') END AS rawproto,
        CASE WHEN structured THEN TRY_CAST(regexp_extract(p_Protocol, '(?i)type=([0-9]+)', 1) AS INTEGER)
             ELSE TRY_CAST(m.itype AS INTEGER) END AS itype,
        CASE WHEN structured THEN p_SourceIp ELSE {_host('es')} END AS src,
        CASE WHEN structured THEN p_SourcePort ELSE {_port('es')} END AS sport,
        CASE WHEN structured THEN coalesce(p_DestinationIp, p_Fqdn) ELSE {_host('ed')} END AS dst,
        CASE WHEN structured THEN p_DestinationPort ELSE {_port('ed')} END AS dport,
        CASE WHEN structured THEN p_TranslatedIp ELSE {_host('en')} END AS natip,
        CASE WHEN structured THEN p_TranslatedPort ELSE {_port('en')} END AS natport,
        CASE WHEN structured THEN p_Action
             ELSE NULLIF(regexp_extract(rest, '(?i)(?:^|[.]\\s+)Action:\\s*([A-Za-z]+)', 1), '') END AS action,
        legacy AND NULLIF(m.nat, '') IS NOT NULL OR cat = 'AZFWNatRule' AS is_nat,
        CASE WHEN structured THEN p_Rule ELSE {_after('Rule')} END AS rule,
        CASE WHEN structured THEN p_RuleCollection ELSE {_after('Rule Collection')} END AS rc,
        CASE WHEN structured THEN p_RuleCollectionGroup ELSE {_after('Rule Collection Group')} END AS rcg,
        CASE WHEN structured THEN p_Policy ELSE {_after('Policy')} END AS policy,
        CASE WHEN structured THEN p_ThreatDescription ELSE {_after('ThreatIntel')} END AS threat,
        CASE WHEN structured THEN p_SignatureId ELSE {_after('Signature')} END AS sig,
        CASE WHEN structured THEN p_Description ELSE {_after('IDS')} END AS ids,
        CASE WHEN structured THEN coalesce(idps_category, CASE WHEN cat = 'AZFWIdpsSignature' THEN cat2 END)
             ELSE {_after('Classification')} END AS idpscat,
        CASE WHEN structured THEN p_TargetUrl ELSE {_after('Url')} END AS url,
        p_Fqdn AS fqdn,
        CASE WHEN structured THEN TRY_CAST(p_Severity AS INTEGER)
             ELSE TRY_CAST({_after('Priority')} AS INTEGER) END AS sev,
        p_ActionReason AS reason, p_IsTlsInspected AS tls
      FROM e),
    h0 AS (
      SELECT *, upper(rawproto) AS uproto, upper(action) AS uaction,
        CASE WHEN upper(rawproto) LIKE 'ICMP%' THEN 'ICMP'
             WHEN upper(rawproto) IN ('HTTP', 'HTTPS') THEN 'TCP' ELSE upper(rawproto) END AS proto,
        coalesce({looks_ip('src')}, false) AS src_ip, coalesce({looks_ip('dst')}, false) AS dst_ip
      FROM f),
    h AS (
      SELECT *, {iana_sql('proto')} AS iana FROM h0)
    SELECT _line, _raw,
      time AS TimeGenerated,
      CASE WHEN src_ip THEN src END AS SrcIpAddr,
      CASE WHEN NOT src_ip THEN src END AS SrcHostname,
      sport AS SrcPortNumber,
      CASE WHEN dst_ip THEN dst END AS DstIpAddr,
      CASE WHEN NOT dst_ip THEN dst END AS DstHostname,
      dport AS DstPortNumber,
      natip AS DstNatIpAddr, natport AS DstNatPortNumber,
      iana AS NetworkProtocol,
      CASE WHEN uproto IN ('HTTP', 'HTTPS') THEN uproto END AS NetworkApplicationProtocol,
      CASE WHEN proto = 'ICMP' THEN MAP {{{icmp_map}}}[itype] END AS NetworkIcmpType,
      CASE WHEN src_ip THEN CASE WHEN contains(src, ':') THEN 'IPv6' ELSE 'IPv4' END END
        AS NetworkProtocolVersion,
      CASE WHEN uaction = 'ALLOW' THEN 'Allow' WHEN uaction = 'DENY' THEN 'Deny' WHEN uaction = 'DROP' THEN 'Drop'
           WHEN action IS NULL AND (is_nat OR structured) THEN 'Allow' END AS DvcAction,
      action AS DvcOriginalAction,
      reason AS EventOriginalResultDetails,
      CASE WHEN cat = 'AZFWThreatIntel' OR op = 'AzureFirewallThreatIntelLog' OR threat IS NOT NULL THEN 'Medium'
           WHEN sev BETWEEN 1 AND 4 THEN ['High', 'Medium', 'Low', 'Informational'][sev] END AS EventSeverity,
      rule AS NetworkRuleName,
      rid AS DvcId, CASE WHEN rid IS NOT NULL THEN 'AzureResourceId' END AS DvcIdType,
      NULLIF(regexp_extract(rid, '[^/]+$'), '') AS Dvc,
      CASE WHEN structured THEN cat ELSE coalesce(op, cat) END AS EventOriginalType,
      uid AS EventOriginalUid,
      'NetworkSession' AS EventType,
      {bag} AS AdditionalFields,
      CASE WHEN _framing IS NOT NULL THEN _framing
           WHEN legacy AND NOT coalesce(parsed, false)
             THEN 'firewall message not understood: ' || coalesce(msg, '(no msg)')
           WHEN legacy AND action IS NULL AND NOT is_nat THEN 'firewall message has no Action: ' || msg
           WHEN structured AND src IS NULL AND dst IS NULL THEN 'record has no SourceIp or DestinationIp'
      END AS _error,
      _framing IS NULL AND (NOT coalesce(structured OR legacy, false) OR coalesce(uaction = 'ALERT', false))
        AS _skip
    FROM h
    """


_SQL: dict[bool, str] = {}  # lean -> the mapping
_SNIFF = re.compile(rb'"(category|Category|Type|operationName|OperationName)"\s*:\s*"(AzureFirewall|AZFW)')


class AzureFirewall(Source):
    reads_json_documents = True  # (reads pretty JSON documents itself: json_records)

    def sniff(self, head: bytes, path: str) -> bool:
        if is_table_export(head):  # the `sentinel` source reads exports and routes them here
            return False
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        return text[:1] in (b"{", b"[") and bool(_SNIFF.search(head))

    def map_query(self, recs: pa.Table) -> Query:
        """JSON records (`_line`, `_raw`, `rec`) -> the parsed columns, as SQL."""
        return self.map_fields(record_fields(Query("SELECT _line, _raw, rec, NULL::VARCHAR AS _error FROM g",
                                                   {"g": recs.select(["_line", "_raw", "rec"])})))

    def map_fields(self, fields: Fields) -> Query:
        """Records as `Fields` -> the parsed columns; narrowed to columns that need none of the
        _DETAIL values, the statement does not read them."""
        def sql(lean: bool) -> str:
            if lean not in _SQL:
                _SQL[lean] = _sql(lean)
            return f"WITH a AS ({fields.sql(paths(lean))}), {_SQL[lean]}"
        return Query(sql(False), fields.inputs, narrow=lambda keep: sql(keep.isdisjoint(_DETAIL_COLUMNS)))

    def map_records(self, recs: pa.Table) -> pa.Table:
        """JSON records (`_line`, `_raw`, `rec`) -> parsed columns (also fed by `sentinel`)."""
        return materialize(self.map_query(recs))

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        for fields in json_field_batches(path, batch_lines, ("records",)):
            yield self.finish(self.map_fields(fields), path)


SOURCE = AzureFirewall(
    name="azure-firewall", vendor="Microsoft", product="Azure Firewall", priority=10,
    forms=("AzureDiagnostics network/NAT rule JSON (free-text properties.msg / msg_s)",
           "resource-specific AZFWNetworkRule / AZFWNatRule / AZFWIdpsSignature / AZFWThreatIntel JSON",
           "JSON lines, {\"records\":[...]} wrappers or one JSON document"),
)
