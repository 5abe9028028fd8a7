"""Streaming encoders: decoded duration and loudness, never encoded bytes."""

from __future__ import annotations

import array
import io
import math
import wave

import pytest

from tests import audio
from tts.encoding import StreamEncoder, patch_wav_sizes, wav_header
from tts.errors import UnsupportedFormatError

RATE = 22050


def tone(seconds: float, freq: float = 440.0) -> bytes:
    count = int(RATE * seconds)
    samples = (int(8000 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(count))
    return array.array("h", samples).tobytes()


def encode_in_pieces(encoder: StreamEncoder, pcm: bytes, piece: int) -> bytes:
    out = [encoder.encode(pcm[i : i + piece]) for i in range(0, len(pcm), piece)]
    return b"".join(out) + encoder.flush()


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm"])
def test_odd_sized_chunks_decode_to_the_input_duration(fmt: str) -> None:
    data = encode_in_pieces(StreamEncoder(fmt, RATE), tone(1.0), piece=777)  # odd: carries
    # LAME adds its encoder delay and end padding (under 0.1 s); wav and pcm are exact.
    assert audio.duration(data, fmt) == pytest.approx(1.0, abs=0.1 if fmt == "mp3" else 1e-9)
    assert audio.rms(data, fmt) > 3000


def test_byte_by_byte_pcm_keeps_every_sample() -> None:
    pcm = tone(0.05)
    encoder = StreamEncoder("pcm", RATE)
    out = b"".join(encoder.encode(pcm[i : i + 1]) for i in range(len(pcm))) + encoder.flush()
    assert audio.decode(out, "pcm")[0] == audio.decode(pcm, "pcm")[0]


def test_one_mp3_encoder_across_sentences_has_no_seams() -> None:
    """Three "sentences" through one encoder decode to the sum of their lengths."""
    parts = [tone(0.7, 300), tone(1.1, 500), tone(0.4, 700)]
    encoder = StreamEncoder("mp3", RATE)
    data = b"".join(encoder.encode(p) for p in parts) + encoder.flush()
    assert audio.duration(data) == pytest.approx(2.2, abs=0.1)
    # Separate encoders per sentence would pad every seam: the kit must not do that.
    separate = b"".join(encode_in_pieces(StreamEncoder("mp3", RATE), p, 4096) for p in parts)
    assert audio.duration(separate) > audio.duration(data) + 0.05


def test_streaming_wav_header_is_readable_and_patchable() -> None:
    pcm = tone(0.5)
    encoder = StreamEncoder("wav", RATE)
    streamed = encoder.encode(pcm) + encoder.flush()
    assert streamed[4:8] == b"\xff\xff\xff\xff"  # unknown length while streaming
    assert audio.duration(streamed, "wav") == pytest.approx(0.5)
    fixed = patch_wav_sizes(streamed)
    with wave.open(io.BytesIO(fixed)) as reader:
        assert reader.getnframes() == len(pcm) // 2
        assert reader.getframerate() == RATE


def test_empty_wav_stream_is_still_a_header() -> None:
    data = StreamEncoder("wav", RATE).flush()
    assert data == wav_header(RATE)
    assert audio.duration(data, "wav") == 0


def test_wav_header_with_known_size() -> None:
    header = wav_header(16000, channels=2, data_bytes=400)
    with wave.open(io.BytesIO(header + bytes(400))) as reader:
        assert (reader.getnchannels(), reader.getframerate()) == (2, 16000)
        assert reader.getnframes() == 100


def test_unknown_format_names_the_allowed_ones() -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        StreamEncoder("ogg", RATE)
    assert caught.value.allowed == ["mp3", "pcm", "wav"]
    assert "mp3" in str(caught.value)
