"""The local engine, opened once the first screen is drawn: every call waits for it."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncIterator, Awaitable, Callable

from gateway_daemon.core.api import Gateway


class OpeningGateway:
    """A Gateway whose opening (local mode: importing the engine, opening its store and key, ending the runs a
    `gateway` that died left running; ~50 ms) starts when `start` is called: the app does once its first screen
    is drawn.  Each call of the Gateway protocol waits until it is open, then is the open one's; an opening that
    failed fails every call with its error, and `start` raises it (the app ends and says it)."""

    def __init__(self, opener: Callable[[], Awaitable[Gateway]]):
        self._opener = opener
        self._opened: asyncio.Future[Gateway] | None = None
        self._starting = False

    def _future(self) -> asyncio.Future[Gateway]:
        if self._opened is None:
            self._opened = asyncio.get_running_loop().create_future()
        return self._opened

    async def start(self) -> None:
        """Open it (once: a second call waits for the first); its error, if it fails."""
        opened = self._future()
        if not self._starting:
            self._starting = True
            try:
                opened.set_result(await self._opener())
            except asyncio.CancelledError:
                opened.cancel()
                raise
            except Exception as exc:  # handed to every call waiting, and raised here
                opened.set_exception(exc)
        await asyncio.shield(opened)

    async def opened(self) -> Gateway:
        """The open gateway, once it is (this does not start the opening)."""
        return await asyncio.shield(self._future())

    @property
    def is_open(self) -> bool:
        opened = self._opened
        return opened is not None and opened.done() and not opened.cancelled() and opened.exception() is None

    async def close(self) -> None:
        if self.is_open:
            assert self._opened is not None
            await self._opened.result().close()

    def __getattr__(self, name: str) -> Any:
        declared = getattr(Gateway, name, None)
        if name.startswith("_") or declared is None or not callable(declared):
            raise AttributeError(name)
        if inspect.iscoroutinefunction(declared):
            async def call(*args: Any, **kwargs: Any) -> Any:
                return await getattr(await self.opened(), name)(*args, **kwargs)

            return call

        async def stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # watch, run_service, follow_run
            events = getattr(await self.opened(), name)(*args, **kwargs)
            try:
                async for event in events:
                    yield event
            finally:
                closing = getattr(events, "aclose", None)
                if closing is not None:
                    await closing()

        return stream
