"""Instruments: ``drivers``, ``devices``, ``components``, ``component ...``, ``pipelines``,
``pipeline load|eject|ready``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from gantry.cli import render
from gantry.cli.errors import guarded
from gantry.cli.runtime import Runtime
from gantry.client import Client
from gantry.client.models import AttrInfo, PipelineInfo

M = TypeVar("M")

Opt = typer.Option
JsonOpt = Annotated[bool, Opt("--json", help="Print JSON instead of a table.")]
DeviceArg = Annotated[str, typer.Argument(metavar="DEVICE")]
ChannelArg = Annotated[str, typer.Argument(metavar="CHANNEL")]

component_app = typer.Typer(
    help="One component (a device channel): status, attrs, measure.", no_args_is_help=True
)
pipeline_app = typer.Typer(
    help="One pipeline: load a sample, eject it, mark it ready.", no_args_is_help=True
)


def _table(columns: tuple[str, ...], rows: list[list[Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[c if isinstance(c, Text) else render.format_value(c) for c in row])
    return table


def _yes(value: bool) -> Text:
    return Text("yes", style="green") if value else Text("no", style="red")


def _show(
    ctx: typer.Context,
    what: str,
    read: Callable[[Client], Sequence[M]],
    as_json: bool,
    columns: tuple[str, ...],
    row: Callable[[M], list[Any]],
) -> None:
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        items = read(api)
    if as_json:
        render.print_json(items)
    elif items:
        render.out().print(_table(columns, [row(i) for i in items]))
    else:
        render.note(f"no {what} (is there a devices file? see docs/instruments.md)", "dim")


@guarded
def drivers(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Installed drivers; those the devices file uses run."""
    _show(
        ctx,
        "drivers",
        lambda api: api.drivers(),
        as_json,
        ("name", "running", "version", "components", "error"),
        lambda d: [
            d.name,
            _yes(d.running),
            d.version or "-",
            ", ".join(d.components) or "-",
            d.error or "",
        ],
    )


@guarded
def devices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The devices of the server's devices file."""
    _show(
        ctx,
        "devices",
        lambda api: api.devices(),
        as_json,
        ("name", "driver", "address", "channels", "pollrate"),
        lambda d: [
            d.name,
            d.driver,
            d.address,
            ", ".join(d.channels),
            d.pollrate if d.pollrate is not None else "-",
        ],
    )


@guarded
def components(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every component: driver, techniques, pipelines, the job using it."""
    _show(
        ctx,
        "components",
        lambda api: api.components(),
        as_json,
        ("component", "driver", "available", "techniques", "pipelines", "job"),
        lambda c: [
            f"{c.device}/{c.channel}",
            c.driver,
            _yes(c.available),
            ", ".join(c.capabilities) or (c.error or "-"),
            ", ".join(f"{r.pipeline}:{r.role}" for r in c.roles) or "-",
            c.job_id if c.job_id is not None else "-",
        ],
    )


@guarded
def pipelines(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every pipeline: its roles, sample, readiness and running job."""
    _show(
        ctx,
        "pipelines",
        lambda api: api.pipelines(),
        as_json,
        ("name", "roles", "sample", "ready", "job"),
        lambda p: [
            p.name,
            ", ".join(f"{c.role}={c.device}/{c.channel}" for c in p.components),
            p.sample or "-",
            _yes(p.ready),
            p.job_id if p.job_id is not None else "-",
        ],
    )


# --- gantry component ... ---------------------------------------------------------


@component_app.command("status")
@guarded
def component_status(
    ctx: typer.Context, device: DeviceArg, channel: ChannelArg, as_json: JsonOpt = False
) -> None:
    """Status, constants and last reading of a component."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        info = api.component(device, channel)
    if as_json:
        render.print_json(info)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    last = info.last_data
    for key, value in (
        ("component", f"{info.device}/{info.channel}"),
        ("driver", f"{info.driver} at {info.address}"),
        ("available", "yes" if info.available else f"no: {info.error}"),
        ("techniques", ", ".join(info.capabilities) or "-"),
        ("status", render.key_values(info.status)),
        ("constants", render.key_values(info.constants)),
        ("last data", render.key_values(last.values) if last else "-"),
        ("job", str(info.job_id) if info.job_id is not None else "-"),
    ):
        grid.add_row(key, value)
    render.out().print(grid)


@component_app.command("attrs")
@guarded
def component_attrs(
    ctx: typer.Context, device: DeviceArg, channel: ChannelArg, as_json: JsonOpt = False
) -> None:
    """The attrs of a component: type, writable, units, limits, options."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        attrs = api.attrs(device, channel)
    if as_json:
        render.print_json(attrs)
        return
    rows = [
        [
            name,
            a.type,
            _yes(a.rw),
            a.units or "-",
            _limits(a),
            ", ".join(map(str, a.options)) if a.options else "-",
        ]
        for name, a in attrs.items()
    ]
    render.out().print(_table(("attr", "type", "writable", "units", "limits", "options"), rows))


def _limits(attr: AttrInfo) -> str:
    low, high = attr.minimum, attr.maximum
    if low is None and high is None:
        return "-"
    return f"{'' if low is None else low} .. {'' if high is None else high}"


@component_app.command("get")
@guarded
def component_get(
    ctx: typer.Context,
    device: DeviceArg,
    channel: ChannelArg,
    attr: Annotated[str, typer.Argument(metavar="ATTR")],
) -> None:
    """Print one attr's value."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        answer = api.get_attr(device, channel, attr)
    units = f" {answer.units}" if answer.units else ""
    print(f"{render.format_value(answer.value)}{units}")


@component_app.command("set")
@guarded
def component_set(
    ctx: typer.Context,
    device: DeviceArg,
    channel: ChannelArg,
    attr: Annotated[str, typer.Argument(metavar="ATTR")],
    value: Annotated[
        str,
        typer.Argument(metavar="VALUE", help="A number, text or a quantity with units: '5 ms'."),
    ],
) -> None:
    """Set one attr; the server checks type, units, limits and options."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        answer = api.set_attr(device, channel, attr, value)
    units = f" {answer.units}" if answer.units else ""
    print(f"{attr} = {render.format_value(answer.value)}{units}")


@component_app.command("measure")
@guarded
def component_measure(
    ctx: typer.Context, device: DeviceArg, channel: ChannelArg, as_json: JsonOpt = False
) -> None:
    """Take one reading now (the component must be idle)."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        sample = api.measure(device, channel)
    if as_json:
        render.print_json(sample)
        return
    units = sample.units
    for name, value in sample.values.items():
        unit = f" {units[name]}" if name in units else ""
        print(f"{name} = {render.format_value(value)}{unit}")


# --- gantry pipeline ... -------------------------------------------------------------


def _pipeline_change(ctx: typer.Context, change: Callable[[Client], PipelineInfo]) -> None:
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        p = change(api)
    ready = "ready" if p.ready else "not ready"
    render.out().print(f"pipeline {p.name}: sample {p.sample or '-'}, {ready}")


@pipeline_app.command("load")
@guarded
def pipeline_load(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="PIPELINE")],
    sample: Annotated[str, typer.Argument(metavar="SAMPLE")],
) -> None:
    """Load SAMPLE into an idle, empty pipeline."""
    _pipeline_change(ctx, lambda api: api.load(name, sample))


@pipeline_app.command("eject")
@guarded
def pipeline_eject(
    ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="PIPELINE")]
) -> None:
    """Remove the sample of an idle pipeline."""
    _pipeline_change(ctx, lambda api: api.eject(name))


@pipeline_app.command("ready")
@guarded
def pipeline_ready(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="PIPELINE")],
    not_ready: Annotated[bool, Opt("--not", help="Mark it not ready.")] = False,
) -> None:
    """Mark a pipeline ready: jobs for its sample may run on it."""
    _pipeline_change(ctx, lambda api: api.mark_ready(name, not not_ready))
