"""Reading campaign files: YAML with lines (the dialog loader's reader), then the typed model.

The YAML reading (YAML 1.2 booleans, duplicate keys, a line for every key) is reused from
bot.dialog.loader as it is; only the messages for the model's errors are the campaign's own,
because the dialog loader's speak of steps and `ask` types.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.campaign.definition import AUDIENCE_KINDS, Campaign
from bot.dialog.loader import Key, Lines, ScriptError, parse_yaml, version_of
from bot.dialog.problem import Problem


class CampaignError(ScriptError):
    """A campaign file that cannot be read or does not fit the model; carries every problem."""


@dataclass(frozen=True)
class LoadedCampaign:
    """A campaign read from a file, with its version and where each of its parts is."""

    file: str
    version: str
    """SHA-256 of the file's bytes, first 12 hex digits."""
    campaign: Campaign
    lines: Lines


@dataclass
class CampaignSet:
    """The campaigns of some files and folders; problems collected, never raised."""

    campaigns: list[LoadedCampaign] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def load_campaign(path: Path, file: str | None = None) -> LoadedCampaign:
    """Read and validate one campaign file; CampaignError lists every problem with its line."""
    name = file if file is not None else str(path)
    try:
        content = path.read_bytes()
    except OSError as error:
        raise CampaignError([Problem(name, 1, f"cannot read: {error.strerror}")]) from error
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise CampaignError([Problem(name, line, "not UTF-8 text")]) from error
    try:
        parsed = parse_yaml(name, text)
    except ScriptError as error:
        raise CampaignError(list(error.problems)) from error
    try:
        campaign = Campaign.model_validate(parsed.data)
    except ValidationError as error:
        problems = {_problem(detail, parsed.lines, name) for detail in error.errors()}
        raise CampaignError(sorted(problems)) from error
    return LoadedCampaign(name, version_of(content), campaign, parsed.lines)


def campaign_files(paths: Iterable[Path]) -> list[Path]:
    """The `*.yaml` files of `paths`: files as given, folders' files sorted by name."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob("*.yaml")))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def load_campaigns(paths: Sequence[Path] | Path) -> CampaignSet:
    """Every campaign under `paths` that reads and validates; the others' problems."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    loaded = CampaignSet()
    for root in roots:
        if not root.exists():
            loaded.problems.append(Problem(str(root), 0, "no such file or folder"))
    files = campaign_files(r for r in roots if r.exists())
    loaded.files = len(files)
    for path in files:
        try:
            loaded.campaigns.append(load_campaign(path))
        except CampaignError as error:
            loaded.problems.extend(error.problems)
    return loaded


def _problem(detail: ErrorDetails, lines: Lines, file: str) -> Problem:
    path: list[Key] = []
    for item in detail["loc"]:
        if path == ["audience"] and item in AUDIENCE_KINDS:
            continue  # the audience union's tag, not a key in the file
        path.append(item)
    if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path.append("kind")
    return Problem(file, lines.key(tuple(path)), _message(detail, [str(p) for p in path]))


def _message(detail: ErrorDetails, loc: list[str]) -> str:
    kind = detail["type"]
    where = ".".join(loc) if loc else "the file"
    ctx = detail.get("ctx") or {}
    given = detail.get("input")
    if kind == "extra_forbidden":
        return f"unknown field '{where}'"
    if kind == "missing":
        return f"missing field '{where}'"
    if kind == "union_tag_invalid":
        return (
            f"unknown audience kind {ctx.get('tag')!r}; expected one of {', '.join(AUDIENCE_KINDS)}"
        )
    if kind == "union_tag_not_found":
        return f"audience needs a `kind`: one of {', '.join(AUDIENCE_KINDS)}"
    if kind == "literal_error":
        return f"{where}: {given!r} is not allowed; expected {ctx.get('expected')}"
    if kind == "value_error":
        reason = str(ctx.get("error", detail["msg"]))
        return f"{where}: {reason}"
    return f"{where}: {detail['msg'][:1].lower()}{detail['msg'][1:]} (got {given!r})"
