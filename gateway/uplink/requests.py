"""Requests to the gateway itself (Zigbee2MQTT's bridge requests): ``P/request/{name}`` in,
``P/response/{name}`` out, matched by the ``id`` the sender chose.

``info`` answers the gateway's description (what the retained ``P/info`` holds), ``health`` its
status, ``reload`` re-reads the config file as SIGHUP does (a config with problems is refused and
the problems are the answer; a good one is answered first, then taken), ``log_level`` sets the
level of the daemon's log until the next start.

A request passes the checks of an output command (``gateway.commands.router``), cheapest first:
size before parsing, bounded JSON, a JSON object, a known name, the name's schema (strict types,
no unknown fields), ``expires_at`` judged only on a synchronised clock (or one trusted), an
``id`` not seen recently; then the ``id`` is claimed in the command ledger, so a request is acted
on at most once, across restarts too (a resent ``id`` is refused as a replay). Ids share the
ledger with command ids. Every request to a known name gets one response (with its ``id`` when
one could be read; a name that is not a request is counted, unanswered); responses wait in memory
(at most ``RESPONSES_MAX``, the oldest dropped) for a connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal, Protocol

import aiomqtt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gateway.commands.clocksync import clock_synchronised
from gateway.commands.ledger import OK, CommandLedger
from gateway.commands.models import COMMAND_ID_PATTERN
from gateway.commands.router import shown
from gateway.errors import GatewayError, InputError, Refused
from gateway.events.model import format_ts
from gateway.runtime.logs import LIFECYCLE
from gateway.runtime.ratelog import Throttle
from gateway.wire import bounded_json
from gateway.wire.topics import PUBLISH_TIMEOUT_S

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.requests")
_refusals = Throttle(log, logging.INFO)

MAX_PAYLOAD_BYTES: Final = 1024  # larger requests are refused before JSON parsing
LIMITS: Final = bounded_json.Limits(MAX_PAYLOAD_BYTES, 2, max_keys=8)
PENDING_MAX: Final = 16  # requests screened, not yet answered; more are refused as busy
RESPONSES_MAX: Final = 100  # unsent responses kept; the oldest go first
RECENT_IDS: Final = 1000  # ids refused as replays without asking the ledger

RequestId = Annotated[str, Field(pattern=COMMAND_ID_PATTERN)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    id: RequestId  # echoed in the response
    expires_at: AwareDatetime | None = None  # refused when it arrives later than this


class InfoRequest(_Request):
    """The gateway's description, as the retained ``P/info`` holds it."""


class HealthRequest(_Request):
    """The gateway's status, as the retained ``P/status`` holds it."""


class ReloadRequest(_Request):
    """Re-read the config file, as SIGHUP does."""


class LogLevelRequest(_Request):
    """Set the log level until the next start."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


AnyRequest = InfoRequest | HealthRequest | ReloadRequest | LogLevelRequest
REQUESTS: Final[dict[str, type[_Request]]] = {
    "info": InfoRequest,
    "health": HealthRequest,
    "reload": ReloadRequest,
    "log_level": LogLevelRequest,
}
_ADAPTERS: Final = {name: TypeAdapter(model) for name, model in REQUESTS.items()}


class Gateway(Protocol):
    """What requests read and act on (the daemon, or a stand-in in tests)."""

    def info(self) -> dict[str, object]: ...

    def health(self) -> dict[str, object]: ...

    def reload(self) -> tuple[list[str], Callable[[], None] | None]:
        """The config's problems (refused), or none and what starts the reload."""
        ...


@dataclass(frozen=True, slots=True)
class Response:
    name: str
    id: str | None  # None when the request was too broken to carry one
    ok: bool
    error: str | None
    ts: float
    data: dict[str, object] | None = None
    after: Callable[[], None] | None = field(default=None, compare=False)  # once published

    def topic(self, base: str) -> str:
        return f"{base}/response/{self.name}"

    def to_json(self) -> str:
        body: dict[str, object] = {"id": self.id, "ok": self.ok, "error": self.error}
        body["ts"] = format_ts(self.ts)
        if self.data is not None:
            body["data"] = self.data
        return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Accepted:
    name: str
    request: AnyRequest
    received: float


class RequestChannel:
    def __init__(
        self,
        gateway: Gateway,
        ledger: CommandLedger,
        base: str,
        *,
        clock: Callable[[], float] = time.time,
        synchronised: Callable[[], bool] = clock_synchronised,
        on_response: Callable[[], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self._ledger = ledger
        self.base = base
        self.prefix = f"{base}/request/"
        self.topic_filter = f"{base}/request/+"
        self._clock = clock
        self._synchronised = synchronised
        self._on_response = on_response
        self._accepted: asyncio.Queue[_Accepted] = asyncio.Queue()  # bounded by PENDING_MAX
        self._pending = 0
        self._responses: deque[Response] = deque()
        self._ready = asyncio.Event()
        self._recent: dict[str, None] = {}  # ids already claimed, oldest first
        self.refused_by: Counter[str] = Counter()
        self.unanswered = 0

    def receive(self, topic: str, payload: bytes) -> None:
        """Screen one message on ``P/request/{name}``; other topics are ignored."""
        name = self._name(topic)
        if name is None:
            if topic.startswith(self.prefix):  # counted; an answer would go to its own topic
                self.refused_by["unknown_request"] += 1
            return
        now = self._clock()
        try:
            request = self._check(name, payload, now)
        except Refused as refusal:
            self._answer(self._refusal(name, refusal, now))
            return
        self._pending += 1
        self._accepted.put_nowait(_Accepted(name, request, now))

    def refuse(self, message: aiomqtt.Message, code: str) -> None:
        """A message the inbound queue did not take (its lane full, or too large)."""
        name = self._name(message.topic.value)
        if name is None:
            return
        reason = (
            "busy: too many requests waiting"
            if code == "busy"
            else f"payload of {len(message.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        )
        self._answer(self._refusal(name, Refused(reason, None, code), self._clock()))

    async def run(self) -> None:
        """Act on screened requests one at a time until cancelled."""
        while True:
            accepted = await self._accepted.get()
            try:
                response = await self._act(accepted)
            except Refused as refusal:
                response = self._refusal(accepted.name, refusal, accepted.received)
            finally:
                self._pending -= 1
            self._answer(response)

    async def publish_responses(self, client: aiomqtt.Client) -> None:
        """Publish responses as they come, one at a time, until cancelled; a response's
        ``after`` (a reload) runs once the broker has it, or the attempt failed."""
        while True:
            if not self._responses:
                self._ready.clear()
                await self._ready.wait()
                continue
            response = self._responses.popleft()
            try:
                await client.publish(
                    response.topic(self.base), response.to_json(), qos=1,
                    timeout=PUBLISH_TIMEOUT_S,
                )  # fmt: skip
            except ValueError as exc:  # paho cannot encode it: it can never be sent
                self.unanswered += 1
                log.warning("no response to a %s request: %s", shown(response.name), exc)
            except BaseException:
                if response.after is None:
                    self._responses.appendleft(response)  # sent again on the next connection
                raise
            finally:
                if response.after is not None:
                    response.after()

    def _name(self, topic: str) -> str | None:
        if not topic.startswith(self.prefix):
            return None
        name = topic[len(self.prefix) :]
        return None if "/" in name or name not in REQUESTS else name

    def _check(self, name: str, payload: bytes, now: float) -> AnyRequest:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise Refused(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", None,
                          "too_large")  # fmt: skip
        try:
            obj = bounded_json.parse(payload, LIMITS)
        except InputError as exc:
            raise Refused(str(exc), None, exc.code) from None
        if not isinstance(obj, dict):
            raise Refused("a request is a JSON object", None, "object")
        raw_id = obj.get("id")
        request_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 128 else None
        try:
            request: AnyRequest = _ADAPTERS[name].validate_json(payload)  # type: ignore[assignment]
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '-'}: {e['msg']}" for e in exc.errors()[:3]
            )
            raise Refused(f"not a valid {name} request: {problems}", request_id, "schema") from None
        if request.expires_at is not None:
            self._check_expiry(request.expires_at.timestamp(), now, request.id)
        if request.id in self._recent:
            raise Refused("replayed: this id was already seen", request.id, "replayed")
        if self._pending >= PENDING_MAX:
            raise Refused(f"busy: {PENDING_MAX} requests pending", request.id, "busy")
        return request

    def _check_expiry(self, expires: float, now: float, request_id: str) -> None:
        if not self._synchronised():
            raise Refused(
                "cannot judge expires_at: the system clock is not synchronised",
                request_id, "clock_unsynchronised",
            )  # fmt: skip
        if expires > now + self._ledger.keep_s:
            reason = f"expires_at is more than {self._ledger.keep_s:.0f} s ahead"
            raise Refused(reason, request_id, "expiry_horizon")
        if expires <= now:
            raise Refused(f"expired {now - expires:.3f} s before it arrived", request_id,
                          "expired")  # fmt: skip

    async def _act(self, accepted: _Accepted) -> Response:
        name, request = accepted.name, accepted.request
        try:
            earlier = await self._ledger.claim(request.id, f"request/{name}")
        except GatewayError as exc:
            raise Refused(f"storage unavailable: {exc}", request.id, "storage") from None
        self._remember(request.id)
        if earlier is not None:
            raise Refused(f"replayed: this id was already seen ({earlier})", request.id,
                          "replayed")  # fmt: skip
        expires = request.expires_at.timestamp() if request.expires_at else None
        if expires is not None and expires <= self._clock():
            await self._ledger.settle(request.id, "refused: expired")
            raise Refused("expired before it could run", request.id, "expired")
        response = self._perform(name, request)
        await self._ledger.settle(request.id, OK if response.ok else f"failed: {response.error}")
        return response

    def _perform(self, name: str, request: AnyRequest) -> Response:
        now = self._clock()
        match request:
            case InfoRequest():
                return Response(name, request.id, True, None, now, self.gateway.info())
            case HealthRequest():
                return Response(name, request.id, True, None, now, self.gateway.health())
            case ReloadRequest():
                problems, start = self.gateway.reload()
                if problems:
                    error = "config refused, still running on the previous one"
                    data: dict[str, object] = {"problems": problems}
                    return Response(name, request.id, False, error, now, data)
                return Response(name, request.id, True, None, now, {"reloading": True}, start)
            case LogLevelRequest():
                log.info("log level set to %s by a request", request.level, extra=LIFECYCLE)
                logging.getLogger().setLevel(request.level)
                return Response(name, request.id, True, None, now, {"level": request.level})

    def _remember(self, request_id: str) -> None:
        self._recent[request_id] = None
        if len(self._recent) > RECENT_IDS:
            del self._recent[next(iter(self._recent))]

    def _refusal(self, name: str, refusal: Refused, now: float) -> Response:
        self.refused_by[refusal.code] += 1
        _refusals(refusal.code, "request refused (%s) for %s: %s", refusal.code, name, refusal)
        return Response(name, refusal.sender_id, False, str(refusal), now)

    def _answer(self, response: Response) -> None:
        if len(self._responses) >= RESPONSES_MAX:
            self._responses.popleft()
            self.unanswered += 1
        self._responses.append(response)
        self._ready.set()
        if self._on_response is not None:
            self._on_response()
