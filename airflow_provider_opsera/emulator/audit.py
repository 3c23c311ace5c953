"""Audit log reads: user activity and token activity, filtered as documented.

``date=YYYY-MM-DD`` selects that UTC day; without it the last seven days are
returned. Newest first, at most 1000 records (fewer with ``count``).
"""

from __future__ import annotations

import re

from .clock import iso
from .errors import bad_request
from .params import optional_int
from .routes import AUDIT_DEFAULT_DAYS, RECORD_CAP
from .state import EmulatorState

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DAY = 86400


def _query(state: EmulatorState, log: list[dict], query: dict, filter_field: str) -> dict:
    # ISO stamps of one format compare correctly as strings, and the logs are
    # appended in time order, so the newest-first walk can stop at the window's start.
    date = query.get("date")
    if date:
        if not _DATE.match(date):
            raise bad_request("date must be YYYY-MM-DD")
        window_start, window_end = f"{date}T00:00:00.000Z", f"{date}T23:59:59.999Z"
    else:
        window_start, window_end = iso(state.now() - AUDIT_DEFAULT_DAYS * DAY), "9999"
    wanted = query.get(filter_field)
    limit = optional_int(query, "count", minimum=0)
    limit = RECORD_CAP if limit is None else min(limit, RECORD_CAP)
    data = []
    for record in reversed(log):
        if len(data) >= limit or record["createdAt"] < window_start:
            break
        if record["createdAt"] > window_end:
            continue
        # A token's scope field can hold several scopes, space separated.
        if wanted and wanted not in str(record.get(filter_field, "")).split():
            continue
        data.append(dict(record))
    return {"count": len(data), "data": data}


def user_actions(state: EmulatorState, user: dict, query: dict) -> dict:
    return _query(state, state.store["user_activity"], query, "type")


def token_uses(state: EmulatorState, user: dict, query: dict) -> dict:
    return _query(state, state.store["token_activity"], query, "scope")

