"""Sentinel table exports (source `sentinel`): CSV or JSON exports of the Log Analytics tables
the rule reads, each row handed to the mapping of the vendor that wrote it.

Forms accepted (framing in `_tables`): portal CSV exports (`TimeGenerated [UTC]` or
`[Local Time]` in the header, US or day-first times, `null` literals, with or without custom-log
type suffixes), JSON arrays, JSON lines and query API responses `{"tables": [...]}`.

Rows are dispatched by table (the `Type` column; without it, by the columns a row fills) and,
for the tables that mix vendors, by vendor:
* CommonSecurityLog -- by DeviceVendor / DeviceProduct (`CSL_ROUTES`). The vendor's own CEF
  mapping reads the row as the CEF record it was stored from (the CEF key of each column,
  AdditionalExtensions pairs, Message as `msg`): one mapping per vendor, fed from raw lines or
  from table columns. The CEF fields are read straight from the columns (`_cef_fields`) when
  the vendor maps CEF fields (`CefRecords.map_cef`) and every value it reads would read back
  unchanged from CEF text; otherwise the record is written as CEF text and parsed (a test holds
  the two ways to the same result).
* Syslog -- by the shape of SyslogMessage (`SYSLOG_ROUTES`); the message is the raw line.
* Event -- Sysmon events (Source Microsoft-Windows-Sysmon): the EventData XML with the row's
  System fields is the event record the Sysmon parser reads.
* vendor tables (`TABLE_ROUTES`): each row becomes the JSON object the vendor's API or
  connector wrote, parsed by the vendor's JSON reader.
Rows of a vendor, product or table that holds no network sessions are counted as skipped, with
the reason (`Batch.skipped_by`): e.g. Zscaler NSSWeblog rows (web requests: ASIM WebSession).
The Traffic Analytics tables (NTANetAnalytics, AzureNetworkAnalytics_CL) stay with `azure-nsg`,
which reads their exports itself.

Decisions
- TimeGenerated is the table's TimeGenerated, as in every ASIM parser (the rule bins on it);
  the vendor's own event time stays in EventStartTime / EventEndTime. A row whose export time
  cannot be read keeps the vendor's time.
- `[Local Time]` columns are read in the zone given with `--timezone` (IANA name); without it
  they are read as UTC and the batch carries a one-line note saying so. US-locale times
  (AM/PM) are month first; other layouts without AM/PM are day first (every other portal
  locale writes the day first).
- A row routed to a vendor is accounted by that vendor's parser (row, quarantine with the
  export's line and record text, or skip); a table or vendor portlens does not map is skipped
  with its name in the reason, never quarantined (it is not malformed).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from . import _syslog as S
from ._cefsource import CefRecords
from ._sql import col, lit
from ._syslog import COMMON_SECURITY_LOG
from ._tables import SIGNATURES, Export, is_table_export, parse_times
from .base import BATCH_LINES, Batch, Query, Source, Turns, finish, mapped_ahead, query_kinds

# Rows per batch. Exports are wide (CommonSecurityLog has ~150 columns) and each routed row is
# rebuilt as its vendor's record, so a batch is bounded by its values (rows x columns); each
# batch also pays fixed costs (its statements are planned anew, tens of ms each), so a narrow
# export's batches take more rows (1M rows of 17 columns in batches of 50,000 rather than 25,000:
# about 15% less CPU, peak memory about 660 MB rather than 570 MB). Two batches are mapped at
# once (`Sentinel.parse`), so these are half of what one batch at a time had: with the full
# sizes, a 30-column export peaked at 1,377 MiB (about 1,020 one at a time), with these at 847.
EXPORT_BATCH_ROWS = (12_500, 25_000)  # fewest, most
EXPORT_BATCH_VALUES = 500_000

# `--timezone`: the IANA zone `[Local Time]` columns are read in (None: UTC, with a note).
LOCAL_TIMEZONE: contextvars.ContextVar[str | None] = contextvars.ContextVar("portlens_local_timezone",
                                                                            default=None)


@dataclass(frozen=True)
class Route:
    """Where rows go: the vendor source `source` fed as `feed` ('cef': the CEF line rebuilt
    from CommonSecurityLog columns; 'line': the text of column `column`; 'json': the row as a
    JSON object; 'event': Event-table XML), or, with `skip`, nowhere (the reason)."""
    source: str = ""
    feed: str = "cef"
    column: str = "SyslogMessage"
    skip: str = ""


# CommonSecurityLog: (DeviceVendor, DeviceProduct regex, route); first match wins.
CSL_ROUTES: tuple[tuple[str, str, Route], ...] = (
    ("Fortinet", r"(?i)forti", Route("fortinet")),
    ("Cisco", r"(?i)^asa$", Route("cisco-asa")),
    ("Cisco", r"(?i)^ftd$", Route("cisco-ftd", feed="line", column="Message")),
    ("Cisco", r"(?i)firepower", Route("cisco-firepower")),
    ("Zscaler", r"(?i)^NSSFWlog$", Route("zscaler")),
    ("Zscaler", r"(?i)^NSS", Route(skip="Zscaler web/DNS log (NSS feed other than NSSFWlog): not a network session")),
    ("SonicWall", r"", Route("sonicwall")),
    ("CrowdStrike", r"(?i)falcon", Route("crowdstrike")),
    ("Forcepoint", r"(?i)ngfw|firewall", Route("forcepoint")),
    ("Barracuda", r"", Route("barracuda")),
    ("WatchGuard", r"", Route("watchguard")),
    ("Palo Alto Networks", r"", Route("paloalto")),
    ("Check Point", r"", Route("checkpoint")),
    ("Checkpoint", r"", Route("checkpoint")),
)

# Syslog: (SyslogMessage regex, route); first match wins.
SYSLOG_ROUTES: tuple[tuple[str, Route], ...] = (
    (r"^\s*(<\d{1,3}>)?\s*1\s+\d{9,10}(\.\d+)?\s+\S+\s+(flows|firewall|cellular_firewall|vpn_firewall|"
     r"bridge_anyconnect_client_vpn_firewall|ip_flow_start|ip_flow_end|events|urls|ids-alerts|"
     r"security_event|airmarshal_events)\s", Route("meraki", feed="line")),
    (r"%FTD-\d-43000[2-5]", Route("cisco-ftd", feed="line")),
    (r"%(ASA|FTD|PIX|FWSM)-", Route("cisco-asa", feed="line")),
    (r"CEF:\s?\d+\|", Route("", feed="cef-text")),
    (r"\blogid=\"?\d{10}", Route("fortinet", feed="line")),
    (r"(?i)\bdisp=\"?(allow|deny|drop)|msg_id=\"?3000-", Route("watchguard", feed="line")),
    (r"sysmon: <Event", Route("sysmon", feed="line")),
)

# Vendor tables: table -> route. Tables not listed (and not NTA, which azure-nsg reads) are
# skipped with their name in the reason.
TABLE_ROUTES: dict[str, Route] = {
    "Illumio_Flow_Events_CL": Route("illumio", feed="json"),
    "Illumio_Flow_Events2_CL": Route("illumio", feed="json"),
    "CarbonBlackEvents_CL": Route("carbonblack", feed="json"),
    "CarbonBlackNotifications_CL": Route(skip="CarbonBlackNotifications_CL: alerts, not network sessions"),
    "CarbonBlackAuditLogs_CL": Route(skip="CarbonBlackAuditLogs_CL: audit log, not network sessions"),
    "SentinelOne_CL": Route("sentinelone", feed="json"),
    "barracuda_CL": Route("barracuda", feed="json"),
    "SecurityIoTRawEvent": Route("defender-iot", feed="json"),
    "AZFWNetworkRule": Route("azure-firewall", feed="json"),
    "AZFWNatRule": Route("azure-firewall", feed="json"),
    "AZFWThreatIntel": Route("azure-firewall", feed="json"),
    "AZFWIdpsSignature": Route("azure-firewall", feed="json"),
}
# CommonSecurityLog columns with a CEF key, beyond `_syslog.COMMON_SECURITY_LOG`.
CSL_MORE = {
    **{f"FieldDeviceCustomNumber{i}": f"cn{i}" for i in range(1, 4)},
    **{f"DeviceCustomFloatingPoint{i}": f"cfp{i}" for i in range(1, 5)},
    **{f"DeviceCustomFloatingPoint{i}Label": f"cfp{i}Label" for i in range(1, 5)},
    **{f"DeviceCustomIPv6Address{i}": f"c6a{i}" for i in range(1, 5)},
    **{f"DeviceCustomIPv6Address{i}Label": f"c6a{i}Label" for i in range(1, 5)},
    "DeviceCustomDate1": "deviceCustomDate1", "DeviceCustomDate1Label": "deviceCustomDate1Label",
    "DeviceCustomDate2": "deviceCustomDate2", "DeviceCustomDate2Label": "deviceCustomDate2Label",
    "SourceHostName": "shost", "DestinationHostName": "dhost", "SourceUserID": "suid",
    "DestinationUserID": "duid", "SourceProcessName": "sproc", "DestinationProcessName": "dproc",
    "SourceProcessId": "spid", "DestinationProcessId": "dpid", "DeviceEventCategory": "cat",
    "EventOutcome": "outcome", "Reason": "reason", "RequestMethod": "requestMethod",
    "RequestClientApplication": "requestClientApplication", "FileName": "fname",
    "DestinationServiceName": "destinationServiceName", "SourceNTDomain": "sntdom",
    "DestinationNTDomain": "dntdom", "DeviceFacility": "deviceFacility", "DeviceTimeZone": "dtz",
    "DeviceMacAddress": "dvcmac", "DeviceTranslatedAddress": "deviceTranslatedAddress",
    "DeviceDnsDomain": "deviceDnsDomain", "DeviceNtDomain": "deviceNtDomain",
    "DevicePayloadId": "devicePayloadId", "ProcessName": "deviceProcessName",
    "ProcessID": "dvcpid", "DestinationDnsDomain": "destinationDnsDomain",
    "SourceDnsDomain": "sourceDnsDomain", "FileHash": "fileHash", "FilePath": "filePath",
    "FileSize": "fsize", "FileType": "fileType", "FileID": "fileId", "RequestContext": "requestContext",
    "RequestCookies": "requestCookies", "SourceUserPrivileges": "spriv",
    "DestinationUserPrivileges": "dpriv", "SourceServiceName": "sourceServiceName",
    "FlexNumber1": "flexNumber1", "FlexNumber1Label": "flexNumber1Label",
    "FlexNumber2": "flexNumber2", "FlexNumber2Label": "flexNumber2Label",
    "FlexDate1": "flexDate1", "FlexDate1Label": "flexDate1Label", "ExtID": "extId",
}
CSL_HEADER = ("DeviceVendor", "DeviceProduct", "DeviceVersion", "DeviceEventClassID", "Activity", "LogSeverity")
_KEY = r"[A-Za-z0-9_.\-]+"


def export_batch_rows(width: int | None) -> int:
    """Rows per batch for an export of `width` columns (None: not known up front)."""
    fewest, most = EXPORT_BATCH_ROWS
    return fewest if not width else max(fewest, min(most, EXPORT_BATCH_VALUES // width))


def csl_extension_columns() -> dict[str, str]:
    """CommonSecurityLog column -> CEF extension key, for every column that has one."""
    out = {c: k for c, k in {**COMMON_SECURITY_LOG, **CSL_MORE}.items()
           if not k.startswith("_") and c not in CSL_HEADER}
    return out


# ---- the source --------------------------------------------------------------------------------

class Sentinel(Source):
    reads_json_documents = True  # `_tables.Export` reads JSON documents itself

    def sniff(self, head: bytes, path: str) -> bool:
        return is_table_export(head)

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        export = Export(path)
        export.batch_lines = min(batch_lines, export_batch_rows(export.width))
        zone = LOCAL_TIMEZONE.get()
        states: dict[str, dict] = {}  # vendor source -> its per-file state (`Source.start`)
        turns = Turns()

        def parts(item: tuple[int, pa.Table]) -> list[Batch]:
            # one batch per vendor group; each stays pending (its conform statement not run),
            # so the store runs it for the columns it keeps
            number, recs = item
            try:
                # (a batch's turn at the state of a vendor that carries one ends when the
                # whole batch is mapped: its parts for two such vendors take it one by one)
                return [p for p in self._parts(recs, export, path, zone, states, turns.turn(number, release=False))
                        if _holds_records(p)]
            finally:
                turns.end(number)

        noted = False
        # Routing and the vendors' mapping cost more than reading the export: the next batch
        # is mapped in another thread meanwhile.
        for mapped in mapped_ahead(enumerate(export.records()), parts):
            for part in mapped:
                if not noted and zone is None and \
                        export.zones.get("TimeGenerated", "UTC").lower().startswith("local"):
                    part.notes.append(f"{path}: TimeGenerated [Local Time] read as UTC; "
                                      "give --timezone ZONE (e.g. Europe/Paris) to read it in your zone")
                    noted = True
                yield part
            if not mapped:
                yield _merge([])

    def _parts(self, recs: pa.Table, export: Export, path: str, zone: str | None,
               states: dict[str, dict], turn: contextlib.AbstractContextManager) -> Iterator[Batch]:
        local = export.zones.get("TimeGenerated", "UTC").lower().startswith("local")
        n = recs.num_rows
        names = set(recs.column_names)
        text = {c: recs[c].combine_chunks() if isinstance(recs[c], pa.ChunkedArray) else recs[c]
                for c in recs.column_names}
        times = parse_times(text["TimeGenerated"], zone if local else None) if "TimeGenerated" in names \
            else pa.nulls(n, asim.TIMESTAMP)
        table = _tables_per_row(text, n)
        error = pc.is_valid(text["_error"])
        unread = np.flatnonzero(error.to_numpy(zero_copy_only=False))
        if len(unread):
            yield finish(recs.take(pa.array(unread)).select(["_line", "_raw", "_error"]), path, self.name)
        ok = ~error.to_numpy(zero_copy_only=False)
        groups: dict[tuple[str, Route], list[int]] = {}
        skipped: dict[str, list[int]] = {}
        for key, idx in _group(table, ok).items():
            for route, rows in self._routes(key, idx, text).items():
                if route.skip:
                    skipped.setdefault(route.skip, []).extend(rows)
                else:
                    groups.setdefault((key, route), []).extend(rows)
        for (tname, route), rows in groups.items():
            idx = np.array(sorted(rows), np.int64)
            yield self._run(route, tname, idx, text, times, path, states, turn, export.zones, zone)
        for reason, rows in skipped.items():
            yield Batch(asim.empty_table(), asim.QUARANTINE_SCHEMA.empty_table(), len(rows), len(rows),
                        skipped_by={reason: len(rows)})

    # routing ------------------------------------------------------------------------------------
    def _routes(self, tname: str, idx: np.ndarray, text: dict) -> dict[Route, list[int]]:
        n = len(text["_line"])
        if tname == "CommonSecurityLog":
            return _route_by(idx, [(_csl_match(text, v, p), r) for v, p, r in CSL_ROUTES],
                             (_key(text, n, "DeviceVendor", "DeviceProduct"), _unrouted_vendor))
        if tname == "Syslog":
            msg = text.get("SyslogMessage")
            rules = [(_regex(msg, rx), r) for rx, r in SYSLOG_ROUTES] if msg is not None else []
            return _route_by(idx, rules, (_key(text, n, "ProcessName"),
                                          lambda k: "Syslog: message of no known network-session vendor"))
        if tname == "Event":
            source = text.get("Source")
            sysmon = _regex(source, r"(?i)sysmon") if source is not None else None
            return _route_by(idx, [(sysmon, Route("sysmon", feed="event"))] if sysmon is not None else [],
                             (_key(text, n, "Source"),
                              lambda k: f"Event: {k or 'unknown'} events are not network sessions"))
        if tname in TABLE_ROUTES:
            return {TABLE_ROUTES[tname]: list(idx)}
        what = tname or "rows of no recognised table"
        return {Route(skip=f"{what}: not a table of network sessions portlens reads"): list(idx)}

    # running a vendor parser --------------------------------------------------------------------
    def _run(self, route: Route, tname: str, idx: np.ndarray, text: dict, times: pa.Array, path: str,
             states: dict[str, dict], turn: contextlib.AbstractContextManager, zones: dict | None = None,
             zone: str | None = None) -> Batch:
        from . import all_sources
        take = pa.array(idx)
        lines_no = pc.take(text["_line"], take)
        raws = pc.take(text["_raw"], take)
        sub = {k: pc.take(v, take) for k, v in text.items() if not k.startswith("_")}
        feed = route.feed
        if feed == "cef-text":  # a CEF record inside a Syslog message: its vendor decides
            msg = sub["SyslogMessage"]
            out = []
            vendor = pc.extract_regex(msg, r"CEF:\s?\d+\|(?P<v>(?:[^|\\]|\\.)*)\|(?P<p>(?:[^|\\]|\\.)*)\|")
            v, p = pc.struct_field(vendor, "v"), pc.struct_field(vendor, "p")
            text2 = {"DeviceVendor": v, "DeviceProduct": p}
            local = np.arange(len(idx))
            for r, rows in _route_by(local, [(_csl_match(text2, a, b), r) for a, b, r in CSL_ROUTES],
                                     (_key(text2, len(local), "DeviceVendor", "DeviceProduct"),
                                      _unrouted_vendor)).items():
                sel = np.array(sorted(rows), np.int64)
                if r.skip:
                    out.append(Batch(asim.empty_table(), asim.QUARANTINE_SCHEMA.empty_table(), len(sel), len(sel),
                                     skipped_by={r.skip: len(sel)}))
                else:
                    out.append(self._run(Route(r.source, feed="line"), tname, idx[sel], text, times, path, states,
                                         turn, zones, zone))
            return _merge(out)
        source = all_sources().get(route.source)
        if source is None:  # pragma: no cover - a route names a source that does not exist
            return Batch(asim.empty_table(), asim.QUARANTINE_SCHEMA.empty_table(), len(idx), len(idx),
                         skipped_by={f"{route.source}: no such source": len(idx)})
        parsed = _cef_mapped(source, sub, len(idx), raws, lines_no) if feed == "cef" else None
        if feed in ("cef", "line") and parsed is None:
            lines = _cef_lines(sub, len(idx), route) if feed == "cef" else _nonnull(sub.get(route.column), len(idx))
            # (two batches are mapped at once: one state per vendor, whichever starts it)
            state = states[route.source] if route.source in states else \
                states.setdefault(route.source, source.start(path))
            if source.CARRIES_STATE:  # (its state must hold what the batches before wrote)
                parsed = source.map_lines_in_turn(lines, lines_no, state, turn)
            else:
                parsed = source.mapped(lines, lines_no, state)
        elif feed == "json":
            # the record carries the table's times already read (zone applied), as ISO text
            for name, named in (zones or {}).items():
                if name in sub and name != "TimeGenerated":
                    local = named.lower().startswith("local")
                    sub[name] = pc.strftime(parse_times(sub[name], zone if local else None), "%Y-%m-%dT%H:%M:%SZ")
            sub["TimeGenerated"] = pc.strftime(pc.take(times, take), "%Y-%m-%dT%H:%M:%SZ")
            parsed = source.map_records(pa.table({"_line": lines_no, "_raw": raws, "_error": pa.nulls(len(idx), pa.string()),
                                                  "rec": _json_objects(sub, tname)}))
        elif feed == "event":
            parsed = source.map_records(pa.table({"_line": lines_no, "_raw": _event_xml(sub, len(idx)),
                                                  "_error": pa.nulls(len(idx), pa.string()),
                                                  "_skip": pa.repeat(pa.scalar(False), len(idx))}))
        elif parsed is None:  # pragma: no cover
            raise ValueError(f"unknown feed {feed}")
        parsed = _with_export(parsed, lines_no, raws, pc.take(times, take))
        batch = finish(parsed, path, self.name,
                       {"EventVendor": source.vendor, "EventProduct": source.product, **source.defaults})
        batch.skip_reason = f"{source.vendor} {source.product}: records that are not network sessions".strip()
        return batch


# ---- per-row table and routes ----------------------------------------------------------------

def _tables_per_row(text: dict, n: int) -> pa.Array:
    typ = text.get("Type", pa.nulls(n, pa.string()))
    inferred = pa.nulls(n, pa.string())
    for table, needed in reversed(SIGNATURES):
        if all(c in text for c in needed):
            has = pc.is_valid(text[needed[0]])
            for c in needed[1:]:
                has = pc.and_(has, pc.is_valid(text[c]))
            inferred = pc.if_else(has, pa.scalar(table), inferred)
    return pc.fill_null(pc.coalesce(typ, inferred), "")


def _group(table: pa.Array, ok: np.ndarray) -> dict[str, np.ndarray]:
    values = np.array(table.to_pylist(), dtype=object)
    out = {}
    for name in dict.fromkeys(values[ok].tolist()):
        out[name] = np.flatnonzero(ok & (values == name))
    return out


def _regex(values: pa.Array | None, pattern: str) -> np.ndarray | None:
    if values is None:
        return None
    return pc.fill_null(pc.match_substring_regex(values, pattern), False).to_numpy(zero_copy_only=False)


def _csl_match(text: dict, vendor: str, product: str) -> np.ndarray | None:
    v, p = text.get("DeviceVendor"), text.get("DeviceProduct")
    if v is None:
        return None
    hit = pc.fill_null(pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(v)), vendor.lower()), False)
    if product and p is not None:
        hit = pc.and_(hit, pc.fill_null(pc.match_substring_regex(pc.utf8_trim_whitespace(p), product), False))
    return hit.to_numpy(zero_copy_only=False)


def _route_by(idx, rules, unrouted) -> dict[Route, list[int]]:
    """Rows `idx` -> the route of the first rule whose mask is set; the rest are skipped,
    grouped by `unrouted` = (a key per row, key -> reason), the reason built once per key."""
    idx = np.asarray(idx, np.int64)
    out: dict[Route, list[int]] = {}
    left = np.ones(len(idx), np.bool_)
    for mask, route in rules:
        if mask is None or not left.any():
            continue
        hit = left & mask[idx]
        if hit.any():
            out.setdefault(route, []).extend(idx[hit].tolist())
            left &= ~hit
    if left.any():
        keys, describe = unrouted
        rest = idx[left]
        codes = pc.dictionary_encode(pc.take(keys, pa.array(rest)))
        names = codes.dictionary.to_pylist()
        which = codes.indices.to_numpy(zero_copy_only=False)
        for k, name in enumerate(names):
            out.setdefault(Route(skip=describe(name)), []).extend(rest[which == k].tolist())
    return out


def _key(text: dict, n: int, *names: str) -> pa.Array:
    """A text key per row from columns (joined by a unit separator), for grouping skips."""
    cols = [pc.fill_null(text[c], "") if c in text else pa.repeat(pa.scalar("", pa.string()), n) for c in names]
    return cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, "\x1f")


def _unrouted_vendor(key: str) -> str:
    vendor, _, product = key.partition("\x1f")
    return f"CommonSecurityLog: {vendor or '?'} {product or '?'} is not a network-session vendor portlens maps"


def _nonnull(values: pa.Array | None, n: int) -> pa.Array:
    return pa.repeat(pa.scalar("", pa.string()), n) if values is None else pc.fill_null(values, "")


def _holds_records(part: Batch) -> bool:
    """Whether a part holds records (a pending part is kept unread: it holds at least one)."""
    return part.pending is not None or bool(part.records or part.table.num_rows or part.quarantine.num_rows)


def _nonempty(parts: list[Batch]) -> list[Batch]:
    return [p for p in parts if _holds_records(p)]


def _merge(parts: list[Batch]) -> Batch:
    # a pending batch (finish: conform not run yet) stays pending when it is the only part
    parts = _nonempty(parts)
    if not parts:
        return Batch(asim.empty_table(), asim.QUARANTINE_SCHEMA.empty_table(), 0, 0)
    if len(parts) == 1:
        return parts[0]
    skipped_by: dict[str, int] = {}
    notes: list[str] = []
    for p in parts:
        for k, v in p.skipped_by.items():
            skipped_by[k] = skipped_by.get(k, 0) + v
        notes.extend(p.notes)
    return Batch(pa.concat_tables([p.table for p in parts]), pa.concat_tables([p.quarantine for p in parts]),
                 sum(p.skipped for p in parts), sum(p.records for p in parts), skipped_by=skipped_by, notes=notes)


def _with_export(parsed: "pa.Table | Query", lines_no: pa.Array, raws: pa.Array, times: pa.Array) -> "pa.Table | Query":
    """The vendor's parsed rows with the export's record text in `_raw` and the table's
    TimeGenerated (where readable) in TimeGenerated, the vendor's own time staying the event's;
    rows are matched by `_line`. A Query, so that this runs in the statement with conform."""
    if isinstance(parsed, pa.Table):
        if parsed.num_rows == 0:
            return parsed
        parsed, kinds = Query("SELECT * FROM _vendor", {"_vendor": parsed}), asim.arrow_kinds(parsed.schema)
    else:
        kinds = query_kinds(parsed)
    export_time = "_x._time"
    replaced = ["_x._raw AS _raw"] if "_raw" in kinds else []
    added = [] if "_raw" in kinds else ["_x._raw AS _raw"]
    own = "_v.TimeGenerated"
    if kinds.get("TimeGenerated") == "time":
        value = f"coalesce({export_time}, {own})"
    else:
        iso = f"strftime(timezone('UTC', {export_time}), '%Y-%m-%dT%H:%M:%S.%fZ')"
        own = f"CAST({own} AS VARCHAR)"
        value = f"coalesce({iso}, {own})" if "TimeGenerated" in kinds else iso
    if "TimeGenerated" in kinds:
        replaced.append(f"{value} AS TimeGenerated")
        added += [f"{own} AS {name}" for name in ("EventStartTime", "EventEndTime") if name not in kinds]
    else:
        added.append(f"{value} AS TimeGenerated")
    select = "_v.*" + (f" REPLACE ({', '.join(replaced)})" if replaced else "") + "".join(", " + a for a in added)
    export = pa.table({"_line": lines_no, "_raw": raws, "_time": times})
    return Query(f"SELECT {select} FROM ({parsed.sql}) _v LEFT JOIN _sentinel_export _x ON _v._line = _x._line",
                 {**parsed.inputs, "_sentinel_export": export})


# ---- feeds: the record each vendor parser reads -------------------------------------------------

def _cef_escape_header(expr: str) -> str:
    return f"replace(replace(coalesce({expr}, ''), '\\', '\\\\'), '|', '\\|')"


def _cef_escape_value(expr: str) -> str:
    return (f"replace(replace(replace(replace({expr}, '\\', '\\\\'), '=', '\\='), chr(10), '\\n'), "
            f"chr(13), '\\r')")


def _cef_lines(sub: dict, n: int, route: Route) -> pa.Array:
    """The CEF record a CommonSecurityLog row was stored from: header from the Device* columns,
    one `key=value` per filled column with a CEF key, then the AdditionalExtensions pairs."""
    header = [f"coalesce({col(c)}, '')" if c in sub else "''" for c in CSL_HEADER]
    header = [_cef_escape_header(h) for h in header]
    pairs = []
    for column, key in csl_extension_columns().items():
        if column in sub and column != "Message":
            pairs.append(f"CASE WHEN {col(column)} IS NOT NULL THEN {lit(key + '=')} || "
                         f"{_cef_escape_value(col(column))} END")
    if "Message" in sub:
        message = col("Message")
        if route.source == "cisco-asa":
            message = _asa_message(sub)
        pairs.append(f"CASE WHEN {message} IS NOT NULL THEN 'msg=' || {_cef_escape_value(message)} END")
    if "AdditionalExtensions" in sub:
        pairs.append(_extensions_sql(col("AdditionalExtensions")))
    ext = f"concat_ws(' ', {', '.join(pairs)})" if pairs else "''"
    joined = " || '|' || ".join(header)
    # the row's Computer (the host that sent the record) as a nil-time RFC 5424 header
    host = (f"CASE WHEN regexp_full_match({col('Computer')}, '[!-~]{{1,255}}') "
            f"THEN '<13>1 - ' || {col('Computer')} || ' - - - - ' ELSE '' END || ") if "Computer" in sub else ""
    sql = f"SELECT {host}'CEF:0|' || {joined} || '|' || {ext} AS line FROM t"
    t = pa.table({k: v for k, v in sub.items()}) if sub else pa.table({"_": pa.nulls(n)})
    return asim.query(sql, t=t)["line"].combine_chunks()


def _cef_mapped(source: Source, sub: dict, n: int, raws: pa.Array, numbers: pa.Array) -> "pa.Table | Query | None":
    """The vendor's parsed columns for CommonSecurityLog rows, its CEF fields read straight
    from the columns (`_cef_fields`) rather than from the CEF text `_cef_lines` would write;
    None when the vendor reads no CEF that way or the rows need the text (then it decides)."""
    if not isinstance(source, CefRecords):
        return None
    try:
        fields = _cef_fields(sub, n, source.cef_keys())
        return None if fields is None else source.map_cef(*fields, raws, numbers)
    except Exception:  # noqa: BLE001 - the CEF text path has the per-record safety net (`guarded`)
        return None


# A value that reads back unchanged from the CEF text `_cef_lines` writes: no character CEF
# escapes (`\`, `=`, line breaks) in an extension value, no blank or tab at either end (CEF
# trims values); no `\`, `|` or line break in a header value.
_ESCAPED_IN_VALUE = r"[\\=\n\r]|^[ \t]|[ \t]$"
_ESCAPED_IN_HEADER = r"[\\|\n\r]"


def _cef_fields(sub: dict, n: int, keys: tuple[str, ...]) -> tuple[dict, pa.Table] | None:
    """What `_syslog.syslog_header` and `_syslog.parse_cef(message, keys)` give for the CEF
    records `_cef_lines` writes from these rows, taken from the columns: (the header's
    hostname, its nil timestamp_text and structured_data, and the message, NULL: a vendor reads
    it only for records that are not CEF; the CEF table, without `prefix` and `extension`). None when
    a value the vendor reads would not read back unchanged from the text (`_ESCAPED_IN_*`),
    or an AdditionalExtensions text is not plain `k=v;` pairs. A key's value is its first
    occurrence in the record: its column (in `_cef_lines`' order), `msg`, then the pairs."""
    def escaped(values: pa.Array, pattern: str) -> bool:
        return values.null_count < len(values) and pc.any(pc.match_substring_regex(values, pattern)).as_py()

    keys = tuple(dict.fromkeys(keys))
    header = {}
    for column, name in zip(CSL_HEADER, ("vendor", "product", "version", "signature", "name", "severity")):
        values = sub.get(column)
        if values is None:
            header[name] = pa.nulls(n, pa.string())
            continue
        if escaped(values, _ESCAPED_IN_HEADER):
            return None
        values = pc.utf8_trim_whitespace(values)
        header[name] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    by_key: dict[str, list[pa.Array]] = {}
    ordered = [(c, k) for c, k in csl_extension_columns().items() if c != "Message"] + [("Message", "msg")]
    for column, key in ordered:  # (the order `_cef_lines` writes them in)
        if column in sub and key in keys:
            by_key.setdefault(key, []).append(sub[column])
    for columns in by_key.values():
        if any(escaped(c, _ESCAPED_IN_VALUE) for c in columns):
            return None
    pairs = None
    extensions = sub.get("AdditionalExtensions")
    if extensions is not None and extensions.null_count < n:
        plain = pc.match_substring_regex(extensions, f"^(?:{_PLAIN_PAIRS})$")
        if not pc.all(pc.fill_null(plain, True)).as_py():
            return None
        pairs = S.extract_pairs(pc.replace_substring(extensions, ";", " "), keys, S.CEF)
    cef = {"is_cef": pa.repeat(pa.scalar(True), n), "cef_version": pa.repeat(pa.scalar("0"), n), **header}
    for key in keys:
        found = by_key.get(key, []) + ([pairs[key]] if pairs is not None else [])
        cef[S.cef_key(key)] = pc.coalesce(*found) if found else pa.nulls(n, pa.string())
    computer = sub.get("Computer")
    if computer is None:
        hostname = pa.nulls(n, pa.string())
    else:  # (`_cef_lines` writes a syslog header with the host only for such a name; `-` is nil)
        named = pc.and_(pc.match_substring_regex(computer, "^[!-~]{1,255}$"), pc.not_equal(computer, "-"))
        hostname = pc.if_else(pc.fill_null(named, False), computer, pa.scalar(None, pa.string()))
    # (what else a syslog header holds is nil in the written records, and the message is all CEF)
    head = {"hostname": hostname, **{f: pa.nulls(n, pa.string()) for f in ("timestamp_text", "message",
                                                                           "structured_data")}}
    return head, pa.table(cef)


# A plain value: nothing to escape (`\\`, `=`, line breaks), no `;`, no blank at either end
# to trim, none of the marks `_extensions_sql` splits on (chr 1, chr 2).
_PLAIN_VALUE = r"([^;=\\\n\r\x01\x02 ]([^;=\\\n\r\x01\x02]*[^;=\\\n\r\x01\x02 ])?)?"
_PLAIN_PAIRS = f"{_KEY}={_PLAIN_VALUE}(;{_KEY}={_PLAIN_VALUE})*"


def _extensions_sql(expr: str) -> str:
    """AdditionalExtensions `k=v;k=v` -> CEF `k=v k=v` (values escaped). A `;` starts a new
    pair only when a `key=` follows it."""
    marked = (f"regexp_replace(regexp_replace({expr}, '^\\s*({_KEY})=', '\\1' || chr(2)), "
              f"';\\s*({_KEY})=', chr(1) || '\\1' || chr(2), 'g')")
    pieces = f"list_filter(string_split({marked}, chr(1)), lambda p: contains(p, chr(2)))"
    general = (f"array_to_string(list_transform({pieces}, lambda p: split_part(p, chr(2), 1) || '=' || "
               f"{_cef_escape_value('trim(substr(p, strpos(p, chr(2)) + 1))')}), ' ')")
    # (most rows hold plain pairs only: their CEF form is the text with `;` made a blank, a
    # tenth of the cost of splitting and rejoining them)
    return (f"CASE WHEN regexp_full_match({expr}, '{_PLAIN_PAIRS}') THEN replace({expr}, ';', ' ') "
            f"WHEN {expr} IS NOT NULL THEN {general} END")


def _asa_message(sub: dict) -> str:
    """The ASA syslog text of a CommonSecurityLog row: Message, with the `%ASA-<sev>-<id>:`
    prefix the connector strips put back (severity from OriginalLogSeverity when numeric)."""
    sev = "coalesce(TRY_CAST(OriginalLogSeverity AS INTEGER), TRY_CAST(LogSeverity AS INTEGER), 6)" \
        if "OriginalLogSeverity" in sub and "LogSeverity" in sub else "6"
    cid = col("DeviceEventClassID") if "DeviceEventClassID" in sub else "NULL"
    msg = col("Message")
    return (f"CASE WHEN regexp_matches({msg}, '%(ASA|FTD|PIX|FWSM)-') THEN {msg} "
            f"WHEN {cid} IS NOT NULL THEN '%ASA-' || least(greatest({sev}, 0), 7) || '-' || {cid} || ': ' || "
            f"regexp_replace({msg}, '^\\s*[0-9]{{6}}:\\s*', '') ELSE {msg} END")


def _json_objects(sub: dict, tname: str) -> pa.Array:
    """Each row as a JSON object of its non-null columns (text values), with `Type`."""
    names = [c for c in sub if c != "Type"]
    if not names:
        return pa.repeat(pa.scalar(f'{{"Type": "{tname}"}}'), len(next(iter(sub.values()), [])))
    args = ", ".join(f"{lit(c)}, {col(c)}" for c in names)
    sql = (f"SELECT CAST(json_merge_patch(json_object('Type', {lit(tname)}), json_object({args})) AS VARCHAR) "
           f"AS rec FROM t")
    return asim.query(sql, t=pa.table(sub))["rec"].combine_chunks()


def _xml_text(expr: str) -> str:
    return f"replace(replace(replace(coalesce({expr}, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _event_xml(sub: dict, n: int) -> pa.Array:
    """The event record of an Event-table row: its System fields around the EventData XML."""
    def c(name: str) -> str:
        return col(name) if name in sub else "NULL"
    sql = (f"SELECT '<Event><System><Provider Name=\"' || {_xml_text(c('Source'))} || '\"/>' || "
           f"'<EventID>' || {_xml_text(c('EventID'))} || '</EventID>' || "
           f"'<Computer>' || {_xml_text(c('Computer'))} || '</Computer>' || "
           f"'</System>' || coalesce({c('EventData')}, '') || '</Event>' AS x FROM t")
    return asim.query(sql, t=pa.table(sub))["x"].combine_chunks()


SOURCE = Sentinel(
    name="sentinel", vendor="", product="", priority=20,
    forms=("Sentinel table exports, CSV (portal: `TimeGenerated [UTC]`/`[Local Time]`, `null`, with or "
           "without _s/_d/_b/_g/_t suffixes) or JSON (array, JSON lines, query API {\"tables\":[...]})",
           "CommonSecurityLog rows by DeviceVendor/DeviceProduct: Fortinet, Cisco ASA/FTD/Firepower, "
           "Zscaler NSSFWlog, SonicWall, CrowdStrike FalconHost, Forcepoint NGFW, Barracuda, WatchGuard, "
           "Palo Alto, Check Point (other vendors skipped, named)",
           "Syslog rows by message: Cisco Meraki, Cisco ASA/FTD, FortiGate, WatchGuard, CEF; "
           "Event rows of Sysmon (EventID 3)",
           "vendor tables: Illumio_Flow_Events(2)_CL, CarbonBlackEvents_CL, SentinelOne_CL, barracuda_CL, "
           "SecurityIoTRawEvent, AZFWNetworkRule/NatRule/ThreatIntel/IdpsSignature"),
)
