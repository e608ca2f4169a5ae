"""Fault injection around any ``BrokerAdapter``: deterministic by seed (docs/DESIGN.md, Testing).

:class:`FaultPlan` holds one rate per fault; :class:`FaultInjectingAdapter` wraps an adapter
and, for each ``submit_order`` / ``cancel_order`` call, draws one number ``u`` from its own
``random.Random(seed)`` and picks the fault whose slice of [0, 1) contains ``u``, slices laid
out in the fixed order crash, hang, ambiguous, transient, reject, slow (the rest: no fault).
The same seed and the same call sequence give the same faults.

=========  =========================================================================  =========
fault      what the caller sees                                                       delivered
=========  =========================================================================  =========
crash      ``AdapterCrash`` (a BaseException) raised before the inner call            no
hang       blocks until :meth:`~FaultInjectingAdapter.release_hangs` or ``hang_s``,    50 / 50
           then ``AmbiguousError``; a second draw decides whether the order was
           delivered first (deliver-then-hang = a timeout after delivery)
ambiguous  inner call made, its answer dropped, ``AmbiguousError("timeout after       yes
           send")`` raised (the order exists at the venue!)
transient  ``NotDeliveredError`` raised before the inner call                         no
reject     ``VenueRejectedError("injected reject")`` (code ``INJECTED``)              no
slow       waits ``slow_s`` (``threading.Event.wait``; runs on the caller's worker    yes
           thread, never an actor), then the inner call
=========  =========================================================================  =========

``capabilities`` are the inner adapter's, always blocking, and without ``group_commit`` while the
plan can block a call (``hang`` or ``slow`` above 0): an injected hang or slow call then holds only
itself, as a real venue that hangs one call still answers the calls sent before it (grouped, the
calls sent with it would wait for it: a group's answers go out after its last call, at
``end_batch``).
``fetch_order``, ``fetch_open_orders``, ``fetch_positions`` and ``fetch_account`` only ever get
``transient`` faults, at the transient rate, drawn from a separate seeded stream (so reads do
not shift the faults of writes). ``adapter_id``, ``set_event_sink``, ``on_market``, ``close``
and any other attribute (``__getattr__``) go straight to the inner adapter.

Example::

    >>> plan = FaultPlan.parse("crash=0.001,ambiguous=0.002,transient=0.02", seed=7)
    >>> plan.transient, plan.seed
    (0.02, 7)
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from ..adapter import (
    AdapterCapabilities,
    BrokerAdapter,
    EventSink,
    VenueOrder,
    VenueOrderState,
    adapter_capabilities,
)
from ..market.values import Quote, Trade
from ..model.errors import AdapterCrash, AdapterError, AmbiguousError, NotDeliveredError, VenueRejectedError

FAULTS: tuple[str, ...] = ("crash", "hang", "ambiguous", "transient", "reject", "slow")
"""Fault names, in the order their probability slices are laid out."""

_DURATIONS = ("hang_s", "slow_s")

T = TypeVar("T")


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"fault rate for {name!r} must be a number in [0, 1], got {value!r}")
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"fault rate for {name!r} must be a number in [0, 1], got {value!r}") from None
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault rate for {name!r} must be a number in [0, 1], got {value!r}")
    return rate


def _duration(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class FaultPlan:
    """Fault rates in [0, 1] (their sum at most 1), durations in seconds, and the seed.

    ``hang_s`` (default 3600) bounds how long a hang blocks; the actor abandons the worker
    thread at its own deadline, and :meth:`FaultInjectingAdapter.release_hangs` frees it.
    ``slow_s`` (default 0.05) is the delay of a slow call. Raises ``ValueError`` naming a bad
    rate or duration, or when the rates add up to more than 1.
    """

    crash: float = 0.0
    hang: float = 0.0
    ambiguous: float = 0.0
    transient: float = 0.0
    reject: float = 0.0
    slow: float = 0.0
    hang_s: float = 3600.0
    slow_s: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in FAULTS:
            object.__setattr__(self, name, _rate(name, getattr(self, name)))
        for name in _DURATIONS:
            object.__setattr__(self, name, _duration(name, getattr(self, name)))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        total = sum(getattr(self, name) for name in FAULTS)
        if total > 1.0 + 1e-12:
            raise ValueError(f"fault rates add up to {total:g}, more than 1")

    @classmethod
    def parse(cls, text: str, *, seed: int = 0) -> FaultPlan:
        """Parse ``"crash=0.001,hang=0.0005,ambiguous=0.002,transient=0.02,reject=0.01"``.

        Keys are the fault names plus ``hang_s`` and ``slow_s``; whitespace is ignored; an
        empty text is the no-fault plan. Raises ``ValueError`` naming an unknown or repeated
        key, a part without ``=``, or a bad value.
        """
        if not isinstance(text, str):
            raise ValueError(f"fault plan must be a string like 'crash=0.001,transient=0.02', got {text!r}")
        values: dict[str, Any] = {}
        allowed = FAULTS + _DURATIONS
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep:
                raise ValueError(f"fault plan part {part!r} is not of the form name=rate")
            if key not in allowed:
                raise ValueError(f"unknown fault {key!r} (expected one of {', '.join(allowed)})")
            if key in values:
                raise ValueError(f"fault {key!r} is given twice")
            values[key] = value
        return cls(**values, seed=seed)

    def rates(self) -> dict[str, float]:
        """``{fault name: rate}`` in slice order."""
        return {name: getattr(self, name) for name in FAULTS}

    def __str__(self) -> str:
        parts = [f"{name}={getattr(self, name):g}" for name in FAULTS if getattr(self, name)]
        return ",".join(parts) or "none"


class FaultInjectingAdapter:
    """Wrap ``inner`` (any ``BrokerAdapter``) and inject the faults of ``plan`` (see module doc).

    ``continue_from``: the instance this one replaces after an adapter restart; its draws and
    counts go on here (the same seed gives the same faults across restarts).

    Thread-safe: draws are serialised by a lock, so the fault sequence follows the order in
    which calls arrive. :meth:`stats` counts calls and faults.
    """

    def __init__(self, inner: BrokerAdapter, plan: FaultPlan, *, continue_from: FaultInjectingAdapter | None = None) -> None:
        self._inner = inner
        self.plan = plan
        self._rng: random.Random
        self._fetch_rng: random.Random
        self._draw_lock: threading.Lock
        self._stats: dict[str, int]
        if continue_from is not None:
            # a fresh instance after a restart: the same fault sequence goes on, counts included
            self._rng, self._fetch_rng = continue_from._rng, continue_from._fetch_rng
            self._draw_lock, self._stats = continue_from._draw_lock, continue_from._stats
        else:
            self._rng = random.Random(plan.seed)
            self._fetch_rng = random.Random(f"flowroute-faults:{plan.seed}:fetch")
            self._draw_lock = threading.Lock()
        self._released = threading.Event()
        self._slow_timer = threading.Event()  # never set: a sleep that is not time.sleep
        self._hang_cond = threading.Condition()
        self._hanging = 0
        if continue_from is None:
            self._stats = {
                "calls": 0,
                **{name: 0 for name in FAULTS},
                "hang_delivered": 0,
                "ok": 0,
                "fetch_calls": 0,
                "fetch_transient": 0,
            }

    # ------------------------------------------------------------------ delegation
    @property
    def inner(self) -> BrokerAdapter:
        """The wrapped adapter."""
        return self._inner

    @property
    def adapter_id(self) -> str:
        """The inner adapter's id."""
        return self._inner.adapter_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def capabilities(self) -> AdapterCapabilities:
        """The inner adapter's capabilities, always ``blocking`` (injected hangs and slow calls
        block, so this adapter is never called inline), and without ``group_commit`` while the plan
        can block a call (``hang`` or ``slow``): each call is then its own group at the inner venue,
        so a blocked call holds back no answer of a call sent before it (see the module doc)."""
        caps = adapter_capabilities(self._inner)
        update: dict[str, bool] = {}
        if not caps.blocking:
            update["blocking"] = True
        if caps.group_commit and (self.plan.hang > 0 or self.plan.slow > 0):
            update["group_commit"] = False
        return caps.model_copy(update=update) if update else caps

    def set_event_sink(self, sink: EventSink | None) -> None:
        """Delegated to the inner adapter."""
        self._inner.set_event_sink(sink)

    def on_market(self, data: Quote | Trade) -> None:
        """Delegated to the inner adapter (never faulted)."""
        self._inner.on_market(data)

    def close(self) -> None:
        """Release every hang for good, then close the inner adapter."""
        self.release_hangs()
        self._inner.close()

    # ------------------------------------------------------------------ faulted calls
    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        """``inner.submit_order(order)`` through a drawn fault."""
        return self._call(lambda: self._inner.submit_order(order))

    def cancel_order(self, client_order_id: str) -> VenueOrderState:
        """``inner.cancel_order(client_order_id)`` through a drawn fault."""
        return self._call(lambda: self._inner.cancel_order(client_order_id))

    def fetch_order(self, client_order_id: str) -> VenueOrderState | None:
        """``inner.fetch_order``; may raise a transient ``NotDeliveredError``."""
        return self._fetch(lambda: self._inner.fetch_order(client_order_id))

    def fetch_open_orders(self) -> tuple[VenueOrderState, ...]:
        """``inner.fetch_open_orders``; may raise a transient ``NotDeliveredError``."""
        return self._fetch(self._inner.fetch_open_orders)

    def fetch_positions(self, *args: Any, **kwargs: Any) -> Mapping[str, Decimal]:
        """``inner.fetch_positions`` (arguments passed on); may raise a transient ``NotDeliveredError``."""
        return self._fetch(lambda: self._inner.fetch_positions(*args, **kwargs))

    def fetch_account(self, *args: Any, **kwargs: Any) -> Mapping[str, Decimal]:
        """``inner.fetch_account`` (arguments passed on); may raise a transient ``NotDeliveredError``."""
        return self._fetch(lambda: self._inner.fetch_account(*args, **kwargs))

    # ------------------------------------------------------------------ controls
    def release_hangs(self) -> None:
        """Free every thread blocked in a hang now, and make later hangs return at once
        (still raising ``AmbiguousError``). :meth:`rearm_hangs` makes hangs block again."""
        self._released.set()

    def rearm_hangs(self) -> None:
        """Make later hangs block again (until released or ``hang_s``)."""
        self._released.clear()

    def hanging(self) -> int:
        """How many threads are blocked in a hang right now."""
        with self._hang_cond:
            return self._hanging

    def wait_for_hangs(self, count: int = 1, timeout: float | None = None) -> bool:
        """Block until at least ``count`` threads hang (True) or ``timeout`` seconds pass (False)."""
        with self._hang_cond:
            return self._hang_cond.wait_for(lambda: self._hanging >= count, timeout)

    def stats(self) -> dict[str, int]:
        """Counts: ``calls`` (submit+cancel), one per fault, ``hang_delivered``, ``ok`` (no
        fault), ``fetch_calls`` and ``fetch_transient``."""
        with self._draw_lock:
            return dict(self._stats)

    # ------------------------------------------------------------------ internals
    def _pick(self) -> tuple[str | None, bool]:
        with self._draw_lock:
            self._stats["calls"] += 1
            u = self._rng.random()
            edge = 0.0
            for name in FAULTS:
                edge += getattr(self.plan, name)
                if u < edge:
                    self._stats[name] += 1
                    deliver_first = False
                    if name == "hang":
                        deliver_first = self._rng.random() < 0.5
                        if deliver_first:
                            self._stats["hang_delivered"] += 1
                    return name, deliver_first
            self._stats["ok"] += 1
            return None, False

    def _call(self, deliver: Callable[[], T]) -> T:
        fault, deliver_first = self._pick()
        if fault is None:
            return deliver()
        if fault == "crash":
            raise AdapterCrash("injected crash")
        if fault == "transient":
            raise NotDeliveredError("injected transient failure (not delivered)")
        if fault == "reject":
            raise VenueRejectedError("injected reject", venue_code="INJECTED")
        if fault == "slow":
            self._slow_timer.wait(self.plan.slow_s)
            return deliver()
        if fault == "ambiguous":
            self._deliver_and_drop(deliver)
            raise AmbiguousError("timeout after send")
        # hang
        if deliver_first:
            self._deliver_and_drop(deliver)
        self._hang()
        raise AmbiguousError(
            "injected hang: no answer" + (" after send" if deliver_first else "")
        )

    @staticmethod
    def _deliver_and_drop(deliver: Callable[[], Any]) -> None:
        """Make the inner call; its answer (or business error) is lost on the way back."""
        try:
            deliver()
        except AdapterError:
            pass

    def _hang(self) -> None:
        with self._hang_cond:
            self._hanging += 1
            self._hang_cond.notify_all()
        try:
            self._released.wait(self.plan.hang_s)
        finally:
            with self._hang_cond:
                self._hanging -= 1
                self._hang_cond.notify_all()

    def _fetch(self, call: Callable[[], T]) -> T:
        with self._draw_lock:
            self._stats["fetch_calls"] += 1
            faulted = self._fetch_rng.random() < self.plan.transient
            if faulted:
                self._stats["fetch_transient"] += 1
        if faulted:
            raise NotDeliveredError("injected transient failure (not delivered)")
        return call()

    def __repr__(self) -> str:
        return f"<FaultInjectingAdapter {self.adapter_id!r} plan={self.plan}>"
