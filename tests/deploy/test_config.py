"""``python -m deploy haproxy``: the weights behind the split, the rendered config (which
the real ``haproxy -c`` must accept) and the command line's argument errors."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from config import Settings
from deploy.__main__ import main
from deploy.haproxy import MAX_WEIGHT, Endpoint, Timeouts, kind_of, render, weights
from tests.haproxy import require_haproxy

ROOT = Path(__file__).resolve().parents[2]


def share(pair: tuple[int, int], n_flask: int, n_fastapi: int) -> Fraction:
    flask, fastapi = pair
    return Fraction(n_fastapi * fastapi, n_flask * flask + n_fastapi * fastapi)


@pytest.mark.parametrize(
    ("percent", "n_flask", "n_fastapi", "expected"),
    [
        (0, 1, 1, (1, 0)),
        (100, 1, 1, (0, 1)),
        (50, 1, 1, (1, 1)),
        (10, 1, 1, (9, 1)),
        (1, 1, 1, (99, 1)),
        (50, 2, 1, (1, 2)),  # two Flask servers, one FastAPI: each FastAPI weighs double
        (10, 3, 1, (3, 1)),
        (12.5, 2, 3, (21, 2)),
        (0.1, 1, 1, (256, 1)),  # 999:1 is out of range: the closest there is, both on
        (99.9, 1, 1, (1, 256)),
        (0, 2, 0, (1, 0)),  # a Flask-only fleet
        (100, 0, 3, (0, 1)),  # FastAPI only: the migration done
    ],
)
def test_weights(percent: float, n_flask: int, n_fastapi: int, expected: tuple[int, int]) -> None:
    assert weights(percent, n_flask, n_fastapi) == expected


@pytest.mark.parametrize(
    ("percent", "n_flask", "n_fastapi"), [(3, 1, 1), (33.3, 1, 1), (7, 4, 3), (61.8, 2, 5)]
)
def test_weights_are_the_closest_split_integer_weights_allow(
    percent: float, n_flask: int, n_fastapi: int
) -> None:
    target = Fraction(str(percent)) / 100
    got = abs(share(weights(percent, n_flask, n_fastapi), n_flask, n_fastapi) - target)
    best = min(
        abs(n_fastapi * a / (n_flask * f + n_fastapi * a) - percent / 100)
        for f in range(1, MAX_WEIGHT + 1)
        for a in range(1, MAX_WEIGHT + 1)
    )
    assert float(got) <= best + 1e-12


@pytest.mark.parametrize(
    ("percent", "n_flask", "n_fastapi", "message"),
    [
        (-1, 1, 1, "0-100"),
        (100.5, 1, 1, "0-100"),
        (10, 1, 0, "no FastAPI server"),
        (90, 0, 1, "no Flask server"),
        (0, 0, 0, "no servers"),
    ],
)
def test_weights_refuse_what_cannot_be(
    percent: float, n_flask: int, n_fastapi: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        weights(percent, n_flask, n_fastapi)


def test_endpoints_and_server_names() -> None:
    assert Endpoint.parse("127.0.0.1:8000") == Endpoint("127.0.0.1", 8000)
    assert Endpoint.parse("genie-1.internal:80") == Endpoint("genie-1.internal", 80)
    assert str(Endpoint.parse("[::1]:8000")) == "::1:8000"
    for bad in ("8000", "host:", ":80", "host:0", "host:70000", "host:x", "::1:80", "a b:1"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)
    assert [kind_of(n) for n in ("flask-1", "fastapi-12", "flask", "web-1", "flask-0")] == [
        "flask", "fastapi", None, None, None,
    ]  # fmt: skip


def test_timeouts_stay_above_the_servers_heartbeats() -> None:
    for settings in (
        Settings(_env_file=None),
        Settings(_env_file=None, sio_ping_interval=100, sio_ping_timeout=50,
                 ws_heartbeat_interval=90, ws_heartbeat_timeout=200, ws_close_timeout=8),
    ):  # fmt: skip
        t = Timeouts.from_settings(settings)
        poll_hold = settings.sio_ping_interval + settings.sio_ping_timeout
        assert t.client > poll_hold and t.server > poll_hold  # a held long-poll survives
        assert t.tunnel >= 2 * max(poll_hold, settings.ws_heartbeat_timeout)
        assert t.fin >= settings.ws_close_timeout
    custom = Settings(_env_file=None, sio_ping_interval=100, sio_ping_timeout=50)
    text = render(listen=Endpoint("127.0.0.1", 80), flask=[Endpoint("127.0.0.1", 81)],
                  fastapi=[], fastapi_percent=0, admin_socket="/s", settings=custom)  # fmt: skip
    assert "timeout tunnel 300s" in text and "timeout server 165s" in text


def test_the_config_holds_every_server_in_one_sticky_health_checked_backend() -> None:
    text = render(
        listen=Endpoint("127.0.0.1", 8080),
        flask=[Endpoint("10.0.0.1", 7999), Endpoint("10.0.0.2", 7999)],
        fastapi=[Endpoint("10.0.0.3", 8000)],
        fastapi_percent=10,
        admin_socket="/run/genie/haproxy.sock",
        settings=Settings(_env_file=None),
    )
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("backend ") for line in lines) == 1
    assert [line for line in lines if line.startswith("server ")] == [
        "server flask-1 10.0.0.1:7999 cookie flask-1 weight 9",
        "server flask-2 10.0.0.2:7999 cookie flask-2 weight 9",
        "server fastapi-1 10.0.0.3:8000 cookie fastapi-1 weight 2",  # 2 / (9+9+2) = 10 %
    ]
    for directive in (
        "balance roundrobin",
        "cookie genie_server insert indirect nocache httponly",
        "option redispatch 1",
        "option httpchk GET /health",
        "http-check expect status 200",
        "default-server check inter 1s fall 2 rise 2",
        "stats socket /run/genie/haproxy.sock mode 600 level admin",
        "option forwardfor",
        "timeout tunnel 120s",
        "timeout client-fin 10s",
        "timeout http-request 10s",
    ):
        assert directive in lines, directive
    runs_as_root = ("daemon", "chroot ", "user ", "group ")
    assert not [line for line in lines if line.startswith(runs_as_root)]


def haproxy_check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_haproxy(), "-c", "-f", str(cfg)], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("flask", "fastapi", "percent"),
    [(["127.0.0.1:7999"], ["127.0.0.1:8000"], "10"),
     (["a.example:1", "[::1]:2"], ["localhost:3", "127.0.0.1:4", "127.0.0.1:5"], "37.5"),
     ([], ["127.0.0.1:8000"], "100")],
)  # fmt: skip
def test_haproxy_accepts_the_rendered_config(
    tmp_path: Path, flask: list[str], fastapi: list[str], percent: str
) -> None:
    cfg = tmp_path / "haproxy.cfg"
    args = ["haproxy", "--listen", "127.0.0.1:8080", "--fastapi-percent", percent]
    args += ["--admin-socket", str(tmp_path / "admin.sock"), "--output", str(cfg)]
    for endpoint in flask:
        args += ["--flask", endpoint]
    for endpoint in fastapi:
        args += ["--fastapi", endpoint]
    # a.example does not resolve: haproxy -c resolves at start; keep the check offline.
    assert main([a.replace("a.example", "127.0.0.1") for a in args]) == 0
    result = haproxy_check(cfg)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout
    assert "[WARNING]" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flask", "127.0.0.1:1", "--fastapi-percent", "101"], "must be 0-100"),
        (["--flask", "127.0.0.1:1", "--fastapi-percent", "ten"], "not a number"),
        (["--flask", "127.0.0.1", "--fastapi-percent", "0"], "expected HOST:PORT"),
        (["--flask", "127.0.0.1:99999", "--fastapi-percent", "0"], "port must be 1-65535"),
        (["--fastapi-percent", "0"], "at least one --flask or --fastapi"),
        (["--flask", "127.0.0.1:1", "--fastapi-percent", "5"], "no FastAPI server"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_error(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["haproxy", "--listen", "127.0.0.1:8080", "--admin-socket", "/tmp/x.sock"]
    with pytest.raises(SystemExit) as exit_:
        main([*base, *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_module_runs_and_prints_the_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy", "haproxy", "--listen", "127.0.0.1:8080",
         "--flask", "127.0.0.1:7999", "--fastapi", "127.0.0.1:8000",
         "--fastapi-percent", "50", "--admin-socket", "run/haproxy.sock"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "server fastapi-1 127.0.0.1:8000 cookie fastapi-1 weight 1" in result.stdout
    assert f"stats socket {ROOT / 'run/haproxy.sock'} mode 600" in result.stdout
    help_ = subprocess.run([sys.executable, "-m", "deploy", "--help"], cwd=ROOT,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert help_.returncode == 0 and "usage: python -m deploy" in help_.stdout
    assert "haproxy" in help_.stdout and "rollout" in help_.stdout


@pytest.mark.parametrize("command", ["haproxy", "rollout"])
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: python -m deploy {command}" in capsys.readouterr().out
