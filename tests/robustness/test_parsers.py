"""The wire parsers' atheris targets, briefly (``python -m bench.robustness`` runs them
for a minute each), the harness catching a parser bug, and the contracts failing."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import ROOT
from bench.robustness import libfuzzer, parsers
from bench.robustness import parser_contracts as contracts
from bench.robustness.report import Section
from tests.robustness import broken_parser
from tts.sentences import split_sentences
from wire import frames, legacy

RUNS = 3000
BROKEN = "tests.robustness.broken_parser:ws_frames"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Section:
    """Every target for RUNS inputs, two subprocesses at a time."""
    artifacts = tmp_path_factory.mktemp("findings")
    return parsers.run(runs=RUNS, jobs=2, artifacts=artifacts, progress=lambda _: None)


@pytest.mark.parametrize("target", list(parsers.TARGETS))
def test_each_target_runs_and_finds_nothing(fuzzed: Section, target: str) -> None:
    run = fuzzed.figures["targets"][target]
    assert run["exit_code"] == 0 and run["findings"] == [], fuzzed.failures
    assert run["executions"] >= RUNS
    assert run["coverage"] > 0  # the kit's modules were instrumented
    assert [row[0] for row in fuzzed.rows] == list(parsers.TARGETS)


def test_the_harness_reports_a_parser_that_raises_with_its_input(tmp_path: Path) -> None:
    run, _ = libfuzzer.fuzz(BROKEN, seconds=None, runs=100_000, artifacts=tmp_path)
    assert run.exit_code != 0 and run.crashes == 1
    (finding,) = run.findings
    assert finding.error.startswith("AttributeError") and "careless_parse" in finding.traceback
    assert Path(finding.input_path).parent == tmp_path and finding.input_preview
    saved = Path(finding.input_path).read_bytes()
    with pytest.raises(AttributeError):  # the saved input is the one that breaks it
        broken_parser.careless_parse(contracts.as_text(saved))
    # The printed command replays it.
    argv = shlex.split(finding.reproduce(BROKEN))
    replay = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, timeout=60)
    assert replay.returncode != 0 and b"AttributeError" in replay.stdout + replay.stderr


# --- the contracts fail when a parser breaks its promise (in process, no fuzzer) ----------


def test_a_splitter_that_drops_a_character_breaks_the_contract() -> None:
    def lossy(text: str, *args: object) -> list[str]:
        return [segment.replace("!", "") for segment in split_sentences(text, *args)]

    contracts.check_sentences(split_sentences, "Hi! Go.", 250, None)
    with pytest.raises(contracts.ContractError, match="lost"):
        contracts.check_sentences(lossy, "Hi! Go.", 250, None)


def test_a_form_decoder_breaks_the_push_contract() -> None:
    # What the original Flask server did (request.args): '&' ends the question, '+' is
    # a space.
    def form_decoded(raw: bytes) -> str | None:
        from urllib.parse import parse_qs

        return parse_qs(raw.decode("latin-1")).get("question", [None])[0]

    contracts.check_push_query(legacy.parse_push_question, b"what is 2+2 & more?")
    with pytest.raises(contracts.ContractError, match="the page's"):
        contracts.check_push_query(form_decoded, b"what is 2+2 & more?")


def test_an_echoing_error_and_a_lone_surrogate_break_the_frame_contract() -> None:
    def echoing(text: str) -> frames.ClientFrame:
        raise frames.FrameError("unknown_type", f"unknown frame type {text!r}")

    def raw_json(text: str) -> frames.ClientFrame:
        return frames.Query(json.loads(text)["text"])

    contracts.check_ws_frame(frames, frames.parse_client_frame, '{"type":"query","text":"\\ud800"}')
    with pytest.raises(contracts.ContractError, match="error message of"):
        contracts.check_ws_frame(frames, echoing, "x" * 400)
    with pytest.raises(contracts.ContractError, match="not UTF-8"):
        contracts.check_ws_frame(frames, raw_json, '{"type":"query","text":"\\ud800"}')
