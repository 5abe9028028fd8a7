"""Audio streams during the soak: ``GET /api/get-audio`` cut mid-way, read whole, or
left behind by a ``/ws`` client that drops for good while its stream plays.

- cut: read a random number of bytes of a long text's stream, then hang up;
- whole: read a short text's stream to the end (it must be non-empty MP3);
- orphan: a ``/ws`` client asks for a long stream tied to it (``client_id``), drops
  after the first chunk and never comes back; the reader goes on slowly until the
  stream ends (it must end: played out, or cut when the session expires).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bench import rawws
from bench.soak.world import World

LONG = " ".join(f"Sentence {n} of a soak stream that is cut before its end." for n in range(12))
SHORT = "A short soak answer, read to the end."
KINDS = (("cut", 0.6), ("whole", 0.25), ("orphan", 0.15))
MP3_STARTS = (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3")


class AudioActor:
    def __init__(self, world: World, index: int) -> None:
        self.world = world
        self.rng = world.plan.rng(100_000 + index)

    async def run(self, start_after: float) -> None:
        world = self.world
        await world.nap(start_after)
        while not world.stopped:
            names, weights = zip(*KINDS, strict=True)
            kind = self.rng.choices(names, weights)[0]
            world.audio[f"{kind}: started"] += 1
            try:
                await getattr(self, kind)()
            except (httpx.HTTPError, OSError, ConnectionError, TimeoutError) as exc:
                world.audio[f"{kind}: failed ({type(exc).__name__})"] += 1
            await world.nap(self.rng.uniform(0.5, 2.0))

    def _params(self, text: str, **extra: Any) -> dict[str, Any]:
        return {"msg": f"{text} {self.rng.randrange(10**6)}", **extra}

    async def cut(self) -> None:
        limit = self.rng.randint(1, 40_000)
        got = 0
        async with self.world.http.stream("GET", "/api/get-audio", params=self._params(LONG)) as r:
            if not self._ok(r, "cut"):
                return
            async for chunk in r.aiter_raw():
                got += len(chunk)
                if got >= limit:
                    break
        self.world.audio["cut: cut mid-way" if got >= limit else "cut: ended before the cut"] += 1

    async def whole(self) -> None:
        response = await self.world.http.get("/api/get-audio", params=self._params(SHORT))
        if self._ok(response, "whole"):
            good = response.content.startswith(MP3_STARTS)
            self.world.audio["whole: read, MP3" if good else "whole: read, not MP3"] += 1

    async def orphan(self) -> None:
        ws = await rawws.connect(self.world.port, "native", _ignore)
        try:
            params = self._params(LONG, client_id=ws.ready.result()["client_id"])
            async with self.world.http.stream("GET", "/api/get-audio", params=params) as r:
                if not self._ok(r, "orphan"):
                    return
                ended = await self._read_slowly(r, ws)
        finally:
            ws.abort()
        self.world.audio["orphan: stream ended" if ended else "orphan: stream never ended"] += 1

    async def _read_slowly(self, response: httpx.Response, ws: rawws.WsClient) -> bool:
        """First chunk, then the /ws client drops; True if the stream ended in time."""
        window = self.world.plan.resume_window
        try:
            async with asyncio.timeout(window + 20.0):
                async for _ in response.aiter_raw(4096):
                    ws.abort()  # gone for good after the first chunk
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return False
        return True

    def _ok(self, response: httpx.Response, kind: str) -> bool:
        if response.status_code != 200:
            self.world.audio[f"{kind}: HTTP {response.status_code}"] += 1
            return False
        return True


def _ignore(*_: Any) -> None:
    pass
