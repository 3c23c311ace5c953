"""Small loopback servers that answer the way a hostile or broken network does, and a way to call both clients."""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "loopback-token-not-a-jwt"
PIPELINE_ID = "5fd56d90979ee048ee660624"


class _Serving:
    """A server thread serving on a free loopback port until the ``with`` block ends."""

    server: socketserver.TCPServer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RecordingServer(_Serving):
    """An HTTP server on a free loopback port; ``answer(handler)`` writes each answer, every request is recorded."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded.append({"line": self.requestline, "headers": dict(self.headers), "body": body})
                try:
                    answer(self)
                except OSError:  # the client gave up, as it should
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def json_answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None):
    body = json.dumps(payload).encode()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return answer


class SocketServer(_Serving):
    """A TCP server on a free loopback port handing each accepted socket to ``handle``; counts connections."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.connections = 0
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1
                try:
                    handle(self.request)
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def use_connection(monkeypatch, host: str, **extra: Any) -> None:
    """``opsera_default`` pointing at ``host``, through the environment."""
    conn = {"conn_type": "opsera", "host": host, "password": TOKEN, "extra": {k: str(v) for k, v in extra.items()}}
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(conn))


def sync_hook(**kwargs: Any):
    """The sync hook on a fake clock: retry waits are recorded in ``hook.sleeps``, not slept."""
    from airflow_provider_opsera.hooks import OpseraHook

    hook = OpseraHook(**kwargs)
    hook.sleeps = []
    hook._sleep = hook.sleeps.append
    return hook


def run_async(scenario: Callable[[Any], Any], **kwargs: Any) -> Any:
    """``await scenario(hook)`` with an async client on a fake clock, on a fresh event loop."""
    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

    async def fake_sleep(seconds: float) -> None:
        hook.sleeps.append(seconds)

    hook = OpseraAsyncHook(sleep=fake_sleep, **kwargs)
    hook.sleeps = []

    async def main() -> Any:
        try:
            return await scenario(hook)
        finally:
            await close_shared_session()

    return asyncio.run(main())


def call_with(client: str, name: str, hook_kwargs: dict | None = None, **kwargs: Any) -> tuple[Any, list[float]]:
    """One API call by name with the ``"sync"`` or ``"async"`` client; its answer and the retry waits it took.

    An error is raised with the waits attached as ``error.sleeps``.
    """
    hook_kwargs = hook_kwargs or {}
    hook = sync_hook(**hook_kwargs) if client == "sync" else None
    try:
        if hook is not None:
            return hook.call(name, **kwargs), hook.sleeps
        waits: list[float] = []

        async def scenario(async_hook: Any) -> Any:
            waits.extend(async_hook.sleeps)  # the same list object: filled as the call retries
            async_hook.sleeps = waits
            return await async_hook.call(name, **kwargs)

        return run_async(scenario, **hook_kwargs), waits
    except Exception as error:
        error.sleeps = hook.sleeps if hook is not None else waits
        raise


CLIENTS = ("sync", "async")
