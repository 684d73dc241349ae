"""Logs in object storage: `portlens ingest s3://...` against moto's S3 server on 127.0.0.1.

The server's own request log is the witness: a second ingest of the same prefix lists the
bucket and GETs no object; a new object is the only one fetched."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from portlens import storage
from portlens.store import Store
from servers import moto_s3, portlens, put

FIXTURES = Path(__file__).parent / "fixtures" / "aws_vpc"
PREFIX = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2019/08/26"


def flow_log(i: int) -> bytes:
    """An AWS VPC flow log object (default format with its header), gzipped as AWS writes it."""
    lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
             "bytes start end action log-status"]
    for j in range(5):
        lines.append(f"2 123456789010 eni-0a1b2c3d 10.0.{i}.{j + 1} 10.0.9.9 {40000 + j} "
                     f"{[22, 443, 3389, 53, 80][j]} 6 10 840 {1566848700 + 60 * i} "
                     f"{1566848760 + 60 * i} {'ACCEPT' if j % 2 else 'REJECT'} OK")
    return gzip.compress(("\n".join(lines) + "\n").encode())


def key(i: int) -> str:
    return f"{PREFIX}/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20190826T{1900 + i:04d}Z_fe12345{i}.log.gz"


@pytest.fixture(scope="module")
def s3():
    with moto_s3() as server:
        fs = server.filesystem()
        fs.create_dir("flowlogs")
        for i in range(3):
            put(fs, f"flowlogs/{key(i)}", flow_log(i))
        put(fs, f"flowlogs/{PREFIX}/.hidden/skip.log", b"not a log\n")
        malformed = (FIXTURES / "malformed.log").read_bytes()
        put(fs, "flowlogs/other/malformed.log", malformed)
        put(fs, "flowlogs/other/empty.log", b"")
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch):
    env = {"AWS_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    storage.reset()
    yield {**os.environ, **env}
    storage.reset()


def test_listing_prefix_glob_object_and_hidden_keys(s3_env):
    objects = storage.list_files(f"s3://flowlogs/{PREFIX}/")
    assert [o.url for o in objects] == [f"s3://flowlogs/{key(i)}" for i in range(3)]
    assert all(o.size > 0 and o.modified is not None for o in objects)
    assert [o.url for o in storage.list_files("s3://flowlogs/AWSLogs/**/*T1901Z*.log.gz")] == \
        [f"s3://flowlogs/{key(1)}"]
    assert [o.url for o in storage.list_files("s3://flowlogs/*/malformed.log")] == \
        ["s3://flowlogs/other/malformed.log"]
    one = storage.list_files(f"s3://flowlogs/{key(0)}")
    assert one == [objects[0]]
    storage.reset()  # identity from a HEAD equals identity from the listing
    assert storage.identity(f"s3://flowlogs/{key(0)}") == objects[0].identity
    assert storage.identity("local/file.log") is None


def test_reading_streams_gzip_and_seeks(s3_env):
    from portlens.sources.base import open_binary, read_head
    url = f"s3://flowlogs/{key(2)}"
    assert read_head(url, 7) == b"version"
    with open_binary(url) as f:
        assert gzip.decompress(flow_log(2)) == f.read()
    with storage.open_input(url) as raw:
        raw.seek(-4, os.SEEK_END)
        assert raw.read() == flow_log(2)[-4:]


def test_ingest_a_prefix_then_nothing_then_only_the_new_object(s3, s3_env, tmp_path):
    db = tmp_path / "s.duckdb"
    prefix = f"s3://flowlogs/{PREFIX}/"
    first = portlens("ingest", prefix, "--db", db, env=s3_env)
    assert first.returncode == 0, first.stderr
    assert first.text.count("5 sessions (aws-vpc)") == 3, first.stdout
    with Store(str(db), read_only=True) as store:
        assert store.status()["sessions"] == 15
        ledger = store.query("SELECT path, object_id, bytes FROM files ORDER BY path").to_pylist()
    assert [r["path"] for r in ledger] == [f"s3://flowlogs/{key(i)}" for i in range(3)]
    assert all(r["object_id"].startswith(r["path"] + " size=") for r in ledger)

    gets_before = len(s3.requests("GET", f"/flowlogs/{PREFIX}/"))
    heads_before = len(s3.requests("HEAD", ".log.gz"))
    again = portlens("ingest", prefix, "--db", db, env=s3_env)
    assert again.returncode == 0, again.stderr
    assert again.text.count("already ingested (unchanged); nothing read") == 3, again.stdout
    assert len(s3.requests("GET", f"/flowlogs/{PREFIX}/")) == gets_before   # no object fetched
    assert len(s3.requests("HEAD", ".log.gz")) == heads_before               # nor even asked about

    put(s3.filesystem(), f"flowlogs/{key(3)}", flow_log(3))
    third = portlens("ingest", prefix, "--db", db, env=s3_env)
    assert third.returncode == 0, third.stderr
    assert third.text.count("already ingested") == 3
    assert f"{key(3)}: 5 sessions (aws-vpc)" in third.text
    fetched = set(s3.requests("GET", f"/flowlogs/{PREFIX}/")[gets_before:])
    assert fetched == {f"/flowlogs/{key(3)}"}
    with Store(str(db), read_only=True) as store:
        assert store.status()["sessions"] == 20 and store.status()["files"] == 4


def test_quarantine_and_unreadable_objects_are_accounted_like_local_files(s3_env, tmp_path):
    db = tmp_path / "q.duckdb"
    r = portlens("ingest", "s3://flowlogs/other/", "--db", db, env=s3_env)
    assert r.returncode == 2  # the empty object is one error line; the other lands
    assert "s3://flowlogs/other/empty.log: file is empty" in r.stderr
    assert "Traceback" not in r.stderr
    local = portlens("ingest", FIXTURES / "malformed.log", "--db", tmp_path / "l.duckdb", env=s3_env)
    with Store(str(db), read_only=True) as remote_store, \
            Store(str(tmp_path / "l.duckdb"), read_only=True) as local_store:
        q = remote_store.query("SELECT file, line, reason FROM quarantine ORDER BY line").to_pylist()
        ql = local_store.query("SELECT line, reason FROM quarantine ORDER BY line").to_pylist()
        assert remote_store.status()["sessions"] == local_store.status()["sessions"] > 0
    assert local.returncode == 0
    assert q and all(row["file"] == "s3://flowlogs/other/malformed.log" for row in q)
    assert [(row["line"], row["reason"].replace("s3://flowlogs/other/", "")) for row in q] == \
        [(row["line"], row["reason"].replace(str(FIXTURES) + "/", "")) for row in ql]


def test_a_parquet_object_lands_as_the_local_file_does(s3, s3_env, tmp_path):
    """Parquet in a bucket is read through Arrow, a local file by DuckDB's own reader: the
    same rows land either way, rejected rows with their row numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"TimeGenerated": [f"2024-05-01T10:{i % 60:02d}:00Z" for i in range(300)],
                      "DstPortNumber": [i * 300 for i in range(300)],
                      "SrcIpAddr": [f"10.1.0.{i % 50}" for i in range(300)]})
    local = tmp_path / "rows.parquet"
    pq.write_table(table, local, row_group_size=100)
    put(s3.filesystem(), "flowlogs/parquet/rows.parquet", local.read_bytes())
    landed = []
    for path, db in ((local, tmp_path / "l.duckdb"), ("s3://flowlogs/parquet/rows.parquet", tmp_path / "r.duckdb")):
        with Store(str(db)) as store:
            r = store.ingest(str(path))
            landed.append(((r.records, r.sessions, r.quarantined),
                           store.query('SELECT "TimeGenerated", "DstPortNumber", "SrcIpAddr" FROM sessions '
                                       "ORDER BY ALL").to_pylist(),
                           store.query("SELECT line, reason FROM quarantine ORDER BY line").to_pylist(),
                           store.query("SELECT * EXCLUDE (file_id) FROM summaries ORDER BY ALL").to_pylist()))
    assert landed[0] == landed[1]
    assert landed[0][0] == (300, 219, 81) and landed[0][2][0]["line"] == 220


def test_normalize_import_and_detect_read_urls(s3, s3_env, tmp_path):
    r = portlens("normalize", f"s3://flowlogs/{key(0)}", env=s3_env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5 and {row["DstPortNumber"] for row in rows} == {22, 443, 3389, 53, 80}
    # summaries written locally, uploaded, then imported and detected from the bucket
    out = tmp_path / "sum"
    r = portlens("summarize", "--input", f"s3://flowlogs/{PREFIX}/", "--output", out, env=s3_env)
    assert r.returncode == 0, r.stderr
    put(s3.filesystem(), "flowlogs/summaries/part-0.parquet", (out / "summaries.parquet").read_bytes())
    r = portlens("import-summaries", "s3://flowlogs/summaries/", "--db", tmp_path / "i.duckdb", env=s3_env)
    assert r.returncode == 0, r.stderr
    assert "s3://flowlogs/summaries/part-0.parquet:" in r.text and "sessions)" in r.stdout
    r = portlens("import-summaries", "s3://flowlogs/summaries/", "--db", tmp_path / "i.duckdb", env=s3_env)
    assert "already imported" in r.stdout
    r = portlens("detect", "--summaries", "s3://flowlogs/summaries/", "--format", "jsonl", env=s3_env)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("url, words", [
    ("s3://no-such-bucket/AWSLogs/", "no such bucket"),
    ("s3://flowlogs/AWSLogs/nothing-here/", "no such object or prefix"),
])
def test_storage_errors_are_one_line(s3_env, tmp_path, url, words):
    r = portlens("ingest", url, "--db", tmp_path / "e.duckdb", env=s3_env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("portlens: error:") and words in lines[0], r.stderr


def test_refused_credentials_and_unreachable_endpoint_are_one_line(s3_env, tmp_path):
    from servers import free_port
    with moto_s3(auth=True) as strict:
        env = {**s3_env, "AWS_ENDPOINT_URL": strict.endpoint}
        r = portlens("normalize", "s3://flowlogs/AWSLogs/x.log", env=env)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "access denied" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        r = portlens("ingest", "s3://flowlogs/AWSLogs/", "--db", tmp_path / "d.duckdb", env=env)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "access denied" in r.stderr or "credentials rejected" in r.stderr
    env = {**s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    r = portlens("ingest", "s3://flowlogs/x/", "--db", tmp_path / "u.duckdb", env=env)
    assert r.returncode == 2 and "cannot reach the storage service" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_error_lines_for_what_the_clouds_answer():
    e = storage._error("s3://b/k", OSError("When getting information for key 'k' in bucket 'b': AWS Error "
                                           "ACCESS_DENIED during HeadObject operation: No response body."))
    assert str(e) == "s3://b/k: access denied (check the credentials and their permissions)"
    e = storage._error("az://c/k", OSError("GetProperties failed for 'c/k'. Azure Error: [ContainerNotFound] 404 "
                                           "The specified container does not exist."))
    assert str(e) == "az://c/k: no such bucket or container"
    e = storage._error("az://c/k", OSError("DefaultAzureCredential: Failed to get token from "
                                           "ManagedIdentityCredential.\nmore"))
    assert str(e).startswith("az://c/k: no credentials found (AZURE_STORAGE_CONNECTION_STRING")


def test_run_watch_a_bucket_prefix(s3, s3_env, tmp_path):
    db, alerts = tmp_path / "w.duckdb", tmp_path / "alerts.jsonl"
    args = ("run", "--watch", f"s3://flowlogs/{PREFIX}/", "--once", "--db", db, "--alerts", alerts)
    r = portlens(*args, env=s3_env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.replace("\n", "").count("5 sessions, 0 quarantined") >= 3
    gets = len(s3.requests("GET", f"/flowlogs/{PREFIX}/"))
    r = portlens(*args, env=s3_env)
    assert r.returncode == 0 and "sessions, 0 quarantined" not in r.stderr, r.stderr
    assert len(s3.requests("GET", f"/flowlogs/{PREFIX}/")) == gets
    r = portlens("run", "--watch", "s3://no-such-bucket/x/", "--once", "--db", db, "--alerts", alerts, env=s3_env)
    assert r.returncode == 0 and "scan failed: s3://no-such-bucket/x/: no such bucket" in r.stderr.replace("\n", "")
