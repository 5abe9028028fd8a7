"""Soak: 1,000 churning clients, steady jobs and cut audio streams for minutes, then
check that nothing was lost and nothing leaked.

    python -m bench.soak                          # 10 minutes, 1,000 clients, 2 questions/s
    python -m bench.soak --minutes 1 --clients 200
    python -m bench.soak --minutes 0.25 --clients 40 --resume-window 3 --out /tmp/soak.md

One FastAPI server process (``--server-core``) and this load generator
(``--client-core``). Half the clients speak ``/ws``, half Socket.IO (raw Engine.IO);
each has a seeded role (``bench.soak.plan``): steady askers, droppers that drop
mid-answer and (on ``/ws``) resume, slow readers, clients that never read; all of them
come and go in sessions. Questions are asked at a steady rate by clients picked at
random; a few HTTP audio streams run at once, most cut mid-way.

Pass criteria (``bench.soak.verdict``): every accepted job ends in exactly one terminal
state; no question of the soak refused; every asker still connected hears its answer;
RSS after the warm-up grows < 10 MB; open fds and asyncio tasks come back to the
baseline after the clients leave; every audio stream ends; no error in the server log
that a user did not cause. Exit status 1 when one fails.

Writes ``bench/reports/soak.md``, ``.json`` and the server's ``.log`` (``--out``).
"""

from __future__ import annotations

from bench.soak.cli import main, parse_args

__all__ = ["main", "parse_args"]
