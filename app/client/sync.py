"""The blocking client: the core's commands run on ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from contextlib import ExitStack, closing
from types import TracebackType
from typing import Any, TypeVar

import httpx

from gantry.client.core import (
    DEFAULT_URL,
    TIMEOUT,
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
    SyncRunner,
    Work,
    advance,
)
from gantry.client.errors import GantryError, transport_error
from gantry.client.instruments import InstrumentOperations
from gantry.client.jobs import JobOperations

T = TypeVar("T")
#: What ``transport=`` takes (``httpx.MockTransport`` in tests).
Transport = httpx.BaseTransport


class Client(JobOperations, InstrumentOperations, SyncRunner):
    """A gantry server's API, blocking: ``with Client(url, token=...) as gantry: ...``.

    ``timeout``: seconds an answer may take (streams wait as long as their job
    runs). ``transport``: an ``httpx.BaseTransport`` (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url)
        self._http = httpx.Client(**self.session(url, token, headers, timeout), transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, flow: Flow[T]) -> T:
        result: list[T] = []
        for _ in self._drive(flow, result):
            raise AssertionError("an operation emitted an item")
        return result[0]

    def _iterate(self, flow: StreamFlow[T]) -> Generator[T, None, None]:
        return self._drive(flow, [])

    def _drive(self, flow: Any, result: list[Any]) -> Generator[Any, None, None]:
        with ExitStack() as streams, closing(flow):
            step = advance(flow)
            while not isinstance(step, Done):
                if isinstance(step, Emit):
                    yield step.item
                    step = advance(flow)
                    continue
                try:
                    reply = self._do(step, streams)
                except GantryError as exc:
                    step = advance(flow, error=exc)
                else:
                    step = advance(flow, reply)
            result.append(step.value)

    def _do(self, command: Command, streams: ExitStack) -> Any:
        try:
            match command:
                case Send(request):
                    return self._http.send(request.build(self._http))
                case Open(request, lines):
                    response = self._http.send(request.build(self._http), stream=True)
                    streams.callback(response.close)
                    if response.is_error:
                        response.read()
                    reader = response.iter_lines() if lines else response.iter_bytes()
                    return Stream(response, reader)
                case Read(stream):
                    return next(stream.reader, None)
                case Close(stream):
                    stream.response.close()
                    return None
                case Work(func):
                    return func()
                case Sleep(seconds):
                    time.sleep(seconds)
                    return None
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from exc
        raise AssertionError(f"unknown command {command!r}")
