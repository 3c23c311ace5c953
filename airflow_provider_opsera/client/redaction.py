"""What a message built from text the provider did not write must not carry: a secret, or no end.

Scrubbing by shape (a JWT, ``Bearer …``) misses an opaque token or one sent without a
prefix, so the secrets this process has read from a connection (tokens, Authorization
values) are kept here, and every message the provider builds (its exceptions, trigger
events) loses each of them, whatever its shape. Both clients add to them on every
connection read. A server's text is also cut to a bounded length, saying how much went.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse

#: shorter values are left alone: they would cut ordinary words out of every message (Airflow's masker agrees)
MIN_SECRET_LENGTH = 5
REPLACEMENT = "***"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _spellings(secret: str) -> set[str]:
    """The forms a value takes when a server echoes it: as sent, JSON-escaped, URL-encoded."""
    return {secret, json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


def remember_secret(secret: str | None) -> None:
    """Scrub ``secret`` from every message built from now on."""
    global _pattern
    if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_LENGTH:
        return
    with _lock:
        new = {spelling for spelling in _spellings(secret) if len(spelling) >= MIN_SECRET_LENGTH} - _values
        if not new:
            return
        _values.update(new)
        # longest first, so a whole Authorization value goes before the token inside it
        _pattern = re.compile("|".join(re.escape(value) for value in sorted(_values, key=len, reverse=True)))


def redact(text: str) -> str:
    """``text`` without any remembered secret."""
    pattern = _pattern
    if pattern is None or not isinstance(text, str) or not text:
        return text
    return pattern.sub(REPLACEMENT, text)


def shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how many went."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} […{len(text) - limit} more characters cut]"
