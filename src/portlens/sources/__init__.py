"""Source parsers: one module per raw format, each exporting `SOURCE`, found by discovery so
adding a format is adding a file (and a line in `SNIFFING`). `detect` sniffs a file's format
from its first bytes, importing only the parsers it has to ask."""

from __future__ import annotations

import importlib
import pkgutil
import re
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


# ---- sniffing without importing every parser ------------------------------------------------
#
# Every source, by name: its module, its priority, and a cheap test its sniffer can only pass
# when the head passes it too (a literal its patterns require), or None (no such test: always
# asked). `detect` asks the sources in the order that decides (priority, then name) and stops
# at the first that claims the head, so it imports the parsers up to that one, less those whose
# test fails, and finds what asking them all would. tests/test_sniffing.py keeps this table
# true to the modules (names, priorities, every test passed wherever its sniffer claims a
# head).

def _any(*needles: bytes):
    return lambda head: any(n in head for n in needles)


def _utf16_or(*needles: bytes):
    """For sniffers that decode UTF-16 heads (`_records.head_text`): no byte test holds there."""
    test = _any(*needles)
    return lambda head: head[:2] in (b"\xff\xfe", b"\xfe\xff") or test(head)


_CEF = b"CEF:"  # `_syslog.first_cef_vendor` finds a header only where this is

SNIFFING: dict[str, tuple[str, int, object]] = {  # source name -> (module, priority, test or None)
    "asim": ("native", -10, None),
    "aws-vpc": ("aws_vpc", 10, None),
    "azure-firewall": ("azure_firewall", 10, _any(b"AzureFirewall", b"AZFW")),
    "azure-nsg": ("azure_nsg", 10, None),
    "barracuda": ("barracuda", 10, _any(_CEF, b'"LogType')),
    "carbonblack": ("carbonblack", 10, _any(b"netconn")),
    "checkpoint": ("checkpoint", 10, _any(_CEF, b"CheckPoint ", b"loguid", b"originsicname")),
    "cisco-asa": ("cisco_asa", 10, lambda head: bool(re.search(rb"%(?:asa|ftd)-|cef:", head, re.IGNORECASE))),
    "cisco-firepower": ("cisco_firepower", 10, _any(_CEF)),
    "cisco-ftd": ("cisco_ftd", 11, _any(b"%FTD-")),
    "crowdstrike": ("crowdstrike", 10, _any(_CEF)),
    "defender-iot": ("defender_iot", 10, _any(b'"RawEventName')),
    "forcepoint": ("forcepoint", 10, _any(_CEF)),
    "fortinet": ("fortinet", 10, _any(_CEF, b"logid=", b"date=")),
    "illumio": ("illumio", 10, _any(b'"src_ip', b'"dst_ip')),
    "mde": ("mde", 0, _utf16_or(b"AdvancedHunting-DeviceNetworkEvents", b"RemoteIP")),
    "meraki": ("meraki", 10, None),
    "paloalto": ("paloalto", 10, _any(_CEF, b"/")),
    "sentinel": ("sentinel", 20, None),
    "sentinelone": ("sentinelone", 10, _any(b'"alertInfo')),
    "sonicwall": ("sonicwall", 10, _any(_CEF)),
    "sysmon": ("sysmon", 0, _utf16_or(b"<Event")),
    "vectra": ("vectra", 5, _utf16_or(b"metadata_", b"orig_huid", b"session_start_time")),
    "vmconnection": ("vmconnection", 0, _utf16_or(b"LinksEstablished", b"DestinationPort")),
    "watchguard": ("watchguard", 10, _any(b'msg_id="')),
    "windows-firewall": ("windows_firewall", 0, None),
    "zeek": ("zeek", 0, _any(b"orig_h")),
    "zscaler": ("zscaler", 10, _any(_CEF, b"zscalernss-", b'"csip"')),
}
_ASKING_ORDER = sorted(SNIFFING, key=lambda name: (-SNIFFING[name][1], name))


def _sniffed(head: bytes, path: str, documents: bool) -> Source | None:
    """The first source, in the order that decides, whose sniffer claims `head` (`documents`:
    the head is a JSON document's records, for sources that do not read documents)."""
    for name in _ASKING_ORDER:
        module, _, test = SNIFFING[name]
        if test is not None and not test(head):
            continue
        source = importlib.import_module(f"{__name__}.{module}").SOURCE
        if documents and source.reads_json_documents:
            continue
        if source.sniff(head, path):
            return source
    return None


def choose(path: str, source: str = "auto", options: dict | None = None) -> Source:
    """The parser for `path`: sniffed ("auto") or named, with the source's own options
    (Source.OPTIONS, e.g. aws-vpc's format) set."""
    parser = detect(path) if source == "auto" else get(source)
    return parser.with_options(options) if options else parser


def detect(path: str) -> Source:
    """The source whose sniffer recognises the file's first bytes (highest priority wins; among
    equals, the first by name)."""
    try:
        head = read_head(path)
    except (OSError, EOFError, zlib.error) as e:
        raise SourceError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    if not head.strip():
        raise SourceError(f"{path}: file is empty")
    if _unlisted():  # a parser SNIFFING does not know yet: ask them all
        return _sniffed_by_all(head, path)
    found = _sniffed(head, path, documents=False)
    if found is None:  # a pretty-printed JSON document: sniff its records as JSON lines
        from ._documents import head_lines
        lines = head_lines(head, path)
        if lines is not None:
            found = _sniffed(lines, path, documents=True)
    if found is None:
        tried = ", ".join(all_sources())
        raise SourceError(f"{path}: format not recognised (tried {tried}); use --source NAME")
    return found


@lru_cache(maxsize=1)
def _unlisted() -> list[str]:
    """Parser modules missing from SNIFFING (listing the folder imports nothing)."""
    listed = {module for module, _, _ in SNIFFING.values()}
    return [info.name for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_") and info.name != "base" and info.name not in listed]


def _sniffed_by_all(head: bytes, path: str) -> Source:
    """`detect` by asking every source (what SNIFFING makes cheaper)."""
    candidates = [s for s in all_sources().values() if s.sniff(head, path)]
    if not candidates:
        from ._documents import head_lines
        lines = head_lines(head, path)
        if lines is not None:
            candidates = [s for s in all_sources().values()
                          if not s.reads_json_documents and s.sniff(lines, path)]
    if not candidates:
        tried = ", ".join(all_sources())
        raise SourceError(f"{path}: format not recognised (tried {tried}); use --source NAME")
    return max(candidates, key=lambda s: s.priority)
