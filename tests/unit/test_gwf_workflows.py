"""gwf workflow files through gwf's own loader: batches, up-to-date skipping, bad files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from gantry.workflows.load import WorkflowLoadError, load_workflow
from gantry.workflows.plan import plan_workflow
from gantry.workflows.status import target_states

WORKFLOW = """
from gwf import AnonymousTarget, Workflow

gwf = Workflow(defaults={"cores": 2})

def shout(word):
    return AnonymousTarget(
        inputs=[],
        outputs=[f"{word}.txt"],
        options={"memory": "1g"},
        spec=f"echo {word} > {word}.txt",
    )

gwf.target_from_template("hello", shout("hello"))
gwf.target("both", inputs=["hello.txt"], outputs=["both.txt"], walltime="00:01:00") << (
    "cat hello.txt > both.txt"
)
gwf.target("report", inputs=["both.txt"], outputs=[]) << "cat both.txt"
"""


def write(tmp_path: Path, text: str, name: str = "workflow.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_targets_become_one_batch_with_dependencies_from_inputs_and_outputs(tmp_path: Path) -> None:
    plan = plan_workflow(load_workflow(str(write(tmp_path, WORKFLOW))))
    jobs = {job["name"]: job for job in plan.jobs}
    assert list(jobs) == ["hello", "both", "report"]
    assert jobs["hello"]["options"] == {"cores": 2, "memory": "1g"}
    assert jobs["both"]["options"] == {"cores": 2, "walltime": "00:01:00"}
    assert jobs["both"]["depends_on"] == ["hello"] and jobs["report"]["depends_on"] == ["both"]
    assert jobs["hello"]["spec"] == "echo hello > hello.txt"
    assert jobs["both"]["inputs"] == [str(tmp_path / "hello.txt")]
    assert all(job["working_dir"] == str(tmp_path) for job in plan.jobs)
    assert len({job["tags"][0] for job in plan.jobs}) == 1


def test_up_to_date_targets_are_skipped_as_gwf_run_does(tmp_path: Path) -> None:
    path = write(tmp_path, WORKFLOW)
    (tmp_path / "hello.txt").write_text("hello\n")
    (tmp_path / "both.txt").write_text("hello\n")
    plan = plan_workflow(load_workflow(str(path)))
    assert plan.up_to_date == ["hello", "both"]
    assert [(j["name"], j["depends_on"]) for j in plan.jobs] == [("report", [])]  # a sink runs
    os.utime(tmp_path / "both.txt", (1, 1))  # older than its input: runs again
    plan = plan_workflow(load_workflow(str(path)))
    assert [j["name"] for j in plan.jobs] == ["both", "report"]


def test_named_targets_bring_what_they_need_and_active_jobs_are_not_resubmitted(
    tmp_path: Path,
) -> None:
    loaded = load_workflow(str(write(tmp_path, WORKFLOW)))
    assert [j["name"] for j in plan_workflow(loaded, ["both"]).jobs] == ["hello", "both"]
    plan = plan_workflow(loaded, ["rep*"], active={"hello": 41})
    assert plan.already_active == ["hello"]
    assert [(j["name"], j["depends_on"]) for j in plan.jobs] == [
        ("both", [41]),
        ("report", ["both"]),
    ]


def test_status_like_gwf_status(tmp_path: Path) -> None:
    path = write(tmp_path, WORKFLOW)
    (tmp_path / "hello.txt").write_text("hello\n")
    loaded = load_workflow(str(path))
    rows = target_states(loaded, {"both": {"id": 7, "state": "running"}})
    assert [(r.name, r.status, r.job_id) for r in rows] == [
        ("hello", "completed", None),
        ("both", "running", 7),
        ("report", "shouldrun", None),
    ]
    assert (rows[2].done, rows[2].total) == (1, 3)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "from gwf import Workflow\ngwf = Workflow()\ngwf.target('a', inputs=[], outputs=[]) <<\n",
    )
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(str(path))
    assert caught.value.line == 3 and f"{path}:3: syntax error" in str(caught.value)
    assert "fix the file" in str(caught.value)


def test_error_raised_by_the_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "from gwf import Workflow\ngwf = Workflow()\n\n1 / 0\n")
    with pytest.raises(WorkflowLoadError, match=r":4: the workflow raised ZeroDivisionError"):
        load_workflow(str(path))


def test_cycle_names_the_target_and_the_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        from gwf import Workflow
        gwf = Workflow()
        gwf.target("a", inputs=["b.txt"], outputs=["a.txt"]) << "true"
        gwf.target("b", inputs=["a.txt"], outputs=["b.txt"]) << "true"
        """,
    )
    with pytest.raises(WorkflowLoadError, match="depends on itself") as caught:
        load_workflow(str(path))
    assert caught.value.target in ("a", "b") and "remove an input or output" in str(caught.value)


def test_unknown_target_missing_input_missing_file_and_missing_object(tmp_path: Path) -> None:
    loaded = load_workflow(str(write(tmp_path, WORKFLOW)))
    with pytest.raises(WorkflowLoadError, match="no target matches 'nope': choose among both"):
        plan_workflow(loaded, ["nope"])
    needy = write(
        tmp_path,
        "from gwf import Workflow\ngwf = Workflow()\n"
        'gwf.target("x", inputs=["in.txt"], outputs=[]) << "true"\n',
        "needy.py",
    )
    with pytest.raises(WorkflowLoadError, match="add a target that outputs it") as caught:
        plan_workflow(load_workflow(str(needy)))
    assert caught.value.target == "x"
    with pytest.raises(WorkflowLoadError, match="does not exist: check the path"):
        load_workflow(str(tmp_path / "absent.py"))
    with pytest.raises(WorkflowLoadError, match="give FILE.py:NAME"):
        load_workflow(f"{tmp_path / 'workflow.py'}:other")
