"""Benchmark of the dialog library: load + validate time, render time per prompt vs plain Jinja2.

    .venv/bin/python scripts/bench/dialogs_load.py [--dialogs dialogs] [--repeat 5] [--renders 200]

Loads and checks every script under the folder (best of --repeat runs), then renders every `say`
of every loaded script --renders times with a sample context through the sandboxed, cached
renderer; the baseline in the same run is Jinja2's plain `Environment().from_string(t).render()`
of the same templates (compiled each time, as that one-liner does) and, for the pure render cost,
the same plain templates compiled once.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jinja2 import Environment

from bot.dialog.context import sample_context
from bot.dialog.library import load_library
from bot.dialog.renderer import render
from bot.dialog.template_filters import locale_filters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialogs", type=Path, default=Path("dialogs"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--renders", type=int, default=200)
    args = parser.parse_args()

    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        library = load_library(args.dialogs)
        best = min(best, time.perf_counter() - started)
    print(
        f"load + validate: {library.files} scripts, {len(library.packs)} locale packs,"
        f" {len(library.errors)} errors, {len(library.warnings)} warnings:"
        f" {best * 1000:.1f} ms total (best of {args.repeat})"
    )

    prompts = [
        (loaded, step_id, step.say)
        for loaded in library.scripts.values()
        for step_id, step in loaded.script.steps.items()
        if step.say
    ]
    if not prompts:
        print("no prompts to render")
        return
    contexts = {
        loaded.version: sample_context(loaded.script.locale, loaded.script.variables)
        for loaded, _, _ in prompts
    }
    plain = {}
    for locale in ("ru", "en"):
        env = Environment()
        env.filters.update(locale_filters(locale))
        plain[locale] = env

    started = time.perf_counter()
    for _ in range(args.renders):
        for loaded, step_id, _ in prompts:
            render(loaded, step_id, "say", contexts[loaded.version])
    ours = (time.perf_counter() - started) / (args.renders * len(prompts))

    started = time.perf_counter()
    for _ in range(args.renders):
        for loaded, _, text in prompts:
            env = plain[loaded.script.locale]
            env.from_string(text).render(contexts[loaded.version])
    baseline = (time.perf_counter() - started) / (args.renders * len(prompts))

    compiled = [
        (plain[loaded.script.locale].from_string(text), contexts[loaded.version])
        for loaded, _, text in prompts
    ]
    started = time.perf_counter()
    for _ in range(args.renders):
        for template, context in compiled:
            template.render(context)
    precompiled = (time.perf_counter() - started) / (args.renders * len(prompts))

    print(f"render, {len(prompts)} prompts x {args.renders}:")
    print(f"  sandboxed, cached, context checked   {ours * 1e6:8.1f} µs/prompt")
    print(f"  Environment().from_string().render() {baseline * 1e6:8.1f} µs/prompt (baseline)")
    print(f"  plain Environment, compiled once     {precompiled * 1e6:8.1f} µs/prompt")


if __name__ == "__main__":
    main()
