"""Telephone audio, pure numpy: G.711 μ-law <-> PCM16 and a speech detector for 20 ms frames.

Twilio Media Streams carry 8 kHz μ-law in 20 ms frames (160 bytes). `mulaw_decode` turns them into
int16 samples through a 256-entry table (Python 3.13 has no `audioop`; the table is bit-identical
to `audioop.ulaw2lin`), `pcm_bytes` gives what Vosk's `AcceptWaveform` takes.

`SpeechGate` decides which frames reach the recognizer: only while the caller speaks, with a little
audio before (pre-roll: the onset of a word is quiet) and after (trailing silence, so Vosk can
endpoint). Recognition costs CPU per second of audio fed, and a caller is silent most of a call
(the bot is speaking, the caller thinks), so gating is what lets one machine carry many calls.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
"""20 ms at 8 kHz: one Twilio media message."""

Samples = npt.NDArray[np.int16]

_BIAS = 0x84
_CLIP = 32635


def _decode_table() -> Samples:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _encode_table() -> npt.NDArray[np.uint8]:
    # Indexed by the int16 sample viewed as uint16; the 14-bit algorithm of G.711 / audioop.
    samples = np.arange(65536, dtype=np.int32)
    samples = np.where(samples >= 32768, samples - 65536, samples) >> 2
    mask = np.where(samples < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(samples), 8159) + (_BIAS >> 2)
    segment = np.searchsorted(
        np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), magnitude
    )
    value = np.where(
        segment >= 8, 0x7F, (segment << 4) | ((magnitude >> np.minimum(segment + 1, 8)) & 0x0F)
    )
    return (value ^ mask).astype(np.uint8)


ULAW_TO_PCM16: Samples = _decode_table()
"""The 256 μ-law codes as int16 samples."""
_PCM16_TO_ULAW = _encode_table()


def mulaw_decode(data: bytes) -> Samples:
    """μ-law bytes -> int16 samples (one sample per byte)."""
    return ULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> μ-law bytes (what Twilio sends; the tests' caller side)."""
    pcm = np.asarray(samples, dtype=np.int16)
    return _PCM16_TO_ULAW[pcm.view(np.uint16)].tobytes()


def pcm_bytes(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> little-endian 16-bit PCM bytes (Vosk's input)."""
    return np.asarray(samples, dtype="<i2").tobytes()


def rms(samples: Samples) -> float:
    if samples.size == 0:
        return 0.0
    values = samples.astype(np.float64)
    return float(np.sqrt(np.mean(values * values)))


@dataclass(frozen=True, slots=True)
class Gated:
    """What one frame pushed into a `SpeechGate` produced.

    `audio`: PCM16 bytes to feed to the recognizer now (empty while nobody speaks; several frames
    at the start of speech, because of the pre-roll). `started`: speech began on this frame (the
    caller barges in: stop playing the prompt). `ended`: the utterance and its trailing silence
    are over: ask the recognizer for its final result (`finish`) unless it already gave one.
    """

    audio: bytes = b""
    started: bool = False
    ended: bool = False


_NOTHING = Gated()


class SpeechGate:
    """A speech detector for 20 ms frames: RMS energy against an adaptive noise floor, with
    hangover.

    A frame is loud when its RMS is above both `min_rms` and `ratio` × the noise floor. Speech
    starts after `start_frames` loud frames in a row and lasts until `hangover_ms` without a loud
    frame; then `trailing_ms` more audio is passed on (Vosk endpoints on trailing silence) and the
    utterance ends. The noise floor starts at the first frame's level and follows quiet frames: it
    falls at once to a quieter frame and rises slowly (`floor_rise` per frame) so speech does not
    raise it. An utterance longer than `max_utterance_ms` is cut and the floor re-learned (a
    steady loud noise must not hold the gate open). One gate per call.
    """

    def __init__(
        self,
        *,
        min_rms: float = 300.0,
        ratio: float = 3.0,
        start_frames: int = 2,
        pre_roll_ms: int = 200,
        hangover_ms: int = 150,
        trailing_ms: int = 200,
        floor_rise: float = 0.02,
        max_utterance_ms: int = 20_000,
        frame_ms: int = 20,
    ) -> None:
        self.min_rms = min_rms
        self.ratio = ratio
        self.start_frames = max(1, start_frames)
        self.floor_rise = floor_rise
        self._max_frames = max(1, max_utterance_ms // frame_ms)
        self._hangover = max(0, hangover_ms // frame_ms)
        self._trailing = max(0, trailing_ms // frame_ms)
        self._pre_roll: deque[Samples] = deque(maxlen=max(1, pre_roll_ms // frame_ms))
        self.noise_floor: float | None = None
        self.speaking = False
        self._loud_run = 0
        self._quiet_run = 0
        self._frames = 0
        self._recent: deque[float] = deque(maxlen=25)

    def push(self, frame: Samples) -> Gated:
        """Judge one frame (int16 samples, normally 160 = 20 ms)."""
        level = rms(frame)
        if self.noise_floor is None:
            self.noise_floor = level  # the first frame is the line's noise, never speech
        loud = level >= self.min_rms and level >= self.ratio * self.noise_floor
        if not self.speaking:
            self._loud_run = self._loud_run + 1 if loud else 0
            if not loud:
                self._follow_floor(level)
            self._pre_roll.append(frame)
            if self._loud_run < self.start_frames:
                return _NOTHING
            self.speaking = True
            self._quiet_run = 0
            self._frames = 0
            audio = pcm_bytes(np.concatenate(list(self._pre_roll)))
            self._pre_roll.clear()
            return Gated(audio, started=True)
        self._frames += 1
        self._recent.append(level)
        if self._frames >= self._max_frames:
            # Too long for an answer: a noise the floor never learned (traffic, music). End the
            # utterance and take the recent level as the new floor.
            self.noise_floor = float(np.median(self._recent))
            return self._end(frame)
        if loud:
            self._quiet_run = 0
            return Gated(pcm_bytes(frame))
        self._follow_floor(level)
        self._quiet_run += 1
        if self._quiet_run < self._hangover + self._trailing:
            return Gated(pcm_bytes(frame))
        return self._end(frame)

    def _end(self, frame: Samples) -> Gated:
        self.speaking = False
        self._loud_run = 0
        return Gated(pcm_bytes(frame), ended=True)

    def _follow_floor(self, level: float) -> None:
        if self.noise_floor is None or level < self.noise_floor:
            self.noise_floor = level
        else:
            self.noise_floor += self.floor_rise * (level - self.noise_floor)
