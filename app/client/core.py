"""The sans-IO core: every operation is written once, as a generator of commands.

An operation (``submit``, ``wait``, ``follow_logs``, ...) is a generator that
yields :class:`Send`, :class:`Open`, :class:`Read`, :class:`Close` and
:class:`Sleep` commands and gets their results back; a streaming one also
yields :class:`Emit` items for its caller. It builds requests and parses
answers but does no I/O: :class:`~gantry.client.sync.Client` runs the commands
with ``httpx.Client``, :class:`~gantry.client.aio.AsyncClient` with
``httpx.AsyncClient``. The :func:`operation` and :func:`stream_operation`
descriptors make each one a method of both, typed for each.
"""

from __future__ import annotations

import functools
import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncGenerator,
    Callable,
    Coroutine,
    Generator,
    Hashable,
    Mapping,
)
from dataclasses import dataclass, field
from typing import (
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    Self,
    TypeVar,
    cast,
    overload,
)

import httpx
from pydantic import TypeAdapter

from gantry.client.errors import ConnectionLost, from_response
from gantry.client.sse import SseDecoder, SseEvent

T = TypeVar("T")
P = ParamSpec("P")

DEFAULT_URL = "http://127.0.0.1:8000"
API = "/api/v1"
TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
#: Seconds before resending after a lost connection or a 503 without Retry-After.
RETRY_DELAY = 0.5


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request; ``path`` is under ``/api/v1`` unless ``root``.

    ``retries``: resend after a lost connection or a 503; only for requests
    that are safe or that the server dedupes (an ``Idempotency-Key``).
    ``read_timeout``: the client's ``timeout`` unless given; streams are quiet
    for long (the server pings every 15 s), so they pass ``None``, or what is
    left of a wait.
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    retries: int = 0
    root: bool = False
    read_timeout: float | Literal["client"] | None = "client"

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        # httpx would send None as an empty value; the API wants it absent.
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        timeout = http.timeout
        if self.read_timeout != "client":
            timeout = httpx.Timeout(timeout.write, connect=timeout.connect, read=self.read_timeout)
        return http.build_request(
            self.method,
            self.path if self.root else API + self.path,
            params=params or None,
            json=self.json,
            headers=self.headers,
            timeout=timeout,
        )


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send a request, read the whole answer: -> ``httpx.Response``."""

    request: Request


@dataclass(frozen=True, slots=True)
class Open:
    """Send a request and keep the answer open: -> :class:`Stream` (an error's body is read)."""

    request: Request
    lines: bool = True


@dataclass(slots=True)
class Stream:
    """An open answer and the transport's reader of it (lines or byte chunks)."""

    response: httpx.Response
    reader: Any
    sse: SseDecoder = field(default_factory=SseDecoder)


@dataclass(frozen=True, slots=True)
class Read:
    """The next line (or chunk) of a stream: -> ``str | bytes``, ``None`` at its end."""

    stream: Stream


@dataclass(frozen=True, slots=True)
class Close:
    stream: Stream


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Work:
    """CPU-bound work (parsing a NetCDF file): -> ``func()``, off the event loop if async."""

    func: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Emit(Generic[T]):
    """An item a streaming operation hands its caller."""

    item: T


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    value: T


Command = Send | Open | Read | Close | Sleep | Work
Flow = Generator[Command, Any, T]
StreamFlow = Generator[Command | Emit[T], Any, None]


def advance(
    flow: Generator[Any, Any, Any], reply: Any = None, error: BaseException | None = None
) -> Any:
    """The flow's next command, item or :class:`Done`, given the last command's outcome."""
    try:
        return flow.throw(error) if error is not None else flow.send(reply)
    except StopIteration as stop:
        return Done(stop.value)


# --- flows the operations are made of ----------------------------------------------------


@functools.cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def send(request: Request) -> Flow[httpx.Response]:
    """The answer of ``request``; an error answer raises its :class:`ApiError`."""
    for attempt in itertools.count():
        try:
            response: httpx.Response = yield Send(request)
        except ConnectionLost:
            if attempt >= request.retries:
                raise
            yield Sleep(RETRY_DELAY * (attempt + 1))
            continue
        if response.is_error:
            error = from_response(response)
            if response.status_code != 503 or attempt >= request.retries:
                raise error
            yield Sleep(getattr(error, "retry_after", None) or RETRY_DELAY * (attempt + 1))
            continue
        return response
    raise AssertionError("unreachable")


def call(request: Request, kind: type[T]) -> Flow[T]:
    """``request``'s answer parsed as ``kind`` (a model, or ``list[Model]``)."""
    response = yield from send(request)
    parse = adapter(cast(Hashable, kind))
    return cast(T, parse.validate_json(response.content))


def get(path: str, kind: type[T], params: Mapping[str, Any] | None = None) -> Flow[T]:
    return (yield from call(Request("GET", path, params, retries=2), kind))


def open_stream(request: Request, *, lines: bool = True) -> Flow[Stream]:
    stream: Stream = yield Open(request, lines)
    if stream.response.is_error:
        yield Close(stream)
        raise from_response(stream.response)
    return stream


def next_event(stream: Stream, expired: Callable[[], bool] | None = None) -> Flow[SseEvent | None]:
    """The stream's next server-sent event; ``None`` at its end or once ``expired()``."""
    while True:
        line: str | None = yield Read(stream)
        if expired is not None and expired():
            return None
        if line is None:
            return stream.sse.end()
        event = stream.sse.feed(line)
        if event is not None:
            return event


def collect(flow: StreamFlow[T]) -> Flow[list[T]]:
    """Every item a streaming flow emits, as one list."""
    items: list[T] = []
    reply: Any = None
    error: BaseException | None = None
    while True:
        step = advance(flow, reply, error)
        if isinstance(step, Done):
            return items
        if isinstance(step, Emit):
            items.append(step.item)
            reply, error = None, None
            continue
        try:
            reply, error = (yield step), None
        except Exception as exc:  # handed on to the inner flow, which may handle it
            reply, error = None, exc


# --- the transports' side -------------------------------------------------------------


class ClientBase:
    """What both clients share: where the server is and the token."""

    def __init__(self, url: str = DEFAULT_URL, **options: Any) -> None:
        self.url = url.rstrip("/")

    @staticmethod
    def session(
        url: str, token: str | None, headers: Mapping[str, str] | None, timeout: float
    ) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client``/``AsyncClient``."""
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        return {
            "base_url": url.rstrip("/"),
            "headers": {**sent, **(headers or {})},
            "timeout": httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
        }

    @classmethod
    def from_env(cls, **kwargs: Any) -> Self:
        """A client for ``GANTRY_URL`` (default: the local server) with ``GANTRY_TOKEN``."""
        kwargs.setdefault("token", os.environ.get("GANTRY_TOKEN") or None)
        return cls(os.environ.get("GANTRY_URL") or DEFAULT_URL, **kwargs)


class SyncRunner(ClientBase, ABC):
    @abstractmethod
    def _run(self, flow: Flow[T]) -> T: ...

    @abstractmethod
    def _iterate(self, flow: StreamFlow[T]) -> Generator[T, None, None]: ...


class AsyncRunner(ClientBase, ABC):
    @abstractmethod
    async def _run(self, flow: Flow[T]) -> T: ...

    @abstractmethod
    def _iterate(self, flow: StreamFlow[T]) -> AsyncGenerator[T, None]: ...


def _bind(obj: Any, flow: Callable[..., Any], drive: str) -> Any:
    """``flow`` as a method of ``obj``, run by its ``_run`` or ``_iterate``."""
    runner = getattr(obj, drive)

    @functools.wraps(flow)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return runner(flow(obj, *args, **kwargs))

    return bound


class operation(Generic[P, T]):  # lower case: used as a decorator
    """An operation: a method of :class:`Client` that returns ``T`` and of
    :class:`AsyncClient` that returns an awaitable of ``T``."""

    def __init__(self, flow: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self.flow = flow
        self.__doc__ = flow.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        return self if obj is None else _bind(obj, self.flow, "_run")


class stream_operation(Generic[P, T]):  # lower case: used as a decorator
    """A streaming operation: an iterator of ``T`` on :class:`Client`, an
    async iterator on :class:`AsyncClient` (close it early with ``aclose()``)."""

    def __init__(self, flow: Callable[Concatenate[Any, P], StreamFlow[T]]) -> None:
        self.flow = flow
        self.__doc__ = flow.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self, obj: SyncRunner, owner: type[Any]
    ) -> Callable[P, Generator[T, None, None]]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any]
    ) -> Callable[P, AsyncGenerator[T, None]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        return self if obj is None else _bind(obj, self.flow, "_iterate")
