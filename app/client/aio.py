"""The asyncio client: the core's commands run on ``httpx.AsyncClient``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from gantry.client.core import (
    DEFAULT_URL,
    TIMEOUT,
    AsyncRunner,
    Close,
    Command,
    Done,
    Emit,
    Flow,
    Open,
    Read,
    Send,
    Sleep,
    Stream,
    StreamFlow,
    Work,
    advance,
)
from gantry.client.errors import GantryError, transport_error
from gantry.client.instruments import InstrumentOperations
from gantry.client.jobs import JobOperations

T = TypeVar("T")


class AsyncClient(JobOperations, InstrumentOperations, AsyncRunner):
    """A gantry server's API for asyncio (or trio, through anyio):
    ``async with AsyncClient(url, token=...) as gantry: await gantry.submit(...)``.

    The same operations as :class:`~gantry.client.Client`; each returns an
    awaitable, and the streaming ones async iterators.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url)
        session = self.session(url, token, headers, timeout)
        self._http = httpx.AsyncClient(**session, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, flow: Flow[T]) -> T:
        result: list[T] = []
        async for _ in self._drive(flow, result):
            raise AssertionError("an operation emitted an item")
        return result[0]

    def _iterate(self, flow: StreamFlow[T]) -> AsyncGenerator[T, None]:
        return self._drive(flow, [])

    async def _drive(self, flow: Any, result: list[Any]) -> AsyncGenerator[Any, None]:
        async with AsyncExitStack() as streams:
            streams.callback(flow.close)
            step = advance(flow)
            while not isinstance(step, Done):
                if isinstance(step, Emit):
                    yield step.item
                    step = advance(flow)
                    continue
                try:
                    reply = await self._do(step, streams)
                except GantryError as exc:
                    step = advance(flow, error=exc)
                else:
                    step = advance(flow, reply)
            result.append(step.value)

    async def _do(self, command: Command, streams: AsyncExitStack) -> Any:
        try:
            match command:
                case Send(request):
                    return await self._http.send(request.build(self._http))
                case Open(request, lines):
                    response = await self._http.send(request.build(self._http), stream=True)
                    streams.push_async_callback(response.aclose)
                    if response.is_error:
                        await response.aread()
                    reader = response.aiter_lines() if lines else response.aiter_bytes()
                    return Stream(response, reader)
                case Read(stream):
                    return await anext(stream.reader, None)
                case Close(stream):
                    await stream.response.aclose()
                    return None
                case Work(func):
                    return await anyio.to_thread.run_sync(func)
                case Sleep(seconds):
                    await anyio.sleep(seconds)
                    return None
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from exc
        raise AssertionError(f"unknown command {command!r}")
