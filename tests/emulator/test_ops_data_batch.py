"""Big Insights lists against the emulator over real sockets: several workers, 429s mid-batch, re-runs."""

from __future__ import annotations

from collections import Counter

from airflow_provider_opsera.operators import OpseraCreateOrgHierarchyOperator, OpseraCreatePersonOperator

CREATE_PERSON = ("POST", "/api/v2/data/people")
READ_PERSON = ("GET", "/api/v2/data/people/{email}")


def execute(operator):
    return operator.execute({"ti": None})


def roster(n):
    return [{"email": f"member{i:04d}@example.com", "firstName": f"Member {i}", "team": "Platform"} for i in range(n)]


def stored_emails(emulator):
    return Counter(person["email"] for person in emulator.state()["store"]["people"])


def test_hundreds_of_people_with_several_workers_are_each_created_once(opsera_conn):
    opsera_conn.set_fault(route="*", kind="latency", seconds=0.01)
    people = roster(300)

    summary = execute(OpseraCreatePersonOperator(task_id="people", person=people, max_concurrency=8))

    assert (summary["total"], summary["created"], summary["already_there"], summary["failed"]) == (300, 300, 0, 0)
    assert summary["created_ids"] == [p["email"] for p in people]  # list order, whatever order they finished in
    stored = stored_emails(opsera_conn)
    assert all(stored[p["email"]] == 1 for p in people)
    assert opsera_conn.request_count(*CREATE_PERSON) == 300

    again = execute(OpseraCreatePersonOperator(task_id="people", person=people, max_concurrency=8))
    assert (again["created"], again["already_there"]) == (0, 300)
    assert opsera_conn.request_count(*CREATE_PERSON) == 300


def test_429s_mid_batch_slow_it_down_and_fail_no_record(opsera_conn, task_log):
    people = roster(200)
    opsera_conn.set_fault(route="POST /api/v2/data/people", kind="retry_after", retry_after=1, rate=0.05, count=2,
                          seed=7)

    summary = execute(OpseraCreatePersonOperator(task_id="people", person=people, max_concurrency=8))

    assert (summary["created"], summary["failed"]) == (200, 0)
    stored = stored_emails(opsera_conn)
    assert all(stored[p["email"]] == 1 for p in people)
    # Each refused create was sent again once: 429 means Opsera did not act on it.
    assert opsera_conn.request_count(*CREATE_PERSON) == 200 + 2
    assert task_log.count("429 too many requests") == 2  # one retry warning each


def test_a_list_naming_some_people_twice_creates_each_once(opsera_conn):
    people = roster(40)
    repeated = people + [{**p, "email": p["email"].upper()} for p in people[:10]] + people[:10]

    summary = execute(OpseraCreatePersonOperator(task_id="people", person=repeated, max_concurrency=8))

    assert (summary["created"], summary["already_there"], summary["failed"]) == (40, 20, 0)
    assert opsera_conn.request_count(*CREATE_PERSON) == 40
    assert all(count == 1 for count in stored_emails(opsera_conn).values())


def test_a_tree_of_org_links_reads_the_mapping_list_once(opsera_conn):
    links = [{"parent": "Engineering", "parentType": "business", "child": f"Team {i}", "childType": "team"}
             for i in range(60)]

    summary = execute(OpseraCreateOrgHierarchyOperator(task_id="org", parent=None, child=links + links[:5]))

    assert (summary["created"], summary["already_there"]) == (60, 5)
    assert opsera_conn.request_count("GET", "/api/v2/data/mapping") == 1
    assert opsera_conn.request_count("POST", "/api/v2/data/org-hierarchy") == 60
    children = Counter(m["attribute2"] for m in opsera_conn.state()["store"]["mappings"])
    assert all(children[f"Team {i}"] == 1 for i in range(60))
