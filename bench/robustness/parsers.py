"""Coverage-guided fuzzing (atheris, libFuzzer) of every wire parser.

    python -m bench.robustness.parsers TARGET [--seconds S | --runs N] [libFuzzer flags]
    python -m bench.robustness.parsers TARGET CRASH_FILE      # replay one saved input

Targets: ``ws_frames`` (``wire.frames.parse_client_frame``, ``/ws``), ``tts_frames``
(``wire.tts_frames.parse``, ``/ws/tts``), ``push_query`` (``wire.legacy.
parse_push_question``, the raw ``/push`` query) and ``sentences`` (``tts.sentences.
split_sentences``); ``module:factory`` runs any other target. Each asserts its parser's
contract (``bench.robustness.parser_contracts``), not only "no crash". The kit's
``wire`` and ``tts`` packages are imported instrumented, so libFuzzer follows their
branches. ``run()`` fuzzes each target in a subprocess of its own: a crash is reported
with its input, saved under ``bench/reports/``, and never stops the runner.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import REPORTS
from bench.robustness import parser_contracts as contracts
from bench.robustness.libfuzzer import Finding, FuzzRun, fuzz
from bench.robustness.report import Section

OneInput = Callable[[bytes], None]


@dataclass(frozen=True)
class Target:
    """A fuzz target: the parser it drives, how to build it, where to start from."""

    parser: str
    factory: Callable[[], OneInput]
    seeds: tuple[bytes, ...]
    tokens: tuple[bytes, ...] = ()
    max_len: int = 4096


def ws_frames() -> OneInput:
    from wire import frames

    def one_input(data: bytes) -> None:
        contracts.check_ws_frame(frames, frames.parse_client_frame, contracts.as_text(data))

    return one_input


def tts_frames() -> OneInput:
    from wire import tts_frames as frames

    def one_input(data: bytes) -> None:
        contracts.check_tts_frame(frames.parse, contracts.as_text(data))

    return one_input


def push_query() -> OneInput:
    from wire import legacy

    def one_input(data: bytes) -> None:
        contracts.check_push_query(legacy.parse_push_question, data)

    return one_input


def sentences() -> OneInput:
    from tts.sentences import split_sentences

    def one_input(data: bytes) -> None:
        if len(data) >= 2:
            contracts.check_sentences(split_sentences, *contracts.sentence_args(data))

    return one_input


JSON_TOKENS = (
    *(b"{", b"}", b"[", b"]", b":", b",", b'"', b"true", b"false", b"null"),
    *(b"NaN", b"Infinity", b"-1", b"1e999", b"0.25", b"4.0", b"[[[[[[[[", b"]]]]]]]]"),
    *(b"\\u", b"\\ud800", b"\\udc00", b"\\ud83d\\ude00"),  # escapes, lone surrogates
)
WS_WORDS = ("type", "query", "ping", "pong", "resume", "auth", "text", "voice", "speed",
            "client_id", "last_seq", "token")  # fmt: skip
WS_SEEDS = (
    b'{"type":"query","text":"what time is it?","voice":"en-us","speed":1.5}',
    b'{"type":"resume","client_id":"c1","last_seq":7}',
    *(b'{"type":"ping"}', b'{"type":"pong"}', b'{"type":"auth","token":"t"}'),
    *(b"[1, 2]", b"{not json"),
)
TTS_WORDS = ("text", "lang", "ping", "cancel", "type", "last_chunk", "binary")
TTS_SEEDS = (
    *(b'{"text":"Hello there.","lang":"en"}', b'{"ping":true}', b'{"cancel":true}'),
    *(b'{"type":"resume","last_chunk":2,"binary":true}', b'"text"'),
)
PUSH_SEEDS = (
    *(b"what is 2+2 & more?", b"caf\xc3\xa9 au lait", b"a=b&c", b"50%25 #tag"),
    *(b"question=x", b"x+y", b" trailing \t\n"),
)
PUSH_TOKENS = (b"question=", b"&question=", b"%20", b"+", b"&", b"=", b"#", b"%", b"%C3%A9")
# Sentence inputs start with two bytes: max_chars - 1, first_max_chars + 128 (0: none).
SENTENCE_SEEDS = (
    b"\xf9\x00Mr. Smith met Dr. Jones. It costs 3.5 dollars, e.g. less!",
    b'\x31\xa0Wait... what?! "Stop." Then left.\nNext line; more',
    b"\x09\x00" + b"word " * 40,
    b"\x04\x85J. R. R. Tolkien - a writer: yes",
)
SENTENCE_TOKENS = (
    *(b". ", b"...", "\u2026".encode(), b"?!", b"; ", b", ", b" - ", "\u2014".encode()),
    *("\u201d".encode(), b"\n", b"\r\n", "\u2028".encode(), b"e.g. ", b"U.S. ", b"3.5"),
)


def _quoted(words: Sequence[str]) -> tuple[bytes, ...]:
    return tuple(f'"{word}"'.encode() for word in words)


TARGETS: dict[str, Target] = {
    "ws_frames": Target(
        "wire.frames.parse_client_frame",
        ws_frames,
        WS_SEEDS,
        (*JSON_TOKENS, *_quoted(WS_WORDS)),
    ),
    "tts_frames": Target(
        "wire.tts_frames.parse", tts_frames, TTS_SEEDS, (*JSON_TOKENS, *_quoted(TTS_WORDS))
    ),
    "push_query": Target("wire.legacy.parse_push_question", push_query, PUSH_SEEDS, PUSH_TOKENS),
    "sentences": Target(
        "tts.sentences.split_sentences", sentences, SENTENCE_SEEDS, SENTENCE_TOKENS, max_len=8192
    ),
}


def resolve(name: str) -> Target:
    """A registered target, or ``module:factory`` (no seeds) for one defined elsewhere."""
    if name in TARGETS:
        return TARGETS[name]
    module, sep, attr = name.partition(":")
    if not sep:
        raise SystemExit(f"unknown target {name!r}; valid: {', '.join(TARGETS)} or module:factory")
    return Target(name, getattr(importlib.import_module(module), attr), seeds=())


def dict_entry(token: bytes) -> str:
    """One libFuzzer dictionary line: the token quoted, anything unusual as \\xNN."""
    body = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in token)
    return f'"{body}"'


def prepare(target: Target, workdir: Path) -> list[str]:
    """Seed corpus and dictionary in ``workdir``; the libFuzzer flags that use them."""
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(target.seeds):
        (corpus / f"seed-{index}").write_bytes(seed)
    flags = [f"-max_len={target.max_len}"]
    if target.tokens:
        tokens = workdir / "tokens.dict"
        tokens.write_text("\n".join(map(dict_entry, target.tokens)) + "\n", encoding="ascii")
        flags.append(f"-dict={tokens}")
    return [*flags, str(corpus)]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Our flags; the rest (``-max_len=N``, a crash file to replay) in ``libfuzzer``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.robustness.parsers",
        description="Fuzz one wire parser; other arguments go to libFuzzer.",
    )
    parser.add_argument("target", help=f"{', '.join(TARGETS)} or module:factory")
    parser.add_argument("--seconds", type=float, help="fuzz this long (libFuzzer -max_total_time)")
    parser.add_argument("--runs", type=int, help="fuzz this many inputs (libFuzzer -runs)")
    parser.add_argument("--workdir", type=Path, help="write the seed corpus and dictionary here")
    args, args.libfuzzer = parser.parse_known_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    import atheris

    args = parse_args(sys.argv[1:] if argv is None else argv)
    target, libfuzzer = resolve(args.target), args.libfuzzer
    if args.seconds is not None:
        libfuzzer.append(f"-max_total_time={max(1, round(args.seconds))}")
    if args.runs is not None:
        libfuzzer.append(f"-runs={args.runs}")
    if args.workdir is not None:
        libfuzzer += prepare(target, args.workdir)
    # Compare hooks let libFuzzer learn the strings and patterns the parsers look for.
    atheris.enabled_hooks.add("str")
    atheris.enabled_hooks.add("RegEx")
    with atheris.instrument_imports(include=["wire", "tts"]):
        one_input = target.factory()
    atheris.Setup([sys.argv[0], *libfuzzer], one_input)
    atheris.Fuzz()


# --- the bench part ---------------------------------------------------------------------

COLUMNS = ["target", "parser", "executions", "coverage edges", "features", "crashes",
           "slow inputs", "seconds"]  # fmt: skip
NOTES = [
    "Each target runs in its own subprocess under libFuzzer (atheris 3.0.0) with the kit's "
    "`wire` and `tts` packages instrumented; *coverage edges* is libFuzzer's final `cov:`.",
    "A target asserts its parser's contract (bench/robustness/parser_contracts.py): a "
    "valid frame or the documented error with a short message, nothing lost, no lone "
    "surrogate passed on. libFuzzer stops a target at its first finding.",
]
# What this part (and the review of its contracts) found, how it was fixed, what guards it.
FIXED = (
    "ws_frames, tts_frames (fuzzer, < 5 s): a lone surrogate escape (`\\ud800`) passed "
    "the parsers; the /ws answer was never spoken, /ws/tts never answered. Now bad JSON "
    "(`wire/jsontext.py`). Guarded by tests/fastapi_app/test_wire.py::"
    "test_lone_surrogates_and_deep_nesting_are_bad_json, tests/fastapi_app/test_ws_protocol.py::"
    "test_deep_nesting_and_lone_surrogates_get_an_error_and_the_socket_stays, "
    "tests/tts_endpoints/test_ws_tts.py::test_deep_nesting_and_lone_surrogates_are_invalid_json.",
    "ws_frames (fuzzer, 7-29 s): an unknown `type` was echoed whole in the error message. "
    "Now cut to 60 characters. Guarded by tests/fastapi_app/test_wire.py::"
    "test_an_unknown_type_is_not_echoed_back_whole.",
    "ws_frames, tts_frames (contract review): `[[[...` about 1,000 deep raised RecursionError "
    "and closed the socket. Now bad JSON; guarded by the same tests as the surrogates.",
    "sentences (contract review): a long run of `.!?;` without a space took quadratic time "
    '(`"." * 20000 + "x"`: 18 s). Now linear; guarded by tests/tts/test_sentences.py::'
    "test_a_long_run_of_marks_without_a_space_is_split_in_linear_time.",
)


def run(
    seconds: float = 60,
    targets: Sequence[str] = tuple(TARGETS),
    *,
    runs: int | None = None,
    jobs: int = 1,
    artifacts: Path = REPORTS,
    progress: Callable[[str], None] = print,
) -> Section:
    """Fuzz each target for ``seconds`` (or ``runs`` inputs), ``jobs`` at a time."""
    notes = [*NOTES, *(f"Found and fixed: {fixed}" for fixed in FIXED)]
    section = Section("Parsers: coverage-guided fuzzing (atheris)", COLUMNS, notes=notes)

    def one(name: str) -> FuzzRun:
        result, _ = fuzz(name, seconds=None if runs else seconds, runs=runs, artifacts=artifacts)
        progress(f"parsers {name}: {result.executions} executions, cov {result.coverage}, "
                 f"{len(result.findings)} findings in {result.seconds:.1f} s")  # fmt: skip
        for finding in result.findings:
            progress(f"  {finding.kind}: {finding.error}; reproduce: {finding.reproduce(name)}")
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, targets))
    for result in results:
        _add(section, result)
    section.figures["executions"] = sum(r.executions for r in results)
    section.figures["limit"] = {"runs": runs} if runs else {"seconds": seconds}
    return section


def _add(section: Section, result: FuzzRun) -> None:
    name = result.target
    parser = resolve(name).parser
    section.rows.append([name, f"`{parser}`", str(result.executions), str(result.coverage),
                         str(result.features), str(result.crashes), str(result.slow_inputs),
                         f"{result.seconds:.1f}"])  # fmt: skip
    section.figures.setdefault("targets", {})[name] = asdict(result)
    section.failures += [_failure(name, parser, finding) for finding in result.findings]


def _failure(name: str, parser: str, finding: Finding) -> str:
    """One line to act on (what, the reproduction command), then input and traceback."""
    return "\n".join([
        f"{name} ({parser}): {finding.kind}: {finding.error or 'no Python exception'}; "
        f"reproduce: `{finding.reproduce(name)}`",
        f"input: {finding.input_preview or '(not saved)'}",
        *finding.traceback.splitlines()[1:],
    ])  # fmt: skip


if __name__ == "__main__":
    main()
