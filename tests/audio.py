"""Decode audio we produced and measure it; never compare encoded bytes."""

from __future__ import annotations

import array
import io
import math
import wave

import miniaudio


def decode(data: bytes, fmt: str = "mp3", sample_rate: int = 22050) -> tuple[array.array, int]:
    """Return (mono 16-bit samples, sample rate) for mp3, wav or raw pcm bytes."""
    if fmt == "pcm":
        return array.array("h", data[: len(data) // 2 * 2]), sample_rate
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as w:
            assert w.getsampwidth() == 2 and w.getnchannels() == 1
            return array.array("h", w.readframes(w.getnframes())), w.getframerate()
    decoded = miniaudio.mp3_read_s16(data)  # native rate, unlike miniaudio.decode()
    samples = array.array("h", decoded.samples)
    if decoded.nchannels == 2:
        samples = samples[::2]
    return samples, decoded.sample_rate


def duration(data: bytes, fmt: str = "mp3", sample_rate: int = 22050) -> float:
    samples, rate = decode(data, fmt, sample_rate)
    return len(samples) / rate


def rms(data: bytes, fmt: str = "mp3", sample_rate: int = 22050) -> float:
    samples, _ = decode(data, fmt, sample_rate)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))
