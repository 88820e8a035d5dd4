"""The active-jobs registry: jobs that have not ended, by id and by backend ref.

It also keeps what arrives out of order: reports for a ref whose
``submit`` has not returned yet (the backend may report first), and the
final states of recently ended jobs (dependencies named by later submits).
"""

from __future__ import annotations

from collections import OrderedDict

from gantry.backends.base import StatusReport
from gantry.jobs.active import ActiveJob

#: How many ended jobs the engine remembers (for dependencies submitted later).
RECENT_FINAL = 100_000
#: Reports for refs the engine has not learnt yet (submit still in flight).
EARLY_REPORTS = 10_000


class ActiveJobs:
    def __init__(self) -> None:
        self.jobs: dict[int, ActiveJob] = {}
        #: id -> (state, name) of recently ended jobs
        self.final_states: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._refs: dict[tuple[str, str], int] = {}
        self._early: OrderedDict[tuple[str, str], list[StatusReport]] = OrderedDict()

    def add(self, job: ActiveJob) -> None:
        self.jobs[job.id] = job

    def register_ref(self, job: ActiveJob) -> None:
        if job.ref is not None:
            self._refs[(job.backend, job.ref)] = job.id

    def forget_ref(self, job: ActiveJob) -> None:
        if job.ref is not None:
            self._refs.pop((job.backend, job.ref), None)

    def for_report(self, backend: str, ref: str, report: StatusReport) -> ActiveJob | None:
        """The job ``ref`` names; a report for a ref not known yet is kept for later."""
        job_id = self._refs.get((backend, ref))
        if job_id is None:
            self._early.setdefault((backend, ref), []).append(report)
            while len(self._early) > EARLY_REPORTS:
                self._early.popitem(last=False)
            return None
        return self.jobs.get(job_id)

    def early_reports(self, backend: str, ref: str) -> list[StatusReport]:
        """Reports that arrived for ``ref`` before its submit returned (taken once)."""
        return self._early.pop((backend, ref), [])

    def ended(self, job: ActiveJob) -> None:
        """``job`` reached a final state: it leaves, its state is remembered a while."""
        self.jobs.pop(job.id, None)
        self.forget_ref(job)
        self.final_states[job.id] = (job.state.value, job.name)
        while len(self.final_states) > RECENT_FINAL:
            self.final_states.popitem(last=False)
