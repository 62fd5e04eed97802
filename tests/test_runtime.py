"""bot.runtime: how `boomerang serve` runs its loop (uvloop, the start-up heap frozen, fewer young
collections) and gives the collector back as it found it."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

import pytest

from bot import runtime
from bot.dialog import matcher
from bot.dialog.library import load_library

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"


async def _inside() -> tuple[int, tuple[int, int, int], str, bool]:
    kept = ["made after start-up"]
    tracked_after = gc.is_tracked(kept) and not _frozen(kept)
    loop = type(asyncio.get_running_loop())
    return gc.get_freeze_count(), gc.get_threshold(), loop.__module__, tracked_after


def _frozen(obj: object) -> bool:
    """An object is frozen when no generation holds it (gc.get_objects walks the generations)."""
    return not any(o is obj for o in gc.get_objects())


def test_run_freezes_the_start_up_heap_and_restores_the_collector() -> None:
    before = gc.get_threshold()
    loaded_at_start_up = ["the library, compiled"]
    assert not _frozen(loaded_at_start_up)

    frozen, thresholds, loop_module, tracked_after = runtime.run(_inside())

    assert frozen > 1000  # the interpreter's and the test's modules, at least
    assert thresholds == (runtime.YOUNG_THRESHOLD, *before[1:])
    assert tracked_after  # objects made while serving are collected as usual
    if sys.platform != "win32":
        assert loop_module.startswith("uvloop")
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert not _frozen(loaded_at_start_up)


def test_run_restores_the_collector_when_main_raises() -> None:
    before = gc.get_threshold()

    async def fails() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        runtime.run(fails())
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_settle_heap_moves_live_objects_out_of_the_generations() -> None:
    alive = ["kept for the process"]
    try:
        count = runtime.settle_heap()
        assert count == gc.get_freeze_count() > 0
        assert _frozen(alive)
    finally:
        gc.unfreeze()
    assert not _frozen(alive)


def test_library_compiles_every_locale_packs_words_at_start_up() -> None:
    library = load_library(DIALOGS)
    for locale, pack in library.packs.items():
        matcher._vocabularies.pop((id(pack), locale), None)

    library.compile_words()

    assert set(library.packs) >= {"ru", "en"}
    for locale, pack in library.packs.items():
        assert matcher._vocabularies[(id(pack), locale)][0] is pack
