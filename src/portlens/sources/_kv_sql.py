"""Field extraction as SQL: key=value text -> one text column per requested key, computed
inside the statement that maps and conforms the batch (`base.Query`), so a batch of raw lines
crosses into DuckDB once, and DuckDB's threads share the work (`asim.parallel`).

`space_pairs_sql(source, text, keys)` is the SQL twin of `_syslog.extract_pairs(..., SPACE)`
(FortiGate `k=v k="a b"`; same values for the same text, the tests hold it to that): DuckDB's
`string_split` cuts a record into tokens in C++, each wanted key is found with
`list_position` (first occurrence wins) and its value is a substring of its token. Quoting is
handled before the split, so that a quoted value stays one token: `mask_quoted_blanks` (NumPy,
over the batch's whole text buffer) turns the blanks inside double quotes (`\\"` is no quote)
into a marker byte the batch does not hold, and the SQL turns it back into a blank in the
values. Without a free marker byte the SQL does the masking itself (a per-record lambda over
the quoted pieces: it was about three quarters of the statement's cost on FortiGate lines).
Regular expressions, slow per row in DuckDB, are not used.

The styles whose values run to the next `key=` (CEF, Check Point `a=b|c=d`) stay with the
Arrow path: gluing tokens back into fields needs a per-token lambda that measured about ten
times slower than `extract_pairs` (2.5 s against 0.23 s for 30,000 Check Point lines).
`any_timestamp_sql` is `_syslog.parse_timestamps` as an expression."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ._sql import col, lit
from ._syslog import as_strings

# Markers for a space inside quotes and for an escaped quote: Unicode noncharacters, which
# text meant for interchange does not hold (a value holding them would come back with a
# space or `\"` in their place).
_SPACE_MARK = "\ufdd0"
_QUOTE_MARK = "\ufdd1"


# Candidate marker bytes for masked blanks: control characters that log text seldom holds.
MARKS = tuple(c for c in range(1, 32) if c not in (9, 10, 13))


def mask_quoted_blanks(text) -> "tuple[pa.Array, str] | None":
    """The text with every blank inside double quotes replaced by a marker byte that occurs
    nowhere in the batch, and that marker; None when every candidate occurs. Quotes pair up
    within a record (`\\"` is no quote); an unclosed quote runs to the record's last non-blank
    byte (trailing blanks never hold a value). NumPy scans the buffer in slices of records
    (bounded temporaries): positions of quotes and blanks, one `searchsorted` of the blanks
    into the quoted intervals; the text is copied once."""
    arr = as_strings(text)
    n = len(arr)
    buffer = arr.buffers()[2]
    if n == 0 or buffer is None or buffer.size == 0:
        return arr, chr(MARKS[0])
    ro = np.frombuffer(arr.buffers()[1], np.int32, count=n + 1, offset=4 * arr.offset).astype(np.int64)
    data = np.frombuffer(buffer, np.uint8)
    # slices of whole records of about _SLICE_BYTES each
    cuts = np.unique(np.r_[0, np.searchsorted(ro, np.arange(ro[0], ro[-1], _SLICE_BYTES), "right") - 1, n])
    slices = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    free = set(MARKS)
    for a, b in slices:
        counts = np.bincount(data[ro[a]:ro[b]], minlength=256)
        free -= {c for c in free if counts[c]}
    if not free:
        return None
    mark = min(free)
    inside = [_quoted_blanks(data, ro[a:b + 1]) for a, b in slices]
    inside = np.concatenate(inside) if inside else np.zeros(0, np.int64)
    if len(inside) == 0:
        return arr, chr(mark)
    masked = data.copy()
    masked[inside] = mark
    return pa.Array.from_buffers(pa.string(), n, [None, arr.buffers()[1], pa.py_buffer(masked)],
                                 offset=arr.offset), chr(mark)


_SLICE_BYTES = 4 << 20


def _quoted_blanks(data: np.ndarray, ro: np.ndarray) -> np.ndarray:
    """Positions of the blanks inside double quotes in the records at offsets `ro`."""
    n = len(ro) - 1
    lo, hi = int(ro[0]), int(ro[-1])
    body = data[lo:hi]
    quotes = np.flatnonzero(body == 34) + lo
    if len(quotes) == 0:
        return np.zeros(0, np.int64)
    counts = np.diff(np.searchsorted(quotes, ro))
    rec = np.repeat(np.arange(n, dtype=np.int64), counts)
    escaped = (quotes - 1 >= ro[rec]) & (data[np.maximum(quotes - 1, 0)] == 92)
    if escaped.any():
        quotes, rec = quotes[~escaped], rec[~escaped]
        counts = np.bincount(rec, minlength=n)
    rank = np.arange(len(quotes)) - np.repeat(np.cumsum(counts) - counts, counts)
    opens = quotes[rank % 2 == 0]
    closes = quotes[rank % 2 == 1]
    if len(closes) < len(opens):  # records with an unclosed quote: to the last non-blank byte
        odd = np.flatnonzero(counts % 2 == 1)
        end = ro[odd + 1]
        live = np.arange(len(odd))
        while len(live):
            live = live[data[end[live] - 1] == 32]
            end[live] -= 1
        closes = np.sort(np.r_[closes, end])
    bounds = np.empty(2 * len(opens), np.int64)
    bounds[0::2] = opens + 1
    bounds[1::2] = closes
    blanks = np.flatnonzero(body == 32) + lo
    return blanks[np.searchsorted(bounds, blanks, "right") % 2 == 1]


def space_pairs_sql(source: str, text: str, keys, mark: str | None = None) -> str:
    """SELECT *, <one column per key> FROM source: the values of `keys` in the space-separated
    key=value text `text` (a SQL expression over `source`), as `_syslog.extract_pairs(...,
    SPACE)` gives them: NULL when absent, '' when empty, one pair of enclosing double quotes
    removed, `\\"` unescaped. With `mark`, `text` comes from `mask_quoted_blanks` (blanks
    inside quotes are `mark`); without it, the SQL masks them itself."""
    keys = list(dict.fromkeys(keys))
    qm = lit(_QUOTE_MARK)
    if mark is None:
        sm = lit(_SPACE_MARK)
        # Trailing blanks never hold a value; trimmed, an unclosed quote does not keep them.
        fixed = (f"CASE WHEN contains({text}, '\"') THEN array_to_string(list_transform("
                 f"string_split(replace(rtrim({text}, ' '), '\\\"', {qm}), '\"'), "
                 f"lambda p, i: CASE WHEN i % 2 = 0 THEN replace(p, ' ', {sm}) ELSE p END), '\"') "
                 f"ELSE {text} END")
    else:
        sm, fixed = lit(mark), text
    raws, finals = [], []
    for k in keys:
        raws.append(f"substr(_kv_tokens[list_position(_kv_keys, {lit(k + '=')})], {len(k) + 2}) AS {col(k)}")
        v = col(k)
        # A value quoted as a whole loses its quotes (`\\"` at its end, now a marker, ends it
        # too: the quote goes, the backslash stays); markers go back to ` ` and `"` (`\\"` unescaped).
        vq = v if mark is None else f"replace({v}, '\\\"', {qm})"
        quoted = f"(starts_with({vq}, '\"') AND length({vq}) >= 2 AND (ends_with({vq}, '\"') OR ends_with({vq}, {qm})))"
        inner = f"CASE WHEN ends_with({vq}, {qm}) THEN {vq}[2:-2] || '\\' ELSE {vq}[2:-2] END"
        restored = f"replace(replace(CASE WHEN {quoted} THEN {inner} ELSE {vq} END, {qm}, '\"'), {sm}, ' ')"
        if mark is None:
            finals.append(f"CASE WHEN contains({v}, '\"') OR contains({v}, {qm}) THEN {restored} ELSE {v} END AS {v}")
            continue
        # masked text: a value without a quote is final; one without a backslash or a masked
        # blank only loses its enclosing quotes (the usual case, cheap); the rest takes the
        # escape-aware form above
        finals.append(f"CASE WHEN NOT contains({v}, '\"') THEN {v} "
                      f"WHEN contains({v}, '\\') OR contains({v}, {sm}) THEN {restored} "
                      f"WHEN starts_with({v}, '\"') AND ends_with({v}, '\"') AND strlen({v}) >= 2 THEN {v}[2:-2] "
                      f"ELSE {v} END AS {v}")
    return (f"SELECT * REPLACE ({', '.join(finals)}) FROM ("
            f"SELECT * EXCLUDE (_kv_tokens, _kv_keys), {', '.join(raws)} FROM ("
            f"SELECT *, list_transform(_kv_tokens, lambda x: left(x, strpos(x, '='))) AS _kv_keys FROM ("
            f"SELECT *, string_split({fixed}, ' ') AS _kv_tokens FROM {source})))")


def any_timestamp_sql(expr: str, *, reference=None) -> str:
    """`_syslog.parse_timestamps` as a SQL expression: whole-number epochs (s / ms / us / ns
    by digit count, as `_syslog._epoch_fast`) by integer arithmetic, anything else through
    `_syslog.timestamp_sql` (only for the rows the cheap form does not answer)."""
    from ._syslog import timestamp_sql
    x = f"CAST({expr} AS VARCHAR)"
    n = f"length({x})"
    us = (f"CASE WHEN {n} <= 11 THEN CAST({x} AS BIGINT) * 1000000 "
          f"WHEN {n} <= 14 THEN CAST({x} AS BIGINT) * 1000 "
          f"WHEN {n} <= 17 THEN CAST({x} AS BIGINT) "
          f"WHEN {n} = 18 THEN CAST({x} AS BIGINT) // 1000 "
          f"ELSE CAST(left({x}, 18) AS BIGINT) // 100 END")
    digits = f"{n} BETWEEN 1 AND 19 AND ltrim({x}, '0123456789') = ''"
    fast = (f"CASE WHEN {digits} THEN CASE WHEN ({us}) BETWEEN -62135596800000000 AND 253402300799000000 "
            f"THEN make_timestamp({us})::TIMESTAMPTZ END END")
    return f"coalesce({fast}, {timestamp_sql(x, reference=reference)})"


def carried_sql(columns: dict) -> str:
    """The SELECT-list tail that carries raw columns through a vendor's mapping statement:
    `, "_pt_<name>" AS "<Column>" ..., _line, _raw` for {Column: raw name}; the inputs hold
    them as `carried_inputs` names them (a prefix, so no raw name meets a mapped one)."""
    return "".join(f', "_pt_{name}" AS "{column}"' for column, name in columns.items()) + ", _line, _raw"


def carried_inputs(raw: dict, columns: dict) -> dict:
    """The inputs `carried_sql(columns)` reads: `_pt_<name>` for each raw name used."""
    return {f"_pt_{name}": raw[name] for name in dict.fromkeys(columns.values())}

