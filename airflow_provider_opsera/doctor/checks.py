"""The checks: each inferred fact of the API contract, tried against a real tenant with read calls only.

The facts are the ones the provider's tables mark as inferred: the task paths and the
actions endpoint (:data:`~airflow_provider_opsera.client.api.ENDPOINTS` with ``inferred=True``;
of the actions, only ``status`` is sent: approve and reject would decide a gate), the status
strings (:mod:`~airflow_provider_opsera.client.status`), the pipeline summary's fields and
the activity log record's shape the provider reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.api import API_READONLY, ENDPOINTS, action_body
from airflow_provider_opsera.client.pipeline_lookup import checked_name, pick_pipeline, record_id
from airflow_provider_opsera.client.scopes import token_scopes
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.client.token import token_claims, token_expiry
from airflow_provider_opsera.doctor.report import CannotRun, Report
from airflow_provider_opsera.doctor.shapes import (
    ARRAY,
    BOOLEAN,
    INTEGER,
    NULL,
    OBJECT,
    STRING,
    Field,
    describe_fields,
    field_paths,
    json_type,
    shape_problems,
    value_at,
)
from airflow_provider_opsera.exceptions import (
    OpseraAuthenticationError,
    OpseraConnectionConfigError,
    OpseraError,
    OpseraNotFoundError,
    OpseraPermissionError,
    OpseraPipelineLookupError,
    OpseraSummaryShapeError,
    OpseraTransportError,
)
from airflow_provider_opsera.hooks.responses import latest_run_count, page_records
from airflow_provider_opsera.waiting.run_logs import is_console_output
from airflow_provider_opsera.waiting.watch import UNKNOWN_STATUS_GRACE

#: the only calls the doctor makes: reads (a call a read-only token may make reads; approve and reject write)
READ_CALLS = frozenset(
    {"pipeline_list", "pipeline_summary", "pipeline_status", "pipeline_logs"}
    | {name for name, endpoint in ENDPOINTS.items() if endpoint.inferred and API_READONLY in endpoint.scopes}
)

# What the provider reads from a pipeline's summary.
PIPELINE_FIELDS = (
    Field("_id", (STRING, OBJECT)),
    Field("name", (STRING,)),
    Field("workflow", (OBJECT,)),
    Field("workflow.run_count", (INTEGER,)),
    Field("workflow.plan", (ARRAY,)),
    Field("workflow.last_step", (OBJECT,)),
    Field("workflow.last_step.status", (STRING,)),
    Field("workflow.last_step.running.paused", (BOOLEAN,)),
)
# The activity log record as the contract describes it.
LOG_RECORD_FIELDS = (
    Field("_id", (STRING, OBJECT, INTEGER)),
    Field("pipeline_id", (STRING, OBJECT)),
    Field("run_count", (INTEGER,)),
    Field("step_id", (STRING, OBJECT)),
    Field("step_index", (INTEGER, NULL)),
    Field("step_name", (STRING,)),
    Field("tool_identifier", (STRING,)),
    Field("action", (STRING,)),
    Field("message", (STRING,)),
    Field("status", (STRING,)),
    Field("api_response", (OBJECT,)),
    Field("user_id", (STRING, OBJECT)),
    Field("createdAt", (STRING,)),
)

SUMMARY_FACT = "pipeline summary fields"
RUN_STATUS_FACT = "run status answer"
LOG_RECORD_FACT = "log record fields"
CONSOLE_FACT = "console output records"
STATUS_FACT = "status strings"
TASK_STATUS_FACT = "task status answer"
LAST_STEP = "the summary's workflow.last_step.status"
ACTIONS_FACT = f"actions path {ENDPOINTS['pipeline_action_status'].method} {ENDPOINTS['pipeline_action_status'].path}"
PIPELINE_FACTS = (SUMMARY_FACT, RUN_STATUS_FACT, LOG_RECORD_FACT, CONSOLE_FACT, ACTIONS_FACT)


def path_fact(name: str) -> str:
    endpoint = ENDPOINTS[name]
    return f"task path {endpoint.method} {endpoint.path}"


class Doctor:
    """Examines one tenant through ``hook`` (an :class:`OpseraHook`), filling a :class:`Report`."""

    def __init__(
        self,
        hook: Any,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        task_id: str | None = None,
        show_values: bool = False,
    ) -> None:
        self.hook = hook
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.task_id = task_id
        self.show_values = show_values
        self.report = Report()
        self.statuses_seen: dict[str, list[str]] = {}

    # -- plumbing --

    def read(self, name: str, **kwargs: Any) -> Any:
        if name not in READ_CALLS:
            raise ValueError(f"the doctor makes read calls only, not {name}")
        try:
            return self.hook.call(name, **kwargs)
        except (OpseraAuthenticationError, OpseraTransportError, OpseraConnectionConfigError) as error:
            raise CannotRun(str(error)) from None

    def saw_status(self, value: Any, where: str) -> None:
        if isinstance(value, str):
            self.statuses_seen.setdefault(value, []).append(where)

    def fields(self, record: Any) -> str:
        return describe_fields(field_paths(record, depth=1), record, show_values=self.show_values)

    # -- the whole examination --

    def run(self) -> Report:
        self.check_arguments()
        try:
            settings = self.hook.settings
        except OpseraError as error:
            raise CannotRun(str(error)) from None
        except Exception as error:  # Airflow's own "connection not defined"
            raise CannotRun(f"{type(error).__name__}: {error}") from None
        self.report.note(
            f"Opsera doctor: connection {self.hook.opsera_conn_id!r} at {settings.base_url} (read calls only)"
        )
        self.report.note(self.describe_token(settings.token))
        pipelines = self.list_pipelines()
        pipeline_id = self.choose_pipeline(pipelines)
        if pipeline_id:
            self.check_pipeline(pipeline_id)
        self.check_tasks()
        self.check_statuses()
        return self.report

    def check_arguments(self) -> None:
        """Bad ids are refused before anything is sent."""
        try:
            if self.pipeline_id:
                self.pipeline_id = validation.object_id(self.pipeline_id, "--pipeline-id")
            if self.task_id:
                self.task_id = validation.object_id(self.task_id, "--task-id")
            if self.pipeline_name is not None:
                self.pipeline_name = checked_name(self.pipeline_name)
        except validation.OpseraInputError as error:
            raise CannotRun(str(error)) from None

    def describe_token(self, token: str) -> str:
        claims = token_claims(token)
        if not claims:
            return "Token: not a readable JWT, so its scopes and expiry cannot be seen here."
        scopes = token_scopes(token)
        scope_text = f"scopes {' '.join(scopes)}" if scopes else "no scope claim"
        expires = token_expiry(token)
        if expires is None:
            expiry = "no expiry claim"
        else:
            days = (expires - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400
            when = f"{expires:%Y-%m-%d %H:%M} UTC"
            expiry = f"expires {when} (in {days:.1f} days)" if days > 0 else f"EXPIRED at {when}"
        return f"Token: {scope_text}; {expiry}; claims {', '.join(sorted(map(str, claims)))} (values not shown)."

    # -- pipelines --

    def list_pipelines(self) -> list[Any] | None:
        try:
            records, _ = page_records(self.read("pipeline_list"))
        except OpseraError as error:
            self.report.note(f"Pipeline list: not readable ({error})")
            return None
        self.report.note(f"Pipeline list: {len(records)} pipelines visible (the token's owner may list pipelines).")
        return records

    def choose_pipeline(self, pipelines: list[Any] | None) -> str | None:
        if self.pipeline_id:
            return self.pipeline_id
        if self.pipeline_name:
            if pipelines is None:
                return self.skip_pipeline("--pipeline-name needs the pipeline list (see above); give --pipeline-id")
            try:
                chosen = pick_pipeline(self.pipeline_name, pipelines)
            except OpseraPipelineLookupError as error:
                raise CannotRun(str(error)) from None
        elif pipelines is None:
            return self.skip_pipeline("no pipeline to read: give --pipeline-id")
        else:
            chosen = latest_run_pipeline(pipelines)
            if chosen is None:
                return self.skip_pipeline("the token sees no pipeline: give --pipeline-id")
        self.report.note(f"Pipeline examined: {chosen}")
        return chosen

    def skip_pipeline(self, reason: str) -> None:
        for fact in PIPELINE_FACTS:
            self.report.unchecked(fact, reason)
        return None

    def check_pipeline(self, pipeline_id: str) -> None:
        try:
            summary = self.read("pipeline_summary", json={"pipelineId": pipeline_id})
        except OpseraError as error:
            self.skip_pipeline(f"reading the pipeline's summary failed: {error}")
            return
        run_count = self.check_summary(summary, pipeline_id)
        if run_count is None:
            run_count = self.latest_run_in_the_logs(pipeline_id)
        self.check_run_status(pipeline_id, run_count)
        self.check_logs(pipeline_id, run_count)
        self.check_actions(pipeline_id)

    def check_summary(self, summary: Any, pipeline_id: str) -> int | None:
        """The summary's fields; returns the latest run count when the summary has a usable one."""
        if not isinstance(summary, dict):
            self.report.differs(SUMMARY_FACT, f"the summary is {json_type(summary)}, expected an object")
            return None
        problems = shape_problems([summary], PIPELINE_FIELDS)
        if problems:
            self.report.differs(SUMMARY_FACT, f"{'; '.join(problems)}. Fields seen: {self.fields(summary)}")
        else:
            shown = describe_fields({f.path: json_type(value_at(summary, f.path)) for f in PIPELINE_FIELDS},
                                    summary, show_values=self.show_values)
            self.report.confirmed(SUMMARY_FACT, shown)
        self.saw_status(value_at(summary, "workflow.last_step.status"), LAST_STEP)
        try:  # read as the operator and the asset watcher read it
            return latest_run_count(summary, pipeline_id)
        except OpseraSummaryShapeError as error:
            self.report.note(
                f"{error}: a task cannot settle a run request whose answer was lost (it fails rather than risk a "
                "second run), and asset watchers cannot see new runs."
            )
            return None

    def latest_run_in_the_logs(self, pipeline_id: str) -> int | None:
        """The highest ``run_count`` in the pipeline's activity records, when the summary does not give one."""
        try:
            records, _ = page_records(self.read("pipeline_logs", json={"pipelineId": pipeline_id}))
        except OpseraError:
            return None  # check_logs reads them again and says why
        runs = [r.get("run_count") for r in records if isinstance(r, dict)]
        runs = [run for run in runs if isinstance(run, int) and not isinstance(run, bool) and run > 0]
        if runs:
            self.report.note(f"Latest run: {max(runs)}, found in the activity records (the summary does not give it).")
        return max(runs) if runs else None

    def check_run_status(self, pipeline_id: str, run_count: int | None) -> None:
        if run_count is None:
            self.report.unchecked(
                RUN_STATUS_FACT, "neither the summary's workflow.run_count nor the activity records give a run to ask about"
            )
            return
        if run_count < 1:
            self.report.unchecked(RUN_STATUS_FACT, "the pipeline has not run yet: choose one that has (--pipeline-id or --pipeline-name)")
            return
        try:
            answer = self.read("pipeline_status", json={"pipelineId": pipeline_id, "runCount": run_count})
        except OpseraError as error:
            self.report.unchecked(RUN_STATUS_FACT, f"reading run {run_count}'s status failed: {error}")
            return
        problems = shape_problems([answer], (Field("status", (STRING,)), Field("message", (STRING,))))
        if not isinstance(answer, dict):
            problems = [f"the answer is {json_type(answer)}, expected an object with status and message"]
        if problems:
            self.report.differs(RUN_STATUS_FACT, f"run {run_count}: {'; '.join(problems)}")
        else:
            self.report.confirmed(RUN_STATUS_FACT, f"run {run_count}: {self.fields(answer)}")
        if isinstance(answer, dict):
            self.saw_status(answer.get("status"), f"pipeline run {run_count}")

    def check_logs(self, pipeline_id: str, run_count: int | None) -> None:
        body: dict[str, Any] = {"pipelineId": pipeline_id}
        if run_count:
            body["runCount"] = run_count
        which = f"run {run_count}" if run_count else "the pipeline"
        try:
            records, _ = page_records(self.read("pipeline_logs", json=body))
        except OpseraError as error:
            for fact in (LOG_RECORD_FACT, CONSOLE_FACT):
                self.report.unchecked(fact, f"reading the activity log of {which} failed: {error}")
            return
        if not records:
            for fact in (LOG_RECORD_FACT, CONSOLE_FACT):
                self.report.unchecked(fact, f"{which} has no activity records")
            return
        problems = shape_problems(records, LOG_RECORD_FIELDS)
        seen = describe_fields(union_of_fields(records))
        if problems:
            self.report.differs(LOG_RECORD_FACT, f"{'; '.join(problems)}. Fields seen in {len(records)} records: {seen}")
        else:
            self.report.confirmed(LOG_RECORD_FACT, f"{len(records)} records of {which}: {seen}")
        self.check_console(records, which)

    def check_console(self, records: list[Any], which: str) -> None:
        console = [r for r in records if is_console_output(r)]
        if not console:
            actions = sorted({str(r.get("action")) for r in records if isinstance(r, dict)})
            shown = f" (actions seen: {', '.join(actions)})" if self.show_values else ""
            self.report.unchecked(CONSOLE_FACT, f"{which} has no record with action 'console output'{shown}")
            return
        kinds = [console_log_kind(r) for r in console]
        bad = [k for k in kinds if k.startswith("!")]
        if bad:
            api_response = next(r.get("api_response") for r in console if console_log_kind(r) == bad[0])
            self.report.differs(
                CONSOLE_FACT,
                f"api_response.consoleLog is {bad[0][1:]} in {len(bad)} of {len(console)} console records; the "
                f"provider reads a string, or an object or array of strings or lists of lines. api_response has: "
                f"{describe_fields(field_paths(api_response, depth=1)) or json_type(api_response)}",
            )
        else:
            self.report.confirmed(
                CONSOLE_FACT, f"{len(console)} records, api_response.consoleLog as {' and '.join(sorted(set(kinds)))}"
            )

    def check_actions(self, pipeline_id: str) -> None:
        """The actions endpoint answers its ``status`` command for the pipeline (approve and reject share its path)."""
        body = action_body("pipeline_action_status", pipeline_id)
        answer = self.read_inferred_path(ACTIONS_FACT, lambda: self.read("pipeline_action_status", json=body))
        if isinstance(answer, (dict, list)):
            fields = self.fields(answer) if isinstance(answer, dict) else f"{len(answer)} items"
            self.report.confirmed(ACTIONS_FACT, f"status answers {json_type(answer)}: {fields}")
        elif answer is not None:
            self.report.differs(ACTIONS_FACT, f"status answers {json_type(answer)}, expected an object")

    # -- tasks --

    def check_tasks(self) -> None:
        listed = self.read_task_path("task_list", lambda: self.read("task_list"))
        task_id = self.task_id
        if not task_id and listed:
            task_id = record_id(listed[0]) if isinstance(listed[0], dict) else None
        if not task_id:
            reason = "no task to read: give --task-id" if listed is not None else "the task list is not readable"
            for name in ("task_summary", "task_status", "task_logs"):
                self.report.unchecked(path_fact(name), reason)
            self.report.unchecked(TASK_STATUS_FACT, reason)
            return
        self.report.note(f"Task examined: {task_id}")
        summary = self.read_task_path("task_summary", lambda: self.read("task_summary", json={"taskId": task_id}))
        if isinstance(summary, dict):
            self.saw_status(summary.get("status"), "the task's summary")
        answer = self.read_task_path("task_status", lambda: self.read("task_status", json={"taskId": task_id}))
        self.read_task_path("task_logs", lambda: self.read("task_logs", params={"taskId": task_id}))
        if answer is None:
            self.report.unchecked(TASK_STATUS_FACT, "the task status path did not answer")
        elif isinstance(answer, str):
            self.report.confirmed(TASK_STATUS_FACT, "a bare string")
            self.saw_status(answer, "the task's status")
        else:
            status = answer.get("status") if isinstance(answer, dict) else None
            fields = f": {self.fields(answer)}" if isinstance(answer, dict) else ""
            self.report.differs(TASK_STATUS_FACT, f"the answer is {json_type(answer)}{fields}, not a bare string")
            self.saw_status(status, "the task's status")

    def read_inferred_path(self, fact: str, call: Any) -> Any:
        """The answer of a call on an inferred path, or None with the verdict reported when it did not answer."""
        try:
            return call()
        except OpseraNotFoundError as error:
            self.report.differs(fact, f"answered 404: the path may not exist, or the object does not ({error})")
        except OpseraPermissionError as error:
            self.report.unchecked(fact, str(error))
        except OpseraError as error:
            if error.status_code == 405:
                self.report.differs(fact, f"answered 405: the method or path differs ({error})")
            elif error.status_code in (400, 422):
                self.report.differs(fact, f"answered {error.status_code}: the body it was sent differs ({error})")
            else:
                self.report.unchecked(fact, str(error))
        return None

    def read_task_path(self, name: str, call: Any) -> Any:
        """One inferred task path: whether it answers at all, and the answer (a list for list calls)."""
        fact = path_fact(name)
        answer = self.read_inferred_path(fact, call)
        if answer is None:
            return None
        if name in ("task_list", "task_logs"):
            try:
                records, _ = page_records(answer)
            except OpseraError:
                self.report.differs(fact, f"answers {json_type(answer)}, expected an array of records")
                return None
            self.report.confirmed(fact, f"answers {len(records)} records")
            return records
        self.report.confirmed(fact, f"answers {json_type(answer)}")
        return answer

    # -- statuses --

    def check_statuses(self) -> None:
        if not self.statuses_seen:
            self.report.unchecked(STATUS_FACT, "no run or task status could be read")
            return
        tenant = dict(self.hook.settings.status_map)
        unknown = {
            s: w for s, w in self.statuses_seen.items() if OpseraRunStatus.outcome(s, tenant) is RunOutcome.UNKNOWN
        }
        known = ", ".join(
            f"{s!r} ({OpseraRunStatus.outcome(s, tenant).value.replace('_', ' ')}"
            f"{', from status_map' if OpseraRunStatus.normalise(s) in tenant else ''})"
            for s in sorted(self.statuses_seen)
            if s not in unknown
        )
        if not unknown and all(where == [LAST_STEP] for where in self.statuses_seen.values()):
            self.report.unchecked(STATUS_FACT, f"no run or task status answer could be read (the {LAST_STEP} saw {known})")
            return
        if unknown:
            where = "; ".join(f"{s!r} in {', '.join(w)}" for s, w in sorted(unknown.items()))
            also = f"; known: {known}" if known else ""
            self.report.differs(
                STATUS_FACT,
                f"saw {where}, which the status table does not know: a wait treats it as still running for "
                f"{UNKNOWN_STATUS_GRACE:g} s and then fails. Map it to an outcome in the connection's 'status_map' "
                f"extra{also}",
            )
        else:
            self.report.confirmed(STATUS_FACT, f"saw {known}")


def latest_run_pipeline(pipelines: list[Any]) -> str | None:
    """The visible pipeline with the most runs (it has the most to show), or None."""
    best, best_runs = None, -1
    for pipeline in pipelines:
        if not isinstance(pipeline, dict) or not record_id(pipeline):
            continue
        runs = value_at(pipeline, "workflow.run_count")
        runs = runs if isinstance(runs, int) and not isinstance(runs, bool) else 0
        if runs > best_runs:
            best, best_runs = record_id(pipeline), runs
    return best


def union_of_fields(records: list[Any]) -> dict[str, str]:
    """Each top-level field seen in any record, with its type(s)."""
    kinds: dict[str, set[str]] = {}
    for record in records:
        for path, kind in field_paths(record, depth=1).items():
            kinds.setdefault(path, set()).add(kind)
    return {path: " or ".join(sorted(k)) for path, k in sorted(kinds.items())}


def console_log_kind(record: dict[str, Any]) -> str:
    """How a console record carries its text (``string``, ``object``, ``array``); ``!<type>`` when unreadable."""
    response = record.get("api_response")
    console = response.get("consoleLog") if isinstance(response, dict) else None
    if isinstance(console, str):
        return STRING
    chunks = console.values() if isinstance(console, dict) else console if isinstance(console, list) else None
    if chunks is not None and all(_lines(chunk) for chunk in chunks):
        return json_type(console)
    return f"!{'missing' if console is None else json_type(console)}"


def _lines(chunk: Any) -> bool:
    return isinstance(chunk, str) or (isinstance(chunk, list) and all(isinstance(line, str) for line in chunk))
