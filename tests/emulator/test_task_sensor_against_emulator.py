"""OpseraTaskSensor and OpseraTaskTrigger over real sockets, on the emulator's manual clock."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.sensors import OpseraTaskSensor
from airflow_provider_opsera.triggers import OpseraTaskTrigger
from tests.unit.pipeline_fakes import make_context

from .support import CERT_ROTATION, NIGHTLY_SYNC
from .test_pipeline_trigger_against_emulator import first_event


def test_task_trigger_follows_the_latest_run(opsera_conn):
    opsera_conn.start_task_run(NIGHTLY_SYNC)
    assert first_event(OpseraTaskTrigger(NIGHTLY_SYNC, poll_interval=10), opsera_conn)["status"] == "success"
    opsera_conn.start_task_run(CERT_ROTATION)
    assert first_event(OpseraTaskTrigger(CERT_ROTATION, poll_interval=10), opsera_conn)["status"] == "failed"


def poke_until_done(sensor, emulator, interval: float = 10) -> None:
    for _ in range(100):
        if sensor.poke(make_context()):
            return
        emulator.advance(interval)
    raise AssertionError("the sensor never finished")


def test_task_sensor_pokes_to_success_with_the_console(opsera_conn, task_log):
    opsera_conn.start_task_run(NIGHTLY_SYNC)
    poke_until_done(OpseraTaskSensor(task_id="wait", opsera_task_id=NIGHTLY_SYNC, deferrable=False), opsera_conn)
    assert task_log.in_order("[fetch] Fetching 12 repositories", "[push] Sync complete")


def test_task_sensor_fails_with_the_failing_output(opsera_conn):
    opsera_conn.start_task_run(CERT_ROTATION)
    sensor = OpseraTaskSensor(task_id="wait", opsera_task_id=CERT_ROTATION, deferrable=False)
    with pytest.raises(AirflowException, match="certificate authority refused") as raised:
        poke_until_done(sensor, opsera_conn)
    assert not isinstance(raised.value, AirflowFailException)
