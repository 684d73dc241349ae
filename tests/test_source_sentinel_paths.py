"""Sentinel exports, the shortcuts taken for speed: each gives what the general way gives.
- AdditionalExtensions made of plain pairs become CEF by turning `;` into blanks; any text
  becomes what the pair-by-pair rules say (a Python model of them).
- A vendor whose mapping is SQL stays a Query: the export's `_raw` and TimeGenerated are joined
  to its rows by line, and its skipped records are counted from `_skip` alone."""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens import asim
from portlens.sources.base import Query, parse_file
from portlens.sources.sentinel import SOURCE, _extensions_sql, _with_export
from sourcekit import write

_KEY = r"[A-Za-z0-9_.\-]+"
_BLANKS = "[\t\n\f\r ]*"  # RE2's \s


def model(text: str | None) -> str | None:
    """AdditionalExtensions -> CEF extension text, pair by pair: a pair starts at the text's
    start (after blanks) or at a `;` (then blanks) followed by `key=`; its value runs to the
    next pair, trimmed of spaces and CEF-escaped; text before the first pair is dropped."""
    if text is None:
        return None
    starts = []  # (key, where the value starts, where the pair's mark starts)
    first = re.match(f"{_BLANKS}({_KEY})=", text)
    if first:
        starts.append((first.group(1), first.end(), 0))
    starts += [(m.group(1), m.end(), m.start()) for m in re.finditer(f";{_BLANKS}({_KEY})=", text)]
    pairs = []
    for i, (key, begin, _) in enumerate(starts):
        end = starts[i + 1][2] if i + 1 < len(starts) else len(text)
        value = text[begin:end].strip(" ")
        value = value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")
        pairs.append(f"{key}={value}")
    return " ".join(pairs)


def extensions(texts: list) -> list:
    t = pa.table({"x": pa.array(texts, pa.string())})
    return asim.query(f"SELECT {_extensions_sql('x')} AS y FROM t", t=t)["y"].to_pylist()


def test_plain_pairs_become_blank_separated():
    texts = ["a=1;b=two words;c=", "deviceId=abc;remotePort=53", 'gcat=6;fw_action="NA";dpi=1', None, ""]
    assert extensions(texts) == ["a=1 b=two words c=", "deviceId=abc remotePort=53", 'gcat=6 fw_action="NA" dpi=1',
                                 None, ""]


def test_other_pairs_are_split_escaped_and_trimmed():
    texts = [" a = 1 ;b=x=y", "junk;a=1; b=2\\", "a=1;;b=2", "a=line\nbreak;b= 2 ", "no pairs here"]
    assert extensions(texts) == [model(t) for t in texts]
    assert extensions(texts)[:2] == ["b=x\\=y", "a=1 b=2\\\\"]  # (` a = 1`: no `key=`)


_PIECES = st.sampled_from(["a", "b", "Key.1", "-", "_", "=", ";", " ", "  ", "\t", "\n", "\r", "\\", "x y", "é", '"'])
_ANY_TEXT = st.lists(_PIECES, max_size=12).map("".join)
# `key=value;...`, values mostly plain (the shortcut) and sometimes not
_VALUES = st.lists(st.sampled_from(["v", "1", "x y", "é", '"', " ", "=", "\\", "\n", ";"]), max_size=4).map("".join)
_PAIR_TEXT = st.lists(st.tuples(st.sampled_from(["a", "Key.1", "b-c", "x_y"]), _VALUES), max_size=6).map(
    lambda pairs: ";".join(f"{k}={v}" for k, v in pairs))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ANY_TEXT, _PAIR_TEXT), min_size=1, max_size=20))
def test_extensions_follow_the_pair_rules(texts):
    assert extensions(texts) == [model(t) for t in texts]


# ---- vendor Queries kept pending -------------------------------------------------------------

def _vendor_query(rows: pa.Table) -> Query:
    return Query("SELECT _line, _raw, _skip, TimeGenerated, DstPortNumber FROM v", {"v": rows})


def test_export_text_and_time_join_a_query_by_line():
    times = pa.array([1_700_000_000_000_000, None, 1_700_000_001_500_000], asim.TIMESTAMP)
    own = pa.array([1_600_000_000_000_000, 1_600_000_002_000_000, 1_600_000_003_000_000], asim.TIMESTAMP)
    rows = pa.table({"_line": [9, 4, 7], "_raw": ["cef9", "cef4", "cef7"], "_skip": [False] * 3,
                     "TimeGenerated": own.take(pa.array([2, 0, 1])), "DstPortNumber": ["443", "53", "80"]})
    out = asim.query("SELECT * FROM ({}) ORDER BY _line".format(
        (q := _with_export(_vendor_query(rows), pa.array([4, 7, 9]), pa.array(["row4", "row7", "row9"]), times)).sql),
        **q.inputs)
    assert out["_raw"].to_pylist() == ["row4", "row7", "row9"]
    # the table's time where the export's is readable, else the vendor's; the vendor's stays the event's
    assert out["TimeGenerated"].cast(asim.TIMESTAMP).to_pylist() == [
        times[0].as_py(), own[1].as_py(), times[2].as_py()]
    assert out["EventStartTime"].cast(asim.TIMESTAMP).to_pylist() == own.to_pylist()


def test_export_time_is_text_when_the_vendor_time_is_text():
    rows = pa.table({"_line": [1, 2], "_raw": ["x", "y"], "TimeGenerated": ["2024-01-01T00:00:00Z", "vendor"]})
    times = pa.array([1_700_000_000_250_000, None], asim.TIMESTAMP)
    q = _with_export(rows, pa.array([1, 2]), pa.array(["r1", "r2"]), times)
    out = asim.query(f"SELECT * FROM ({q.sql}) ORDER BY _line", **q.inputs)
    assert out["TimeGenerated"].to_pylist() == ["2023-11-14T22:13:20.250000Z", "vendor"]
    assert out["EventStartTime"].to_pylist() == ["2024-01-01T00:00:00Z", "vendor"]


def test_fortinet_rows_skipped_in_a_pending_batch_keep_their_reason(tmp_path):
    header = "TimeGenerated [UTC],DeviceVendor,DeviceProduct,DeviceEventClassID,Activity,LogSeverity,AdditionalExtensions,Type"
    rows = ['"5/1/2024, 12:00:00.019 AM",Fortinet,FortiGate,00013,traffic:forward accept,3,'
            'FTNTFGTsrcintfrole=lan;cat=traffic,CommonSecurityLog',
            '"5/1/2024, 12:00:01.000 AM",Fortinet,FortiGate,01000,event:system login,3,cat=event,CommonSecurityLog']
    path = write(tmp_path, "\n".join([header, *rows]) + "\n", "export.csv")
    reason = {"Fortinet FortiGate: records that are not network sessions": 1}
    batches = list(parse_file(SOURCE, str(path)))
    assert [b.pending is not None for b in batches] == [True]
    # counted by the conform statement itself, when it runs: here on first use...
    assert (batches[0].skipped, batches[0].records) == (1, 2)
    assert batches[0].skipped_by == reason
    # ...and in the store, which runs it straight into its tables
    from portlens.store import Store
    with Store(str(tmp_path / "s.duckdb")) as store:
        result = store.ingest(str(path))
    assert (result.records, result.skipped, result.skipped_by) == (2, 1, reason)


# ---- batch size ------------------------------------------------------------------------------

def test_narrow_exports_take_more_rows_per_batch():
    from portlens.sources.sentinel import export_batch_rows
    assert export_batch_rows(None) == 12_500  # JSON: keys unknown up front
    assert export_batch_rows(150) == 12_500  # a full CommonSecurityLog export
    assert export_batch_rows(17) == 25_000
    assert 12_500 < export_batch_rows(30) < 25_000


# ---- two batches mapped at once ----------------------------------------------------------------

_ASA_BUILT = ("%ASA-6-302015: Built outbound UDP connection 89743275 for outside:192.0.2.222/53 "
              "(192.0.2.43/53) to outside:10.123.1.35/52925 (10.123.1.35/25882)")
_ASA_TEARDOWN = ("%ASA-6-302016: Teardown UDP connection 89743275 for outside:192.0.2.222/53 to "
                 "inside:10.123.1.35/52925 duration 1:23:45 bytes 140")


def test_a_vendor_whose_state_carries_over_maps_its_batches_in_order(tmp_path, monkeypatch):
    """An export's batches are mapped two at a time, but cisco-asa pairs a teardown with the
    built message of an earlier batch: its part of a batch waits for the batch before, however
    slowly that one is mapped."""
    import threading
    import time

    from portlens.sources import get
    asa = type(get("cisco-asa"))
    messages = asa._messages  # (reading a batch's messages: the part mapped outside the turn)
    built_started = threading.Event()

    def slow_on_built(self, lines, numbers):
        text = " ".join(line or "" for line in lines.to_pylist())
        if "Built" in text:
            built_started.set()
            time.sleep(0.5)  # (the next batch is mapped meanwhile)
        elif "Teardown" in text:
            assert built_started.wait(5)  # (mapped while the built message is, or after)
        return messages(self, lines, numbers)

    monkeypatch.setattr(asa, "_messages", slow_on_built)
    records = ['"5/1/2024, 12:00:00.000 AM",fw-1,%ASA-6-302015,"' + _ASA_BUILT + '",Syslog',
               '"5/1/2024, 12:00:01.000 AM",host,CRON,"CRON[1]: job done",Syslog',
               '"5/1/2024, 12:00:02.000 AM",fw-1,%ASA-6-302016,"' + _ASA_TEARDOWN + '",Syslog']
    path = write(tmp_path, "\n".join(["TimeGenerated [UTC],Computer,ProcessName,SyslogMessage,Type", *records])
                 + "\n", "syslog.csv")
    batches = list(parse_file(SOURCE, str(path), batch_lines=2))  # (the two messages: two batches)
    rows = [r for b in batches for r in b.table.to_pylist()]
    down = [r for r in rows if r["EventOriginalType"] == "302016"]
    assert len(down) == 1
    # oriented by its built message, as when mapped one batch after the other
    assert (down[0]["NetworkDirection"], down[0]["SrcIpAddr"], down[0]["DstPortNumber"]) == \
        ("Outbound", "10.123.1.35", 53)


# ---- CEF fields straight from CommonSecurityLog columns -----------------------------------------

_CSL_COLUMNS = ("TimeGenerated [UTC]", "DeviceVendor", "DeviceProduct", "DeviceVersion", "DeviceEventClassID",
                "Activity", "LogSeverity", "SourceIP", "SourcePort", "DestinationIP", "DestinationPort",
                "Protocol", "DeviceAction", "Message", "AdditionalExtensions", "Computer", "Type")
_CSL_VENDORS = [("Fortinet", "FortiGate", "traffic:forward accept"), ("SonicWall", "NSA 3700", "Connection Closed"),
                ("CrowdStrike", "FalconHost", "Firewall Match event"), ("Forcepoint", "NGFW", "Connection_Allowed"),
                ("Cisco", "Firepower", "Connection"), ("Barracuda", "WAF", "NF"),
                ("Palo Alto Networks", "PAN-OS", "TRAFFIC"), ("Check Point", "VPN-1 & FireWall-1", "Accept"),
                ("Zscaler", "NSSFWlog", "Allow")]
# values that read back unchanged from CEF text (most rows hold only these, so that most
# batches take the columns), and values CEF escapes or trims
_PLAIN = ["10.0.0.1", "443", "6", "TCP", "accept", "p q", "", "é", "17"]
_CSL_VALUE = {False: st.sampled_from(_PLAIN),
              True: st.sampled_from(_PLAIN + [" 10.0.0.2", "10.0.0.3\t", "a=b", "x\\y", "two\nlines", " "])}
_CSL_HEADER_VALUE = {False: st.sampled_from(["v7", "", " spaced ", "13"]),
                     True: st.sampled_from(["v7", "a|b", "c\\d", "x\ny"])}
_CSL_EXTENSIONS = {False: st.sampled_from([
    "", "FTNTFGTsrcintfrole=lan;cat=traffic", "src=10.9.9.9;spt=1;dpt=2", "connectionDirection=1;localPort=3",
    "gcat=6;fw_action=NA", "cs1Label=Policy Id;cs1=7", "rt=1714521600000", "dpt=53;proto=17;act=deny",
    "cs3Label=Virtual System;cs3=vsys1;cat=end", "ifname=eth0;conn_direction=Incoming;origin=10.1.1.1",
    "cs2Label=nwapp;cs2=dns;cn1Label=durationms;cn1=12;rulelabel=r1"]),
    True: st.sampled_from(["a=b=c", "k=v; x=1", "x\\=1"])}
_COMPUTER = st.sampled_from(["fw01", "10.20.30.40", "-", "a host", ""])


@st.composite
def _csl_row(draw):
    vendor, product, activity = draw(st.sampled_from(_CSL_VENDORS))
    odd = draw(st.integers(0, 9)) == 0  # (a value that needs the CEF text, now and then)
    values = [draw(_CSL_VALUE[odd]) for _ in range(7)]
    return ["5/1/2024, 12:00:00.019 AM", vendor, product, draw(_CSL_HEADER_VALUE[odd]), "00013", activity,
            draw(_CSL_HEADER_VALUE[odd]), *values[:6], values[6], draw(_CSL_EXTENSIONS[odd]),
            draw(_COMPUTER), "CommonSecurityLog"]


def _csl_export(rows, form: str = "csv") -> str:
    """A portal CSV export, or JSON lines."""
    import csv
    import io
    import json
    if form == "jsonl":
        names = ["TimeGenerated", *_CSL_COLUMNS[1:]]
        return "".join(json.dumps(dict(zip(names, ["2024-05-01T00:00:00.019Z", *row[1:]]))) + "\n" for row in rows)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(_CSL_COLUMNS)
    w.writerows(rows)
    return out.getvalue()


def _parsed_as_text(text: str):
    from sourcekit import parse_text
    p = parse_text(None, text, SOURCE, "export.csv")  # (in a new folder each time: the path is left out)
    return p.rows.to_pylist(), p.quarantine.drop_columns(["file"]).to_pylist(), p.skipped, p.records


@settings(max_examples=150, deadline=None)
@given(st.lists(_csl_row(), min_size=1, max_size=8), st.sampled_from(["csv", "jsonl"]))
def test_cef_fields_read_from_the_columns_give_what_the_cef_text_gives(rows, form):
    import pytest
    from portlens.sources import sentinel
    text = _csl_export(rows, form)
    direct = _parsed_as_text(text)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sentinel, "_cef_mapped", lambda *args: None)
        assert _parsed_as_text(text) == direct


def test_plain_rows_take_the_columns_and_escaped_ones_the_text(monkeypatch):
    from portlens.sources import sentinel
    taken = []
    real = sentinel._cef_fields
    monkeypatch.setattr(sentinel, "_cef_fields", lambda *a: taken.append(real(*a) is not None) or real(*a))
    plain = ["5/1/2024, 12:00:00.019 AM", "Fortinet", "FortiGate", "v7", "00013", "traffic:forward accept", "3",
             "10.0.0.1", "1", "10.0.0.2", "443", "TCP", "accept", "", "cat=traffic", "fw01", "CommonSecurityLog"]
    _parsed_as_text(_csl_export([plain]))
    _parsed_as_text(_csl_export([plain[:7] + ["a=b"] + plain[8:]]))  # `=` is escaped in CEF text
    assert taken == [True, False]


def test_an_error_reading_the_columns_falls_back_to_the_cef_text(monkeypatch):
    from portlens.sources import sentinel
    row = ["5/1/2024, 12:00:00.019 AM", "Fortinet", "FortiGate", "v7", "00013", "traffic:forward accept", "3",
           "10.0.0.1", "1", "10.0.0.2", "443", "TCP", "accept", "", "cat=traffic", "fw01", "CommonSecurityLog"]
    text = _csl_export([row])
    expected = _parsed_as_text(text)

    def broken(*args):
        raise ValueError("a bug in the shortcut")
    monkeypatch.setattr(sentinel, "_cef_fields", broken)
    assert _parsed_as_text(text) == expected
    assert expected[0][0]["DstPortNumber"] == 443
