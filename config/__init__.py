"""flowroute configuration (README.md, Configuration): pydantic-settings models, defaults and TOML profiles.

Example::

    >>> from config import load_settings
    >>> settings = load_settings()            # doctest: +SKIP
    >>> settings.breaker.window_size          # doctest: +SKIP
    20
"""

from loguru import logger as _logger

from ._settings import (
    DEFAULT_PROFILE_DIR,
    AdapterOverrides,
    AdapterSettings,
    AlertSettings,
    BreakerSettings,
    ConfigError,
    DispatchSettings,
    FixSettings,
    IdempotencySettings,
    InstrumentSettings,
    JournalSettings,
    LoggingSettings,
    MetricsSettings,
    OrderSettings,
    PaperSettings,
    PnlSettings,
    ReconcileSettings,
    RetentionSettings,
    RetrySettings,
    RiskSettings,
    RoutingSettings,
    SafetySettings,
    Settings,
    SupervisorSettings,
    SyncSettings,
    ThrottleSettings,
    TimeoutSettings,
    TrackingSettings,
    VenuesSettings,
    known_profiles,
    load_settings,
)

__all__ = [
    "DEFAULT_PROFILE_DIR",
    "AdapterOverrides",
    "RetentionSettings",
    "AlertSettings",
    "PnlSettings",
    "AdapterSettings",
    "BreakerSettings",
    "ConfigError",
    "DispatchSettings",
    "FixSettings",
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
    "VenuesSettings",
    "known_profiles",
    "load_settings",
]

# A library is silent until its host opts in (loguru's convention for libraries):
# ``logger.enable("config")`` or ``flowroute.enable_logging()`` (README, "Logging").
_logger.disable("config")
