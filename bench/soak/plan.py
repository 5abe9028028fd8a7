"""Who does what, and when: every soak client's role and timings, drawn from one seed.

Each client gets its own ``random.Random`` (seed and index), so a run is repeatable in
what the clients do, if not in how the machine schedules them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Roles and their shares, the same on both transports:
# - steady: stays connected, asks when picked, leaves after its answers arrived;
# - dropper: asks, then drops its socket a few ms later (before or while the answer is
#   on its way); on /ws most come back and resume, the rest never return;
# - slow: stops reading for seconds at a time, then catches up;
# - never: never reads a byte after the greeting (asks once, cannot hear the answer).
ROLES = (("steady", 0.45), ("dropper", 0.25), ("slow", 0.2), ("never", 0.1))
RESUME_SHARE = 0.8  # droppers that come back and resume (/ws)
ABORT_SHARE = 0.3  # sessions that end with a reset instead of a close handshake


@dataclass(frozen=True)
class Plan:
    seconds: float  # how long jobs are asked
    resume_window: float  # the server's GENIE_WS_RESUME_WINDOW
    seed: int = 1

    def rng(self, index: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + index)

    def role(self, rng: random.Random) -> str:
        names, weights = zip(*ROLES, strict=True)
        return rng.choices(names, weights)[0]

    @property
    def session_scale(self) -> float:
        """Longest session: two minutes, or half the run when that is shorter."""
        return min(120.0, max(2.0, self.seconds / 2))

    def session_seconds(self, rng: random.Random) -> float:
        return rng.uniform(self.session_scale / 6, self.session_scale)

    def gap_seconds(self, rng: random.Random) -> float:
        """Offline between two sessions."""
        return rng.uniform(0.2, min(5.0, self.session_scale / 4))

    def drop_delay(self, rng: random.Random) -> float:
        """From sending the question to dropping the socket: mid-answer."""
        return rng.uniform(0.0, 0.03)

    def resume_delay(self, rng: random.Random) -> float:
        """Away before resuming; well inside the window, so the session is still kept."""
        return rng.uniform(0.1, max(0.2, min(5.0, self.resume_window / 3)))

    def slow_pause(self, rng: random.Random) -> float:
        """A slow reader's stall; shorter than Engine.IO's ping timeout (20 s)."""
        return rng.uniform(1.0, max(1.5, min(8.0, self.seconds / 10)))

    def slow_read(self, rng: random.Random) -> float:
        return rng.uniform(0.5, 3.0)

    def resumes(self, rng: random.Random) -> bool:
        return rng.random() < RESUME_SHARE

    def aborts(self, rng: random.Random) -> bool:
        return rng.random() < ABORT_SHARE
