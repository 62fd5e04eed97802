"""Reading a script: YAML with a line for every key, then the typed model; errors with lines."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.dialog.model import OUTCOME_FIELDS, Script
from bot.dialog.problem import Problem
from bot.errors import BoomerangError

Key = str | int
KeyPath = tuple[Key, ...]
M = TypeVar("M", bound=BaseModel)
ASK_TYPES = frozenset({"yes_no", "choice", "scale", "text", "datetime", "phone"})
BOOL_TAG = "tag:yaml.org,2002:bool"


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it (several times faster), the same marks."""


class ScriptYamlLoader(_SafeLoader):  # type: ignore[misc,valid-type]  # yaml has no stubs here
    """SafeLoader with YAML 1.2 scalars: only true/false are booleans, no base-60 numbers.

    Under YAML 1.1 the keys `on:`, `yes:` and `no:` that scripts and locale packs use would be
    read as booleans, and a time like `10:00` as the number 600.
    """


_YAML11_ONLY = (BOOL_TAG, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
ScriptYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ScriptYamlLoader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ScriptYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
ScriptYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+.0123456789"),
)


class ScriptError(BoomerangError):
    """A file that cannot be read as a script or locale pack; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Lines:
    """Where things are in a YAML file: 1-based lines of keys and values, by key path."""

    keys: dict[KeyPath, int] = field(default_factory=dict)
    values: dict[KeyPath, int] = field(default_factory=dict)
    """The line where a value's text starts (the line after `>-` or `|` for a block scalar)."""

    def key(self, path: KeyPath) -> int:
        """The line of the deepest key on `path` that exists (1 for the top of the file)."""
        for end in range(len(path), 0, -1):
            line = self.keys.get(path[:end])
            if line is not None:
                return line
        return 1

    def value(self, path: KeyPath) -> int:
        return self.values.get(path, self.key(path))


@dataclass(frozen=True)
class Parsed:
    data: Any
    lines: Lines


@dataclass(frozen=True)
class LoadedScript:
    """A script read from a file, with its version and where each of its parts is."""

    file: str
    version: str
    """SHA-256 of the file's bytes, first 12 hex digits."""
    script: Script
    lines: Lines
    source: bytes = b""
    """The file's bytes: stored with live conversations so a reply after an edit continues on the
    version the conversation started with (`load_script_bytes`)."""


def version_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def parse_yaml(file: str, text: str) -> Parsed:
    """The plain data and its lines; ScriptError on a syntax error or a duplicate key."""
    loader = ScriptYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScriptError([Problem(file, 1, "the file is empty")])
        problems: list[Problem] = []
        lines = Lines()
        _walk(node, (), lines, problems, file)
        if problems:
            raise ScriptError(problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        reason = " ".join(str(part) for part in (error.context, error.problem) if part)
        raise ScriptError([Problem(file, line, f"YAML syntax: {reason}")]) from error
    except yaml.YAMLError as error:
        raise ScriptError([Problem(file, 1, f"YAML syntax: {error}")]) from error
    finally:
        loader.dispose()
    return Parsed(data, lines)


def _walk(node: yaml.Node, path: KeyPath, lines: Lines, problems: list[Problem], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if name in seen:
                problems.append(
                    Problem(
                        file,
                        line,
                        f"duplicate key '{name}' (first at line {seen[name]})",
                        step=step_of(path + (name,)),
                    )
                )
                continue
            seen[name] = line
            child = path + (name,)
            lines.keys[child] = line
            lines.values[child] = _value_line(value_node)
            _walk(value_node, child, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = path + (index,)
            lines.keys[child] = item.start_mark.line + 1
            lines.values[child] = _value_line(item)
            _walk(item, child, lines, problems, file)


def _value_line(node: yaml.Node) -> int:
    line: int = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return line + 1
    return line


def step_of(path: KeyPath) -> str | None:
    if len(path) >= 2 and path[0] == "steps":
        return str(path[1])
    return None


def validate(model: type[M], parsed: Parsed, file: str) -> M:
    """`model` built from the parsed data; ScriptError with one problem per pydantic error."""
    try:
        return model.model_validate(parsed.data)
    except ValidationError as error:
        problems = [_problem(detail, parsed.lines, file) for detail in error.errors()]
        raise ScriptError(sorted(set(problems))) from error


def load_script(path: Path, file: str | None = None) -> LoadedScript:
    """Read and validate one script file; ScriptError lists every problem with its line."""
    name = file if file is not None else str(path)
    return load_script_bytes(_read(path, name), name)


def load_script_bytes(content: bytes, file: str) -> LoadedScript:
    """Validate a script from its bytes (a stored version); `file` names it in errors."""
    parsed = parse_yaml(file, _decode(content, file))
    script = validate(Script, parsed, file)
    return LoadedScript(file, version_of(content), script, parsed.lines, content)


def _read(path: Path, file: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ScriptError([Problem(file, 1, f"cannot read: {error.strerror}")]) from error


def _decode(content: bytes, file: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise ScriptError([Problem(file, line, "not UTF-8 text")]) from error


def _problem(detail: ErrorDetails, lines: Lines, file: str) -> Problem:
    path: list[Key] = []
    shown: list[str] = []
    for item in detail["loc"]:
        candidate = (*path, str(item) if isinstance(item, str) else item)
        if candidate in lines.keys:
            path.append(candidate[-1])
            shown.append(str(item))
        elif isinstance(item, str) and item in ASK_TYPES and path and path[-1] == "ask":
            continue  # the discriminated union's tag, not a key in the file
        else:
            shown.append(str(item))
    key_path = tuple(path)
    step = step_of(key_path)
    inner = shown[2:] if step is not None else shown
    return Problem(file, lines.key(key_path), _message(detail, inner), step=step)


def _message(detail: ErrorDetails, loc: list[str]) -> str:
    kind = detail["type"]
    name = loc[-1] if loc else "file"
    where = ".".join(loc) if loc else "the file"
    ctx = detail.get("ctx") or {}
    given = detail.get("input")
    if kind == "extra_forbidden":
        return f"unknown field '{name}'"
    if kind == "missing":
        return f"missing field '{name}'"
    if kind == "union_tag_invalid":
        return f"unknown ask type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "ask needs a `type`: yes_no, choice, scale, text, datetime or phone"
    if kind == "string_pattern_mismatch" and name == "record":
        return (
            f"record {given!r} is neither a known outcome ({', '.join(OUTCOME_FIELDS)})"
            " nor a lowercase custom name"
        )
    if kind == "literal_error":
        return f"{where}: {given!r} is not allowed; expected {ctx.get('expected')}"
    if kind == "value_error":
        message = str(ctx.get("error", detail["msg"])).splitlines()
        return f"{where}: {_first_reason(message)}" if loc else _first_reason(message)
    return f"{where}: {detail['msg'].lower()} (got {given!r})"


def _first_reason(lines: list[str]) -> str:
    # A nested ValidationError (an action's parameters) prints a header, then `field`, then why.
    if len(lines) >= 3 and "validation error" in lines[0]:
        return f"{lines[0].split(' for ')[-1]}.{lines[1].strip()}: {lines[2].strip()}"
    return lines[0] if lines else "invalid value"
