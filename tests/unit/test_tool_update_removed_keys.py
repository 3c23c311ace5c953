"""Which nested keys a tool update drops: every path named, at any depth, secret objects included."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.writing.diffing import diff_root_properties, removed_keys

CURRENT = {
    "name": "Jenkins Prod",
    "configuration": {
        "jenkinsUrl": "https://a",
        "secretKey": "vault-ref-1",
        "credentials": {"user": "bot", "password": "hunter2"},
        "nested": {"deeper": {"keep": 1, "drop": 2}},
    },
    "tags": [{"type": "environment"}],
}


@pytest.mark.parametrize(
    "wanted, gone",
    [
        ({"name": "Renamed"}, []),
        ({"configuration": {**CURRENT["configuration"], "extra": 1}}, []),
        (
            {
                "configuration": {
                    "jenkinsUrl": "https://b",
                    "credentials": {"user": "bot"},
                    "nested": {"deeper": {"keep": 1}},
                }
            },
            [
                "configuration.secretKey",
                "configuration.credentials.password",
                "configuration.nested.deeper.drop",
            ],
        ),
        (
            {"configuration": None},
            [
                "configuration.jenkinsUrl",
                "configuration.secretKey",
                "configuration.credentials",
                "configuration.nested",
            ],
        ),
        ({"tags": []}, []),  # a list is a value: a shorter one drops no key
    ],
)
def test_the_keys_an_update_would_drop_are_named_by_path(wanted, gone):
    assert diff_root_properties(CURRENT, wanted).removed_keys == gone


def test_names_only_never_values():
    paths = removed_keys(CURRENT["configuration"], {}, "configuration")
    assert not any(secret in path for path in paths for secret in ("vault-ref-1", "hunter2"))


def test_a_key_the_tool_did_not_have_drops_nothing():
    assert removed_keys(None, {"a": 1}, "configuration") == []
    assert diff_root_properties({}, {"configuration": {"a": 1}}).removed_keys == []
