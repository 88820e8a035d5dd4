"""The driver channel's data: every call's Reply data comes back as the same objects;
frames that are not JSON messages are refused."""

from __future__ import annotations

import json
import pickle
import socket

import anyio
import numpy as np
import pytest
from anyio.abc import SocketStream

from gantry.drivers.interface_2_0 import Attr, Sample, Task, TaskInfo, TaskState
from gantry.drivers.process.codec import decode_data, encode_data, plain, unplain
from gantry.drivers.process.wire import (
    HEADER,
    MAX_FRAME,
    Channel,
    FrameTooLarge,
    ProtocolError,
    decode,
    encode,
    encode_many,
)


def through(call: str, data: object) -> object:
    """Encoded on the driver's side, sent as JSON, decoded on the server's."""
    wire = json.loads(encode({"op": "reply", "data": encode_data(call, data)})[HEADER.size :])
    return decode_data(call, wire["data"])


def test_samples_keep_values_units_and_share_one_units_map() -> None:
    units = {"val": "s"}
    samples = [Sample(1.5, {"val": np.float64(2.5), "n": 3}, units, "t1") for _ in range(3)]
    back = through("task_data", samples)
    assert isinstance(back, list) and len(back) == 3
    assert back[0] == Sample(1.5, {"val": 2.5, "n": 3}, {"val": "s"}, "t1")
    assert back[0].units is back[2].units
    assert through("cmp_last_data", samples[0]) == back[0]


def test_attrs_capabilities_and_task_info_come_back_as_themselves() -> None:
    attrs = {
        "mode": Attr(type=str, rw=True, options=frozenset({"up", "down"})),
        "delay": Attr(type=float, rw=True, units="s", minimum=0, maximum=10),
    }
    assert through("cmp_attrs", attrs) == attrs
    assert through("cmp_register", {"count", "random"}) == {"count", "random"}
    task = Task(component_role="c", technique_name="count", max_duration=1, sampling_interval=0.1)
    info = TaskInfo(
        id="x", address="a", channel="1", task=task, state=TaskState.RUNNING, submitted_at=1.0
    )
    assert through("task_submit", info) == info


def test_other_values_are_plain_with_sets_and_quantities_tagged() -> None:
    from gantry.drivers.quantity import ureg

    value = {"q": ureg().Quantity(2.0, "ms"), "s": {1, 2}, "a": np.arange(3), "t": (1, "x")}
    back = unplain(json.loads(json.dumps(plain(value))))
    assert back["q"] == ureg().Quantity(2.0, "ms") and back["s"] == {1, 2}
    assert back["a"] == [0, 1, 2] and back["t"] == [1, "x"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (pickle.dumps({"op": "call"}), "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b"[1, 2]", "not a JSON object with an 'op'"),
        (b'{"id": 1}', "not a JSON object with an 'op'"),
    ],
)
def test_a_frame_that_is_not_a_json_message_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        decode(body)


async def test_a_frame_longer_than_the_limit_is_refused_before_it_is_read() -> None:
    ours, theirs = socket.socketpair()
    channel = Channel(await SocketStream.from_socket(ours))
    other = await SocketStream.from_socket(theirs)
    try:
        await other.send(encode({"op": "ping", "id": 1}) + HEADER.pack(MAX_FRAME + 1))
        assert await channel.receive() == {"op": "ping", "id": 1}
        with anyio.fail_after(5), pytest.raises(FrameTooLarge):
            await channel.receive()
    finally:
        await channel.aclose()
        await other.aclose()


async def test_messages_sent_together_arrive_one_by_one_in_order() -> None:
    ours, theirs = socket.socketpair()
    channel = Channel(await SocketStream.from_socket(ours))
    other = Channel(await SocketStream.from_socket(theirs))
    try:
        sent = [{"op": "reply", "id": i, "data": [i] * i} for i in range(5)]
        await other.send_many(sent)
        await other.send_many([{"op": "pong", "id": 9}])  # one alone: a plain frame
        await other.send_many([])  # nothing: no frame
        with anyio.fail_after(5):
            assert [await channel.receive() for _ in range(6)] == [*sent, {"op": "pong", "id": 9}]
    finally:
        await channel.aclose()
        await other.aclose()


@pytest.mark.parametrize(
    ("batch", "problem"),
    [
        ({"op": "batch"}, "needs a list of messages"),
        ({"op": "batch", "messages": [{"op": "ping"}, {"id": 2}]}, "with an 'op'"),
        ({"op": "batch", "messages": [{"op": "batch", "messages": []}]}, "another batch"),
    ],
)
async def test_a_bad_batch_is_refused_whole_and_the_channel_stays_usable(
    batch: dict[str, object], problem: str
) -> None:
    ours, theirs = socket.socketpair()
    channel = Channel(await SocketStream.from_socket(ours))
    other = await SocketStream.from_socket(theirs)
    try:
        await other.send(encode(batch) + encode_many([{"op": "ping", "id": 1}]))
        with anyio.fail_after(5):
            with pytest.raises(ProtocolError, match=problem):
                await channel.receive()
            assert await channel.receive() == {"op": "ping", "id": 1}
    finally:
        await channel.aclose()
        await other.aclose()
