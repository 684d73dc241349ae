"""The Spark engine on the same object-storage URLs, on a standalone cluster (a master and a
worker started here on 127.0.0.1) and on local[2]: summaries equal to the DuckDB path's.

The executors open the objects themselves (the driver lists keys only); a large plain-text
Zeek object is read in byte-range splits, and its quarantined records keep their line numbers
in the whole file."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

from portlens import sources, storage, summary  # noqa: E402
from portlens.engines import spark as engine  # noqa: E402
from portlens.sources.base import parse_file  # noqa: E402
from servers import moto_s3, spark_cluster  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def big_zeek() -> bytes:
    """A Zeek conn.log as Zeek writes it (one header at the top): the fixture's first section,
    good and malformed records, 150 times over."""
    text = (FIXTURES / "zeek" / "conn_mixed.log").read_text().splitlines(keepends=True)
    first = text[:text.index(next(line for line in text if line.startswith("#close")))]
    header = [line for line in first if line.startswith("#")]
    body = [line for line in first if not line.startswith("#")]
    return "".join(header + body * 150).encode()


def vpc_log(i: int) -> bytes:
    lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
             "bytes start end action log-status"]
    lines += [f"2 123456789010 eni-0a1b2c3d 10.0.{i}.{j} 10.0.9.9 {40000 + j} {[22, 443, 3389][j % 3]} 6 "
              f"10 840 {1566848700 + 600 * j} {1566848760 + 600 * j} ACCEPT OK" for j in range(40)]
    return gzip.compress(("\n".join(lines) + "\n").encode())


@pytest.fixture(scope="module")
def bucket():
    saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "AWS_ENDPOINT_URL")}
    with moto_s3() as s3:
        os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=s3.endpoint)
        storage.reset()
        fs = s3.filesystem()
        fs.create_dir("logs")
        for i in range(3):
            with fs.open_output_stream(f"logs/vpc/flows-{i}.log.gz", compression=None) as out:
                out.write(vpc_log(i))
        with fs.open_output_stream("logs/zeek/conn.log", compression=None) as out:
            out.write(big_zeek())
        yield s3
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    storage.reset()


URLS = ["s3://logs/vpc/", "s3://logs/zeek/conn.log"]


def ordered(table: pa.Table) -> list[dict]:
    table = table.select(summary.SCHEMA.names)
    return table.sort_by([(c, "ascending") for c in table.column_names]).to_pylist()


def duckdb_path() -> tuple[list[dict], list[tuple]]:
    urls = [o.url for u in URLS for o in storage.list_files(u)]
    rows, _ = summary.from_raw_files(urls)
    zeek = "s3://logs/zeek/conn.log"
    quarantine = sorted((q["file"], q["line"], q["reason"])
                        for b in parse_file(sources.detect(zeek), zeek) for q in b.quarantine.to_pylist())
    return ordered(rows), quarantine


def test_cluster_splits_and_local_agree_with_duckdb(bucket, tmp_path):
    expected, expected_quarantine = duckdb_path()
    assert expected and expected_quarantine  # the data has sessions and malformed records
    size = len(big_zeek())
    work = engine.plan([o.url for u in URLS for o in storage.list_files(u)], "auto", 20_000)
    assert sum(1 for w in work if w[0].endswith("conn.log")) == -(-size // 20_000) > 3
    assert all(w[3] == -1 for w in work if w[0].endswith(".gz"))  # gzip is never split

    with spark_cluster(env={**CREDENTIALS, "AWS_ENDPOINT_URL": bucket.endpoint}) as cluster:
        out, q = tmp_path / "cluster", tmp_path / "cluster-q"
        r = engine.summarize_files(URLS, output=str(out), quarantine_output=str(q),
                                   master=cluster.master, split_bytes=20_000,
                                   conf={"spark.executor.memory": "1g", "spark.cores.max": "2"})
        assert not r.errors and r.files == 4
        assert ordered(pq.read_table(str(out))) == expected
        got = pq.read_table(str(q)).to_pylist()
        assert sorted((x["file"], x["line"], x["reason"]) for x in got) == expected_quarantine
        # the executors, not the driver, fetched the objects: the worker ran the tasks
        assert "Launching executor" in cluster.log.read_text(errors="replace") or \
            "Asked to launch executor" in cluster.log.read_text(errors="replace")

    # The same URLs on local[2] from the command line
    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": bucket.endpoint}
    local = tmp_path / "local"
    cmd = [sys.executable, "-m", "portlens", "summarize", "--engine", "spark", "--master", "local[2]",
           "--conf", "spark.sql.shuffle.partitions=2", "--output", str(local)]
    for u in URLS:
        cmd += ["--input", u]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert "in 4 files (spark)" in p.stdout
    assert ordered(pq.read_table(str(local))) == expected


def test_conf_must_be_key_value():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        engine.parse_conf(["spark.executor.memory"])
    assert engine.parse_conf(["a=b=c", " k =v"]) == {"a": "b=c", "k": "v"}
