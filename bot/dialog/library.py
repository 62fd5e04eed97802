"""A folder of scripts and locale packs, loaded, checked and compiled, each script versioned.

Files and folders whose name starts with `_` hold locale packs (`dialogs/_locale/ru.yaml`);
every other `*.yaml` file is a script named `<script id>.<locale>.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.dialog.loader import LoadedScript, ScriptError, load_script, parse_yaml, validate
from bot.dialog.locale_pack import LocalePack
from bot.dialog.matcher import vocabulary
from bot.dialog.problem import Problem
from bot.dialog.renderer import compile_script
from bot.dialog.validator import DEFAULT_MAX_SPOKEN_CHARS, check_script

LOCALE_FOLDER = "_locale"


@dataclass
class Library:
    scripts: dict[tuple[str, str], LoadedScript] = field(default_factory=dict)
    """(script id, locale) -> the script; only scripts without errors are here."""
    packs: dict[str, LocalePack] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    """How many script files were read (broken ones too)."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def script(self, script_id: str, locale: str) -> LoadedScript:
        return self.scripts[(script_id, locale)]

    def compile_words(self) -> None:
        """Compile every locale pack's words now (for Russian this loads the morphology
        dictionary, about 0.4 s) rather than in the first conversation: a service calls it at
        start-up, so the first customer does not wait and the words are part of the start-up heap
        (`bot.runtime`)."""
        for locale, pack in self.packs.items():
            vocabulary(pack, locale)

    def raise_on_errors(self) -> None:
        if self.errors:
            raise ScriptError(self.errors)


def is_locale_pack(path: Path) -> bool:
    return path.name.startswith("_") or path.parent.name.startswith("_")


def pack_locale(path: Path) -> str:
    return path.name.split(".")[0].lstrip("_")


def load_locale_pack(path: Path, file: str | None = None) -> LocalePack:
    """One locale pack; ScriptError with lines when it cannot be read or is malformed."""
    name = file if file is not None else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScriptError([Problem(name, 1, f"cannot read: {error}")]) from error
    return validate(LocalePack, parse_yaml(name, text), name)


def _files(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    scripts: list[Path] = []
    packs: list[Path] = []
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.yaml")):
                relative = found.relative_to(path).parts
                (packs if any(p.startswith("_") for p in relative) else scripts).append(found)
        elif is_locale_pack(path):
            packs.append(path)
        else:
            scripts.append(path)
            packs.extend(sorted((path.parent / LOCALE_FOLDER).glob("*.yaml")))
    return list(dict.fromkeys(scripts)), list(dict.fromkeys(packs))


def load_library(
    paths: Sequence[Path] | Path, max_spoken_chars: int = DEFAULT_MAX_SPOKEN_CHARS
) -> Library:
    """Load every script and pack under `paths`; problems are collected, never raised."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    library = Library()
    for root in roots:
        if not root.exists():
            library.problems.append(Problem(str(root), 0, "no such file or folder"))
    script_files, pack_files = _files(r for r in roots if r.exists())
    for path in pack_files:
        try:
            library.packs[pack_locale(path)] = load_locale_pack(path)
        except ScriptError as error:
            library.problems.extend(error.problems)
    library.files = len(script_files)
    for path in script_files:
        try:
            loaded = load_script(path)
        except ScriptError as error:
            library.problems.extend(error.problems)
            continue
        found = check_script(loaded, library.packs, max_spoken_chars)
        found.extend(_naming(loaded, library))
        library.problems.extend(found)
        if any(p.severity == "error" for p in found):
            continue
        compile_script(loaded)
        library.scripts[(loaded.script.id, loaded.script.locale)] = loaded
    return library


def _naming(loaded: LoadedScript, library: Library) -> list[Problem]:
    script = loaded.script
    line = loaded.lines.key(("id",))
    problems: list[Problem] = []
    key = (script.id, script.locale)
    if key in library.scripts:
        first = library.scripts[key].file
        problems.append(
            Problem(loaded.file, line, f"script '{script.id}' ({script.locale}) is also in {first}")
        )
    expected = f"{script.id}.{script.locale}.yaml"
    if Path(loaded.file).name != expected:
        problems.append(
            Problem(loaded.file, line, f"the file should be named {expected}", severity="warning")
        )
    return problems
