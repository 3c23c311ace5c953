"""Waits, in Airflow's triggerer, for an Opsera task's latest run to end."""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger


class OpseraTaskTrigger(OpseraPollingTrigger):
    """Polls the status of Opsera task ``opsera_task_id`` (its latest run) until it ends.

    Fires one event ``{"status", "message", "opsera_task_id"}`` with status ``success``,
    ``failed``, ``stopped``, ``timeout`` or ``error``, as
    :class:`~airflow_provider_opsera.triggers.OpseraPipelineRunTrigger` does. Opsera
    offers no call that stops a task run, so killing the Airflow task leaves it be.

    :param opsera_task_id: the Opsera task's id
    :param opsera_conn_id: the Airflow connection to Opsera
    :param poll_interval: seconds between two status reads, from 1 to 86400 (a day)
    :param timeout: seconds to wait at most, more than 0 and at most 366 days (None: no limit)
    :param end_time: the absolute deadline (epoch seconds), kept across a triggerer restart
    :param unknown: arguments another version of the provider stored that this one does not
        know: logged and left out (values out of range are brought into it, with a warning)
    """

    def __init__(
        self,
        opsera_task_id: str,
        opsera_conn_id: str = "opsera_default",
        poll_interval: float = 30,
        timeout: float | None = None,
        end_time: float | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(
            opsera_conn_id=opsera_conn_id, poll_interval=poll_interval, timeout=timeout, end_time=end_time, **unknown
        )
        self.opsera_task_id = opsera_task_id

    def ids(self) -> dict[str, Any]:
        return {"opsera_task_id": self.opsera_task_id}

    def subject(self) -> str:
        return f"Opsera task {self.opsera_task_id}"

    async def read_status(self, hook: Any) -> tuple[str, str]:
        status = await hook.get_task_status(self.opsera_task_id)
        return status, f"{self.subject()}'s latest run ended with status {status!r}."
