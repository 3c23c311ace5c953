"""Keep Opsera's Insights data in step: a project, its owner, the org hierarchy, and a team roster.

Every task can be re-run: a record Opsera already holds with the same values is reported
and skipped; one it holds with other values fails the task, naming the differences.
``sync_team`` takes a whole list from XCom (``team_roster`` stands in for an HR export):
it checks every record before sending any, creates what is missing (``max_concurrency`` at
a time), goes on past a record Opsera refuses, fails at the end naming every record that
failed, and returns a summary (counts, failures, the emails created).

Try it against the local emulator::

    opsera-emulator --port 8765 --print-connection
    export AIRFLOW_CONN_OPSERA_DEFAULT='<the connection JSON it printed>'
    airflow dags test example_opsera_insights

Against a real tenant the token needs the ``api`` scope.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_provider_opsera.operators import (
    OpseraCreateMappingOperator,
    OpseraCreateOrgHierarchyOperator,
    OpseraCreatePersonOperator,
    OpseraCreateProjectOperator,
)

PROJECT_ID = "4455"
OWNER = {"email": "ada.admin@example.com", "firstName": "Ada", "lastName": "Admin"}

with DAG(
    dag_id="example_opsera_insights",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:
    create_project = OpseraCreateProjectOperator(
        task_id="create_project",
        project={
            "projectId": PROJECT_ID,
            "projectName": "Data Platform",
            "projectOwner": OWNER,
            "organization": "Example Corp",
            "business": "Engineering",
            "department": "Data",
            "assets": {
                "repositories": [
                    {"name": "lakehouse", "platform": "github.com", "url": "https://github.com/example/lakehouse.git"}
                ],
            },
        },
    )

    create_owner = OpseraCreatePersonOperator(
        task_id="create_owner",
        person={**OWNER, "organization": "Example Corp", "department": "Data"},
    )

    link_departments = OpseraCreateOrgHierarchyOperator(
        task_id="link_departments",
        parent="Engineering",
        parent_type="business",
        child=["Data", "Platform"],
        child_type="department",
    )

    map_owner_to_project = OpseraCreateMappingOperator(
        task_id="map_owner_to_project",
        mapping={
            "attribute1": PROJECT_ID,
            "attribute2": OWNER["email"],
            "mappingType": "project-people",
            "relationship": "many-to-many",
        },
    )

    @task
    def team_roster() -> list[dict]:
        """The people of the Data department, as an HR system might export them."""
        return [
            {"email": "lin.data@example.com", "firstName": "Lin", "department": "Data", "team": "Lakehouse"},
            {"email": "sam.data@example.com", "firstName": "Sam", "department": "Data", "team": "Lakehouse"},
            {"email": "kai.data@example.com", "firstName": "Kai", "department": "Data", "team": "Streaming"},
        ]

    sync_team = OpseraCreatePersonOperator(task_id="sync_team", person=team_roster())

    [create_project, create_owner] >> map_owner_to_project
    create_owner >> sync_team
