"""Make ``static/sounds/gentle-gong.mp3``, the page's notification sound, from scratch.

A struck-metal tone: a few inharmonic partials (ratios of a small gong/bell) with
exponential decay and a short attack, encoded by ``lameenc``. Regenerate with
``python -m tests.browser.gong``; ``test_gong_sound`` checks the committed file.
"""

from __future__ import annotations

import array
import math
from pathlib import Path

import lameenc

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "static" / "sounds" / "gentle-gong.mp3"
RATE = 22050
SECONDS = 1.6
BASE_HZ = 330.0
# (frequency ratio, amplitude, decay time in s): a soft bell-like spectrum.
PARTIALS = ((1.0, 1.0, 0.9), (2.0, 0.35, 0.5), (2.76, 0.3, 0.35), (5.4, 0.12, 0.2))
PEAK = 0.35  # of full scale: a gentle sound, not a loud one


def samples() -> array.array:
    out = array.array("h")
    total = sum(amp for _, amp, _ in PARTIALS)
    attack = int(0.008 * RATE)
    for n in range(int(SECONDS * RATE)):
        t = n / RATE
        value = sum(
            amp * math.exp(-t / decay) * math.sin(2 * math.pi * BASE_HZ * ratio * t)
            for ratio, amp, decay in PARTIALS
        )
        envelope = min(1.0, n / attack)  # no click at the start
        out.append(int(32767 * PEAK * envelope * value / total))
    return out


def encode(pcm: array.array) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(RATE)
    encoder.set_channels(1)
    encoder.set_quality(2)
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(encode(samples()))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
