"""`sources.SNIFFING`, the table that lets `detect` import only the parsers it has to ask,
stays true to the parsers: same names and priorities, and each cheap test passes wherever its
source's sniffer claims a head, so `detect` finds what asking every source finds."""

from __future__ import annotations

import codecs
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens import sources
from portlens.sources._documents import head_lines
from portlens.sources.base import read_head

from test_sniffing import FIXTURES, sample_files

FILES = sorted(p for p in FIXTURES.rglob("*") if p.is_file()) + sample_files()


def test_the_table_lists_every_source_with_its_module_and_priority():
    found = sources.all_sources()
    assert sorted(sources.SNIFFING) == sorted(found)
    for name, (module, priority, _) in sources.SNIFFING.items():
        assert importlib.import_module(f"portlens.sources.{module}").SOURCE is found[name]
        assert found[name].priority == priority, name
    assert sources._unlisted() == []


def _heads(path: Path) -> list[bytes]:
    head = read_head(str(path))
    lines = head_lines(head, str(path))
    return [head] + ([lines] if lines is not None else [])


def _claims_pass_the_test(head: bytes, path: str = "x.log") -> None:
    for name, source in sources.all_sources().items():
        test = sources.SNIFFING[name][2]
        if test is not None and source.sniff(head, path):
            assert test(head), f"{name} claims a head its SNIFFING test rejects: {head[:200]!r}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_detect_finds_what_asking_every_source_finds(path):
    for head in _heads(path):
        _claims_pass_the_test(head, str(path))
    try:
        expected = sources._sniffed_by_all(read_head(str(path)), str(path)).name
    except sources.SourceError as e:
        with pytest.raises(sources.SourceError, match="format not recognised"):
            sources.detect(str(path))
        assert "format not recognised" in str(e)
        return
    assert sources.detect(str(path)).name == expected


def _pieces() -> list[bytes]:
    """Lines of every fixture and sample head: what sniffers look for, to recombine."""
    out = []
    for path in FILES:
        for head in _heads(path):
            out.extend(line + b"\n" for line in head.splitlines()[:6] if line.strip())
    return out


PIECES = _pieces()


@settings(max_examples=300, deadline=None)
@given(picked=st.lists(st.tuples(st.sampled_from(PIECES), st.integers(0, 400), st.integers(0, 400)), min_size=1,
                       max_size=4),
       prefix=st.sampled_from([b"", codecs.BOM_UTF8, b"  ", b"<134>May  1 00:00:00 host "]))
def test_tests_hold_on_recombined_heads(picked, prefix):
    """Cut and joined lines of real heads (a line's tail, two formats in one head, a syslog
    prefix): wherever a sniffer claims the result, its test passes."""
    head = prefix + b"".join(piece[min(a, b):] if a % 3 else piece[:max(a, b)] for piece, a, b in picked)
    _claims_pass_the_test(head)


def test_detect_imports_only_the_parsers_it_asks(tmp_path):
    log = tmp_path / "fw.log"
    log.write_text('date=2024-05-01 time=00:00:01 devname="fw1" devid="FG100" logid="0000000013" '
                   'type="traffic" subtype="forward" srcip=10.0.0.1 dstip=10.0.0.2 dstport=443 proto=6\n')
    code = ("import sys; from portlens import sources\n"
            f"print(sources.detect({str(log)!r}).name)\n"
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('portlens.sources.')"
            " and not m.rsplit('.', 1)[1].startswith('_') and m != 'portlens.sources.base'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    name, imported = r.stdout.splitlines()
    assert name == "fortinet", r.stderr
    assert len(eval(imported)) < len(sources.SNIFFING) // 2, imported
