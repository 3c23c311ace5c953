"""Operator that exports Opsera's audit logs: user activity and personal access token use."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import BaseOperator
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraInputError

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

    try:
        from airflow.sdk.definitions.context import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[no-redef]

USER, TOKEN, BOTH = "user", "token", "both"
LOG_CHOICES = (USER, TOKEN, BOTH)
LOG_TITLES = {USER: "user activity log", TOKEN: "token activity log"}


class OpseraAuditLogsOperator(BaseOperator):
    """Fetch a day of Opsera's user activity log and/or token activity log.

    Opsera answers at most 1000 records per log and call; when a day reaches that, the operator
    warns that records may be missing (narrow the export with ``activity_type`` or ``scope``).

    :param date: the day, ``YYYY-MM-DD`` (e.g. ``"{{ ds }}"``) or a ``date``; None for Opsera's default, the
        last 7 days. Templated; checked when the DAG is parsed, or once rendered.
    :param log: ``"user"`` (who did what), ``"token"`` (which token called what), or ``"both"``.
    :param activity_type: only user activity of this ``type`` (e.g. ``pipeline``, ``tool``).
        Templated. Applies to the user log.
    :param scope: only token use with this scope (e.g. ``api``, ``pipeline``). Templated. Applies
        to the token log.
    :param output_path: write the records to this file as JSON Lines, one record a line with a
        ``"log"`` field saying which log it came from, and return the path and counts instead of
        the records (a day of audit records can be too big for XCom). Templated.
    :param opsera_conn_id: the Opsera connection (its token needs the ``api`` or
        ``security-logs`` scope, and its owner the Power User role).
    :return: ``{"user": [...], "token": [...]}`` with the logs asked for; with ``output_path``,
        ``{"path", "date", "counts": {log: n}, "possibly_incomplete": [logs at the cap]}``.
    """

    template_fields: Sequence[str] = ("date", "activity_type", "scope", "output_path")
    ui_color = "#f0f0f0"

    def __init__(
        self,
        *,
        date: Any = None,
        log: str = USER,
        activity_type: str | None = None,
        scope: str | None = None,
        output_path: str | None = None,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.date = validation.checked_at_parse(validation.iso_date, date)
        self.log_name = validation.one_of(log, LOG_CHOICES, "log")
        self.activity_type = activity_type
        self.scope = scope
        self.output_path = output_path
        self.opsera_conn_id = opsera_conn_id

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(opsera_conn_id=self.opsera_conn_id)

    @property
    def logs(self) -> tuple[str, ...]:
        return (USER, TOKEN) if self.log_name == BOTH else (self.log_name,)

    def execute(self, context: Context) -> dict[str, Any]:
        date = validation.iso_date(self.date)
        activity_type = _optional_text(self.activity_type, "activity_type")
        scope = _optional_text(self.scope, "scope")
        # A filter for a log that is not fetched would be ignored without a word: refuse it.
        if activity_type and USER not in self.logs:
            raise OpseraInputError("activity_type filters the user log; with log='token' use scope instead")
        if scope and TOKEN not in self.logs:
            raise OpseraInputError("scope filters the token log; with log='user' use activity_type instead")
        output_path = _optional_text(self.output_path, "output_path")
        if output_path and os.path.isdir(output_path):
            raise OpseraInputError(f"output_path {output_path!r} is a directory: name a file, e.g. audit.jsonl")

        records: dict[str, list[dict[str, Any]]] = {}
        possibly_incomplete = []
        for name in self.logs:
            if name == USER:
                answer = self.hook.get_user_activity_logs(date, activity_type=activity_type)
            else:
                answer = self.hook.get_token_activity_logs(date, scope=scope)
            records[name], capped = self._records_of(answer, name, date)
            if capped:
                possibly_incomplete.append(name)

        if not output_path:
            return records
        counts = _write_json_lines(output_path, records)
        self.log.info(
            "Wrote %s to %s.", ", ".join(f"{n} {LOG_TITLES[k]} records" for k, n in counts.items()), output_path
        )
        return {"path": output_path, "date": date, "counts": counts, "possibly_incomplete": possibly_incomplete}

    def _records_of(self, answer: Any, name: str, date: str | None) -> tuple[list[dict[str, Any]], bool]:
        data = answer.get("data") if isinstance(answer, dict) else answer
        if not isinstance(data, list):
            data = []
        count = answer.get("count") if isinstance(answer, dict) else None
        span = f"for {date}" if date else "for the last 7 days"
        self.log.info("Opsera %s %s: %d records.", LOG_TITLES[name], span, len(data))
        reported = count if isinstance(count, int) and not isinstance(count, bool) else 0
        capped = reported >= RECORD_CAP or len(data) >= RECORD_CAP
        if capped:
            narrow = "activity_type" if name == USER else "scope"
            self.log.warning(
                "Opsera's %s %s returned %d records, its cap of %d: later records of that span may be "
                "missing. Export it in parts, filtered by %s, to get them all.",
                LOG_TITLES[name],
                span,
                max(reported, len(data)),
                RECORD_CAP,
                narrow,
            )
        return data, capped


def _optional_text(value: Any, field: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return validation.string(value, field)


def _write_json_lines(path: str, records: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Write all records, then move the file into place: a retry never leaves half a file behind."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    counts = {}
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for name, items in records.items():
                for record in items:
                    line = {**record, "log": name} if isinstance(record, dict) else {"log": name, "record": record}
                    out.write(json.dumps(line, sort_keys=True, default=str) + "\n")
                counts[name] = len(items)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return counts
