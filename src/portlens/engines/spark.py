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

Files may be object-storage URLs (s3://, az://, gs://, ...): the driver lists them and hands
out keys, never bytes; each executor opens its objects itself through portlens.storage (so
the executors need the storage credentials, e.g. an instance role, or spark.executorEnv.*).
A large plain-text file of a line-independent source is split by byte ranges on line
boundaries (`split_bytes`), so one 10 GB file is many tasks; a split's quarantined records
get their line numbers in the whole file back from the line counts of the splits before it.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa

from .. import asim, limits, sources, storage, summary
from ..sources import Source, SourceError
from ..sources.base import BATCH_LINES, long_records, parse_file, read_lines

# The rows mapInArrow emits: the summary columns, the quarantine columns and the per-file
# counts, one schema with a `kind` tag (columns a kind does not use are NULL).
ROWS = pa.schema([
    ("kind", pa.string()), ("file", pa.string()), ("part", pa.int32()), ("lines", pa.int64()),
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
    """Absolute file paths (or object URLs) for the inputs, in order, without repeats. A glob
    expands to the files it matches (sorted), a URL prefix to its objects; a pattern matching
    nothing, or a path that is not a file, is kept as is and reported as a per-file error."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths: list[str] = []
    for item in map(str, inputs):
        if storage.is_url(item):
            for url in [o.url for o in storage.list_files(item)]:
                if url not in paths:
                    paths.append(url)
            continue
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


def _split_parse(parser, path: str, byte_range: tuple[int, int], counts: dict) -> Iterator:
    """Source.parse over one byte range of a plain-text file. Parsers that learn the layout
    from header lines (Zeek's #fields) see the file's first lines first, unrecorded."""
    state = parser.start(path)
    if byte_range[0] > 0:
        with limits.collecting(path):  # (a long line among them is its own range's record)
            for lines, numbers in read_lines(path, BATCH_LINES, (0, min(byte_range[0], _PRIME_BYTES))):
                parser.parse_lines(lines, numbers, state)
    with limits.collecting(path) as long:  # records over the size limit, as parse_file does
        for lines, numbers in read_lines(path, BATCH_LINES, byte_range, counts):
            yield parser.finish(parser.mapped(lines, numbers, state), path)
            yield from long_records(long, path, parser.name)
        yield from long_records(long, path, parser.name)


def _file_rows(path: str, source: str, with_quarantine: bool, part: int = 0,
               byte_range: tuple[int, int] | None = None, options: dict | None = None
               ) -> Iterator[pa.RecordBatch]:
    """Everything one file (or one byte range of it) contributes: partial summaries per
    batch, quarantined records (if asked for) and, last, one "file" row with the counts (and
    the range's line count) or the error."""
    stats = {"sessions": 0, "quarantined": 0, "skipped": 0, "records": 0}
    counts: dict = {}
    name = None if source == "auto" else source
    try:
        if not storage.is_url(path):
            if os.path.isdir(path):
                raise SourceError(f"{path}: is a directory, not a file")
            if not os.path.isfile(path):
                raise SourceError(f"{path}: no such file")
        parser = sources.choose(path, source, options)
        name = parser.name
        batches = parse_file(parser, path) if byte_range is None else \
            _split_parse(parser, path, byte_range, counts)
        for batch in batches:
            stats["sessions"] += batch.table.num_rows
            stats["quarantined"] += batch.quarantine.num_rows
            stats["skipped"] += batch.skipped
            stats["records"] += batch.records
            if batch.table.num_rows:
                partial = summary.summarize(batch.table).cast(summary.SCHEMA)
                if partial.num_rows:
                    yield _rows("summary", path, partial.num_rows,
                                {c: partial[c] for c in partial.column_names})
            if with_quarantine and batch.quarantine.num_rows:
                q = batch.quarantine.cast(asim.QUARANTINE_SCHEMA)
                yield _rows("quarantine", path, q.num_rows,
                            {"part": part, **{c: q[c] for c in q.column_names if c != "file"}})
    except Exception as e:  # one bad file must not stop the others; it is reported instead
        message = str(e) if isinstance(e, SourceError) else f"{path}: {type(e).__name__}: {e}"
        yield _rows("file", path, 1, {"part": part, "source": name,
                                      "error": (message.splitlines() or [""])[0],
                                      "sessions": 0, "quarantined": 0, "skipped": 0, "records": 0})
        return
    yield _rows("file", path, 1, {"part": part, "source": name, "lines": counts.get("lines"), **stats})


def _parse_paths(source: str, with_quarantine: bool, options: dict | None = None):
    """The mapInArrow function: record batches of work (path, part, start, end) in, ROWS
    record batches out. end < 0: the whole file."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for w in batch.to_pylist():
                byte_range = None if w["end"] < 0 else (w["start"], w["end"])
                yield from _file_rows(w["path"], source, with_quarantine, w["part"], byte_range, options)
    return run


# ---- planning: which files are split ----------------------------------------------------------

SPLIT_BYTES = 128 << 20   # a plain-text file larger than this is read by several tasks
_PRIME_BYTES = 1 << 20    # how much of a file's head a later split reads for its header lines


def _size(path: str) -> int | None:
    try:
        return storage.stat(path).size if storage.is_url(path) else os.path.getsize(path)
    except (OSError, SourceError):
        return None  # the task reports it


def _splittable(path: str, source: str, options: dict | None = None) -> bool:
    """Plain text (not gzip) of a source whose records are lines read by Source.parse."""
    try:
        with storage.open_input(path) as f:
            if f.read(2) == b"\x1f\x8b":
                return False
        parser = sources.choose(path, source, options)
    except (OSError, SourceError):
        return False
    return type(parser).parse is Source.parse


def plan(paths: list[str], source: str, split_bytes: int = SPLIT_BYTES,
         options: dict | None = None) -> list[tuple[str, int, int, int]]:
    """Work items (path, part, start, end): one per file, or one per byte range of a large
    splittable file (the driver reads a few head bytes of those; the executors read the rest)."""
    work = []
    for path in paths:
        size = _size(path)
        if size is None or size <= split_bytes or not _splittable(path, source, options):
            work.append((path, 0, 0, -1))
            continue
        for part, start in enumerate(range(0, size, split_bytes)):
            work.append((path, part, start, min(start + split_bytes, size)))
    return work


# ---- the driver side -----------------------------------------------------------------------

@contextmanager
def _quiet():
    """PySpark warns that it does not fully support pandas 3; mapInArrow does not use pandas."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        yield


# Storage settings that say where objects are (not secrets): executors get the driver's.
_STORAGE_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                "STORAGE_EMULATOR_HOST")


def local_session(master: str = "local[2]", app_name: str = "portlens", conf: dict | None = None):
    """A quiet Spark session on the UTC clock, Arrow enabled, UI off. `master`: local[N] or a
    cluster (spark://HOST:7077, yarn, k8s://...); `conf`: more spark.* settings (they win).
    For local masters and a master on this machine the driver binds to 127.0.0.1."""
    from pyspark.sql import SparkSession
    # Python workers must run this interpreter (the one with portlens, pyarrow, duckdb),
    # unless a deployment says otherwise (a packed venv: see README, "Scale out").
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    loopback = master.startswith("local") or any(h in master for h in ("//127.0.0.1", "//localhost"))
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
    }
    if loopback:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    for name in _STORAGE_ENV:
        if os.environ.get(name):
            settings[f"spark.executorEnv.{name}"] = os.environ[name]
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _quiet():
        return builder.getOrCreate()


def parse_conf(pairs: list[str] | None) -> dict:
    """['k=v', ...] -> {k: v} (for --conf); a pair without '=' is a usage error."""
    conf = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--conf {pair!r}: expected KEY=VALUE (e.g. spark.executor.memory=4g)")
        conf[key.strip()] = value
    return conf


def summarize_files(inputs: list[str] | str, source: str = "auto", output: str | None = None, *,
                    spark=None, quarantine_output: str | None = None, master: str | None = None,
                    conf: dict | None = None, split_bytes: int = SPLIT_BYTES,
                    progress=None, options: dict | None = None) -> SparkSummaryResult:
    """Parse the input files with the portlens sources inside Spark executors and write
    their 20-minute summary (summary.SCHEMA) as Parquet to `output` (a directory, replaced).

    `inputs`: paths, globs or object-storage URLs (prefixes, globs); `source`: a source name or
    "auto" (sniffed per file). `spark`: a session to use; by default the active one, else a
    session on `master` (default local[2]) with `conf`, stopped at the end.
    `quarantine_output`: also write the quarantined records there as Parquet
    (asim.QUARANTINE_SCHEMA), plus one line-0 row per file that did not land. `split_bytes`:
    plain-text files larger than this are read in byte ranges by several tasks.
    `progress`: a progress.Progress told of the tasks done (`tasks(done, total)`). `options`:
    the source's own (Source.OPTIONS, e.g. aws-vpc's format), for every file.
    """
    if not output:
        raise ValueError("summarize_files: output (a Parquet directory) is required")
    if source != "auto":
        # an unknown source name or option is a usage error, not a per-file one
        sources.get(source).with_options(options or {})
    paths = expand_inputs(inputs)
    if not paths:
        raise SourceError("no input files")

    own = False
    if spark is None:
        from pyspark.sql import SparkSession
        spark = SparkSession.getActiveSession() if master is None else None
        if spark is None:
            spark, own = local_session(master or "local[2]", conf=conf), True
    watching = _watch_tasks(spark, progress) if progress is not None else None
    try:
        with _quiet():
            return _run(spark, paths, source, output, quarantine_output, split_bytes, options)
    finally:
        if watching is not None:
            watching.set()
        if own:
            spark.stop()


def _watch_tasks(spark, progress, every: float = 0.5) -> threading.Event:
    """Report the tasks done out of those known so far, read off Spark's status tracker
    every `every` seconds, until the returned event is set."""
    stop = threading.Event()
    tracker = spark.sparkContext.statusTracker()
    stages: dict[int, tuple[int, int]] = {}

    def watch():
        while not stop.wait(every):
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    stages[stage_id] = (info.numCompletedTasks, info.numTasks)
            if stages:
                progress.tasks(sum(d for d, _ in stages.values()), sum(t for _, t in stages.values()))
    threading.Thread(target=watch, name="portlens-spark-progress", daemon=True).start()
    return stop


def _per_file(parts: list) -> tuple[list[FileStats], dict]:
    """The "file" rows of every work item -> one FileStats per file (a file fails when any of
    its splits failed) and, for split files, each split's first line number minus one."""
    by_file: dict[str, list] = {}
    for r in parts:
        by_file.setdefault(r["file"], []).append(r)
    stats, offsets = [], {}
    for path, rows in by_file.items():
        rows.sort(key=lambda r: r["part"] or 0)
        errors = [r["error"] for r in rows if r["error"] is not None]
        source = next((r["source"] for r in rows if r["source"]), None)
        if errors:
            stats.append(FileStats(path, source, error=errors[0]))
            continue
        stats.append(FileStats(path, source, *(sum(r[k] for r in rows)
                                              for k in ("sessions", "quarantined", "skipped", "records"))))
        if len(rows) > 1:
            before = 0
            for r in rows:
                offsets[(path, r["part"])] = before
                before += r["lines"] or 0
    return stats, offsets


def _run(spark, paths: list[str], source: str, output: str, quarantine_output: str | None,
         split_bytes: int = SPLIT_BYTES, options: dict | None = None) -> SparkSummaryResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    conf = spark.conf
    saved = conf.get("spark.sql.parquet.outputTimestampType", None)
    # Parquet timestamps as INT64 microseconds adjusted to UTC (not legacy INT96), so readers
    # get timestamp[us, tz=UTC] back.
    conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    try:
        parallelism = spark.sparkContext.defaultParallelism
        work = plan(paths, source, split_bytes, options)
        items = spark.createDataFrame([(p, part, start, end) for p, part, start, end in work],
                                      "path string, part int, start long, end long")
        items = items.repartition(max(1, min(len(work), parallelism * 4 if len(work) > len(paths) else parallelism)))
        rows = items.mapInArrow(_parse_paths(source, quarantine_output is not None, options), ROWS_DDL)
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            parts = rows.filter(F.col("kind") == "file").select(
                "file", "part", "lines", "source", "sessions", "quarantined", "skipped", "records",
                "error").collect()
            per_file, offsets = _per_file(parts)
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
                if offsets:  # a split's line numbers count from its first line: make them the file's
                    shift = spark.createDataFrame([(f, p, n) for (f, p), n in offsets.items()],
                                                  "file string, part int, offset long")
                    kept = (kept.join(F.broadcast(shift), ["file", "part"], "left")
                                .withColumn("line", F.col("line") + F.coalesce("offset", F.lit(0))))
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
