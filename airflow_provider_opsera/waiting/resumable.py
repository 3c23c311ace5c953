"""Re-attaching to the job an earlier try started, instead of starting a second one.

Airflow 3.3 brought ``ResumableJobMixin``: the job's id goes to ``task_state_store``
before the wait begins, and a retry after a worker crash reads it back and reconnects.
Older Airflow has no such store; :class:`RetryAwareJobMixin` offers the same methods
and asks the operator instead (``find_job_to_resume``), which for Opsera means: on a
retry, is the pipeline's latest run still in progress? See
:class:`~airflow_provider_opsera.operators.OpseraRunPipelineOperator`.
"""

from __future__ import annotations

from typing import Any


class RetryAwareJobMixin:
    """The ``ResumableJobMixin`` interface for Airflow before 3.3."""

    external_id_key: str = "remote_job_id"

    def find_job_to_resume(self, context: Any) -> Any:
        """The id of a job an earlier try started and that is still going, or None."""
        return None

    def execute_resumable(self, context: Any) -> Any:
        external_id = self.find_job_to_resume(context)
        if external_id is not None:
            return self.poll_until_complete(external_id, context)  # type: ignore[attr-defined]
        external_id = self.submit_job(context)  # type: ignore[attr-defined]
        self.poll_until_complete(external_id, context)  # type: ignore[attr-defined]
        return self.get_job_result(external_id, context)  # type: ignore[attr-defined]


try:
    from airflow.sdk import ResumableJobMixin

    HAS_TASK_STATE_STORE = True
except ImportError:  # Airflow < 3.3
    ResumableJobMixin = RetryAwareJobMixin  # type: ignore[misc,assignment]
    HAS_TASK_STATE_STORE = False

__all__ = ["HAS_TASK_STATE_STORE", "ResumableJobMixin", "RetryAwareJobMixin"]
