"""A gwf workflow, unchanged: what docs/migrate-from-gwf.md runs with `gantry run`.

tests/integration/test_gwf_docs.py runs it on a real server.
"""

from gwf import AnonymousTarget, Workflow

gwf = Workflow(defaults={"cores": 1})


def count_words(name):
    """A template: gwf's AnonymousTarget, used with target_from_template."""
    return AnonymousTarget(
        inputs=[f"{name}.txt"],
        outputs=[f"{name}.count"],
        options={"walltime": "00:05:00"},
        spec=f"wc -w < {name}.txt > {name}.count",
    )


(
    gwf.target("write", inputs=[], outputs=["a.txt", "b.txt"])
    << """
echo one two three > a.txt
echo four five > b.txt
"""
)

for name in ("a", "b"):
    gwf.target_from_template(f"count_{name}", count_words(name))

(
    gwf.target("total", inputs=["a.count", "b.count"], outputs=["total.txt"], memory="1g")
    << """
cat a.count b.count | paste -sd+ | bc > total.txt
"""
)
