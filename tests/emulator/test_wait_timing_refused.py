"""A templated poll interval or timeout out of range stops the task before Opsera hears anything."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from tests.unit.pipeline_fakes import make_context

from .support import BLANK


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize("timing", [{"poll_interval": "0"}, {"poll_interval": "nan"}, {"timeout": "0"}])
def test_a_rendered_value_out_of_range_sends_nothing(opsera_conn, deferrable, timing):
    ((field, value),) = timing.items()
    op = OpseraRunPipelineOperator(
        task_id="run_pipeline", pipeline_id=BLANK, deferrable=deferrable, **{field: "{{ params.value }}"}
    )
    op.render_template_fields({"params": {"value": value}})
    with pytest.raises(OpseraInputError, match=f"^{field} must be a number of seconds .*, got {value!r}$"):
        op.execute(make_context())
    assert opsera_conn.request_counts() == {}
    assert opsera_conn.run_journal()["runs"] == []
