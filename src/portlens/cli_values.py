"""Command-line values converted without pydantic.

Recent typer (0.29 here) converts every option value of the command being run through a pydantic
TypeAdapter; importing pydantic for that costs 0.15-0.25 s of a command's start (more than
the command's own work for `status` or a small `ingest`). The options portlens declares are
plain: text, whole and decimal numbers, paths, choices (Enum) and lists of these. For those,
`Coercer` gives the value typer's adapter would give, and hands every other case (an unusual
spelling such as `1e3` or `5_000`, a bad value, a type it does not know) to typer's own
conversion, so the results and error messages stay typer's. tests/test_cli_start.py checks
that both agree, value for value, on every option.

Typer offers no setting for this. `Commands`, portlens' command group, fills each parameter's
(otherwise lazily built) conversion before it is used, through typer's private
`_runtime_param` slot; a typer without that slot is left as it is."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from typer.core import TyperGroup

_INT = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: pydantic rejects other scripts' digits
_FLOAT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")


class _Unsure(Exception):
    """Not a case Coercer answers for: typer's conversion decides."""


class Commands(TyperGroup):
    """A typer command group whose commands' options are converted by `Coercer`s."""

    def main(self, *args, **kwargs):
        _everywhere(self)
        return super().main(*args, **kwargs)

    # --help is an option too, made when a command parses its arguments
    def get_help_option(self, ctx):
        return _coerced(super().get_help_option(ctx))

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        # the context the command parses with inherits the help option names, unless it sets its own
        if command is not None and "help_option_names" not in (command.context_settings or {}):
            _coerced(command.get_help_option(ctx))
        return name, command, rest


def _everywhere(command) -> None:
    for param in getattr(command, "params", ()):
        _coerced(param)
    for sub in getattr(command, "commands", {}).values():
        _everywhere(sub)


def _coerced(param):
    """`param`, given a Coercer when it is typer's kind of parameter and of a type Coercer knows."""
    if (getattr(param, "_runtime_param", ...) is None and hasattr(param, "type_descriptor")
            and param.type_descriptor.file_annotation is None and _leaf(param) is not None):
        param._runtime_param = Coercer(param)
    return param


def _leaf(param) -> type | None:
    """The value type of `param` (of each item, for a list) when Coercer knows it, else None."""
    annotation = param.type_descriptor.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    if annotation in (str, int, float, bool) or (isinstance(annotation, type) and issubclass(annotation, (Enum, Path))):
        return annotation
    return None


class Coercer:
    """Converts one parameter's values as typer's runtime parameter does (same `coerce`)."""

    def __init__(self, param):
        self.leaf = _leaf(param)
        self.info = param.type_descriptor.parameter_info
        self._typer = None

    def coerce(self, value: Any, param, ctx) -> Any:
        many = param.multiple or param.nargs == -1
        if value is None:
            return () if many else None
        try:
            if not many:
                return self._one(value, param, ctx)
            if isinstance(value, (list, tuple)):
                return [self._one(v, param, ctx) for v in value]
        except _Unsure:
            pass
        return self.typer(param).coerce(value, param=param, ctx=ctx)

    def typer(self, param):
        """typer's own conversion for this parameter (built, with pydantic, on first need)."""
        if self._typer is None:
            from typer._coercion import build_runtime_param
            self._typer = build_runtime_param(param.type_descriptor)
        return self._typer

    def _one(self, value: Any, param, ctx) -> Any:
        leaf = self.leaf
        if leaf is str and isinstance(value, str) or leaf is bool and type(value) is bool:
            return value
        if leaf is int:
            if type(value) is int:
                return value
            if isinstance(value, str) and _INT.fullmatch(value):
                return int(value)
        elif leaf is float:
            if type(value) in (int, float):
                return float(value)
            if isinstance(value, str) and _FLOAT.fullmatch(value):
                return float(value)
        elif issubclass(leaf, Enum):
            from typer._param_types import coerce_cli_choice
            try:
                return coerce_cli_choice(value, choices=tuple(leaf), case_sensitive=self.info.case_sensitive, ctx=ctx)
            except ValueError:
                raise _Unsure from None
        elif issubclass(leaf, Path) and isinstance(value, (str, Path)) and self.info.path_type is None:
            from typer._param_types import coerce_cli_path
            try:  # typer converts text to the path type with pydantic, which gives leaf(text)
                return coerce_cli_path(value if isinstance(value, leaf) else leaf(value), self.info,
                                       path_type=leaf, param=param, ctx=ctx)
            except Exception:
                raise _Unsure from None
        raise _Unsure
