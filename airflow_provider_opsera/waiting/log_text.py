"""Text from Opsera made safe for one line of an Airflow task log.

A step name or a console line is written by whoever controls the pipeline's tools. Left
raw, a line break in it starts a line of the task log that looks like Airflow's own
(``... INFO - Marking task as SUCCESS``), and terminal escapes recolour, hide or link
text in whatever shows the log. So escape sequences are removed whole (not just their
ESC byte, which would leave ``[31m`` behind), tabs become spaces, and no other control
character, text-direction override or lone surrogate is kept.
"""

from __future__ import annotations

import re
import unicodedata

# Escape sequences as terminals read them (ECMA-48), 7-bit and 8-bit forms:
# CSI (colours, cursor moves), control strings (OSC: titles and hyperlinks; DCS, SOS, PM,
# APC), which end at their terminator or, unterminated, at the end of the line, and the
# two-byte escapes (charset switches, resets).
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n\r]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)
# Embedding, override and isolate marks: they reorder what a reader sees on the line.
_DIRECTION_MARKS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REPLACEMENT = "\ufffd"


def _clean_char(char: str) -> str:
    if char in _DIRECTION_MARKS:
        return ""
    category = unicodedata.category(char)
    if category == "Cc":
        return char if char == "\t" else ""  # a tab becomes spaces once the line is clean
    if category == "Cs":  # a lone surrogate (valid in JSON, not in UTF-8): shown, not dropped
        return _REPLACEMENT
    return char


def _clean_line(line: str) -> str:
    if not line.isprintable():  # the common case, printable text, is checked in C
        line = "".join(_clean_char(char) for char in line)
    return line.expandtabs(4)


def safe_lines(text: str) -> list[str]:
    """The lines of ``text``, each free of escape sequences and control characters."""
    return [_clean_line(line) for line in _ESCAPE_SEQUENCE.sub("", text).splitlines()]


def safe_line(text: str, *, limit: int | None = None) -> str:
    """``text`` as one log-safe line (its line breaks become spaces), cut to ``limit`` characters."""
    line = " ".join(safe_lines(text))
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line
