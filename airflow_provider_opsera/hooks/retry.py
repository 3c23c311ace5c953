"""One retry policy for the sync hook and the async client (and so for triggers)."""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from airflow_provider_opsera.client.api import Endpoint
from airflow_provider_opsera.exceptions import (
    OpseraAmbiguousRequestError,
    OpseraBadResponseError,
    OpseraError,
    OpseraRateLimitError,
    OpseraResponseTooLargeError,
    OpseraServerError,
    OpseraTransportError,
)

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


def query_params(params: dict[str, Any] | None) -> dict[str, str]:
    """Query parameters as sent: empty values left out, everything as text."""
    return {k: str(v) for k, v in (params or {}).items() if v not in (None, "")}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_wait: float = 1.0
    max_wait: float = 30.0
    #: a server's Retry-After is honoured up to this many seconds
    max_retry_after: float = 120.0
    #: no retry starts after this many seconds since the first attempt, and one call sleeps no longer in all
    total: float = 300.0

    def is_retryable(self, error: BaseException, endpoint: Endpoint) -> bool:
        if isinstance(error, OpseraRateLimitError):
            return True  # the server refused the request without acting on it
        if isinstance(error, OpseraTransportError):
            if not error.worth_retrying:
                return False  # e.g. a name that does not resolve: it will not on the next try either
            return not (not endpoint.idempotent and error.may_have_reached_server)
        if not endpoint.idempotent:
            return False  # a 5xx after a run request may have started the run
        if isinstance(error, OpseraServerError):
            return error.status_code in RETRYABLE_STATUS
        if isinstance(error, OpseraResponseTooLargeError):
            return False  # the same call gets the same oversized answer again
        # a garbled body on a read is usually a proxy hiccup; reading again is harmless
        return isinstance(error, OpseraBadResponseError)

    def is_ambiguous(self, error: BaseException, endpoint: Endpoint) -> bool:
        """Whether a failed call that must not be sent twice may nevertheless have been carried out."""
        if endpoint.idempotent or not isinstance(error, OpseraError):
            return False
        if isinstance(error, OpseraTransportError):
            return error.may_have_reached_server
        return isinstance(error, (OpseraServerError, OpseraBadResponseError))

    def final_error(self, error: OpseraError, endpoint: Endpoint) -> OpseraError:
        """What a caller sees once retrying is over: an ambiguous call says so."""
        if not self.is_ambiguous(error, endpoint):
            return error
        return OpseraAmbiguousRequestError(
            f"Opsera {endpoint.name} may or may not have been carried out: {error}",
            cause=error,
            status_code=error.status_code,
            endpoint=endpoint.name,
        )

    def wait_seconds(self, attempt: int, error: BaseException | None) -> float:
        if isinstance(error, OpseraRateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        ceiling = min(self.max_wait, self.initial_wait * 2 ** max(0, attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter keeps many clients from retrying in step


DEFAULT_RETRY_POLICY = RetryPolicy()

# The deadline of the wait a call is made for (a trigger's timeout), with the clock it is on.
_CALLS_END_BY: contextvars.ContextVar[tuple[float, Callable[[], float]] | None] = contextvars.ContextVar(
    "opsera_calls_end_by", default=None
)


@contextlib.contextmanager
def calls_end_by(end_time: float | None, clock: Callable[[], float] = time.time) -> Iterator[None]:
    """Within this block, no call retries past ``end_time`` on ``clock`` (None: no bound but the policy's).

    A context variable rather than an argument: it reaches the calls a trigger makes through
    any helper in between, and each asyncio task (each wait) has its own.
    """
    reset = _CALLS_END_BY.set(None if end_time is None else (end_time, clock))
    try:
        yield
    finally:
        _CALLS_END_BY.reset(reset)


#: a request made just before the deadline still gets this long to be answered
SHORTEST_REQUEST = 1.0


def request_timeout(timeout: float) -> float:
    """The connection's ``timeout``, cut to what is left before a deadline set by :func:`calls_end_by`."""
    bound = _CALLS_END_BY.get()
    if bound is None:
        return timeout
    end_time, clock = bound
    return min(timeout, max(SHORTEST_REQUEST, end_time - clock()))


class RetryBudget:
    """What one call may still sleep between its attempts: the policy's ``total``, and no later than a deadline.

    Each wait is cut to what is left; once nothing is left, no retry starts.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._left = policy.total
        self._deadline = _CALLS_END_BY.get()

    def remaining(self) -> float:
        left = self._left
        if self._deadline is not None:
            end_time, clock = self._deadline
            left = min(left, end_time - clock())
        return max(0.0, left)

    def spent(self) -> bool:
        return self.remaining() <= 0

    def cut(self, seconds: float) -> float:
        """``seconds``, or less when the budget holds less."""
        return min(seconds, self.remaining())

    def spend(self, seconds: float) -> None:
        self._left -= seconds


class RateLimitGate:
    """Shared by hooks sending side by side (a list sync's workers): one 429 holds them all back.

    When Opsera answers one request with 429 and ``Retry-After``, every request of the
    other hooks waits out the same pause instead of running into 429s of its own and
    failing records once its retries are spent. The hook that got the 429 already waits
    through its retry policy, so it does not wait on its own hold a second time.
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open_at = 0.0
        self._holder: object | None = None

    def hold(self, seconds: float, holder: object) -> None:
        with self._lock:
            open_at = self._clock() + seconds
            if open_at > self._open_at:
                self._open_at, self._holder = open_at, holder

    def pause_for(self, holder: object) -> float:
        """Seconds ``holder`` must wait before sending (0 when the gate is open or the pause is its own)."""
        with self._lock:
            if self._holder is holder:
                return 0.0
            return max(0.0, self._open_at - self._clock())

    def hold_after(self, error: OpseraError, policy: RetryPolicy, holder: object) -> None:
        """Hold every other hook back when ``error`` is a 429 that says for how long."""
        if isinstance(error, OpseraRateLimitError) and error.retry_after is not None:
            self.hold(policy.wait_seconds(1, error), holder)


def raise_final(policy: RetryPolicy, error: OpseraError, endpoint: Endpoint) -> NoReturn:
    """Raise what a caller sees once retrying is over (an ambiguous call says so)."""
    final = policy.final_error(error, endpoint)
    if final is error:
        raise error
    raise final from error


def _log_retry(log: Any, endpoint: Endpoint, attempt: int, attempts: int, seconds: float, error: Any) -> None:
    log.warning(
        "Opsera %s failed (attempt %d of %d), retrying in %.1f s: %s", endpoint.name, attempt, attempts, seconds, error
    )


def retrying_kwargs(policy: RetryPolicy, endpoint: Endpoint, *, sleep: Any, log: Any, budget: RetryBudget) -> dict:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying``: the same policy on both sides."""
    import tenacity

    def _wait(state: tenacity.RetryCallState) -> float:
        wanted = policy.wait_seconds(state.attempt_number, state.outcome.exception() if state.outcome else None)
        return budget.cut(wanted)  # spent once slept: tenacity may ask for a wait and then stop

    def _budget_spent(state: tenacity.RetryCallState) -> bool:
        return budget.spent()

    def _before_sleep(state: tenacity.RetryCallState) -> None:
        seconds = state.next_action.sleep if state.next_action else 0.0
        budget.spend(seconds)
        error = state.outcome.exception() if state.outcome else None
        _log_retry(log, endpoint, state.attempt_number, policy.max_attempts, seconds, error)

    return {
        "retry": tenacity.retry_if_exception(lambda error: policy.is_retryable(error, endpoint)),
        "stop": tenacity.stop_after_attempt(policy.max_attempts)
        | tenacity.stop_after_delay(policy.total)
        | _budget_spent,
        "wait": _wait,
        "sleep": sleep,
        "before_sleep": _before_sleep,
        "reraise": True,
    }
