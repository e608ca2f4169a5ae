"""The event bus: stamps events with a sequence number and fans them out to subscribers.

Each subscriber gets its own :class:`SubscriberActor` (its own daemon thread), so a slow
callback only delays itself, and a raising callback is caught, reported as a
``SubscriberFailed`` event and never reaches the pipeline (docs/DESIGN.md). A subscriber that
falls more than ``max_pending`` events behind loses the overflow (counted, and reported
once per overflow episode) instead of growing memory without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from loguru import logger

from protocols import Event, SubscriberFailed

from ..kernel.base import FlowActor, tell
from ..supervision.messages import Wire
from .messages import Deliver, DeliveryDone, Publish, Subscribe, Unsubscribe


class SubscriberActor(FlowActor):
    """Runs one subscriber's callback for each delivered event, isolating its failures."""

    def __init__(self, *, token: int, callback: Callable[[Event], None], bus: pykka.ActorRef, **kw) -> None:
        super().__init__(**kw)
        self._token = token
        self._callback = callback
        self._bus = bus

    def handle_Wire(self, message: Wire) -> None:
        """A restarted bus: deliveries are acknowledged to it."""
        if message.bus is not None:
            self._bus = message.bus

    def handle_Deliver(self, message: Deliver) -> None:
        error = None
        try:
            self._callback(message.event)
        except BaseException as exc:  # noqa: BLE001 - a subscriber must never break anything
            error = f"{type(exc).__name__}: {exc}"[:300]
        tell(self._bus, DeliveryDone(self._token, error))


@dataclass
class _Sub:
    ref: pykka.ActorRef
    accepts: Callable[[Event], bool]
    max_pending: int
    name: str
    pending: int = 0
    dropped: int = 0
    failures: int = 0
    overflowing: bool = False


class EventBusActor(FlowActor):
    """Stamps ``seq`` on each published event and delivers it to every accepting subscriber.

    ``clock`` (the runtime's injected ``Clock``): an event published without an explicit ``ts``
    is stamped with its ``now()`` (UTC) as it is published, so a runtime on a ``FakeClock``
    publishes events at the fake time; without a clock an event keeps the wall-clock ``ts`` it
    was built with.

    A handler that raises crashes this actor. It hands its subscriptions to the supervisor
    (``failure_details``), and the restarted bus (``inherited``) keeps them: the same subscriber
    actors, rewired to the new bus, with their filters and limits. ``seq`` continues from the
    last stamped value. Events published to the crashed bus while it was down are kept in its
    mailbox and published by the next generation (``actors.kernel.inbox.Mailbox``).
    """

    crash_on_error = True
    keeps_mailbox = True

    def __init__(self, *, inherited: tuple = (), clock: Any = None, **kw) -> None:
        super().__init__(clock=clock, **kw)
        self._seq = 0
        self._now = clock.now if clock is not None else None
        self._subs: dict[int, _Sub] = {}
        self.published = 0
        for item in inherited:
            if isinstance(item, int):
                self._seq = item
            else:
                token, sub = item
                sub.pending, sub.overflowing = 0, False  # their DeliveryDone went to the crashed bus
                self._subs[token] = sub

    def start_child(self) -> None:
        for sub in self._subs.values():
            tell(sub.ref, Wire(bus=self.actor_ref))

    def failure_details(self) -> dict:
        """The subscriptions and the last ``seq``, for the restarted bus to keep."""
        return {"inherited": (self._seq, *self._subs.items())}

    def handle_Publish(self, message: Publish) -> None:
        self._seq += 1
        if not self._subs:
            return
        event = message.event.model_copy(update=self._stamp(message.event))
        self.published += 1
        for token, sub in list(self._subs.items()):
            try:
                if not sub.accepts(event):
                    continue
            except Exception as exc:  # noqa: BLE001 - a broken filter is the subscriber's failure, never the bus's
                self._failed(token, sub, f"filter raised {type(exc).__name__}: {exc}")
                continue
            if sub.pending >= sub.max_pending:
                sub.dropped += 1
                if not sub.overflowing:
                    sub.overflowing = True
                    self._failed(token, sub, f"fell {sub.pending} events behind; dropping until it catches up")
                continue
            if tell(sub.ref, Deliver(event)):
                sub.pending += 1

    def _stamp(self, event: Event) -> dict:
        """The fields the bus stamps on ``event``: the next ``seq``, and ``ts`` from the runtime's
        clock unless the publisher gave one."""
        if self._now is None or "ts" in event.model_fields_set:
            return {"seq": self._seq}
        return {"seq": self._seq, "ts": self._now()}

    def handle_Subscribe(self, message: Subscribe) -> None:
        ref = SubscriberActor.start(token=message.token, callback=message.callback, bus=self.actor_ref, child_name=f"subscriber-{message.token}")
        name = getattr(message.callback, "__qualname__", None) or repr(message.callback)
        self._subs[message.token] = _Sub(ref=ref, accepts=message.accepts, max_pending=message.max_pending, name=str(name)[:80])

    def handle_Unsubscribe(self, message: Unsubscribe) -> None:
        sub = self._subs.pop(message.token, None)
        if sub is not None:
            sub.ref.stop(block=False)

    def handle_DeliveryDone(self, message: DeliveryDone) -> None:
        sub = self._subs.get(message.token)
        if sub is None:
            return
        sub.pending = max(0, sub.pending - 1)
        if sub.overflowing and sub.pending == 0:
            sub.overflowing = False
        if message.error is not None:
            sub.failures += 1
            if sub.failures <= 3 or sub.failures % 1000 == 0:
                self._failed(message.token, sub, message.error)

    def _failed(self, token: int, sub: _Sub, error: str) -> None:
        logger.warning("subscriber {} ({}) failed: {}", token, sub.name, error)
        event = SubscriberFailed(subscriber=f"{token}:{sub.name}", error=error)
        self._seq += 1
        event = event.model_copy(update=self._stamp(event))
        for other_token, other in self._subs.items():
            if other_token == token or other.pending >= other.max_pending:
                continue
            try:
                if other.accepts(event) and tell(other.ref, Deliver(event)):
                    other.pending += 1
            except Exception:  # noqa: BLE001 - another subscriber's filter: its failure is reported when it is delivered to
                continue

    def on_stop(self) -> None:
        for sub in self._subs.values():
            try:
                sub.ref.stop(block=False)
            except Exception:  # noqa: BLE001 - stopping: a subscriber that cannot stop must not stop the others
                pass

    def handle_GetBusStats(self, message) -> dict:
        return {
            "published": self.published,
            "subscribers": {t: {"pending": s.pending, "dropped": s.dropped, "failures": s.failures} for t, s in self._subs.items()},
        }
