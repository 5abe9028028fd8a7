"""``deploy.rollout`` without HAProxy: reading its answers, the commands each move sends
(the whole target state, in an order that never leaves nobody to serve), the status."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from deploy.__main__ import main
from deploy.rollout import RolloutError, RuntimeApi, Server, Target, plan, servers, status_text

STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port"
)
# As HAProxy 2.6 answers: flask-1 UP, flask-2 in maintenance, fastapi-1 DOWN, and a
# server that is not Genie's (ignored).
SERVERS_STATE = f"""1
{STATE_HEADER}
3 genie 1 flask-1 127.0.0.1 2 0 9 9 0 15 3 3 6 0 0 0 - 52493 - 0 0 - - 0
3 genie 2 flask-2 127.0.0.1 0 1 9 9 0 15 3 3 6 0 0 0 - 52494 - 0 0 - - 0
3 genie 3 fastapi-1 127.0.0.1 0 0 1 1 0 1 0 2 6 0 0 0 - 38663 - 0 0 - - 0
4 other 1 web-1 127.0.0.1 2 0 1 1 0 1 0 2 6 0 0 0 - 80 - 0 0 - - 0

"""
SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,status,weight,
genie,flask-1,0,0,7,9,UP,9,
genie,flask-2,0,0,0,3,MAINT,9,
genie,fastapi-1,0,0,2,2,DOWN,1,
other,web-1,0,0,1,1,UP,1,

"""


class FakeApi(RuntimeApi):
    def __init__(self, state: str = SERVERS_STATE, stat: str = SHOW_STAT) -> None:
        super().__init__("/nowhere")
        self.answers = {"show servers state": state, "show stat -1 4 -1": stat}
        self.sent: list[str] = []

    def run(self, command: str) -> str:
        self.sent.append(command)
        return self.answers.get(command, "\n")


def test_servers_are_read_from_show_servers_state_and_show_stat() -> None:
    fleet = servers(FakeApi())
    assert [(s.name, s.kind, s.state, s.weight, s.sessions) for s in fleet] == [
        ("flask-1", "flask", "UP", 9, 7),
        ("flask-2", "flask", "MAINT", 9, 0),
        ("fastapi-1", "fastapi", "DOWN", 1, 2),
    ]


def test_a_config_without_genie_servers_is_an_error() -> None:
    state = (
        f"1\n{STATE_HEADER}\n4 other 1 web-1 127.0.0.1 2 0 1 1 0 1 0 2 6 0 0 0 - 80 - 0 0 - - 0\n"
    )
    with pytest.raises(RolloutError, match="no Genie servers"):
        servers(FakeApi(state=state))
    with pytest.raises(RolloutError, match="unexpected answer"):
        servers(FakeApi(state="Permission denied\n"))


FLEET = [
    Server("genie", "flask-1", "flask", 2, 0, 1),
    Server("genie", "flask-2", "flask", 2, 0, 1),
    Server("genie", "fastapi-1", "fastapi", 2, 1, 1),  # left in maintenance earlier
]


def test_a_percent_sets_every_weight_and_readies_every_server() -> None:
    assert plan(FLEET, Target(20)) == [
        "set server genie/flask-1 weight 2",
        "set server genie/flask-2 weight 2",
        "set server genie/fastapi-1 weight 1",  # 1 / (2+2+1) = 20 %
        "set server genie/flask-1 state ready",
        "set server genie/flask-2 state ready",
        "set server genie/fastapi-1 state ready",
    ]
    assert plan(FLEET, Target.kill_switch()) == plan(FLEET, Target(0))
    assert "set server genie/fastapi-1 weight 0" in plan(FLEET, Target(0))


def test_a_drain_opens_the_other_kind_before_it_puts_this_one_in_maintenance() -> None:
    commands = plan(FLEET, Target.drain("flask"))
    assert commands[-2:] == [
        "set server genie/flask-1 state maint",
        "set server genie/flask-2 state maint",
    ]
    assert commands.index("set server genie/fastapi-1 state ready") < len(commands) - 2
    assert "set server genie/fastapi-1 weight 1" in commands
    assert plan(FLEET, Target.drain("fastapi"))[-1] == "set server genie/fastapi-1 state maint"


def test_a_move_with_nowhere_to_go_is_refused() -> None:
    flask_only = FLEET[:2]
    with pytest.raises(RolloutError, match="no FastAPI server"):
        plan(flask_only, Target.drain("flask"))
    with pytest.raises(RolloutError, match="no FastAPI server"):
        plan(flask_only, Target(10))


def test_status_shows_each_server_and_the_share_that_takes_new_browsers() -> None:
    text = status_text(servers(FakeApi()))
    assert text.splitlines()[:4] == [
        "server     kind     state  weight  sessions",
        "flask-1    flask    UP     9       7",
        "flask-2    flask    MAINT  9       0",
        "fastapi-1  fastapi  DOWN   1       2",
    ]
    assert text.splitlines()[-1] == "new browsers to FastAPI: 0 %"  # fastapi-1 is down
    up = [
        Server("genie", "flask-1", "flask", 2, 0, 9),
        Server("genie", "fastapi-1", "fastapi", 2, 0, 1),
    ]
    assert status_text(up).endswith("new browsers to FastAPI: 10 %")
    assert "nobody takes" in status_text([Server("genie", "flask-1", "flask", 0, 0, 1)])


def test_a_refused_command_is_an_error() -> None:
    api = FakeApi()
    api.answers["set server genie/flask-1 weight 999"] = "Absolute weight can only be ...\n"
    with pytest.raises(RolloutError, match="refused 'set server genie/flask-1 weight 999'"):
        api.command("set server genie/flask-1 weight 999")


def test_a_missing_or_dead_socket_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="hap-") as directory:
        missing = Path(directory) / "missing.sock"
        assert main(["rollout", "--admin-socket", str(missing), "--status"]) == 1
        assert "error: no HAProxy admin socket at" in capsys.readouterr().err
        stale = Path(directory) / "stale.sock"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(stale))  # a socket file nobody listens on: what a dead haproxy leaves
            assert main(["rollout", "--admin-socket", str(stale), "--kill-switch"]) == 1
        assert "error: HAProxy refused" in capsys.readouterr().err
