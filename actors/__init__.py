"""flowroute actors: the supervisor, router, idempotency store, circuit breakers, adapters,
ledger and event bus, and the :class:`Runtime` facade that owns them (docs/DESIGN.md, One order).

Example::

    from actors import Runtime
    with Runtime.start() as rt:
        future = rt.submit(intent, context)
        report = future.result(timeout=5)
"""

from loguru import logger as _logger

from .breaker.breaker import BreakerSnapshot, BreakerState
from .kernel.clock import Clock, FakeClock, RealClock
from .orders.books import Position
from .orders.hooks import HookDenial, PreTradeCheck, PreTradeHook
from .orders.pnl import DailyPnl
from .orders.risk import TradingState
from .runtime.registry import AdapterRegistry, default_registry
from .runtime.runtime import Runtime, Subscription
from .runtime.statelock import StateDirInUse
from .runtime.sync import AdapterSync, BrokerSyncReport, StateDifference
from .supervision.supervisor import ChildHealth, Health

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
