"""A driver process: ``python -m gantry.drivers.process.worker FD``.

The server starts one per driver with one end of a socket pair as ``FD``
and the driver's log file as stderr. The first frame (``hello``) names the
driver class, its settings and the logging configuration; the process builds
the driver, runs it (``driver.run``) and answers ``ready``, then serves
calls concurrently until the channel closes. A call can be cancelled by its
id. Task changes go back as ``task`` frames, in order with the replies.

If the driver itself stops with an error the process says so (``died``) and
exits; the server restarts it. faulthandler writes the stacks of a crash
(or of a SIGABRT, which the server sends a process that stopped answering)
to the log.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import logging.config
import math
import os
import socket
import sys
from typing import Any

import anyio
from anyio.abc import SocketStream, TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from gantry.drivers.interface_2_0 import ModelInterface, Reply, TaskInfo, TaskState
from gantry.drivers.interface_2_0.device import describe
from gantry.drivers.process.codec import CALLS, encode_data, encode_info, unplain
from gantry.drivers.process.spec import extend_path, load_spec
from gantry.drivers.process.wire import Channel, ChannelClosed, FrameTooLarge, ProtocolError

log = logging.getLogger("gantry.drivers.process")

#: Exit codes the server tells apart from a crash.
EXIT_START_FAILED = 3
EXIT_DRIVER_FAILED = 4
#: How ModelDevice words a task whose worker was cancelled, and how long such
#: a change is held back (see Worker.on_task_change).
INTERRUPTED = "was interrupted: the driver stopped"
HOLD_INTERRUPTED = 1.0
#: Messages sent in one frame at most (a frame stays far below MAX_FRAME).
MAX_BATCH = 256

Message = dict[str, Any]


class Worker:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.driver: ModelInterface | None = None
        self.scopes: dict[int, anyio.CancelScope] = {}
        self._group: TaskGroup | None = None
        out: tuple[MemoryObjectSendStream[Message], MemoryObjectReceiveStream[Message]]
        out = anyio.create_memory_object_stream(math.inf)
        # One queue for replies and task changes: the server reads them in the order they
        # happened, so a submit's reply comes before that task's first change.
        self.outbox, self._sending = out

    def post(self, message: Message) -> None:
        self.outbox.send_nowait(message)

    def on_task_change(self, info: TaskInfo) -> None:
        group = self._group
        if group is not None and info.state is TaskState.FAILED and info.msg.endswith(INTERRUPTED):
            # The task's worker was cancelled: most likely the driver is stopping with an
            # error, and the server then fails the task itself with that error, which says
            # more. So this is said only if the process is still serving a moment later.
            group.start_soon(self._post_later, {"op": "task", "info": encode_info(info)})
            return
        self.post({"op": "task", "info": encode_info(info)})

    async def _post_later(self, message: Message) -> None:
        await anyio.sleep(HOLD_INTERRUPTED)
        self.post(message)

    async def _send_all(self) -> None:
        # Everything queued by the time the sender runs goes as one frame: the replies
        # to a batch of drains finish in one loop iteration and leave together.
        async for message in self._sending:
            batch = [message]
            with contextlib.suppress(anyio.WouldBlock):
                while len(batch) < MAX_BATCH:
                    batch.append(self._sending.receive_nowait())
            await self.channel.send_many(batch)

    async def serve(self, hello: Message) -> int:
        name = str(hello.get("driver"))
        try:
            extend_path(hello.get("path") or ())
            cls = load_spec(hello.get("spec") or {})
            self.driver = cls(hello.get("settings") or {}, on_task_change=self.on_task_change)
        except Exception as exc:  # third-party import or constructor
            log.exception("driver %s could not be created", name)
            await self.channel.send({"op": "failed", "error": describe(exc)})
            return EXIT_START_FAILED
        driver = self.driver
        try:
            async with anyio.create_task_group() as tg:
                self._group = tg
                tg.start_soon(self._send_all)
                await tg.start(driver.run)
                self.post({"op": "ready", "pid": os.getpid(), "version": driver.version})
                log.info("driver %s is serving (pid %d)", name, os.getpid())
                await self._receive(tg)
                tg.cancel_scope.cancel()
        except Exception as exc:
            log.exception("driver %s stopped with an error", name)
            bounded = anyio.move_on_after(1)
            with anyio.CancelScope(shield=True), bounded, contextlib.suppress(ChannelClosed):
                await self.channel.send({"op": "died", "error": describe(_leaf(exc))})
            return EXIT_DRIVER_FAILED
        log.info("driver %s stopped: the server closed the channel", name)
        return 0

    async def _receive(self, tg: TaskGroup) -> None:
        while True:
            try:
                message = await self.channel.receive()
            except ChannelClosed:
                return
            except ProtocolError as exc:
                log.warning("refused a frame: %s", exc)
                self.post({"op": "refused", "id": None, "error": str(exc)})
                if isinstance(exc, FrameTooLarge):  # the stream cannot be resynced
                    return
                continue
            op = message["op"]
            if op == "ping":
                self.post({"op": "pong", "id": message.get("id")})
            elif op == "cancel":
                scope = self.scopes.get(message.get("id"))  # type: ignore[arg-type]
                if scope is not None:
                    scope.cancel()
            elif op == "call" and self._valid_call(message):
                scope = self.scopes[message["id"]] = anyio.CancelScope()
                tg.start_soon(self._call, message, scope)
            elif op != "call":
                self._refuse(message, f"unknown op {op!r}")

    def _valid_call(self, message: Message) -> bool:
        call, args, kwargs = message.get("method"), message.get("args"), message.get("kwargs")
        if not isinstance(message.get("id"), int) or isinstance(message.get("id"), bool):
            problem = "a call needs an integer id"
        elif call not in CALLS:
            problem = f"{call!r} is not a call of the driver contract"
        elif not isinstance(args, list) or not isinstance(kwargs, dict | None):
            problem = "args must be a list and kwargs an object"
        else:
            return True
        self._refuse(message, problem)
        return False

    def _refuse(self, message: Message, problem: str) -> None:
        log.warning("refused a message: %s", problem)
        ident = message.get("id")
        self.post(
            {"op": "refused", "id": ident if isinstance(ident, int) else None, "error": problem}
        )

    async def _call(self, message: Message, scope: anyio.CancelScope) -> None:
        ident, method = message["id"], message["method"]
        assert self.driver is not None
        reply: Reply | None = None
        try:
            with scope:
                args, kwargs = unplain(message["args"]), unplain(message.get("kwargs") or {})
                try:
                    reply = await getattr(self.driver, method)(*args, **kwargs)
                except Exception as exc:  # @replies catches the driver's; this, bad arguments
                    reply = Reply(success=False, msg=f"{method} failed: {describe(exc)}")
        finally:
            self.scopes.pop(ident, None)
        if reply is None:  # cancelled: the server stopped waiting
            return
        try:
            data = encode_data(method, reply.data)
        except Exception as exc:
            log.exception("the reply of %s cannot be sent", method)
            reply, data = Reply(success=False, msg=f"{method}: data not sendable: {exc}"), None
        self.post(
            {"op": "reply", "id": ident, "success": reply.success, "msg": reply.msg, "data": data}
        )


def _leaf(exc: BaseException) -> BaseException:
    """The one exception a task group wrapped, so the reason names it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Tag(logging.Filter):
    """Adds the driver's name to every record (a field of the JSON log lines)."""

    def __init__(self, driver: str) -> None:
        super().__init__()
        self.driver = driver

    def filter(self, record: logging.LogRecord) -> bool:
        record.driver = self.driver
        return True


def configure_logging(config: Any) -> None:
    if isinstance(config, dict):
        try:
            logging.config.dictConfig(config)
            return
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            print(f"driver process: logging configuration refused: {exc}", file=sys.stderr)
    logging.basicConfig(level=logging.INFO)


async def main(fd: int) -> int:
    stream = await SocketStream.from_socket(socket.socket(fileno=fd))
    channel = Channel(stream)
    try:
        hello = await channel.receive()
    except (ChannelClosed, ProtocolError) as exc:
        print(f"driver process: no usable hello from the server: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    configure_logging(hello.get("logging"))
    try:
        return await Worker(channel).serve(hello)
    finally:
        await channel.aclose()


def run(argv: list[str]) -> int:
    faulthandler.enable()  # stderr is the driver's log file
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m gantry.drivers.process.worker FD", file=sys.stderr)
        return 2
    options: Message = {}
    try:
        import uvloop  # noqa: F401  # the server's loop too, when installed

        options["use_uvloop"] = True
    except ImportError:
        pass
    return anyio.run(main, int(argv[0]), backend_options=options)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
