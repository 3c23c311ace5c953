"""A tool update that would drop a nested key, or carries a misspelt root key, is refused over real sockets."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError

from .support import JENKINS
from .test_ops_registry import SEED_SECRET_KEY, UPDATE, stored_tool
from .test_ops_registry import run as run_with_xcom


def run(**kwargs):
    """The updated tool."""
    return run_with_xcom(**kwargs)[0]


def without_secret_key(tool: dict) -> dict:
    return {key: value for key, value in tool["configuration"].items() if key != "secretKey"}


@pytest.mark.parametrize("dry_run", [False, True])
def test_dropping_a_nested_credential_is_refused_and_the_tool_stays_as_it_was(opsera_conn, captured, dry_run):
    before = stored_tool(opsera_conn)
    configuration = {**without_secret_key(before), "jenkinsUrl": "https://jenkins2.example.com"}

    with pytest.raises(OpseraInputError) as caught:
        run(tool={"configuration": configuration}, dry_run=dry_run)

    message = str(caught.value)
    assert message.startswith(f"The update of tool {JENKINS} (Jenkins Prod) would remove configuration.secretKey:")
    assert "Nothing was sent" in message and "allow_removing_keys=True" in message
    assert opsera_conn.request_count(*UPDATE) == 0
    assert stored_tool(opsera_conn) == before
    log = captured()
    assert '- configuration.secretKey: "***" (removed)' in log
    assert SEED_SECRET_KEY not in log and SEED_SECRET_KEY not in message


def test_with_the_opt_in_the_key_is_gone_and_the_log_says_so(opsera_conn, captured):
    configuration = without_secret_key(stored_tool(opsera_conn))

    updated = run(tool={"configuration": configuration}, allow_removing_keys=True)

    assert "secretKey" not in updated["configuration"]
    assert stored_tool(opsera_conn)["configuration"] == configuration
    assert opsera_conn.request_count(*UPDATE) == 1
    log = captured()
    assert f"Removed configuration.secretKey from tool {JENKINS} (Jenkins Prod) (allow_removing_keys=True)." in log
    assert SEED_SECRET_KEY not in log


def test_replacing_a_whole_object_with_null_names_every_key_it_drops(opsera_conn):
    with pytest.raises(
        OpseraInputError,
        match="would remove configuration.jenkinsUrl, configuration.jenkinsPort, "
        "configuration.userName, configuration.secretKey:",
    ):
        run(tool={"configuration": None})
    assert opsera_conn.request_count(*UPDATE) == 0


@pytest.mark.parametrize(
    "typo, meant", [("configuraton", "configuration"), ("descripton", "description"), ("Active", "active")]
)
def test_a_misspelt_root_key_is_refused_naming_the_key_it_resembles(opsera_conn, typo, meant):
    before = stored_tool(opsera_conn)
    with pytest.raises(OpseraInputError) as caught:
        run(tool={typo: before.get(meant)})
    assert f"tool: unknown field(s) {typo!r} (did you mean {meant!r}?)" in str(caught.value)
    assert "allow_unknown_fields=True" in str(caught.value)
    assert opsera_conn.request_count(*UPDATE) == 0
    assert stored_tool(opsera_conn) == before


def test_a_new_root_key_is_sent_when_asked_for_with_a_warning(opsera_conn, captured):
    updated = run(tool={"owner_team": "platform"}, allow_unknown_fields=True)
    assert updated["owner_team"] == "platform"
    assert "tool: sending field(s) this provider does not know: 'owner_team'" in captured()
    # from then on the tool has it: changing it again needs no opt-in
    assert run(tool={"owner_team": "release"})["owner_team"] == "release"
