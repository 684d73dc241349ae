"""Source parsers: one module per raw format, each exporting `SOURCE`, found by discovery so
adding a format is adding a file. `detect` sniffs a file's format from its first bytes."""

from __future__ import annotations

import importlib
import pkgutil
import zlib
from functools import lru_cache

from .base import Batch, Source, SourceError, read_head

__all__ = ["Batch", "Source", "SourceError", "all_sources", "get", "detect"]


@lru_cache(maxsize=1)
def all_sources() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        source = getattr(module, "SOURCE", None)
        if isinstance(source, Source):
            found[source.name] = source
    return dict(sorted(found.items()))


def get(name: str) -> Source:
    # The module of that name first (sources are named after their module, `-` for `_`), so
    # `--source NAME` imports one parser, not all of them.
    if name.replace("-", "_").isidentifier() and not name.startswith("_") and name != "base":
        try:
            module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name.replace('-', '_')}":
                raise
        else:
            source = getattr(module, "SOURCE", None)
            if isinstance(source, Source) and source.name == name:
                return source
    sources = all_sources()
    if name not in sources:
        raise SourceError(f"unknown source '{name}'; known: {', '.join(sources)}")
    return sources[name]


def detect(path: str) -> Source:
    """The source whose sniffer recognises the file's first bytes (highest priority wins)."""
    try:
        head = read_head(path)
    except (OSError, EOFError, zlib.error) as e:
        raise SourceError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    if not head.strip():
        raise SourceError(f"{path}: file is empty")
    candidates = [s for s in all_sources().values() if s.sniff(head, path)]
    if not candidates:  # a pretty-printed JSON document: sniff its records as JSON lines
        from ._documents import head_lines
        lines = head_lines(head, path)
        if lines is not None:
            candidates = [s for s in all_sources().values()
                          if not s.reads_json_documents and s.sniff(lines, path)]
    if not candidates:
        tried = ", ".join(all_sources())
        raise SourceError(f"{path}: format not recognised (tried {tried}); use --source NAME")
    return max(candidates, key=lambda s: s.priority)
