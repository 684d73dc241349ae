"""The command line as a user runs it: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest


def portlens(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_user_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("portlens: error:"), result.stderr
    for w in words:
        assert w in lines[0]


def rdp_history(path, as_of: datetime):
    """13 quiet days and one loud one for RDP, as ASIM JSON lines."""
    rows = []
    for day in range(14):
        n = 200 if day == 13 else 10 + day % 3
        for i in range(n):
            t = as_of - timedelta(days=14 - day) + timedelta(minutes=5 + i)
            rows.append({"TimeGenerated": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "DstPortNumber": 3389,
                         "NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Deny",
                         "SrcIpAddr": "203.0.113.9"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ingest_detect_jsonl_end_to_end(tmp_path):
    as_of = datetime(2024, 5, 15, tzinfo=timezone.utc)
    data = rdp_history(tmp_path / "rdp.jsonl", as_of)
    db = tmp_path / "s.duckdb"
    r = portlens("ingest", data, "--db", db)
    assert r.returncode == 0 and "sessions (asim)" in r.stdout
    again = portlens("ingest", data, "--db", db)
    assert again.returncode == 0 and "already ingested" in again.stdout
    r = portlens("detect", "--db", db, "--as-of", "2024-05-15T00:00:00Z", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    [alert] = [json.loads(l) for l in r.stdout.splitlines()]
    for column in ("Name", "Severity", "Tactic", "DstPortNumber", "Description", "NetworkProtocols",
                   "NetworkDirections", "DvcActions"):
        assert column in alert
    assert alert["DstPortNumber"] == "3389" and alert["series"][0]["total"] == 200
    # Without --as-of the window ends just after the newest session, and says so.
    r = portlens("detect", "--db", db)
    assert r.returncode == 0 and "as-of 2024-05-14T03:40:00Z" in r.stderr
    assert "Remote Desktop" in r.stdout
    r = portlens("status", "--db", db, "--json")
    assert json.loads(r.stdout)["sessions"] == sum(10 + d % 3 for d in range(13)) + 200


def test_normalize_writes_json_lines_and_parquet(tmp_path):
    data = rdp_history(tmp_path / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    r = portlens("normalize", data)
    assert r.returncode == 0
    first = json.loads(r.stdout.splitlines()[0])
    assert first["DstPortNumber"] == 3389 and first["TimeGenerated"].endswith("Z")
    out = tmp_path / "rows.parquet"
    assert portlens("normalize", data, "--output", out).returncode == 0
    import pyarrow.parquet as pq
    assert pq.read_table(out).num_rows == len(r.stdout.splitlines())


@pytest.mark.parametrize("args,words", [
    (["ingest", "nope.log"], ["nope.log", "no such file"]),
    (["detect", "--db", "missing.duckdb"], ["missing.duckdb", "no such store"]),
    (["normalize", "garbage.bin"], ["garbage.bin", "not recognised"]),
    (["ingest", "garbage.bin", "--source", "warp"], ["unknown source 'warp'"]),
    (["config", "check", "bad.csv"], ["bad.csv", "line 1", "Ports"]),
    (["detect", "--db", "data.duckdb", "--as-of", "yesterday"], ["--as-of", "ISO-8601"]),
    (["detect", "--db", "data.duckdb", "--config", "bad.csv"], ["bad.csv", "line 1"]),
    (["detect", "--db", "data.duckdb", "--format", "xml"], ["--format", "xml"]),
    (["ingest"], ["Missing argument"]),
    (["frobnicate"], ["No such command"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    (tmp_path / "garbage.bin").write_bytes(b"\x00\x01 this is nothing portlens knows\n")
    (tmp_path / "bad.csv").write_text(  # no Ports column: not a watchlist at all
        "Port,App,Protocol,Direction,Action,Type,ThresholdType,Threshold,Severity,Tactic,Name,Description\n"
        "3389,*,*,*,*,Detection,Anomaly,,High,Execution,x,y\n")
    rdp_history(tmp_path / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    assert portlens("ingest", "rdp.jsonl", "--db", "data.duckdb", cwd=tmp_path).returncode == 0
    assert_user_error(portlens(*args, cwd=tmp_path), *words)


def test_sources_and_config_check():
    r = portlens("sources")
    assert r.returncode == 0 and "asim" in r.stdout
    r = portlens("config", "check")
    assert r.returncode == 0 and "2 rows feed the anomaly rule" in r.stdout


def test_demo_finds_the_injected_misuse(tmp_path):
    r = portlens("demo", "--dir", tmp_path / "demo")
    assert r.returncode == 0, r.stderr
    assert "Remote Desktop" in r.stdout and "LDAP Traffic" in r.stdout and "SMB" in r.stdout
    assert "8080" not in r.stdout  # anomalous too, but no monitor row covers it
    assert (tmp_path / "demo" / "demo.duckdb").exists()


def test_open_formats_and_delivery_without_duplicates(tmp_path):
    data = rdp_history(tmp_path / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    db = tmp_path / "s.duckdb"
    assert portlens("ingest", data, "--db", db).returncode == 0
    ocsf = json.loads(portlens("detect", "--db", db, "--format", "ocsf").stdout)
    assert ocsf["class_uid"] == 2004 and ocsf["finding_info"]["analytic"]["uid"]
    sentinel = json.loads(portlens("detect", "--db", db, "--format", "sentinel").stdout)
    assert sentinel["ExtendedProperties"]["DstPortNumber"] == "3389"
    assert portlens("detect", "--db", db, "--format", "cef").stdout.startswith("CEF:0|portlens|")
    sink = tmp_path / "sent.jsonl"
    for _ in range(2):  # a re-run of the same day delivers nothing new
        r = portlens("detect", "--db", db, "--deliver", f"file={sink}", "--format", "jsonl")
        assert r.returncode == 0, r.stderr
    assert len(sink.read_text().splitlines()) == 1
    r = portlens("deliver", "--db", db, "--to", "webhook=http://127.0.0.1:9/nothing", "--retries", "1")
    assert r.returncode == 1 and "failed 1" in r.stderr and "Traceback" not in r.stderr


def test_a_mixed_folder_gets_one_source_per_file(tmp_path, samples):
    import shutil
    folder = tmp_path / "mixed"
    folder.mkdir()
    picks = {"zeek": samples / "zeek" / "core.ppp" / "conn.log",
             "cisco-asa": samples / "cisco_asa" / "sample.log",
             "paloalto": samples / "paloalto" / "traffic.log",
             "aws-vpc": samples / "aws_vpc" / "accept-reject-traffic.log"}
    for name, path in picks.items():
        shutil.copy(path, folder / f"{name}.log")
    (folder / "notes.txt").write_text("not a log\n")
    db = tmp_path / "s.duckdb"
    r = portlens("ingest", folder, "--db", db)
    assert r.returncode == 2  # notes.txt is not recognised: said, and the rest still lands
    assert "notes.txt" in r.stderr and "not recognised" in r.stderr and "Traceback" not in r.stderr
    for name in picks:
        assert f"({name})" in r.stdout
    status = json.loads(portlens("status", "--db", db, "--json").stdout)
    assert set(status["sessions_by_source"]) == set(picks)


def test_empty_window_says_so_and_where_the_data_is(tmp_path):
    data = rdp_history(tmp_path / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    db = tmp_path / "s.duckdb"
    assert portlens("ingest", data, "--db", db).returncode == 0
    r = portlens("detect", "--db", db, "--as-of", "2023-01-01", "--format", "jsonl", "-o", tmp_path / "a.jsonl")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.jsonl").read_text() == ""
    assert "no sessions in the 14-day window" in r.stderr
    assert "newest data is at 2024-05-14T" in r.stderr


def test_config_export_gives_the_packaged_watchlist(tmp_path):
    target = tmp_path / "my_watchlist.csv"
    r = portlens("config", "export", target)
    assert r.returncode == 0, r.stderr
    assert "72 rows" in r.stdout
    assert portlens("config", "check", target).returncode == 0
    assert_user_error(portlens("config", "export", target), "already exists")
    stdout = portlens("config", "export").stdout
    assert stdout.startswith("Ports,") and stdout == target.read_text(encoding="utf-8-sig")


def test_hunt_formats_and_port_as_text(tmp_path, write_config):
    data = rdp_history(tmp_path / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    db = tmp_path / "s.duckdb"
    assert portlens("ingest", data, "--db", db).returncode == 0
    cfg = write_config("3389,*,*,*,*,Hunting,Anomaly,,Low,Lateral Movement,RDP hunt,x")
    r = portlens("hunt", "--db", db, "--config", cfg, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    [found] = [json.loads(line) for line in r.stdout.splitlines()]
    assert found["DstPortNumber"] == "3389" and found["kind"] == "anomaly"  # text, as detect writes it
    r = portlens("hunt", "--db", db, "--format", "cef")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "cef" in r.stderr


def test_sources_list_shows_forms_verbatim():
    out = portlens("sources").stdout
    assert "Microsoft Microsoft" not in out
    assert '[action:"Accept"; ...]' in out  # Check Point's form, not eaten as markup


def test_portlens_own_files_in_a_folder_are_skipped_with_a_note(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    rdp_history(folder / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    (folder / "report.html").write_text("<html></html>")
    (folder / "old.duckdb").write_bytes(b"\0" * 64)
    r = portlens("ingest", folder, "--db", tmp_path / "s.duckdb")
    assert r.returncode == 0, r.stderr
    assert "skipped 2 file(s) portlens writes" in r.stderr
    # named explicitly, a file is always read (and a report is no log)
    r = portlens("ingest", folder / "report.html", "--db", tmp_path / "s.duckdb")
    assert r.returncode == 2
