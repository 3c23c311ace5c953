"""The diff behind the tool update: what counts as a change, and what a reviewer sees of it."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.writing.diffing import (
    MASK,
    contains,
    diff_root_properties,
    field_differences,
    is_secret_key,
    json_equal,
    masked,
    secret_strings,
)

CURRENT = {
    "name": "Jenkins Prod",
    "active": True,
    "configuration": {"jenkinsUrl": "https://a", "userName": "bot", "secretKey": "vault-ref-1"},
}


@pytest.mark.parametrize(
    "name", ["password", "secretKey", "api_key", "accessToken", "credentials", "privateKey", "client-secret", "AUTH"]
)
def test_secret_looking_keys(name):
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["name", "jenkinsUrl", "userName", "tool_identifier", "tags", "owner"])
def test_ordinary_keys(name):
    assert not is_secret_key(name)


def test_masking_reaches_any_depth_and_hides_tokens_in_text():
    value = {
        "a": [{"b": {"password": "hunter2", "ok": "shown"}}],
        "credentials": {"user": "x"},
        "note": "token eyJhbGciOi.eyJzdWIi.sig in text",
    }
    assert masked(value) == {
        "a": [{"b": {"password": MASK, "ok": "shown"}}],
        "credentials": MASK,
        "note": f"token {MASK} in text",
    }
    assert sorted(secret_strings(value)) == ["hunter2", "x"]


@pytest.mark.parametrize(
    "left, right, equal",
    [(1, 1.0, True), (True, 1, False), ({"a": 1, "b": [1]}, {"b": [1], "a": 1}, True), ("1", 1, False),
     (None, None, True), ([1, 2], [2, 1], False), ({"a": 1}, {"a": 1, "b": 2}, False)],
)
def test_json_equality(left, right, equal):
    assert json_equal(left, right) is equal


def test_only_differing_root_properties_count_as_changes():
    diff = diff_root_properties(CURRENT, {"name": "Jenkins Prod", "active": False, "description": "new"})
    assert diff.changed == {"active": False, "description": "new"}
    assert diff.previous == {"active": True, "description": None}  # None: the tool did not have it
    assert diff.unchanged == ["name"]
    assert diff.lines == ["~ active: true -> false", '+ description: "new"']


def test_a_nested_change_is_shown_by_path_with_secrets_masked_and_removals_named():
    wanted = {"configuration": {"jenkinsUrl": "https://b", "secretKey": "vault-ref-2"}}
    diff = diff_root_properties(CURRENT, wanted)
    assert diff.changed == wanted
    assert diff.previous == {"configuration": CURRENT["configuration"]}
    assert diff.lines == [
        '~ configuration.jenkinsUrl: "https://a" -> "https://b"',
        '- configuration.userName: "bot" (removed)',
        f'~ configuration.secretKey: "{MASK}" -> "{MASK}" (changed)',
    ]
    assert diff.removed_keys == ["configuration.userName"]
    assert "vault-ref" not in "\n".join(diff.lines)


def test_nothing_differs_means_an_empty_diff():
    assert diff_root_properties(CURRENT, {"configuration": dict(CURRENT["configuration"])}).empty


def test_existing_records_may_hold_more_than_was_asked_for():
    existing = {"email": "a@b.io", "firstName": "A", "createdAt": "t", "owner": {"email": "x@y.io", "id": 1}}
    assert contains(existing, {"email": "a@b.io", "owner": {"email": "x@y.io"}})
    assert field_differences(existing, {"firstName": "B", "team": "T"}) == [
        'firstName: "A" in Opsera, "B" requested',
        'team: (not set) in Opsera, "T" requested',
    ]
