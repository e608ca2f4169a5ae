"""flowroute contracts: intents, contexts, reports, errors, lifecycle, events, venues.

Everything here is a frozen value (pydantic) or a pure function; money is ``Decimal``.

Example::

    >>> from decimal import Decimal
    >>> from protocols import OrderIntent, ExecutionContext, new_client_order_id
    >>> intent = OrderIntent(client_order_id=new_client_order_id(), symbol="BTC/USDT",
    ...                      side="BUY", order_type="MARKET", quantity=Decimal("0.001"))
    >>> ExecutionContext(mode="paper", account_id="acc-1").mode
    'paper'
"""

from loguru import logger as _logger

from .adapter import (
    DEFAULT_CAPABILITIES,
    AdapterCapabilities,
    AsyncDone,
    AsyncSender,
    BrokerAdapter,
    EventSink,
    HasSession,
    LookupOutcome,
    OrderLookup,
    ReleasesHangs,
    ReportsHealth,
    StartsUp,
    VenueEvent,
    VenueOrder,
    VenueOrderState,
    adapter_capabilities,
    classify_lookup,
    retire_adapter,
    start_adapter,
)
from .model.enums import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    ExecutionMode,
    Liquidity,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from .model.errors import (
    DUPLICATE_CLIENT_ORDER_ID,
    ERROR_TABLE,
    AdapterCrash,
    AdapterError,
    AmbiguousError,
    ErrorCategory,
    ErrorCode,
    ExecError,
    FatalAdapterError,
    IllegalTransition,
    NotDeliveredError,
    VenueRejectedError,
)
from .model.events import (
    ORDER_EVENT_BY_STATUS,
    AdapterCrashed,
    AdapterRestarted,
    AlertCleared,
    VenueSessionChanged,
    ChildGaveUp,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitStateChanged,
    Event,
    LatencySpiked,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFailed,
    OrderFilled,
    OrderPartiallyFilled,
    OrderReconciled,
    OrderRejected,
    OrderSubmitted,
    OrderUnknown,
    OverfillDetected,
    RejectRateSpiked,
    ReconciliationEscalated,
    RemainderResubmitted,
    SubscriberFailed,
    BrokerStateMatched,
    BrokerStateMismatch,
    TradingStateChanged,
    OrderTrackingChanged,
    InlineCallOverran,
    DurableWriteFailed,
    DurableWriteRecovered,
)
from .model.instruments import DEFAULT_INSTRUMENTS, Instrument
from .model.intents import (
    CLIENT_ORDER_ID_PATTERN,
    ExecutionContext,
    OrderIntent,
    new_client_order_id,
    signal_client_order_id,
)
from .model.lifecycle import EVENT_TARGET, TRANSITIONS, LifecycleState, OrderEventType, apply_event, can_apply
from .market.values import Quote, Trade
from .model.base import utc_now
from .market.readers import (
    ErrorCollector,
    ProblemGroup,
    RowError,
    group_problems,
    read_market,
    read_quotes,
    read_trades,
)
from .model.reports import ExecutionReport, Fill, RouteDecision, summarize_fills

__all__ = [name for name in dir() if not name.startswith("_")]

# A library is silent until its host opts in (loguru's convention for libraries):
# ``logger.enable("protocols")`` or ``flowroute.enable_logging()`` (README, "Logging").
_logger.disable("protocols")
