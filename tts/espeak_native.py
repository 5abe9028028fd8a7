"""ctypes bindings to libespeak-ng from the ``espeakng-loader`` wheel.

The C library keeps process-wide state and is not thread-safe: every call goes through
``SHARED`` (one lock, one initialised library per process, reference-counted).
"""

from __future__ import annotations

import ctypes
import itertools
import threading

from tts.base import Voice
from tts.errors import ProviderError

NAME = "espeak"
_AUDIO_OUTPUT_SYNCHRONOUS, _INITIALIZE_DONT_EXIT = 2, 0x8000
_POS_CHARACTER, _CHARS_UTF8, _PARAM_RATE = 1, 1, 1
_GENDERS = {1: "male", 2: "female"}


class _VoiceStruct(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name)*, 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
VoiceEntry = tuple[Voice, str, list[tuple[int, str]]]  # voice, identifier, languages


class Library:
    """libespeak-ng calls; remembers voice, rate and callback to skip redundant sets."""

    def __init__(self, library_path: str, data_path: str, buflen_ms: int) -> None:
        lib = ctypes.CDLL(library_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
        lib.espeak_SetSynthCallback.argtypes = [SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._lib = lib
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, buflen_ms, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise ProviderError(NAME, f"espeak_Initialize failed ({rate}); data: {data_path}")
        self.sample_rate: int = rate
        self._callback: object = None
        self._voice: str | None = None
        self._rate: int | None = None

    def list_voices(self) -> list[VoiceEntry]:
        array = self._lib.espeak_ListVoices(None)
        out: list[VoiceEntry] = []
        for index in itertools.count():
            if not array[index]:
                return out
            raw = array[index].contents
            identifier = (raw.identifier or b"").decode()
            languages = _languages(raw.languages)
            voice = Voice(
                id=identifier.rsplit("/", 1)[-1].lower(),
                name=(raw.name or b"").decode(),
                languages=tuple(name for _, name in languages),
                gender=_GENDERS.get(raw.gender),
            )
            out.append((voice, identifier, languages))
        return out

    def prepare(self, callback: object, voice: str, rate: int) -> None:
        if callback is not self._callback:
            self._lib.espeak_SetSynthCallback(callback)
            self._callback = callback
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ProviderError(NAME, f"cannot load voice {voice!r}")
            self._voice, self._rate = voice, None  # a new voice resets the rate
        if rate != self._rate:
            self._lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self._rate = rate

    def synth(self, text: str) -> int:
        data = text.encode()
        size = len(data) + 1  # with the terminating NUL
        return int(
            self._lib.espeak_Synth(data, size, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        )

    def terminate(self) -> None:
        self._lib.espeak_Terminate()


def _languages(address: int | None) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    while address:
        priority = ctypes.c_ubyte.from_address(address).value
        if priority == 0:
            break
        name = ctypes.string_at(address + 1)
        out.append((priority, name.decode().lower()))  # espeak mixes cases: chr-US-Qaaa
        address += len(name) + 2
    return out


class _SharedLibrary:
    """The one libespeak-ng state of this process, used by one thread at a time.

    The C library is a process-wide singleton whatever we do; this mirrors it so two
    providers in one process (tests, two apps) never call it at once.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._library: Library | None = None
        self._paths = ("", "")
        self._users = 0

    def acquire(self, library_path: str, data_path: str, buflen_ms: int) -> Library:
        with self.lock:
            if self._library is None:
                self._library = Library(library_path, data_path, buflen_ms)
                self._paths = (library_path, data_path)
            elif self._paths != (library_path, data_path):
                raise ProviderError(
                    NAME, f"espeak-ng is already loaded from {self._paths}: one per process"
                )
            self._users += 1
            return self._library

    def release(self) -> None:
        with self.lock:
            self._users -= 1
            if self._users == 0 and self._library is not None:
                self._library.terminate()
                self._library = None


SHARED = _SharedLibrary()
