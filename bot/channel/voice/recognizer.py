"""Offline speech recognition with Vosk: one model per process, one recogniser per call turn.

`SpeechModel.load` loads a Vosk model folder (`BOOMERANG_VOSK_MODEL`) once per process (~0.5 GiB
for a small model; every call shares it). `CallRecognizer` wraps one `KaldiRecognizer` and is never
shared: a recogniser holds the decoding state of one audio stream.

Grammars: a step that asks yes/no, a choice or a number lists the phrases it expects
(`Ask.expected_phrases`); with a dynamic-graph model (`graph/Gr.fst` + `graph/HCLr.fst`) the
recogniser can be limited to them, which is ~6x cheaper in CPU and ~100x in memory than the full
vocabulary. Vosk ignores (with a log line) every grammar word it does not know, and a grammar
written as `json.dumps(...)` with the default `ensure_ascii=True` matches nothing at all, so the
grammar is built here from the words the model knows (`SpeechModel.grammar`).

Threads: `AcceptWaveform` is CPU-bound C++ that releases the GIL. It runs on one shared, bounded
`ThreadPoolExecutor` with as many workers as cores (not `asyncio.to_thread`): more threads than
cores only add contention, and the default executor is shared with blocking I/O that must not wait
behind speech decoding. Each recogniser feeds its own audio in order (an `asyncio.Lock`) and
batches 20 ms frames into ~100 ms chunks, so there is one thread hop per 100 ms of audio.

Endpointing: vosk 0.3.45 (the newest on PyPI) has no `SetEndpointerDelays`; the trailing-silence
rules are the model's `conf/model.conf` (`--endpoint.rule2.min-trailing-silence=0.5`, rule3 1.0).
A newer vosk's `SetEndpointerDelays` is used when present. Independently of the model, the caller
(`audio.SpeechGate`) ends an utterance after its own trailing silence and calls `finish`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from bot.errors import ConfigError

SAMPLE_RATE = 8000
UNKNOWN = "[unk]"
"""Vosk's reject word in a grammar: any sound outside the grammar; not every model has it."""
ENV = "BOOMERANG_VOSK_MODEL"
ENDPOINT_TRAILING_SILENCE = 0.5
"""Seconds of silence after speech that end an utterance, where vosk lets us set it."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Heard:
    """A final recognition result: the words (lowercase, as the model spells them; `[unk]` for a
    sound outside the grammar) and the mean of the words' confidences (0..1)."""

    text: str
    confidence: float


class Recognizer(Protocol):
    """What the voice channel needs from a recogniser (tests replace it with a scripted one)."""

    async def feed(self, pcm: bytes) -> Heard | None:
        """Add 8 kHz PCM16 audio; a Heard when an utterance has just been recognised."""
        ...

    async def finish(self) -> Heard | None:
        """The end of the audio: the final result of what was fed since the last Heard."""
        ...


class SpeechModel:
    """A loaded Vosk model. Load with `SpeechModel.load` (cached per folder, once per process)."""

    def __init__(self, path: Path, model: Any) -> None:
        self.path = path
        self.model: Any = model
        """The `vosk.Model` (untyped C binding)."""
        graph = path / "graph"
        self.supports_grammar = (graph / "Gr.fst").is_file() and (graph / "HCLr.fst").is_file()
        """A dynamic graph: the recogniser can be limited to a list of phrases."""
        self.has_unknown = self.supports_grammar and self.has_word(UNKNOWN)

    _loaded: ClassVar[dict[Path, SpeechModel]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> SpeechModel:
        """The model in folder `path`, loaded on first use (seconds; ~0.5 GiB) and then shared.

        ConfigError naming BOOMERANG_VOSK_MODEL and the folder when it is missing or not a model.
        """
        folder = Path(path).expanduser().resolve()
        with cls._lock:
            found = cls._loaded.get(folder)
            if found is not None:
                return found
            if not folder.is_dir():
                raise ConfigError(
                    f"{ENV}={path}: no such folder; download a model from "
                    "https://alphacephei.com/vosk/models and unpack it there"
                )
            if not (folder / "am" / "final.mdl").is_file() and not (folder / "final.mdl").is_file():
                raise ConfigError(f"{ENV}={path}: not a Vosk model folder (no am/final.mdl)")
            vosk = _vosk()
            vosk.SetLogLevel(-1)  # warnings and errors only; Kaldi logs every recogniser at 0
            try:
                model = vosk.Model(str(folder))
            except Exception as error:
                raise ConfigError(f"{ENV}={path}: Vosk cannot load the model: {error}") from error
            loaded = cls(folder, model)
            cls._loaded[folder] = loaded
            return loaded

    def has_word(self, word: str) -> bool:
        """Whether `word` is in the model's vocabulary (a grammar can only use such words)."""
        return int(self.model.vosk_model_find_word(word)) >= 0

    def missing_words(self, phrases: Iterable[str]) -> list[str]:
        """The words of `phrases` the model does not know, each once, in order."""
        missing: dict[str, None] = {}
        for phrase in phrases:
            for word in phrase.split():
                if word not in missing and not self.has_word(word):
                    missing[word] = None
        return list(missing)

    def grammar(self, phrases: Iterable[str]) -> list[str] | None:
        """The phrases whose every word the model knows, plus `[unk]` when the model has it;
        None when the model cannot use a grammar (no dynamic graph)."""
        if not self.supports_grammar:
            return None
        known = [
            phrase
            for phrase in dict.fromkeys(" ".join(p.split()) for p in phrases)
            if phrase and all(self.has_word(word) for word in phrase.split())
        ]
        if self.has_unknown:
            known.append(UNKNOWN)
        return known

    def recognizer(
        self, phrases: Sequence[str] = (), *, executor: Executor | None = None
    ) -> CallRecognizer:
        """A recogniser for one call turn: limited to `phrases` when the model supports grammars
        and knows at least one of them, else the full vocabulary (match the text afterwards)."""
        grammar = self.grammar(phrases) if phrases else None
        if grammar is not None and not [p for p in grammar if p != UNKNOWN]:
            grammar = None
        return CallRecognizer(self, grammar=grammar, executor=executor)


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    """The process's speech threads: one per core (Vosk releases the GIL while decoding)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 1, thread_name_prefix="vosk"
            )
        return _executor


class CallRecognizer:
    """One Vosk recogniser for one call turn; never share it between calls or tasks.

    `grammar`: the phrases to recognise (see `SpeechModel.grammar`), None for the full vocabulary.
    The Kaldi recogniser is created on the first feed, in a speech thread (a full-vocabulary one
    takes ~60 ms). `batch_bytes`: audio is decoded in chunks of at least this much (3200 = 100 ms).
    """

    def __init__(
        self,
        model: SpeechModel,
        *,
        sample_rate: int = SAMPLE_RATE,
        grammar: Sequence[str] | None = None,
        executor: Executor | None = None,
        batch_bytes: int = 3200,
    ) -> None:
        self.model = model
        self.sample_rate = sample_rate
        self.grammar = None if grammar is None else list(grammar)
        self._executor = executor
        self.batch_bytes = batch_bytes
        self._kaldi: Any = None
        self._pending = bytearray()
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        """Held while Kaldi works: a cancelled `feed` releases `_lock` before its thread ends."""

    async def feed(self, pcm: bytes) -> Heard | None:
        async with self._lock:
            self._pending += pcm
            if len(self._pending) < self.batch_bytes:
                return None
            chunk = bytes(self._pending)
            self._pending.clear()
            return await self._run(self._accept, chunk)

    async def finish(self) -> Heard | None:
        async with self._lock:
            chunk = bytes(self._pending)
            self._pending.clear()
            return await self._run(self._final, chunk)

    async def _run(self, work: Callable[[bytes], T], chunk: bytes) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor or shared_executor(), work, chunk)

    # --- in a speech thread ---

    def _recognizer(self) -> Any:
        if self._kaldi is None:
            vosk = _vosk()
            if self.grammar is None:
                kaldi = vosk.KaldiRecognizer(self.model.model, self.sample_rate)
            else:
                grammar = json.dumps(self.grammar, ensure_ascii=False)
                kaldi = vosk.KaldiRecognizer(self.model.model, self.sample_rate, grammar)
            kaldi.SetWords(True)
            set_delays = getattr(kaldi, "SetEndpointerDelays", None)
            if callable(set_delays):  # vosk > 0.3.45: t_start_max, t_end, t_max (seconds)
                set_delays(5.0, ENDPOINT_TRAILING_SILENCE, 20.0)
            self._kaldi = kaldi
        return self._kaldi

    def _accept(self, chunk: bytes) -> Heard | None:
        with self._thread_lock:
            kaldi = self._recognizer()
            if chunk and kaldi.AcceptWaveform(chunk):
                return _heard(kaldi.Result())
            return None

    def _final(self, chunk: bytes) -> Heard | None:
        with self._thread_lock:
            kaldi = self._recognizer()
            if chunk:
                kaldi.AcceptWaveform(chunk)
            return _heard(kaldi.FinalResult())


def _vosk() -> Any:
    """The `vosk` module, untyped (no stubs): everything from it is `Any` at this boundary."""
    return importlib.import_module("vosk")


def _heard(result_json: str) -> Heard | None:
    result = json.loads(result_json)
    text = " ".join(str(result.get("text", "")).split())
    if not text:
        return None
    words = result.get("result") or []
    confidences = [float(word.get("conf", 0.0)) for word in words]
    confidence = sum(confidences) / len(confidences) if confidences else 0.0
    return Heard(text, confidence)
