"""Text from logs made safe to show on a terminal.

Log fields are attacker-controlled: a `SrcIpAddr` holding `ESC]0;...BEL` retitles the
analyst's terminal, `ESC[2J` clears it, a right-to-left override (U+202E) makes `exe.txt` read
as `txt.exe`, and `[bold]` or `[link=...]` is Rich markup. Before any such value reaches a
terminal (tables, status lines, the quarantine listing) it goes through `printable` (controls
shown as visible escapes) and, where the text is printed as Rich markup, `safe` (markup
escaped as well). Our own strings (table layout, styles) are never passed through them.
"""

from __future__ import annotations

from typing import Any

# Characters that act on the terminal or the reading order instead of being shown:
# C0 controls (ESC, BEL, CR, LF, TAB, NUL, ...), DEL and the C1 controls (U+0080-U+009F, which
# include the 8-bit CSI and OSC), the bidirectional marks, embeddings, overrides and isolates
# (Unicode UAX #9), and the line and paragraph separators.
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
CONTROLS = frozenset([*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *_BIDI, 0x2028, 0x2029])


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _visible(code) for code in CONTROLS}


def printable(value: Any) -> str:
    """`value` as text with every control, bidi and separator character replaced by a
    visible escape (ESC -> `\\x1b`, U+202E -> `\\u202e`); other text is unchanged."""
    return str(value).translate(_TABLE)


def safe(value: Any) -> str:
    """`printable(value)` with Rich markup escaped too: for text printed as markup."""
    from rich.markup import escape
    return escape(printable(value))
