"""A bad list of 200 people against the emulator: a short error, and nothing sent."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.operators import OpseraCreatePersonOperator


def test_200_people_with_the_same_misspelt_field_fail_in_a_few_lines_and_send_nothing(opsera_conn):
    people = [{"email": f"person{i}@example.com", "firstName": f"P{i}", "Team": "Payments"} for i in range(200)]
    with pytest.raises(OpseraInputError) as caught:
        OpseraCreatePersonOperator(task_id="people", person=people).execute({"ti": None})

    message = str(caught.value)
    assert len(message.splitlines()) == 3
    assert "  - 200 people (#1 (person0@example.com)" in message
    assert "and 195 more): person: unknown field(s) 'Team'" in message
    assert message.count("Known fields of person:") == 1
    assert len(message) < 1000  # it was 60,000 characters: one line per record, each with the known fields
    assert sum(opsera_conn.request_counts().values()) == 0
