"""A tomato driver package through gantry's driver contract, without a server.

What the server does for every instrument job, in a few lines: the registry
resolves ``tomato:example_counter`` to the adapter over the unmodified
package, and every call is gantry's async ``ModelInterface``.
"""

from __future__ import annotations

import anyio

from gantry.drivers.interface_2_0 import Sample, Task, TaskInfo
from gantry.drivers.registry import DriverRegistry


async def main() -> list[Sample]:
    registry = DriverRegistry.discover()
    ended = anyio.Event()

    def on_task_change(info: TaskInfo) -> None:
        if info.state.is_final:
            ended.set()

    driver = registry.create("tomato:example_counter", on_task_change=on_task_change)
    reply = await driver.cmp_register("example-addr", "1")
    assert reply.success, reply.msg  # Reply.data: {"count", "random"}
    samples: list[Sample] = []
    async with anyio.create_task_group() as tg:
        await tg.start(driver.run)
        task = Task(
            component_role="counter",
            technique_name="count",
            max_duration=1.0,
            sampling_interval=0.1,
            task_params={"param": "0.5 s"},
        )
        submitted = await driver.task_submit("example-addr", "1", task)
        assert submitted.success, submitted.msg
        while not ended.is_set():
            with anyio.move_on_after(0.2):
                await ended.wait()
            samples += (await driver.task_data("example-addr", "1")).data
        tg.cancel_scope.cancel()  # run() resets the components on its way out
    return samples


if __name__ == "__main__":
    for sample in anyio.run(main):
        print(sample.uts, sample.values, dict(sample.units))
