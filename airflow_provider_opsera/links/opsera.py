"""The "Opsera pipeline run" button on a task in Airflow's UI."""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera._compat import AIRFLOW_V3, BaseOperatorLink

#: XCom key under which operators and sensors store the portal URL of the run they handled
PIPELINE_RUN_URL_KEY = "opsera_pipeline_run_url"


class OpseraPipelineRunLink(BaseOperatorLink):
    """Links a task to its pipeline's page in the Opsera portal."""

    name = "Opsera pipeline run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if AIRFLOW_V3:
            from airflow.sdk.execution_time.xcom import XCom
        else:
            from airflow.models.xcom import XCom  # type: ignore[no-redef]
        return XCom.get_value(key=PIPELINE_RUN_URL_KEY, ti_key=ti_key) or ""
