"""Injected faults, each kind, and the request counts that include faulted requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from airflow_provider_opsera.emulator import OpseraEmulator

from .support import BLANK, Client

STATUS = "/api/v1/pipeline/status"
STATUS_ROUTE = f"POST {STATUS}"


def test_status_fault_answers_with_an_opsera_error_body(emu, admin):
    emu.set_fault(STATUS_ROUTE, "status", status=503)
    response = admin.post(STATUS, {"pipelineId": BLANK})
    assert response.status_code == 503
    assert response.json()["status"] == "failed"
    # Other routes are untouched.
    assert admin.post("/api/v1/pipeline/summary", {"pipelineId": BLANK}).status_code == 200


def test_count_limits_a_fault_to_the_next_n_requests(emu, admin):
    emu.set_fault(STATUS_ROUTE, "status", status=500, count=2)
    codes = [admin.post(STATUS, {"pipelineId": BLANK}).status_code for _ in range(4)]
    assert codes == [500, 500, 200, 200]
    assert emu.request_count("POST", STATUS) == 4


def test_retry_after_answers_429_with_the_header(emu, admin):
    emu.set_fault(STATUS_ROUTE, "retry_after", retry_after=3)
    response = admin.post(STATUS, {"pipelineId": BLANK})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_latency_delays_then_answers(emu, admin):
    emu.set_fault(STATUS_ROUTE, "latency", seconds=0.3)
    began = time.monotonic()
    response = admin.post(STATUS, {"pipelineId": BLANK})
    assert time.monotonic() - began >= 0.3
    assert response.status_code == 200


def test_drop_processes_the_request_then_closes_the_connection(emu, admin):
    emu.set_fault("POST /api/v1/pipeline/run", "drop", count=1)
    with pytest.raises(requests.ConnectionError):
        admin.post("/api/v1/pipeline/run", {"pipelineId": BLANK})
    # The write happened exactly once even though the client saw no answer.
    assert admin.status(BLANK, 1)["status"] == "running"
    assert admin.summary(BLANK)["workflow"]["run_count"] == 1
    assert emu.request_count("POST", "/api/v1/pipeline/run") == 1
    # A retry by the client is refused because the first run is in progress.
    assert admin.run(BLANK)["status"] == "failed"


def test_hold_starts_the_run_before_its_answer_comes(emu, admin, client_for):
    emu.set_fault("POST /api/v1/pipeline/run", "hold", seconds=3, count=1)  # within the client's 10 s
    observer = client_for("admin")
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(admin.run, BLANK)
        deadline = time.monotonic() + 2.5
        while observer.summary(BLANK)["workflow"]["run_count"] != 1:
            assert time.monotonic() < deadline, "the held run request started no run"
            time.sleep(0.05)
        assert not answer.done(), "the answer came before the hold was over"
        assert observer.status(BLANK, 1)["status"] == "running"
        assert answer.result(timeout=15)["runCount"] == 1


def test_html_fault_is_a_proxy_error_page(emu, admin):
    emu.set_fault("*", "html")
    response = admin.post(STATUS, {"pipelineId": BLANK})
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_malformed_fault_is_200_with_invalid_json(emu, admin):
    emu.set_fault(STATUS_ROUTE, "malformed")
    response = admin.post(STATUS, {"pipelineId": BLANK})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_rate_is_deterministic_for_a_seed():
    def outcomes(seed: int) -> list[int]:
        with OpseraEmulator(clock="manual") as emu:
            emu.set_fault(STATUS_ROUTE, "status", status=503, rate=0.5, seed=seed)
            client = Client(emu.url, emu.token("admin"))
            return [client.post(STATUS, {"pipelineId": BLANK}).status_code for _ in range(20)]

    first, again, other = outcomes(7), outcomes(7), outcomes(8)
    assert first == again
    assert set(first) == {200, 503}
    assert first != other


def test_a_bare_path_matches_any_method_and_faults_skip_admin_routes(emu, admin):
    emu.set_fault("/api/v1/registry/tools", "status", status=500)
    assert admin.get("/api/v1/registry/tools").status_code == 500
    emu.clear_faults()
    emu.set_fault("*", "status", status=500)
    assert requests.get(f"{emu.url}/_emulator/health", timeout=5).json() == {"status": "ok"}
    emu.clear_faults()
    assert admin.get("/api/v1/registry/tools").status_code == 200


def test_faults_through_the_admin_routes(emu, admin):
    added = requests.post(
        f"{emu.url}/_emulator/faults",
        json={"route": STATUS_ROUTE, "kind": "status", "status": 504, "count": 1},
        timeout=5,
    )
    assert added.status_code == 200
    assert added.json()["faults"][0]["status"] == 504
    assert admin.post(STATUS, {"pipelineId": BLANK}).status_code == 504
    requests.post(f"{emu.url}/_emulator/faults", json={"route": "*", "kind": "html"}, timeout=5)
    assert requests.delete(f"{emu.url}/_emulator/faults", timeout=5).json() == {"faults": []}
    assert admin.post(STATUS, {"pipelineId": BLANK}).status_code == 200
    bad = requests.post(f"{emu.url}/_emulator/faults", json={"kind": "explode"}, timeout=5)
    assert bad.status_code == 400


def test_request_counts_are_keyed_by_route_template(emu, admin):
    admin.get("/api/v2/data/people/jd@example.com")
    admin.get("/api/v2/data/people/dev@example.com")
    admin.post(STATUS, {"pipelineId": BLANK})
    counts = requests.get(f"{emu.url}/_emulator/requests", timeout=5).json()["counts"]
    assert counts == {"GET /api/v2/data/people/{email}": 2, STATUS_ROUTE: 1}
    assert emu.request_counts() == counts
    # Unauthenticated and refused requests count too.
    requests.post(emu.url + STATUS, json={}, timeout=5)
    assert emu.request_count("POST", STATUS) == 2
