"""A source's narrowed statement (Query.narrow, as the store runs it) against its full one."""

import pyarrow as pa

from portlens import asim, store
from portlens.sources.base import parse_file


def full_and_narrow(source, path: str, keep: frozenset) -> tuple[pa.Table, pa.Table]:
    """(full statement, narrowed one) over the file: the columns in `keep` plus the routing
    ones, rows sorted. The store's `_KEEP` must give equal tables."""
    full, narrow = [], []
    names = sorted(keep) + ["_line", "_skip", "_reason"]
    for batch in parse_file(source, path):
        pending = batch.pending
        if pending is None:
            continue
        full.append(asim.query(pending.sql(), **pending.inputs()).select(names))
        narrow.append(asim.query(pending.sql(keep), **pending.inputs()).select(names))
    if not full:  # (no batch: nothing to compare)
        return pa.table({}), pa.table({})
    order = [(n, "ascending") for n in names]
    return (pa.concat_tables(full).sort_by(order), pa.concat_tables(narrow).sort_by(order))


def assert_narrowed_same_as_full(source, path, lines: list[str]) -> None:
    """Write `lines` to `path`: the store's narrowed statement keeps, rejects and skips as the
    full one does."""
    path.write_text("\n".join(lines) + "\n")
    full, narrow = full_and_narrow(source, str(path), store._KEEP)
    assert full.equals(narrow)
