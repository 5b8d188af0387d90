"""A small base for the fake servers: start on 127.0.0.1 (port 0 by default), stop, run alone."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, TypeVar

from aiohttp import web


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """A request a fake server received (tests assert on what the sidecar sent)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ServerBase:
    host: str = "127.0.0.1"
    port: int = 0
    refused: int = field(default=0, init=False)  # bodies answered with unreadable()
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def unknown_path(self, request: web.Request) -> web.Response | None:
        """The provider's own answer to a path (or method) it does not serve; None: aiohttp's 404."""
        return None

    def unreadable(self, message: str) -> web.Response:
        """The provider's answer to a body it cannot read: 400 in OpenAI's error format."""
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        return web.json_response(body, status=400)


    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "ServerBase":
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_refusing_unreadable(self)])
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def run_forever(self) -> None:
        """Serve until killed; prints the URL on the first line of stdout."""
        async def serve() -> None:
            await self.start()
            print(self.url, flush=True)
            await asyncio.Event().wait()

        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            sys.exit(0)


def _refusing_unreadable(server: ServerBase) -> Any:
    """Middleware: a real provider answers a body with a field of the wrong type with a 400, not a
    500. ``server.refused`` counts them: a test can tell such a 400 from a fake's answer. A path
    no route serves gets the provider's own 404 (:meth:`ServerBase.unknown_path`)."""
    @web.middleware
    async def refuse_unreadable(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            answer = server.unknown_path(request)
            if answer is None:
                raise
            return answer
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            server.refused += 1
            return server.unreadable(f"the request body could not be read: {type(exc).__name__}")

    return refuse_unreadable


class _Counted(Protocol):
    times: int | None


F = TypeVar("F", bound=_Counted)


def next_fault(faults: dict[str, list[F]], model: str) -> F | None:
    """The fault for the next request to ``model`` (or any model, "*"); one with ``times`` set is
    used that many times, then dropped."""
    for key in (model, "*"):
        queue = faults.get(key)
        if queue:
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
            return fault
    return None


def words_of(prompt: str, count: int) -> list[str]:
    """The first ``count`` words of ``prompt``, cycled when it has fewer (a long answer to a short
    prompt, for streams of hundreds of events)."""
    words = prompt.split()
    if count <= 12 or not words:
        return words[:count]
    return [words[i % len(words)] for i in range(count)]
