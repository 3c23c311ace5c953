"""Naming a pipeline: by its id or by its name, and finding the one pipeline a name means."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraInputError, OpseraPipelineLookupError

#: XCom key under which a task given ``pipeline_name`` stores the id it resolved
PIPELINE_ID_XCOM_KEY = "pipeline_id"
#: candidates named in an error, at most
SHOWN_CANDIDATES = 5


def is_given(value: Any) -> bool:
    return value is not None and value != ""


def check_one_reference(pipeline_id: Any, pipeline_name: Any) -> None:
    """Exactly one of ``pipeline_id`` and ``pipeline_name``; a template that renders empty counts as not given."""
    if is_given(pipeline_id) and is_given(pipeline_name):
        raise OpseraInputError(
            f"Give either pipeline_id or pipeline_name, not both (got pipeline_id={pipeline_id!r}, "
            f"pipeline_name={pipeline_name!r})"
        )
    if not is_given(pipeline_id) and not is_given(pipeline_name):
        raise OpseraInputError("Give pipeline_id (the pipeline's 24-hex id) or pipeline_name (its name in Opsera)")


def record_id(record: dict[str, Any]) -> str:
    """A record's ``_id``, which newer answers may wrap as ``{"$oid": ...}``."""
    value = record.get("_id")
    if isinstance(value, dict):
        value = value.get("$oid")
    return str(value or "")


def checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise OpseraInputError(f"pipeline_name must be a pipeline's name, got {name!r}")
    return name.strip()


def pick_pipeline(name: Any, pipelines: Sequence[Any]) -> str:
    """The id of the one pipeline called ``name`` (exactly, surrounding spaces aside), or an error naming candidates."""
    wanted = checked_name(name)
    named = [p for p in pipelines if isinstance(p, dict) and isinstance(p.get("name"), str)]
    matches = [p for p in named if p["name"].strip() == wanted]
    if len(matches) == 1:
        return validation.object_id(record_id(matches[0]), f"the id of pipeline {wanted!r}")
    if matches:
        ids = ", ".join(record_id(p) for p in matches[:SHOWN_CANDIDATES])
        raise OpseraPipelineLookupError(
            f"{len(matches)} Opsera pipelines are named {wanted!r} ({ids}): give pipeline_id= to say which one."
        )
    raise OpseraPipelineLookupError(_no_match_message(wanted, [p["name"].strip() for p in named], len(pipelines)))


def _no_match_message(wanted: str, names: list[str], listed: int) -> str:
    import difflib

    message = f"No Opsera pipeline visible to this token is named {wanted!r}."
    by_case = sorted({n for n in names if n.lower() == wanted.lower()})
    near = by_case or difflib.get_close_matches(wanted, sorted(set(names)), n=3, cutoff=0.6)
    if near:
        message += f" Did you mean {' or '.join(repr(n) for n in near)}?"
    elif names:
        shown = sorted(set(names))
        more = f" and {len(shown) - SHOWN_CANDIDATES} more" if len(shown) > SHOWN_CANDIDATES else ""
        message += f" Pipelines visible: {', '.join(repr(n) for n in shown[:SHOWN_CANDIDATES])}{more}."
    else:
        message += " The token sees no pipelines at all."
    if listed >= RECORD_CAP:
        message += (
            f" Opsera listed {listed} pipelines, its cap of {RECORD_CAP}: the list may be incomplete, so the "
            "pipeline may exist beyond it; give pipeline_id= instead."
        )
    return message


def checked_pipeline_id(value: Any) -> str:
    """A pipeline id (24 hex characters); what reads like a name is refused naming the argument it belongs in."""
    try:
        return validation.object_id(value, "pipeline_id")
    except OpseraInputError as error:
        text = value.strip() if isinstance(value, str) else ""
        if text and not all(char in string.hexdigits for char in text):
            raise OpseraInputError(
                f"{error}. If that is the pipeline's name, give pipeline_name={text!r} instead "
                "(the id is in the pipeline's portal URL)"
            ) from None
        raise


def check_reference_at_parse(pipeline_id: Any, pipeline_name: Any) -> None:
    """:func:`check_one_reference` and a literal ``pipeline_id`` when the DAG is parsed; templates once rendered."""
    if not (validation.is_template(pipeline_id) or validation.is_template(pipeline_name)):
        check_one_reference(pipeline_id, pipeline_name)
    if is_given(pipeline_id):
        validation.checked_at_parse(checked_pipeline_id, pipeline_id)


def resolve_pipeline_id(hook: Any, pipeline_id: Any, pipeline_name: Any, context: Any, log: Any) -> str:
    """The pipeline id a task works on, once its templates are rendered: given, or found by name.

    An id found by name is logged and pushed to the task's XCom.
    """
    check_one_reference(pipeline_id, pipeline_name)
    if is_given(pipeline_id):
        return checked_pipeline_id(pipeline_id)
    resolved = hook.find_pipeline(pipeline_name)
    log.info("Opsera pipeline %r is %s.", checked_name(pipeline_name), resolved)
    context["ti"].xcom_push(key=PIPELINE_ID_XCOM_KEY, value=resolved)
    return resolved
