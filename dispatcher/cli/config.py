"""``dispatcher config``: the configuration reference, generated from the settings class, and
``dispatcher config --check``: this environment's settings, loaded and checked."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import typer
from pydantic.fields import FieldInfo

from dispatcher.cli.common import broker_shown, masked_url
from dispatcher.settings import Settings

#: The markers around the generated reference in docs/OPERATIONS.md (tests/unit/test_config_reference.py).
REFERENCE_START = "<!-- config-reference:start -->"
REFERENCE_END = "<!-- config-reference:end -->"

_TYPE_NAMES = {str: "text", int: "integer", float: "number", bool: "true / false", Path: "path"}


def _bounds(field: FieldInfo) -> str:
    low = high = ""
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            low = f"{m.ge}"
        elif isinstance(m, annotated_types.Gt):
            low = f"> {m.gt}"
        elif isinstance(m, annotated_types.Le):
            high = f"{m.le}"
        elif isinstance(m, annotated_types.Lt):
            high = f"< {m.lt}"
    if low and high and not low.startswith(">") and not high.startswith("<"):
        return f"{low} … {high}"
    parts = [p if p.startswith((">", "<")) else f"{'≥' if p == low else '≤'} {p}" for p in (low, high) if p]
    return ", ".join(parts)


def _type_of(field: FieldInfo) -> str:
    annotation: Any = field.annotation
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    if get_origin(annotation) is Literal:
        kind = ", ".join(f"`{v}`" for v in get_args(annotation))
    else:
        kind = _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = _bounds(field)
    if bounds:
        kind += f" ({bounds})"
    return kind + (", optional" if optional else "")


def _default_of(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def reference_table() -> str:
    """Every setting as a Markdown table: variable, type or allowed values, default, description."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = [
        "| variable | type / allowed values | default | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        variable = f"`{prefix}{name.upper()}`"
        cells = (variable, _type_of(field), _default_of(field), field.description or "")
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def documented_table(doc: str) -> str | None:
    """The table between the reference markers of ``doc`` (None without both markers)."""
    start, end = doc.find(REFERENCE_START), doc.find(REFERENCE_END)
    if start < 0 or end < start:
        return None
    return doc[start + len(REFERENCE_START) : end].strip("\n") + "\n"


def config(
    check: Annotated[
        bool, typer.Option("--check", help="load this environment's settings and policy; exit 1 if invalid")
    ] = False,
) -> None:
    """Print the configuration reference (Markdown), or with --check validate this environment's."""
    if not check:
        print(reference_table(), end="")
        return
    from dispatcher.bootstrap import policy_for
    from dispatcher.settings import load_settings

    cfg = load_settings()  # a ConfigError is one readable line and exit 1 (dispatcher.cli.main)
    policy_for(cfg)
    print("ok")
    print(f"  env:       {cfg.env}")
    print(f"  database:  {masked_url(cfg.resolved_database_url)}")
    print(f"  redis:     {broker_shown(cfg)}")
    print(f"  policy:    {cfg.policy_file or 'built-in defaults'}")
    print(f"  timezone:  {cfg.timezone}")
    print(f"  logs:      {cfg.log_format}, {cfg.log_level}")


def register(app: typer.Typer) -> None:
    app.command()(config)
