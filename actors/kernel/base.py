"""The base every flowroute actor derives from, and the helpers for forwarding safely.

pykka facts this module designs around (docs/DESIGN.md, One order): a ``BaseException`` escaping a handler
stops *every* actor in the process; a crashed actor's queued tells are dropped; a
``tell`` to a dead actor raises ``ActorDeadError``; non-daemon actor threads keep the
interpreter alive. So :class:`FlowActor`:

- runs on a daemon thread;
- dispatches each message by type to ``handle_<MessageName>`` (no proxies, no reflection per call);
- converts any ``BaseException`` into an ``ActorCrashed`` (an ``Exception``) so pykka treats it
  as this actor's failure only;
- either contains a failing handler (``crash_on_error = False``: the supervisor and event
  subscribers; the error is logged with full detail and, if the message carries a reply future,
  answered with E_EXEC_INTERNAL) or crashes (``crash_on_error = True``: every supervised child —
  adapter actors, router, breakers, event bus, ledger and idempotency store: no carrying on with
  half-applied state); a crash reaches the supervisor through pykka's ``on_failure`` and the
  supervisor restarts the child (docs/DESIGN.md "Failure handling").
  ``answer_on_crash = True`` answers the failing message's reply future with E_EXEC_INTERNAL
  before the crash (``answer_crashed``; actors before the venue call; an adapter's order is in
  doubt instead); ``keeps_mailbox = True`` keeps the messages queued to a crashed child for its
  next generation (:class:`~actors.kernel.inbox.Mailbox`);
- reports a failure inside ``on_start`` to its supervisor as well (pykka does not call
  ``on_failure`` for start-up failures).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from datetime import datetime
from typing import Any

import pykka
from loguru import logger

from protocols import ErrorCode, ExecError, ExecutionReport, OrderStatus, utc_now

from .dispatcher import Dispatcher, HelpingFuture
from .inbox import Inbox, Mailbox, WakeAfter, tell, wake
from .pykka_compat import Envelope

#: seconds an own-thread actor waits, once woken by ``wake`` after an answer, before its bookkeeping
OWN_THREAD_LINGER_S = 50e-6

ASK_TIMEOUT_S = 5.0
"""Default timeout of every ask the runtime makes (an ask without a timeout can hang forever)."""


class ActorCrashed(Exception):
    """A BaseException (or an injected crash) converted so it only stops the actor it happened in."""


class FlowActor(pykka.ThreadingActor):
    """Base actor: daemon thread, typed dispatch, BaseException containment, supervision hooks.

    Subclasses define ``handle_<MessageClassName>(self, message)`` methods. ``child_name``
    and ``generation`` identify the child to its supervisor; ``supervisor`` is the
    supervisor's ``ActorRef`` (or None for unsupervised actors).
    """

    use_daemon_thread = True
    crash_on_error = False
    #: with ``crash_on_error``: answer the failing message's reply future (E_EXEC_INTERNAL) first
    answer_on_crash = False
    #: a crash keeps this actor's mailbox for its next generation (``actors.kernel.inbox.Mailbox``):
    #: the messages queued behind the failing one and those told while it restarts are redelivered
    keeps_mailbox = False
    #: the inbox :meth:`_create_actor_inbox` makes (pykka declares its own inbox protocol)
    actor_inbox: Inbox

    def _create_actor_inbox(self) -> Inbox:  # type: ignore[override]
        # pykka's inbox type plus a put that does not wake the actor (see actors/kernel/inbox.py);
        # a member of a dispatcher gets that dispatcher's inbox (see actors/kernel/dispatcher.py)
        dispatcher = self.dispatcher
        # an actor on its own thread lingers when woken after an answer, as the dispatcher's after thread does
        return Inbox(linger_s=OWN_THREAD_LINGER_S) if dispatcher is None else dispatcher.inbox(self)

    def _start_actor_loop(self) -> None:
        if self.dispatcher is None:
            super()._start_actor_loop()
        else:
            self.dispatcher.start(self)

    def __init__(self, *, child_name: str = "", generation: int = 0, supervisor: pykka.ActorRef | None = None,
                 startup_errors: list | None = None, dispatcher: Dispatcher | None = None, supervised_as: str = "",
                 clock: Any = None) -> None:
        #: the thread this actor's messages run on: its own (None) or a shared Dispatcher
        self.dispatcher = dispatcher
        super().__init__()
        self._startup_errors = startup_errors
        self.child_name = child_name or type(self).__name__
        self.generation = generation
        self.supervisor = supervisor
        #: the name the supervisor knows this child by (``Supervise``), if not ``child_name``
        self._supervised_as = supervised_as
        self._dispatch: dict[type, Callable[[Any], Any]] = {WakeAfter: self._run_then_wake}
        #: what the answers this base makes (crash and contained-error reports) are stamped with:
        #: the runtime's injected clock's ``now`` (a ``Clock``), else the wall clock
        self.report_now: Callable[[], datetime] = clock.now if clock is not None else utc_now

    # -- pykka hooks -------------------------------------------------------------------
    def on_start(self) -> None:
        try:
            self.start_child()
        except BaseException as exc:  # noqa: BLE001 - reported, never escapes
            logger.opt(exception=exc).error("{} failed during start-up", self.child_name)
            if self._startup_errors is not None:
                self._startup_errors.append(f"{self.child_name}: {exc_summary(exc)}")
            self._keep_mailbox()  # a restarted generation that cannot start: its messages wait for the next one
            mailbox = getattr(self.actor_inbox, "held", None)
            if mailbox is not None:
                drain = getattr(self.actor_inbox, "drain", None) or self.actor_inbox.take_all
                mailbox.keep(drain())
            self._report_failure(exc, during_startup=True)
            raise ActorCrashed(f"start-up failed: {exc!r}") from None

    def start_child(self) -> None:
        """Start-up work of the subclass (runs in the actor thread). Override as needed."""

    def on_receive(self, message: Any) -> Any:
        handler = self._dispatch.get(type(message))
        if handler is None:
            name = "handle_" + type(message).__name__
            handler = getattr(self, name, None)
            if handler is None:
                logger.error("{} got an unexpected message {!r}", self.child_name, type(message).__name__)
                return None
            self._dispatch[type(message)] = handler
        try:
            return handler(message)
        except Exception as exc:
            if self.crash_on_error:
                self._keep_mailbox()
                if self.answer_on_crash:
                    self.answer_crashed(self._failed_item(message))
                raise
            logger.opt(exception=exc).error("{} failed handling {}", self.child_name, type(message).__name__)
            reply = getattr(message, "reply", None)
            if isinstance(reply, Future):
                resolve(reply, internal_error_report(message, ts=self.report_now()))
            self._report_contained(exc, message)
            return None
        except BaseException as exc:  # noqa: BLE001 - must never reach pykka's loop
            if self.crash_on_error:
                logger.opt(exception=exc).error("{} hit {!r}; converting to a crash", self.child_name, exc)
                self._keep_mailbox()
                if self.answer_on_crash:
                    self.answer_crashed(self._failed_item(message))
                raise ActorCrashed(repr(exc)) from None
            logger.opt(exception=exc).error("{} contained {!r} in {}", self.child_name, exc, type(message).__name__)
            reply = getattr(message, "reply", None)
            if isinstance(reply, Future):
                resolve(reply, internal_error_report(message, ts=self.report_now()))
            self._report_contained(exc, message)
            return None

    def run_each(self, items: tuple, handle: Callable[[Any], Any]) -> None:
        """Handle each item of a batch message (the orders of one group commit: ``SubmitOrders``,
        ``ExecuteOrders``) with ``handle``, in order, each as if it had been told alone.

        One that raises crashes this actor as that item alone would (``crash_on_error``): it is
        the one :meth:`answer_crashed` answers, the items before it are done, and the items after
        it are kept for the next generation ahead of the messages queued behind the batch
        (``keeps_mailbox``; without it they go with those, as queued messages do)."""
        i = 0
        try:
            for i, item in enumerate(items):  # noqa: B007 - i is read when handle raises
                handle(item)
        except BaseException:
            self._batch_failed = (items[i], tuple(items[i + 1:]))
            raise

    #: set by :meth:`run_each` when an item raised: (that item, the items after it)
    _batch_failed: tuple[Any, tuple] | None = None

    def _failed_item(self, message: Any) -> Any:
        """The message whose handling failed: the batch item that raised (:meth:`run_each`), else ``message``."""
        failed = self._batch_failed
        return message if failed is None else failed[0]

    def _keep_mailbox(self) -> None:
        """About to crash: hang a :class:`Mailbox` on the inbox before pykka marks this actor
        stopped, so no tell to it falls between the two (``on_failure`` moves the queue into it)."""
        if self.keeps_mailbox and self.supervisor is not None and getattr(self.actor_inbox, "held", None) is None:
            self.actor_inbox.held = Mailbox(self.actor_inbox, [])

    def answer_crashed(self, message: Any) -> None:
        """The handler of ``message`` raised and this actor crashes: answer its reply future
        (E_EXEC_INTERNAL). It is not redelivered (it would crash the next generation the same way)."""
        reply = getattr(message, "reply", None)
        if isinstance(reply, Future):
            resolve(reply, internal_error_report(message, ts=self.report_now()))

    def on_failure(self, exception_type, exception_value, traceback) -> None:  # noqa: ANN001
        try:
            mailbox = self.actor_inbox.held
            if mailbox is not None:  # what is queued behind the failing message goes to the next generation
                inbox = self.actor_inbox
                drain = getattr(inbox, "drain", None) or inbox.take_all
                failed, self._batch_failed = self._batch_failed, None
                # a batch's items after the one that failed (run_each) first: they came before the queued ones
                mailbox.keep([Envelope(item) for item in failed[1]] + drain() if failed is not None else drain())
                if mailbox.pending():
                    logger.warning("{} crashed with {} message(s) queued: kept for its next generation",
                                   self.child_name, mailbox.pending())
        except BaseException:  # noqa: BLE001 - a failing actor's cleanup must not escape
            logger.opt(exception=True).error("{} could not keep its mailbox", self.child_name)
        try:
            self._report_failure(exception_value, during_startup=False)
        except BaseException:  # noqa: BLE001 - a failing actor's cleanup must not escape
            logger.opt(exception=True).error("{} could not report its failure", self.child_name)

    def _run_then_wake(self, relay: WakeAfter) -> Any:
        """A :class:`~actors.kernel.inbox.WakeAfter` relay: handle its message as if told alone
        (same dispatch and failure handling), then wake the actors it names. The message goes
        through :meth:`FlowActor.on_receive` itself: a subclass's own ``on_receive`` step (the
        ledger's, the store's) runs once, around the relay, not twice per order."""
        try:
            return FlowActor.on_receive(self, relay.message)
        finally:
            for ref in relay.refs:
                wake(ref)

    def handle__Ping(self, message: Any) -> bool:
        """Barrier: answered after every message queued before it."""
        return True

    def handle_Supervise(self, message: Any) -> None:
        """The supervisor watches this actor from now on: failures go to it as ``generation``."""
        self.supervisor = message.supervisor
        self.generation = message.generation
        self._supervised_as = message.name

    # -- supervision -------------------------------------------------------------------
    def failure_details(self) -> dict[str, Any]:
        """Extra facts for the supervisor when this actor fails (e.g. orders in doubt)."""
        return {}

    def _report_contained(self, exc: BaseException, message: Any) -> None:
        # the actor goes on, but its state may be half-applied: its supervisor decides (HALT)
        try:
            self._report_failure(exc, during_startup=False, contained_in=type(message).__name__)
        except Exception:  # noqa: BLE001 - reporting must not fail the actor that failed
            logger.opt(exception=True).error("{} could not report a contained failure", self.child_name)

    def _report_failure(self, exc: BaseException | None, *, during_startup: bool, contained_in: str = "") -> None:
        if self.supervisor is None:
            return
        from ..supervision.messages import ChildFailed

        details: dict[str, Any] = {}
        try:
            details = self.failure_details()
        except Exception:  # noqa: BLE001 - an actor's own details hook must not stop its failure report
            logger.opt(exception=True).error("{} failure_details() failed", self.child_name)
        mailbox = getattr(self.actor_inbox, "held", None)
        if mailbox is not None:
            details = {**details, "mailbox": mailbox}
        tell(
            self.supervisor,
            ChildFailed(
                child=self._supervised_as or self.child_name,
                generation=self.generation,
                error=repr(exc)[:500],
                during_startup=during_startup,
                details=details,
                contained_in=contained_in,
            ),
        )


class ReplyFuture(HelpingFuture):
    """The reply future ``Runtime.submit`` hands out: a ``concurrent.futures.Future`` resolved with
    exactly one ``ExecutionReport``, which ``Runtime.stop`` may :meth:`abandon` (answer UNKNOWN)
    while the order is still in flight; the actors' late answer then goes to the journal only.

    ``result(timeout)`` first runs the order's queued messages in the waiting thread when their
    dispatcher is free (:class:`~actors.kernel.dispatcher.HelpingFuture`, docs/DESIGN.md
    "Threads"), then waits; ``timeout`` bounds both."""

    #: True once ``Runtime.stop`` answered it (a later :func:`resolve` is expected, not an error)
    abandoned_at_stop: bool = False
    #: the order it answers (set by ``Runtime.submit``): what the report ``Runtime.stop`` gives it names
    intent: Any = None
    context: Any = None

    def abandon(self, report: ExecutionReport) -> bool:
        """Answer ``report`` at stop; False when the future was answered already."""
        self.abandoned_at_stop = True
        try:
            self.set_result(report)
            return True
        except InvalidStateError:
            return False


def resolve(future: Future, report: object) -> bool:
    """Set ``report`` (an ExecutionReport, or a query's answer such as a BrokerSyncReport) as the
    future's result once; return False if it was already resolved
    (logged as an error, unless ``Runtime.stop`` abandoned the :class:`ReplyFuture`)."""
    try:
        future.set_result(report)
        return True
    except InvalidStateError:
        if type(future) is ReplyFuture and future.abandoned_at_stop:
            return False  # Runtime.stop answered it already (UNKNOWN); this late answer is in the journal
        logger.error("a report for {} was resolved twice; the second was dropped",
                     getattr(report, "client_order_id", type(report).__name__))
        return False


def internal_error_report(message: Any, *, ts: datetime) -> ExecutionReport:
    """An E_EXEC_INTERNAL report for the order ``message`` carries (detail stays in the log), stamped
    ``ts`` (the runtime's clock: ``FlowActor.report_now()``)."""
    intent = getattr(message, "intent", None)
    context = getattr(message, "context", None)
    return ExecutionReport(
        client_order_id=getattr(intent, "client_order_id", "") or getattr(message, "client_order_id", "") or "?",
        account_id=getattr(context, "account_id", "") or "",
        status=OrderStatus.FAILED if intent is not None else OrderStatus.DENIED,
        error=ExecError.of(ErrorCode.E_EXEC_INTERNAL, "internal error; see the runtime log"),
        ts=ts,
    )


def now_ns() -> int:
    """``time.perf_counter_ns()``: the latency clock (process-local, monotonic)."""
    return time.perf_counter_ns()


def exc_summary(exc: BaseException) -> str:
    """``Type: message`` of an exception, cut to 300 chars, for reports (no traceback)."""
    text = f"{type(exc).__name__}: {exc}"
    return text[:300]


__all__ = ["ASK_TIMEOUT_S", "ActorCrashed", "FlowActor", "ReplyFuture", "tell", "resolve", "internal_error_report", "now_ns", "exc_summary"]
