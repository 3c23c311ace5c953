"""Reading a personal access token's expiry, without checking its signature."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

from airflow_provider_opsera.client.connection_form import AUTH_PREFIX_EXTRA, PASSWORD_FIELD
from airflow_provider_opsera.exceptions import OpseraTokenExpiredError

EXPIRY_WARNING = dt.timedelta(days=7)
#: a JWT (Opsera's tokens are JWTs: they start with eyJ, the encoded '{"') with something short written before it,
#: such as "Bearer ", "Bearer:" or "Authorization: Bearer "; only that short text is ever quoted back
_JWT_AFTER_A_PREFIX = re.compile(r"(?P<before>[A-Za-z][A-Za-z0-9_:= -]{0,29}?)eyJ[\w-]*\.[\w-]*\.[\w-]*")


def token_claims(token: str) -> dict:
    """The payload of a JWT, unverified; empty when the token is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def text_before_token(token: str) -> str | None:
    """What was written before the JWT in a password such as ``Bearer eyJ…``, or None when there is nothing."""
    match = _JWT_AFTER_A_PREFIX.fullmatch(token)
    return match.group("before") if match else None


def pasted_prefix_note(token: str, auth_prefix: str) -> str | None:
    """Why a password holding more than the token fails, naming the field and the extra that fix it; or None.

    None too when no auth_prefix is written: the password is then sent as it is, whatever it starts with.
    """
    before = text_before_token(token)
    if before is None or not auth_prefix:
        return None
    return (
        f"{PASSWORD_FIELD} starts with {before!r} before the token. The provider writes {AUTH_PREFIX_EXTRA}, "
        f"here {auth_prefix!r}, in front of the token itself, so the Authorization header becomes "
        f"'{auth_prefix} {before}eyJ…'. Put only the token (from eyJ on) in the Password field; if Opsera needs "
        "another word in front of it, set auth_prefix to that word"
    )


def token_expiry(token: str) -> dt.datetime | None:
    """The ``exp`` claim of a JWT as an aware UTC datetime, or None when it has none."""
    try:
        exp = token_claims(token).get("exp")
        if exp is None:
            return None
        return dt.datetime.fromtimestamp(float(exp), tz=dt.timezone.utc)
    except (ValueError, TypeError, OverflowError):
        return None


def check_token_expiry(token: str, *, now: dt.datetime | None = None) -> str | None:
    """Raise when the token has expired; return a warning when it expires soon, else None."""
    return check_expiry(token_expiry(token), now=now)


def check_expiry(expires: dt.datetime | None, *, now: dt.datetime | None = None) -> str | None:
    """:func:`check_token_expiry` for an expiry already read from the token."""
    if expires is None:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    if expires <= now:
        raise OpseraTokenExpiredError(
            f"The Opsera token expired at {expires:%Y-%m-%d %H:%M} UTC and was not sent. "
            "Create a new personal access token in the Opsera portal (Profile > Access Tokens) "
            "and store it as the connection's password."
        )
    if expires - now <= EXPIRY_WARNING:
        days = (expires - now).total_seconds() / 86400
        return f"The Opsera token expires in {days:.1f} days, at {expires:%Y-%m-%d %H:%M} UTC: renew it soon."
    return None


def rotated_token_note(conn_id: str) -> str:
    """What a client logs when Opsera refused the token and the connection turned out to hold another one."""
    return f"Opsera refused the token; connection {conn_id!r} holds another one now (rotated): carrying on with it."


def expires_before_wait_ends(
    expires: dt.datetime | None, wait_seconds: float | None, *, now: dt.datetime | None = None
) -> str | None:
    """A warning when the token expires before a wait's ``timeout`` would end it, else None."""
    if expires is None or wait_seconds is None:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    ends = now + dt.timedelta(seconds=wait_seconds)
    if expires >= ends:
        return None
    return (
        f"The Opsera token expires at {expires:%Y-%m-%d %H:%M} UTC, before this wait's timeout would end it "
        f"(at {ends:%Y-%m-%d %H:%M} UTC). Put a new token in the connection before then: the wait picks it up "
        "when Opsera refuses the old one."
    )
