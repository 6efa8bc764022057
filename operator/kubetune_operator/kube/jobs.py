"""A batch/v1 Job as the reconcilers see it: its state, why, and how long it ran."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

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

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobView:
        state, reason, message = job_state(job)
        st = job.get("status") or {}
        seconds = None
        if st.get("startTime") and st.get("completionTime"):
            seconds = (_time(st["completionTime"]) - _time(st["startTime"])).total_seconds()
        return cls(job["metadata"]["name"], state, reason, message, seconds)
