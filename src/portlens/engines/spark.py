"""Build the 20-minute summary tier with Spark, running the portlens source parsers inside
the executors.

The unit of work is a file: the driver expands the inputs into a DataFrame of paths, one row a
file, and `mapInArrow` runs the same `sources` parser and `summary.summarize` that the local
ingest uses on each file, emitting partial summaries per parsed batch. Spark adds them up
(sum of count_ per key and 20-minute bin) and writes Parquet in `summary.SCHEMA`.

One pass over the files yields three kinds of rows, told apart by a `kind` column:
  "summary"     a partial summary row (summary.SCHEMA columns)
  "quarantine"  a quarantined record (asim.QUARANTINE_SCHEMA columns); only emitted when a
                quarantine output is asked for
  "file"        one per file: sessions / quarantined / skipped / records, or the error that
                stopped it
The pass is persisted so the three are read once. A file is all or nothing, as in the local
store: when a file fails (not recognised, unreadable, a parser error mid-file), what it
emitted before the failure is dropped, the error is reported in the result and the
quarantine output gets one row for it with line 0; the other files still land.
"""

from __future__ import annotations

import glob
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa

from .. import asim, sources, summary
from ..sources import SourceError
from ..sources.base import parse_file

# The rows mapInArrow emits: the summary columns, the quarantine columns and the per-file
# counts, one schema with a `kind` tag (columns a kind does not use are NULL).
ROWS = pa.schema([
    ("kind", pa.string()), ("file", pa.string()),
    *summary.SCHEMA,
    ("line", pa.int64()), ("source", pa.string()), ("reason", pa.string()), ("raw", pa.string()),
    ("sessions", pa.int64()), ("quarantined", pa.int64()), ("skipped", pa.int64()),
    ("records", pa.int64()), ("error", pa.string()),
])
_SPARK_TYPES = {pa.string(): "string", pa.int32(): "int", pa.int64(): "long",
                asim.TIMESTAMP: "timestamp"}
ROWS_DDL = ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in ROWS)


@dataclass
class FileStats:
    path: str
    source: str | None = None  # the parser used (None when none could be chosen)
    sessions: int = 0
    quarantined: int = 0
    skipped: int = 0
    records: int = 0
    error: str | None = None  # set when the file did not land (its counts are then 0)


@dataclass
class SparkSummaryResult:
    output: str
    files: int = 0  # files that landed
    sessions: int = 0
    quarantined: int = 0
    skipped: int = 0
    records: int = 0
    summary_rows: int = 0
    quarantine_output: str | None = None
    per_file: list[FileStats] = field(default_factory=list)

    @property
    def errors(self) -> list[FileStats]:
        """The files that did not land, with the reason."""
        return [f for f in self.per_file if f.error is not None]


# ---- inputs --------------------------------------------------------------------------------

def expand_inputs(inputs: list[str] | str) -> list[str]:
    """Absolute file paths for the inputs, in order, without repeats. A glob expands to the
    files it matches (sorted); a pattern matching nothing, or a path that is not a file, is
    kept as is and reported as a per-file error by the job."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths: list[str] = []
    for item in map(str, inputs):
        matched = sorted(p for p in glob.glob(item) if os.path.isfile(p)) if glob.has_magic(item) else []
        for p in matched or [item]:
            p = os.path.abspath(p)
            if p not in paths:
                paths.append(p)
    return paths


# ---- the executor side ---------------------------------------------------------------------

def _rows(kind: str, file: str, n: int, columns: dict) -> pa.RecordBatch:
    """A record batch of ROWS: `columns` given, the rest NULL."""
    arrays = []
    for f in ROWS:
        if f.name == "kind":
            arrays.append(pa.array([kind] * n, pa.string()))
        elif f.name == "file":
            arrays.append(pa.array([file] * n, pa.string()))
        elif f.name in columns:
            value = columns[f.name]
            if isinstance(value, pa.ChunkedArray):
                value = value.combine_chunks()
            arrays.append(value.cast(f.type) if isinstance(value, pa.Array)
                          else pa.array([value] * n, f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=ROWS)


def _file_rows(path: str, source: str, with_quarantine: bool) -> Iterator[pa.RecordBatch]:
    """Everything one file contributes: partial summaries per batch, quarantined records
    (if asked for) and, last, one "file" row with the counts or the error."""
    stats = {"sessions": 0, "quarantined": 0, "skipped": 0, "records": 0}
    name = None if source == "auto" else source
    try:
        if os.path.isdir(path):
            raise SourceError(f"{path}: is a directory, not a file")
        if not os.path.isfile(path):
            raise SourceError(f"{path}: no such file")
        parser = sources.detect(path) if source == "auto" else sources.get(source)
        name = parser.name
        for batch in parse_file(parser, path):
            stats["sessions"] += batch.table.num_rows
            stats["quarantined"] += batch.quarantine.num_rows
            stats["skipped"] += batch.skipped
            stats["records"] += batch.records
            if batch.table.num_rows:
                part = summary.summarize(batch.table).cast(summary.SCHEMA)
                if part.num_rows:
                    yield _rows("summary", path, part.num_rows,
                                {c: part[c] for c in part.column_names})
            if with_quarantine and batch.quarantine.num_rows:
                q = batch.quarantine.cast(asim.QUARANTINE_SCHEMA)
                yield _rows("quarantine", path, q.num_rows,
                            {c: q[c] for c in q.column_names if c != "file"})
    except Exception as e:  # one bad file must not stop the others; it is reported instead
        message = str(e) if isinstance(e, SourceError) else f"{path}: {type(e).__name__}: {e}"
        yield _rows("file", path, 1, {"source": name, "error": (message.splitlines() or [""])[0],
                                      "sessions": 0, "quarantined": 0, "skipped": 0, "records": 0})
        return
    yield _rows("file", path, 1, {"source": name, **stats})


def _parse_paths(source: str, with_quarantine: bool):
    """The mapInArrow function: record batches of paths in, ROWS record batches out."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for path in batch.column("path").to_pylist():
                yield from _file_rows(path, source, with_quarantine)
    return run


# ---- the driver side -----------------------------------------------------------------------

@contextmanager
def _quiet():
    """PySpark warns that it does not fully support pandas 3; mapInArrow does not use pandas."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        yield


def local_session(master: str = "local[2]", app_name: str = "portlens"):
    """A quiet local Spark session on the UTC clock, Arrow enabled, UI off."""
    from pyspark.sql import SparkSession
    # Python workers must run this interpreter (the one with portlens, pyarrow, duckdb).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with _quiet():
        return (SparkSession.builder.master(master).appName(app_name)
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.log.level", "ERROR")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate())


def summarize_files(inputs: list[str] | str, source: str = "auto", output: str | None = None, *,
                    spark=None, quarantine_output: str | None = None) -> SparkSummaryResult:
    """Parse the input files with the portlens sources inside Spark executors and write
    their 20-minute summary (summary.SCHEMA) as Parquet to `output` (a directory, replaced).

    `inputs`: paths or globs; `source`: a source name or "auto" (sniffed per file).
    `spark`: a session to use; by default the active one, else a local[2] session that is
    stopped at the end. `quarantine_output`: also write the quarantined records there as
    Parquet (asim.QUARANTINE_SCHEMA), plus one line-0 row per file that did not land.
    """
    if not output:
        raise ValueError("summarize_files: output (a Parquet directory) is required")
    if source != "auto":
        sources.get(source)  # an unknown source name is a usage error, not a per-file one
    paths = expand_inputs(inputs)
    if not paths:
        raise SourceError("no input files")

    own = False
    if spark is None:
        from pyspark.sql import SparkSession
        spark = SparkSession.getActiveSession()
        if spark is None:
            spark, own = local_session(), True
    try:
        with _quiet():
            return _run(spark, paths, source, output, quarantine_output)
    finally:
        if own:
            spark.stop()


def _run(spark, paths: list[str], source: str, output: str,
         quarantine_output: str | None) -> SparkSummaryResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    conf = spark.conf
    saved = conf.get("spark.sql.parquet.outputTimestampType", None)
    # Parquet timestamps as INT64 microseconds adjusted to UTC (not legacy INT96), so readers
    # get timestamp[us, tz=UTC] back.
    conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    try:
        parallelism = spark.sparkContext.defaultParallelism
        files = spark.createDataFrame([(p,) for p in paths], "path string")
        files = files.repartition(max(1, min(len(paths), parallelism)))
        rows = files.mapInArrow(_parse_paths(source, quarantine_output is not None), ROWS_DDL)
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            per_file = [FileStats(r["file"], r["source"], r["sessions"], r["quarantined"],
                                  r["skipped"], r["records"], r["error"])
                        for r in rows.filter(F.col("kind") == "file")
                                     .select("file", "source", "sessions", "quarantined",
                                             "skipped", "records", "error").collect()]
            order = {p: i for i, p in enumerate(paths)}
            per_file.sort(key=lambda s: order.get(s.path, len(order)))
            failed = [s.path for s in per_file if s.error is not None]
            landed = rows.filter(~F.col("file").isin(failed)) if failed else rows

            keys = [*summary.KEYS, "EventTime"]
            (landed.filter(F.col("kind") == "summary")
                   .groupBy(*keys).agg(F.sum("count_").cast("long").alias("count_"))
                   .select(*[F.col(f.name) for f in summary.SCHEMA])
                   .write.mode("overwrite").parquet(output))

            if quarantine_output is not None:
                kept = landed.filter(F.col("kind") == "quarantine")
                errors = (rows.filter((F.col("kind") == "file") & F.col("error").isNotNull())
                              .select("file", F.lit(0).cast("long").alias("line"),
                                      F.coalesce("source", F.lit(source)).alias("source"),
                                      F.col("error").alias("reason"),
                                      F.lit(None).cast("string").alias("raw")))
                (kept.select(*[f.name for f in asim.QUARANTINE_SCHEMA]).unionByName(errors)
                     .write.mode("overwrite").parquet(quarantine_output))
        finally:
            rows.unpersist()
        summary_rows = spark.read.parquet(output).count()
    finally:
        if saved is None:
            conf.unset("spark.sql.parquet.outputTimestampType")
        else:
            conf.set("spark.sql.parquet.outputTimestampType", saved)

    ok = [s for s in per_file if s.error is None]
    return SparkSummaryResult(
        output=output, files=len(ok),
        sessions=sum(s.sessions for s in ok), quarantined=sum(s.quarantined for s in ok),
        skipped=sum(s.skipped for s in ok), records=sum(s.records for s in ok),
        summary_rows=summary_rows, quarantine_output=quarantine_output, per_file=per_file)
