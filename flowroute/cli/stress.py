"""``flowroute stress``: many concurrent senders with duplicates, conflicting duplicates, bad
input, live-mode intents, cancels and injected venue faults against one runtime; checks the
invariants (``stress_invariants.py``) and reports throughput and latency."""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from loguru import logger
from rich.console import Console
from rich.table import Table

from flowroute import CircuitStateChanged, ExecutionContext, OrderIntent, Quote, default_registry, utc_now
from protocols.venues import FAULTS, FaultPlan

from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    FUTURE_TIMEOUT_S,
    SYMBOL,
    CliError,
    announce,
    configure_logging,
    latency_summary,
    latency_text,
    load_cli_settings,
    log_level_for,
    make_console,
    prepare_state,
    print_json,
    start_runtime,
    wait_until,
)
from .stress_invariants import STRESS_ACCOUNT, check_soak, check_stress


@dataclass
class StressConfig:
    """Parameters of a stress run (see :func:`run_stress`)."""

    senders: int
    orders: int
    faults: str | None
    seed: int
    state_dir: Path | None
    profile: str
    fresh: bool = False
    as_json: bool = False
    #: at most this many unanswered operations per sender (0: open loop, no bound)
    window: int = 8
    #: mix thresholds (cumulative probabilities per operation)
    p_dup: float = 0.05
    p_conflict: float = 0.02
    p_invalid: float = 0.02
    p_live: float = 0.01
    p_cancel: float = 0.05
    #: budget of the stress account in quote currency (None: unlimited); checked, not binding, by default
    budget: Decimal | None = Decimal("10000000")
    #: several processes (``--processes``, stress_fleet.py): the shared PostgreSQL journal, this
    #: process's prefix of client order ids, the share of operations that send one of
    #: ``shared_ids`` fleet-wide intents (the same id and intent from every process), and the
    #: shared throttle ``(max_calls, window_s)`` (None: the profile's)
    journal_url: str | None = None
    id_prefix: str = ""
    p_shared: float = 0.0
    shared_ids: int = 0
    rate: tuple[int, float] | None = None
    #: PostgreSQL: the lease of this process's orders (journal.lease_s; None: the profile's), and a
    #: file whose appearance says a peer was SIGKILLed (``--kill-one``): wait for its orders' takeover
    lease_s: float | None = None
    await_takeover: Path | None = None
    #: soak mode: each operation is checked as it completes and then dropped (the harness's memory
    #: stays bounded, so the process RSS shows the runtime's); see :class:`SoakChecks`
    soak: bool = False
    #: sample the process RSS every this many completed operations (0: only at start and end)
    rss_every: int = 0


class Answered:
    """A completed operation's outcome, kept for the final checks in place of its future.

    The part of the ``concurrent.futures.Future`` API the harness and its checks use (``done``,
    ``result``, ``exception``, ``cancelled``, ``add_done_callback``), answering as the future did,
    without what a future carries to be waited on: its condition (a lock, a waiters deque, five
    bound methods), callback list and dicts, about a dozen objects per operation that the
    garbage collector walks on every young and middle collection while the run keeps 20,000
    operations (docs/DESIGN.md "The garbage collector").
    """

    __slots__ = ("_exception", "_result")

    def __init__(self, future: Future) -> None:
        """``future``: done and not cancelled (:meth:`of` checks)."""
        self._exception = future.exception()
        self._result = future.result() if self._exception is None else None

    @classmethod
    def of(cls, future: Future | Answered) -> Future | Answered:
        """``future``'s outcome when it is done (not cancelled), else ``future`` itself."""
        if isinstance(future, Answered) or not future.done() or future.cancelled():
            return future
        return cls(future)

    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return False

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._exception

    def result(self, timeout: float | None = None) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        fn(self)


class LastQuote:
    """The last synthetic quote a run's senders fed the runtime (one instance shared by them; None
    before the first): the touch a LIMIT of the mix is priced behind, as a trader prices off the
    market data it has seen. Asking the paper venue instead (``touch``) took the venue's lock for
    every LIMIT, a lock the venue worker holds through each durable book commit, so senders
    queued behind the book's writes: harness work on the measured path, not the runtime's.
    Assigning the attribute is atomic; a sender may read the quote fed just before another's."""

    __slots__ = ("quote",)

    def __init__(self, quote: Quote | None = None) -> None:
        self.quote = quote


@dataclass
class Op:
    """One stress operation: ``kind`` in new/dup/conflict/invalid/live/cancel; ``future`` its
    answer (an :class:`Answered` once the sender saw it done); ``original`` the op a duplicate
    repeats; ``intent`` what was submitted."""

    kind: str
    client_order_id: str
    future: Future | Answered
    intent: Any = None
    original: Op | None = None


class StressSender:
    """One sender thread: ``count`` operations with a seeded mix (see :func:`run_stress`).

    Randomness comes only from ``random.Random(f"{seed}:{index}")``; the interleaving of
    threads (and so the runtime's order of arrival) is of course not deterministic.
    """

    def __init__(self, rt: Any, index: int, count: int, cfg: StressConfig, on_done: Callable[[Future], None],
                 market: LastQuote | None = None) -> None:
        self.rt, self.index, self.count, self.cfg = rt, index, count, cfg
        #: the last quote the run's senders fed (shared by them; see :class:`LastQuote`)
        self.market = LastQuote() if market is None else market
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.on_done = on_done
        self.ops: list[Op] = []
        #: soak mode: the checks of this sender's completed operations (the operations are dropped)
        self.checks: SoakChecks | None = SoakChecks(random.Random(f"{cfg.seed}:{index}:latency")) if cfg.soak else None
        self._originals: list[Op] | deque[Op] = deque(maxlen=_SOAK_ORIGINALS) if cfg.soak else []
        self._limits: list[Op] = []
        self._n = 0
        self._outstanding: deque[Op] = deque()
        self._contexts: dict[str, Any] = {}
        self.quote_every = max(25, 1000 // max(1, cfg.senders))
        self.error: BaseException | None = None
        #: the CPU seconds this sender's thread used (set when :meth:`run` returns)
        self.cpu_s = 0.0
        #: set on Ctrl-C: the sender stops before its next operation
        self.stop = threading.Event()

    def _id(self) -> str:
        self._n += 1
        return f"{self.cfg.id_prefix}s{self.index:02d}-{self._n:06d}"

    def _shared_intent(self) -> Any:
        """One of the fleet's shared intents: the same id and intent whichever process sends it."""
        k = self.rng.randrange(self.cfg.shared_ids)
        return OrderIntent(client_order_id=f"x-{self.cfg.seed}-{k:05d}", symbol=SYMBOL, side="BUY", order_type="MARKET",
                           quantity=Decimal("0.001"))

    def _ctx(self, mode: str = "paper") -> Any:
        """This sender's context for ``mode``: built once (a frozen value, so one instance serves every
        operation; a new one per operation cost a validation each)."""
        ctx = self._contexts.get(mode)
        if ctx is None:
            ctx = self._contexts[mode] = ExecutionContext(mode=mode, account_id=STRESS_ACCOUNT, strategy_id=f"sender{self.index}",
                                                          session_id="stress")
        return ctx

    def _quote(self) -> None:
        """Feed one synthetic BTC/USDT quote around 39433 (±5.00, from this sender's rng)."""
        bid = Decimal("39433.00") + Decimal(self.rng.randint(-500, 500)) * Decimal("0.01")
        quote = synthetic_quote(bid)
        self.rt.on_market(quote)
        self.market.quote = quote

    def _new_intent(self) -> Any:
        rng = self.rng
        side = "BUY" if rng.random() < 0.5 else "SELL"
        qty = Decimal(rng.choice(("0.001", "0.002", "0.005")))
        if rng.random() < 0.6:
            return OrderIntent(client_order_id=self._id(), symbol=SYMBOL, side=side, order_type="MARKET", quantity=qty)
        touch = self.market.quote
        ticks = Decimal(rng.randint(1, 200)) * Decimal("0.01")
        if touch is None:
            price = Decimal("39433.00") - ticks if side == "BUY" else Decimal("39433.01") + ticks
        else:
            price = touch.bid - ticks if side == "BUY" else touch.ask + ticks
        return OrderIntent(client_order_id=self._id(), symbol=SYMBOL, side=side, order_type="LIMIT", quantity=qty,
                           limit_price=price)

    def _submit(self, kind: str, intent: Any, ctx: Any, original: Op | None = None) -> Op:
        coid = intent["client_order_id"] if isinstance(intent, dict) else intent.client_order_id
        future = self.rt.submit(intent, ctx)
        return self._track(Op(kind, coid, future, intent, original))

    def _track(self, op: Op) -> Op:
        op.future.add_done_callback(self.on_done)
        if self.checks is None:
            self.ops.append(op)
        self._outstanding.append(op)
        return op

    def _retire(self, op: Op) -> None:
        """An operation leaves the window. Soak mode: check it, then forget it; otherwise keep its
        outcome (:class:`Answered`) for the final checks instead of its future."""
        if self.checks is not None:
            self.checks.check(op)
        else:
            op.future = Answered.of(op.future)

    def drain(self) -> None:
        """Soak mode: wait for (bounded) and check every operation still outstanding."""
        while self._outstanding:
            op = self._outstanding.popleft()
            try:
                op.future.result(timeout=FUTURE_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the outcome is the invariants' business, not the sender's
                pass
            self._retire(op)

    def _respect_window(self) -> None:
        """Block until fewer than ``cfg.window`` of this sender's operations are unanswered
        (each wait bounded by ``FUTURE_TIMEOUT_S``; an unanswered one is left to the invariants)."""
        window = self.cfg.window
        if window <= 0:
            return
        outstanding = self._outstanding
        while outstanding and outstanding[0].future.done():
            self._retire(outstanding.popleft())
        while len(outstanding) >= window:
            try:
                outstanding[0].future.result(timeout=FUTURE_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the outcome is the invariants' business, not the sender's
                pass
            self._retire(outstanding.popleft())
            while outstanding and outstanding[0].future.done():
                self._retire(outstanding.popleft())

    def run(self) -> None:
        """Send every operation (thread body); a crash is kept in ``self.error``; the thread's CPU
        (user + system, ``time.thread_time``) in ``self.cpu_s``."""
        start = time.thread_time()
        try:
            self._run()
            if self.checks is not None:
                self.drain()
        except BaseException as exc:  # noqa: BLE001 - reported as a failed invariant, never silently lost
            self.error = exc
            logger.opt(exception=exc).error("stress sender {} crashed", self.index)
        finally:
            self.cpu_s = time.thread_time() - start

    def _run(self) -> None:
        cfg, rng = self.cfg, self.rng
        c_dup = cfg.p_dup
        c_conflict = c_dup + cfg.p_conflict
        c_invalid = c_conflict + cfg.p_invalid
        c_live = c_invalid + cfg.p_live
        c_cancel = c_live + cfg.p_cancel
        for k in range(self.count):
            if self.stop.is_set():
                return
            self._respect_window()
            if k and k % self.quote_every == 0:
                self._quote()
            if cfg.p_shared and rng.random() < cfg.p_shared:
                self._submit("shared", self._shared_intent(), self._ctx())
                continue
            u = rng.random()
            if u < c_dup and self._originals:
                orig = rng.choice(self._originals)
                self._submit("dup", orig.intent, self._ctx(), orig)
            elif u < c_conflict and self._originals:
                orig = rng.choice(self._originals)
                changed = orig.intent.model_copy(update={"quantity": orig.intent.quantity + Decimal("0.001")})
                self._submit("conflict", changed, self._ctx(), orig)
            elif c_conflict <= u < c_invalid:
                base = {"client_order_id": self._id(), "symbol": SYMBOL, "side": "BUY"}
                if rng.random() < 0.5:
                    bad = {**base, "order_type": "MARKET", "quantity": "-0.001"}
                else:
                    bad = {**base, "order_type": "LIMIT", "quantity": "0.001"}
                self._submit("invalid", bad, self._ctx())
            elif c_invalid <= u < c_live:
                self._submit("live", self._new_intent(), self._ctx("live"))
            elif (c_live <= u < c_cancel or (self.checks is not None and len(self._limits) > _SOAK_RESTING)) \
                    and (target := self._cancelable()) is not None:
                # (soak: a sender keeps at most _SOAK_RESTING orders resting; beyond, it cancels the oldest)
                self._limits.remove(target)
                future = self.rt.cancel(target.client_order_id, STRESS_ACCOUNT)
                self._track(Op("cancel", target.client_order_id, future, None, target))
            else:
                op = self._submit("new", self._new_intent(), self._ctx())
                self._originals.append(op)
                if op.intent.order_type.value == "LIMIT":
                    self._limits.append(op)

    def _cancelable(self) -> Op | None:
        """The oldest of this sender's LIMIT orders that is resting, or None.

        Like a trader, the sender only cancels what it knows is working: it waits (at most
        ``FUTURE_TIMEOUT_S``) for the report of its oldest unanswered LIMIT; LIMITs that turn
        out not to rest are dropped from the candidates: by their report (rejected, denied,
        filled on arrival) or by the venue's state of the order now (filled since by the quotes,
        :meth:`_rests_at_venue`). Judged by the report alone, nine cancels in ten of a
        16-sender run went to orders the quotes had filled (answered "order is FILLED"), not
        the mix's ~5% cancels of resting orders.
        """
        while self._limits:
            op = self._limits[0]
            try:
                report = op.future.result(timeout=FUTURE_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - still unanswered or failed: no cancel now
                return None  # still unanswered: no cancel now (the wait is the invariants' business)
            if report.status.is_open and self._rests_at_venue(op.client_order_id):
                return op
            self._limits.pop(0)
        return None

    def _rests_at_venue(self, client_order_id: str) -> bool:
        """Whether the paper venue still holds the order working (``fetch_order``, on the venue
        itself rather than a fault-injecting wrapper, so that asking never injects a fault).
        A venue that cannot say is taken to hold it: the cancel then finds out."""
        venue = self.rt.venue("paper")
        try:
            state = getattr(venue, "inner", venue).fetch_order(client_order_id)
        except Exception:  # noqa: BLE001 - the venue could not answer: let the cancel decide
            return True
        return state is not None and state.status.is_open


#: soak mode: duplicates repeat one of the sender's last this many orders
_SOAK_ORIGINALS = 256
#: soak mode: a sender keeps at most this many LIMIT orders resting (it cancels the oldest beyond)
_SOAK_RESTING = 32
#: soak mode: latencies kept for the percentiles (a seeded reservoir sample per sender)
_SOAK_LATENCIES = 20_000


class SoakChecks:
    """The per-operation stress checks, applied as each operation completes (soak mode), so the
    harness keeps counters instead of every operation: the same rules as :func:`check_stress`
    (one final report, duplicates replayed or refused, bad input rejected), denial reasons by
    code, and latencies as a reservoir sample of ``_SOAK_LATENCIES`` per sender."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.kinds: Counter[str] = Counter()
        self.resolved = self.unresolved = self.bad_type = 0
        self.dups_checked = self.conflicts_checked = self.inputs_checked = 0
        self.bad: list[str] = []
        self.bad_count = 0
        self.denied: Counter[str] = Counter()
        self.budget_denied = 0
        self.latencies: list[int] = []
        self.latency_seen = 0

    def check(self, op: Op) -> None:
        """Check one operation (its future done or given up on)."""
        from flowroute import ExecutionReport

        self.kinds[op.kind] += 1
        future = op.future
        if not future.done() or future.exception() is not None:
            self.unresolved += 1
            return
        report = future.result()
        if not isinstance(report, ExecutionReport):
            self.bad_type += 1
            return
        self.resolved += 1
        error = report.error
        code = None if error is None else error.code.value
        if op.kind != "cancel" and report.status.value == "DENIED":
            self.denied[code or "no error code"] += 1
            if error is not None and code == "E_EXEC_RISK_DENIED" and error.message.startswith("budget"):
                self.budget_denied += 1
        if op.kind in ("dup", "conflict"):
            orig = op.original.future.result() if op.original is not None and op.original.future.done() else None
            if orig is None or orig.status.value != "DENIED":  # a released claim makes any answer legitimate
                if op.kind == "dup":
                    self.dups_checked += 1
                    if not (report.replay or code == "E_EXEC_DUPLICATE_IN_FLIGHT"):
                        self._bad(f"dup {op.client_order_id}: {report.status.value} {code} replay={report.replay}")
                else:
                    self.conflicts_checked += 1
                    if code != "E_EXEC_IDEMPOTENCY_CONFLICT":
                        self._bad(f"conflict {op.client_order_id}: {report.status.value} {code}")
        want = {"invalid": "E_EXEC_VALIDATION", "live": "E_EXEC_POLICY_BLOCKED"}.get(op.kind)
        if want is not None:
            self.inputs_checked += 1
            if code != want:
                self._bad(f"{op.kind} {op.client_order_id}: {code}")
        if op.kind != "cancel" and not report.replay and report.status.value != "DENIED" and report.latency_us:
            self.latency_seen += 1
            if len(self.latencies) < _SOAK_LATENCIES:
                self.latencies.append(report.latency_us)
            else:
                j = self.rng.randrange(self.latency_seen)
                if j < _SOAK_LATENCIES:
                    self.latencies[j] = report.latency_us

    def _bad(self, what: str) -> None:
        self.bad_count += 1
        if len(self.bad) < 5:
            self.bad.append(what)


def rss_bytes() -> int:
    """This process's resident set size in bytes (``/proc/self/statm``; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def thread_cpu_s() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) each live thread of this process has used, by native thread id:
    ``{tid: (thread name, seconds)}``; names are ``threading``'s (the runtime's threads are named
    after their actor or dispatcher, e.g. ``dispatcher-rt1-ledger``), ``?`` for a thread Python
    did not start. Read from ``/proc/self/task/<tid>/stat`` (utime + stime, clock ticks: 10 ms at
    the usual 100 Hz); ``{}`` where there is no such file (not Linux)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    try:
        tids = os.listdir("/proc/self/task")
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return {}
    out: dict[int, tuple[str, float]] = {}
    for entry in tids:
        try:
            with open(f"/proc/self/task/{entry}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()  # after the name, which may hold spaces
            tid = int(entry)
            out[tid] = (names.get(tid, "?"), (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return out


def cpu_by_thread(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                  senders_cpu_s: float, ops: int) -> dict[str, float]:
    """CPU µs per operation by thread between two :func:`thread_cpu_s` samples, the largest first:
    threads of the same name together (a restarted actor's old and new thread), the senders as one
    ``stress-senders`` (each measured by its own thread, ``senders_cpu_s`` in all), and threads
    under 1 µs per operation as ``other``. What it does not hold: threads that ended inside the
    window other than the senders (a crashed adapter's), which the process total
    (``cpu_us_per_op``) counts."""
    if ops <= 0:
        return {}
    by_name: dict[str, float] = {"stress-senders": senders_cpu_s}
    for tid, (name, cpu) in after.items():
        if name.startswith("stress-sender"):
            continue
        was = before.get(tid)
        by_name[name] = by_name.get(name, 0.0) + max(0.0, cpu - (was[1] if was is not None and was[0] == name else 0.0))
    out: dict[str, float] = {}
    other = 0.0
    for name, cpu in sorted(by_name.items(), key=lambda kv: -kv[1]):
        us = cpu / ops * 1e6
        if us >= 1.0:
            out[name] = round(us, 1)
        else:
            other += us
    if other > 0:
        out["other"] = round(other, 1)
    return out


def rss_report(samples: list[tuple[int, float, int]]) -> dict[str, Any]:
    """The RSS curve of a run: ``samples`` as ``[operations done, seconds, RSS MiB]`` and the growth
    over each half of the operations (MiB, from the samples nearest 0, half and all of them), the
    second half's growth as a percentage of the RSS at half time and of the first half's growth."""
    if not samples:
        return {"samples": []}
    total = samples[-1][0]
    def at(n: int) -> int:
        return min(samples, key=lambda s: abs(s[0] - n))[2]
    start, mid, end = at(0), at(total // 2), at(total)
    first, second = mid - start, end - mid
    mib = 1024 * 1024
    return {
        "samples": [[n, round(t, 1), round(r / mib, 1)] for n, t, r in samples],
        "start_mib": round(start / mib, 1), "mid_mib": round(mid / mib, 1), "end_mib": round(end / mib, 1),
        "first_half_growth_mib": round(first / mib, 1), "second_half_growth_mib": round(second / mib, 1),
        "second_half_growth_pct_of_mid_rss": round(100 * second / mid, 2) if mid else None,
        "second_half_growth_pct_of_first_half_growth": round(100 * second / first, 1) if first > 0 else None,
    }


def shared_book(rt: Any) -> bool:
    """Whether the runtime's paper venue trades a book shared with other processes (README "Scale-out")."""
    venue = rt.venue("paper")
    return bool(getattr(getattr(venue, "inner", venue), "shared", False))


def close_resting_orders(rt: Any, timeout_s: float = 30.0) -> int:
    """Cancel this process's working orders and wait for the answers (bounded): on a shared book,
    another process's market data could otherwise fill them after this process checked its books.
    Returns how many were canceled."""
    working = rt.orders(("ACCEPTED", "PARTIALLY_FILLED"))
    futures = [rt.cancel(r.client_order_id, r.account_id) for r in working]
    deadline = time.monotonic() + timeout_s
    for f in futures:
        try:
            f.result(timeout=max(0.01, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - the outcome is the invariants' business
            pass
    return len(futures)


def await_takeover(rt: Any, killed: Path, timeout_s: float = 60.0) -> bool:
    """``--kill-one``: wait (bounded) until ``killed`` exists (the parent SIGKILLed a peer and wrote
    its owner id there) and that owner is gone from the shared journal (a survivor, maybe this one,
    took its orders over when its lease expired)."""
    deadline = time.monotonic() + timeout_s
    if not wait_until(lambda: killed.exists() and killed.stat().st_size > 0, timeout_s, 0.05):
        return False
    owner = killed.read_text().strip()
    if owner == "-":  # it died before it registered: nothing to take over
        return True
    import psycopg

    def taken_over() -> bool:
        with psycopg.connect(rt.pg.url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM flowroute.owners WHERE owner_id = %s", (owner,)).fetchone()
            return row is not None and row[0] == 0

    return wait_until(taken_over, max(0.1, deadline - time.monotonic()), 0.1)


def synthetic_quote(bid: Decimal) -> Any:
    """A BTC/USDT quote at ``bid`` / ``bid + 0.01``, 50 BTC each side, stamped now (UTC)."""
    return Quote(ts=utc_now(), symbol=SYMBOL, bid=bid, bid_size=Decimal(50), ask=bid + Decimal("0.01"),
                 ask_size=Decimal(50))


#: Why an order of the stress mix can be DENIED, per error code (README, "Errors").
DENIAL_WHY: dict[str, str] = {
    "E_EXEC_CIRCUIT_OPEN": "the venue's circuit breaker was open ({transitions} breaker transition(s); "
                           "injected crashes, hangs and timeouts count as venue failures)",
    "E_EXEC_THROTTLED": "the venue's throttle had no token within the wait",
    "E_EXEC_RISK_DENIED": "a risk rule (budget, size or exposure limit) refused the order",
    "E_EXEC_VALIDATION": "invalid intents (the mix sends them on purpose)",
    "E_EXEC_POLICY_BLOCKED": "live-mode intents, blocked by the routing policy (sent on purpose)",
    "E_EXEC_IDEMPOTENCY_CONFLICT": "conflicting duplicates of an earlier id (sent on purpose)",
    "E_EXEC_DUPLICATE_IN_FLIGHT": "duplicates of an id still in flight (sent on purpose)",
    "E_EXEC_ADAPTER_CRASHED": "the venue adapter crashed with the order in hand ({crashes} injected crash(es))",
    "E_EXEC_NO_ADAPTER": "no adapter for the route",
}
#: Codes the mix provokes on purpose (bad input, blocked modes, duplicates).
ON_PURPOSE = frozenset({"E_EXEC_VALIDATION", "E_EXEC_POLICY_BLOCKED", "E_EXEC_IDEMPOTENCY_CONFLICT",
                        "E_EXEC_DUPLICATE_IN_FLIGHT"})


def denial_reasons(ops: list[Op], *, breaker_transitions: int, fault_stats: dict | None,
                   counts: Counter[str] | None = None) -> dict[str, Any]:
    """Why orders were DENIED: ``{"total", "unexpected", "reasons": [{"code", "count", "why"}]}``,
    most frequent code first; ``unexpected`` leaves out the codes the mix provokes on purpose.
    ``counts``: denials per code counted already (soak mode) instead of ``ops``."""
    if counts is not None:
        ops = []
    counts = Counter() if counts is None else counts
    for op in ops:
        if op.kind == "cancel" or not op.future.done() or op.future.exception() is not None:
            continue
        report = op.future.result()
        if report.status.value == "DENIED":
            counts[report.error.code.value if report.error is not None else "no error code"] += 1
    crashes = (fault_stats or {}).get("crash", 0)
    reasons = [{"code": code, "count": n,
                "why": DENIAL_WHY.get(code, "see the error code table in the README").format(
                    transitions=breaker_transitions, crashes=crashes)}
               for code, n in counts.most_common()]
    return {"total": sum(counts.values()),
            "unexpected": sum(n for code, n in counts.items() if code not in ON_PURPOSE),
            "reasons": reasons}


def run_stress(cfg: StressConfig, console: Console, log_level: str | None) -> tuple[dict, bool]:
    """Drive a runtime (profile ``cfg.profile``) from ``cfg.senders`` threads; return
    ``(summary, all_invariants_ok)``.

    Mix per operation (each sender's own seeded rng): ~5% exact duplicates of an earlier order
    of the same sender, ~2% conflicting duplicates (same id, quantity + 0.001), ~2% invalid
    dict intents (negative quantity / LIMIT without price), ~1% live-mode intents, ~5% cancels
    of the sender's resting LIMIT orders, the rest new paper orders (60% MARKET, 40% LIMIT
    1–200 ticks behind the touch; 0.001/0.002/0.005 BTC). One synthetic quote is fed before the
    senders start and each sender feeds another every ``max(25, 1000 // senders)`` operations.
    Each sender keeps at most ``cfg.window`` operations unanswered (closed loop, like a real
    order sender; ``0`` = open loop: fire everything and collect at the end).

    Invariants: every_intent_one_final_report, no_duplicate_venue_submission,
    duplicates_replayed_or_conflict (a duplicate of an order that was DENIED before any venue
    call is exempt: its claim was released, so the id is free again), invalid_rejected,
    positions_equal_fills; with faults also all_unknown_resolved, adapters_healthy_at_end and,
    when crash or hang rates are > 0, restarts_happened.
    """
    if cfg.senders < 1 or cfg.orders < 1:
        raise CliError("--senders and --orders must be >= 1")
    plan = None
    if cfg.faults:
        try:
            plan = FaultPlan.parse(cfg.faults, seed=cfg.seed)
        except ValueError as exc:
            raise CliError(f"--faults: {exc}") from exc
    overrides: dict[str, Any] = {"risk": {"budgets": {STRESS_ACCOUNT: str(cfg.budget)}}} if cfg.budget is not None else {}
    if cfg.journal_url:
        overrides["journal"] = {"url": cfg.journal_url}
        if cfg.lease_s is not None:
            overrides["journal"]["lease_s"] = cfg.lease_s
    if cfg.rate is not None:
        overrides["throttle"] = {"max_calls": cfg.rate[0], "window_s": cfg.rate[1]}
    settings = load_cli_settings(cfg.profile, cfg.state_dir, **overrides)
    configure_logging(log_level_for(log_level, cfg.as_json, settings))
    removed = prepare_state(Path(settings.state_dir), cfg.fresh)
    rt = start_runtime(settings, registry=default_registry(faults=plan), seed=cfg.seed)
    announce("stress", rt, settings, cfg.profile)
    transitions: list[str] = []
    sub = rt.subscribe(lambda e: transitions.append(f"{e.from_state}->{e.to_state}"), CircuitStateChanged)
    sent_at: list[float] = []  # venue hand-over times (OrderSubmitted.ts, epoch s): the fleet's rate check
    from flowroute import OrderSubmitted

    sent_sub = rt.subscribe(lambda e: sent_at.append(e.ts.timestamp()), OrderSubmitted) if cfg.journal_url else None
    done_lock = threading.Lock()
    done = [0]

    def on_done(_: Future) -> None:
        with done_lock:
            done[0] += 1

    interrupted = False
    try:
        market = LastQuote(synthetic_quote(Decimal("39433.00")))
        rt.on_market(market.quote)
        per = [cfg.orders // cfg.senders + (1 if i < cfg.orders % cfg.senders else 0) for i in range(cfg.senders)]
        senders = [StressSender(rt, i, n, cfg, on_done, market) for i, n in enumerate(per)]
        threads = [threading.Thread(target=s.run, name=f"stress-sender-{s.index}", daemon=True) for s in senders]
        budget_s = 120.0 + cfg.orders / 200.0
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]stress"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=make_console(stderr=True), disable=cfg.as_json, transient=False)
        threads0 = thread_cpu_s()
        t0, cpu0 = time.perf_counter(), time.process_time()
        rss_samples: list[tuple[int, float, int]] = [(0, 0.0, rss_bytes())]
        next_rss = cfg.rss_every or None
        with progress:
            task = progress.add_task("reports", total=cfg.orders)
            for th in threads:
                th.start()
            deadline = time.monotonic() + budget_s
            try:
                while time.monotonic() < deadline:
                    with done_lock:
                        n = done[0]
                    progress.update(task, completed=n)
                    if next_rss is not None and n >= next_rss:
                        rss_samples.append((n, time.perf_counter() - t0, rss_bytes()))
                        next_rss = (n // cfg.rss_every + 1) * cfg.rss_every
                    if n >= cfg.orders and not any(th.is_alive() for th in threads):
                        break
                    if not any(th.is_alive() for th in threads) and n >= sum(len(s.ops) for s in senders):
                        break
                    time.sleep(0.05)
            except KeyboardInterrupt:  # Ctrl-C: stop sending, collect what was sent, summarise it
                interrupted = True
                for sender in senders:
                    sender.stop.set()
                deadline = time.monotonic() + 2 * FUTURE_TIMEOUT_S
            for th in threads:
                th.join(timeout=max(0.1, deadline - time.monotonic()))
            ops = [op for s in senders for op in s.ops]
            for op in ops:
                try:
                    op.future.result(timeout=max(0.01, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - the outcome is the invariants' business
                    pass
            checks = [s.checks for s in senders if s.checks is not None]
            with done_lock:
                n = done[0]
            progress.update(task, completed=sum(1 for op in ops if op.future.done()) if not cfg.soak else n)
        elapsed, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        threads1 = thread_cpu_s()
        rss_samples.append((n if cfg.soak else len(ops), elapsed, rss_bytes()))
        if cfg.soak:
            sent = sum(sum(c.kinds.values()) for c in checks)
            resolved_in_time = not any(th.is_alive() for th in threads) and all(c.unresolved == 0 for c in checks) \
                and (interrupted or sent == cfg.orders)
        else:
            sent = len(ops)
            resolved_in_time = all(op.future.done() for op in ops) and (interrupted or len(ops) == cfg.orders)
        if cfg.await_takeover is not None:  # then the adopted orders in doubt are reconciled
            await_takeover(rt, cfg.await_takeover)
            wait_until(lambda: rt.stats(invariants=False)["unknown_open"] == 0, 30.0, 0.1)
        if cfg.id_prefix and shared_book(rt):
            close_resting_orders(rt)
        rt.flush()
        unknown_settled = wait_until(lambda: rt.stats(invariants=False)["unknown_open"] == 0, 30.0, 0.1)
        healthy_settled = wait_until(lambda: all(c.state == "running" for c in rt.health().children), 10.0, 0.1)
        rt.flush()
        sender_errors = [f"sender {s.index}: {s.error!r}" for s in senders if s.error is not None]
        if cfg.soak:
            invariants = check_soak(rt, checks, faults=plan, resolved_in_time=resolved_in_time, sender_errors=sender_errors,
                                    unknown_settled=unknown_settled, healthy_settled=healthy_settled)
            latencies = [x for c in checks for x in c.latencies]
            kinds = sum((c.kinds for c in checks), Counter())
        else:
            invariants = check_stress(rt, ops, faults=plan, resolved_in_time=resolved_in_time, sender_errors=sender_errors,
                                      unknown_settled=unknown_settled, healthy_settled=healthy_settled,
                                      venue_positions=not (cfg.id_prefix and shared_book(rt)))
            latencies = [r.latency_us for op in ops if op.kind != "cancel" and op.future.done()
                         for r in (op.future.result(),)
                         if not r.replay and r.status.value != "DENIED" and r.latency_us]
            kinds = Counter(op.kind for op in ops)
        st = rt.stats(invariants=False)  # the counters (check_stress asked for the invariants)
        health = rt.health()
        venue = rt.venue("paper")
        fault_stats = venue.stats() if plan is not None and hasattr(type(venue), "stats") else None
        summary = {
            "command": "stress",
            "interrupted": interrupted,
            "senders": cfg.senders,
            "window": cfg.window,
            "intents": sent,
            "requested": cfg.orders,
            "soak": cfg.soak,
            "mix": dict(sorted(kinds.items())),
            "final_reports": sum(c.resolved + c.bad_type for c in checks) if cfg.soak else sum(1 for op in ops if op.future.done()),
            "venue_duplicate_submissions": venue.duplicate_submissions(),
            "venue_submissions": sum(venue.submission_counts().values()),
            "invariants": {i.name: i.ok for i in invariants},
            "invariant_details": {i.name: i.detail for i in invariants},
            "throughput_per_s": round(sent / elapsed, 1) if elapsed > 0 else None,
            "latency_us": latency_summary(latencies),
            "restarts": sum(c.restarts for c in health.children),
            "unknown_resolved": st["unknown_resolved"],
            "unknown_open": st["unknown_open"],
            "pending_cancel_at_end": st["orders_by_status"].get("PENDING_CANCEL", 0),
            "breaker_transitions": len(transitions),
            "breaker_states": dict(health.breakers),
            "orders_by_status": st["orders_by_status"],
            "fills_total": st["fills_total"],
            "errors_by_code": dict(sorted(st["errors_by_code"].items())),
            "denied": denial_reasons(ops, breaker_transitions=len(transitions), fault_stats=fault_stats,
                                     counts=sum((c.denied for c in checks), Counter()) if cfg.soak else None),
            "orders_in_memory": st.get("orders_in_memory"),
            "orders_archived": st.get("orders_archived"),
            "rss": rss_report(rss_samples),
            "faults": str(plan) if plan is not None else None,
            "fault_stats": fault_stats,
            "seed": cfg.seed,
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu_count": os.cpu_count(),
            "seconds": round(elapsed, 3),
            # the process's CPU (every thread, user + system) over the same timed window, per operation
            "cpu_us_per_op": round(cpu_s / sent * 1e6, 1) if sent else None,
            # the same window's CPU per operation by thread (the ledger's, the store's, the venue's…)
            "cpu_us_per_op_by_thread": cpu_by_thread(threads0, threads1, sum(s.cpu_s for s in senders), sent),
            "state_dir": str(settings.state_dir),
            "state_files_removed": [p.name for p in removed],
        }
        js = st["journal"]
        claims = sum(1 for op in ops if op.kind in ("new", "dup", "conflict", "shared"))
        # group commit: intents that reached the idempotency store per claim transaction (SQLite or PostgreSQL)
        summary["claims_per_transaction"] = round(claims / js["batches"], 2) if js["batches"] else None
        if cfg.journal_url:  # what the fleet's parent checks across processes (stress_fleet.py)
            summary["fleet"] = {
                "venue_ids": {k: n for k, n in venue.submission_counts().items()},
                "sent_at": sorted(sent_at),
                "shared": [[op.client_order_id, r.status.value, r.replay, r.error.code.value if r.error else None]
                           for op in ops if op.kind == "shared" and op.future.done() for r in (op.future.result(),)],
                "spent": str(sum((f.qty * f.price for r in rt.orders(account_id=STRESS_ACCOUNT) for f in r.fills),
                                 Decimal(0))),
                "claim_batches": js["batches"],
                "claims_per_transaction": round(claims / js["batches"], 2) if js["batches"] else None,
                "owner_id": rt.pg.owner_id if rt.pg is not None else None,
                "shared_book": shared_book(rt),
                "positions": {p.symbol: str(p.net_qty) for p in rt.positions() if p.account_id == STRESS_ACCOUNT},
                "adopted": rt.orders_taken_over,
            }
    finally:
        try:
            sub.unsubscribe()
            if sent_sub is not None:
                sent_sub.unsubscribe()
        finally:
            rt.stop()
    return summary, all(i.ok for i in invariants) and not interrupted


def render_stress_summary(console: Console, s: dict) -> None:
    """Print the stress summary ``s`` with one PASS/FAIL line per invariant."""
    console.rule(f"[bold]flowroute stress[/] — {s['senders']} senders, {s['intents']} intents, faults {s['faults'] or 'none'}")
    if s.get("interrupted"):
        console.print(f"[yellow]interrupted[/]: partial summary of {s['intents']:,} of {s['requested']:,} operations sent before Ctrl-C")
    console.print(f"mix: {s['mix']}")
    console.print(f"final reports: {s['final_reports']}/{s['intents']}  venue submissions: {s['venue_submissions']}"
                  f"  venue duplicate submissions: {s['venue_duplicate_submissions']}")
    console.print(f"orders by status: {s['orders_by_status']}  fills: {s['fills_total']}")
    console.print(f"errors by code: {s['errors_by_code']}")
    if s["fault_stats"]:
        console.print(f"injected: {s['fault_stats']}")
    if s["pending_cancel_at_end"]:
        console.print(f"[yellow]orders still PENDING_CANCEL at the end: {s['pending_cancel_at_end']}[/]")
    console.print(f"restarts: {s['restarts']}  unknown resolved: {s['unknown_resolved']}  breaker transitions: "
                  f"{s['breaker_transitions']}  breakers: {s['breaker_states']}")
    denied = s["denied"]
    if denied["total"]:
        color = "yellow" if denied["unexpected"] * 10 > max(1, s["intents"]) else "default"
        console.print(f"[{color}]denied: {denied['total']:,} of {s['intents']:,}[/] "
                      f"({denied['unexpected']:,} not sent as bad input on purpose)")
        for reason in denied["reasons"]:
            console.print(f"  {reason['count']:,} {reason['code']}: {reason['why']}")
    console.print(f"throughput: {s['throughput_per_s']} intents/s over {s['seconds']} s; latency µs "
                  f"{latency_text(s['latency_us'])}; CPU affinity {s['affinity']} of {s['cpu_count']}")
    by_thread = s.get("cpu_us_per_op_by_thread") or {}
    if s.get("cpu_us_per_op") is not None:
        console.print(f"CPU µs per operation: {s['cpu_us_per_op']} (all threads)"
                      + ("; by thread: " + ", ".join(f"{name} {us}" for name, us in by_thread.items()) if by_thread else ""))
    rss = s.get("rss") or {}
    if rss.get("samples"):
        console.print(f"RSS MiB: start {rss['start_mib']}, half {rss['mid_mib']}, end {rss['end_mib']}; growth first half "
                      f"{rss['first_half_growth_mib']}, second half {rss['second_half_growth_mib']} "
                      f"({rss['second_half_growth_pct_of_mid_rss']} % of the RSS at half time)")
    t = Table(title="invariants")
    t.add_column("invariant")
    t.add_column("result")
    t.add_column("detail")
    for name, ok in s["invariants"].items():
        t.add_row(name, "[green]PASS[/]" if ok else "[red]FAIL[/]", s["invariant_details"][name])
    console.print(t)



# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _budget(text: str) -> Decimal | None:
    if text.lower() == "none":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of USDT or 'none', got {text!r}")
    return value


def _faults(text: str) -> str:
    try:
        FaultPlan.parse(text, seed=0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(subparsers: Any, parents: Any) -> argparse.ArgumentParser:
    """Register ``stress``."""
    p = subparsers.add_parser(
        "stress", parents=[parents.json, parents.log, parents.settings, parents.fresh],
        help="many concurrent senders, duplicates, bad input and faults; invariant checks",
        description="Drive one runtime from many threads with duplicates, cancels, bad input and injected "
                    "venue faults; check the invariants; report throughput and latency. Exit 1 when an "
                    "invariant fails.")
    p.add_argument("--senders", type=_positive, default=8, help="concurrent sender threads (default %(default)s)")
    p.add_argument("--orders", type=_positive, default=10000,
                   help="operations in total: submits, duplicates, cancels, bad input (default %(default)s)")
    p.add_argument("--faults", type=_faults, metavar="PLAN",
                   help='injected venue faults, e.g. "crash=0.001,hang=0.0005,ambiguous=0.002,transient=0.02,reject=0.01" '
                        "(kinds: " + ", ".join(FAULTS) + "; hang_s, slow_s: seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mix, the faults and the jitter (default %(default)s)")
    p.add_argument("--window", type=_non_negative, default=8,
                   help="max unanswered operations per sender; 0 = open loop (default %(default)s)")
    p.add_argument("--budget", type=_budget, default=Decimal("10000000"), metavar="USDT",
                   help="budget of the stress account in USDT, or 'none' (default 10000000)")
    p.add_argument("--processes", type=_positive, default=1,
                   help="runtime processes sharing one PostgreSQL journal (needs --journal-url; default %(default)s)")
    p.add_argument("--journal-url", metavar="URL", default=None,
                   help="postgresql:// URL of the shared journal (README \"Scale-out\"); with --processes 1 one "
                        "process uses it")
    p.add_argument("--rate", type=_rate, default=None, metavar="N/SECONDS",
                   help="the venue's shared rate limit for every process together, e.g. 2000/1 (default: the profile's)")
    p.add_argument("--shared-ids", type=_positive, default=500, metavar="K",
                   help="with --processes: fleet-wide intents every process sends (same id, same intent) "
                        "(default %(default)s)")
    p.add_argument("--kill-one", action="store_true",
                   help="with --processes: SIGKILL one process when it has sent half its orders; the survivors take "
                        "over its orders when its lease expires and reconcile them with the shared paper book "
                        "(README \"Scale-out\")")
    p.add_argument("--lease-s", type=float, default=None, metavar="SECONDS",
                   help="PostgreSQL: each process's lease on its orders (journal.lease_s; default: the profile's, "
                        "2 with --kill-one)")
    p.add_argument("--id-prefix", default="", help=argparse.SUPPRESS)
    p.add_argument("--await-takeover", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--p-shared", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--soak", action="store_true",
                   help="check each operation as it completes and drop it, so the harness's memory stays bounded "
                        "(long runs: the RSS curve shows the runtime's memory); senders keep at most "
                        f"{_SOAK_RESTING} orders resting")
    p.add_argument("--rss-every", type=_non_negative, default=0, metavar="N",
                   help="sample the process RSS every N completed operations (the JSON's rss; default: start and end only)")
    p.set_defaults(handler=run, default_profile="stress")
    return p


def _rate(text: str) -> tuple[int, float]:
    try:
        n, _, w = text.partition("/")
        rate = (int(n), float(w or "1"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N/SECONDS (calls per window), e.g. 2000/1; got {text!r}") from None
    if rate[0] < 1 or not 0 < rate[1] < 86400:
        raise argparse.ArgumentTypeError(f"expected N >= 1 calls per 0 < SECONDS < 86400; got {text!r}")
    return rate


def run(args: argparse.Namespace) -> int:
    """Run ``stress`` with parsed ``args``; the exit code (1 when an invariant failed)."""
    if args.kill_one and args.processes < 2:
        raise CliError("--kill-one needs --processes 2 or more (survivors take over the killed process's orders)")
    if args.lease_s is not None and not 0 < args.lease_s <= 3600:
        raise CliError(f"--lease-s must be > 0 and <= 3600 seconds, got {args.lease_s:g}")
    if args.processes > 1:  # the children get --fresh for their own state dirs; the journal's rows: --fresh here
        from .stress_fleet import run_fleet

        return run_fleet(args)
    if args.journal_url is not None:
        if not args.journal_url.startswith(("postgresql://", "postgres://")):
            raise CliError(f"--journal-url must be a postgresql:// URL, got {args.journal_url.split('@')[-1]!r}")
        if not args.id_prefix:  # one process on its own (a fleet's children are prepared by their parent)
            from .stress_fleet import _prepare_journal

            _prepare_journal(args.journal_url, args.fresh)
    cfg = StressConfig(senders=args.senders, orders=args.orders, faults=args.faults, seed=args.seed,
                       state_dir=args.state_dir, profile=args.profile, fresh=args.fresh, as_json=args.json,
                       window=args.window, budget=args.budget, journal_url=args.journal_url, id_prefix=args.id_prefix,
                       p_shared=args.p_shared, shared_ids=args.shared_ids, rate=args.rate, lease_s=args.lease_s,
                       await_takeover=args.await_takeover,
                       soak=args.soak, rss_every=args.rss_every)
    summary, ok = run_stress(cfg, make_console(stderr=args.json), args.log_level)
    if args.json:
        print_json(summary)
    else:
        render_stress_summary(make_console(), summary)
    if summary.get("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_OK if ok else EXIT_FAILED
