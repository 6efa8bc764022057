"""A batch/v1 Job (or a JobSet, which runs a group of them) as the reconcilers see it: its state, why, how
long it waited to start and how long it ran, and which start of its step it is."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from ..naming import ANNOTATION_ATTEMPT

SUCCEEDED, FAILED, RUNNING, SUSPENDED = "succeeded", "failed", "running", "suspended"


def job_state(job: dict[str, Any]) -> tuple[str, str, str]:
    """(state, reason, message) of a batch/v1 Job: state is succeeded | failed | running | suspended."""
    st = job.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return SUCCEEDED, c.get("reason") or "Completed", c.get("message") or ""
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return FAILED, c.get("reason") or "Failed", c.get("message") or ""
    if (st.get("succeeded") or 0) >= 1:
        return SUCCEEDED, "Completed", ""
    if (job.get("spec") or {}).get("suspend"):
        return SUSPENDED, "Suspended", "waiting for admission"
    return RUNNING, "Running", ""


def jobset_state(jobset: dict[str, Any]) -> tuple[str, str, str]:
    """(state, reason, message) of a jobset.x-k8s.io JobSet, in the same terms as `job_state`."""
    st = jobset.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") == "Completed":
            return SUCCEEDED, c.get("reason") or "Completed", c.get("message") or ""
        if c.get("status") == "True" and c.get("type") == "Failed":
            return FAILED, c.get("reason") or "Failed", c.get("message") or ""
    if st.get("terminalState") == "Completed":
        return SUCCEEDED, "Completed", ""
    if st.get("terminalState") == "Failed":
        return FAILED, "Failed", ""
    if (jobset.get("spec") or {}).get("suspend"):
        return SUSPENDED, "Suspended", "waiting for admission"
    restarts = st.get("restarts") or 0
    return RUNNING, "Running", f"group restarted {restarts} times" if restarts else ""


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class JobView:
    """What a reconcile decision needs to know of one Job."""

    name: str
    state: str
    reason: str = ""
    message: str = ""
    seconds: float | None = None  # start to completion, once finished
    attempt: int = 0  # which start of a multi-node group (the operator restarts an Indexed Job's group)
    wait_seconds: float | None = None  # creation to start (queueing, admission), once started

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobView:
        state, reason, message = jobset_state(job) if job.get("kind") == "JobSet" else job_state(job)
        st = job.get("status") or {}
        seconds = wait = None
        if st.get("startTime") and st.get("completionTime"):
            seconds = (_time(st["completionTime"]) - _time(st["startTime"])).total_seconds()
        created = (job.get("metadata") or {}).get("creationTimestamp")
        if st.get("startTime") and created:
            wait = (_time(st["startTime"]) - _time(created)).total_seconds()
        return cls(job["metadata"]["name"], state, reason, message, seconds, attempt_of(job), wait)


def attempt_of(obj: dict[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_ATTEMPT) or 0)
    except ValueError:
        return 0
