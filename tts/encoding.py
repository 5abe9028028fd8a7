"""Streaming audio encoders: 16-bit little-endian mono PCM in, mp3/wav/pcm bytes out.

Use ONE ``StreamEncoder`` per stream and feed it every sentence in turn: an MP3
encoder started per sentence would add its start-up delay and end padding at every
seam. An encoder is not thread-safe; feed it from one thread at a time.
"""

from __future__ import annotations

import struct

import lameenc

from tts.base import FORMATS
from tts.errors import UnsupportedFormatError

# A WAV whose length is unknown while it streams: RIFF and data sizes are set to
# 0xFFFFFFFF, as streaming servers (ffmpeg, icecast relays) do. Readers that honour
# the sizes read to the end of the stream; ``wav_header(data_bytes=n)`` gives exact
# sizes when the whole file is known (``SpeechEngine.synthesize`` patches them in).
UNKNOWN_SIZE = 0xFFFFFFFF
WAV_HEADER_BYTES = 44
MP3_QUALITY = 7  # LAME: 2 = best/slow, 7 = fast; ~1 ms of work per second of speech


def wav_header(sample_rate: int, channels: int = 1, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM WAV header for 16-bit samples; ``None`` means a streaming length."""
    block_align = channels * 2
    if data_bytes is None:
        riff_size = data_size = UNKNOWN_SIZE
    else:
        data_size = data_bytes
        riff_size = min(UNKNOWN_SIZE, data_bytes + WAV_HEADER_BYTES - 8)
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", riff_size),
            b"WAVEfmt ",
            struct.pack(
                "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, 16
            ),
            b"data",
            struct.pack("<I", data_size),
        )
    )


def patch_wav_sizes(data: bytes) -> bytes:
    """Replace the streaming sizes of a complete WAV file made here by the real ones."""
    if len(data) < WAV_HEADER_BYTES or data[:4] != b"RIFF" or data[36:40] != b"data":
        return data
    body = len(data) - WAV_HEADER_BYTES
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", body + WAV_HEADER_BYTES - 8),
            data[8:40],
            struct.pack("<I", body),
            data[WAV_HEADER_BYTES:],
        )
    )


class StreamEncoder:
    """Encode one stream of 16-bit LE mono PCM to ``fmt`` ("mp3", "wav" or "pcm")."""

    def __init__(self, fmt: str, sample_rate: int, bitrate_kbps: int = 48) -> None:
        if fmt not in FORMATS:
            raise UnsupportedFormatError(fmt, FORMATS)
        self.fmt, self.sample_rate, self.bitrate_kbps = fmt, sample_rate, bitrate_kbps
        self._carry = b""  # odd trailing byte of the last chunk: half a sample
        self._header_sent = False
        self._mp3 = self._new_mp3() if fmt == "mp3" else None

    def _new_mp3(self) -> lameenc.Encoder:
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(self.bitrate_kbps)
        encoder.set_in_sample_rate(self.sample_rate)
        encoder.set_channels(1)
        encoder.set_quality(MP3_QUALITY)
        return encoder

    def encode(self, pcm: bytes) -> bytes:
        """Encode a PCM chunk of any length; may return b"" while the encoder buffers."""
        if self._carry:
            pcm = self._carry + pcm
        whole = len(pcm) - (len(pcm) & 1)
        self._carry = pcm[whole:]
        samples = pcm[:whole] if self._carry else pcm
        if self._mp3 is not None:
            return bytes(self._mp3.encode(samples)) if samples else b""
        return self._prefix() + samples

    def flush(self) -> bytes:
        """Finish the stream (an odd trailing byte is dropped). Call once, at the end."""
        self._carry = b""
        if self._mp3 is not None:
            return bytes(self._mp3.flush())
        return self._prefix()

    def _prefix(self) -> bytes:
        if self.fmt != "wav" or self._header_sent:
            return b""
        self._header_sent = True
        return wav_header(self.sample_rate)
