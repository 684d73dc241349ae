"""The command line starts fast (issue 8, fast start): `--help` imports no engine (DuckDB,
Arrow, NumPy), nothing imports pandas, and no command imports pydantic to read its options,
which `cli_values.Coercer` converts exactly as typer would."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import typer.main

from portlens import cli
from portlens.cli_values import Coercer

try:
    from typer._coercion import build_runtime_param
except ImportError:  # a typer from before its pydantic conversion: nothing to compare with
    build_runtime_param = None
with_runtime_params = pytest.mark.skipif(build_runtime_param is None, reason="this typer converts without pydantic")

ENGINE = ("duckdb", "pyarrow", "numpy", "pandas", "pydantic")


def imported(*args: str) -> set[str]:
    """Top-level packages in sys.modules at the end of a cold `python -m portlens ARGS`."""
    code = ("import atexit, json, runpy, sys\n"
            "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + json.dumps(sorted(\n"
            "    {m.split('.')[0] for m in sys.modules})) + '\\n'))\n"
            f"sys.argv = ['portlens', *{list(args)!r}]\n"
            "runpy.run_module('portlens', run_name='__main__', alter_sys=True)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    found = re.search(r"^MODULES (.*)$", r.stderr, re.M)
    assert found, r.stderr
    return set(json.loads(found.group(1)))


@pytest.mark.parametrize("args", [["--help"], ["ingest", "--help"], ["config", "check", "--help"]])
def test_help_imports_no_engine(args):
    assert not imported(*args) & set(ENGINE)


def test_importing_the_cli_imports_no_engine():
    code = f"import sys, portlens.cli; print(sorted(m for m in {ENGINE!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stderr


def test_a_small_ingest_imports_neither_pandas_nor_pydantic(tmp_path):
    log = tmp_path / "fw.jsonl"
    log.write_text('{"TimeGenerated": "2026-11-30T10:00:00Z", "DstPortNumber": 3389, "NetworkProtocol": "TCP"}\n')
    db = str(tmp_path / "s.duckdb")
    found = imported("ingest", str(log), "--db", db) | imported("status", "--db", db)
    assert "duckdb" in found  # the check sees imports at all
    assert not found & {"pandas", "pydantic"}


def test_the_default_store_is_the_stores():
    from portlens.store import DEFAULT_DB
    assert cli.DEFAULT_DB == DEFAULT_DB


# ---- option values: Coercer gives what typer gives (value, or the same error) ----------------

def _params():
    group = typer.main.get_command(cli.app)
    out = []

    def walk(command, path):
        for p in command.params:
            out.append(pytest.param(command, p, id=f"{path} {p.name}"))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())
    walk(group, "")
    return out


PARAMS = _params()


def _outcome(runtime, value, param, ctx):
    try:
        v = runtime.coerce(value, param=param, ctx=ctx)
        return "value", type(v).__name__, repr(v)
    except Exception as e:  # noqa: BLE001 - the error itself is what is compared
        return "error", type(e).__name__, e.format_message() if hasattr(e, "format_message") else str(e)


NUMBERISH = st.from_regex(r"\s?[-+]?[0-9_٣]{0,22}(\.[0-9_]{0,18})?([eE][-+]?[0-9]{1,3})?\s?", fullmatch=True)
CHOICEISH = st.sampled_from(["table", "JSONL", "jsonl", "sentinel-raw", "Sentinel_Raw", "inf", "zero", "spark",
                             "auto", "improved", " table", "", "-"])
TEXT = st.one_of(st.text(max_size=30), NUMBERISH, CHOICEISH)


@with_runtime_params
@pytest.mark.parametrize("command,param", PARAMS)
@settings(max_examples=60, deadline=None)
@given(value=st.one_of(TEXT, st.lists(TEXT, max_size=3).map(tuple), st.none()))
def test_coercer_agrees_with_typer(command, param, value):
    ctx = command.context_class(command, info_name=command.name)
    ours = Coercer(param)
    theirs = build_runtime_param(param.type_descriptor)
    assert _outcome(ours, value, param, ctx) == _outcome(theirs, value, param, ctx)


@with_runtime_params
@pytest.mark.parametrize("command,param", PARAMS)
def test_coercer_agrees_on_defaults(command, param):
    ctx = command.context_class(command, info_name=command.name)
    value = param.default
    assert _outcome(Coercer(param), value, param, ctx) == _outcome(build_runtime_param(param.type_descriptor),
                                                                   value, param, ctx)


@with_runtime_params
def test_every_option_is_converted_without_pydantic():
    from portlens.cli_values import _everywhere
    group = typer.main.get_command(cli.app)
    _everywhere(group)
    missing = []

    def walk(command):
        missing.extend(f"{command.name} {p.name}" for p in command.params if not isinstance(p._runtime_param, Coercer))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)
    walk(group)
    assert missing == []
