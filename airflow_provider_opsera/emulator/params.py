"""Reading ids and numbers out of request bodies and query strings, with 400s."""

from __future__ import annotations

from .errors import bad_request
from .seed import OBJECT_ID


def object_id(source: dict, field: str) -> str:
    value = source.get(field)
    if value is None or value == "":
        raise bad_request(f"{field} is required")
    if not isinstance(value, str) or not OBJECT_ID.match(value):
        raise bad_request(f"{field} must be a 24 character hexadecimal id")
    return value


def optional_int(source: dict, field: str, minimum: int = 0) -> int | None:
    value = source.get(field)
    if value is None or value == "":
        return None
    # bool is an int subclass in Python; a JSON true is not a count.
    if isinstance(value, bool):
        raise bad_request(f"{field} must be an integer")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise bad_request(f"{field} must be an integer")
    if value < minimum:
        raise bad_request(f"{field} must be at least {minimum}")
    return value
