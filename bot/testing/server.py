"""What both fakes share: their aiohttp application on a local port (0: a free one), the HTTP
client they call our server with, and `async with`."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any, Self

from aiohttp import ClientSession, web


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start `app` on (host, port); the runner (clean it up to stop) and the port it got."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    await web.SockSite(runner, sock).start()
    return runner, int(sock.getsockname()[1])


class LocalServer:
    """A fake served on (`host`, `port`): `start` it (or `async with` it), `close` it. A subclass
    sets `app`, `host` and `port`, and stops its own tasks in `close` before `stop_serving`."""

    app: web.Application
    host: str
    port: int
    _runner: web.AppRunner | None = None
    _client: ClientSession | None = None

    @property
    def serving(self) -> bool:
        return self._runner is not None

    async def start_serving(self, client: ClientSession) -> None:
        """Serve the app; `client` is the session webhooks are sent with."""
        self._client = client
        self._runner, self.port = await serve(self.app, self.host, self.port)

    async def stop_serving(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def start(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        await self.stop_serving()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
