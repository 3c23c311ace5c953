"""Export a day of Opsera's audit logs: who did what, and which token called what.

``export_audit_logs`` writes the day's user activity and token activity to a JSON Lines
file (one record a line, with a ``log`` field saying which log it came from) and returns
only the path and the counts: a busy day does not belong in XCom. ``api_token_use``
returns the day's uses of ``api``-scoped tokens as records, for a small follow-up check.
Opsera answers at most 1000 records per log and day; the task log warns when a day
reaches that.

Try it against the local emulator::

    opsera-emulator --port 8765 --print-connection
    export AIRFLOW_CONN_OPSERA_DEFAULT='<the connection JSON it printed>'
    export OPSERA_AUDIT_EXPORT_DIR=/tmp/opsera-audit
    airflow dags test example_opsera_audit

Against a real tenant the token needs the ``api`` or ``security-logs`` scope and its owner
the Power User role.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_opsera.operators import OpseraAuditLogsOperator

EXPORT_DIR = os.environ.get("OPSERA_AUDIT_EXPORT_DIR", os.path.join(tempfile.gettempdir(), "opsera-audit"))

with DAG(
    dag_id="example_opsera_audit",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:
    export_audit_logs = OpseraAuditLogsOperator(
        task_id="export_audit_logs",
        date="{{ ds }}",
        log="both",
        output_path=os.path.join(EXPORT_DIR, "opsera-audit-{{ ds }}.jsonl"),
    )

    api_token_use = OpseraAuditLogsOperator(
        task_id="api_token_use",
        date="{{ ds }}",
        log="token",
        scope="api",
    )
