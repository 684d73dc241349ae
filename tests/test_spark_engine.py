"""The Spark engine builds the same 20-minute summary as the local (DuckDB) path, from the
same source parsers run inside the executors; bad files are reported, the rest land."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("java is not on PATH", allow_module_level=True)

from portlens import asim, demo, sources, summary  # noqa: E402
from portlens.cli import _write_jsonl  # noqa: E402
from portlens.engines import spark as engine  # noqa: E402
from portlens.sources import SourceError  # noqa: E402
from portlens.sources.base import parse_file  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def spark():
    session = engine.local_session("local[2]", "portlens-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def asim_files(tmp_path_factory) -> list[str]:
    """Three ASIM JSON-lines files over the same three days (rows dealt round-robin, so every
    file has rows in most bins and Spark has to add partials across files)."""
    folder = tmp_path_factory.mktemp("asim")
    table = demo.generate(END, days=3, scale=0.05)
    paths = []
    for i in range(3):
        path = folder / f"sessions_{i}.jsonl"
        _write_jsonl(table.take(pa.array(range(i, table.num_rows, 3))), path)
        paths.append(str(path))
    return paths


def local_summary(files, source: str = "auto") -> pa.Table:
    """The DuckDB path: parse each file with the same source, summarize, combine."""
    parts = []
    for f in files:
        parser = sources.detect(f) if source == "auto" else sources.get(source)
        parts += [summary.summarize(b.table) for b in parse_file(parser, f)]
    return summary.combine(pa.concat_tables(parts) if parts else summary.SCHEMA.empty_table())


def local_stats(f: str) -> tuple[int, int, int, int]:
    batches = list(parse_file(sources.detect(f), f))
    return (sum(b.table.num_rows for b in batches), sum(b.quarantine.num_rows for b in batches),
            sum(b.skipped for b in batches), sum(b.records for b in batches))


def ordered(table: pa.Table) -> list[dict]:
    table = table.select(summary.SCHEMA.names)
    return table.sort_by([(c, "ascending") for c in table.column_names]).to_pylist()


def read(path) -> pa.Table:
    return pq.read_table(str(path))


def test_asim_jsonl_same_summary_as_duckdb(spark, asim_files, tmp_path):
    out = tmp_path / "summary"
    result = engine.summarize_files(asim_files, "auto", str(out), spark=spark)
    expected = local_summary(asim_files)
    got = read(out)
    assert expected.num_rows > 100
    assert ordered(got) == ordered(expected)
    assert result.summary_rows == expected.num_rows == got.num_rows
    total = sum(local_stats(f)[0] for f in asim_files)
    assert result.files == 3 and not result.errors
    assert result.sessions == total == pa.compute.sum(got["count_"]).as_py()
    assert (result.quarantined, result.skipped) == (0, 0)
    assert [s.path for s in result.per_file] == asim_files
    assert {s.source for s in result.per_file} == {"asim"}
    # a glob gives the same files, and an explicit source the same answer
    again = engine.summarize_files(str(Path(asim_files[0]).parent / "*.jsonl"), "asim",
                                   str(out), spark=spark)
    assert (again.files, again.sessions, again.summary_rows) == (3, total, expected.num_rows)
    assert ordered(read(out)) == ordered(expected)  # overwritten, not appended


def vendor_files() -> list[str]:
    folder = SAMPLES / "zeek"
    files = sorted(str(p) for p in folder.rglob("*.log")) if folder.is_dir() else []
    if not files or "zeek" not in sources.all_sources():
        pytest.skip("zeek source or ../shared/samples/zeek not present")
    return files


def test_vendor_zeek_same_summary_and_quarantine_as_duckdb(spark, tmp_path):
    files = vendor_files()
    out, quarantine = tmp_path / "summary", tmp_path / "quarantine"
    result = engine.summarize_files(files, output=str(out), spark=spark,
                                    quarantine_output=str(quarantine))
    assert ordered(read(out)) == ordered(local_summary(files))
    assert not result.errors and result.files == len(files)
    for stats in result.per_file:
        assert stats.source == "zeek"
        assert (stats.sessions, stats.quarantined, stats.skipped, stats.records) == local_stats(stats.path)
    q = read(quarantine)
    assert q.schema.names == asim.QUARANTINE_SCHEMA.names
    assert q.num_rows == result.quarantined > 0  # the btest baselines mask timestamps
    local_q = pa.concat_tables([b.quarantine for f in files for b in sources.detect(f).parse(f)])
    key = [("file", "ascending"), ("line", "ascending")]
    assert q.cast(asim.QUARANTINE_SCHEMA).sort_by(key).to_pylist() == local_q.sort_by(key).to_pylist()


def truncated_gzip(asim_file: str, path: Path) -> Path:
    """A gzip JSON-lines file that yields a first batch (8 MB) and then fails (cut short)."""
    text = Path(asim_file).read_bytes()
    data = gzip.compress(text * (int(20e6) // len(text) + 1))
    path.write_bytes(data[: int(len(data) * 0.9)])
    return path


def test_bad_files_are_reported_and_the_rest_land(spark, asim_files, tmp_path):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\nthis is not a network log\n")
    empty = tmp_path / "empty.log"
    empty.write_text("")
    # A gzip cut short: what was readable lands, the break is one quarantine record (as in
    # the local store), so the file is not an error.
    cut = truncated_gzip(asim_files[0], tmp_path / "cut.jsonl.gz")

    missing = str(tmp_path / "nothing-*.log")
    inputs = [str(unknown), asim_files[0], str(empty), str(cut), asim_files[1], missing]
    out, quarantine = tmp_path / "summary", tmp_path / "quarantine"
    result = engine.summarize_files(inputs, output=str(out), spark=spark,
                                    quarantine_output=str(quarantine))

    good = [*asim_files[:2], str(cut)]
    assert ordered(read(out)) == ordered(local_summary(good))
    assert result.files == 3
    assert result.sessions == sum(local_stats(f)[0] for f in good)
    errors = {s.path: s.error for s in result.errors}
    assert set(errors) == {str(unknown), str(empty), missing}
    assert "not recognised" in errors[str(unknown)]
    assert "empty" in errors[str(empty)]
    assert "no such file" in errors[missing]
    assert all(s.sessions == 0 for s in result.errors)
    q = read(quarantine)
    by_file = dict(zip(q["file"].to_pylist(), zip(q["line"].to_pylist(), q["reason"].to_pylist())))
    assert set(by_file) == set(errors) | {str(cut)}
    assert all(by_file[f] == (0, errors[f]) for f in errors)
    assert by_file[str(cut)][0] == local_stats(str(cut))[0] + 1 and "cut short" in by_file[str(cut)][1]


def test_output_has_the_summary_schema(spark, asim_files, tmp_path):
    out = tmp_path / "summary"
    engine.summarize_files(asim_files[:1], output=str(out), spark=spark)
    got = read(out)
    assert got.schema.names == summary.SCHEMA.names
    assert [f.type for f in got.schema] == [f.type for f in summary.SCHEMA]
    assert got.schema.field("EventTime").type == pa.timestamp("us", tz="UTC")
    assert got.schema.field("DstPortNumber").type == pa.int32()
    assert got.schema.field("count_").type == pa.int64()
    # bins start on 20-minute boundaries of the UTC epoch
    minutes = {t.minute for t in got["EventTime"].to_pylist()}
    assert minutes <= {0, 20, 40} and {t.second for t in got["EventTime"].to_pylist()} == {0}
    # the session timezone in force is restored (Parquet timestamps as INT64 micros meanwhile)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_usage_errors_and_active_session_reuse(spark, asim_files, tmp_path):
    with pytest.raises(SourceError):
        engine.summarize_files(asim_files, "no-such-source", str(tmp_path / "s"), spark=spark)
    with pytest.raises(ValueError):
        engine.summarize_files(asim_files, spark=spark)
    # spark=None reuses the active session and leaves it running
    result = engine.summarize_files(asim_files[:1], output=str(tmp_path / "s"))
    assert result.files == 1
    assert spark.range(3).count() == 3


def test_source_options_reach_the_executors(spark, tmp_path):
    """A source option (aws-vpc's custom field order) applies on every executor, as it does
    in the DuckDB path: same summary, nothing quarantined."""
    path = tmp_path / "custom.log"
    path.write_text("".join(f"ACCEPT 10.0.0.{i % 7} 10.0.1.1 6 {443 + i % 3} {1715700000 + 60 * i}\n"
                            for i in range(200)))
    options = {"format": "${action} ${srcaddr} ${dstaddr} ${protocol} ${dstport} ${start}"}
    result = engine.summarize_files([str(path)], "aws-vpc", str(tmp_path / "s"), spark=spark, options=options)
    assert (result.sessions, result.quarantined) == (200, 0)
    local, stats = summary.from_raw_files([str(path)], "aws-vpc", options=options)
    assert ordered(read(tmp_path / "s")) == ordered(local) and stats["sessions"] == 200
    with pytest.raises(SourceError, match="has no option"):
        engine.summarize_files([str(path)], "aws-vpc", str(tmp_path / "t"), spark=spark, options={"fmt": "x"})
