"""HTTP: schemathesis against ``/openapi.json`` of every FastAPI stage, every operation.

    python -m bench.robustness.http [--scale 200] [--stages skeletal,mvp,full] [--seed N]

Each stage runs as a real server (``python -m fastapi_app --stage S``) on loopback; all
three serve ``/openapi.json``. The schema is loaded from that URL, and every operation in
it gets ``scale`` positive and ``scale`` negative cases (fewer when its inputs have fewer
distinct values: an operation without parameters has one), each sent over HTTP and
judged by schemathesis' checks: no 5xx, status, content type, headers and body as
documented, invalid input refused with a 4xx, an answer within ``REQUEST_TIMEOUT`` (else
a hang). Then schemathesis' state machine follows the schema's OpenAPI links (scene
create -> generate -> chunk). A failure counts once per kind and operation, with the
curl command that shows it.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from bench.common import ServerProcess, free_port, python
from bench.robustness.report import Section, write_part

STAGES = ("skeletal", "mvp", "full")
REQUEST_TIMEOUT = 30.0  # seconds without an answer: a hang
# Rate limits off: at fuzzing speed every speech request after the first burst would be
# a 429, and the code behind it would go unexercised. (429 itself is documented.)
FUZZ_SETTINGS: dict[str, Any] = {
    "rate_limit_audio": 0,
    "rate_limit_queries": 0,
    "rate_limit_speech": 0,
    "log_level": "warning",
}
# A clear refusal of invalid input: the defaults plus 413, the kit's answer to a text
# over the length limit (wire.legacy_http). 5xx is not_a_server_error's to report.
NEGATIVE_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]  # fmt: skip
CONFIG = {
    "checks": {
        "negative_data_rejection": {"expected-statuses": NEGATIVE_STATUSES},
        # Off: the schema documents types and bounds, not what only the running server
        # knows (its voices, GENIE_TTS_MAX_CHARS, a text of only whitespace): such
        # "valid" cases get a documented 4xx.
        "positive_data_acceptance": {"enabled": False},
    }
}
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
STATEFUL = "links (state machine)"
STEPS = 6  # calls per state-machine scenario
COLUMNS = ["stage", "operation", "cases", "failures (distinct)", "time (s)"]


@dataclass
class Tally:
    """Cases sent to one target and the distinct failures they found (kind -> example)."""

    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    links: int = 0  # state machine: calls whose inputs came from a link

    def record(self, kind: str, example: str) -> None:
        self.failures.setdefault(kind, example)


def no_speech(response: schemathesis.Response) -> bool:
    """The skeletal stage's deliberate, documented 503 on speech routes ("no_speech")."""
    if response.status_code != 503:
        return False
    with contextlib.suppress(ValueError):
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else {}
        return isinstance(error, dict) and error.get("code") == "no_speech"
    return False


def send(case: schemathesis.Case, tally: Tally) -> schemathesis.Response | None:
    """Send ``case``, judge the answer, record what fails; None when none came back."""
    tally.cases += 1
    try:
        response = case.call(timeout=REQUEST_TIMEOUT)
    except requests.Timeout:
        tally.record(f"hang: no answer within {REQUEST_TIMEOUT:g} s", case.as_curl_command())
        return None
    except requests.ConnectionError as exc:
        tally.record(f"connection failed: {type(exc).__name__}", case.as_curl_command())
        return None
    try:
        case.validate_response(response)
    except FailureGroup as group:
        curl = case.as_curl_command()
        for failure in group.exceptions:
            if isinstance(failure, ServerError) and no_speech(response):
                continue
            kind = f"{failure.code} {failure.title} (HTTP {response.status_code})"
            tally.record(kind, f"{curl}\n{failure.message}".strip())
    return response


def fuzz_settings(examples: int, **extra: Any) -> hypothesis.settings:
    # No shrinking: a failure is recorded and generation goes on (distinct kinds, not
    # one minimal example); no example database: runs do not depend on earlier ones.
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
        **extra,
    )


def seeded(test: Callable[[], None], seed: int | None) -> Callable[[], None]:
    return hypothesis.seed(seed)(test) if seed is not None else test


def negatable(operation: Any) -> bool:
    """Whether negative mode can break any input of ``operation``: schemathesis' own
    rule (``_draw_negated_locations``). Without it, hypothesis spends ~460 rejected draws
    (1-2 s) finding out that a path of plain strings has no invalid value."""
    from schemathesis.specs.openapi import _hypothesis as rules

    def has(location: ParameterLocation) -> bool:
        return bool(operation.get_parameter_set(location).schema["properties"])

    body = operation.body is not None and any(item.is_negatable for item in operation.body.items)
    return (
        body
        or has(ParameterLocation.QUERY)
        or (has(ParameterLocation.PATH) and rules.can_negate_path_parameters(operation))
        or any(has(where) and rules.can_negate_headers(operation, where)
               for where in (ParameterLocation.HEADER, ParameterLocation.COOKIE))
    )  # fmt: skip


def fuzz_operation(operation: Any, scale: int, seed: int | None) -> Tally:
    """``scale`` positive and ``scale`` negative cases for one operation."""
    tally = Tally()
    started = time.perf_counter()
    for mode in MODES if negatable(operation) else MODES[:1]:

        @fuzz_settings(scale)
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def explore(case: schemathesis.Case) -> None:
            send(case, tally)

        # Unsatisfiable: negative mode, and no input of the operation can be made invalid.
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            seeded(explore, seed)()
    tally.seconds = time.perf_counter() - started
    return tally


def fuzz_links(schema: Any, scale: int, seed: int | None) -> Tally:
    """schemathesis' state machine over the schema's links: ``scale // 4`` scenarios of
    up to ``STEPS`` calls, each call after the first following a link when it can."""
    tally = Tally()
    started = time.perf_counter()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def step(self, input: Any) -> Any:
            if input.transition is not None and input.is_applied:
                tally.links += 1
            return super().step(input)

        def call(self, case: schemathesis.Case, **kwargs: Any) -> schemathesis.Response:
            response = send(case, tally)
            if response is None:  # recorded; nothing to follow links from
                raise hypothesis.errors.UnsatisfiedAssumption
            return response

        def validate_response(self, *args: Any, **kwargs: Any) -> None:
            pass  # send() judged it and recorded the failures

    machine = hypothesis.seed(seed)(Machine) if seed is not None else Machine
    machine.run(settings=fuzz_settings(max(scale // 4, 3), stateful_step_count=STEPS))
    tally.seconds = time.perf_counter() - started
    return tally


Serve = Callable[[str], AbstractContextManager[str]]  # stage -> URL of a running server


@contextlib.contextmanager
def stage_server(stage: str) -> Iterator[str]:
    """``python -m fastapi_app --stage S`` with ``FUZZ_SETTINGS`` on a free port."""
    port = free_port()
    argv = [python(), "-m", "fastapi_app", "--stage", stage, "--port", str(port)]
    env = {f"GENIE_{name.upper()}": str(value) for name, value in FUZZ_SETTINGS.items()}
    with ServerProcess(argv, port, core=None, env=env):
        yield f"http://127.0.0.1:{port}"


def fuzz_stage(
    stage: str, scale: int, seed: int | None, progress: Callable[[str], None], serve: Serve
) -> dict[str, Tally]:
    """One row per operation of the stage's schema, then one for its links."""
    results: dict[str, Tally] = {}
    with serve(stage) as url:
        config = schemathesis.Config.from_dict(CONFIG)
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                error = str(result.err())
                results[f"unusable: {error[:60]}"] = Tally(failures={"invalid schema": error})
                continue
            operation = result.ok()
            tally = results[operation.label] = fuzz_operation(operation, scale, seed)
            progress(f"{stage} {operation.label}: {tally.cases} cases, "
                     f"{len(tally.failures)} failures, {tally.seconds:.1f} s")  # fmt: skip
        tally = results[STATEFUL] = fuzz_links(schema, scale, seed)
        progress(f"{stage} {STATEFUL}: {tally.cases} calls ({tally.links} via links), "
                 f"{len(tally.failures)} failures")  # fmt: skip
    return results


def run(
    scale: int = 200,
    stages: Sequence[str] = STAGES,
    seed: int | None = None,
    progress: Callable[[str], None] = print,
    serve: Serve = stage_server,
) -> Section:
    """Every operation of every stage in ``stages``: ``scale`` positive and ``scale``
    negative cases each, then the links. ``seed`` makes the cases reproducible;
    ``serve`` starts a stage's server (a subprocess unless a caller has its own)."""
    section = Section("HTTP: schemathesis against /openapi.json", COLUMNS)
    section.notes += [
        f"{scale} positive + {scale} negative cases per operation (fewer when an "
        f"operation's inputs have fewer distinct values); links: {max(scale // 4, 3)} "
        f"scenarios of up to {STEPS} calls; seed {seed if seed is not None else 'random'}",
        "rate limits off (GENIE_RATE_LIMIT_AUDIO/_QUERIES/_SPEECH=0): at fuzzing speed "
        "nearly every speech case would be a 429; auth off (dev default)",
        "tolerated: the skeletal stage's documented 503 'no_speech' on speech routes",
        "positive_data_acceptance off: valid-typed input the server refuses with a "
        "documented 4xx (unknown voice, blank text) is not a failure",
    ]
    for stage in stages:
        started = time.perf_counter()
        results = fuzz_stage(stage, scale, seed, progress, serve)
        for label, tally in results.items():
            section.rows.append([stage, label, str(tally.cases), str(len(tally.failures)),
                                 f"{tally.seconds:.1f}"])  # fmt: skip
            section.failures += [f"{stage} {label}: {kind}\n{example}"
                                 for kind, example in tally.failures.items()]  # fmt: skip
        section.figures[stage] = {
            "operations": sum(label != STATEFUL for label in results),
            "cases": sum(t.cases for t in results.values()),
            "link_calls": results[STATEFUL].cases,
            "links_followed": results[STATEFUL].links,
            "failures": sum(len(t.failures) for t in results.values()),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return section


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.robustness.http", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=200, help="cases per operation and mode")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--seed", type=int, default=None, help="reproducible cases")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    section = run(args.scale, stages, args.seed)
    path = write_part("http", section)
    print(f"{len(section.failures)} failures; report: {path}")


if __name__ == "__main__":
    main()
