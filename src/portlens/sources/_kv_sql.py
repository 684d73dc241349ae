"""Field extraction as SQL: key=value text -> one text column per requested key, computed
inside the statement that maps and conforms the batch (`base.Query`), so a batch of raw lines
crosses into DuckDB once, and DuckDB's threads share the work (`chunked`).

`space_pairs_sql(source, text, keys)` is the SQL twin of `_syslog.extract_pairs(..., SPACE)`
(FortiGate `k=v k="a b"`; same values for the same text, the tests hold it to that): DuckDB's
`string_split` cuts a record into tokens in C++, each wanted key is found with
`list_position` (first occurrence wins) and its value is a substring of its token. Quoting is
handled before the split: inside double quotes (counted per record; `\\"` is no quote) spaces
become a marker, so a quoted value stays one token; `\\"` becomes a marker too and is restored
afterwards. Regular expressions, slow per row in DuckDB, are not used.

The styles whose values run to the next `key=` (CEF, Check Point `a=b|c=d`) stay with the
Arrow path: gluing tokens back into fields needs a per-token lambda that measured about ten
times slower than `extract_pairs` (2.5 s against 0.23 s for 30,000 Check Point lines).
`any_timestamp_sql` is `_syslog.parse_timestamps` as an expression."""

from __future__ import annotations

from ._sql import col, lit

# Markers for a space inside quotes and for an escaped quote: Unicode noncharacters, which
# text meant for interchange does not hold (a value holding them would come back with a
# space or `\"` in their place).
_SPACE_MARK = "\ufdd0"
_QUOTE_MARK = "\ufdd1"


def space_pairs_sql(source: str, text: str, keys) -> str:
    """SELECT *, <one column per key> FROM source: the values of `keys` in the space-separated
    key=value text `text` (a SQL expression over `source`), as `_syslog.extract_pairs(...,
    SPACE)` gives them: NULL when absent, '' when empty, one pair of enclosing double quotes
    removed, `\\"` unescaped."""
    keys = list(dict.fromkeys(keys))
    sm, qm = lit(_SPACE_MARK), lit(_QUOTE_MARK)
    # Trailing blanks never hold a value; trimmed, an unclosed quote does not keep them.
    fixed = (f"CASE WHEN contains({text}, '\"') THEN array_to_string(list_transform("
             f"string_split(replace(rtrim({text}, ' '), '\\\"', {qm}), '\"'), "
             f"lambda p, i: CASE WHEN i % 2 = 0 THEN replace(p, ' ', {sm}) ELSE p END), '\"') "
             f"ELSE {text} END")
    raws, finals = [], []
    for k in keys:
        raws.append(f"substr(_kv_tokens[list_position(_kv_keys, {lit(k + '=')})], {len(k) + 2}) AS {col(k)}")
        v = col(k)
        # A value quoted as a whole loses its quotes (`\\"` at its end, now a marker, ends it
        # too: the quote goes, the backslash stays); markers go back to ` ` and `"` (`\\"` unescaped).
        quoted = f"(starts_with({v}, '\"') AND length({v}) >= 2 AND (ends_with({v}, '\"') OR ends_with({v}, {qm})))"
        inner = f"CASE WHEN ends_with({v}, {qm}) THEN {v}[2:-2] || '\\' ELSE {v}[2:-2] END"
        restored = f"replace(replace(CASE WHEN {quoted} THEN {inner} ELSE {v} END, {qm}, '\"'), {sm}, ' ')"
        finals.append(f"CASE WHEN contains({v}, '\"') OR contains({v}, {qm}) THEN {restored} ELSE {v} END AS {v}")
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


def chunked(table, parts: int = 8, least: int = 4096):
    """The table as up to `parts` record batches (of at least `least` rows): DuckDB scans the
    batches of an Arrow input in parallel, one batch is one thread."""
    size = max(least, -(-table.num_rows // parts))
    return table if table.num_rows <= size else type(table).from_batches(table.to_batches(max_chunksize=size))
