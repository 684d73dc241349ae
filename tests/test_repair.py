"""Issue 13 item 7: a file ingested with the wrong source is not poisoned forever.
`portlens forget` removes a file's rows, summaries, quarantine and ledger entry in one
transaction, so it can be ingested again; `portlens quarantine` lists what was quarantined
and why, with counts by reason."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import portlens
from portlens import store as store_module
from portlens.cli import app
from portlens.errors import StoreError
from portlens.store import Store

ROWS = [{"TimeGenerated": f"2026-11-30T10:0{i}:00Z", "DstPortNumber": 3389, "SrcIpAddr": f"10.0.0.{i}",
         "DstIpAddr": "10.0.0.1", "NetworkProtocol": "TCP"} for i in range(5)]


@pytest.fixture
def logs(tmp_path):
    path = tmp_path / "fw.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "garbage \x1b]0;PWNED\x07 [bold]line\n")
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({**ROWS[0], "DstPortNumber": 22}) + "\n")
    return path, other


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run the command line in this process as a user would: (exit code, stdout, stderr)."""
    import sys
    from portlens.cli import main
    argv = sys.argv
    sys.argv = ["portlens", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _counts(store: Store) -> dict:
    return {t: store.query(f"SELECT count(*) AS n FROM {t}")["n"][0].as_py()
            for t in ("sessions", "summaries", "quarantine", "files")}


def test_wrong_source_then_forget_then_right_source(tmp_path, logs):
    path, other = logs
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(other))
        wrong = store.ingest(str(path), "cisco-asa")
        assert (wrong.sessions, wrong.quarantined) == (0, 6)
        assert store.ingest(str(path)).duplicate_of  # the problem: the file is known, with nothing in it
        before = _counts(store)
        done = portlens.forget(store, path)
        assert [f["source"] for f in done.files] == ["cisco-asa"]
        assert (done.sessions, done.quarantined) == (0, 6)
        after = _counts(store)
        assert after == {**before, "quarantine": before["quarantine"] - 6, "files": before["files"] - 1}
        right = store.ingest(str(path))
        assert (right.source, right.sessions, right.quarantined, right.duplicate_of) == ("asim", 5, 1, None)
        assert store.status()["sessions"] == 6


def test_forget_removes_sessions_and_summaries_of_that_file_only(tmp_path, logs):
    path, other = logs
    with Store(str(tmp_path / "s.duckdb")) as store:
        kept = store.ingest(str(other))
        store.ingest(str(path))
        [file_id] = [r["file_id"] for r in store.query("SELECT file_id FROM files WHERE path LIKE '%fw.jsonl'").to_pylist()]
        done = portlens.forget(store, file_id=file_id)
        assert (done.sessions, done.quarantined) == (5, 1) and done.summary_rows > 0
        for table in ("sessions", "summaries", "quarantine", "files"):
            left = store.query(f"SELECT count(*) AS n FROM {table} WHERE file_id = ?", [file_id])["n"][0].as_py()
            assert left == 0, table
        assert store.status()["sessions"] == kept.sessions == 1
        assert store.query("SELECT sum(count_) AS n FROM summaries")["n"][0].as_py() == 1


def test_forget_by_content_when_the_path_moved(tmp_path, logs):
    path, _ = logs
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(path))
        moved = tmp_path / "moved.jsonl"
        path.rename(moved)
        assert portlens.forget(store, moved).sessions == 5
        assert store.status()["files"] == 0


def test_forget_is_one_transaction(tmp_path, logs, monkeypatch):
    path, _ = logs
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(path))
        before = _counts(store)
        real = store_module._run

        def failing(con, text, params=None):
            if text.startswith('DELETE FROM "files"'):
                raise RuntimeError("disk full")
            return real(con, text, params)
        monkeypatch.setattr(store_module, "_run", failing)
        with pytest.raises(RuntimeError):
            store.forget(str(path))
        monkeypatch.setattr(store_module, "_run", real)
        assert _counts(store) == before  # nothing half-removed


def test_forget_unknown_file_is_one_line(tmp_path, logs, capsys):
    path, _ = logs
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        with pytest.raises(StoreError, match="not in this store's ledger"):
            store.forget(file_id=7)
    code, _, err = cli(capsys, "forget", "--db", db, path)
    assert code == 2 and err.count("\n") == 1 and "not in this store's ledger" in err
    code, _, err = cli(capsys, "forget", "--db", db)
    assert code == 2 and "FILE or --file-id" in err
    code, _, err = cli(capsys, "forget", "--db", tmp_path / "none.duckdb", "--file-id", 1)
    assert code == 2 and "no such store" in err
    assert not (tmp_path / "none.duckdb").exists()


def test_quarantine_listing_counts_filters_and_limit(tmp_path, logs):
    path, other = logs
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(path), "cisco-asa")
        store.ingest(str(other), "paloalto")
        everything = portlens.quarantined(store)
        assert everything.total == 7 and sum(everything.by_reason.values()) == 7
        assert [r["line"] for r in everything.records] == [1, 2, 3, 4, 5, 6, 1]
        assert everything.records[5]["raw"].startswith("garbage \x1b]0;PWNED")
        one = portlens.quarantined(store, file=path)
        assert one.total == 6 and {r["file"] for r in one.records} == {str(path)}
        by_reason = portlens.quarantined(store, reason="CISCO ASA")
        assert by_reason.total == 6
        assert portlens.quarantined(store, reason="no such reason").total == 0
        page = portlens.quarantined(store, limit=2)
        assert page.total == 7 and len(page.records) == 2


def test_quarantine_command(tmp_path, logs):
    path, _ = logs
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        store.ingest(str(path), "cisco-asa")
    r = CliRunner().invoke(app, ["quarantine", "--db", db, "--limit", "3"])
    assert r.exit_code == 0, r.output
    assert "quarantined: 6 records" in r.output
    assert "6  not a Cisco ASA syslog or CEF record" in r.output
    assert "fw.jsonl:1" in r.output and "fw.jsonl:4" not in r.output and "listed 3 of 6" in r.output
    r = CliRunner().invoke(app, ["quarantine", "--db", db, "--limit", "0", "--reason", "cisco"])
    assert "\x1b" not in r.output and "\x07" not in r.output  # raw text shown, not acted on
    assert "garbage \\x1b]0;PWNED\\x07 [bold]line" in r.output
    r = CliRunner().invoke(app, ["quarantine", "--db", db, "--json", "--file", str(path)])
    doc = json.loads(r.output)
    assert doc["total"] == 6 and doc["by_reason"] == {"not a Cisco ASA syslog or CEF record": 6}
    assert doc["records"][5]["raw"] == "garbage \x1b]0;PWNED\x07 [bold]line"
    assert "\x1b" not in r.output  # JSON escapes it


def test_cli_forget_then_ingest_again(tmp_path, logs):
    path, _ = logs
    db = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    r = runner.invoke(app, ["ingest", "--db", db, "--source", "cisco-asa", str(path)])
    assert r.exit_code == 0 and "no session landed" in r.output and "portlens forget" in r.output
    r = runner.invoke(app, ["forget", "--db", db, str(path)])
    assert r.exit_code == 0 and "removed 0 sessions" in r.output and "6 quarantined records" in r.output
    r = runner.invoke(app, ["ingest", "--db", db, str(path)])
    assert "5 sessions (asim)" in r.output
