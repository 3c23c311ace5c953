"""The one exception the emulator's operations raise to answer with an error."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: HTTP status plus the Opsera-style ``{"status","message"}`` body."""

    def __init__(self, http_status: int, message: str, **extra):
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        return {"status": "failed", "message": self.message, **self.extra}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def forbidden(detail: str | None = None, **extra) -> ApiError:
    # Opsera answers a bare "forbidden"; the detail says why, for people debugging.
    if detail:
        extra["detail"] = detail
    return ApiError(403, "forbidden", **extra)
