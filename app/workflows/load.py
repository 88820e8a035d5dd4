"""Import a ``workflow.py`` exactly as ``gwf run`` does, with gwf's own code.

gwf's ``Workflow.from_path`` executes the file, takes its module attribute
(``gwf`` unless the path says ``file.py:name``) and gwf's ``Graph`` derives
the dependencies from inputs and outputs and rejects cycles. Everything that
goes wrong becomes a :class:`WorkflowLoadError` naming the file, the line or
target, and the fix.
"""

from __future__ import annotations

import sys
import threading
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: gwf's loader edits ``sys.path`` while the file runs: one load at a time.
_LOADING = threading.Lock()
INSTALL_HINT = "install gwf (`pip install 'gantry[gwf]'`) to run gwf workflow files"


class WorkflowLoadError(ValueError):
    """A workflow file cannot be run; the message names where and the fix."""

    def __init__(
        self, path: Path | str, message: str, *, line: int | None = None, target: str | None = None
    ) -> None:
        self.path = str(path)
        self.line = line
        self.target = target
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class LoadedWorkflow:
    """A workflow file's gwf ``Graph`` (``targets``, ``dependencies``, ``unresolved``)."""

    path: Path
    graph: Any


def split_path(spec: str) -> tuple[Path, str]:
    """``workflow.py`` or ``workflow.py:obj`` as (absolute file, attribute)."""
    file, _, obj = spec.partition(":")
    return Path(file or "workflow.py").expanduser().resolve(), obj or "gwf"


def _line_in(path: Path, exc: BaseException) -> int | None:
    """The line of ``path`` where ``exc`` was raised (the innermost such frame)."""
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename) == path:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return frames[-1].lineno if frames else None


def _run_file(gwf: Any, path: Path, obj: str) -> Any:
    with _LOADING:
        saved = list(sys.path)
        try:
            return gwf.Workflow.from_path(f"{path}:{obj}")
        finally:
            sys.path[:] = saved  # gwf leaves its entry behind when the file raises


def _execute(path: Path, obj: str, shown: Path) -> Any:
    try:
        with warnings.catch_warnings():  # gwf 1.7 imports pkg_resources and distutils
            warnings.simplefilter("ignore", DeprecationWarning)
            import gwf  # type: ignore[import-untyped]
            from gwf.exceptions import GWFError  # type: ignore[import-untyped]
    except ImportError:
        raise WorkflowLoadError(shown, f"gwf is not installed: {INSTALL_HINT}") from None
    if path.suffix != ".py":
        raise WorkflowLoadError(shown, "a gwf workflow file is a Python file: name it *.py")
    if not path.is_file():
        raise WorkflowLoadError(shown, "the workflow file does not exist: check the path")
    try:
        workflow = _run_file(gwf, path, obj)
    except SyntaxError as exc:
        raise WorkflowLoadError(
            shown, f"syntax error: {exc.msg}: fix the file", line=_line_in(path, exc)
        ) from None
    except GWFError as exc:
        message = exc.format_message()
        if "does not declare attribute" in message:
            message += f": define `{obj} = Workflow()` in the file, or give FILE.py:NAME"
        raise WorkflowLoadError(shown, message, line=_line_in(path, exc)) from None
    except Exception as exc:  # the file's own code raised while it ran
        raise WorkflowLoadError(
            shown,
            f"the workflow raised {type(exc).__name__}: {exc}: fix the file",
            line=_line_in(path, exc),
        ) from None
    if not isinstance(workflow, gwf.Workflow):
        raise WorkflowLoadError(
            shown, f"`{obj}` is a {type(workflow).__name__}, not a gwf Workflow: give FILE.py:NAME"
        )
    return workflow


def load_workflow(spec: str, *, shown_as: Path | None = None) -> LoadedWorkflow:
    """Run the workflow file (``file.py`` or ``file.py:obj``) and build gwf's graph.

    ``shown_as``: the path errors name and the workflow is known by (an
    uploaded file is run from a temporary name). Blocking: it executes the
    file and reads the file system.
    """
    path, obj = split_path(spec)
    shown = shown_as or path
    workflow = _execute(path, obj, shown)
    from gwf import Graph
    from gwf.exceptions import GWFError

    try:
        graph = Graph.from_targets(workflow.targets)
    except GWFError as exc:
        message = exc.format_message()
        target = next((n for n in workflow.targets if f"Target {n} " in message), None)
        fix = (
            "remove an input or output so that no target depends on itself"
            if "depends on itself" in message
            else "give each file a single producing target"
        )
        raise WorkflowLoadError(shown, f"{message} ({fix})", target=target) from None
    return LoadedWorkflow(shown, graph)
