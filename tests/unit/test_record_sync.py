"""List syncs: workers, the order of outcomes, the 429 gate, progress lines and what goes to XCom."""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse

import pytest

from airflow_provider_opsera.exceptions import OpseraNotFoundError, OpseraPermissionError
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.retry import RateLimitGate
from airflow_provider_opsera.operators.data import MappingRecords, PersonRecords
from airflow_provider_opsera.writing.progress import SyncProgress
from airflow_provider_opsera.writing.record_sync import Planned, chains, sync_records
from tests.unit.conftest import BASE_URL

DATA = BASE_URL + "/api/v2/data"
BOUND = 5.0  # seconds any wait on another thread may take before the test gives up


@pytest.fixture(autouse=True)
def conn(set_conn, token):
    set_conn(host=BASE_URL, password=token)


@pytest.fixture
def log():
    return logging.getLogger("test.record_sync")


def people(n, start=0):
    return [{"email": f"p{i}@example.com"} for i in range(start, start + n)]


class PeopleServer:
    """The people endpoints over requests-mock (which answers one request at a time), counting creates."""

    def __init__(self, requests_mock):
        self.stored: dict[str, dict] = {}
        self.creates: list[str] = []
        requests_mock.get(re.compile(re.escape(DATA) + "/people/.+"), json=self._get)
        requests_mock.post(f"{DATA}/people", json=self._create)

    def _get(self, request, context):
        email = urllib.parse.unquote(request.path.rsplit("/", 1)[1])
        if email in self.stored:
            return self.stored[email]
        context.status_code = 404
        return {"status": "failed", "message": "not found"}

    def _create(self, request, context):
        body = request.json()
        self.creates.append(body["email"])
        self.stored[body["email"]] = {**body, "_id": f"id-{len(self.creates)}"}
        return self.stored[body["email"]]


class FakePeople:
    """What the workers' hooks share: the people Opsera holds, and how many calls are in flight at once."""

    def __init__(self):
        self.lock = threading.Condition()
        self.stored: dict[str, dict] = {}
        self.creates: list[str] = []
        self.threads: set[int] = set()
        self.active = self.most_active = 0
        self.rendezvous = 0  # calls wait until this many are in flight together (then never again)
        self.held: dict[str, threading.Event] = {}  # a read of that email waits for the event
        self.releases: dict[str, str] = {}  # creating the key releases the held read of the value

    def call(self, answer):
        with self.lock:
            self.threads.add(threading.get_ident())
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.lock.notify_all()
            if self.rendezvous and self.creates:  # the first record goes alone: it does not wait
                if not self.lock.wait_for(lambda: self.active >= self.rendezvous, timeout=BOUND):
                    raise AssertionError(f"never {self.rendezvous} calls at once (at most {self.most_active})")
                self.rendezvous = 0
        try:
            return answer()
        finally:
            with self.lock:
                self.active -= 1


class FakePeopleHook:
    """Stands in for OpseraHook: the two calls a person sync makes, and a copy per worker thread."""

    def __init__(self, people: FakePeople):
        self.people = people
        self.closed = False

    def for_another_thread(self):
        return FakePeopleHook(self.people)

    def close(self):
        self.closed = True

    def get_person(self, email):
        def answer():
            if email in self.people.held:
                assert self.people.held[email].wait(BOUND), "the held read was never released"
            if email not in self.people.stored:
                raise OpseraNotFoundError("not found", status_code=404)
            return self.people.stored[email]

        return self.people.call(answer)

    def create_person(self, body):
        def answer():
            with self.people.lock:
                self.people.creates.append(body["email"])
                self.people.stored[body["email"]] = dict(body)
            released = self.people.releases.get(body["email"])
            if released:
                self.people.held[released].set()
            return dict(body)

        return self.people.call(answer)


def test_workers_never_exceed_max_concurrency_and_reach_it(log):
    fake = FakePeople()
    fake.rendezvous = 4

    summary = sync_records(PersonRecords(log=log), people(40), hook=FakePeopleHook(fake), if_exists="skip",
                           log=log, max_concurrency=4)

    assert fake.most_active == 4
    assert len(fake.threads) == 5  # the caller's, for the first record, and four workers
    assert summary["created"] == 40 and sorted(fake.creates) == sorted(p["email"] for p in people(40))


def test_one_worker_keeps_the_list_order(log):
    fake = FakePeople()
    sync_records(PersonRecords(log=log), people(12), hook=FakePeopleHook(fake), if_exists="skip", log=log,
                 max_concurrency=1)
    assert fake.creates == [p["email"] for p in people(12)]
    assert fake.most_active == 1


def test_outcomes_are_in_list_order_whatever_order_the_workers_finish(log):
    fake = FakePeople()
    fake.held["p1@example.com"] = threading.Event()  # p1's read waits until p4 has been created
    fake.releases["p4@example.com"] = "p1@example.com"

    summary = sync_records(PersonRecords(log=log), people(6), hook=FakePeopleHook(fake), if_exists="skip",
                           log=log, max_concurrency=3, return_records=False)

    assert fake.creates.index("p4@example.com") < fake.creates.index("p1@example.com")
    assert summary["created_ids"] == [p["email"] for p in people(6)]


def test_every_worker_hook_is_closed_at_the_end(log, monkeypatch):
    fake = FakePeople()
    made = []
    hook = FakePeopleHook(fake)

    def twin():
        made.append(FakePeopleHook(fake))
        return made[-1]

    monkeypatch.setattr(hook, "for_another_thread", twin)
    sync_records(PersonRecords(log=log), people(30), hook=hook, if_exists="skip", log=log, max_concurrency=3)
    assert 1 <= len(made) <= 3 and all(h.closed for h in made)
    assert not hook.closed  # the caller's hook is the caller's to close


def test_the_same_record_twice_in_a_list_goes_to_one_worker_in_list_order():
    kind = PersonRecords()
    bodies = [{"email": "a@x.io"}, {"email": "b@x.io"}, {"email": "A@x.io", "firstName": "A"}, {"email": "c@x.io"}]
    planned = [Planned(i, f"person #{i}", body) for i, body in enumerate(bodies, start=1)]

    jobs = chains(kind, planned, together=True)

    assert [[item.position for item in job] for job in jobs] == [[1, 3], [2], [4]]
    assert [[item.position for item in job] for job in chains(kind, planned, together=False)] == [[1], [2], [3], [4]]


def test_a_repeated_person_is_created_once_with_many_workers(requests_mock, log):
    server = PeopleServer(requests_mock)
    records = people(10) + people(10) + [{"email": "P3@example.com"}]

    summary = sync_records(PersonRecords(log=log), records, hook=OpseraHook(), if_exists="skip", log=log,
                           max_concurrency=8)

    assert sorted(server.creates) == sorted(p["email"] for p in people(10))
    assert (summary["created"], summary["already_there"]) == (10, 11)


def test_mappings_are_listed_once_for_all_workers(requests_mock, log):
    listed = []
    requests_mock.get(f"{DATA}/mapping", json=lambda r, c: listed.append(1) or {"count": 0, "data": []})
    requests_mock.post(f"{DATA}/mapping", json=lambda r, c: {"id": f"m-{r.json()['attribute2']}", **r.json()})
    mappings = [{"attribute1": "p1", "attribute2": f"u{i}@x.io", "mappingType": "project-people",
                 "relationship": "many-to-many"} for i in range(30)]

    summary = sync_records(MappingRecords(log=log), mappings + mappings[:5], hook=OpseraHook(), if_exists="skip",
                           log=log, max_concurrency=6)

    assert len(listed) == 1
    assert summary["created_ids"] == [f"m-u{i}@x.io" for i in range(30)]
    assert summary["already_there"] == 5
    assert sum(r.method == "POST" for r in requests_mock.request_history) == 30


def test_a_permission_error_on_a_later_record_stops_every_worker(requests_mock, log, caplog):
    server = PeopleServer(requests_mock)
    forbidden = {"status_code": 403, "json": {"status": "failed", "message": "forbidden"}}
    requests_mock.get(f"{DATA}/people/p5%40example.com", **forbidden)

    with pytest.raises(OpseraPermissionError):
        sync_records(PersonRecords(log=log), people(200), hook=OpseraHook(), if_exists="skip", log=log,
                     max_concurrency=4)

    assert len(server.creates) < 200
    assert "Stopped at person #6 (p5@example.com)" in caplog.text


# -- the 429 gate ---------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_gate_holds_others_back_but_not_the_hook_that_got_the_429():
    clock = FakeClock()
    gate = RateLimitGate(clock=clock)
    first, second = object(), object()

    gate.hold(5.0, first)
    assert gate.pause_for(first) == 0.0  # it waits through its own retry policy
    assert gate.pause_for(second) == 5.0
    clock.now += 2
    assert gate.pause_for(second) == 3.0
    gate.hold(1.0, second)  # a shorter hold does not shorten the pause
    assert gate.pause_for(second) == 3.0
    gate.hold(10.0, second)
    assert gate.pause_for(first) == 10.0 and gate.pause_for(second) == 0.0
    clock.now += 11
    assert gate.pause_for(first) == 0.0


def test_a_429_with_retry_after_pauses_the_other_worker_hooks(requests_mock):
    requests_mock.get(f"{DATA}/people/a%40x.io", [
        {"status_code": 429, "headers": {"Retry-After": "7"}, "json": {"message": "slow down"}},
        {"json": {"email": "a@x.io"}},
    ])
    requests_mock.get(f"{DATA}/people/b%40x.io", json={"email": "b@x.io"})
    hook = OpseraHook()
    first, second = hook.for_another_thread(), hook.for_another_thread()
    first.sleeps, second.sleeps = [], []
    first._sleep, second._sleep = first.sleeps.append, second.sleeps.append

    first.get_person("a@x.io")
    second.get_person("b@x.io")

    assert first.sleeps == [7.0]  # the retry policy's wait, honouring Retry-After
    assert len(second.sleeps) == 1 and 6.0 < second.sleeps[0] <= 7.0
    assert first.session is not second.session and first.settings is second.settings


def test_a_429_mid_batch_is_waited_out_and_fails_no_record(requests_mock, log):
    server = PeopleServer(requests_mock)
    answer = server._create
    refused = []

    def create(request, context):
        if request.json()["email"] == "p7@example.com" and not refused:
            refused.append(1)
            context.status_code, context.headers["Retry-After"] = 429, "2"
            return {"message": "slow down"}
        return answer(request, context)

    requests_mock.post(f"{DATA}/people", json=create)
    hook = OpseraHook()
    sleeps = []
    hook._sleep = sleeps.append  # every worker's copy shares it

    summary = sync_records(PersonRecords(log=log), people(30), hook=hook, if_exists="skip", log=log,
                           max_concurrency=4)

    assert summary["failed"] == 0 and summary["created"] == 30
    assert sorted(server.creates) == sorted(p["email"] for p in people(30))
    assert 2.0 in sleeps  # the worker that got the 429
    assert any(1.0 < s < 2.0 for s in sleeps)  # another worker held back by the gate


# -- progress and the task log ----------------------------------------------------------------------------


def test_progress_lines_come_at_a_steady_pace_with_rate_and_time_left(caplog, log):
    clock = FakeClock()
    progress = SyncProgress(5000, "people", log, every=10.0, clock=clock)
    caplog.set_level(logging.INFO)
    for _ in range(900):
        progress.add("created")
    progress.add("already there")
    progress.add("failed")
    clock.now += 9.9
    progress.tick()
    assert caplog.text == ""  # not yet
    clock.now += 0.1
    progress.tick()
    assert "Opsera people: 902 of 5,000 done (900 created, 1 already there, 1 failed), 90.2/s, about 45.4 s left." \
        in caplog.text
    caplog.clear()
    progress.tick()
    assert caplog.text == ""
    assert progress.summary() == "Opsera people: 900 created, 1 already there, 1 failed, in 10.0 s."


def test_a_list_logs_each_record_at_debug_and_one_summary_at_info(requests_mock, log, caplog):
    PeopleServer(requests_mock)
    caplog.set_level(logging.DEBUG, logger=log.name)
    sync_records(PersonRecords(log=log), people(20), hook=OpseraHook(), if_exists="skip", log=log,
                 max_concurrency=4, progress_every=0.0)

    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name == log.name]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and r.name == log.name]
    assert sum(m.startswith("Created person #") for m in debug) == 20
    assert not any(m.startswith("Created") for m in info)
    assert info[-1].startswith("Opsera people: 20 created, 0 already there, 0 failed, in ")
    assert any(re.match(r"Opsera people: \d+ of 20 done \(", m) for m in info)


def test_a_warning_many_records_share_is_logged_once(requests_mock, log, caplog):
    PeopleServer(requests_mock)
    records = [{**p, "badge": "7"} for p in people(12)]
    caplog.set_level(logging.WARNING, logger=log.name)
    kind = PersonRecords(allow_unknown_fields=True, log=log)

    sync_records(kind, records, hook=OpseraHook(), if_exists="skip", log=log)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == log.name]
    assert len(warnings) == 1
    assert "does not know: 'badge'" in warnings[0] and "and 7 more" in warnings[0]
