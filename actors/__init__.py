"""flowroute actors: the supervisor, router, idempotency store, circuit breakers, adapters,
ledger and event bus, and the :class:`Runtime` facade that owns them (docs/DESIGN.md, One order).

Example::

    from actors import Runtime
    with Runtime.start() as rt:
        future = rt.submit(intent, context)
        report = future.result(timeout=5)
"""

from loguru import logger as _logger

from ._books import Position
from ._pnl import DailyPnl
from ._breaker import BreakerSnapshot, BreakerState
from ._clock import Clock, FakeClock, RealClock
from ._hooks import HookDenial, PreTradeCheck, PreTradeHook
from ._registry import AdapterRegistry, default_registry
from ._risk import TradingState
from ._runtime import Runtime, Subscription
from ._statelock import StateDirInUse
from ._supervisor_actor import ChildHealth, Health
from ._sync import AdapterSync, BrokerSyncReport, StateDifference

__all__ = [
    "AdapterRegistry",
    "AdapterSync",
    "BrokerSyncReport",
    "BreakerSnapshot",
    "BreakerState",
    "ChildHealth",
    "DailyPnl",
    "Clock",
    "FakeClock",
    "Health",
    "HookDenial",
    "Position",
    "PreTradeCheck",
    "PreTradeHook",
    "RealClock",
    "StateDifference",
    "StateDirInUse",
    "Runtime",
    "Subscription",
    "TradingState",
    "default_registry",
]

# A library is silent until its host opts in (loguru's convention for libraries):
# ``logger.enable("actors")`` or ``flowroute.enable_logging()`` (README, "Logging").
_logger.disable("actors")
