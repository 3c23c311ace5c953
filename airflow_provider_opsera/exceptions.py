"""Typed errors: each carries the HTTP status and Opsera's own message.

Messages never contain a token, an Authorization header, or more than a short,
scrubbed snippet of a response body: every message loses the secrets this process
has read from a connection, whatever built it.
"""

from __future__ import annotations

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.client.redaction import redact


class OpseraError(AirflowException):
    """Any failure talking to Opsera."""

    def __init__(self, message: str, *, status_code: int | None = None, endpoint: str | None = None):
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.endpoint = endpoint


class OpseraInputError(OpseraError, ValueError):
    """The caller's input is wrong; no request was sent."""


class OpseraConnectionConfigError(OpseraError):
    """The Airflow connection is missing something the hook needs."""


class OpseraAuthenticationError(OpseraError):
    """401: the token is missing, malformed or expired."""


class OpseraTokenExpiredError(OpseraAuthenticationError):
    """The token's ``exp`` claim is in the past; it was not sent."""


class OpseraPermissionError(OpseraError):
    """403: the token's scope does not cover the call, or its owner lacks the role or object access."""


class OpseraNotFoundError(OpseraError):
    """404."""


class OpseraPipelineLookupError(OpseraError):
    """A pipeline name matches no pipeline the token can see, or several."""


class OpseraConflictError(OpseraError):
    """409: the record exists already (e.g. a person's email)."""


class OpseraValidationError(OpseraError):
    """400 or 422: Opsera rejected the request's content."""


class OpseraRateLimitError(OpseraError):
    """429: too many requests; ``retry_after`` is the server's wish in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class OpseraServerError(OpseraError):
    """5xx."""


class OpseraBadResponseError(OpseraError):
    """The answer was not the JSON the contract promises (an HTML proxy page, say)."""


class OpseraTransportError(OpseraError):
    """No HTTP answer: connection refused or reset, a name that does not resolve, or a timeout.

    ``may_have_reached_server`` is False only when the request certainly never left
    (the connection could not be opened), which is what makes a resend safe.
    ``worth_retrying`` is False when sending again cannot go otherwise (a name DNS knows no host by).
    """

    def __init__(self, message: str, *, may_have_reached_server: bool, worth_retrying: bool = True, **kwargs):
        super().__init__(message, **kwargs)
        self.may_have_reached_server = may_have_reached_server
        self.worth_retrying = worth_retrying


class OpseraAmbiguousRequestError(OpseraError):
    """A call that starts work may or may not have reached Opsera; it was not resent.

    The caller decides how to find out (e.g. read the pipeline's summary).
    """

    def __init__(self, message: str, *, cause: OpseraError, **kwargs):
        super().__init__(message, **kwargs)
        self.cause = cause


class OpseraRedirectError(OpseraConnectionConfigError):
    """Opsera's address answered with a redirect, which is never followed."""


class OpseraTLSError(OpseraConnectionConfigError):
    """TLS could not be set up (the CA bundle) or its handshake failed: the request, and its token, were never sent."""

    may_have_reached_server = False


class OpseraResponseTooLargeError(OpseraBadResponseError):
    """The answer is larger than the call ever needs; the rest of it was not read."""


class OpseraUnknownStatusError(OpseraError):
    """A run kept reporting a status this provider does not know for longer than a wait rides one out."""


class OpseraSummaryShapeError(OpseraBadResponseError):
    """A pipeline summary without a readable ``workflow.run_count`` (the answer differs from Opsera's contract)."""
