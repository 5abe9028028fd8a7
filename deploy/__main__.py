"""``python -m deploy haproxy|rollout``: render haproxy.cfg; move the split at run time."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy import haproxy, rollout


def _endpoint(text: str) -> haproxy.Endpoint:
    try:
        return haproxy.Endpoint.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 0-100, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m deploy",
        description="HAProxy in front of a mixed Flask/FastAPI Genie fleet.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cfg = commands.add_parser(
        "haproxy",
        help="print or write haproxy.cfg for the fleet",
        description="Render haproxy.cfg: one backend with every server, sticky by the "
        "genie_server cookie, health-checked on /health, weights for the FastAPI share.",
    )
    cfg.add_argument("--listen", type=_endpoint, required=True, metavar="HOST:PORT")
    cfg.add_argument("--flask", type=_endpoint, action="append", default=[],
                     metavar="HOST:PORT", help="a Flask server (repeat for more)")  # fmt: skip
    cfg.add_argument("--fastapi", type=_endpoint, action="append", default=[],
                     metavar="HOST:PORT", help="a FastAPI server (repeat for more)")  # fmt: skip
    cfg.add_argument("--fastapi-percent", type=_percent, required=True, metavar="P",
                     help="share of new browsers sent to FastAPI, 0-100")  # fmt: skip
    cfg.add_argument("--admin-socket", type=Path, required=True, metavar="PATH",
                     help="UNIX socket of HAProxy's runtime API (for `rollout`)")  # fmt: skip
    cfg.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    cfg.set_defaults(subparser=cfg)

    move = commands.add_parser(
        "rollout",
        help="change the Flask/FastAPI split of a running HAProxy (no reload)",
        description="Set every Genie server's weight and state through HAProxy's runtime "
        "API. Browsers keep their server (cookie) unless it is drained or down.",
    )
    move.add_argument("--admin-socket", type=Path, required=True, metavar="PATH")
    what = move.add_mutually_exclusive_group(required=True)
    what.add_argument("--fastapi-percent", type=_percent, metavar="P",
                      help="FastAPI's share of new browsers; every server ready")  # fmt: skip
    what.add_argument("--kill-switch", action="store_true",
                      help="every new browser to Flask now (= --fastapi-percent 0)")  # fmt: skip
    what.add_argument("--drain", choices=haproxy.KINDS,
                      help="put this kind in maintenance: its browsers move to the other "
                      "kind as they reconnect (open WebSockets are not cut)")  # fmt: skip
    what.add_argument("--status", action="store_true", help="show the servers and the split")
    return root


def _haproxy(args: argparse.Namespace) -> int:
    if not args.flask and not args.fastapi:
        args.subparser.error("give at least one --flask or --fastapi server")
    try:
        text = haproxy.render(
            listen=args.listen,
            flask=args.flask,
            fastapi=args.fastapi,
            fastapi_percent=args.fastapi_percent,
            admin_socket=args.admin_socket.absolute(),
        )
    except ValueError as exc:
        args.subparser.error(str(exc))  # exits 2, like every other argument error
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _rollout(args: argparse.Namespace) -> int:
    api = rollout.RuntimeApi(args.admin_socket)
    if args.status:
        print(rollout.status_text(rollout.servers(api)))
        return 0
    if args.kill_switch:
        target = rollout.Target.kill_switch()
    elif args.drain:
        target = rollout.Target.drain(args.drain)
    else:
        target = rollout.Target(args.fastapi_percent)
    commands, fleet = rollout.apply(api, target)
    for command in commands:
        print(command)
    print(rollout.status_text(fleet))
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "haproxy":
        return _haproxy(args)
    try:
        return _rollout(args)
    except rollout.RolloutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
