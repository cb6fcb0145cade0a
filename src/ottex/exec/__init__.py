"""Execution layer: jobs and executors (:mod:`~ottex.exec.local` runs them in this process)."""

from __future__ import annotations

from .local import Job, JobResult, LocalExecutor, check_outputs_free

__all__ = ["Job", "JobResult", "LocalExecutor", "check_outputs_free"]
