"""HTTP client of the gantry API: base URL, token, and errors turned into messages.

The transport is injectable so unit tests run against ``httpx.MockTransport``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from gantry.cli import sse
from gantry.cli.errors import FAILED, USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:8000"
API = "/api/v1"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Streams may be quiet for long (the server pings every 15 s): no read timeout.
STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)

RETRY_DELAY = 0.5

Params = Mapping[str, str | int | bool | list[str] | None]


@dataclass
class Runtime:
    """What every command shares: where the server is (set by the global options)."""

    url: str = DEFAULT_URL
    transport: httpx.BaseTransport | None = None

    def client(self) -> GantryClient:
        return GantryClient(
            self.url, token=os.environ.get("GANTRY_TOKEN"), transport=self.transport
        )


class GantryClient:
    def __init__(
        self, url: str, token: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def __enter__(self) -> GantryClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retries: int = 0,
    ) -> Any:
        """The decoded JSON answer of ``/api/v1<path>``, or a :class:`CliError`.

        ``retries``: resend after a connection lost mid-request; only for
        requests the server dedupes (an ``Idempotency-Key``) or that are safe.
        """
        with self._transport_errors():
            for attempt in itertools.count():
                try:
                    response = self._http.request(
                        method, API + path, params=_clean(params), json=json, headers=headers
                    )
                    break
                except httpx.TransportError as exc:
                    # Refused: no server, nothing sent, no point in waiting for one.
                    if attempt >= retries or isinstance(exc, httpx.ConnectError):
                        raise
                    time.sleep(RETRY_DELAY * (attempt + 1))
        check(response)
        return response.json()

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        retries: int = 0,
    ) -> Any:
        return self.request("POST", path, json=json, headers=headers, retries=retries)

    def health(self) -> Any:
        with self._transport_errors():
            response = self._http.get("/healthz")
        check(response)
        return response.json()

    @contextmanager
    def stream(
        self, path: str, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[Iterator[sse.SseEvent]]:
        """Server-sent events of ``/api/v1<path>``; errors as for :meth:`request`."""
        with (
            self._transport_errors(),
            self._http.stream(
                "GET", API + path, params=_clean(params), headers=headers, timeout=STREAM_TIMEOUT
            ) as response,
        ):
            if response.is_error:
                response.read()
                check(response)
            yield sse.parse(response.iter_lines())

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError:
            raise CliError(
                f"cannot reach the gantry server at {self.url}: start it with `gantry serve` "
                "or set --url/GANTRY_URL",
                USAGE,
            ) from None
        except httpx.TimeoutException:
            raise CliError(
                f"the gantry server at {self.url} did not answer in time", USAGE
            ) from None
        except httpx.TransportError as exc:
            raise CliError(
                f"lost the connection to the gantry server at {self.url} "
                f"({exc or type(exc).__name__})",
                USAGE,
            ) from None


def _clean(params: Params | None) -> dict[str, Any] | None:
    # httpx would send None as an empty value; the API wants it absent.
    return {k: v for k, v in params.items() if v is not None} if params else None


def check(response: httpx.Response) -> None:
    """Raise a :class:`CliError` with the server's words for an error answer."""
    if not response.is_error:
        return
    status = response.status_code
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if status == 422 and isinstance(detail, list):
        raise CliError("\n".join(validation_lines(detail)), USAGE, status)
    if not isinstance(detail, str) or not detail:
        text = response.text.strip()[:200]
        detail = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
    if status in (401, 403) and "GANTRY_TOKEN" not in detail:
        detail += " (the CLI sends the token in GANTRY_TOKEN)"
    raise CliError(detail, USAGE if status == 422 else FAILED, status)


def validation_lines(errors: list[Any]) -> list[str]:
    """``options.walltime: ...`` for each of FastAPI's ``{loc, msg}`` items."""
    lines = []
    for item in errors:
        if not isinstance(item, dict):
            lines.append(str(item))
            continue
        loc = list(item.get("loc") or [])
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        where = ""
        for part in loc:
            where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return lines
