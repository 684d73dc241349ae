"""Issue 10 item 7: nothing the KQL would count is lost.

The KQL counts whatever the workspace's ASIM table holds: `make-series ... by DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction` groups on the values as written (string keys
compare case-sensitively), and the watchlist join uses `has`, which is case-insensitive.
So a native ASIM row with DvcAction "Allowed" or NetworkProtocol "tcp" is counted, in a series
of its own. Before, portlens quarantined "Allowed" and folded "tcp" into "TCP".
"""

from __future__ import annotations

from datetime import timedelta

from selectionkit import (NOISY, SURGE, anomaly_row, config, daily, fired, series, session,
                          write_jsonl, AS_OF)

from portlens.store import Store


def test_values_outside_the_vocabulary_are_counted_as_their_own_series(tmp_path):
    rows = (daily(SURGE, port=3389, action="Allowed")            # not an ASIM DvcAction
            + daily(SURGE, port=22, action="Allow"))              # control: canonical
    cfg = config(tmp_path, anomaly_row(3389, "RDP"), anomaly_row(22, "SSH"))
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(write_jsonl(tmp_path / "asim.jsonl", rows))
        assert r.quarantined == 0 and r.sessions == 2 * sum(SURGE)
        assert series(store)[(3389, "TCP", "Inbound", "Allowed")] == SURGE
        # Before: the "Allowed" rows were quarantined and RDP never alerted.
        assert fired(store, cfg) == {("RDP", "3389"), ("SSH", "22")}


def test_case_variants_are_separate_series_and_has_matches_them(tmp_path):
    # Steady-ish TCP traffic, plus a small "tcp" source that surges on the last day.
    small = [5] * 13 + [25]
    rows = daily(NOISY, port=445, protocol="TCP") + daily(small, port=445, protocol="tcp")
    cfg = config(tmp_path, anomaly_row(445, "SMB", protocol="TCP"),
                 anomaly_row(22, "SSH"))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(write_jsonl(tmp_path / "asim.jsonl", rows + daily(SURGE, port=22)))
        got = series(store)
        assert got[(445, "TCP", "Inbound", "Allow")] == NOISY
        assert got[(445, "tcp", "Inbound", "Allow")] == small
        # Folded into one series (before) the last day scores about 1: no alert. As two
        # series, "tcp" surges, and the watchlist's "TCP" has "tcp" (case-insensitive).
        alerts = fired(store, cfg)
        assert alerts == {("SMB", "445"), ("SSH", "22")}


def test_rows_without_a_port_are_stored_but_not_counted(tmp_path):
    rows = [session(AS_OF - timedelta(hours=2), port=None, protocol="ICMP")]
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(write_jsonl(tmp_path / "icmp.jsonl", daily(SURGE, port=22) + rows))
        assert r.quarantined == 0 and r.sessions == 1 + sum(SURGE)
        assert set(series(store)) == {(22, "TCP", "Inbound", "Allow")}  # isnotempty(DstPortNumber)


def test_vendor_sources_still_emit_canonical_values():
    import pyarrow as pa

    from portlens import asim
    t = pa.table({"TimeGenerated": ["2024-01-01T00:00:00Z"] * 3, "DvcAction": ["allow", "Allowed", "DENY"],
                  "NetworkProtocol": ["tcp", "6", "udp"]})
    strict = asim.conform(t)
    assert strict.table["DvcAction"].to_pylist() == ["Allow", "Deny"]
    assert strict.table["NetworkProtocol"].to_pylist() == ["TCP", "UDP"]
    assert strict.rejected_reason.to_pylist()[0].startswith("DvcAction: not one of")
    lenient = asim.conform(t, strict_vocabulary=False)
    assert lenient.table["DvcAction"].to_pylist() == ["allow", "Allowed", "DENY"]
    assert lenient.table["NetworkProtocol"].to_pylist() == ["tcp", "6", "udp"]
    assert len(lenient.rejected_index) == 0


def test_status_reports_values_outside_the_vocabulary(tmp_path):
    import json
    import subprocess
    import sys
    rows = daily([3] * 14, port=3389, action="Allowed") + daily([1] * 14, port=22, protocol="tcp") \
        + daily(SURGE, port=22)
    path = write_jsonl(tmp_path / "asim.jsonl", rows)
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(path)
        warnings = {w["column"]: w for w in store.status()["schema_warnings"]}
    assert set(warnings) == {"DvcAction", "NetworkProtocol"}
    assert warnings["DvcAction"]["sessions"] == 42 and warnings["DvcAction"]["values"] == 1
    assert warnings["DvcAction"]["examples"] == [{"value": "Allowed", "sessions": 42, "file": path}]
    assert warnings["NetworkProtocol"]["examples"][0]["value"] == "tcp"
    r = subprocess.run([sys.executable, "-m", "portlens", "status", "--db", str(tmp_path / "s.duckdb")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "42 sessions with 1 DvcAction value(s)" in r.stderr and "'Allowed'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "portlens", "status", "--db", str(tmp_path / "s.duckdb"), "--json"],
                       capture_output=True, text=True)
    assert len(json.loads(r.stdout)["schema_warnings"]) == 2
