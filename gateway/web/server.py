"""The live page's HTTP server: the page, ``/api/state`` (a JSON snapshot) and ``/api/events``
(the same snapshot once a second, as server-sent events).

It runs in the daemon's task group under ``supervised``: a port already taken, or anything else
that ends it, is an error in the journal and a sentence under the status' ``alerts``, retried
with backoff, while the gateway goes on. Off a loopback address every request needs the password
(HTTP Basic, any user name, compared in constant time); the file is read when the server starts,
so a new password takes effect at the next start or reload.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from gateway.config.sections import WebConfig
from gateway.errors import GatewayError
from gateway.events.privacy import read_secret
from gateway.telemetry import Observed
from gateway.web.sse import INTERVAL_S, Watchers
from gateway.web.view import WINDOW_S, DaemonView

log = logging.getLogger(__name__)

STATIC: Final = Path(__file__).resolve().parent / "static"
FILES: Final = {  # everything the server hands out from static/, by its URL
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
MAX_KEY: Final = 100  # characters of an antenna key in a query
WRITE_TIMEOUT_S: Final = 10.0  # a page that takes no data this long is let go
NO_STORE: Final = {"Cache-Control": "no-store"}
# The page loads nothing from elsewhere, runs no inline script, and may not be framed.
PAGE_HEADERS: Final = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
ALERT: Final = "web"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SetAlert = Callable[[str, str | None], None]  # StatusBoard.set_alert


class WebError(GatewayError):
    """The page cannot be served (its port, its password file)."""


class WebServer:
    def __init__(self, daemon: Observed, config: WebConfig, set_alert: SetAlert) -> None:
        self.view = DaemonView(daemon)
        self.watchers = Watchers(self.view)
        self._set_alert = set_alert
        self._config = config
        self.host, self.port = config.host, config.port
        self._password: bytes | None = None
        self._alert: str | None = None  # the status alert while the page is down

    async def run(self) -> None:
        if self._config.password_file is not None:
            try:
                self._password = read_secret(self._config.password_file)
            except GatewayError as exc:
                raise WebError(f"web.password_file: {exc}") from exc
        app = web.Application(middlewares=[self._auth], client_max_size=1024)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        for path in FILES:
            app.router.add_get(path, self._file)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        errors = logging.getLogger("gateway")
        try:
            site = web.TCPSite(runner, self.host, self.port, shutdown_timeout=1.0)
            try:
                await site.start()
            except OSError as exc:
                where = f"{self.host}:{self.port}"
                raise WebError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
            self.port = _bound_port(runner, self.port)
            log.info("live page on http://%s:%d/", self.host, self.port)
            self._alert = None
            self._set_alert(ALERT, None)
            errors.addHandler(self.view.errors)
            await asyncio.Event().wait()  # until the daemon stops
        finally:
            errors.removeHandler(self.view.errors)
            self.watchers.close()
            await runner.cleanup()

    def failed(self, exc: BaseException) -> None:
        """``supervised``'s report: the gateway runs on without its page. An error in the
        journal when the reason is new; the retries that fail alike are supervised's to log."""
        alert = f"live page down: {exc}"
        if alert != self._alert:
            log.error("live page: %s", exc)
        self._alert = alert
        self._set_alert(ALERT, alert)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._password is not None and not self._authorised(request):
            return web.Response(
                status=401,
                text="password required\n",
                headers={"WWW-Authenticate": 'Basic realm="silentgate", charset="UTF-8"'},
            )
        return await handler(request)

    def _authorised(self, request: web.Request) -> bool:
        assert self._password is not None
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _, colon, password = decoded.partition(b":")
        return bool(colon) and hmac.compare_digest(password, self._password)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name, kind = FILES[request.path]
        body = await asyncio.to_thread((STATIC / name).read_bytes)
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=PAGE_HEADERS)

    async def _state(self, request: web.Request) -> web.StreamResponse:
        # A script polling this is a watcher too: the ring fills for a minute after each poll.
        self.view.ring.arm(self.view.now() + WINDOW_S)
        return web.json_response(self.view.snapshot(_antenna(request)), headers=NO_STORE)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        watcher = self.watchers.join(_antenna(request))
        if watcher is None:
            return web.Response(status=503, text="too many live pages open\n", headers=NO_STORE)
        response = web.StreamResponse(
            headers={**NO_STORE, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        try:
            await response.prepare(request)
            while not watcher.dropped.is_set():
                try:
                    async with asyncio.timeout(3 * INTERVAL_S):
                        message = await watcher.queue.get()
                except TimeoutError:
                    continue  # to look at the dropped flag again
                if watcher.dropped.is_set():
                    break
                try:
                    async with asyncio.timeout(WRITE_TIMEOUT_S):
                        await response.write(b"data: " + message.encode() + b"\n\n")
                except TimeoutError:
                    break  # the page stopped reading
        except ConnectionError:
            pass  # the page went away
        finally:
            self.watchers.leave(watcher)
        return response


def _antenna(request: web.Request) -> str | None:
    key = request.query.get("antenna")
    return key if key and len(key) <= MAX_KEY else None


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    """The port actually listened on (``port = 0`` picks a free one)."""
    for address in runner.addresses:
        return int(address[1])
    return configured
