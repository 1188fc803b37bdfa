"""What every output session shares: a queue of actions, deadlines, retries, follow-ups, state.

A session is one output (a relay board, a display, an access point). ``execute`` checks a
command and turns it into the driver's action before anything is queued, so a malformed command
never reaches the wire. Actions then run one at a time, in order, by the session's ``run`` loop,
which the daemon supervises like a device session: it opens the connection, says hello, and
serves the queue until the connection fails, and the supervisor reopens it with backoff.

An action has a deadline (``ACTION_DEADLINE_S``, earlier if the command expires sooner). Within
it a refused or unanswered attempt is tried again; a connection that fails mid-action leaves
the action at the head of the queue, to be tried again after the reconnect if time remains.
When the deadline passes the caller is told why the last attempt failed, and the attempt in
progress is cancelled, so nothing is sent for an action its caller has given up on.

A follow-up is what a ``duration_s`` asks for later (switch the relay back, blank the line). It
is queued like any action when due, and a later action on the same key (channel, line) cancels
it: the newest command wins. Its deadline starts when it is first tried, not when it fell due,
so one that fell due while the output was down still runs once the output is back: the state
it restores is the one that was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from drivers.errors import DriverError, EncodeError
from gateway.commands import EXECUTE_TIMEOUT_S, AnyCommand, OutputError, OutputKind
from gateway.health import DeviceState, Health, StateListener

ACTION_DEADLINE_S: Final = EXECUTE_TIMEOUT_S - 1.0  # we report before the router gives up
MAX_QUEUED: Final = 32  # an output that is down must not collect commands without bound
RETRY_DELAY_S: Final = (0.05, 1.0)  # first pause between attempts, cap; doubling in between
IDLE_CHECK_S: Final = 30.0  # with nothing to do for this long, the session checks its output

A = TypeVar("A")  # the driver-level action a session sends
C = TypeVar("C")  # the open connection a session holds

log = logging.getLogger(__name__)


class InvalidCommandError(OutputError):
    """The command cannot be carried out by this output; nothing was sent."""


class RetryableError(OutputError):
    """This attempt failed (a NAK, no answer, a busy device); another one may succeed."""


@dataclass(frozen=True, slots=True)
class Planned(Generic[A]):
    """An action, the follow-up keys it replaces, and the follow-up it starts."""

    action: A
    describe: str
    keys: frozenset[Hashable] = frozenset()
    follow_up: FollowUp[A] | None = None


@dataclass(frozen=True, slots=True)
class FollowUp(Generic[A]):
    key: Hashable
    after_s: float
    planned: Planned[A]


@dataclass(eq=False, slots=True)
class _Job(Generic[A]):
    planned: Planned[A]
    deadline: float  # loop time
    done: asyncio.Future[None]
    attempts: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Due(Generic[A]):
    at: float  # loop time
    planned: Planned[A]


@dataclass(slots=True)
class _Queue(Generic[A]):
    jobs: deque[_Job[A]] = field(default_factory=deque)
    follow_ups: dict[Hashable, _Due[A]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Output(Protocol):
    """What the daemon and the command router see of any output session."""

    id: str
    state: DeviceState
    detail: str | None

    @property
    def kind(self) -> OutputKind: ...

    async def execute(self, command: AnyCommand) -> None: ...

    async def run(self) -> None: ...

    def set_state(self, state: DeviceState, detail: str | None = None) -> None: ...


class OutputSession(Health, ABC, Generic[C, A]):
    """One output: ``execute`` from any task, ``run`` under
    ``gateway.runtime.supervise.supervised``."""

    def __init__(
        self, output_id: str, on_state: StateListener, *, deadline_s: float = ACTION_DEADLINE_S
    ) -> None:
        self.id = output_id
        self.deadline_s = deadline_s
        self.log = logging.getLogger(f"gateway.outputs.{output_id}")
        super().__init__(output_id, self.log, on_state)
        self.executed = 0
        self.failed = 0
        self._queue: _Queue[A] = _Queue()

    @property
    @abstractmethod
    def kind(self) -> OutputKind: ...

    @abstractmethod
    def plan(self, command: AnyCommand) -> Planned[A]:
        """The action for ``command``, or InvalidCommandError. Must not touch the connection."""

    @abstractmethod
    async def _open(self) -> C: ...

    @abstractmethod
    def _close(self, conn: C) -> None: ...

    @abstractmethod
    async def _hello(self, conn: C) -> None:
        """Check the output answers (raise if not) and report its state."""

    @abstractmethod
    async def _attempt(self, conn: C, action: A) -> None:
        """Carry out ``action`` once: RetryableError, OutputError, or DriverError (link lost)."""

    async def _watch(self, conn: C) -> None:
        """Runs beside the queue while connected; raises when the connection goes away."""
        await asyncio.Event().wait()

    async def _check(self, conn: C) -> None:
        """Called after IDLE_CHECK_S without actions; raises if the output stopped answering."""

    def _fell_due(self, planned: Planned[A]) -> None:
        """A follow-up was queued; a session that restores state on reconnect should know."""

    async def execute(self, command: AnyCommand) -> None:
        """Carry out ``command`` (OutputExecutor); raises OutputError saying why it could not."""
        try:
            planned = self.plan(command)
        except EncodeError as exc:  # the driver's own range checks, should plan() miss one
            raise InvalidCommandError(f"{self.id}: {exc}") from exc
        await self._submit(planned, self._deadline(command))

    def _deadline(self, command: AnyCommand) -> float:
        budget = self.deadline_s
        if command.expires_at is not None:
            budget = min(budget, command.expires_at.timestamp() - time.time())
        return asyncio.get_running_loop().time() + budget

    async def _submit(self, planned: Planned[A], deadline: float) -> None:
        queue = self._queue
        if len(queue.jobs) >= MAX_QUEUED:
            raise OutputError(f"{self.id}: {len(queue.jobs)} actions already waiting")
        job = _Job(planned, deadline, asyncio.get_running_loop().create_future())
        queue.jobs.append(job)
        queue.wake.set()
        try:
            async with asyncio.timeout_at(deadline):
                await job.done  # cancelled with us: the queue skips it unless already begun
        except TimeoutError:
            raise OutputError(self._gave_up(job)) from None

    def _gave_up(self, job: _Job[A]) -> str:
        why = job.last_error
        if why is None:
            why = f"output {self.state.value}" + (f" ({self.detail})" if self.detail else "")
        tries = f"{job.attempts} attempt{'s' if job.attempts != 1 else ''}"
        return f"{self.id}: {job.planned.describe} not done by its deadline ({tries}): {why}"

    async def run(self) -> None:
        """Open, say hello, serve the queue; raises when the connection fails."""
        conn = await self._open()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watch(conn))
                tg.create_task(self._serve(conn))
        except* Exception as group:
            # One failure ends the connection; the supervisor should see it, not a group.
            raise group.exceptions[0] from None
        finally:
            self._close(conn)

    async def _serve(self, conn: C) -> None:
        self._promote_due(asyncio.get_running_loop().time())  # before hello restores anything
        await self._hello(conn)
        while True:
            job = await self._next_job()
            if job is None:
                await self._check(conn)
                continue
            await self._serve_job(conn, job)
            self._queue.jobs.popleft()

    async def _next_job(self) -> _Job[A] | None:
        """The head of the queue, once there is one; None after IDLE_CHECK_S of nothing."""
        queue, loop = self._queue, asyncio.get_running_loop()
        idle_until = loop.time() + IDLE_CHECK_S
        while True:
            self._promote_due(loop.time())
            while queue.jobs and queue.jobs[0].done.done():
                queue.jobs.popleft()  # its caller gave up while it waited
            if queue.jobs:
                return queue.jobs[0]
            if loop.time() >= idle_until:
                return None
            wake_at = min([idle_until, *(due.at for due in queue.follow_ups.values())])
            queue.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake_at):
                    await queue.wake.wait()

    async def _serve_job(self, conn: C, job: _Job[A]) -> None:
        loop, delay = asyncio.get_running_loop(), RETRY_DELAY_S[0]
        if math.isinf(job.deadline):  # a follow-up: its time starts now
            job.deadline = loop.time() + self.deadline_s
        while not job.done.done() and loop.time() < job.deadline:
            job.attempts += 1
            try:
                async with asyncio.timeout_at(job.deadline):
                    await self._attempt(conn, job.planned.action)
            except RetryableError as exc:
                job.last_error = str(exc)
                self.log.info("%s: attempt %d: %s", job.planned.describe, job.attempts, exc)
                await asyncio.sleep(min(delay, max(0.0, job.deadline - loop.time())))
                delay = min(delay * 2, RETRY_DELAY_S[1])
                continue
            except OutputError as exc:
                self._finish(job, exc)
                return
            except TimeoutError:
                break
            except DriverError as exc:
                job.last_error = str(exc)
                raise  # the connection is gone: the job stays queued for the next one
            self._finish(job, None)
            return
        self._finish(job, OutputError(self._gave_up(job)))

    def _finish(self, job: _Job[A], error: OutputError | None) -> None:
        if error is None:
            self.executed += 1
            self._replace_follow_ups(job.planned)
        else:
            self.failed += 1
            self.log.warning("%s", error)
        if not job.done.done():
            if error is None:
                job.done.set_result(None)
            else:
                job.done.set_exception(error)

    def _replace_follow_ups(self, planned: Planned[A]) -> None:
        queue = self._queue
        for key in planned.keys:
            queue.follow_ups.pop(key, None)
        if planned.follow_up is not None:
            follow = planned.follow_up
            at = asyncio.get_running_loop().time() + follow.after_s
            queue.follow_ups[follow.key] = _Due(at, follow.planned)

    def _promote_due(self, now: float) -> None:
        queue = self._queue
        for key, due in list(queue.follow_ups.items()):
            if due.at <= now:
                del queue.follow_ups[key]
                done = asyncio.get_running_loop().create_future()
                done.add_done_callback(_log_follow_up_failure)
                queue.jobs.append(_Job(due.planned, math.inf, done))
                self._fell_due(due.planned)


def _log_follow_up_failure(done: asyncio.Future[None]) -> None:
    # Nobody awaits a follow-up; its failure was logged by _finish, retrieve it here so asyncio
    # does not report an exception that was never retrieved.
    if not done.cancelled():
        done.exception()
