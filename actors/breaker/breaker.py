"""Per-adapter circuit breaker: a pure, single-threaded state machine (docs/DESIGN.md, Failure handling).

Modelled on resilience4j's ``CircuitBreakerStateMachine`` with a COUNT_BASED sliding window.
The owning actor serialises every call; this module has no threads, locks or pykka. Time comes
from an injected clock (``clock.monotonic()`` seconds; ``clock.now()`` UTC for event stamps).

States (:class:`BreakerState`)::

    CLOSED ──rates ≥ threshold──▶ OPEN ──open_duration_s elapsed──▶ HALF_OPEN
       ▲                                 (lazily on try_acquire, or tick())   │
       └──────── all trials reported, rates below thresholds ◀────────────────┤
                                   OPEN ◀── trial rates ≥ threshold ──────────┘
    force_open() → FORCED_OPEN (denies until reset())
    disable()    → DISABLED    (permits everything, records nothing, until reset())
    reset()      → CLOSED with a fresh window

Configuration names map onto resilience4j ``CircuitBreakerConfig``:

=========================  ==========================================  ========
flowroute                  resilience4j                                default
=========================  ==========================================  ========
window_size                slidingWindowSize (COUNT_BASED)             20
minimum_calls              minimumNumberOfCalls                        10
failure_rate_threshold     failureRateThreshold (percent)              50.0
slow_call_rate_threshold   slowCallRateThreshold (percent)             50.0
slow_call_duration_s       slowCallDurationThreshold                   1.0 s
open_duration_s            waitDurationInOpenState                     30.0 s
half_open_permits          permittedNumberOfCallsInHalfOpenState       1
=========================  ==========================================  ========

Semantics kept from resilience4j: rates are computed only once ``min(minimum_calls,
window_size)`` calls are buffered (else -1); the breaker trips when ``failure_rate >=
failure_rate_threshold`` or ``slow_call_rate >= slow_call_rate_threshold``; a call can be both
failed and slow; half-open admits exactly ``half_open_permits`` trial calls; an ignored outcome
of a trial gives its permit back (``releasePermission``). Deliberate differences: a call is slow
when ``duration_s >= slow_call_duration_s`` (resilience4j uses ``>``); half-open decides once
*all* trials have reported (resilience4j: once ``min(minimum_calls, permits)`` have); results
carry the generation of their permit and results from an earlier generation are ignored
("results that arrive while OPEN never change state").

Events: every state change produces exactly one event: :class:`~protocols.CircuitOpened`,
:class:`~protocols.CircuitHalfOpened` or :class:`~protocols.CircuitClosed` for OPEN /
HALF_OPEN / CLOSED targets and the base :class:`~protocols.CircuitStateChanged` for
FORCED_OPEN / DISABLED targets. Events are handed out exactly once: methods that return
``list[CircuitStateChanged]`` return them directly; the one transition that can happen inside
:meth:`CircuitBreaker.try_acquire` (lazy OPEN → HALF_OPEN) is kept in an outbox that the next
:meth:`~CircuitBreaker.drain_events` (or any event-returning method) returns first.

Example::

    >>> from actors.kernel.clock import FakeClock
    >>> clock = FakeClock()
    >>> cb = CircuitBreaker("paper", BreakerConfig(window_size=2, minimum_calls=2), clock)
    >>> p1, p2 = cb.try_acquire(), cb.try_acquire()
    >>> cb.record(p1, CallOutcome.FAILURE, 0.01)
    []
    >>> [e.name for e in cb.record(p2, CallOutcome.SUCCESS, 0.01)]
    ['CircuitOpened']
    >>> cb.try_acquire()
    Denied(retry_after_s=30.0, state=<BreakerState.OPEN: 'OPEN'>)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from config import BreakerSettings
from protocols import CircuitClosed, CircuitHalfOpened, CircuitOpened, CircuitStateChanged

from ..kernel.clock import time_until

__all__ = [
    "BreakerConfig",
    "BreakerSnapshot",
    "BreakerState",
    "CallOutcome",
    "CircuitBreaker",
    "Denied",
    "BreakerPermit",
]


class BreakerState(str, Enum):
    """Breaker state (resilience4j ``CircuitBreaker.State``)."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    DISABLED = "DISABLED"


class CallOutcome(str, Enum):
    """How a permitted call ended, as the breaker counts it (docs/DESIGN.md, Failure handling).

    ``FAILURE``: venue timeout, connection error, 5xx. ``SUCCESS``: the venue answered, business
    rejects included (the venue is healthy). ``IGNORED``: our own denial or a call that was never
    made (throttled, cancelled before send): not recorded; a half-open trial permit is returned.
    """

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    IGNORED = "IGNORED"


# ---------------------------------------------------------------------------------------------
# configuration


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_float(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if (v <= low) if low_open else (v < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if v > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return v


#: the one owner of the defaults (config); BreakerConfig takes its defaults from here
_DEFAULTS = BreakerSettings()


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Breaker settings; invalid values raise ``ValueError`` naming the field. The defaults are
    ``config.BreakerSettings``'s (config owns every default: docs/DESIGN.md "House plan").

    ``window_size`` (calls, ≥ 1), ``minimum_calls`` (calls, ≥ 1; effectively capped at
    ``window_size`` as in resilience4j), ``failure_rate_threshold`` and
    ``slow_call_rate_threshold`` (percent, in (0, 100]), ``slow_call_duration_s`` (seconds, > 0),
    ``open_duration_s`` (seconds, > 0), ``half_open_permits`` (calls, ≥ 1).
    """

    window_size: int = _DEFAULTS.window_size
    minimum_calls: int = _DEFAULTS.minimum_calls
    failure_rate_threshold: float = _DEFAULTS.failure_rate_threshold
    slow_call_rate_threshold: float = _DEFAULTS.slow_call_rate_threshold
    slow_call_duration_s: float = _DEFAULTS.slow_call_duration_s
    open_duration_s: float = _DEFAULTS.open_duration_s
    half_open_permits: int = _DEFAULTS.half_open_permits

    def __post_init__(self) -> None:
        checked = {
            "window_size": _check_int("window_size", self.window_size, 1),
            "minimum_calls": _check_int("minimum_calls", self.minimum_calls, 1),
            "failure_rate_threshold": _check_float(
                "failure_rate_threshold", self.failure_rate_threshold, low=0.0, high=100.0
            ),
            "slow_call_rate_threshold": _check_float(
                "slow_call_rate_threshold", self.slow_call_rate_threshold, low=0.0, high=100.0
            ),
            "slow_call_duration_s": _check_float("slow_call_duration_s", self.slow_call_duration_s, low=0.0),
            "open_duration_s": _check_float("open_duration_s", self.open_duration_s, low=0.0),
            "half_open_permits": _check_int("half_open_permits", self.half_open_permits, 1),
        }
        for name, value in checked.items():  # normalise ints given for float fields
            object.__setattr__(self, name, value)

    @property
    def effective_minimum_calls(self) -> int:
        """``min(minimum_calls, window_size)``: calls needed before rates are computed."""
        return min(self.minimum_calls, self.window_size)

    @classmethod
    def from_settings(cls, obj: Any) -> BreakerConfig:
        """Build from any object (or mapping) exposing the field names as attributes (keys).

        Missing names keep their defaults; present values are validated (``ValueError`` names
        the field).
        """
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if isinstance(obj, Mapping):
                if f.name in obj:
                    kwargs[f.name] = obj[f.name]
            elif hasattr(obj, f.name):
                kwargs[f.name] = getattr(obj, f.name)
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# values handed out


@dataclass(frozen=True, slots=True)
class BreakerPermit:
    """Permission for one call. Hand it back to :meth:`CircuitBreaker.record` exactly once.

    ``permit_id`` is unique per breaker; ``generation`` is the breaker's generation at acquire
    time (a result is counted only if the generation has not changed since).
    """

    permit_id: int
    state_at_acquire: BreakerState
    generation: int


@dataclass(frozen=True, slots=True)
class Denied:
    """The call is not permitted (answer ``E_EXEC_CIRCUIT_OPEN`` with ``retry_after_s``).

    ``retry_after_s`` (seconds, > 0): remaining open time in OPEN; ``open_duration_s`` in
    FORCED_OPEN (a hint: it lasts until reset); ``slow_call_duration_s`` in HALF_OPEN when all
    trial permits are out.
    """

    retry_after_s: float
    state: BreakerState


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A frozen view of the breaker for health/metrics.

    Rates are percent, -1.0 when not computed (fewer than the minimum calls buffered; in
    HALF_OPEN until all trials reported). ``buffered_calls``/``failed_calls``/``slow_calls``
    describe the current window (the trial window in HALF_OPEN). ``not_permitted_calls`` and
    ``transitions`` are cumulative since construction (monotone, fit for Prometheus counters).
    ``opened_at`` is the monotonic time (s) the breaker entered OPEN/FORCED_OPEN, else None;
    ``retry_after_s`` is the remaining open time in OPEN (0.0 when due but not yet moved to
    HALF_OPEN), ``open_duration_s`` in FORCED_OPEN, else None.
    """

    adapter_id: str
    state: BreakerState
    failure_rate: float
    slow_call_rate: float
    buffered_calls: int
    failed_calls: int
    slow_calls: int
    not_permitted_calls: int
    transitions: int
    generation: int
    opened_at: float | None
    retry_after_s: float | None


_EVENT_BY_TARGET: dict[BreakerState, type[CircuitStateChanged]] = {
    BreakerState.OPEN: CircuitOpened,
    BreakerState.HALF_OPEN: CircuitHalfOpened,
    BreakerState.CLOSED: CircuitClosed,
    BreakerState.FORCED_OPEN: CircuitStateChanged,
    BreakerState.DISABLED: CircuitStateChanged,
}


class _Window:
    """Count-based ring buffer of (failed, slow) flags with running totals."""

    __slots__ = ("_calls", "failed", "slow", "minimum")

    def __init__(self, size: int, minimum: int) -> None:
        self._calls: deque[tuple[bool, bool]] = deque(maxlen=size)
        self.failed = 0
        self.slow = 0
        self.minimum = minimum

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, failed: bool, slow: bool) -> None:
        if len(self._calls) == self._calls.maxlen:
            old_failed, old_slow = self._calls[0]
            self.failed -= old_failed
            self.slow -= old_slow
        self._calls.append((failed, slow))
        self.failed += failed
        self.slow += slow

    def rates(self) -> tuple[float, float]:
        """(failure %, slow %) or (-1, -1) while fewer than ``minimum`` calls are buffered."""
        n = len(self._calls)
        if n == 0 or n < self.minimum:
            return -1.0, -1.0
        return self.failed * 100.0 / n, self.slow * 100.0 / n


class CircuitBreaker:
    """One adapter's breaker. Not thread-safe by design: the owning actor serialises calls.

    ``adapter_id`` names the adapter in events and snapshots; ``config`` is a
    :class:`BreakerConfig`; ``clock`` has ``monotonic() -> float`` (seconds) and optionally
    ``now() -> datetime`` (UTC, used for event ``ts``).
    """

    def __init__(self, adapter_id: str, config: BreakerConfig | None = None, clock: Any = None) -> None:
        if not isinstance(adapter_id, str) or not adapter_id:
            raise ValueError(f"adapter_id must be a non-empty string, got {adapter_id!r}")
        if config is None:
            config = BreakerConfig()
        if not isinstance(config, BreakerConfig):
            raise TypeError(f"config must be a BreakerConfig, got {type(config).__name__}")
        if clock is None or not callable(getattr(clock, "monotonic", None)):
            raise TypeError("clock must provide monotonic() -> float")
        self._adapter_id = adapter_id
        self._config = config
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._transitions = 0
        self._not_permitted = 0
        self._next_permit_id = 1
        self._opened_at: float | None = None
        self._window = self._closed_window()
        # half-open bookkeeping (meaningful only in HALF_OPEN)
        self._trial_ids: set[int] = set()  # trial permits handed out and not yet reported
        self._trials_issued = 0  # permits handed out this half-open period (minus released)
        self._outbox: list[CircuitStateChanged] = []

    # -- read-only properties --------------------------------------------------------------

    @property
    def adapter_id(self) -> str:
        """The adapter this breaker guards."""
        return self._adapter_id

    @property
    def config(self) -> BreakerConfig:
        """The (immutable) configuration."""
        return self._config

    @property
    def state(self) -> BreakerState:
        """Current state. OPEN stays OPEN past its duration until try_acquire()/tick() moves it."""
        return self._state

    @property
    def generation(self) -> int:
        """Increments at every state transition and at every reset()."""
        return self._generation

    # -- calls -----------------------------------------------------------------------------

    def try_acquire(self) -> BreakerPermit | Denied:
        """Ask to make one call now.

        CLOSED / DISABLED: always a :class:`BreakerPermit`. OPEN: :class:`Denied` until
        ``open_duration_s`` has elapsed, then the breaker moves to HALF_OPEN (the event goes to
        the outbox: call :meth:`drain_events`) and answers as HALF_OPEN. HALF_OPEN: a permit for
        each of the first ``half_open_permits`` asks of the period, :class:`Denied` after that.
        FORCED_OPEN: always :class:`Denied`.
        """
        now = self._clock.monotonic()
        if self._state is BreakerState.OPEN:
            assert self._opened_at is not None
            deadline = self._opened_at + self._config.open_duration_s
            if now < deadline:
                self._not_permitted += 1
                return Denied(time_until(now, deadline), BreakerState.OPEN)
            self._outbox.extend(self._transition(BreakerState.HALF_OPEN))
        state = self._state
        if state is BreakerState.HALF_OPEN:
            if self._trials_issued >= self._config.half_open_permits:
                self._not_permitted += 1
                return Denied(self._config.slow_call_duration_s, state)
            permit = self._new_permit()
            self._trials_issued += 1
            self._trial_ids.add(permit.permit_id)
            return permit
        if state is BreakerState.FORCED_OPEN:
            self._not_permitted += 1
            return Denied(self._config.open_duration_s, state)
        return self._new_permit()  # CLOSED, DISABLED

    def record(self, permit: BreakerPermit, outcome: CallOutcome, duration_s: float) -> list[CircuitStateChanged]:
        """Report how a permitted call ended; returns the transition events (outbox first).

        ``outcome``: a :class:`CallOutcome` (a plain string is refused: one typed value per
        outcome); ``duration_s``: call duration
        in seconds (finite, ≥ 0; slow when ``>= slow_call_duration_s``). Results whose
        ``permit.generation`` is not the current generation change nothing. Raises
        ``TypeError``/``ValueError`` for a non-BreakerPermit, unknown outcome or bad duration, before
        any state is touched.
        """
        if not isinstance(permit, BreakerPermit):
            raise TypeError(f"permit must be a BreakerPermit, got {type(permit).__name__}")
        if not isinstance(outcome, CallOutcome):
            raise TypeError(f"outcome must be a CallOutcome ({', '.join(o.name for o in CallOutcome)}), got {outcome!r}")
        if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not math.isfinite(duration_s):
            raise ValueError(f"duration_s must be a finite number of seconds, got {duration_s!r}")
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")

        events = self._take_outbox()
        if permit.generation != self._generation:
            return events  # late result from an earlier generation (e.g. arrived while OPEN)
        state = self._state
        if state is BreakerState.CLOSED:
            if outcome is not CallOutcome.IGNORED:
                window = self._window
                window.add(outcome is CallOutcome.FAILURE, duration_s >= self._config.slow_call_duration_s)
                if window.failed or window.slow:  # none failed or slow: both rates 0 (or not yet computed),
                    events.extend(self._maybe_trip())  # below either threshold (each > 0): no trip to check
        elif state is BreakerState.HALF_OPEN:
            if permit.permit_id not in self._trial_ids:
                return events  # not an outstanding trial (duplicate report)
            self._trial_ids.discard(permit.permit_id)
            if outcome is CallOutcome.IGNORED:
                self._trials_issued -= 1  # resilience4j releasePermission(): the trial is handed out again
                return events
            self._window.add(outcome is CallOutcome.FAILURE, duration_s >= self._config.slow_call_duration_s)
            if len(self._window) >= self._config.half_open_permits:
                fr, sr = self._window.rates()
                if self._over(fr, sr):
                    events.extend(self._transition(BreakerState.OPEN, fr, sr))
                else:
                    events.extend(self._transition(BreakerState.CLOSED, fr, sr))
        # DISABLED records nothing; OPEN/FORCED_OPEN never hand out permits of their generation
        return events

    def tick(self) -> list[CircuitStateChanged]:
        """Timer hook: move OPEN → HALF_OPEN if ``open_duration_s`` has elapsed. Safe to call any time."""
        events = self._take_outbox()
        if self._state is BreakerState.OPEN:
            assert self._opened_at is not None
            if self._clock.monotonic() >= self._opened_at + self._config.open_duration_s:
                events.extend(self._transition(BreakerState.HALF_OPEN))
        return events

    def drain_events(self) -> list[CircuitStateChanged]:
        """Return and clear transition events produced inside :meth:`try_acquire`."""
        return self._take_outbox()

    # -- operator controls -----------------------------------------------------------------

    def force_open(self) -> list[CircuitStateChanged]:
        """→ FORCED_OPEN (denies every call until :meth:`reset`). No-op (no event) if already there."""
        events = self._take_outbox()
        if self._state is not BreakerState.FORCED_OPEN:
            events.extend(self._transition(BreakerState.FORCED_OPEN))
        return events

    def disable(self) -> list[CircuitStateChanged]:
        """→ DISABLED (permits every call, records nothing, until :meth:`reset`). No-op if already there."""
        events = self._take_outbox()
        if self._state is not BreakerState.DISABLED:
            events.extend(self._transition(BreakerState.DISABLED))
        return events

    def reset(self) -> list[CircuitStateChanged]:
        """→ CLOSED with a fresh window (resilience4j ``reset()``); in-flight results are then ignored.

        From CLOSED this clears the window and bumps the generation without an event (no state change).
        """
        events = self._take_outbox()
        if self._state is BreakerState.CLOSED:
            self._generation += 1
            self._window = self._closed_window()
        else:
            events.extend(self._transition(BreakerState.CLOSED))
        return events

    # -- observation -----------------------------------------------------------------------

    def snapshot(self) -> BreakerSnapshot:
        """A frozen view of the current state and counters (see :class:`BreakerSnapshot`)."""
        if self._state is BreakerState.HALF_OPEN and len(self._window) < self._config.half_open_permits:
            fr, sr = -1.0, -1.0
        else:
            fr, sr = self._window.rates()
        retry_after: float | None = None
        if self._state is BreakerState.OPEN:
            assert self._opened_at is not None
            retry_after = time_until(self._clock.monotonic(), self._opened_at + self._config.open_duration_s)
        elif self._state is BreakerState.FORCED_OPEN:
            retry_after = self._config.open_duration_s
        return BreakerSnapshot(
            adapter_id=self._adapter_id,
            state=self._state,
            failure_rate=fr,
            slow_call_rate=sr,
            buffered_calls=len(self._window),
            failed_calls=self._window.failed,
            slow_calls=self._window.slow,
            not_permitted_calls=self._not_permitted,
            transitions=self._transitions,
            generation=self._generation,
            opened_at=self._opened_at,
            retry_after_s=retry_after,
        )

    def __repr__(self) -> str:
        return f"CircuitBreaker({self._adapter_id!r}, state={self._state.value}, generation={self._generation})"

    # -- internals -------------------------------------------------------------------------

    def _closed_window(self) -> _Window:
        return _Window(self._config.window_size, self._config.effective_minimum_calls)

    def _new_permit(self) -> BreakerPermit:
        permit = BreakerPermit(self._next_permit_id, self._state, self._generation)
        self._next_permit_id += 1
        return permit

    def _take_outbox(self) -> list[CircuitStateChanged]:
        events, self._outbox = self._outbox, []
        return events

    def _over(self, failure_rate: float, slow_rate: float) -> bool:
        return (failure_rate >= 0 and failure_rate >= self._config.failure_rate_threshold) or (
            slow_rate >= 0 and slow_rate >= self._config.slow_call_rate_threshold
        )

    def _maybe_trip(self) -> list[CircuitStateChanged]:
        fr, sr = self._window.rates()
        if self._over(fr, sr):
            return self._transition(BreakerState.OPEN, fr, sr)
        return []

    def _now_utc(self) -> datetime:
        now = getattr(self._clock, "now", None)
        return now() if callable(now) else datetime.now(UTC)

    def _transition(self, target: BreakerState, failure_rate: float = -1.0, slow_rate: float = -1.0) -> list[CircuitStateChanged]:
        source = self._state
        self._state = target
        self._generation += 1
        self._transitions += 1
        self._trial_ids.clear()
        self._trials_issued = 0
        if target in (BreakerState.OPEN, BreakerState.FORCED_OPEN):
            self._opened_at = self._clock.monotonic()
            # OPEN keeps the window that tripped it (visible in snapshot()); FORCED_OPEN starts empty
            if target is BreakerState.FORCED_OPEN:
                self._window = self._closed_window()
        else:
            self._opened_at = None
            if target is BreakerState.HALF_OPEN:
                hp = self._config.half_open_permits
                self._window = _Window(hp, hp)
            else:  # CLOSED, DISABLED: fresh window
                self._window = self._closed_window()
        event_cls = _EVENT_BY_TARGET[target]
        return [
            event_cls(
                ts=self._now_utc(),
                adapter_id=self._adapter_id,
                from_state=source.value,
                to_state=target.value,
                failure_rate=failure_rate,
                slow_call_rate=slow_rate,
            )
        ]
