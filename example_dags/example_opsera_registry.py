"""Change a tool in Opsera's tool registry: review the change, make it, and put it back.

``preview_change`` reads the tool and logs what would change (secrets shown as ``***``)
without sending anything. ``apply_change`` sends only the properties that differ, reads
the tool back to check them, and pushes their previous values to XCom under
``previous_values``. ``revert_change`` feeds those values back as ``tool``, which is how
a change is rolled back; this example always runs it so it can be run again and again.
In a real DAG, put the checks that should roll the change back between the two and give
the revert ``trigger_rule="one_failed"``.

Try it against the local emulator::

    opsera-emulator --port 8765 --print-connection
    export AIRFLOW_CONN_OPSERA_DEFAULT='<the connection JSON it printed>'
    airflow dags test example_opsera_registry

Against a real tenant the token needs the ``api`` or ``registry`` scope and access to the tool.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.models.param import Param

from airflow_provider_opsera.operators import OpseraUpdateToolOperator

JENKINS_PROD = "60a1b2c3d4e5f6a7b8c9d0e1"

with DAG(
    dag_id="example_opsera_registry",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # The revert pulls a dict from XCom: render it as a dict, not as its text.
    render_template_as_native_obj=True,
    params={
        "tool_id": Param(JENKINS_PROD, type="string", description="The Opsera tool to change"),
        "description": Param("Production Jenkins, managed from Airflow", type="string"),
    },
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:
    preview_change = OpseraUpdateToolOperator(
        task_id="preview_change",
        tool_id="{{ params.tool_id }}",
        tool={"description": "{{ params.description }}"},
        dry_run=True,
    )

    apply_change = OpseraUpdateToolOperator(
        task_id="apply_change",
        tool_id="{{ params.tool_id }}",
        tool={"description": "{{ params.description }}"},
    )

    revert_change = OpseraUpdateToolOperator(
        task_id="revert_change",
        tool_id="{{ params.tool_id }}",
        tool="{{ ti.xcom_pull(task_ids='apply_change', key='previous_values') }}",
    )

    preview_change >> apply_change >> revert_change
