"""The async runtime of driver interface 2.0: timing, failures, stop, data."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import anyio
import pytest

from gantry.drivers.interface_2_0 import Key, ModelDevice, Task, TaskInfo, TaskState
from gantry.drivers.testing import FaultyDevice, FaultyDriver, running, wait_for_task

A = "lab"
GRACE = FaultyDevice.grace_period


def task(duration: float, interval: float, **params: Any) -> Task:
    return Task(
        component_role="counter",
        technique_name="count",
        max_duration=duration,
        sampling_interval=interval,
        task_params=params,
    )


async def registered(driver: FaultyDriver, *channels: str) -> FaultyDriver:
    for channel in channels:
        assert (await driver.cmp_register(A, channel)).success
    return driver


async def submit(driver: FaultyDriver, channel: str, t: Task) -> TaskInfo:
    reply = await driver.task_submit(A, channel, t)
    assert reply.success, reply.msg
    info: TaskInfo = reply.data
    return info


async def wait_final(driver: FaultyDriver, channel: str, task_id: str, limit: float) -> TaskInfo:
    await wait_for_task(driver, A, channel, task_id, limit)
    info: TaskInfo = (await driver.task_status(A, channel, task_id)).data
    return info


async def test_sampling_is_drift_free() -> None:
    # Each step takes 3 ms: a loop sleeping `interval` after each step would
    # drift to ~38 samples in 0.5 s; the absolute clock keeps 50.
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(0.5, 0.01, work="3 ms"))
        started = anyio.current_time()
        final = await wait_final(driver, "1", info.id, 3)
        took = anyio.current_time() - started
    assert final.state is TaskState.COMPLETED, final.msg
    assert abs(final.samples - 50) <= 1
    samples = driver.devmap[(A, "1")].get_data()
    assert len(samples) == final.samples
    assert [s.values["val"] for s in samples] == [float(i) for i in range(1, len(samples) + 1)]
    span = samples[-1].uts - samples[0].uts
    assert span == pytest.approx(0.49, abs=0.03)
    assert took == pytest.approx(0.5, abs=0.1)  # the task lasts max_duration


async def test_raising_device_fails_its_task_and_the_next_task_works() -> None:
    driver = await registered(FaultyDriver(), "1", "2")
    async with running(driver):
        other = await submit(driver, "2", task(0.3, 0.01))
        bad = await submit(driver, "1", task(0.3, 0.01, fault="raise"))
        good = await submit(driver, "1", task(0.1, 0.01, fault="none"))
        bad_final = await wait_final(driver, "1", bad.id, 2)
        good_final = await wait_final(driver, "1", good.id, 2)
        other_final = await wait_final(driver, "2", other.id, 2)
    assert bad_final.state is TaskState.FAILED
    assert "RuntimeError: injected fault: sensor unplugged" in bad_final.msg
    assert good_final.state is TaskState.COMPLETED and good_final.samples == 10
    assert other_final.state is TaskState.COMPLETED and other_final.samples == 30


async def test_hanging_step_fails_within_max_duration_plus_grace() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        started = anyio.current_time()
        info = await submit(driver, "1", task(0.3, 0.05, fault="hang"))
        final = await wait_final(driver, "1", info.id, 3)
        took = anyio.current_time() - started
        after = await submit(driver, "1", task(0.1, 0.05, fault="none"))
        assert (await wait_final(driver, "1", after.id, 2)).state is TaskState.COMPLETED
    assert final.state is TaskState.FAILED
    assert "did not finish within max_duration" in final.msg and "hung" in final.msg
    assert 0.3 + GRACE - 0.05 <= took <= 0.3 + GRACE + 0.2


async def test_blocking_call_that_hangs_is_abandoned() -> None:
    # `delay` blocks a worker thread (run_sync) for 3 s; the task still ends on time.
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        started = anyio.current_time()
        info = await submit(driver, "1", task(0.2, 0.05, delay="3 s"))
        final = await wait_final(driver, "1", info.id, 2)
        took = anyio.current_time() - started
    assert final.state is TaskState.FAILED and "hung" in final.msg
    assert took <= 0.2 + GRACE + 0.2


async def test_stop_ends_the_task_within_one_interval() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(30, 0.2, work="50 ms"))
        await anyio.sleep(0.5)
        started = anyio.current_time()
        reply = await driver.task_stop(A, "1")
        took = anyio.current_time() - started
        assert reply.success, reply.msg
        stopped: TaskInfo = reply.data
        data = (await driver.task_data(A, "1")).data
        await anyio.sleep(0.3)
        assert (await driver.task_data(A, "1")).data == []  # nothing sampled after stop
    assert stopped.id == info.id and stopped.state is TaskState.STOPPED
    assert took < 0.2
    assert len(data) == stopped.samples == 3


async def test_stop_of_a_queued_task_removes_it() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        first = await submit(driver, "1", task(0.2, 0.05))
        second = await submit(driver, "1", task(0.2, 0.05))
        await anyio.sleep(0.02)  # let the worker pick up the first
        status = (await driver.cmp_status(A, "1")).data
        assert status["task"] == first.id and status["queued"] == [second.id]
        stopped = (await driver.task_stop(A, "1", second.id)).data
        assert stopped.state is TaskState.STOPPED and stopped.started_at is None
        assert (await wait_final(driver, "1", first.id, 2)).state is TaskState.COMPLETED


async def test_tasks_on_one_component_run_one_at_a_time() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        ids = [(await submit(driver, "1", task(0.1, 0.02))).id for _ in range(3)]
        finals = [await wait_final(driver, "1", i, 2) for i in ids]
    assert all(f.state is TaskState.COMPLETED and f.samples == 5 for f in finals)
    for before, after in itertools.pairwise(finals):
        assert after.started_at is not None and before.ended_at is not None
        assert after.started_at >= before.ended_at


async def test_task_data_drains_without_loss_or_duplicates() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(0.4, 0.01))
        drained = []
        while not (await driver.task_status(A, "1", info.id)).data.state.is_final:
            drained += (await driver.task_data(A, "1")).data
            await anyio.sleep(0.03)
        drained += (await driver.task_data(A, "1")).data
        assert (await driver.task_data(A, "1")).data == []
        final = (await driver.task_status(A, "1", info.id)).data
    values = [s.values["val"] for s in drained]
    assert values == [float(i) for i in range(1, final.samples + 1)]
    assert all(s.task_id == info.id and s.units == {"delay": "s", "work": "s"} for s in drained)


def test_cache_is_lock_guarded_under_concurrent_access() -> None:
    device = FaultyDevice(FaultyDriver(), (A, "1"))
    writers, per_writer = 4, 20_000
    drained: list[Any] = []
    done = threading.Event()

    def write(w: int) -> None:
        for i in range(per_writer):
            device.store({"val": w * per_writer + i})

    def drain() -> None:
        while not done.is_set():
            drained.extend(device.get_data())
        drained.extend(device.get_data())

    reader = threading.Thread(target=drain)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    values = sorted(s.values["val"] for s in drained)
    assert values == list(range(writers * per_writer))


async def test_slow_device_skips_ticks_instead_of_bursting() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(0.3, 0.01, work="35 ms"))
        final = await wait_final(driver, "1", info.id, 2)
    samples = driver.devmap[(A, "1")].get_data()
    assert final.state is TaskState.COMPLETED
    assert final.samples + final.missed == 30
    assert 6 <= final.samples <= 10
    gaps = [b.uts - a.uts for a, b in itertools.pairwise(samples)]
    assert min(gaps) > 0.02  # no burst of back-to-back catch-up samples


def stall_the_loop(seconds: float) -> None:
    """Block the event loop, as a GC pause or a starved process would."""
    time.sleep(seconds)


async def test_short_stall_is_caught_up_without_losing_samples() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(0.5, 0.01))
        await anyio.sleep(0.2)
        stall_the_loop(0.08)
        final = await wait_final(driver, "1", info.id, 3)
    assert final.state is TaskState.COMPLETED
    assert final.samples == 50 and final.missed == 0


async def test_long_stall_skips_ticks_instead_of_bursting() -> None:
    driver = await registered(FaultyDriver(), "1")
    lag_limit = FaultyDevice.max_lag
    async with running(driver):
        info = await submit(driver, "1", task(1.5, 0.01))
        await anyio.sleep(0.1)
        stall_the_loop(lag_limit + 0.2)
        final = await wait_final(driver, "1", info.id, 4)
    samples = driver.devmap[(A, "1")].get_data()
    assert final.state is TaskState.COMPLETED
    assert final.samples + final.missed == 150
    assert final.missed >= 50
    # Catching up the whole stall would fire ~70 samples back to back; only
    # up to max_lag (50 ticks) may be caught up, e.g. after a busy machine's hiccup.
    longest = run = 0
    for a, b in itertools.pairwise(samples):
        run = run + 1 if b.uts - a.uts < 0.002 else 0
        longest = max(longest, run)
    assert longest < lag_limit / 0.01


async def test_component_registered_while_running_gets_a_worker() -> None:
    driver = FaultyDriver()
    async with running(driver):
        await registered(driver, "late")
        info = await submit(driver, "late", task(0.1, 0.02))
        assert (await wait_final(driver, "late", info.id, 2)).state is TaskState.COMPLETED


async def test_teardown_stops_the_task_and_the_key_can_be_reused() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(30, 0.05))
        await anyio.sleep(0.1)
        assert (await driver.cmp_teardown(A, "1")).success
        run = driver.devmap.get((A, "1"))
        assert run is None
        await registered(driver, "1")
        again = await submit(driver, "1", task(0.1, 0.02))
        assert (await wait_final(driver, "1", again.id, 2)).state is TaskState.COMPLETED
    assert info.id != again.id


async def test_listener_hears_every_transition_and_cannot_break_the_driver() -> None:
    seen: list[tuple[str, TaskState]] = []

    def listener(info: TaskInfo) -> None:
        seen.append((info.id, info.state))
        raise RuntimeError("listener bug")

    driver = await registered(FaultyDriver(on_task_change=listener), "1")
    async with running(driver):
        ok = await submit(driver, "1", task(0.05, 0.01))
        bad = await submit(driver, "1", task(0.05, 0.01, fault="raise"))
        await wait_final(driver, "1", bad.id, 2)
    assert seen == [
        (ok.id, TaskState.RUNNING),
        (ok.id, TaskState.COMPLETED),
        (bad.id, TaskState.RUNNING),
        (bad.id, TaskState.FAILED),
    ]


async def test_shutdown_interrupts_the_task_resets_and_keeps_data() -> None:
    driver = await registered(FaultyDriver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(30, 0.01, mode="down"))
        await anyio.sleep(0.1)
    final = (await driver.task_status(A, "1", info.id)).data
    assert final.state is TaskState.FAILED and "interrupted" in final.msg
    assert (await driver.cmp_get_attr(A, "1", "mode")).data == "up"  # reset ran
    assert len((await driver.task_data(A, "1")).data) == final.samples > 0


async def test_a_crashed_worker_restarts() -> None:
    class Flaky(FaultyDevice):
        crashes = 0

        async def serve(self) -> None:
            if not self.crashes:
                self.crashes += 1
                raise RuntimeError("bug in the worker loop")
            await super().serve()

    class Driver(FaultyDriver):
        def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
            return Flaky(self, key)

    driver = await registered(Driver(), "1")
    async with running(driver):
        info = await submit(driver, "1", task(0.05, 0.01))
        assert (await wait_final(driver, "1", info.id, 2)).state is TaskState.COMPLETED
