"""The dialog engine benchmark runs end to end on a few conversations (figures are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench" / "dialog_engine.py"


def test_benchmark_replays_the_conversations_and_prints_rates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("dialog_engine_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--conversations", "3"])
    printed = capsys.readouterr().out
    assert "engine, Russian words, state via JSON" in printed
    assert "baseline: dict-lookup state machine" in printed
    assert "target >= 20,000 engine turns/s per core" in printed
