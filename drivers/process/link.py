"""The server's end of the channel to one driver process: calls by id, and what comes back.

Calls run concurrently: each has an id, and its reply wakes only its caller.
A caller that gives up (its time bound) tells the process to cancel the call.
Task changes go to ``on_task``. When the channel ends, every call still
waiting gets a failed Reply with the reason, never an exception.

Drains (``task_data``) leave at most one frame per :data:`COALESCE`: each
component's drain runs on its own timer, so 50 components drained every
50 ms would be 1,000 frames a second each way; coalesced, they are about
100, and the process answers each batch with one frame too. A drain with
none before it in the window leaves at once, so a lone job's first samples
are not held back. Any other call takes the drains waiting with it, so the
order of calls is kept.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from gantry.drivers.interface_2_0 import Reply, TaskInfo
from gantry.drivers.process.codec import decode_data, decode_info, plain
from gantry.drivers.process.wire import Channel, ChannelClosed, FrameTooLarge, ProtocolError

log = logging.getLogger(__name__)

#: Seconds a cancel message may take to go out after its caller gave up.
CANCEL_SEND = 1.0
#: Seconds a drain may wait for others to leave with it, and the calls that may wait.
COALESCE = 0.01
DEFERRED = frozenset({"task_data"})


class StartFailed(Exception):
    """The process did not come up: its driver could not be made, or it died first."""


@dataclass(slots=True, eq=False)
class _Waiter:
    method: str
    done: anyio.Event = field(default_factory=anyio.Event)
    reply: Reply | None = None


class Link:
    def __init__(self, channel: Channel, label: str, on_task: Callable[[TaskInfo], None]) -> None:
        self.channel = channel
        self.label = label
        self.on_task = on_task
        #: why the channel is unusable (the supervisor's words); set once
        self.closed: str | None = None
        #: set once the reader stopped (end of stream or a frame it cannot skip)
        self.ended = anyio.Event()
        self.end_reason = "its channel closed"
        #: the error the driver stopped with, if it said so before exiting
        self.last_words: str | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiter] = {}
        self._pongs: dict[int, anyio.Event] = {}
        self._hello = anyio.Event()
        self._hello_reply: dict[str, Any] = {}
        #: deferred calls not sent yet, and the flusher's wakeup
        self._outgoing: list[dict[str, Any]] = []
        self._queued = anyio.Event()
        self._drained_at = -COALESCE  # when drains last left (anyio's clock)

    # -- what the proxy asks -----------------------------------------------------

    async def hello(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send the first frame; the ``ready`` answer, or StartFailed with the reason."""
        await self._send({"op": "hello", **message})
        await self._hello.wait()  # the reader's end sets it too
        reply = self._hello_reply
        if reply.get("op") == "ready":
            return reply
        raise StartFailed(str(reply.get("error") or self.end_reason))

    async def call(self, method: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Reply:
        if self.closed is not None:
            return Reply(success=False, msg=self.closed)
        ident = next(self._ids)
        waiter = self._waiting[ident] = _Waiter(method)
        message = {"op": "call", "id": ident, "method": method, "args": plain(list(args))}
        if kwargs:
            message["kwargs"] = plain(kwargs)
        try:
            if method not in DEFERRED:
                await self._send(message)
            elif self._outgoing or anyio.current_time() - self._drained_at < COALESCE:
                self._outgoing.append(message)
                self._queued.set()
            else:
                self._drained_at = anyio.current_time()
                await self._send(message)
            await waiter.done.wait()
        except anyio.get_cancelled_exc_class():
            if waiter.reply is None and self.closed is None and not self._unqueue(message):
                with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_SEND):
                    await self._send({"op": "cancel", "id": ident})
            raise
        except ChannelClosed:
            pass
        finally:
            self._waiting.pop(ident, None)
        return waiter.reply or Reply(success=False, msg=self.closed or "no reply")

    async def ping(self) -> None:
        """Returns once the process's loop answered (the caller bounds the wait)."""
        ident = next(self._ids)
        pong = self._pongs[ident] = anyio.Event()
        try:
            await self._send({"op": "ping", "id": ident})
            await pong.wait()
        finally:
            self._pongs.pop(ident, None)

    def close(self, reason: str) -> None:
        """No more calls; every waiting one fails with ``reason``.

        The reader does not call this when the stream ends: the supervisor
        does, once it knows why (the process's exit says more than EOF).
        """
        if self.closed is None:
            self.closed = reason
        for waiter in self._waiting.values():
            if waiter.reply is None:
                waiter.reply = Reply(success=False, msg=reason)
                waiter.done.set()
        self._hello.set()

    async def _send(self, message: dict[str, Any] | None = None) -> None:
        """``message`` after the deferred calls (all in one frame); those alone if None."""
        if self.closed is not None:
            raise ChannelClosed(self.closed)
        batch, self._outgoing = self._outgoing, []
        if message is not None:
            batch.append(message)
        await self.channel.send_many(batch)

    def _unqueue(self, message: dict[str, Any]) -> bool:
        """Take back a deferred call not sent yet; False if it went out."""
        for index, queued in enumerate(self._outgoing):
            if queued is message:
                del self._outgoing[index]
                return True
        return False

    async def _flush_deferred(self) -> None:
        while True:
            await self._queued.wait()
            await anyio.sleep_until(self._drained_at + COALESCE)
            self._queued = anyio.Event()
            if self._outgoing and self.closed is None:
                self._drained_at = anyio.current_time()
                with contextlib.suppress(ChannelClosed):  # the supervisor says why
                    await self._send()

    # -- the reader ------------------------------------------------------------------

    async def serve(self) -> None:
        """Read frames (and send deferred calls) until the channel ends."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._flush_deferred)
            await self._read()
            tg.cancel_scope.cancel()

    async def _read(self) -> None:
        try:
            while True:
                try:
                    message = await self.channel.receive()
                except ProtocolError as exc:
                    log.warning("%s sent a bad frame: %s", self.label, exc)
                    if isinstance(exc, FrameTooLarge):
                        self.end_reason = f"it sent a frame that cannot be read: {exc}"
                        return
                    continue
                self._dispatch(message)
        except ChannelClosed:
            pass
        finally:
            self.ended.set()
            self._hello.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "reply":
            self._answer(message)
        elif op == "task":
            try:
                info = decode_info(message["info"])
            except Exception:
                log.exception("%s sent a task change gantry cannot read", self.label)
                return
            self.on_task(info)
        elif op == "pong":
            pong = self._pongs.get(message.get("id"))  # type: ignore[arg-type]
            if pong is not None:
                pong.set()
        elif op in ("ready", "failed"):
            self._hello_reply = message
            self._hello.set()
        elif op == "died":
            self.last_words = str(message.get("error"))
        elif op == "refused":
            self._refused(message)
        else:
            log.warning("%s sent an unknown op %r", self.label, op)

    def _answer(self, message: dict[str, Any]) -> None:
        waiter = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiter is None:  # its caller gave up
            return
        try:
            data = decode_data(waiter.method, message.get("data"))
            reply = Reply(
                success=bool(message.get("success")), msg=str(message.get("msg")), data=data
            )
        except Exception as exc:
            log.exception("%s answered %s with data gantry cannot read", self.label, waiter.method)
            reply = Reply(
                success=False, msg=f"{self.label} answered {waiter.method} unreadably: {exc}"
            )
        waiter.reply = reply
        waiter.done.set()

    def _refused(self, message: dict[str, Any]) -> None:
        error = f"{self.label} refused a message: {message.get('error')}"
        log.warning("%s", error)
        waiter = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiter is not None:
            waiter.reply = Reply(success=False, msg=error)
            waiter.done.set()
