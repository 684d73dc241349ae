"""Issue 13 item 8: log data never acts on the analyst's terminal. Control characters (ESC,
BEL, C1, bidi overrides) and Rich markup in data are shown, not interpreted, in the alert
table and the other Rich output; CEF encodes them; SrcIpAddr/DstIpAddr hold addresses only."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st
from rich.console import Console

from portlens import asim, formats, terminal
from portlens.alerts import Talker, render_table

from test_formats import FLAT_SPIKE, detect_typed

EVIL = "\x1b]0;PWNED\x07[bold]x[/bold]\x1b[2J\u202etxt.exe\x9b31m\x00"


def _rendered(alerts) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system="truecolor")
    render_table(alerts, console, as_of="2024-05-15T06:00:00Z", series_count=1)
    return buffer.getvalue()


def _no_controls_from_data(text: str) -> None:
    # Rich's own styling uses ESC[...m (SGR); nothing else may reach the terminal.
    import re
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "\x1b" not in stripped and "\x07" not in stripped and "\x00" not in stripped
    assert "\x9b" not in stripped and "\u202e" not in stripped


def test_printable_makes_every_control_visible():
    assert terminal.printable("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert terminal.printable("\u202etxt.exe\x9b\x00\n") == "\\u202etxt.exe\\x9b\\x00\\x0a"
    assert terminal.printable("10.0.0.1 ñ 東京") == "10.0.0.1 ñ 東京"  # ordinary text unchanged
    assert terminal.safe("[bold]x") == "\\[bold]x"


@settings(deadline=None)
@given(st.text())
def test_printable_leaves_no_control(text):
    shown = terminal.printable(text)
    assert not any(ord(c) in terminal.CONTROLS for c in shown)


def test_alert_table_shows_markup_and_escapes_literally():
    [alert] = detect_typed(None, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    alert.series[0].talkers = {"SrcIpAddr": [Talker(EVIL, 150, 0.75, None, True)]}
    alert.protocols = ["[red]TCP"]
    text = _rendered([alert])
    _no_controls_from_data(text)
    assert "\\x1b]0;PWNED\\x07[bold]x[/bold]" in text  # the markup is printed, not applied
    assert "[red]TCP" in text
    assert "\\u202e" in text


def test_cef_encodes_nul_esc_and_bidi():
    [alert] = detect_typed(None, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    record = formats.to_record(alert)
    record["Description"] = "a\x00b\x1b[2J\u202ec\\u001b"
    record["title"] = "t\x1b]0;x\x07|y"
    line = formats.to_cef(record)
    assert not any(ord(c) in terminal.CONTROLS for c in line)
    # the data's own backslash is doubled, so an encoded control (\u001b after a
    # non-backslash) and the same six characters in data (\\u001b) differ on the wire
    assert "b\\u001b[2J\\u202ec\\\\u001b" in line
    assert "CEF:0|" in line and "|t\\u001b]0;x\\u0007\\|y|" in line
    header, ext = formats.parse_cef(line)  # and portlens' own parser gives the text back
    assert header[5] == record["title"] and ext["msg"] == record["Description"]


@settings(deadline=None)
@given(st.text())
def test_json_formats_escape_every_control_and_round_trip(text):
    line = formats.dumps({"SrcIpAddr": text, "list": [text]})
    assert not any(ord(c) in terminal.CONTROLS for c in line)
    assert json.loads(line) == {"SrcIpAddr": text, "list": [text]}


def test_detect_and_status_print_no_terminal_controls(tmp_path, asim_jsonl):
    """End to end: a Dvc (a name, free text in ASIM) full of escapes and markup goes through
    ingest, status and detect without a control character reaching stdout or stderr."""
    from typer.testing import CliRunner

    from portlens.cli import app
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for day, n in enumerate(FLAT_SPIKE):
        t = end - timedelta(days=14 - day) + timedelta(hours=1)
        rows += [{"TimeGenerated": t, "DstPortNumber": 3389, "NetworkProtocol": "TCP",
                  "NetworkDirection": "Inbound", "DvcAction": "Deny", "SrcIpAddr": "198.51.100.7",
                  "DstIpAddr": "10.0.0.1", "Dvc": EVIL, "EventVendor": EVIL}] * n
    logs = asim_jsonl("evil.jsonl", rows)
    db = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    outputs = {}
    for args in (["ingest", "--db", db, str(logs)], ["status", "--db", db], ["detect", "--db", db]):
        r = runner.invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        _no_controls_from_data(r.output)
        outputs[args[0]] = r.output
    assert "\\x1b]0;PWNED\\x07[bold]x" in outputs["status"]  # the vendor, shown literally
    assert "Detected" in outputs["detect"]


# ---- ASIM address fields -------------------------------------------------------------------

@pytest.mark.parametrize("value", ["10.0.0.1", "255.255.255.255", "0.0.0.0", "2001:db8::5", "::",
                                   "::1", "fe80::1%eth0", "::ffff:192.0.2.1",
                                   "2001:0db8:0000:0000:0000:ff00:0042:8329", "FE80::ABCD"])
def test_addresses_are_kept(value):
    c = asim.conform({"TimeGenerated": ["2026-01-01T00:00:00Z"], "SrcIpAddr": [value], "DstIpAddr": [value]})
    assert c.table["SrcIpAddr"].to_pylist() == [value]
    assert c.table["DstIpAddr"].to_pylist() == [value]
    assert c.table["AdditionalFields"].to_pylist() == [None]


@pytest.mark.parametrize("value", [EVIL, "host.example.com", "256.1.1.1", "1.2.3", "1.2.3.4:80",
                                   "1.2.3.4.5", ":::", "2001:db8::5::1", "[::1]", "12345::", "-", "x"])
def test_non_addresses_move_to_additional_fields(value):
    """ASIM's IP address type is IPv4 (dotted decimal) or IPv6; SrcIpAddr/DstIpAddr are
    recommended fields, so the session stays (the rule counts it) without the bad value,
    which is kept in AdditionalFields."""
    c = asim.conform({"TimeGenerated": ["2026-01-01T00:00:00Z"], "SrcIpAddr": [value],
                      "DstIpAddr": ["10.0.0.1"], "AdditionalFields": ['{"rule": "r1"}']})
    assert len(c.rejected_index) == 0
    assert c.table["SrcIpAddr"].to_pylist() == [None]
    assert c.table["DstIpAddr"].to_pylist() == ["10.0.0.1"]
    assert json.loads(c.table["AdditionalFields"][0].as_py()) == {"rule": "r1", "InvalidSrcIpAddr": value.strip()}


def test_bad_address_with_text_additional_fields():
    c = asim.conform({"TimeGenerated": ["2026-01-01T00:00:00Z"] * 2, "SrcIpAddr": ["nope", "1.1.1.1"],
                      "DstIpAddr": ["also-nope", "bad"], "AdditionalFields": ["plain text", None]})
    first, second = (json.loads(v) for v in c.table["AdditionalFields"].to_pylist())
    assert first == {"AdditionalFieldsText": "plain text", "InvalidSrcIpAddr": "nope", "InvalidDstIpAddr": "also-nope"}
    assert second == {"InvalidDstIpAddr": "bad"}


@settings(deadline=None)
@given(st.ip_addresses())
def test_every_python_address_is_an_address(ip):
    c = asim.conform({"TimeGenerated": ["2026-01-01T00:00:00Z"], "SrcIpAddr": [str(ip)]})
    assert c.table["SrcIpAddr"].to_pylist() == [str(ip)]


@settings(deadline=None)
@given(st.text(alphabet="0123456789abcdef:.", max_size=45))
def test_address_check_agrees_with_python(text):
    import ipaddress
    try:
        ipaddress.ip_address(text)
        expected = True
    except ValueError:
        expected = False
    c = asim.conform({"TimeGenerated": ["2026-01-01T00:00:00Z"], "SrcIpAddr": [text]})
    assert (c.table["SrcIpAddr"].to_pylist() == [text]) == expected, text


def test_config_check_shows_watchlist_markup_literally(write_config, capsys):
    from test_repair import cli
    cfg = write_config('3389,*,TCP,*,*,Detection,Anomaly,,High,Impact,[red]RDP\x1b]0;x\x07,desc')
    code, out, err = cli(capsys, "config", "check", cfg)
    assert code == 0, err
    assert "[red]RDP" in out and "\\x1b]0;x" in out  # markup printed, the escape shown
    _no_controls_from_data(out + err)
