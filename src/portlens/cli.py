"""The command line: arguments in, calls out, Rich output. Exit 0 on success, 2 on bad usage
or bad input with one line on stderr saying what is wrong and where."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.console import Console

from .cli_values import Commands
from .errors import NoData, PortlensError, SourceError, UsageError
from .progress import progress
from .terminal import printable, safe

# Importing the engine (DuckDB, Arrow, NumPy: about half a second) is left to the commands
# that use it, so `--help` and usage errors answer at once: each command imports what it needs.
if TYPE_CHECKING:
    import pyarrow as pa

    from . import asim
    from .alerts import Detection
    from .store import Store

DEFAULT_DB = "portlens.duckdb"  # store.DEFAULT_DB, written out so `--help` needs no store (a test checks)

app = typer.Typer(cls=Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find port misuse in network session logs (the Sentinel ASIM port-anomaly rule, offline).")
config_app = typer.Typer(cls=Commands, no_args_is_help=True, help="Work with the monitor configuration (watchlist CSV).")
app.add_typer(config_app, name="config")

# Piped output gets a fixed, wide layout instead of Rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)


def _without_pandas() -> None:
    """pyarrow imports pandas (0.3-0.5 s) the first time it builds an array from Python values,
    only to ask whether they are pandas objects; no command but the Spark engine uses pandas.
    For the command's duration `import pandas` fails fast (`_NoPandas`), which pyarrow takes
    as "no pandas"; the Spark engine lifts it (`_allow_pandas`)."""
    if "pandas" not in sys.modules and _NoPandas not in sys.meta_path:
        sys.meta_path.insert(0, _NoPandas)


def _allow_pandas() -> None:
    if _NoPandas in sys.meta_path:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import hook under which `import pandas` fails (see _without_pandas)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not needed here")
        return None


def main() -> None:
    _without_pandas()
    try:
        _main()
    finally:
        _allow_pandas()


def _main() -> None:
    try:
        code = app(standalone_mode=False)
    except DeliveryFailed:
        sys.exit(1)
    except PortlensError as e:
        _fail(str(e))
    except Exception as e:
        # Click-style usage errors (bad option value, missing argument): one line, exit 2.
        if getattr(e, "exit_code", None) == 2 and hasattr(e, "format_message"):
            ctx = getattr(e, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(e.format_message().replace("\n", " ") + where)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> None:
    err.print(f"portlens: error: {printable(message)}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def _files(paths: list) -> list[str]:
    """Files, folders and globs -> files; portlens' own files in a folder are noted and left out."""
    from . import files
    found = files.expand(paths)
    if found.skipped:
        shown = ", ".join(found.skipped[:3]) + (f" and {len(found.skipped) - 3} more" if len(found.skipped) > 3 else "")
        err.print(f"note: skipped {len(found.skipped)} file(s) portlens writes, not logs: {shown}",
                  markup=False, highlight=False)
    return found.files


def _time_bounds(not_before: str, max_future: float) -> asim.TimeBounds:
    if max_future < 0:
        raise UsageError(f"--max-future {max_future:g}: must be 0 or more hours")
    from . import asim
    return asim.TimeBounds(_as_of(not_before, "--not-before"), timedelta(hours=max_future))


MaxRecordOption = typer.Option(1 << 20, "--max-record-bytes", help="Quarantine a record (line) longer than this, with its first 4 KiB.")
MaxInflationOption = typer.Option(200.0, "--max-inflation", help="Stop a compressed file that inflates more than this many times its size (past 64 MiB): a decompression bomb.")


def _input_limits(max_record_bytes: int, max_inflation: float):
    from . import limits
    if max_record_bytes < 1:
        raise UsageError(f"--max-record-bytes {max_record_bytes}: must be 1 or more")
    if max_inflation < 1:
        raise UsageError(f"--max-inflation {max_inflation:g}: must be 1 or more")
    return limits.applied(limits.InputLimits(max_record_bytes=max_record_bytes, max_inflation=max_inflation))


def _is_url(path: str) -> bool:
    from .storage import is_url
    return is_url(path)


def _as_of(value: Optional[str], option: str = "--as-of") -> Optional[datetime]:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {value!r}: not an ISO-8601 time (e.g. 2024-05-14T00:00:00Z)") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


DbOption = typer.Option(DEFAULT_DB, "--db", help="The DuckDB store file.")
SourceOption = typer.Option("auto", "--source", help="Source name (see 'portlens sources') or auto.")
CaOption = typer.Option(None, "--ca", help="PEM file of the CA(s) that sign the receivers' certificates (tls:// syslog, https:// webhooks); default: the system's.")
SourceOptionsOption = typer.Option(None, "--source-option", help="KEY=VALUE for the source's own options (e.g. aws-vpc: format='version account-id ...'); repeatable.")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bar (it shows only on a terminal anyway).")
TimezoneOption = typer.Option(None, "--timezone", help="IANA zone (e.g. Europe/Paris) to read Sentinel "
                              "exports' [Local Time] columns in (default: UTC, with a warning).")


def _timezone(value: Optional[str]):
    """Validate --timezone and make it the zone `[Local Time]` export columns are read in."""
    if value is None and "portlens.sources.sentinel" not in sys.modules:
        return  # nothing set it in this process: the default (None) holds, no need to import it
    from .sources.sentinel import LOCAL_TIMEZONE
    if value is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--timezone {value!r}: not an IANA time zone (e.g. Europe/Paris, UTC)") from None
    LOCAL_TIMEZONE.set(value)


def _source_options(values: Optional[List[str]]) -> dict:
    options = {}
    for value in values or ():
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--source-option {value!r}: expected KEY=VALUE")
        options[key.strip()] = text
    return options


def _print_skipped(skipped_by: dict) -> None:
    for reason, n in sorted(skipped_by.items(), key=lambda kv: -kv[1]):
        err.print(f"  skipped {n:,}: {printable(reason)}", markup=False, highlight=False)


@app.command()
def ingest(paths: List[str] = typer.Argument(..., help="Files, folders or object-storage URLs (s3://, az://, gs://; a prefix or glob)."),
           source: str = SourceOption, db: str = DbOption, tz: Optional[str] = TimezoneOption,
           not_before: str = typer.Option("1990-01-01", "--not-before", help="Quarantine records stamped before this date."),
           max_future: float = typer.Option(24.0, "--max-future", help="Quarantine records stamped more than this many hours after the clock of this machine."),
           max_record_bytes: int = MaxRecordOption, max_inflation: float = MaxInflationOption,
           quiet: bool = QuietOption, source_options: Optional[List[str]] = SourceOptionsOption) -> None:
    """Normalize files to ASIM and store them (atomic and idempotent per file)."""
    from . import asim
    from .store import Store
    _timezone(tz)
    options = _source_options(source_options)
    files = _files(paths)
    failed = 0
    bounds = _time_bounds(not_before, max_future)
    with _input_limits(max_record_bytes, max_inflation), Store(db) as store, asim.plausible_times(bounds), \
            progress(err, len(files), quiet) as bar:
        landed = 0
        for path in files:
            bar.file(path)
            try:
                r = store.ingest(path, source, progress=bar.advance, apply_retention=False, options=options)
                landed += not r.duplicate_of
            except SourceError as e:
                err.print(f"portlens: error: {printable(e)}", markup=False, highlight=False)
                failed += 1
                continue
            finally:
                bar.done()
            if r.duplicate_of == path:
                out.print(f"{safe(path)}: already ingested (unchanged); nothing read")
            elif r.duplicate_of:
                out.print(f"{safe(path)}: already ingested (same content as {safe(r.duplicate_of)}); "
                          "nothing changed")
            else:
                out.print(f"{safe(path)}: [bold]{r.sessions:,}[/] sessions ({r.source})"
                          + (f", [yellow]{r.quarantined:,} quarantined[/]" if r.quarantined else "")
                          + (f", {r.skipped:,} skipped (not sessions)" if r.skipped else "")
                          + ("; replaces the earlier version of this object" if r.replaced else "")
                          + (f"; lines {r.lines[0]:,}-{r.lines[1]:,}, after those read from {safe(r.continues)}"
                             if r.continues and r.lines else ""))
                for note in getattr(r, "notes", ()):
                    err.print(f"warning: {printable(note)}", markup=False, highlight=False)
                _print_skipped(getattr(r, "skipped_by", {}))
                if r.quarantined and not r.sessions:  # a wrong --source, most likely
                    err.print(printable(f"note: no session landed; 'portlens quarantine --file {path}' shows why, and "
                                        f"'portlens forget {path}' lets it be ingested again (e.g. with another --source)"),
                              markup=False, highlight=False)
        if landed:
            store.apply_retention()  # once per command, after every file has landed
    if failed:
        raise typer.Exit(2)


@app.command()
def normalize(path: str = typer.Argument(..., help="A raw log file or object URL."),
              source: str = SourceOption,
              output: str = typer.Option("-", "--output", "-o", help="'-' for JSON lines on stdout, *.parquet for Parquet, else a JSON-lines file."),
              tz: Optional[str] = TimezoneOption,
              max_record_bytes: int = MaxRecordOption, max_inflation: float = MaxInflationOption,
              quiet: bool = QuietOption, source_options: Optional[List[str]] = SourceOptionsOption) -> None:
    """Print or write a file's ASIM rows without storing them."""
    with _input_limits(max_record_bytes, max_inflation):
        _normalize(path, source, output, tz, quiet, _source_options(source_options))


def _normalize(path: str, source: str, output: str, tz: Optional[str], quiet: bool = False,
               options: dict | None = None) -> None:
    from . import files, storage
    from .sources import choose
    if storage.is_url(path):
        storage.stat(path)  # a missing object, bucket or credentials: one line now
    elif not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    files.check_output(output, "--output")
    _timezone(tz)
    vendors: dict[str, int] = {}
    skipped_by: dict[str, int] = {}
    parser = choose(str(path), source, options)
    sink = _RowSink(output)
    # the bar only when the rows go to a file (on a terminal, rows on stdout are the display)
    counts = [0, 0, 0]
    with progress(err, 1, quiet or output == "-") as bar:
        bar.file(str(path))
        _write_rows(parser, str(path), sink, bar, vendors, skipped_by, counts)
    rows, quarantined, skipped = counts
    err.print(f"{printable(path)}: {rows:,} rows ({parser.name}), {quarantined:,} quarantined, {skipped:,} skipped",
              markup=False, highlight=False)
    if len(vendors) > 1 or skipped_by:
        for name, n in sorted(vendors.items(), key=lambda kv: -kv[1]):
            err.print(f"  rows {n:,}: {printable(name)}", markup=False, highlight=False)
    _print_skipped(skipped_by)


def _write_rows(parser, path: str, sink, bar, vendors: dict, skipped_by: dict, counts: list) -> None:
    """Write a file's rows to `sink`; counts = [rows, quarantined, skipped]."""
    from .sources.base import parse_file
    rows = quarantined = skipped = 0
    try:
        for batch in parse_file(parser, path):
            sink.write(batch.table)
            bar.advance(batch.records)
            rows += batch.table.num_rows
            skipped += batch.skipped
            for q in batch.quarantine.to_pylist() if batch.quarantine.num_rows else ():
                err.print(printable(f"{q['file']}:{q['line']}: quarantined: {q['reason']}"), markup=False, highlight=False)
            quarantined += batch.quarantine.num_rows
            for note in batch.notes:
                err.print(f"warning: {printable(note)}", markup=False, highlight=False)
            for reason, n in batch.skipped_by.items():
                skipped_by[reason] = skipped_by.get(reason, 0) + n
            if batch.table.num_rows:
                for r in batch.table.group_by(["EventVendor", "EventProduct"]).aggregate([([], "count_all")]).to_pylist():
                    key = " ".join(v for v in (r["EventVendor"], r["EventProduct"]) if v)
                    vendors[key] = vendors.get(key, 0) + r["count_all"]
    finally:
        sink.close()
        counts[:] = [rows, quarantined, skipped]


class _RowSink:
    def __init__(self, output: str):
        self.output = output
        self.parquet = output.endswith(".parquet")
        self.writer = None
        self.stream = sys.stdout if output == "-" else (None if self.parquet else open(output, "w", encoding="utf-8"))

    def write(self, table: pa.Table) -> None:
        from . import asim
        if self.parquet:
            import pyarrow.parquet as pq
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.output, asim.SCHEMA)
            self.writer.write_table(table)
            return
        times = ", ".join(f"strftime(\"{c}\", '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{c}\""
                          for c in asim.TIME_COLUMNS if c in table.column_names)
        replace = f" REPLACE ({times})" if times else ""
        text = asim.query(f"SELECT to_json(t)::VARCHAR AS j FROM (SELECT *{replace} FROM b) t", b=table)
        if text.num_rows:
            self.stream.write("\n".join(text["j"].to_pylist()) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.stream not in (None, sys.stdout):
            self.stream.close()


class Format(str, Enum):
    table = "table"
    jsonl = "jsonl"
    ocsf = "ocsf"
    sentinel = "sentinel"
    cef = "cef"


class ZeroSpread(str, Enum):
    inf = "inf"
    zero = "zero"


class Seasonality(str, Enum):
    auto = "auto"
    none = "none"


class Tier(str, Enum):
    auto = "auto"
    sentinel_raw = "sentinel-raw"
    raw = "raw"
    summaries = "summaries"


class MissingDays(str, Enum):
    zero = "zero"
    skip = "skip"


class Profile(str, Enum):
    sentinel = "sentinel"
    improved = "improved"


ProfileOption = typer.Option(Profile.sentinel, "--profile", help="sentinel: the rule exactly (default). "
                             "improved: portlens' own model over the same daily counts and watchlist rows: "
                             "the day against what the 8 weeks before it predict, with the expected count "
                             "and interval in each alert (docs/improved.md).")


class Engine(str, Enum):
    duckdb = "duckdb"
    spark = "spark"


@app.command("detect")
def detect_cmd(db: str = DbOption,
               config: Optional[Path] = typer.Option(None, "--config", help="Monitor configuration CSV (default: the one Sentinel ships; 'portlens config export' writes a copy to edit)."),
               as_of: Optional[str] = typer.Option(None, "--as-of", help="End of the 14-day window (ISO-8601, UTC if no zone). Default: just after the newest data."),
               fmt: Format = typer.Option(Format.table, "--format", help="table, jsonl (KQL columns + extras), ocsf (Detection Finding), sentinel (the rule's alert shape) or cef."),
               output: str = typer.Option("-", "--output", "-o", help="File to write, '-' for stdout."),
               zero_spread: ZeroSpread = typer.Option(ZeroSpread.inf, "--zero-spread", help="Score when the residual spread is zero (spec §8): inf or zero."),
               seasonality: Seasonality = typer.Option(Seasonality.auto, "--seasonality", help="A guess (docs/kql.md): auto = portlens' period detector (can find period 4 in 14 days), none = never a seasonal component. How Kusto decides is unpublished."),
               summaries: Optional[List[str]] = typer.Option(None, "--summaries", help="Read summary Parquet/CSV files (path, folder or glob) instead of a store."),
               tier: Tier = typer.Option(Tier.auto, "--tier", help="Where counts come from (docs/kql.md, Data selection). Sentinel's: auto (the rule's allData union: summaries; the legacy table only without recent summaries; raw sessions only without either) or sentinel-raw (a workspace without summaries: raw sessions of the last 3-4 days). portlens' own: raw (every raw session of the 14 days) or summaries (auto without its raw branch)."),
               missing_days: MissingDays = typer.Option(MissingDays.zero, "--missing-days", help="zero: an empty day is 0, as in KQL; skip: leave days with no data at all (outages) out of the trend."),
               date_from: Optional[str] = typer.Option(None, "--from", help="Backtest: run as of every day from this date ..."),
               date_to: Optional[str] = typer.Option(None, "--to", help="... to this date (inclusive), in one pass over the data. Each date is an as-of, the END of its window: the last day scored is the day before --to."),
               deliver: Optional[List[str]] = typer.Option(None, "--deliver", help="Send alerts: webhook=URL, syslog=tls://HOST:6514 (or tcp://HOST:PORT, udp://HOST:PORT), file=PATH; KIND+FORMAT=... picks the format. Repeatable."),
               ca: Optional[str] = CaOption,
               retries: int = typer.Option(3, "--retries", help="Retries after a failed delivery attempt, per alert and sink in this run (3: up to 4 attempts)."),
               profile: Profile = ProfileOption) -> None:
    """Run the port-anomaly rule (and the static-threshold rows) on the store or on summary
    files; --from/--to backtests."""
    from . import files, monitor
    from .store import Store
    files.check_output(output, "--output")
    cfg = monitor.load_config(config)
    if config is not None and cfg.warnings:  # read as Sentinel reads it; say so, go on
        err.print(f"warning: {cfg.path}: {len(cfg.warnings)} watchlist warning(s); "
                  f"'portlens config check {cfg.path}' lists them", markup=False, highlight=False)
    sinks = _sinks(deliver, ca)
    if sinks and summaries:
        raise UsageError("--deliver needs a store (it keeps the outbox); not with --summaries")
    if retries < 0:
        raise UsageError(f"--retries {retries}: must be 0 or more")
    if (date_from is None) != (date_to is None):
        raise UsageError("--from and --to go together")
    if date_from is not None and as_of is not None:
        raise UsageError("use either --as-of or --from/--to")
    if tier in (Tier.raw, Tier.sentinel_raw) and summaries:
        raise UsageError(f"--tier {tier.value} needs a store; summary files hold no raw sessions")
    first, last = _as_of(as_of), None
    if date_from is not None:
        first, last = _as_of(date_from, "--from"), _as_of(date_to, "--to")
        if last < first:
            raise UsageError(f"--to {date_to} is before --from {date_from}")
    options = dict(config=cfg, zero_spread=zero_spread.value, tier=tier.value,
                   missing_days=missing_days.value, seasonality=seasonality.value, profile=profile.value)
    if summaries:
        results = _detect(summaries, " ".join(summaries), first, last, options)
    else:
        with Store(db, read_only=not sinks) as store:
            results = _detect(store, db, first, last, options)
            if sinks:
                _deliver(store, [a for r in results for a in r.alerts], sinks, retries)
    _report_tiers(results[-1])
    if len(results) == 1 and results[0].empty:
        _say_empty(results[0])
    if last is not None:
        _emit_backtest(results, fmt, output)
    else:
        _emit_alerts(results[0], fmt, output)


def _detect(data, name: str, first: Optional[datetime], last: Optional[datetime], options: dict) -> list[Detection]:
    """api.detect (or api.backtest), saying which as-of was chosen when none was given."""
    from . import api
    from .alerts import iso
    if last is not None:
        return api.backtest(data, first, last, **options)
    try:
        result = api.detect(data, as_of=first, **options)
    except NoData as e:
        raise NoData(f"{e}; ingest some first") from None
    if first is None:
        err.print(f"as-of {iso(result.window.as_of)} (just after the newest session; use --as-of to choose)",
                  highlight=False)
    return [result]


def _say_empty(result: Detection) -> None:
    """A window without any sessions is not 'no alerts': say so, and where the data is."""
    from .alerts import iso
    where = (f"the newest data is at {iso(result.newest)}; pick --as-of just after it"
             if result.newest else "the data holds no sessions")
    err.print(f"note: no sessions in the 14-day window {iso(result.window.start)} .. "
              f"{iso(result.window.as_of)}: nothing was scored ({where})", markup=False, highlight=False)


def _sinks(specs: Optional[List[str]], ca: Optional[str] = None) -> list:
    from . import delivery
    if ca and not specs:
        raise UsageError("--ca goes with a tls:// or https:// sink")
    try:
        return [delivery.parse_sink(spec, ca) for spec in specs or []]
    except ValueError as e:
        raise UsageError(str(e)) from None


def _deliver(store: Store, alerts: list, sinks: list, retries: int) -> None:
    """Alerts go into the store's outbox first (stable ids: a re-run adds nothing), then
    everything not yet delivered to each sink is sent; failures are retried next run."""
    from . import delivery
    delivery.record(store, alerts)
    report = delivery.deliver(store, sinks, retries=retries)
    err.print(report.summary(), markup=False, highlight=False)
    if not report.ok:
        raise DeliveryFailed()


class DeliveryFailed(Exception):
    """Some deliveries failed (already reported); they stay in the outbox for the next run."""


def _report_tiers(result: Detection) -> None:
    """Say where the window's counts came from, per tier: days covered and sessions."""
    if not result.tiers:
        return
    parts = []
    for tier, per_day in result.tiers.items():
        days = [i for i, n in enumerate(per_day) if n]
        if days:
            parts.append(f"{tier} {sum(per_day):,} sessions on days {days[0] + 1}-{days[-1] + 1}")
    err.print("window counts: " + "; ".join(parts), highlight=False)


def _emit_backtest(results: list[Detection], fmt: Format, output: str) -> None:
    from . import formats
    from .alerts import iso
    stream = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
    try:
        if fmt is not Format.table:
            formats.write_jsonl([a for r in results for a in r.alerts], stream, fmt.value)
            return
        from rich.table import Table
        table = Table(title=f"backtest: {len(results)} days, {sum(len(r.alerts) for r in results)} alerts")
        for c in ("as-of", "series", "alerts"):
            table.add_column(c)
        for r in results:
            table.add_row(iso(r.window.as_of), f"{r.series_count:,}",
                          "\n".join(safe(f"{a.severity} {a.title} (port {a.port}, "
                                            + (f"score {a.score:.1f})" if a.kind == "anomaly"
                                               else f"{a.total:,} over {a.threshold:,} in 10 min)"))
                                    for a in r.alerts) or "-")
        (out if output == "-" else Console(file=stream, width=140)).print(table)
    finally:
        if stream is not sys.stdout:
            stream.close()


def _emit_alerts(result: Detection, fmt: Format, output: str) -> None:
    from . import formats
    from .alerts import iso, render_table
    stream = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
    try:
        if fmt is not Format.table:
            formats.write_jsonl(result.alerts, stream, fmt.value)
        else:
            console = out if output == "-" else Console(file=stream, width=140)
            render_table(result.alerts, console, as_of=iso(result.window.as_of),
                         series_count=result.series_count)
    finally:
        if stream is not sys.stdout:
            stream.close()


@app.command()
def summarize(db: str = DbOption,
              engine: Engine = typer.Option(Engine.duckdb, "--engine", help="duckdb (this machine) or spark."),
              inputs: Optional[List[str]] = typer.Option(None, "--input", help="Raw files or globs to summarize into --output instead of the store."),
              source: str = SourceOption,
              output: Optional[str] = typer.Option(None, "--output", help="Folder for summary Parquet (with --input)."),
              master: Optional[str] = typer.Option(None, "--master", help="Spark master: local[N] (default local[2]), spark://HOST:7077, yarn, k8s://..."),
              conf: Optional[List[str]] = typer.Option(None, "--conf", help="A Spark setting KEY=VALUE; repeatable."),
              quiet: bool = QuietOption, source_options: Optional[List[str]] = SourceOptionsOption) -> None:
    """Rebuild the store's 20-minute summaries, or summarize raw files to Parquet."""
    from . import summary
    from .store import Store
    if (master or conf) and engine is not Engine.spark:
        raise UsageError("--master and --conf go with --engine spark")
    options = _source_options(source_options)
    if options and not inputs:
        raise UsageError("--source-option goes with --input FILES")
    if not inputs:
        if engine is Engine.spark or output:
            raise UsageError("--engine spark and --output need --input FILES")
        with Store(db) as store:
            rows = store.summarize()
        out.print(f"{db}: rebuilt summaries ({rows:,} rows)")
        return
    if not output:
        raise UsageError("--input needs --output DIR")
    paths = _files(inputs)
    if engine is Engine.spark:
        _allow_pandas()  # PySpark's mapInArrow runs on its pandas UDF machinery
        try:
            from .engines import spark as spark_engine
        except ImportError as e:
            raise UsageError(f"the Spark engine needs PySpark: pip install 'portlens[spark]' ({e})") from None
        try:
            settings = spark_engine.parse_conf(conf)
        except ValueError as e:
            raise UsageError(str(e)) from None
        with progress(err, 1, quiet) as bar:
            r = spark_engine.summarize_files(paths, source, output, master=master or "local[2]", conf=settings,
                                             progress=bar, options=options)
        out.print(f"{output}: {r.summary_rows:,} summary rows from {r.sessions:,} sessions in {r.files} files (spark)")
        for failed in r.errors:
            err.print(f"portlens: error: {failed.error}", markup=False, highlight=False)
        if r.errors:
            raise typer.Exit(2)
        return
    with progress(err, len(paths), quiet) as bar:
        rows, stats = summary.from_raw_files(paths, source, progress=bar, options=options)
    target = str(Path(output) / "summaries.parquet")
    summary.write(rows, target)
    out.print(f"{target}: {rows.num_rows:,} summary rows from {stats['sessions']:,} sessions in "
              f"{stats['files']} files (duckdb)")


@app.command("import-summaries")
def import_summaries(paths: List[str] = typer.Argument(..., help="Sentinel summary exports (CSV/JSON) or portlens summary Parquet; globs and folders allowed."),
                     db: str = DbOption) -> None:
    """Load summary rows (NetworkSummary_Protocol_CL or NetworkCustomAnalytics_protocol_CL)."""
    from . import summary
    from .store import Store
    with Store(db) as store:
        for path in summary.expand(paths):
            r = store.import_summaries(path)
            if r.duplicate_of:
                out.print(f"{path}: already imported (same content as {r.duplicate_of}); nothing changed")
            else:
                out.print(f"{path}: {r.records:,} summary rows ({r.sessions:,} sessions)")


@app.command("export-summaries")
def export_summaries(output: str = typer.Argument(..., help="*.parquet or *.csv"), db: str = DbOption) -> None:
    """Write the store's summaries in the NetworkSummary_Protocol_CL shape."""
    from . import files
    from .store import Store
    files.check_output(output, "")
    with Store(db, read_only=True) as store:
        n = store.export_summaries(output)
    out.print(f"{output}: {n:,} summary rows")


@app.command()
def prune(db: str = DbOption,
          raw_days: Optional[int] = typer.Option(None, "--raw-days", help="Keep raw sessions this many days (saved; default 30)."),
          summary_days: Optional[int] = typer.Option(None, "--summary-days", help="Keep summaries this many days (saved; at least 15; default 400).")) -> None:
    """Apply retention now (it is also applied after every ingest)."""
    from .store import Store
    with Store(db) as store:
        keep = store.set_retention(raw_days, summary_days)
        done = store.prune()
    out.print(f"kept {keep['raw_days']} days of raw sessions and {keep['summary_days']} days of summaries "
              f"(counted back from the newest data): removed {done['raw_deleted']:,} sessions and "
              f"{done['summaries_deleted']:,} summary rows")


@app.command()
def run(watch: str = typer.Option(..., "--watch", help="Folder (or object-storage URL prefix) to watch for new log files."),
        db: str = DbOption,
        every: str = typer.Option("10m", "--every", help="Time between scans (e.g. 30s, 10m, 1h)."),
        alerts: Path = typer.Option(Path("portlens-alerts.jsonl"), "--alerts", help="JSON-lines file new alerts are appended to."),
        config: Optional[str] = typer.Option(None, "--config", help="Monitor configuration CSV."),
        once: bool = typer.Option(False, "--once", help="One scan and one detect, then exit (for cron)."),
        deliver: Optional[List[str]] = typer.Option(None, "--deliver", help="Also send new alerts to these sinks (see detect --deliver)."),
        ca: Optional[str] = CaOption, profile: Profile = ProfileOption) -> None:
    """Run as a service: ingest what is new in files as they grow or rotate, detect as soon as
    the first files have settled, then once a day (SIGUSR1: now). SIGTERM stops it after the
    step in flight."""
    from . import files
    from .service import Watcher, parse_every
    if not _is_url(watch):
        if not Path(watch).is_dir():
            raise UsageError(f"{watch}: not a folder")
        watch = Path(watch)
    try:
        seconds = parse_every(every)
    except ValueError as e:
        raise UsageError(f"--every {e}") from None
    files.check_output(alerts, "--alerts")
    watcher = Watcher(watch, db, alerts, every=seconds, config=config, sinks=_sinks(deliver, ca),
                      log=lambda m: err.print(m, markup=False, highlight=False), profile=profile.value)
    watcher.install_signals()
    err.print(f"watching {watch} every {every}; store {db}; alerts -> {alerts} (pid {os.getpid()})",
              markup=False, highlight=False)
    watcher.run(once=once)
    err.print("stopped", markup=False, highlight=False)


class HuntFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"


@app.command()
def hunt(db: str = DbOption,
         config: Optional[Path] = typer.Option(None, "--config", help="Monitor configuration CSV."),
         as_of: Optional[str] = typer.Option(None, "--as-of", help="End of the window; default just after the newest data."),
         days: int = typer.Option(1, "--days", help="How far back to list static threshold crossings (10-minute bins)."),
         fmt: HuntFormat = typer.Option(HuntFormat.table, "--format", help="table or jsonl (hunting results are not alerts: no alert formats).")) -> None:
    """List what the Hunting rows find: every anomalous day in the 14-day window and every
    10-minute bin over a static threshold. Nothing is raised as an alert."""
    from . import api, formats, monitor
    from .alerts import iso
    from .store import Store
    cfg = monitor.load_config(config)
    if days < 1:
        raise UsageError(f"--days {days}: must be 1 or more")
    with Store(db, read_only=True) as store:
        try:
            found = api.hunt(store, config=cfg, as_of=_as_of(as_of), days=days)
        except NoData as e:
            raise NoData(f"{e}; ingest some first") from None
    if as_of is None:
        err.print(f"as-of {iso(found.as_of)} (just after the newest session; use --as-of to choose)",
                  highlight=False)
    if fmt is not HuntFormat.table:
        for f in found.rows:
            print(formats.dumps(f))
        return
    from rich.table import Table
    table = Table(title=f"hunting results as of {iso(found.as_of)}: {len(found.rows)}")
    for c in ("kind", "name", "port", "protocol / direction / action", "when", "count", "baseline / threshold", "score"):
        table.add_column(c)
    for f in found.rows:
        table.add_row(f["kind"], safe(f["Name"]), safe(f["DstPortNumber"]),
                      safe(" / ".join(str(f[k] or "-") for k in ("NetworkProtocol", "NetworkDirection", "DvcAction"))),
                      f.get("day_start") or f.get("bin_start"), f"{f['count']:,}",
                      str(f.get("baseline", f.get("threshold"))), str(f.get("score", "")))
    out.print(table)


@app.command("deliver")
def deliver_cmd(to: List[str] = typer.Option(..., "--to", help="Sink spec (see detect --deliver); repeatable."),
                db: str = DbOption,
                retries: int = typer.Option(3, "--retries", help="Retries after a failed attempt, per alert and sink (3: up to 4 attempts)."),
                ca: Optional[str] = CaOption) -> None:
    """Send alerts from the store's outbox that a sink has not received yet (retry failures)."""
    from . import delivery
    from .store import Store
    if retries < 0:
        raise UsageError(f"--retries {retries}: must be 0 or more")
    sinks = _sinks(to, ca)
    with Store(db) as store:
        report = delivery.deliver(store, sinks, retries=retries)
    err.print(report.summary(), markup=False, highlight=False)
    if not report.ok:
        raise DeliveryFailed()


@app.command("report")
def report_cmd(db: str = DbOption,
               config: Optional[Path] = typer.Option(None, "--config", help="Monitor configuration CSV."),
               as_of: Optional[str] = typer.Option(None, "--as-of", help="End of the 14-day window; default just after the newest data."),
               output: Path = typer.Option(Path("report.html"), "--output", "-o", help="The HTML file to write."),
               png: Optional[Path] = typer.Option(None, "--png", help="Also write one PNG chart per alert into this folder (needs portlens[plot])."),
               profile: Profile = ProfileOption) -> None:
    """Write a self-contained HTML report: each alert's series, baseline, anomaly and talkers."""
    from . import files, monitor, report
    from .alerts import iso
    from .store import Store
    started = time.perf_counter()
    files.check_output(output, "--output")
    if png is not None and png.exists() and not png.is_dir():
        raise UsageError(f"--png {png}: not a folder")
    cfg = monitor.load_config(config)
    with Store(db, read_only=True) as store:
        [result] = _detect(store, db, _as_of(as_of), None, {"config": cfg, "profile": profile.value})
        sessions = store.status()["sessions"]
    if result.empty:
        _say_empty(result)
    report.write_html(result, output, figures={"Sessions in store": sessions,
                                               "Elapsed (s)": time.perf_counter() - started})
    out.print(f"{output}: {len(result.alerts)} alerts as of {iso(result.window.as_of)}")
    if png:
        try:
            paths = report.write_pngs(result, png)
        except RuntimeError as e:
            raise UsageError(str(e)) from None
        out.print(f"{png}: {len(paths)} charts")


@app.command()
def status(db: str = DbOption, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """What the store holds: sessions, time range, files, quarantined rows."""
    from .store import Store
    with Store(db, read_only=True) as store:
        info = store.status()
    if as_json:
        import json
        print(json.dumps(info))
        return
    out.print(f"store       {safe(info['db'])}")
    out.print(f"sessions    {info['sessions']:,}")
    out.print(f"time range  {info['first'] or '-'} .. {info['last'] or '-'}")
    out.print(f"files       {info['files']:,}")
    out.print(f"quarantined {info['quarantined']:,}")
    for name, n in info["sessions_by_source"].items():
        out.print(f"  {safe(name):<18} {n:,} sessions")
    if info.get("sessions_by_vendor"):
        out.print("vendors seen (sessions retained)")
        for name, n in info["sessions_by_vendor"].items():
            out.print(f"  {safe(name):<30} {n:,}")
    if info.get("skipped_by"):
        out.print("skipped (not sessions)")
        for reason, n in info["skipped_by"].items():
            out.print(f"  {n:>10,}  {safe(reason)}")
    for w in info.get("schema_warnings", []):  # counted by the rule as series of their own
        shown = ", ".join(f"{e['value']!r} ({e['sessions']:,}, e.g. {e['file']})" for e in w["examples"])
        err.print(printable(f"schema warning: {w['sessions']:,} sessions with {w['values']} {w['column']} value(s) "
                            f"outside ASIM's vocabulary, counted as their own series: {shown}"),
                  markup=False, highlight=False)


@app.command()
def forget(path: Optional[str] = typer.Argument(None, help="The file as it was ingested (its path, or any file with the same content)."),
           file_id: Optional[int] = typer.Option(None, "--file-id", help="The file's id in the store's ledger (as 'portlens quarantine' lists it)."),
           db: str = DbOption) -> None:
    """Remove an ingested file: its sessions, summaries, quarantined records and ledger entry,
    in one transaction. It can then be ingested again (e.g. with the right --source)."""
    from . import api
    from .store import Store
    if (path is None) == (file_id is None):
        raise UsageError("name the file to forget: FILE or --file-id N (one of them)")
    if not os.path.exists(db):
        raise UsageError(f"{db}: no such store")
    with Store(db) as store:
        done = api.forget(store, path, file_id=file_id)
    for f in done.files:
        out.print(f"forgot {printable(f['path'])} (file id {f['file_id']}, source {printable(f['source'])})",
                  markup=False, highlight=False)
    out.print(f"removed {done.sessions:,} sessions, {done.summary_rows:,} summary rows and "
              f"{done.quarantined:,} quarantined records", highlight=False)


def _clip(text: Optional[str], width: int) -> str:
    """Raw text for one display line: at most `width` characters, controls made visible."""
    if text is None:
        return "-"
    return printable(text[:width] + ("…" if len(text) > width else ""))


@app.command("quarantine")
def quarantine_cmd(db: str = DbOption,
                   file: Optional[str] = typer.Option(None, "--file", help="Only this file's records (its path as ingested)."),
                   reason: Optional[str] = typer.Option(None, "--reason", help="Only records whose reason contains this text (any case)."),
                   limit: int = typer.Option(50, "--limit", help="Records to list; 0 lists all (counts are always complete)."),
                   as_json: bool = typer.Option(False, "--json", help="Machine-readable output; raw text in full.")) -> None:
    """List what ingests quarantined, with counts by reason: file, line, reason and raw text."""
    from . import api
    from .store import Store
    if limit < 0:
        raise UsageError(f"--limit {limit}: must be 0 or more")
    with Store(db, read_only=True) as store:
        found = api.quarantined(store, file=file, reason=reason, limit=limit or None)
    if as_json:
        import json
        print(json.dumps({"total": found.total, "by_reason": found.by_reason, "records": found.records}))
        return
    narrowed = "".join(f" {k} {v!r}" for k, v in (("in", file), ("with reason containing", reason)) if v)
    out.print(printable(f"quarantined: {found.total:,} records{narrowed}"), markup=False, highlight=False)
    for why, n in found.by_reason.items():
        out.print(f"  {n:>10,}  {printable(why)}", markup=False, highlight=False)
    if found.records:
        out.print("records (file id, file:line, source, reason, raw text):", markup=False, highlight=False)
    for r in found.records:
        out.print(f"  [{r['file_id']}] {printable(r['file'])}:{r['line']}  {printable(r['source'])}  "
                  f"{printable(r['reason'])}  {_clip(r['raw'], 160)}", markup=False, highlight=False, soft_wrap=True)
    if len(found.records) < found.total:
        out.print(f"(listed {len(found.records):,} of {found.total:,}; --limit 0 lists all)",
                  markup=False, highlight=False)


@app.command()
def sources() -> None:
    """The raw formats portlens reads."""
    from .sources import all_sources
    for s in all_sources().values():
        out.print(f"[bold]{safe(s.name)}[/]" + (f"  ({safe(_maker(s.vendor, s.product))})" if s.vendor else ""))
        for form in s.forms:
            out.print(f"    {form}", markup=False, highlight=False)


def _maker(vendor: str, product: str) -> str:
    """'Microsoft' + 'Microsoft Defender for Endpoint' -> 'Microsoft Defender for Endpoint'."""
    if product.lower().startswith(vendor.lower()):
        return product
    return f"{vendor} {product}".strip()


@config_app.command("export")
def config_export(output: str = typer.Argument("-", help="File to write; '-' for stdout."),
                  force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write the packaged configuration (the watchlist Sentinel ships) to edit and pass to --config."""
    from importlib import resources

    from . import monitor
    text = (resources.files("portlens") / "data" / monitor._DEFAULT_FILE).read_bytes()
    if output == "-":
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
        return
    if os.path.exists(output) and not force:
        raise UsageError(f"{output}: already exists (--force overwrites it)")
    with open(output, "wb") as f:
        f.write(text)
    out.print(f"{safe(output)}: {len(monitor.load_config(output).rows)} rows; edit it, then "
              f"'portlens detect --config {safe(output)}'", highlight=False)


@config_app.command("check")
def config_check(path: Optional[Path] = typer.Argument(None, help="Configuration CSV (default: the packaged one).")) -> None:
    """Validate a monitor configuration and list what it would monitor."""
    from . import monitor
    cfg = monitor.load_config(path)
    from rich.table import Table
    table = Table(title=f"{cfg.path}: {len(cfg.rows)} rows")
    for c in ("line", "name", "severity", "type", "threshold", "ports", "protocol", "direction", "action"):
        table.add_column(c, overflow="fold")
    for d in monitor.describe(cfg):
        ports = d["ports"] if d["ports"] == "*" else ",".join(map(str, d["ports"]))
        kind = f"{d['type']}/{d['threshold_type']}"
        table.add_row(str(d["line"]), safe(d["name"]), safe(d["severity"]), safe(kind),
                      "" if d["threshold"] is None else safe(d["threshold"]), safe(ports),
                      *(safe(v if v == "*" else ",".join(v)) for v in (d["protocols"], d["directions"], d["actions"])))
    out.print(table)
    for w in cfg.warnings:
        err.print(f"warning: {printable(w)}", markup=False, highlight=False)
    out.print(f"{len(cfg.select('Detection', 'Anomaly'))} rows feed the anomaly rule; {len(cfg.warnings)} warnings.")


@app.command()
def demo(folder: Optional[Path] = typer.Option(None, "--dir", help="Keep the generated logs and store here (default: a temporary folder)."),
         scale: float = typer.Option(1.0, "--scale", help="Traffic volume multiplier.")) -> None:
    """Generate 15 days of traffic with injected misuse (an RDP brute force, an LDAP surge, an
    SMB sweep), ingest it, and detect."""
    from . import api
    from . import demo as gen
    from .alerts import iso, render_table
    from .store import Store
    started = time.perf_counter()
    import tempfile
    with tempfile.TemporaryDirectory(prefix="portlens-demo-") as tmp:
        base = folder or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        logs, db = base / "demo-sessions.jsonl", base / "demo.duckdb"
        for stale in (db, Path(f"{db}.wal")):
            stale.unlink(missing_ok=True)
        end = datetime.now(timezone.utc)
        table = gen.generate(end, scale=scale)
        _write_jsonl(table, logs)
        out.print(f"generated {table.num_rows:,} sessions over 15 days -> {logs}")
        with Store(str(db)) as store:
            r = store.ingest(str(logs))
            out.print(f"ingested {r.sessions:,} sessions into {db}")
            result = api.detect(store)
        render_table(result.alerts, out, as_of=iso(result.window.as_of), series_count=result.series_count)
        if folder:
            from . import report
            report.write_html(result, base / "report.html", figures={
                "Sessions generated": table.num_rows, "Elapsed (s)": time.perf_counter() - started})
            out.print(f"done in {time.perf_counter() - started:.1f}s; logs, store and {base / 'report.html'} kept in {base}")
        else:
            out.print(f"done in {time.perf_counter() - started:.1f}s "
                      "(--dir DIR keeps the logs, the store and an HTML report)")


def _write_jsonl(table: pa.Table, path: Path) -> None:
    sink = _RowSink(str(path))
    try:
        sink.write(table)
    finally:
        sink.close()


if __name__ == "__main__":
    main()
