"""flowroute settings: one frozen, validated tree with every default (README.md, Configuration).

Sources, highest priority first:

1. keyword arguments (``load_settings(**overrides)`` / ``Settings(**overrides)``);
2. environment variables ``FLOWROUTE_<KEY>``, nested with ``__``
   (``FLOWROUTE_BREAKER__WINDOW_SIZE=7``; dicts/lists as JSON,
   ``FLOWROUTE_RISK__BUDGETS='{"acc-1": "1000"}'``);
3. the TOML profile (``config/profiles/<profile>.toml``; TOML floats are read as ``Decimal``,
   so ``min_notional = 5.1`` is exact);
4. the defaults below (the documented defaults).

The profile is chosen by the ``profile`` argument, else ``FLOWROUTE_PROFILE``, else
``"default"``. An unknown profile, an unknown key (in any source, including a
``FLOWROUTE_*`` variable that names no setting) or an invalid value raises ``ConfigError``
(a ``ValueError``) whose message names each dotted key, e.g.
``breaker.failure_rate_threshold: must be in (0, 100] (got 150)``.

Units: durations are seconds (``_s``), rates in percent, slippage and fees in basis points
(``_bps``), money in quote currency as ``Decimal``, latency in microseconds (``_us``).

Example::

    >>> from config import load_settings
    >>> s = load_settings("paper")           # doctest: +SKIP
    >>> s.retry.base_s, s.breaker.window_size  # doctest: +SKIP
    (0.4, 20)
"""

from __future__ import annotations

import os
import re
import tomllib
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from protocols import DEFAULT_INSTRUMENTS, Instrument
from protocols.model.base import NonNegDec, PosDec, text_problem

__all__ = [
    "AdapterOverrides",
    "AdapterSettings",
    "BreakerSettings",
    "ConfigError",
    "DEFAULT_PROFILE_DIR",
    "DispatchSettings",
    "IdempotencySettings",
    "InstrumentSettings",
    "JournalSettings",
    "LoggingSettings",
    "MetricsSettings",
    "OrderSettings",
    "PaperSettings",
    "ReconcileSettings",
    "RetrySettings",
    "RiskSettings",
    "RoutingSettings",
    "SafetySettings",
    "Settings",
    "SupervisorSettings",
    "SyncSettings",
    "ThrottleSettings",
    "TimeoutSettings",
    "TrackingSettings",
    "known_profiles",
    "load_settings",
]

ENV_PREFIX = "FLOWROUTE_"
#: Where the packaged profiles live (``config/profiles/*.toml``).
DEFAULT_PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET_FIELDS = frozenset({"venue_api_key", "venue_api_secret"})
_REDACTED = "**********"

# The profile directory used while one ``Settings`` is being built (set by ``load_settings``).
_profile_dir: ContextVar[Path | None] = ContextVar("flowroute_profile_dir", default=None)


class ConfigError(ValueError):
    """Invalid configuration. ``str(err)`` has one ``dotted.key: problem`` line per error.

    ``errors`` is the list of ``(dotted_key, message)`` pairs, in pydantic's order.
    """

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(f"{key}: {message}" if key else message for key, message in self.errors))

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> ConfigError:
        """Translate every pydantic error into a ``dotted.key: message (got value)`` line."""
        errors: list[tuple[str, str]] = []
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ())]
            key = ".".join(loc)
            message = err.get("msg", "invalid value")
            if err.get("type") == "extra_forbidden":
                message = "unknown setting (no such key)"
            elif message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if loc and loc[0] not in _SECRET_FIELDS and key != "journal.url" and "input" in err and err.get("type") != "extra_forbidden":
                shown = repr(err["input"])
                if len(shown) <= 80 and not isinstance(err["input"], dict):
                    message = f"{message} (got {shown})"
            errors.append((key, message))
        return cls(errors)


class _Section(BaseModel):
    """Base of every settings section: frozen, unknown keys rejected, defaults validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _octal_mode(value: Any) -> Any:
    """Strings are octal as with chmod (``"600"``, ``"0600"``, ``"0o600"``); ints as given."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not re.fullmatch(r"[0-7]{1,4}", text):
            raise ValueError("must be an octal file mode such as 0o600")
        return int(text, 8)
    return value


def _percent(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError("must be in (0, 100]")
    return value


#: A percentage in (0, 100].
Percent = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_percent)]
#: A duration in seconds, > 0.
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: A duration in seconds, >= 0.
NonNegSeconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: A relative amount in [0, 1].
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


# --------------------------------------------------------------------------- sections


class JournalSettings(_Section):
    """The SQLite journal / idempotency store (docs/DESIGN.md, Durability)."""

    enabled: bool = Field(True, description="Write the durable journal (off only for benchmarks/tests).")
    synchronous: Annotated[Literal["FULL", "NORMAL", "OFF"], BeforeValidator(_upper)] = Field(
        "FULL", description="SQLite PRAGMA synchronous; FULL = durable at commit (docs/DESIGN.md, Durability default)."
    )
    group_commit_max: int = Field(512, ge=1, description="Max claims per group-commit transaction (count).")
    file_mode: Annotated[int, BeforeValidator(_octal_mode)] = Field(
        0o600, description="Permission bits of journal files (octal; docs/DESIGN.md, Testing: 0600)."
    )
    url: str | None = Field(
        None,
        description="PostgreSQL journal shared by several runtime processes (postgresql://user:pass@host/db); "
        "unset = the SQLite journal in state_dir. Its password is never logged.",
    )
    lease_s: float = Field(
        15.0, gt=0, allow_inf_nan=False,
        description="PostgreSQL: seconds a process owns its in-flight orders without renewing (renewed every lease_s/3).",
    )
    claim_wait_s: Seconds = Field(
        10.0, description="SQLite: seconds a venue call forwarded before its claim's COMMIT waits on the venue worker for "
        "that commit; past it the order is DENIED E_EXEC_PERSISTENCE, nothing sent (bounds a stalled disk, not the normal path).")
    pool_max: int = Field(8, ge=2, le=100, description="PostgreSQL: most connections one process holds (count).")
    connect_timeout_s: float = Field(
        5.0, gt=0, allow_inf_nan=False, description="PostgreSQL: seconds to wait for the server at start."
    )
    keep_terminal_orders: int = Field(
        10_000, ge=0, description="Terminal orders the ledger keeps in memory once journaled (count); older ones are "
        "archived in the ledger journal and read back on demand (docs/DESIGN.md Durability).")
    compact_interval_s: Seconds = Field(
        300.0, description="How often the ledger compacts the journal of orders archived longer than idempotency.ttl_s (seconds).")

    @field_validator("url")
    @classmethod
    def _url_ok(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if not re.match(r"^postgres(ql)?://", value):
            raise ValueError("must be a postgresql:// URL (or unset for the SQLite journal)")
        return value

    @field_validator("file_mode")
    @classmethod
    def _mode_ok(cls, value: int) -> int:
        if not 0 <= value <= 0o777:
            raise ValueError("must be a permission mode between 0o000 and 0o777")
        if value & 0o600 != 0o600:
            raise ValueError("must let the owner read and write (include 0o600)")
        return value


_DEFAULT_POLICY = {
    "paper": "paper",
    "simulated": "paper",
    "shadow": "shadow",
    "shadow_run": "shadow",
    "dry_run": "dry_run",
    "testnet_dry_run": "dry_run",
}


class RoutingSettings(_Section):
    """Execution mode → adapter id policy (README.md, Topology). Unlisted modes are denied, never defaulted."""

    policy: dict[str, str] = Field(
        default_factory=lambda: dict(_DEFAULT_POLICY), description="Mode → adapter id (strings)."
    )
    blocked_modes: tuple[str, ...] = Field(
        ("live_blocked", "live"), description="Modes denied with E_EXEC_POLICY_BLOCKED."
    )

    @field_validator("policy")
    @classmethod
    def _policy_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for mode, adapter in value.items():
            if not mode.strip() or not adapter.strip():
                raise ValueError(f"mode and adapter id must be non-empty (got {mode!r} -> {adapter!r})")
        return value

    @field_validator("blocked_modes")
    @classmethod
    def _blocked_ok(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        both = sorted(set(value) & set(info.data.get("policy", {})))
        if both:
            raise ValueError(f"mode(s) {both} are both blocked and routed by routing.policy")
        return value


class IdempotencySettings(_Section):
    """Idempotency records (docs/DESIGN.md, Durability)."""

    ttl_s: Seconds = Field(3600.0, description="Lifetime of a completed record (seconds; checked on read).")


class TimeoutSettings(_Section):
    """Venue call timeouts (docs/DESIGN.md, Failure handling)."""

    attempt_s: Seconds = Field(2.0, description="Timeout of one venue call attempt (seconds).")
    cancel_s: Seconds = Field(10.0, description="Timeout of one cancel call at the venue (seconds).")
    deadline_s: Seconds = Field(30.0, description="Overall deadline of an order's venue work incl. retries (seconds).")

    @field_validator("deadline_s")
    @classmethod
    def _deadline_ok(cls, value: float, info: ValidationInfo) -> float:
        attempt = info.data.get("attempt_s")
        if attempt is not None and value < attempt:
            raise ValueError(f"must be >= timeouts.attempt_s ({attempt})")
        return value


class RetrySettings(_Section):
    """Retry of provably-not-delivered calls: ``min(base·2^(n-1), cap) × U(1-jitter, 1+jitter)``."""

    max_retries: int = Field(3, ge=0, description="Retries after the first attempt (count).")
    base_s: Seconds = Field(1.0, description="First retry delay before jitter (seconds; paper profile 0.4).")
    cap_s: Seconds = Field(30.0, description="Upper bound of a retry delay before jitter (seconds).")
    jitter: Fraction = Field(0.2, description="Relative jitter (0.2 = ±20%).")

    @field_validator("cap_s")
    @classmethod
    def _cap_ok(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("base_s")
        if base is not None and value < base:
            raise ValueError(f"must be >= retry.base_s ({base})")
        return value


class BreakerSettings(_Section):
    """Per-adapter circuit breaker, after resilience4j's count-based sliding window (docs/DESIGN.md, Failure handling).

    As in resilience4j, ``minimum_calls`` may exceed ``window_size`` (then the window size is
    the effective minimum).
    """

    window_size: int = Field(20, ge=1, description="Count window: last N calls (count).")
    minimum_calls: int = Field(10, ge=1, description="Calls recorded before rates are evaluated (count).")
    failure_rate_threshold: Percent = Field(50.0, description="Trip at >= this failure rate (percent, (0, 100]).")
    slow_call_rate_threshold: Percent = Field(50.0, description="Trip at >= this slow-call rate (percent, (0, 100]).")
    slow_call_duration_s: Seconds = Field(1.0, description="A call slower than this is slow (seconds).")
    open_duration_s: Seconds = Field(30.0, description="Time OPEN before HALF_OPEN (seconds).")
    half_open_permits: int = Field(1, ge=1, description="Trial calls admitted in HALF_OPEN (count).")


class ThrottleSettings(_Section):
    """Per-adapter sliding-log rate limit (docs/DESIGN.md, Failure handling)."""

    max_calls: int = Field(120, ge=1, description="Calls allowed per rolling window (count).")
    window_s: Seconds = Field(60.0, description="Rolling window length (seconds).")
    overflow: Annotated[Literal["queue", "deny"], BeforeValidator(_lower)] = Field(
        "queue", description="Excess orders wait in a bounded FIFO or are denied (E_EXEC_THROTTLED)."
    )
    queue_size: int = Field(1000, ge=1, description="Capacity of the overflow FIFO (orders).")
    venue_key: str | None = Field(
        None, min_length=1, max_length=256,
        description="PostgreSQL journal: the key the venue counts calls by (e.g. its API key's name); adapters "
        "with one key share one window across every process. Default: the adapter id.",
    )
    share: Fraction = Field(
        1.0, description="PostgreSQL journal: the most of max_calls one process may hold in the shared window (0-1]."
    )

    @field_validator("venue_key")
    @classmethod
    def _venue_key_storable(cls, value: str | None) -> str | None:
        problem = None if value is None else text_problem(value)
        if problem is not None:  # the PostgreSQL journal keys its shared window by it (a text column)
            raise ValueError(f"holds {problem}, which the journal cannot store")
        return value

    @field_validator("share")
    @classmethod
    def _share_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0 (a process with no share could never send)")
        return value


class TrackingSettings(_Section):
    """Live order tracking: working orders (ACCEPTED, PARTIALLY_FILLED) are looked up at their venue
    on a schedule, tighter while the venue's event stream is silent (README "Features")."""

    enabled: bool = Field(True, description="Look working orders up at their venue on a schedule.")
    interval_s: Seconds = Field(10.0, description="Each working order is looked up at most this often while events flow (seconds).")
    silent_interval_s: Seconds = Field(0.5, description="... and this often while the event stream is silent (seconds).")
    silence_s: Seconds = Field(30.0, description="No event from the venue for this long, with orders working, is a silent stream (seconds).")
    page_size: int = Field(50, ge=1, description="Lookups per adapter per round at most (count).")
    budget_share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        0.5, description="Lookups run only while the adapter's throttle window is below this share of max_calls (fraction)."
    )


#: the sections an adapter may override, ``[adapters.<id>.<section>]`` (name -> model)
_OVERRIDABLE: dict[str, type[_Section]] = {
    "timeouts": TimeoutSettings,
    "retry": RetrySettings,
    "throttle": ThrottleSettings,
    "breaker": BreakerSettings,
    "tracking": TrackingSettings,
}


class AdapterOverrides(_Section):
    """Per-adapter overrides, ``[adapters.<adapter_id>.<section>]`` (README "Configuration").

    Each section takes any key of the global section of the same name; a key not given
    inherits the global value, and the merged section is validated as a whole (so
    ``deadline_s >= attempt_s`` holds per adapter too). Example: no retries for a live venue,
    retries for the simulator::

        [retry]
        max_retries = 3
        [adapters.live.retry]
        max_retries = 0
    """

    timeouts: dict[str, Any] = Field(default_factory=dict, description="Keys of [timeouts] for this adapter.")
    retry: dict[str, Any] = Field(default_factory=dict, description="Keys of [retry] for this adapter.")
    throttle: dict[str, Any] = Field(default_factory=dict, description="Keys of [throttle] for this adapter.")
    breaker: dict[str, Any] = Field(default_factory=dict, description="Keys of [breaker] for this adapter.")
    tracking: dict[str, Any] = Field(default_factory=dict, description="Keys of [tracking] for this adapter.")


class AdapterSettings(_Section):
    """The effective timeouts, retry, throttle, breaker and tracking of one adapter (global + its overrides)."""

    timeouts: TimeoutSettings
    retry: RetrySettings
    throttle: ThrottleSettings
    breaker: BreakerSettings
    tracking: TrackingSettings


class SupervisorSettings(_Section):
    """One-for-one restarts with backoff and an intensity limit (docs/DESIGN.md, Failure handling)."""

    backoff_initial_s: Seconds = Field(0.1, description="First restart delay (seconds), doubling.")
    backoff_max_s: Seconds = Field(5.0, description="Restart delay cap (seconds).")
    jitter: Fraction = Field(0.2, description="Relative restart jitter (0.2 = ±20%).")
    max_restarts: int = Field(5, ge=0, description="Restarts allowed within within_s before giving up (count).")
    within_s: Seconds = Field(60.0, description="Intensity window (seconds).")
    when_restarting: Annotated[Literal["stash", "fail_fast"], BeforeValidator(_lower)] = Field(
        "stash", description="Orders for a restarting adapter wait in a bounded stash or fail fast."
    )
    stash_size: int = Field(1000, ge=1, description="Stash capacity per adapter (orders).")

    @field_validator("backoff_max_s")
    @classmethod
    def _max_ok(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("backoff_initial_s")
        if initial is not None and value < initial:
            raise ValueError(f"must be >= supervisor.backoff_initial_s ({initial})")
        return value


class ReconcileSettings(_Section):
    """Reconciliation of UNKNOWN orders by client order id (docs/DESIGN.md, Durability)."""

    interval_s: Seconds = Field(1.0, description="Delay between reconcile attempts (seconds).")
    quiet_threshold_s: NonNegSeconds = Field(
        5.0, description="A venue that has not heard of an order for this long may be trusted (seconds)."
    )
    max_attempts: int = Field(
        10, ge=1,
        description="Lookups of an order in doubt before it is escalated: ReconciliationEscalated, health degraded; lookups go on (count).",
    )
    backoff_cap_s: Seconds = Field(
        60.0, description="Longest delay between lookups of one order in doubt; delays double from interval_s (seconds)."
    )

    @field_validator("backoff_cap_s")
    @classmethod
    def _cap_ok(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("interval_s")
        if interval is not None and value < interval:
            raise ValueError(f"must be >= reconcile.interval_s ({interval})")
        return value


class RiskSettings(_Section):
    """Pre-submit guards (README.md, Features). Money in quote currency, slippage in bps."""

    min_notional: NonNegDec = Field(Decimal("5.0"), description="Min order notional (quote currency).")
    max_notional: PosDec = Field(Decimal("1000000"), description="Max order notional (quote currency).")
    slippage_bps: NonNegDec = Field(Decimal("20"), description="Max limit distance through the touch (bps).")
    slippage_action: Annotated[Literal["cap", "deny"], BeforeValidator(_lower)] = Field(
        "deny", description="A limit beyond slippage_bps is capped at the bound or denied."
    )
    budgets: dict[str, NonNegDec] = Field(
        default_factory=dict, description="account_id → budget (quote currency); missing = default_budget."
    )
    default_budget: NonNegDec | None = Field(
        None, description="Budget of accounts not in budgets (quote currency); None = unlimited."
    )

    @field_validator("max_notional")
    @classmethod
    def _max_ok(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        low = info.data.get("min_notional")
        if low is not None and value < low:
            raise ValueError(f"must be >= risk.min_notional ({low})")
        return value

    @field_validator("budgets")
    @classmethod
    def _accounts_ok(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        if any(not account.strip() for account in value):
            raise ValueError("account ids must be non-empty")
        return value


class OrderSettings(_Section):
    """Order lifecycle policies (README "Features"): open-age limit, partial-fill remainder."""

    max_open_age_s: Seconds | None = Field(
        None, description="Cancel an order at its venue once it has been open (accepted, working) this long (seconds; None = never)."
    )
    remainder: Annotated[Literal["partial_success", "resubmit"], BeforeValidator(_lower)] = Field(
        "partial_success",
        description="The unfilled remainder of an order that expired partly filled (IOC/FOK/DAY, a MARKET remainder): "
                    "the order ends as a partial success, or the remainder is re-submitted as a child order "
                    "(derived client order id, within the parent's reservation).",
    )
    max_resubmits: int = Field(3, ge=1, description="Child orders one original order may get under remainder = resubmit (count).")


def _target_state(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        return "none" if text.lower() == "none" else text.upper()
    return value


#: what an automatic safety rule does to trading: nothing, reduce-only, or halt
TargetState = Annotated[Literal["none", "REDUCING", "HALTED"], BeforeValidator(_target_state)]


class SyncSettings(_Section):
    """``sync_broker_state``: the venue's positions and balances against the ledger (actors/runtime/sync.py)."""

    interval_s: Seconds | None = Field(None, description="Run the sync every this many seconds (None = only when called).")
    timeout_s: Seconds = Field(10.0, description="An adapter that has not answered a sync within this long is 'unavailable' (seconds).")
    confirmations: int = Field(2, ge=1, description="Syncs in a row that must differ before a mismatch is raised (count).")
    tolerance: NonNegDec = Field(Decimal(0), description="Differences up to this absolute amount are ignored (units of the figure).")
    baseline: Annotated[Literal["zero", "first_sync"], BeforeValidator(_lower)] = Field(
        "zero",
        description="zero: venue figures start from zero with the ledger's; first_sync: the first sync's differences are the starting holdings.",
    )


class SafetySettings(_Section):
    """Automatic trading state (README "Features"): what a persistent adapter outage or a confirmed
    broker-state mismatch does to trading. Resuming stays an operator's act unless ``auto_resume``."""

    on_outage: TargetState = Field("none", description="Trading state after an adapter is unavailable for outage_after_s: none | REDUCING | HALTED.")
    outage_after_s: Seconds = Field(30.0, description="How long an adapter must stay unavailable (breaker not CLOSED, or restarting) "
                                                      "to count as an outage (seconds).")
    on_mismatch: TargetState = Field("none", description="Trading state after a confirmed broker-state mismatch: none | REDUCING | HALTED.")
    auto_resume: bool = Field(False, description="Back to ACTIVE once every cause is gone, if the state was set automatically and not changed since.")


class InstrumentSettings(_Section):
    """Venue filters of one symbol (Binance PRICE_FILTER / LOT_SIZE / MIN_NOTIONAL)."""

    tick_size: PosDec = Field(description="Price increment (quote currency).")
    lot_size: PosDec = Field(description="Quantity increment and minimum (base units).")
    min_notional: NonNegDec = Field(Decimal(0), description="Min price × qty (quote currency).")


class DepthLevelSettings(_Section):
    """One configured depth level beyond the touch (fill-model rule 6)."""

    ticks: int = Field(ge=1, description="How many ticks beyond the touch (>= 1).")
    size: PosDec = Field(description="Size available there (base units).")


def _default_instruments() -> dict[str, InstrumentSettings]:
    return {
        symbol: InstrumentSettings(tick_size=i.tick_size, lot_size=i.lot_size, min_notional=i.min_notional)
        for symbol, i in DEFAULT_INSTRUMENTS.items()
    }


class PaperSettings(_Section):
    """The paper (and shadow) venue's fill model (README.md, Write an adapter; rules in
    ``protocols/venues/paper/fill_model.py`` and docs/FILL_MODEL.md).

    ``instruments`` replaces the default table as a whole when set (it is not merged).
    """

    fill_model: Annotated[Literal["flowroute", "nautilus_l1"], BeforeValidator(_lower)] = Field(
        "flowroute",
        description="flowroute (evidence-based depth) | nautilus_l1 (NautilusTrader 1.221 L1 matching, rule 15).",
    )
    maker_fee_bps: NonNegDec = Field(Decimal("1.0"), description="Maker fee (bps of notional; rebates are not modelled: Fill.fee is >= 0).")
    taker_fee_bps: NonNegDec = Field(Decimal("1.0"), description="Taker fee (bps of notional).")
    market_remainder: Annotated[Literal["walk", "expire"], BeforeValidator(_lower)] = Field(
        "walk", description="Market order beyond the touch: walk the evidence depth (rule 6), or expire at once."
    )
    trades_move_touch: bool = Field(True, description="A trade print moves the touch until the next quote (rule 5).")
    depth_window_s: Decimal = Field(
        Decimal("2"), gt=0, le=86400, description="Seconds of recent quotes and trades that count as depth (rule 6)."
    )
    locked_crossed_rule: Annotated[Literal["skip", "halt"], BeforeValidator(_lower)] = Field(
        "skip", description="Crossed/locked quotes are skipped or halt matching until a sane quote."
    )
    latency_us: int = Field(0, ge=0, description="Simulated venue latency (microseconds).")
    instruments: dict[str, InstrumentSettings] = Field(
        default_factory=_default_instruments, description="symbol → filters (replaces the defaults when set)."
    )
    depth: dict[str, list[DepthLevelSettings]] = Field(
        default_factory=dict, description="symbol → configured depth levels beyond the touch (rule 6; none by default)."
    )
    shared_book: bool = Field(
        True, description="With journal.url (PostgreSQL): the paper venue's book lives in that database, one book that every "
        "process trades (README \"Scale-out\"); false keeps a SQLite book per process in state_dir.",
    )

    @field_validator("instruments")
    @classmethod
    def _symbols_ok(cls, value: dict[str, InstrumentSettings]) -> dict[str, InstrumentSettings]:
        if any(not symbol.strip() for symbol in value):
            raise ValueError("symbols must be non-empty")
        return value

    @field_validator("depth")
    @classmethod
    def _depth_symbols_known(cls, value: dict[str, list[DepthLevelSettings]], info: ValidationInfo) -> dict[str, list[DepthLevelSettings]]:
        instruments = info.data.get("instruments")
        unknown = sorted(set(value) - set(instruments)) if instruments is not None else []
        if unknown:
            raise ValueError(f"symbols without an instrument in paper.instruments: {', '.join(unknown)}")
        return value

    def depth_map(self) -> dict[str, list[tuple[int, Decimal]]]:
        """The configured depth as ``symbol -> [(ticks, size), ...]`` (``FillModelConfig.depth``)."""
        return {symbol: [(level.ticks, level.size) for level in levels] for symbol, levels in self.depth.items()}

    def instrument_map(self) -> dict[str, Instrument]:
        """The instruments as ``protocols.Instrument`` values, keyed by symbol."""
        return {
            symbol: Instrument(symbol=symbol, tick_size=i.tick_size, lot_size=i.lot_size, min_notional=i.min_notional)
            for symbol, i in self.instruments.items()
        }


class DispatchSettings(_Section):
    """Which threads run the actors (docs/DESIGN.md, One order; actors/kernel/dispatcher.py, docs/DESIGN.md "Threads").

    ``shared``: the router, breakers, event bus and adapter actors — and the idempotency store
    and ledger unless they write a durable journal (their fsync blocks) — share one dispatcher
    (an order thread and an after-answer thread): no thread wake-up between the stages of an
    order. ``threads``: every actor on its own thread (pykka's ``ThreadingActor``).
    ``gc_threshold``: the interpreter's young-generation collection threshold while a runtime
    runs (process-wide; only ever raised; why: ``actors/kernel/gctune.py``). Unset (None), the
    embedding process's choice: ``Runtime.start`` leaves it alone, the command line (``run.py``,
    which owns its process) raises it to ``gctune.CLI_THRESHOLD`` (20,000).
    ``help``: a thread waiting for an order's reply (``submit(...).result()``, a FIX session's
    reader handing on a report) runs the order's queued messages itself when their dispatcher
    is free, instead of waking the dispatcher's thread (docs/DESIGN.md "Threads"); false: only
    the dispatchers' own threads run actors' messages (the caller just waits).
    ``help_journaled``: with ``help``, the waiting thread helps the journal-writing actors too
    (their own dispatchers when the journal is on: it commits its own claim, the ledger's
    intake and the adapter run on their threads during its fsync, and it makes its own venue
    call once its commit returned: no thread wake-up after ``submit``); on by default since
    8 Dec (one sender as deployed, benchmarks/README.md); false: the store's and the ledger's
    own threads run their messages.
    """

    mode: Annotated[Literal["shared", "threads"], BeforeValidator(_lower)] = Field(
        "shared", description="shared = one dispatcher for the non-blocking actors; threads = a thread per actor."
    )
    linger_us: int = Field(
        50, ge=0, le=10_000,
        description="After an answer, the bookkeeping thread waits this long so the caller runs first (microseconds).",
    )
    gc_threshold: int | None = Field(
        None, ge=0, le=10_000_000,
        description="CPython's young-generation GC threshold while a runtime runs, raised to at least this "
                    "(gc.set_threshold's first value, objects; process-wide; 0 = leave the interpreter's). Unset: an "
                    "embedded Runtime leaves it alone; the command line (run.py), which owns its process, uses "
                    "20000 (actors/kernel/gctune.py).",
    )
    help: bool = Field(
        True, description="A thread waiting for a reply runs the order's queued actor messages itself when their "
                          "dispatcher is free (false: only the dispatchers' threads run them).",
    )
    help_journaled: bool = Field(
        True, description="With help on, the waiting thread also runs the journal-writing actors' messages (the "
                          "idempotency store's claim commit) when the journal is on, and makes its own venue call once "
                          "its claim is durable (false: the store's and the ledger's threads run them; benchmarks/README.md).",
    )


def _hh_mm(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value.strip()):
        return value.strip()
    raise ValueError("must be a time of day HH:MM (00:00-23:59), e.g. '17:00'")


def _zone(value: Any) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'UTC', 'America/New_York')") from None
    return str(value).strip()


class PnlSettings(_Section):
    """Daily PnL (README "Features"): when a trading day begins, in which time zone."""

    day_start: Annotated[str, AfterValidator(_hh_mm)] = Field(
        "00:00", description="Local time (HH:MM in pnl.timezone) at which a PnL day begins; a fill belongs to the day it falls in."
    )
    timezone: Annotated[str, AfterValidator(_zone)] = Field("UTC", description="IANA time zone of pnl.day_start.")


class AlertSettings(_Section):
    """Alert events (README "Features"; docs/alerts.rules.yml for Prometheus): a reject-rate spike and a
    latency spike, each over a sliding window of finished orders."""

    window_s: Seconds = Field(60.0, description="Sliding window the rates and the p99 are taken over (seconds).")
    interval_s: Seconds = Field(5.0, description="How often the window is evaluated (seconds).")
    min_orders: int = Field(20, ge=1, description="Orders finished in the window before either alert may fire.")
    reject_rate: Fraction = Field(
        0.2, description="Fraction of the window's finished orders REJECTED or DENIED above which RejectRateSpiked fires."
    )
    latency_p99_us: int = Field(
        50_000, ge=1, description="p99 of the window's submit-to-answer latencies above which LatencySpiked fires (µs)."
    )


class RetentionSettings(_Section):
    """Retention (README "Features"): what stays in the live files, what is archived and pruned."""

    orders_days: float = Field(
        365.0, gt=0, allow_inf_nan=False,
        description="Terminal orders, their transitions, fills and audit lines are kept this long (days), then archived and pruned.",
    )
    receipts_days: float = Field(
        30.0, gt=0, allow_inf_nan=False,
        description="Raw venue receipts (venue events as received) are kept this long (days), then archived and pruned.",
    )
    archive_dir: str = Field(
        "archive", min_length=1, description="Where archived segments go (compressed JSONL), relative to state_dir unless absolute."
    )
    keep_receipts: bool = Field(
        False, description="Record every venue answer as received (state_dir/receipts.jsonl), kept receipts_days, for evidence."
    )
    interval_s: float = Field(
        86400.0, ge=0, allow_inf_nan=False,
        description="While a durable runtime runs, retention runs again this often (seconds, on its clock); 0: only at start.",
    )


class MetricsSettings(_Section):
    """Prometheus exposition (docs/DESIGN.md)."""

    port: int | None = Field(
        None, ge=0, le=65535,
        description="/metrics HTTP port; 0 = any free port (the chosen one is Runtime.metrics_port); None = no server.")
    host: str = Field("127.0.0.1", min_length=1, description="Bind address of the /metrics server.")


class LoggingSettings(_Section):
    """loguru configuration (docs/DESIGN.md)."""

    level: Annotated[Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = Field(
        "INFO", description="Minimum level of the console sink."
    )
    json_path: Path | None = Field(None, description="Optional JSON-lines log file (None = no JSON sink).")


# --------------------------------------------------------------------------- profile source


def known_profiles(profile_dir: Path | None = None) -> list[str]:
    """Names of the profiles in ``profile_dir`` (default: the packaged ones), plus ``default``."""
    directory = profile_dir or DEFAULT_PROFILE_DIR
    names = {p.stem for p in directory.glob("*.toml")} if directory.is_dir() else set()
    return sorted(names | {"default"})


def _read_profile(name: str, directory: Path) -> dict[str, Any]:
    if not _PROFILE_NAME.fullmatch(name):
        raise ConfigError([("profile", f"invalid profile name {name!r} (letters, digits, '_' and '-' only)")])
    path = directory / f"{name}.toml"
    if not path.is_file():
        if name == "default":
            return {}
        raise ConfigError(
            [("profile", f"unknown profile {name!r}; known profiles: {', '.join(known_profiles(directory))}")]
        )
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh, parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([("profile", f"cannot read profile file {path}: {exc}")]) from exc
    if "profile" in data:
        raise ConfigError([("profile", f"{path} must not set 'profile' (a profile is chosen, not nested)")])
    return data


class _ProfileSource(PydanticBaseSettingsSource):
    """The chosen TOML profile as a settings source (below env and init kwargs)."""

    def __init__(self, settings_cls: type[BaseSettings], name: str, directory: Path) -> None:
        super().__init__(settings_cls)
        self._data = _read_profile(name, directory)
        fix = (self._data.get("venues") or {}).get("fix") or {}
        secrets = sorted(k for k in ("username", "password") if isinstance(fix, dict) and k in fix)
        if secrets:
            raise ConfigError([(f"venues.fix.{k}",
                                f"a secret never comes from a profile file; set FLOWROUTE_VENUES__FIX__{k.upper()} in the environment")
                               for k in secrets])

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _check_env_names(settings_cls: type[BaseSettings], env_vars: Any) -> None:
    """Reject ``FLOWROUTE_*`` variables that name no setting (pydantic-settings ignores them)."""
    prefix = ENV_PREFIX.lower()
    fields = set(settings_cls.model_fields)
    unknown = []
    for name in env_vars:
        lowered = name.lower()
        if lowered.startswith(prefix):
            top = lowered[len(prefix) :].split("__", 1)[0]
            if top not in fields:
                unknown.append(name.upper())
    if unknown:
        raise ConfigError([(n, "unknown setting (no such key; check the FLOWROUTE_ variable name)") for n in sorted(unknown)])


class FixSettings(_Section):
    """A FIX 4.2 / 4.4 initiator venue, adapter id ``fix`` (README "A FIX venue").

    Credentials (Username 553, Password 554) are secrets: environment only
    (``FLOWROUTE_VENUES__FIX__USERNAME`` / ``__PASSWORD``), never a profile file; masked in
    every dump and log line. Routing to ``fix`` takes an explicit policy
    (``routing.policy.live = "fix"`` with ``live`` removed from ``routing.blocked_modes``).
    """

    host: str = Field("127.0.0.1", min_length=1, description="Acceptor host.")
    port: int = Field(..., ge=1, le=65535, description="Acceptor TCP port.")
    begin_string: Literal["FIX.4.2", "FIX.4.4"] = Field("FIX.4.4", description="BeginString (8).")
    sender_comp_id: str = Field(..., min_length=1, description="Our SenderCompID (49).")
    target_comp_id: str = Field(..., min_length=1, description="The acceptor's CompID (56).")
    heartbeat_s: int = Field(30, ge=1, le=3600, description="HeartBtInt (108), seconds.")
    reset_on_logon: bool = Field(False, description="Send ResetSeqNumFlag (141=Y) at every Logon (both sides restart at 1).")
    reconnect_initial_s: Seconds = Field(0.2, description="First reconnect delay (seconds), doubling, ±20% jitter.")
    reconnect_max_s: Seconds = Field(10.0, description="Reconnect delay cap (seconds).")
    request_timeout_s: Seconds = Field(1.5, description="Wait for the answer to a request before it is ambiguous "
                                                        "(seconds; keep below timeouts.attempt_s).")
    logon_wait_s: NonNegSeconds = Field(1.0, description="How long a request waits for a logon before it is not delivered (seconds).")
    order_status_request: bool = Field(True, description="Ask OrderStatusRequest (H) on lookups (a peer that rejects it makes lookups unknown).")
    store_dir: Path | None = Field(None, description="Sequence-number store (default: <state_dir>/fix).")
    store_fsync: bool = Field(False, description="fdatasync the sequence numbers on every message (survives power loss, not only a killed process).")
    symbols: dict[str, str] = Field(default_factory=dict, description="Runtime symbol -> venue Symbol (55); unmapped symbols are sent as they are.")
    account: str | None = Field(None, description="Account (1) sent on every order, if set.")
    tls: bool = Field(False, description="Connect with TLS (the ssl module's default verification).")
    tls_ca_file: Path | None = Field(None, description="CA bundle that verifies the acceptor's certificate (TLS).")
    tls_server_name: str | None = Field(None, description="Server name checked in the certificate (default: host).")
    inbox_keep: int = Field(1_000, ge=0, description=(
        "Received application messages (ExecutionReports) kept on disk beside the sequence numbers and applied again at start, "
        "so a report whose MsgSeqNum was passed just before a crash is not lost (0: off; off too when journal.enabled is false)."))
    max_finished_orders: int = Field(10_000, ge=1, description=(
        "Finished orders the FIX adapter keeps in memory (the latest; older ones leave, their fills stay in its positions; "
        "live orders always stay)."))
    username: SecretStr | None = Field(None, description="Username (553): environment only, never logged.")
    password: SecretStr | None = Field(None, description="Password (554): environment only, never logged.")
    data_dictionary: Path | None = Field(None, description=(
        "QuickFIX-format XML data dictionary of begin_string (e.g. QuickFIX's FIX44.xml): every received message is checked "
        "against it and a bad one answered with Reject (35=3) and its SessionRejectReason (373); unset: session-level checks only."))
    validate_user_defined_fields: bool = Field(True, description=(
        "With data_dictionary: reject tags 5000 and up that it does not define (QuickFIX ValidateUserDefinedFields)."))
    caller_reads: bool = Field(True, description=(
        "A thread waiting for an order's answer (Runtime.submit(...).result()) reads the FIX socket itself instead of "
        "being woken by the session's reader thread (leader/follower; plain TCP only, not with tls; false: only the session thread reads)."))

    @field_validator("data_dictionary")
    @classmethod
    def _dictionary_ok(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """The file must load (protocols/venues/fix/_dictionary.py) and describe ``begin_string``."""
        if value is None:
            return value
        from protocols.venues.fix._dictionary import DataDictionary, DictionaryError

        try:
            dictionary = DataDictionary.load(value)
        except DictionaryError as exc:
            raise ValueError(str(exc)) from None
        begin = info.data.get("begin_string")
        if begin is not None and dictionary.begin_string != begin:
            raise ValueError(f"{value} is a {dictionary.begin_string} dictionary, but begin_string is {begin}")
        return value

    @field_validator("reconnect_max_s")
    @classmethod
    def _reconnect_ok(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("reconnect_initial_s")
        if initial is not None and value < initial:
            raise ValueError(f"must be >= venues.fix.reconnect_initial_s ({initial})")
        return value

    @field_validator("sender_comp_id", "target_comp_id", "host")
    @classmethod
    def _no_soh(cls, value: str) -> str:
        if "\x01" in value or "=" in value or not value.strip():
            raise ValueError("must be non-empty text without SOH or '='")
        return value.strip()


class VenuesSettings(_Section):
    """Real venues; each is registered by the default adapter registry only when its section is set."""

    fix: FixSettings | None = Field(None, description="FIX initiator venue (adapter id 'fix').")


# --------------------------------------------------------------------------- root


class Settings(BaseSettings):
    """All flowroute settings (README.md, Configuration): frozen, validated, defaults documented per field.

    Build with ``load_settings()`` (or ``Settings(**overrides)``, which reads the same
    sources). Raises ``ConfigError`` naming every bad key.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
        case_sensitive=False,
    )

    profile: str = Field("default", description="The TOML profile these settings were loaded with.")
    state_dir: Path = Field(
        Path("var"),
        description="Directory of the journal, audit log and paper book; a relative path is relative to the "
                    "process's current directory (default ./var). The CLI names it in its start-up line.")
    journal: JournalSettings = Field(default_factory=JournalSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    paper: PaperSettings = Field(default_factory=PaperSettings)
    venues: VenuesSettings = Field(default_factory=VenuesSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    pnl: PnlSettings = Field(default_factory=PnlSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    adapters: dict[str, AdapterOverrides] = Field(
        default_factory=dict, description="adapter id → overrides of [timeouts], [retry], [throttle], [breaker]."
    )
    venue_api_key: SecretStr | None = Field(None, description="Venue API key (never logged or dumped).")
    venue_api_secret: SecretStr | None = Field(None, description="Venue API secret (never logged or dumped).")
    _adapter_settings: dict[str, AdapterSettings] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError.from_validation_error(exc) from exc
        except ConfigError:
            raise
        except SettingsError as exc:  # e.g. a FLOWROUTE_* JSON value that does not parse
            found = re.search(r'field "([^"]+)"', str(exc))
            key = found.group(1) if found else ""
            raise ConfigError([(key, f"cannot parse the environment value ({exc}); dicts and lists must be JSON")]) from exc
        self._adapter_settings = self._merge_adapter_overrides()

    def _merge_adapter_overrides(self) -> dict[str, AdapterSettings]:
        """Each overridden adapter's effective sections; raises ``ConfigError`` naming
        ``adapters.<id>.<section>.<key>`` for an unknown key or a bad (merged) value."""
        routed = sorted(set(self.routing.policy.values()))
        errors: list[tuple[str, str]] = []
        merged: dict[str, AdapterSettings] = {}
        for adapter_id, overrides in self.adapters.items():
            if adapter_id not in routed:
                errors.append((f"adapters.{adapter_id}", f"no route uses adapter {adapter_id!r} (routed adapters: {', '.join(routed)})"))
                continue
            sections: dict[str, _Section] = {}
            for name, model in _OVERRIDABLE.items():
                given = getattr(overrides, name)
                if not given:
                    sections[name] = getattr(self, name)
                    continue
                try:
                    sections[name] = model.model_validate({**getattr(self, name).model_dump(), **given})
                except ValidationError as exc:
                    prefix = f"adapters.{adapter_id}.{name}."
                    errors += [(prefix + key, message) for key, message in ConfigError.from_validation_error(exc).errors]
            if len(sections) == len(_OVERRIDABLE):
                merged[adapter_id] = AdapterSettings(**sections)
        if errors:
            raise ConfigError(errors)
        return merged

    def for_adapter(self, adapter_id: str) -> AdapterSettings:
        """The timeouts, retry, throttle and breaker settings of ``adapter_id``: the global
        sections with its ``[adapters.<adapter_id>.*]`` overrides applied."""
        found = self._adapter_settings.get(adapter_id)
        if found is not None:
            return found
        return AdapterSettings(timeouts=self.timeouts, retry=self.retry, throttle=self.throttle, breaker=self.breaker,
                               tracking=self.tracking)

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, value: str) -> str:
        if not _PROFILE_NAME.fullmatch(value):
            raise ValueError("letters, digits, '_' and '-' only")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """init kwargs > ``FLOWROUTE_*`` environment > TOML profile > defaults."""
        env_vars = getattr(env_settings, "env_vars", os.environ)
        _check_env_names(settings_cls, env_vars)
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        name = init_kwargs.get("profile") or env_vars.get(f"{ENV_PREFIX.lower()}profile") or "default"
        if not isinstance(name, str):
            raise ConfigError([("profile", f"must be a string (got {name!r})")])
        directory = _profile_dir.get() or DEFAULT_PROFILE_DIR
        return (init_settings, env_settings, _ProfileSource(settings_cls, name, directory))

    def redacted_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every setting; secrets appear as ``"**********"``.

        Decimals are strings, paths strings, tuples lists.
        """
        data = self.model_dump(mode="json")
        url = data.get("journal", {}).get("url")
        if url:
            data["journal"]["url"] = re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:" + _REDACTED + "@", url)
        for name in _SECRET_FIELDS:
            if data.get(name) is not None:
                data[name] = _REDACTED
        return data


def load_settings(profile: str | None = None, *, profile_dir: Path | None = None, **overrides: Any) -> Settings:
    """Build ``Settings`` from overrides > ``FLOWROUTE_*`` env > TOML profile > defaults.

    ``profile``: the profile name (else ``FLOWROUTE_PROFILE``, else ``"default"``);
    ``profile_dir``: where ``<profile>.toml`` lives (default: the packaged ``config/profiles``);
    ``overrides``: top-level settings, nested sections as dicts or models
    (``load_settings(breaker={"window_size": 7})``).

    Raises ``ConfigError`` (a ``ValueError``) for an unknown profile (listing the known ones),
    an unknown key, or an invalid value, naming each dotted key.
    """
    if profile is not None:
        overrides["profile"] = profile
    token = _profile_dir.set(Path(profile_dir) if profile_dir is not None else None)
    try:
        return Settings(**overrides)
    finally:
        _profile_dir.reset(token)
