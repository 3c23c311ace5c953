"""What the doctor found, one line per inferred fact, and the exit code it comes to."""

from __future__ import annotations

from dataclasses import dataclass, field

CONFIRMED = "confirmed"
DIFFERS = "differs"
UNCHECKED = "could not check"

EXIT_OK = 0  # every fact confirmed or not checkable
EXIT_DIFFERS = 1  # at least one fact differs from what the provider assumes
EXIT_CANNOT_RUN = 2  # no connection, token refused, Opsera unreachable


class CannotRun(Exception):
    """The doctor cannot examine anything (the connection, the token, the network)."""


@dataclass(frozen=True)
class Finding:
    fact: str
    verdict: str
    detail: str = ""

    def line(self, width: int) -> str:
        if self.verdict == CONFIRMED:
            text = f"{CONFIRMED} ({self.detail})" if self.detail else CONFIRMED
        else:
            text = f"{self.verdict}: {self.detail}"
        return f"{self.fact.ljust(width)}  {text}"


@dataclass
class Report:
    header: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.header.append(text)

    def confirmed(self, fact: str, detail: str = "") -> None:
        self.findings.append(Finding(fact, CONFIRMED, detail))

    def differs(self, fact: str, detail: str) -> None:
        self.findings.append(Finding(fact, DIFFERS, detail))

    def unchecked(self, fact: str, detail: str) -> None:
        self.findings.append(Finding(fact, UNCHECKED, detail))

    @property
    def exit_code(self) -> int:
        return EXIT_DIFFERS if any(f.verdict == DIFFERS for f in self.findings) else EXIT_OK

    def lines(self) -> list[str]:
        width = max((len(f.fact) for f in self.findings), default=0)
        counts = {v: sum(f.verdict == v for f in self.findings) for v in (CONFIRMED, DIFFERS, UNCHECKED)}
        return [
            *self.header,
            "",
            *(f.line(width) for f in self.findings),
            "",
            f"{counts[CONFIRMED]} confirmed, {counts[DIFFERS]} differ, {counts[UNCHECKED]} could not be checked.",
        ]
