"""The "Opsera pipeline run" button on a task in Airflow's UI."""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera._compat import AIRFLOW_V3, BaseOperatorLink

#: XCom key under which operators and sensors store the portal URL of the run they handled
PIPELINE_RUN_URL_KEY = "opsera_pipeline_run_url"
#: the task attribute holding that URL once the task knows it, for Airflow 3's link
PIPELINE_RUN_URL_ATTRIBUTE = "opsera_pipeline_run_url"


class OpseraPipelineRunLink(BaseOperatorLink):
    """Links a task to its pipeline's page in the Opsera portal."""

    name = "Opsera pipeline run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if AIRFLOW_V3:
            # Airflow 3 asks once, in the worker, as the task ends, and stores the answer. The task
            # itself says: reading the XCom of a task that failed before it knew its pipeline would log
            # "XCom not found" after the real error, as if that were what went wrong.
            return getattr(operator, PIPELINE_RUN_URL_ATTRIBUTE, None) or ""
        from airflow.models.xcom import XCom

        return XCom.get_value(key=PIPELINE_RUN_URL_KEY, ti_key=ti_key) or ""


def publish_run_url(task: Any, ti: Any, url: str) -> None:
    """The portal URL of the task's pipeline: in XCom for DAG authors and Airflow 2's link, on the task for 3's."""
    remember_run_url(task, url)
    ti.xcom_push(key=PIPELINE_RUN_URL_KEY, value=url)


def remember_run_url(task: Any, url: str) -> None:
    """For a resumed task, whose XCom was pushed before it deferred."""
    setattr(task, PIPELINE_RUN_URL_ATTRIBUTE, url)
