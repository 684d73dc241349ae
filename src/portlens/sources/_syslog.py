"""Shared, vectorized helpers for syslog-borne formats: syslog framing, CEF, key=value pairs,
delimited fields, timestamps and a few value checks. Not a source (the module name starts
with `_`); source modules import it.

Everything works on a whole batch of records at once and returns one value per input record,
in order (a NULL record is read as empty text):

* `syslog_header(lines)` -> table: pri, version, timestamp_text, timestamp, hostname, appname,
  procid, msgid, structured_data, message, form (`rfc5424`, `rfc3164`, `iso`, `none`).
  Optional `<PRI>`; RFC 5424 (also the `<PRI>1 <epoch> <host> <app> <body>` variant Meraki
  writes); RFC 3164 `Mmm dd [yyyy] hh:mm:ss [ZONE][:] [host [:]] [tag[pid]: ]`; ISO timestamp
  headers. A line with no header is all message.
* `parse_cef(text, keys)` -> table: is_cef, prefix (anything before `CEF:`, e.g. a syslog
  header), cef_version, vendor, product, version, signature, name, severity (unescaped), and
  one column per requested extension key. `cef_label_sql` finds a custom field by its label
  (`cs1Label=Rule cs1=x`).
* `extract_pairs(text, keys, style)` -> table with one column per requested key. Pairs are
  found by name in any order; the **first** occurrence of a key in a record wins (the Zscaler
  NSS CEF template, for one, defines `cs5` twice); values are trimmed, unquoted and
  unescaped as the style says. Styles: `SPACE` (FortiGate `k=v k="a b"`, Meraki), `CEF`
  (values hold spaces: a value runs to the next ` key=`; `\\=` `\\\\` `\\|` `\\n` `\\r`),
  `PIPE` (Check Point `k=v|k=v`, `\\=` `\\|`), `SEMICOLON` (`k=v;k=v`, CommonSecurityLog
  AdditionalExtensions), `SD` (Check Point structured data `[k:"v"; k:"v"]`).
* `split_fields(text, indices)` -> table f<i> of delimited fields (RFC 4180 quoting), plus
  `_nfields`.
* `parse_timestamps(text)` / `parse_timestamps_many([texts])` -> timestamp[us, UTC] (epoch
  s/ms/us/ns, ISO, BSD/CEF `Mmm dd [yyyy] hh:mm:ss [ZONE]`, ctime, US-locale exports; each
  distinct text parsed once); the SQL form is `timestamp_sql`.
* Source plumbing: `pick`, `arrays`, `cef_label` / `cef_custom_keys` / `cef_key`, `csl_header` and
  `COMMON_SECURITY_LOG` (Sentinel CommonSecurityLog export columns -> CEF keys).
* SQL builders for the mapping step (run with `asim.query`): `timestamp_sql`, `epoch_sql`,
  `valid_ip_sql`, `ip_version_sql`,
  `cef_label_sql`, `json_object_sql`, `json_map_sql`, `sql_str`.
* Reference implementations in pure SQL, slower but composable in one query:
  `kv_map_sql`, `cef_extension_map_sql` -> DuckDB MAP.

How it is fast: records are split at separators by Arrow (C++); numpy bookkeeping on the
token offsets handles quotes, escapes and CEF values that hold spaces; every token becomes
`key=` / value pieces of one zero-copy array over the token buffer, keys are looked up with
one hash join (`index_in`) and each wanted key is one `take`. Nothing runs per record in
Python, and regular expressions only run once per record for the headers.

Timestamps are UTC. A header without a year (RFC 3164 `Mmm dd hh:mm:ss`) takes the `year`
argument when the caller knows it (for example from other dates in the file); otherwise the
year of `reference` (default: now, UTC), or the year before when that would put the record
more than a day after `reference` (the usual syslog rule for a December record read in
January). Header times without a zone are taken as UTC; the common zone abbreviations
(`EDT`, `CET`, ...) and numeric offsets are applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim
from ._sql import lit

# A key in key=value text (CEF keys are alphanumeric; FortiGate and Check Point add `_`, `-`, `.`).
KEY = r"[A-Za-z0-9_.\-]+"
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

# Zone abbreviations seen in syslog headers -> offset from UTC in minutes. Ambiguous ones
# (CST, IST) are taken in their most common meaning (US Central; IST is left out).
ZONES = {
    "UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "WET": 0, "WEST": 60, "BST": 60, "CET": 60, "CEST": 120,
    "EET": 120, "EEST": 180, "MSK": 180, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300,
    "MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
    "JST": 540, "KST": 540, "AEST": 600, "AEDT": 660, "ACST": 570, "AWST": 480, "NZST": 720,
    "NZDT": 780,
}
_ZONE_RE = "|".join(sorted(ZONES, key=len, reverse=True))
# in a syslog header a zone name competes with a host name: single letters are hosts
_HEADER_ZONE_RE = "|".join(sorted((z for z in ZONES if len(z) > 2), key=len, reverse=True))
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"


sql_str = lit  # a SQL string literal (the shared helper of `_sql`)


# ---- Arrow string buffers ----------------------------------------------------------------------

def as_strings(arr) -> pa.Array:
    """A plain (non-chunked, 32-bit offset) string array with NULLs read as empty text."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, pa.string())
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    return arr


def drop_prefix(arr, nbytes) -> pa.Array:
    """Each string without its first `nbytes[i]` bytes (clipped to its length; the cut must
    fall on a character boundary, as it does after an ASCII header)."""
    arr = as_strings(arr)
    n = len(arr)
    if n == 0:
        return arr
    ro = np.frombuffer(arr.buffers()[1], np.int32, count=n + 1, offset=4 * arr.offset).astype(np.int64)
    buf = arr.buffers()[2] if arr.buffers()[2] is not None else pa.py_buffer(b"")
    start = np.minimum(ro[:-1] + np.maximum(np.asarray(nbytes, np.int64), 0), ro[1:])
    return _cut(buf, start, ro[1:])


def _column(values: pa.Array, index: np.ndarray) -> pa.Array:
    """values[index] with -1 giving NULL."""
    if len(values) == 0:
        return pa.nulls(len(index), pa.string())
    return values.take(pa.array(index, mask=index < 0))


# ---- key=value pairs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PairStyle:
    """How key=value pairs are written.
    sep: separator characters (" " means any space or tab);
    assign: the character between key and value;
    quotes: a value may be double-quoted and then hold separators;
    merge: text that does not start with `key=` continues the previous value (CEF values
      hold spaces; a value runs to the next ` key=`);
    escapes: characters a backslash escapes in values (a separator after a backslash does not
      separate); newlines: `\\n` / `\\r` escapes become line breaks;
    strip: characters trimmed from both ends of a value."""
    sep: str = " "
    assign: str = "="
    quotes: bool = False
    merge: bool = False
    escapes: str = ""
    newlines: bool = False
    strip: str = " \t"


SPACE = PairStyle(sep=" ", quotes=True, escapes='"', strip="")  # values cannot hold blanks unquoted
CEF = PairStyle(sep=" ", merge=True, escapes="=|\\", newlines=True)
PIPE = PairStyle(sep="|", merge=True, escapes="=|\\")
SEMICOLON = PairStyle(sep=";", merge=True)
SD = PairStyle(sep=";[", assign=":", quotes=True, merge=True, escapes='"\\]', strip=" \t]")



def _lut(chars: str) -> np.ndarray:
    lut = np.zeros(256, np.bool_)
    lut[np.frombuffer(chars.encode(), np.uint8)] = True
    return lut


def _np(arr) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _view(buffer: pa.Buffer, offsets: np.ndarray, count: int, check: bool = True) -> pa.Array:
    """A string array of `count` elements over `buffer` at absolute `offsets` (no copy). The
    offsets are checked (non-decreasing, inside the buffer; `check=False` only where the
    construction proves it): a bad view would read out of bounds, so it is refused instead."""
    if len(offsets) != count + 1 or (count and (offsets[0] < 0 or offsets[-1] > buffer.size)) or \
            (check and count and (offsets[1:] < offsets[:-1]).any()):
        raise ValueError("internal: string view offsets out of order")
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets.astype(np.int32)), buffer])


def _cut(buffer: pa.Buffer, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """Strings at [start, end) of `buffer` (absolute, non-overlapping, increasing): one copy."""
    m = len(start)
    if m == 0:
        return pa.array([], pa.string())
    offs = np.empty(2 * m, np.int64)
    offs[0::2] = start
    offs[1::2] = np.maximum(end, start)
    return _view(buffer, offs, 2 * m - 1).take(pa.array(np.arange(0, 2 * m - 1, 2, dtype=np.int64)))


class _Tokens:
    """The records split at every separator character by Arrow (C++), with per-token
    bookkeeping computed with numpy only where needed. `keep` (None: all) marks the tokens that
    open a field; a token that does not (inside quotes, after an escaping backslash, or
    refused by the caller) continues the previous one. The first token of a record always
    opens a field."""

    def __init__(self, arr: pa.Array, sep: str, quotes: bool, escapes: str):
        arr = as_strings(arr)
        self.arr, self.n = arr, len(arr)
        if len(sep) == 1:
            parts = pc.split_pattern(arr, sep)
        else:
            parts = pc.split_pattern_regex(arr, "[" + "".join("\\" + c for c in sep) + "]")
        self.flat = flat = parts.flatten()
        lo = np.frombuffer(parts.buffers()[1], np.int32, count=self.n + 1, offset=4 * parts.offset).astype(np.int64)
        lo -= lo[0]
        self.first = lo[:-1]                      # first token of each record (records have >= 1)
        self.last = lo[1:] - 1                    # last token of each record
        self.t = t = len(flat)
        fo = np.frombuffer(flat.buffers()[1], np.int32, count=t + 1, offset=4 * flat.offset).astype(np.int64)
        self.fo = fo
        self.flat_buffer = flat.buffers()[2] if flat.buffers()[2] is not None else pa.py_buffer(b"")
        self.ro = np.frombuffer(arr.buffers()[1], np.int32, count=self.n + 1, offset=4 * arr.offset).astype(np.int64)
        self.buffer = arr.buffers()[2] if arr.buffers()[2] is not None else pa.py_buffer(b"")
        self.keep = None
        self._openers = None
        self._next_opener = None
        self._last_full = None
        if escapes and sep[0] in escapes and t:
            ends_bs = _np(pc.ends_with(flat, "\\")) & ~_np(pc.ends_with(flat, "\\\\"))
            if ends_bs.any():
                cont = np.zeros(t, np.bool_)
                cont[1:] = ends_bs[:-1]
                self.refuse(cont)
        if quotes and t and pc.any(pc.match_substring(arr, '"')).as_py():
            q = _np(pc.count_substring(flat, '"')).astype(np.int64)
            if '"' in escapes:
                q -= _np(pc.count_substring(flat, '\\"'))
            odd = (q & 1).astype(np.bool_)
            if odd.any():
                par = np.logical_xor.accumulate(odd)          # parity after each token
                before = par ^ odd                            # parity before each token
                base = np.repeat(before[self.first], self.last - self.first + 1)
                self.refuse(before ^ base)

    def refuse(self, mask: np.ndarray) -> None:
        """Tokens in `mask` do not open a field (except a record's first token)."""
        keep = ~mask if self.keep is None else self.keep & ~mask
        keep[self.first] = True
        self.keep = keep
        self._openers = None
        self._next_opener = None

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.first, idx, "right") - 1

    def starts(self, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Absolute byte position of tokens in the records' buffer (separators are 1 byte)."""
        f = self.first[rows]
        return self.ro[rows] + (self.fo[idx] - self.fo[f]) + (idx - f)

    def openers(self) -> np.ndarray:
        if self._openers is None:
            self._openers = np.arange(self.t, dtype=np.int64) if self.keep is None else np.flatnonzero(self.keep)
        return self._openers

    def field_end(self, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Absolute end of the field opened by each token in `idx`: the end of the last token
        before the next opener or the record end."""
        if self.keep is None:
            g = idx
        else:
            if self._next_opener is None:
                t = np.arange(self.t, dtype=np.int64)
                nxt = np.minimum.accumulate(np.where(self.keep, t, self.t)[::-1])[::-1]
                self._next_opener = np.r_[nxt[1:], self.t]   # first opener after each token
                # a field does not end on empty tokens (`a=1|`, a doubled separator at the end)
                self._last_full = np.maximum.accumulate(np.where(self.fo[1:] > self.fo[:-1], t, -1))
            g = np.minimum(self._next_opener[idx] - 1, self.last[rows])
            g = np.maximum(self._last_full[g], idx)
        return self.starts(g, rows) + (self.fo[g + 1] - self.fo[g])

    def nth_opener(self, i: int) -> np.ndarray:
        """Token index of each record's i-th (0-based) field, -1 when the record is shorter."""
        if self.keep is None:
            idx = self.first + i
            return np.where(idx <= self.last, idx, -1)
        op = self.openers()
        a = np.searchsorted(op, self.first)
        b = np.searchsorted(op, self.last, "right")
        ok = a + i < b
        return np.where(ok, op[np.minimum(a + i, len(op) - 1)], -1)

    def counts(self) -> np.ndarray:
        """Fields per record."""
        if self.keep is None:
            return self.last - self.first + 1
        op = self.openers()
        return np.searchsorted(op, self.last, "right") - np.searchsorted(op, self.first)


def _trim(pad_source: pa.Buffer, start: np.ndarray, end: np.ndarray, chars: str, quotes: bool):
    """Narrow [start, end) spans of `pad_source` past `chars` at both ends, then past one pair
    of enclosing double quotes."""
    data = np.frombuffer(pad_source, np.uint8)
    start, end = start.copy(), np.maximum(end, start)
    if chars:
        lut = _lut(chars)
        for _ in range(64):
            m = np.flatnonzero((end > start) & lut[data[np.maximum(end - 1, 0)]])
            if not len(m):
                break
            end[m] -= 1
        for _ in range(64):
            m = np.flatnonzero((end > start) & lut[data[np.minimum(start, len(data) - 1)]])
            if not len(m):
                break
            start[m] += 1
    if quotes and len(data):
        q = (end - start >= 2) & (data[np.minimum(start, len(data) - 1)] == 34) & (data[np.maximum(end - 1, 0)] == 34)
        start[q] += 1
        end[q] -= 1
    return start, end


def unescape(arr: pa.Array, chars: str, newlines: bool = False) -> pa.Array:
    """Undo backslash escapes of `chars` (`\\=` -> `=`; `\\\\` -> `\\` when `\\` is in chars);
    with `newlines`, `\\n` and `\\r` become line breaks. Other backslashes are kept."""
    if not chars and not newlines:
        return arr
    if len(arr) == 0 or not pc.any(pc.match_substring(arr, "\\")).as_py():
        return arr
    x = pc.replace_substring(arr, "\x03", "")
    if "\\" in chars:
        x = pc.replace_substring(x, "\\\\", "\x03")
    for c in chars:
        if c != "\\":
            x = pc.replace_substring(x, "\\" + c, c)
    if newlines:
        x = pc.replace_substring(pc.replace_substring(x, "\\n", "\n"), "\\r", "\r")
    if "\\" in chars:
        x = pc.replace_substring(x, "\x03", "\\")
    return x


def _valid_keys(keys: pa.Array) -> np.ndarray:
    """Keys made only of KEY_CHARS (and not empty)."""
    x = keys
    for c in "_.-":
        x = pc.replace_substring(x, c, "a")
    return _np(pc.fill_null(pc.ascii_is_alnum(x), False))


def extract_pairs(text, keys, style: PairStyle = SPACE) -> pa.Table:
    """The values of `keys` in key=value records, one string column per key (NULL when the
    key is absent). Keys are matched exactly (case-sensitive). See `PairStyle` and the module
    doc."""
    keys = list(dict.fromkeys(keys))
    arr = as_strings(text)
    n = len(arr)
    if not keys:
        return pa.table({"_": pa.nulls(n)}).drop_columns(["_"])
    tok = _Tokens(arr, style.sep, style.quotes, style.escapes)
    flat, t = tok.flat, tok.t
    if t == 0:
        return pa.table({k: pa.nulls(n, pa.string()) for k in keys})
    K = len(keys)
    fo = tok.fo
    eq = _np(pc.find_substring(flat, style.assign)).astype(np.int64)
    lead = np.zeros(t, np.int64)
    if style.sep != " ":  # `a=1; b=2`: a key may follow the separator after blanks
        lead = _np(pc.binary_length(flat)) - _np(pc.binary_length(pc.utf8_ltrim_whitespace(flat)))
    has_key = eq > lead
    # Each token as three pieces of one zero-copy array over the tokens' buffer:
    #   3i: `key=` (plus an opening quote), 3i+1: the value, 3i+2: a closing quote or nothing.
    fb = np.frombuffer(tok.flat_buffer, np.uint8) if tok.flat_buffer.size else np.zeros(1, np.uint8)
    vs = fo[:-1] + np.where(has_key, eq + 1, lead)
    ve = fo[1:]
    quoted = np.zeros(t, np.bool_)
    if style.quotes:
        long = has_key & (ve - vs >= 2)
        li = np.flatnonzero(long)
        quoted[li] = (fb[vs[li]] == 34) & (fb[ve[li] - 1] == 34)
    q = quoted.astype(np.int64)
    offs = np.empty(3 * t + 1, np.int64)
    offs[0:-1:3] = fo[:-1] + lead
    offs[1:-1:3] = vs + q
    offs[2:-1:3] = ve - q
    offs[-1] = fo[-1]
    # (non-decreasing by construction: vs >= start + lead, a quote pair needs 2 bytes)
    pieces = _view(tok.flat_buffer, offs, 3 * t, check=False)
    offs2 = np.empty(2 * t + 1, np.int64)  # key piece / the rest, for the key lookup
    offs2[0:-1:2] = offs[0:-1:3]
    offs2[1:-1:2] = offs[1:-1:3]
    offs2[-1] = fo[-1]
    halves = _view(tok.flat_buffer, offs2, 2 * t, check=False)
    names = [k + style.assign for k in keys] + ([k + style.assign + '"' for k in keys] if style.quotes else [])
    found_at = _np(pc.fill_null(pc.index_in(halves, value_set=pa.array(names, pa.string())), -1)).astype(np.int64)
    kid = found_at[0::2]
    kid = np.where(kid >= 0, kid % K, -1)
    valid = has_key
    if style.merge:  # a `word=` that is not a key continues the previous value
        check = np.flatnonzero(has_key & (kid < 0))
        if len(check):
            key_text = pieces.take(pa.array(3 * check))
            valid = has_key.copy()
            valid[check] = _valid_keys(pc.utf8_rtrim(key_text, '"' + style.assign))
        tok.refuse(~valid)
    ok = valid if tok.keep is None else valid & tok.keep
    tokens = np.flatnonzero(ok & (kid >= 0))
    rows = tok.rows(tokens)
    # (only the keys that occur get a slot: a source may ask for hundreds, a batch holds a few)
    present, kid_present = np.unique(kid[tokens], return_inverse=True)
    P = len(present)
    code = rows * P + kid_present.reshape(-1)
    slot = np.full(n * P, -1, np.int64)
    slot[code[::-1]] = tokens[::-1]
    if (slot[code] > tokens).any():  # enforce "first occurrence wins" whatever numpy's order
        big = np.iinfo(np.int64).max
        s2 = np.where(slot < 0, big, slot)
        np.minimum.at(s2, code, tokens)
        slot = np.where(s2 == big, -1, s2)
    slot = slot.reshape(n, P)  # token of each present key's first occurrence per record, -1 if none
    column_of = dict(zip(present.tolist(), range(P)))
    # A field made of one token (no quoted blanks, no merged continuation) is that token's
    # value piece; other fields are cut from the record buffer.
    if tok.keep is None:
        single = np.ones(t, np.bool_)
    else:
        single = np.r_[tok.keep[1:], True]
        single[tok.last] = True
    single &= lead == 0
    if style.strip not in ("", " \t"):
        single[:] = False
    out = {}
    complex_parts = []
    for j, k in enumerate(keys):
        if j not in column_of:
            out[k] = pa.nulls(n, pa.string())
            continue
        idx = slot[:, column_of[j]]
        has = idx >= 0
        simple = has.copy()
        simple[has] = single[idx[has]]
        col = _column(pieces, np.where(simple, 3 * idx + 1, -1))
        if style.strip and style.sep != " ":
            col = pc.utf8_trim(col, style.strip)
        out[k] = col
        if (has & ~simple).any():
            rows_c = np.flatnonzero(has & ~simple)
            complex_parts.append((j, rows_c, idx[rows_c]))
    if complex_parts:
        toks = np.concatenate([p[2] for p in complex_parts])
        order = np.argsort(toks, kind="stable")
        chosen = toks[order]
        crow = tok.rows(chosen)
        vstart = tok.starts(chosen, crow) + eq[chosen] + 1
        vend = tok.field_end(chosen, crow)
        vstart, vend = _trim(tok.buffer, vstart, vend, style.strip, style.quotes)
        values = _cut(tok.buffer, vstart, vend)
        pos = np.empty(len(chosen), np.int64)
        pos[order] = np.arange(len(chosen))
        at = 0
        for j, rows_c, _ in complex_parts:
            k = keys[j]
            index = np.full(n, -1, np.int64)
            index[rows_c] = pos[at:at + len(rows_c)]
            at += len(rows_c)
            patch = _column(values, index)
            out[k] = pc.if_else(pc.is_valid(patch), patch, out[k])
    if (style.escapes or style.newlines) and pc.any(pc.match_substring(arr, "\\")).as_py():
        for k in keys:
            col = out[k]
            if col.null_count < n and pc.any(pc.match_substring(col, "\\")).as_py():
                out[k] = unescape(col, style.escapes, style.newlines)
    return pa.table(out)


def split_fields(text, indices, *, sep: str = ",", quotes: bool = True) -> pa.Table:
    """Delimited records (CSV by default: RFC 4180 double quotes, `""` inside) -> columns
    `f<i>` for the requested 0-based field `indices` (NULL when the record is shorter) and
    `_nfields`, the number of fields of each record (an empty record has one empty field).
    Records without a quote take Arrow's split; the others the quote-aware tokenizer."""
    indices = sorted(set(int(i) for i in indices))
    arr = as_strings(text)
    n = len(arr)
    quoted = _np(pc.match_substring(arr, '"')) if quotes and n else np.zeros(n, np.bool_)
    if quoted.any():
        plain = pc.if_else(pa.array(quoted), pa.scalar("", pa.string()), arr)
        fast = _split_plain(plain, indices, sep)
        qi = np.flatnonzero(quoted)
        slow = _split_quoted(arr.take(pa.array(qi)), indices, sep)
        pos = np.full(n, -1, np.int64)
        pos[qi] = np.arange(len(qi))
        where = pa.array(quoted)
        take = pa.array(pos, mask=pos < 0)
        return pa.table({c: pc.if_else(where, slow[c].take(take), fast[c]) for c in fast.column_names})
    return _split_plain(arr, indices, sep)


def _split_plain(arr: pa.Array, indices: list[int], sep: str) -> pa.Table:
    n = len(arr)
    parts = pc.split_pattern(arr, sep)
    flat = parts.flatten()
    lo = np.frombuffer(parts.buffers()[1], np.int32, count=n + 1, offset=4 * parts.offset).astype(np.int64)
    lo -= lo[0]
    nf = lo[1:] - lo[:-1]
    out = {}
    for i in indices:
        idx = lo[:-1] + i
        out[f"f{i}"] = _column(flat, np.where(nf > i, idx, -1))
    out["_nfields"] = pa.array(nf, pa.int64())
    return pa.table(out)


def _split_quoted(arr: pa.Array, indices: list[int], sep: str) -> pa.Table:
    n = len(arr)
    tok = _Tokens(arr, sep, True, "")
    per = [tok.nth_opener(i) for i in indices]
    sel = np.concatenate(per) if per else np.zeros(0, np.int64)
    which = np.flatnonzero(sel >= 0)
    toks = sel[which]
    srt = np.argsort(toks, kind="stable")
    toks = toks[srt]
    rows = tok.rows(toks)
    vstart, vend = _trim(tok.buffer, tok.starts(toks, rows), tok.field_end(toks, rows), "", True)
    values = _cut(tok.buffer, vstart, vend)
    if len(values) and pc.any(pc.match_substring(values, '""')).as_py():
        values = pc.replace_substring(values, '""', '"')
    vidx = np.full(len(sel), -1, np.int64)
    vidx[which[srt]] = np.arange(len(toks))
    out = {}
    for j, i in enumerate(indices):
        out[f"f{i}"] = _column(values, vidx[j * n:(j + 1) * n])
    out["_nfields"] = pa.array(tok.counts(), pa.int64())
    return pa.table(out)


# ---- syslog header -----------------------------------------------------------------------------

_HOST = r"[A-Za-z0-9][A-Za-z0-9_.:\-]*[A-Za-z0-9_.\-]|[A-Za-z0-9]"
_TAG = r"(?P<tag>(?P<appname>[A-Za-z][A-Za-z0-9_.\-/]{0,47})(?:\[(?P<procid>[^\]]*)\])?: +)"
_SD_RE = r'-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+'
# RFC 5424: <PRI>VERSION TIMESTAMP HOST APP [PROCID MSGID SD] MSG. PROCID MSGID SD are
# optional so that the `<PRI>1 <epoch> <host> <app> <body>` variant (Cisco Meraki) parses too.
_RFC5424 = (r"^(?P<header>\s*(?:<(?P<pri>\d{1,3})>)?(?P<version>\d{1,2}) +"
            r"(?P<ts>\d{4}-\d{2}-\d{2}T\S+|\d{9,10}(?:\.\d+)?|-) +(?P<hostname>\S+) +(?P<appname>\S+)"
            r"(?: +(?P<procid>\S+) +(?P<msgid>\S+) +(?P<sd>" + _SD_RE + r"))? ?)")
# RFC 3164 / BSD: <PRI>Mmm dd [yyyy] hh:mm:ss[.fff] [ZONE][:] [HOST [:]] [TAG[pid]: ] MSG
_RFC3164 = (r"^(?P<header>\s*(?:<(?P<pri>\d{1,3})>)?\s*(?P<ts>" + _MONTH +
            r" +\d{1,2}(?: +\d{4})? +\d{1,2}:\d{2}:\d{2}(?:\.\d+)?(?: +(?:" + _HEADER_ZONE_RE + r"))?)"
            r":? +(?:(?P<hostname>" + _HOST + r") +(?:: +)?)?(?:" + _TAG + r")?)")
# ISO timestamp without a version: <PRI>2023-06-05T15:28:16Z HOST [TAG[pid]: ] MSG
_ISO = (r"^(?P<header>\s*(?:<(?P<pri>\d{1,3})>)?(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"
        r"(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?):? +(?:(?P<hostname>" + _HOST + r") +(?:: +)?)?"
        r"(?:" + _TAG + r")?)")
_PRI = r"^(?P<header>\s*<(?P<pri>\d{1,3})>)"
_HEADER_FIELDS = ["pri", "version", "timestamp_text", "hostname", "appname", "procid", "msgid",
                  "structured_data"]


def syslog_header(lines, *, year: int | None = None, reference: datetime | None = None,
                  parse_time: bool = True) -> pa.Table:
    """Split syslog lines into header fields and the message body (see the module doc).
    Columns: pri (int32), version (int32), timestamp_text, timestamp (UTC), hostname,
    appname, procid, msgid, structured_data, message, form. Fields a form lacks are NULL;
    `-` (RFC 5424 nil) is NULL. With parse_time=False the timestamp column is left NULL (parse
    `timestamp_text` together with other times: `parse_timestamps_many`)."""
    arr = as_strings(lines)
    n = len(arr)
    forms = [("rfc5424", _RFC5424), ("rfc3164", _RFC3164), ("iso", _ISO), ("none", _PRI)]
    fields = {f: pa.nulls(n, pa.string()) for f in _HEADER_FIELDS}
    header_len = np.zeros(n, np.int64)
    form = np.full(n, "none", object)
    taken = np.zeros(n, np.bool_)
    for name, pattern in forms:
        if taken.all():
            break
        r = pc.extract_regex(arr, pattern)
        ok = np.asarray(r.is_valid().to_numpy(zero_copy_only=False)) & ~taken
        if not ok.any():
            continue
        mask = pa.array(ok)
        names = [r.type.field(i).name for i in range(r.type.num_fields)]
        for f in names:
            target = {"ts": "timestamp_text", "sd": "structured_data"}.get(f, f)
            if target not in fields:
                continue
            v = pc.struct_field(r, f)
            fields[target] = pc.if_else(mask, v, fields[target])
        hl = pc.binary_length(pc.struct_field(r, "header")).to_numpy(zero_copy_only=False)
        header_len[ok] = np.nan_to_num(hl[ok]).astype(np.int64)
        if "tag" in names:  # `host CEF: 0|...`: CEF/LEEF is the payload, not a syslog tag
            tag = pc.struct_field(r, "tag")
            fake = ok & _np(pc.fill_null(pc.is_in(pc.struct_field(r, "appname"),
                                                  value_set=pa.array(["CEF", "LEEF"])), False))
            if fake.any():
                tl = np.nan_to_num(pc.binary_length(tag).to_numpy(zero_copy_only=False)).astype(np.int64)
                header_len[fake] -= tl[fake]
                unset = pa.array(fake)
                for f in ("appname", "procid"):
                    fields[f] = pc.if_else(unset, pa.scalar(None, pa.string()), fields[f])
        form[ok] = name
        taken |= ok
    out = {}
    for f in _HEADER_FIELDS:
        v = fields[f]
        v = pc.if_else(pc.is_in(v, pa.array(["", "-"])), pa.scalar(None, pa.string()), v)
        out[f] = v.cast(pa.int32()) if f in ("pri", "version") else v
    out["timestamp"] = parse_timestamps(out["timestamp_text"], year=year, reference=reference) \
        if parse_time else pa.nulls(n, asim.TIMESTAMP)
    out["message"] = drop_prefix(arr, header_len)
    out["form"] = pa.array(form.astype(str), pa.string())
    return pa.table(out)


# ---- CEF ---------------------------------------------------------------------------------------

_CEF_RE = (r"^(?P<head>(?P<prefix>.*?)CEF: ?(?P<cef_version>\d+)\|(?P<vendor>(?:[^|\\]|\\.)*)\|"
           r"(?P<product>(?:[^|\\]|\\.)*)\|(?P<version>(?:[^|\\]|\\.)*)\|(?P<signature>(?:[^|\\]|\\.)*)\|"
           r"(?P<name>(?:[^|\\]|\\.)*)\|(?P<severity>(?:[^|\\]|\\.)*)\|)")
CEF_HEADER = ["prefix", "cef_version", "vendor", "product", "version", "signature", "name", "severity"]
_CEF_TAKEN = set(CEF_HEADER) | {"is_cef", "extension"}


def parse_cef(text, keys=()) -> pa.Table:
    """CEF records: is_cef (bool), the header fields (CEF_HEADER; `\\|` and `\\\\` undone,
    trimmed, NULL when empty or when the record is not CEF), `extension` (raw text) and one
    column per requested extension key (see `extract_pairs` with the CEF style). A key named
    like a header column (`product`, `name`, ...) comes back as `ext:<key>` (`cef_key`)."""
    arr = as_strings(text)
    n = len(arr)
    maybe = _np(pc.match_substring(arr, "CEF:")) if n else np.zeros(0, np.bool_)
    if maybe.all():
        r = pc.extract_regex(arr, _CEF_RE)
    else:  # the header regex only runs where `CEF:` occurs
        r = pc.extract_regex(pc.if_else(pa.array(maybe), arr, pa.scalar("", pa.string())), _CEF_RE)
    ok = r.is_valid()
    out = {"is_cef": ok}
    for f in CEF_HEADER:
        v = pc.struct_field(r, f)
        if f != "prefix":
            v = pc.utf8_trim_whitespace(unescape(v, "|\\"))
            v = pc.if_else(pc.equal(v, ""), pa.scalar(None, pa.string()), v)
        out[f] = v
    head = np.nan_to_num(pc.binary_length(pc.struct_field(r, "head")).to_numpy(zero_copy_only=False)).astype(np.int64)
    okn = ok.to_numpy(zero_copy_only=False)
    ext = drop_prefix(arr, np.where(okn, head, 0))
    ext = pc.if_else(ok, ext, pa.scalar(None, pa.string()))
    out["extension"] = ext
    table = pa.table(out)
    if keys:
        keys = list(dict.fromkeys(keys))
        rows = np.flatnonzero(okn)
        if len(rows) == 0:
            for k in keys:
                table = table.append_column(cef_key(k), pa.nulls(n, pa.string()))
            return table
        pairs = extract_pairs(ext.take(pa.array(rows)) if len(rows) < n else ext, keys, CEF)
        pos = None
        if len(rows) < n:
            p = np.full(n, -1, np.int64)
            p[rows] = np.arange(len(rows))
            pos = pa.array(p, mask=p < 0)
        for k in keys:
            col = pairs[k].combine_chunks() if isinstance(pairs[k], pa.ChunkedArray) else pairs[k]
            table = table.append_column(cef_key(k), col if pos is None else col.take(pos))
    return table


def cef_key(key: str) -> str:
    """The column name `parse_cef` gives an extension key (header names are taken)."""
    return "ext:" + key if key in _CEF_TAKEN else key


# CEF custom fields that come with a `<name>Label` key.
CEF_CUSTOM = ([f"cs{i}" for i in range(1, 7)] + [f"cn{i}" for i in range(1, 4)]
              + [f"cfp{i}" for i in range(1, 5)] + [f"c6a{i}" for i in range(1, 5)]
              + ["flexString1", "flexString2", "flexNumber1", "flexNumber2", "flexDate1",
                 "deviceCustomDate1", "deviceCustomDate2"])


def cef_custom_keys() -> list[str]:
    """The CEF custom field keys and their label keys (both `Label` and `label` spellings),
    to request from `parse_cef` when `cef_label_sql` is used."""
    out = []
    for k in CEF_CUSTOM:
        out += [k, k + "Label", k + "label"]
    return out


def cef_label_sql(*labels: str, custom=CEF_CUSTOM) -> str:
    """SQL for the value of the CEF custom field whose label is one of `labels` (compared
    case-insensitively), over a table that has the `cef_custom_keys()` columns."""
    wanted = ", ".join(sql_str(lab.lower()) for lab in labels)
    whens = " ".join(f'WHEN lower(trim(coalesce("{k}Label", "{k}label"))) IN ({wanted}) THEN "{k}"'
                     for k in custom)
    return f"(CASE {whens} END)"


# ---- timestamps --------------------------------------------------------------------------------

def _reference(reference: datetime | None) -> datetime:
    ref = reference or datetime.now(timezone.utc)
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=timezone.utc)
    return ref.astimezone(timezone.utc)


def epoch_sql(expr: str) -> str:
    """Epoch text or number -> TIMESTAMPTZ. The unit follows the digit count of the integer
    part (<= 11 seconds, <= 14 milliseconds, <= 17 microseconds, else nanoseconds); a
    fractional part is a fraction of a second. NULL when not an epoch or out of range."""
    x = f"trim(CAST({expr} AS VARCHAR))"
    ip = f"split_part({x}, '.', 1)"
    us = (f"CASE WHEN contains({x}, '.') THEN TRY_CAST(round(TRY_CAST({x} AS DOUBLE) * 1e6) AS BIGINT) "
          f"WHEN length({ip}) <= 11 THEN TRY_CAST({x} AS BIGINT) * 1000000 "
          f"WHEN length({ip}) <= 14 THEN TRY_CAST({x} AS BIGINT) * 1000 "
          f"WHEN length({ip}) <= 17 THEN TRY_CAST({x} AS BIGINT) "
          f"ELSE TRY_CAST(TRY_CAST({x} AS HUGEINT) // 1000 AS BIGINT) END")
    return (f"CASE WHEN regexp_full_match({x}, '\\d{{1,19}}(\\.\\d{{1,9}})?') "
            f"THEN try(CAST(make_timestamp({us}) AS TIMESTAMPTZ)) END")


def _year_sql(year: int | None, reference: datetime | None, mon_day_time: str) -> str:
    """SQL giving the year for a `Mmm dd hh:mm:ss` text that has none (see module doc)."""
    if year is not None:
        return str(int(year))
    ref = _reference(reference)
    limit = f"TIMESTAMP '{ref.strftime('%Y-%m-%d %H:%M:%S')}' + INTERVAL 1 DAY"
    this = f"try_strptime('{ref.year} ' || {mon_day_time}, '%Y %b %d %H:%M:%S')"
    return f"(CASE WHEN {this} > {limit} THEN {ref.year - 1} ELSE {ref.year} END)"


def timestamp_sql(expr: str, *, year: int | None = None, reference: datetime | None = None) -> str:
    """Timestamp text in any of the layouts these sources write -> TIMESTAMPTZ (UTC), NULL
    when unparseable:
      epoch seconds / ms / us / ns, with or without a fraction;
      ISO 8601 with or without `T`, fraction and zone, also with `/` (`2018/11/30 16:09:07`);
      BSD/CEF `Mmm dd [yyyy] hh:mm:ss[.fff] [ZONE|+hh:mm]` (no year: see module doc);
      ctime `Www Mmm dd hh:mm:ss yyyy` (Zscaler NSS);
      the US-locale export layouts of `asim.time_sql`."""
    x = f"regexp_replace(trim(CAST({expr} AS VARCHAR)), '\\s+', ' ', 'g')"
    bsd = (f"regexp_extract({x}, '^(?:[A-Z][a-z]{{2}},? )?({_MONTH}) (\\d{{1,2}})(?:,? (\\d{{4}}))? "
           f"(\\d{{1,2}}:\\d{{2}}:\\d{{2}})(?:\\.(\\d{{1,6}})\\d*)?(?: (\\d{{4}}))?"
           f"(?: ?({_ZONE_RE}|[+-]\\d{{2}}:?\\d{{2}}))?$', "
           f"['mon', 'day', 'year', 'time', 'frac', 'year2', 'zone'])")
    mdt = f"({bsd}).mon || ' ' || ({bsd}).day || ' ' || ({bsd}).time"
    yr = (f"coalesce(NULLIF(({bsd}).year, ''), NULLIF(({bsd}).year2, ''), "
          f"CAST({_year_sql(year, reference, mdt)} AS VARCHAR))")
    local = (f"try_strptime({yr} || ' ' || {mdt} || "
             f"CASE WHEN ({bsd}).frac <> '' THEN '.' || ({bsd}).frac ELSE '' END, "
             f"['%Y %b %d %H:%M:%S', '%Y %b %d %H:%M:%S.%f'])")
    zone = f"({bsd}).zone"
    zones = ", ".join(f"'{k}': {v}" for k, v in ZONES.items())
    offset = (f"coalesce(MAP {{{zones}}}[{zone}], "
              f"CASE WHEN regexp_full_match({zone}, '[+-]\\d{{2}}:?\\d{{2}}') THEN "
              f"(CASE WHEN {zone}[1] = '-' THEN -1 ELSE 1 END) * "
              f"(CAST({zone}[2:3] AS INTEGER) * 60 + CAST(right({zone}, 2) AS INTEGER)) END, 0)")
    bsd_ts = (f"CASE WHEN ({bsd}).time <> '' THEN "
              f"CAST({local} - to_minutes(CAST({offset} AS BIGINT)) AS TIMESTAMPTZ) END")
    iso = f"CASE WHEN regexp_matches({x}, '^\\d{{4}}[-/]\\d{{1,2}}[-/]\\d{{1,2}}') THEN TRY_CAST({x} AS TIMESTAMPTZ) END"
    return (f"(CASE WHEN {x} IS NULL OR {x} = '' THEN NULL "
            f"WHEN regexp_full_match({x}, '\\d{{1,19}}(\\.\\d{{1,9}})?') THEN {epoch_sql(x)} "
            f"ELSE coalesce({iso}, {bsd_ts}, {asim.time_sql(x)}) END)")


def parse_timestamps(text, *, year: int | None = None, reference: datetime | None = None) -> pa.Array:
    """`timestamp_sql` over a string array -> timestamp[us, UTC] array. Each distinct text is
    parsed once (records in a batch share few distinct timestamps)."""
    return parse_timestamps_many([text], year=year, reference=reference)[0]


def parse_timestamps_many(texts: list, *, year: int | None = None,
                          reference: datetime | None = None) -> list:
    """`parse_timestamps` for several string arrays at once (one query for all of them)."""
    arrs = []
    for text in texts:
        arr = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
        if not isinstance(arr, pa.Array):
            arr = pa.array(arr, pa.string())
        arrs.append(arr if arr.type == pa.string() else arr.cast(pa.string()))
    fast = [_epoch_fast(a) for a in arrs]
    rest = [a if f is None else pc.if_else(pc.is_null(f), a, pa.scalar(None, pa.string()))
            for a, f in zip(arrs, fast)]
    live = [a for a in rest if a.null_count < len(a)]
    if not live:
        return [f if f is not None else pa.nulls(len(a), asim.TIMESTAMP) for a, f in zip(arrs, fast)]
    uniq = pc.unique(pa.chunked_array(live, pa.string())).drop_null()
    parsed = asim.query(f"SELECT {timestamp_sql('x', year=year, reference=reference)} AS ts FROM u",
                        u=pa.table({"x": uniq}))["ts"].combine_chunks().cast(asim.TIMESTAMP)
    out = []
    for a, f in zip(rest, fast):
        sql_part = parsed.take(pc.index_in(a, value_set=uniq)) if a.null_count < len(a) \
            else pa.nulls(len(a), asim.TIMESTAMP)
        out.append(sql_part if f is None else pc.coalesce(f, sql_part))
    return out


def _epoch_fast(arr: pa.Array):
    """Whole-number epoch texts (s / ms / us / ns by digit count, as `epoch_sql`) converted in
    Arrow and numpy; None when the array holds none (the SQL path handles everything else)."""
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return None
    digits = pc.fill_null(pc.and_(pc.ascii_is_decimal(arr), pc.less_equal(pc.binary_length(arr), 19)), False)
    count = digits.true_count
    if count == 0:
        return None
    sel = pc.if_else(digits, arr, pa.scalar("0"))
    ndig = np.asarray(pc.binary_length(sel).to_numpy(zero_copy_only=False), np.int64)
    ok = np.asarray(digits.to_numpy(zero_copy_only=False), np.bool_)
    big = ndig > 18  # may not fit int64: drop the last digit first (ns -> 10 ns)
    trimmed = pc.if_else(pa.array(big), pc.utf8_slice_codeunits(sel, 0, 18), sel)
    v = np.asarray(pc.cast(trimmed, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    us = np.where(ndig <= 11, v * 1_000_000, np.where(ndig <= 14, v * 1000, np.where(ndig <= 17, v, v // 1000)))
    us = np.where(big, v // 100, us)
    lo, hi = -62135596800 * 1_000_000, 253402300799 * 1_000_000  # years 1..9999
    ok &= (us >= lo) & (us <= hi)
    return pa.array(us, asim.TIMESTAMP, mask=~ok)


# ---- values (SQL) -------------------------------------------------------------------------------

_IPV4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_IPV6 = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?::" + _IPV4 + r")?(?:%[A-Za-z0-9_.\-]+)?"


def valid_ip_sql(expr: str) -> str:
    """TRUE when the text is an IPv4 dotted quad or an IPv6 address (loosely: hex groups and
    colons, an optional embedded IPv4 and %zone); FALSE otherwise, NULL for NULL."""
    return (f"(regexp_full_match({expr}, {sql_str(_IPV4)}) OR "
            f"(regexp_full_match({expr}, {sql_str(_IPV6)}) AND contains({expr}, ':')))")


def ip_version_sql(expr: str) -> str:
    """'IPv6' when the address has a colon, 'IPv4' when it is a dotted quad, else NULL."""
    return (f"CASE WHEN contains({expr}, ':') THEN 'IPv6' "
            f"WHEN regexp_full_match({expr}, {sql_str(_IPV4)}) THEN 'IPv4' END")


# ---- reference implementations in SQL (slower; composable in one query) ------------------------

def strip_controls_sql(expr: str) -> str:
    """Remove the control characters \\x01-\\x03 the SQL helpers use as internal separators."""
    return f"regexp_replace({expr}, '[\\x01-\\x03]', '', 'g')"


def _names(names: list[str]) -> str:
    return "[" + ", ".join(sql_str(n) for n in names) + "]"


def unescape_sql(expr: str, chars: str = "=|\\", newlines: bool = False) -> str:
    """SQL twin of `unescape`."""
    x = f"replace(CAST({expr} AS VARCHAR), chr(3), '')"
    if "\\" in chars:
        x = f"replace({x}, '\\\\', chr(3))"
    for c in chars:
        if c != "\\":
            x = f"replace({x}, {sql_str(chr(92) + c)}, {sql_str(c)})"
    if newlines:
        x = f"replace(replace({x}, '\\n', chr(10)), '\\r', chr(13))"
    if "\\" in chars:
        x = f"replace({x}, chr(3), '\\')"
    return x


def _entries_to_map(entries: str) -> str:
    """A list of {k, v} structs -> MAP, first occurrence of a key winning; NULL keys dropped."""
    e = f"list_filter({entries}, lambda e: e.k IS NOT NULL AND e.k <> '')"
    keys = f"list_transform({e}, lambda e: e.k)"
    dedup = f"list_filter({e}, lambda e, i: list_position({keys}, e.k) = i)"
    return (f"map_from_entries(CASE WHEN len(list_distinct({keys})) = len({keys}) "
            f"THEN {e} ELSE {dedup} END)")


def cef_extension_map_sql(expr: str) -> str:
    """CEF extension text -> MAP(key -> value). Values may contain spaces: the text is cut at
    ` key=` boundaries (an escaped `\\=` is never a boundary), then `\\=`, `\\\\`, `\\|`, `\\n`,
    `\\r` are unescaped and values trimmed."""
    marked = (f"regexp_replace({strip_controls_sql(expr)}, '(^|\\s+)({KEY})=', "
              f"chr(1) || '\\2' || chr(2), 'g')")
    parts = f"list_filter(string_split({marked}, chr(1)), lambda p: contains(p, chr(2)))"
    entries = (f"list_transform({parts}, lambda p: {{'k': split_part(p, chr(2), 1), "
               f"'v': trim({unescape_sql('substr(p, strpos(p, chr(2)) + 1)', newlines=True)})}})")
    return _entries_to_map(entries)


def kv_map_sql(expr: str, *, sep: str = " ", assign: str = "=", unquoted_escapes: str = "=|\\",
               quoted_escapes: str = '"') -> str:
    """`key=value` pairs -> MAP(key -> value), parsed by name, in any order.

    `sep` is the pair separator: " " (any whitespace: FortiGate, Meraki), "|" (Check Point
    syslog), ";" (CommonSecurityLog AdditionalExtensions, Check Point structured data), ...
    A value is either double-quoted (`key="a b"`, may contain the separator; `\\"` inside is
    unescaped) or runs to the next separator (backslash escapes of `unquoted_escapes` are
    kept inside and then undone). A `[` also opens a pair list (`[k:"v"; ...]` with assign ":").
    Text before the first key and anything that is not a pair is ignored."""
    s = "\\s" if sep == " " else _re_class_escape(sep)
    a = _re_escape(assign)
    pattern = (f"(?:^|[{s}\\[])\\s*({KEY}){a}"
               f"(\"(?:[^\"\\\\]|\\\\.)*\"|(?:[^{s}\\\\]|\\\\.)*)")
    x = strip_controls_sql(expr)
    keys = f"regexp_extract_all({x}, {sql_str(pattern)}, 1)"
    vals = f"regexp_extract_all({x}, {sql_str(pattern)}, 2)"
    raw = f"list_transform(list_zip({keys}, {vals}), lambda p: {{'k': p[1], 'v': p[2]}})"
    quoted = "(length(e.v) >= 2 AND e.v[1] = '\"' AND e.v[-1] = '\"')"
    value = (f"trim(CASE WHEN {quoted} THEN {unescape_sql('e.v[2:-2]', quoted_escapes)} "
             f"ELSE {unescape_sql('e.v', unquoted_escapes)} END)")
    if assign == ":":
        value = f"rtrim({value}, ']')"
    entries = f"list_transform({raw}, lambda e: {{'k': e.k, 'v': {value}}})"
    return _entries_to_map(entries)


def _re_escape(s: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\-/" else c for c in s)


def _re_class_escape(s: str) -> str:
    return "".join("\\" + c if c in r"\]^-[" else c for c in s)


def json_object_sql(expr: str) -> str:
    """The text when it is a JSON object, else '{}' (so JSON functions never see bad input)."""
    return f"(CASE WHEN coalesce(try(json_type({expr})) = 'OBJECT', false) THEN {expr} ELSE '{{}}' END)"


def json_map_sql(expr: str, keys: list[str], root: str = "$") -> str:
    """A JSON object text -> MAP(key -> value as text) of the given top-level `keys` under
    `root` (a JSON path such as `$` or `$.event`); NULL when the text is not a JSON object.
    Nested values come back as JSON text; absent keys as NULL."""
    paths = "[" + ", ".join(sql_str(f'{root}."' + k.replace('"', '\\"') + '"') for k in keys) + "]"
    names = _names(keys)
    return (f"CASE WHEN coalesce(try(json_type({expr})) = 'OBJECT', false) "
            f"THEN map({names}, list_transform(json_extract_string({json_object_sql(expr)}, {paths}), "
            f"lambda v: NULLIF(trim(v), ''))) END")


# ---- small Arrow helpers for sources ---------------------------------------------------------------

def pick(mask, when_true, when_false) -> pa.Array:
    """`when_true` where `mask`, else `when_false`; skips the copy when the mask is uniform."""
    m = mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask
    m = pc.fill_null(m, False)
    if m.true_count == len(m) and isinstance(when_true, (pa.Array, pa.ChunkedArray)):
        return when_true
    if m.true_count == 0 and isinstance(when_false, (pa.Array, pa.ChunkedArray)):
        return when_false
    return pc.if_else(m, when_true, when_false)


def cef_label(table: pa.Table, *labels: str, custom=CEF_CUSTOM) -> pa.Array:
    """Arrow twin of `cef_label_sql`: the value of the custom field whose label is one of
    `labels` (case-insensitive), over a table holding the `cef_custom_keys()` columns."""
    wanted = pa.array([lab.lower() for lab in labels], pa.string())
    out = pa.nulls(table.num_rows, pa.string())
    for k in reversed(custom):
        lab = None
        for name in (k + "Label", k + "label"):
            if name in table.column_names and table[name].null_count < table.num_rows:
                col = table[name]
                lab = col if lab is None else pc.coalesce(lab, col)
        if lab is None or k not in table.column_names:
            continue
        hit = pc.fill_null(pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(lab)), value_set=wanted), False)
        out = pick(hit, table[k], out)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def arrays(table: pa.Table) -> dict:
    """name -> plain (non-chunked) Array for each column of a table."""
    out = {}
    for name in table.column_names:
        c = table[name]
        out[name] = c.chunk(0) if c.num_chunks == 1 else (
            c.combine_chunks() if c.num_chunks else pa.array([], c.type))
    return out


# ---- CommonSecurityLog exports ---------------------------------------------------------------------

# Sentinel CommonSecurityLog columns -> the CEF key they were stored from (cef-name-mapping.md),
# so an export (CSV) can be read with the same mapping as raw CEF. Header fields use the
# names of `parse_cef` (vendor, product, ...); a few columns have no CEF key (leading `_`).
COMMON_SECURITY_LOG = {
    "DeviceVendor": "vendor", "DeviceProduct": "product", "DeviceVersion": "version",
    "DeviceEventClassID": "signature", "Activity": "name", "LogSeverity": "severity",
    "SourceIP": "src", "SourcePort": "spt", "DestinationIP": "dst", "DestinationPort": "dpt",
    "Protocol": "proto", "DeviceAction": "act", "DeviceInboundInterface": "deviceInboundInterface",
    "DeviceOutboundInterface": "deviceOutboundInterface", "ReceivedBytes": "in", "SentBytes": "out",
    "DeviceExternalID": "deviceExternalId", "ExternalID": "externalId",
    "SourceTranslatedAddress": "sourceTranslatedAddress", "SourceTranslatedPort": "sourceTranslatedPort",
    "DestinationTranslatedAddress": "destinationTranslatedAddress",
    "DestinationTranslatedPort": "destinationTranslatedPort", "SourceMACAddress": "smac",
    "DestinationMACAddress": "dmac", "SourceUserName": "suser", "DestinationUserName": "duser",
    "ApplicationProtocol": "app", "Message": "msg", "DeviceName": "dvchost", "DeviceAddress": "dvc",
    "ReceiptTime": "rt", "StartTime": "start", "EndTime": "end", "EventCount": "cnt",
    "CommunicationDirection": "deviceDirection", "RequestURL": "request",
    **{f"DeviceCustomString{i}": f"cs{i}" for i in range(1, 7)},
    **{f"DeviceCustomString{i}Label": f"cs{i}Label" for i in range(1, 7)},
    **{f"DeviceCustomNumber{i}": f"cn{i}" for i in range(1, 4)},
    **{f"DeviceCustomNumber{i}Label": f"cn{i}Label" for i in range(1, 4)},
    "FlexString1": "flexString1", "FlexString1Label": "flexString1Label",
    "FlexString2": "flexString2", "FlexString2Label": "flexString2Label",
    "Computer": "_computer", "EventTime": "_eventtime", "TimeGenerated": "_timegenerated",
    "AdditionalExtensions": "_extensions",
}
CSL_REQUIRED = ("DeviceVendor", "DeviceProduct")


def csl_header(first_line: str) -> list[str] | None:
    """The column names when a CSV header line is a CommonSecurityLog export (it has
    DeviceVendor and DeviceProduct), else None."""
    import csv as _csv
    try:
        names = next(_csv.reader([first_line.lstrip("\ufeff")]))
    except (StopIteration, _csv.Error):
        return None
    names = [x.strip() for x in names]
    return names if all(c in names for c in CSL_REQUIRED) else None


_CEF_HEAD_BYTES = re.compile(rb"CEF: ?\d+\|((?:[^|\\\r\n]|\\.)*)\|((?:[^|\\\r\n]|\\.)*)\|")


def first_cef_vendor(head: bytes) -> tuple[str, str] | None:
    """(vendor, product) of the first CEF header in a file's head, for sniffers: a file is
    claimed by the vendor of its first CEF record, not by any CEF line further down."""
    m = _CEF_HEAD_BYTES.search(head)
    if not m:
        return None
    return (m.group(1).decode("utf-8", "replace").replace("\\|", "|").strip(),
            m.group(2).decode("utf-8", "replace").replace("\\|", "|").strip())
