"""flowroute: an actor-based order routing and execution runtime (pykka).

The public API in one import::

    >>> import flowroute as fr
    >>> settings = fr.load_settings("paper")                # doctest: +SKIP
    >>> with fr.Runtime.start(settings) as rt:              # doctest: +SKIP
    ...     rt.on_market(fr.Quote(...))
    ...     report = rt.submit(fr.OrderIntent(...), fr.ExecutionContext(mode="paper", account_id="a")).result(5)

Everything here is re-exported from the packages that own it: the runtime facade and its
snapshots from ``actors``, the contracts (intents, contexts, reports, fills, events, errors,
market data, the ``BrokerAdapter`` protocol) from ``protocols``, the settings from ``config``.

**Logging.** flowroute logs with loguru and, as loguru recommends for libraries, is silent
until the host opts in: the packages call ``logger.disable(...)`` on import. A host enables
them with :func:`enable_logging` (or ``logger.enable("actors")`` etc.); a runtime whose settings
name a ``logging.json_path`` writes its own records there at ``logging.level`` (README, "Logging").
"""

from __future__ import annotations

from importlib import metadata as _metadata

from loguru import logger as _logger

import actors as _actors
import protocols as _protocols
from actors import *  # noqa: F403  (re-exported: see __all__)
from actors.audit.log import VerifyResult
from actors.audit.log import verify as verify_audit_log
from actors.observability.logs import LOGGER_NAMES, disable_logging, enable_logging
from config import ConfigError, Settings, known_profiles, load_settings
from protocols import *  # noqa: F403  (re-exported: see __all__)

try:
    __version__: str = _metadata.version("flowroute")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_logger.disable("flowroute")

__all__ = sorted({
    *_actors.__all__,
    *_protocols.__all__,
    "ConfigError", "Settings", "known_profiles", "load_settings",
    "VerifyResult", "verify_audit_log",
    "LOGGER_NAMES", "enable_logging", "disable_logging", "__version__",
})
