"""Speech errors. Adapters map them: bad input -> 413/422 or an ``error`` frame,
ProviderError -> 502/503, and never a crash."""

from __future__ import annotations

from collections.abc import Iterable


class TTSError(Exception):
    """Base of every speech error; ``code`` is a stable machine-readable name."""

    code = "tts_error"


class InvalidTextError(TTSError, ValueError):
    code = "invalid_text"


class TextTooLongError(InvalidTextError):
    code = "text_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"text is {length} characters; the limit is {limit}")
        self.length, self.limit = length, limit


class InvalidSpeedError(TTSError, ValueError):
    code = "invalid_speed"

    def __init__(self, speed: object, low: float, high: float) -> None:
        super().__init__(f"speed {speed!r} is out of range; allowed: {low:g} to {high:g}")
        self.speed, self.low, self.high = speed, low, high


class NotOneOfError(TTSError, ValueError):
    """A value outside a known set; ``allowed`` lists the valid ones."""

    what = "value"

    def __init__(self, value: str, allowed: Iterable[str]) -> None:
        self.value, self.allowed = value, sorted(set(allowed))
        super().__init__(
            f"unknown {self.what} {value!r}; valid {self.what}s: {', '.join(self.allowed)}"
        )


_NotOneOf = NotOneOfError  # the earlier private name, kept for existing imports


class UnknownVoiceError(NotOneOfError):
    code, what = "unknown_voice", "voice"


class UnknownLanguageError(NotOneOfError):
    code, what = "unknown_language", "language"


class UnsupportedFormatError(NotOneOfError):
    code, what = "unsupported_format", "format"


class ProviderError(TTSError):
    """A provider failed (network, auth, timeout, library error)."""

    code = "provider_error"

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class AllProvidersFailedError(ProviderError):
    code = "all_providers_failed"

    def __init__(self, failures: list[ProviderError]) -> None:
        detail = "; ".join(str(f) for f in failures) or "no provider configured"
        super().__init__("all", f"every provider failed ({detail})")
        self.failures = failures
