"""OpseraHook: one method per call of Opsera's Customer Platform API (v1) and Data API (v2)."""

from __future__ import annotations

import copy
import time
from functools import cached_property
from typing import Any

import requests

from airflow_provider_opsera._compat import BaseHook, mask_secret
from airflow_provider_opsera.client import redaction, validation
from airflow_provider_opsera.client.api import ENDPOINTS, RECORD_CAP, Endpoint, action_body
from airflow_provider_opsera.client.connection import OpseraConnectionSettings
from airflow_provider_opsera.client.connection_form import (
    CONN_TYPE,
    HOOK_NAME,
    legacy_form_widgets,
    legacy_ui_field_behaviour,
)
from airflow_provider_opsera.client.pipeline_lookup import checked_name, pick_pipeline
from airflow_provider_opsera.client.scopes import (
    PROBE_NOUNS,
    describe_abilities,
    either,
    probe_call,
    scope_words,
    token_owner,
    token_scopes,
)
from airflow_provider_opsera.client.token import check_expiry, rotated_token_note
from airflow_provider_opsera.exceptions import (
    OpseraAuthenticationError,
    OpseraError,
    OpseraPermissionError,
    OpseraTokenExpiredError,
)
from airflow_provider_opsera.hooks.responses import error_for, may_be_capped, page_records, parse_json, task_status
from airflow_provider_opsera.hooks.retry import (
    DEFAULT_RETRY_POLICY,
    RateLimitGate,
    RetryBudget,
    RetryPolicy,
    query_params,
    raise_final,
    request_timeout,
    retrying_kwargs,
)
from airflow_provider_opsera.hooks.sync_transport import (
    TokenAuth,
    deadline,
    deadline_session,
    quiet_unverified_warnings,
    read_body,
    transport_error,
)
from airflow_provider_opsera.hooks.transport import checked_ca_bundle, refused_redirect, warn_unverified_once

MAX_CURSOR_PAGES = 1000


class OpseraHook(BaseHook):
    """Talks to the Opsera API with the connection ``opsera_conn_id``.

    Requests share one HTTP session, time out per the connection's ``timeout`` extra,
    and are retried on 429, 5xx and connection errors with backoff, except a call that
    must not be sent twice (a pipeline run, a mapping) once it may have reached Opsera: that raises
    :class:`~airflow_provider_opsera.exceptions.OpseraAmbiguousRequestError` for the caller to resolve.

    :param opsera_conn_id: the Airflow connection to Opsera
    :param retry_policy: how often and how long a failed call is retried (the default suits most uses)
    :param timeout: seconds per request, instead of the connection's ``timeout`` extra
    """

    conn_name_attr = "opsera_conn_id"
    default_conn_name = "opsera_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self,
        opsera_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.opsera_conn_id = opsera_conn_id
        self.retry_policy = retry_policy
        self._timeout_override = timeout
        self._sleep = time.sleep  # replaced by tests with a fake clock
        self.rate_limit_gate = RateLimitGate()

    # -- connection form (Airflow < 3.2 reads these; newer Airflow reads the provider info) --

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return legacy_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return legacy_ui_field_behaviour()

    # -- plumbing --

    @cached_property
    def settings(self) -> OpseraConnectionSettings:
        settings = OpseraConnectionSettings.from_connection(self.get_connection(self.opsera_conn_id))
        register_secrets(settings)
        warning = check_expiry(settings.token_expires)
        if warning:
            self.log.warning(warning)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        session = deadline_session()
        session.headers.update({"Accept": "application/json", "User-Agent": "airflow-provider-opsera"})
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def for_another_thread(self) -> OpseraHook:
        """A copy with an HTTP session of its own, for one worker thread (a requests.Session is not thread-safe).

        The copy shares the connection settings, read here once rather than in every thread,
        and the rate-limit gate: a 429 one copy gets holds back the requests of all of them.
        """
        self.settings  # read the connection now, in the calling thread
        twin = copy.copy(self)
        twin.__dict__.pop("session", None)
        return twin

    def call(
        self,
        name: str,
        *,
        path_params: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send one API call by its name in ``client/api.py``'s ``ENDPOINTS``, with retries; return the parsed JSON.

        When Opsera refuses the token (401, or it expired), the connection is read again, once:
        if it holds another token by now (it was rotated), the call is sent again with that one.
        """
        endpoint = ENDPOINTS[name]
        params = query_params(params)
        settings = self.settings
        try:
            return self._call_with(settings, endpoint, path_params, json, params)
        except OpseraAuthenticationError:
            rotated = self._settings_after_refusal(settings)
            if rotated is None:
                raise
        return self._call_with(rotated, endpoint, path_params, json, params)

    def _settings_after_refusal(self, refused: OpseraConnectionSettings) -> OpseraConnectionSettings | None:
        """The connection read again after Opsera refused its token; None when the token is the same."""
        self.__dict__.pop("settings", None)
        try:
            settings = self.settings
        except Exception as error:  # the refusal is what the caller must see, not a failed re-read
            self.log.warning(
                "Could not read connection %r again after Opsera refused its token: %s", self.opsera_conn_id, error
            )
            self.__dict__["settings"] = refused
            return None
        if settings.token == refused.token:
            return None
        self.log.warning(rotated_token_note(self.opsera_conn_id))
        return settings

    def _call_with(
        self,
        settings: OpseraConnectionSettings,
        endpoint: Endpoint,
        path_params: dict[str, str] | None,
        json: Any,
        params: dict[str, str],
    ) -> Any:
        check_expiry(settings.token_expires)  # a long-lived hook must not send a token that expired meanwhile
        url = settings.url_for(endpoint.path, path_params)
        budget = RetryBudget(self.retry_policy)
        import tenacity

        try:
            for attempt in tenacity.Retrying(
                **retrying_kwargs(self.retry_policy, endpoint, sleep=self._sleep, log=self.log, budget=budget)
            ):
                with attempt:
                    return self._send_once(endpoint, url, settings, json, params)
        except OpseraError as error:
            raise_final(self.retry_policy, error, endpoint)
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _send_once(
        self,
        endpoint: Endpoint,
        url: str,
        settings: OpseraConnectionSettings,
        body: Any,
        params: dict[str, Any],
    ) -> Any:
        pause = self.rate_limit_gate.pause_for(self)
        if pause:
            self._sleep(pause)
        timeout = request_timeout(self._timeout_override or settings.timeout)
        if settings.verify is False and warn_unverified_once("sync", settings.base_url, self.log):
            quiet_unverified_warnings(settings.base_url)
        verify = checked_ca_bundle(settings.verify)
        try:
            with deadline(timeout):
                response = self.session.request(
                    endpoint.method,
                    url,
                    json=body,
                    params=params or None,
                    auth=TokenAuth(settings.authorization),
                    timeout=timeout,
                    verify=verify,
                    proxies=settings.proxies,
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    status, headers = response.status_code, response.headers
                    refusal = refused_redirect(endpoint, status, headers.get("Location"), settings.base_url)
                    if refusal is not None:
                        raise refusal
                    text = read_body(endpoint, response)
        except requests.exceptions.RequestException as error:
            raise transport_error(endpoint, settings, error, timeout) from None
        if 200 <= status < 300:
            return parse_json(text, endpoint, status)
        error = error_for(endpoint, status, text, headers.get("Retry-After"), settings)
        self.rate_limit_gate.hold_after(error, self.retry_policy, self)
        raise error

    def list_records(self, name: str, *, params: dict[str, Any] | None = None) -> list[Any]:
        """All records of a list call, following cursor pages where the endpoint has them."""
        records, cursor = page_records(self.call(name, params=params))
        pages = 1
        while cursor and pages < MAX_CURSOR_PAGES:
            page, cursor = page_records(self.call(name, params={**(params or {}), "cursor": cursor}))
            records.extend(page)
            pages += 1
        if may_be_capped(records):
            self.log.warning(
                "Opsera %s returned %d records, its cap: there may be more than were returned.",
                name,
                RECORD_CAP,
            )
        return records

    # -- pipelines --

    def run_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        """Start a run. Answers ``{"status": "executed", "runCount": N}`` or ``{"status": "failed", ...}``."""
        pipeline_id = validation.object_id(pipeline_id, "pipeline_id")
        return self.call("pipeline_run", json={"pipelineId": pipeline_id})

    def get_pipeline_run_status(self, pipeline_id: str, run_count: int) -> dict[str, Any]:
        body = {
            "pipelineId": validation.object_id(pipeline_id, "pipeline_id"),
            "runCount": validation.positive_int(run_count, "run_count"),
        }
        return self.call("pipeline_status", json=body)

    def stop_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        """Soft stop: Opsera lets the current step finish, then ends the run."""
        return self.call("pipeline_stop", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")})

    def reset_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return self.call("pipeline_reset", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")})

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        """The pipeline's full object (``/pipeline/summary``)."""
        return self.call("pipeline_summary", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")})

    def get_pipeline_logs(
        self, pipeline_id: str, run_count: int | None = None, *, console_only: bool = False
    ) -> list[dict[str, Any]]:
        """Activity records, newest first, at most 1000."""
        body: dict[str, Any] = {"pipelineId": validation.object_id(pipeline_id, "pipeline_id")}
        if run_count is not None:
            body["runCount"] = validation.positive_int(run_count, "run_count")
        if console_only:
            body["type"] = "console output"
        records, _ = page_records(self.call("pipeline_logs", json=body))
        return records

    def list_pipelines(self) -> list[dict[str, Any]]:
        return self.list_records("pipeline_list")

    def find_pipeline(self, name: str) -> str:
        """The id of the one pipeline named ``name``, from the pipeline list (needs the Power User role).

        No match or several raise :class:`~airflow_provider_opsera.exceptions.OpseraPipelineLookupError` naming
        the candidates.
        """
        name = checked_name(name)
        try:
            pipelines = self.list_pipelines()
        except OpseraPermissionError as error:
            raise OpseraPermissionError(
                f"Finding pipeline {name!r} by name reads Opsera's pipeline list, which needs the Power User role "
                f"(or higher) for the token's owner; without it, give pipeline_id= instead. {error}",
                status_code=error.status_code,
                endpoint=error.endpoint,
            ) from None
        return pick_pipeline(name, pipelines)

    # -- approval gates (Opsera's actions endpoint; its shape is inferred, see client/api.py) --

    def approve_pipeline(self, pipeline_id: str) -> Any:
        """Approve the gate the pipeline waits at. Opsera addresses the pipeline, not a run: read its state first."""
        pipeline_id = validation.object_id(pipeline_id, "pipeline_id")
        return self.call("pipeline_approve", json=action_body("pipeline_approve", pipeline_id))

    def reject_pipeline(self, pipeline_id: str, message: str) -> Any:
        """Reject the gate the pipeline waits at, saying why (``message``); Opsera ends the run."""
        pipeline_id = validation.object_id(pipeline_id, "pipeline_id")
        message = validation.string(message, "message")
        return self.call("pipeline_reject", json=action_body("pipeline_reject", pipeline_id, message))

    def get_pipeline_action_status(self, pipeline_id: str) -> Any:
        """The actions endpoint's ``status`` of a pipeline (a read)."""
        pipeline_id = validation.object_id(pipeline_id, "pipeline_id")
        return self.call("pipeline_action_status", json=action_body("pipeline_action_status", pipeline_id))

    # -- tool registry --

    def list_tools(self) -> list[dict[str, Any]]:
        return self.list_records("tool_list")

    def get_tool(self, tool_id: str) -> dict[str, Any]:
        return self.call("tool_summary", json={"toolId": validation.object_id(tool_id, "tool_id")})

    def update_tool(self, tool_id: str, tool: dict[str, Any]) -> dict[str, Any]:
        """Partial update of the tool's root properties; answers the updated tool."""
        tool_id = validation.object_id(tool_id, "tool_id")
        tool = validation.mapping(tool, "tool")
        if not tool:
            raise validation.OpseraInputError("tool must name at least one root property to change")
        validation.json_body(tool, "tool")
        return self.call("tool_update", json={"toolId": tool_id, "tool": tool})

    # -- tasks --

    def list_tasks(self) -> list[dict[str, Any]]:
        return self.list_records("task_list")

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self.call("task_summary", json={"taskId": validation.object_id(task_id, "opsera_task_id")})

    def get_task_status(self, task_id: str) -> str:
        """The last run's status, which Opsera answers as a bare string."""
        answer = self.call("task_status", json={"taskId": validation.object_id(task_id, "opsera_task_id")})
        return task_status(answer)

    def get_task_logs(self, task_id: str, run_count: int | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"taskId": validation.object_id(task_id, "opsera_task_id")}
        if run_count is not None:
            params["runCount"] = validation.positive_int(run_count, "run_count")
        records, _ = page_records(self.call("task_logs", params=params))
        return records

    # -- audit logs --

    def get_user_activity_logs(
        self, date: Any = None, *, activity_type: str | None = None, count: int | None = None
    ) -> dict[str, Any]:
        """User activity for a day (``YYYY-MM-DD``); without a date Opsera answers the last 7 days."""
        params = {
            "date": validation.iso_date(date),
            "type": activity_type,
            "count": validation.positive_int(count, "count") if count is not None else None,
        }
        return self.call("user_activity", params=params)

    def get_token_activity_logs(self, date: Any = None, *, scope: str | None = None) -> dict[str, Any]:
        """Personal access token use for a day; without a date, the last 7 days."""
        return self.call("token_activity", params={"date": validation.iso_date(date), "scope": scope})

    # -- Insights data (v2) --

    def create_project(self, project: dict[str, Any]) -> dict[str, Any]:
        project = validation.mapping(project, "project")
        validation.required(project, ("projectId", "projectName"), "project")
        return self.call("project_create", json=validation.json_body(project, "project"))

    def list_projects(self) -> list[dict[str, Any]]:
        return self.list_records("project_list")

    def get_project(self, project_id: str) -> dict[str, Any]:
        validation.required({"projectId": project_id}, ("projectId",), "get_project")
        return self.call("project_get", path_params={"projectId": str(project_id)})

    def create_person(self, person: dict[str, Any]) -> dict[str, Any]:
        person = validation.mapping(person, "person")
        validation.required(person, ("email",), "person")
        validation.email(person["email"], "person.email")
        return self.call("person_create", json=validation.json_body(person, "person"))

    def list_people(self) -> list[dict[str, Any]]:
        return self.list_records("person_list")

    def get_person(self, email: str) -> dict[str, Any]:
        return self.call("person_get", path_params={"email": validation.email(email)})

    def create_org_hierarchy(
        self, parent: str, child: str, parent_type: str | None = None, child_type: str | None = None
    ) -> dict[str, Any]:
        body = {"parent": parent, "child": child, "parentType": parent_type, "childType": child_type}
        validation.required(body, ("parent", "child"), "org hierarchy")
        body = {k: v for k, v in body.items() if v is not None}
        return self.call("org_hierarchy_create", json=validation.json_body(body, "org hierarchy"))

    def create_mapping(self, mapping: dict[str, Any]) -> dict[str, Any]:
        mapping = validation.mapping(mapping, "mapping")
        validation.required(mapping, ("attribute1", "attribute2"), "mapping")
        return self.call("mapping_create", json=validation.json_body(mapping, "mapping"))

    def list_mappings(self) -> list[dict[str, Any]]:
        return self.list_records("mapping_list")

    def get_mapping(self, mapping_id: str) -> dict[str, Any]:
        validation.required({"id": mapping_id}, ("id",), "get_mapping")
        return self.call("mapping_get", path_params={"mappingId": str(mapping_id)})

    # -- links and the UI's Test button --

    def pipeline_url(self, pipeline_id: str) -> str:
        """The portal page of a pipeline (falls back to the API host when no portal URL is set)."""
        return self.settings.pipeline_url(pipeline_id)

    def test_connection(self) -> tuple[bool, str]:
        """Make one real read call and say, in words a person can act on, what the token can do.

        A narrower token (``pipeline`` scope, an owner below Power User) passes: Opsera answering
        403 rather than 401 proves the token valid, and the message says what it cannot do.
        The message is logged too (WARNING when something limits the token, else INFO): Airflow's
        CLI prints only "Connection success!" for a passing test, and shows the log with ``--verbose``.
        """
        try:
            settings = self.settings
            expiring = check_expiry(settings.token_expires)
            scopes = token_scopes(settings.token)
            probe = probe_call(scopes)
            records = self.call(probe)
            refusal = None
        except OpseraTokenExpiredError as error:
            return False, str(error)
        except OpseraAuthenticationError as error:
            return False, f"Opsera rejected the token: {error}"
        except OpseraPermissionError as error:
            records, refusal = None, error
        except OpseraError as error:
            return False, str(error)
        message, limited = connection_test_message(settings, scopes, probe, records, refusal, expiring)
        (self.log.warning if limited else self.log.info)("Opsera connection %r: %s", self.opsera_conn_id, message)
        return True, message


def connection_test_message(
    settings: OpseraConnectionSettings,
    scopes: tuple[str, ...] | None,
    probe: str,
    records: Any,
    refusal: OpseraPermissionError | None,
    expiring: str | None = None,
) -> tuple[str, bool]:
    """The Test button's answer for a token Opsera accepted, and whether something limits the token.

    The answer says who owns the token, its scopes and role, what it can and cannot do, and when it expires;
    a call it cannot make, or an expiry within days, limits it.
    """
    noun = PROBE_NOUNS[probe]
    scope_covers_probe = scopes is not None and bool(set(scopes) & set(ENDPOINTS[probe].scopes))
    if refusal is None:
        power_user = True if ENDPOINTS[probe].needs_power_user else None
    else:
        power_user = False if scope_covers_probe and ENDPOINTS[probe].needs_power_user else None
    owner = token_owner(settings.token)
    facts = [owner] if owner else []
    facts.append(scope_words(scopes) if scopes else "scopes not readable from the token")
    facts.append({True: "role Power User or higher", False: "role below Power User", None: "role not known"}[power_user])
    parts = [f"Connected to Opsera at {settings.base_url} with a valid token ({'; '.join(facts)})."]
    limited = refusal is not None or expiring is not None
    if refusal is None:
        try:
            count: Any = len(page_records(records)[0])
        except OpseraError:  # an answer of an unexpected shape still proves the token works
            count = "some"
        parts.append(f"{count} {noun} visible.")
    elif scopes is None:
        parts.append(f"It cannot list {noun}: runs by id only, if its scope allows them. Opsera said: {refusal}")
    if scopes:
        abilities = describe_abilities(scopes, power_user)
        if abilities.can and not abilities.cannot and not abilities.no_access:
            parts.append("It can make every call this provider makes.")
        elif abilities.can:
            parts.append(f"It can {'; '.join(abilities.can)}.")
        if abilities.cannot:
            parts.append(f"It cannot {'; '.join(abilities.cannot)}.")
        if abilities.no_access:
            parts.append(f"It has no access to {either(abilities.no_access)}.")
        limited = limited or bool(abilities.cannot or abilities.no_access)
    if expiring:
        parts.append(expiring)
    elif settings.token_expires:
        parts.append(f"The token expires {settings.token_expires:%Y-%m-%d %H:%M} UTC.")
    return " ".join(parts), limited


def register_secrets(settings: OpseraConnectionSettings) -> None:
    """Tell Airflow's secrets masker, and the provider's own messages, about the token in every form it travels in."""
    for secret in (settings.token, settings.authorization):
        redaction.remember_secret(secret)
        mask_secret(secret)
