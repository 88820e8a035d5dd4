"""The channel between the server and a driver process: length-prefixed JSON frames.

Each frame is a 4-byte big-endian length and that many bytes of one UTF-8
JSON object with an ``op`` field. JSON only, never pickle: a frame can hold
nothing but plain data, so what a client sent (a task's params, an attr
value) cannot run code on either side. A frame that is not such an object is
refused with a reason; one longer than :data:`MAX_FRAME` cannot be skipped
safely and ends the channel.

Messages that are ready together travel as one ``batch`` frame
(``{"op": "batch", "messages": [...]}``): one write, one wakeup and one JSON
parse for many replies, which is what 1,000 drains a second cost otherwise.
The receiver sees the messages one by one, in order, as if sent alone.
"""

from __future__ import annotations

import json
import struct
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

HEADER = struct.Struct(">I")
#: The largest frame either side reads (a task_data reply of a very busy component fits).
MAX_FRAME = 64 * 1024 * 1024


class ProtocolError(ValueError):
    """A frame is not a JSON object with an ``op``; the message says what it was."""


class FrameTooLarge(ProtocolError):
    """A frame's header announces more than :data:`MAX_FRAME` bytes: the channel is unusable."""


class ChannelClosed(ConnectionError):
    """The other side went away (or its frame was cut off)."""


def _default(value: Any) -> Any:
    # numpy scalars and arrays, and whatever else a driver hands back: plain data or text.
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), default=_default).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a {message.get('op')!r} frame of {len(body)} bytes is too large")
    return HEADER.pack(len(body)) + body


def encode_many(messages: Sequence[Mapping[str, Any]]) -> bytes:
    """One frame for all of ``messages`` (a ``batch`` frame unless there is one)."""
    if len(messages) == 1:
        return encode(messages[0])
    return encode({"op": "batch", "messages": messages})


def decode(body: bytes) -> dict[str, Any]:
    """One frame's body as a message; :class:`ProtocolError` if it is not one."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        head = body[:16]
        raise ProtocolError(f"frame of {len(body)} bytes is not JSON (starts {head!r})") from None
    return _check(message)


def unbatch(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``batch`` message's messages, each checked; any other message alone."""
    if message["op"] != "batch":
        return [message]
    inner = message.get("messages")
    if not isinstance(inner, list):
        raise ProtocolError("a batch frame needs a list of messages")
    messages = [_check(each) for each in inner]
    if any(each["op"] == "batch" for each in messages):
        raise ProtocolError("a batch frame cannot hold another batch")
    return messages


def _check(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError(f"frame is not a JSON object with an 'op': {str(message)[:80]}")
    return message


class Channel:
    """Frames over one byte stream; sends from many tasks, receives from one."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self._lock = anyio.Lock()
        self._received: deque[dict[str, Any]] = deque()

    async def send(self, message: Mapping[str, Any]) -> None:
        await self._write(encode(message))

    async def send_many(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """``messages`` in order, as one frame."""
        if not messages:
            return
        try:
            data = encode_many(messages)
        except ProtocolError:  # too large together: each alone
            if len(messages) == 1:
                raise
            for message in messages:
                await self.send(message)
            return
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        try:
            async with self._lock:
                await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ChannelClosed(f"the channel is closed: {exc!r}") from None

    async def receive(self) -> dict[str, Any]:
        """The next message; :class:`ProtocolError` for a bad one (the channel stays usable).

        A bad batch is refused whole: none of its messages is delivered.
        """
        while not self._received:  # an empty batch delivers nothing
            self._received.extend(unbatch(decode(await self.receive_frame())))
        return self._received.popleft()

    async def receive_frame(self) -> bytes:
        try:
            (size,) = HEADER.unpack(await self._reader.receive_exactly(HEADER.size))
            if size > MAX_FRAME:
                raise FrameTooLarge(f"frame header announces {size} bytes (at most {MAX_FRAME})")
            return await self._reader.receive_exactly(size)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as exc:
            raise ChannelClosed(f"the channel closed: {exc!r}") from None

    async def aclose(self) -> None:
        await self.stream.aclose()
