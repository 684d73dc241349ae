"""Shared plumbing for the `test_source_*.py` tests: locating the shared samples, parsing a file
through a source (the production entry point, `base.parse_file`), writing hostile input to a
temporary file, and checking that every record read is accounted for."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pytest
from hypothesis import strategies as st

from conftest import SAMPLES
from portlens import asim, sources
from portlens.sources.base import BATCH_LINES, parse_file, read_lines

UTC = timezone.utc

__all__ = ["SAMPLES", "UTC", "Parsed", "utc", "sample_path", "parse", "parse_text", "write", "batches",
           "assert_accounted", "assert_lines_accounted", "lines_read", "hostile_lines", "one", "reasons",
           "checked_reasons", "no_internal_errors", "tuple_of", "by_uid"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---- locating the shared samples ----------------------------------------------------------------

def sample_path(*parts: str, reason: str | None = None) -> Path:
    """`../shared/samples/<parts...>`, skipping the test cleanly when it is absent."""
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.skip(reason or f"sample {'/'.join(parts) or 'folder'} not present")
    return path


# ---- parsing ---------------------------------------------------------------------------------------

class Parsed(NamedTuple):
    rows: pa.Table
    quarantine: pa.Table
    skipped: int
    records: int

    def lists(self) -> tuple[list, list, int, int]:
        """(rows as dicts, quarantine as dicts, skipped, records)."""
        return self.rows.to_pylist(), self.quarantine.to_pylist(), self.skipped, self.records


def assert_accounted(batch_list, expected: int | None = None):
    """Every batch accounts for each record it read (rows + quarantine + skipped == records) and
    has the ASIM schema; with `expected`, the records read add up to it. Returns the batches."""
    batch_list = list(batch_list)
    for b in batch_list:
        assert b.records == b.table.num_rows + b.quarantine.num_rows + b.skipped
        assert b.table.schema == asim.SCHEMA
    if expected is not None:
        assert sum(b.records for b in batch_list) == expected
    return batch_list


def batches(path, source=None, batch_lines: int | None = None) -> list:
    """The batches `parse_file` yields for `path` (the source detected when not given), checked
    with `assert_accounted`."""
    source = source if source is not None else sources.detect(str(path))
    return assert_accounted(parse_file(source, str(path), batch_lines or BATCH_LINES))


def parse(path, source=None, batch_lines: int | None = None) -> Parsed:
    """Parse `path` into Parsed(rows, quarantine, skipped, records) (tables, empty when nothing)."""
    found = batches(path, source, batch_lines)
    rows = pa.concat_tables([b.table for b in found]) if found else asim.empty_table()
    quarantine = (pa.concat_tables([b.quarantine for b in found]) if found
                  else asim.QUARANTINE_SCHEMA.empty_table())
    return Parsed(rows, quarantine, sum(b.skipped for b in found), sum(b.records for b in found))


def write(tmp_path, data: str | bytes, name: str = "input.log") -> Path:
    """Write text (UTF-8, surrogates passed through, newlines untranslated) or bytes to
    `tmp_path / name`."""
    path = Path(tmp_path) / name
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


def parse_text(tmp_path, data: str | bytes, source=None, name: str = "input.log",
               batch_lines: int | None = None) -> Parsed:
    """`write` then `parse`; with `tmp_path=None` a private temporary folder is used (for
    hypothesis tests that cannot take the function-scoped fixture)."""
    if tmp_path is None:
        with tempfile.TemporaryDirectory() as folder:
            return parse(write(folder, data, name), source, batch_lines)
    return parse(write(tmp_path, data, name), source, batch_lines)


# ---- hostile input -------------------------------------------------------------------------------

def lines_read(path) -> int:
    """How many lines `base.read_lines` gives for `path` (what a line-based source must account for)."""
    return sum(len(chunk) for chunk, _ in read_lines(str(path)))


def hostile_lines(good: list[str], extra: list[str], cut: int = 2):
    """Lines that are good, cut to 1/`cut`, arbitrary text, arbitrary bytes read as Latin-1, or
    one of the hand-picked `extra` nasties."""
    return st.one_of(
        st.sampled_from(good),
        st.sampled_from(good).map(lambda s: s[: len(s) // cut]),
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        st.sampled_from(extra),
    )


def assert_lines_accounted(path, source, batch_lines: int | None = None, *, header_lines: int = 0,
                           internal_errors_ok: bool = False) -> Parsed:
    """Parse a line-based file and check every line `read_lines` gives (less `header_lines` that
    are not records) is a row, a quarantine record or a skip; and, unless `internal_errors_ok`,
    that no quarantine reason is an internal error."""
    parsed = parse(path, source, batch_lines)
    expected = lines_read(path) - header_lines
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records == expected
    if not internal_errors_ok:
        no_internal_errors(parsed.quarantine)
    return parsed


# ---- looking at results --------------------------------------------------------------------------

def one(rows, **match) -> dict:
    """The single row (of a table or a list of dicts) matching every `field=value`."""
    rows = rows.to_pylist() if isinstance(rows, pa.Table) else rows
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, len(found))
    return found[0]


def no_internal_errors(quarantine: pa.Table) -> None:
    assert not [r for r in quarantine.column("reason").to_pylist() if r.startswith("internal error")]


def reasons(quarantine: pa.Table) -> dict:
    """{line: reason} of a quarantine table."""
    return dict(zip(quarantine.column("line").to_pylist(), quarantine.column("reason").to_pylist()))


def checked_reasons(quarantine: pa.Table) -> dict:
    """`reasons`, after checking that none is an internal error."""
    no_internal_errors(quarantine)
    return reasons(quarantine)


def tuple_of(r: dict) -> tuple:
    return (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"])


def by_uid(rows: pa.Table) -> dict:
    return {r["EventOriginalUid"]: r for r in rows.to_pylist()}
