"""YAML configuration files (org, policy) → validated models, every problem named by file, line and field.

The one reader of checked files: ``check_yaml`` validates text, ``read_checked`` reads a file and
refuses it with a ``ConfigError`` whose ``details`` are the problems, one ``FILE:LINE: field:
message`` each (the CLI prints them one per line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from dispatcher.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]
#: Checks a schema cannot express: (path, message) for each problem.
CrossCheck = Callable[[M], list[tuple[Path_, str]]]


@dataclass(frozen=True, slots=True)
class FileProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field or '(file)'}: {self.message}"


def line_of(root: Any, path: Path_) -> int:
    """The 1-based line of the deepest node of ``path`` that exists in the YAML tree."""
    node, line = root, 1
    for key in path:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    return line


def dotted(path: Path_) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def plain(node: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists for pydantic."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def check_yaml(
    text: str, filename: str, model: type[M], *, what: str, cross: CrossCheck[M] | None = None
) -> tuple[M | None, list[FileProblem]]:
    """Parse and validate ``text``; returns the model (if valid) and every problem found."""
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        return None, [FileProblem(filename, mark.line + 1 if mark else 1, "", f"YAML syntax: {exc.problem}")]
    except YAMLError as exc:  # e.g. a non-printable character: ruamel gives no line mark
        return None, [FileProblem(filename, 1, "", f"YAML: {exc}")]
    if not isinstance(root, CommentedMap):
        return None, [FileProblem(filename, 1, "", f"the {what} file must be a mapping at the top level")]
    try:
        value = model.model_validate(plain(root))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = tuple(p for p in err["loc"] if isinstance(p, str | int))
            problems.append(FileProblem(filename, line_of(root, path), dotted(path), err["msg"]))
        return None, problems
    found = [
        FileProblem(filename, line_of(root, p), dotted(p), m) for p, m in (cross(value) if cross else [])
    ]
    return (None, found) if found else (value, [])


#: What ``read_checked`` calls: text and file name → the model (if valid) and every problem.
Check = Callable[[str, str], tuple[M | None, list[FileProblem]]]


def read_checked(path: Path, check: Check[M]) -> tuple[M, str]:
    """Read ``path`` and validate it; returns the model and the text it came from.

    Raises ``ConfigError`` when the file cannot be read or has problems; ``details`` then lists
    every problem as ``FILE:LINE: field: message``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    value, problems = check(text, str(path))
    if value is None:
        raise ConfigError(
            f"{path}: {len(problems)} problem(s); nothing was changed", details=[str(p) for p in problems]
        )
    return value, text
