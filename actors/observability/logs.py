"""Logging with loguru: lifecycle at INFO, per-order detail at DEBUG, errors with full detail.

flowroute is a library: its packages call ``logger.disable(...)`` on import (loguru's
convention), so nothing reaches any sink until the host opts in (``flowroute.enable_logging()``
or ``logger.enable("actors")`` …). ``RuntimeLogging(settings.logging)`` is what a runtime adds,
removed at stop (loguru's logger is process-wide; each runtime only touches what it added):

- with ``logging.json_path``: a JSON-lines sink (loguru ``serialize=True``) at ``logging.level``
  for flowroute's own records. Naming a file is an opt-in: flowroute's loggers are enabled while
  such a runtime runs (and disabled again after the last one stops, unless the host enabled
  them with ``flowroute.enable_logging()``); they then also reach the host's own sinks, at
  those sinks' levels;
- the runtime's own lifecycle lines honour ``logging.level`` (:meth:`RuntimeLogging.allows`):
  the start line is INFO, the settings dump DEBUG;
- per-order DEBUG lines are only built when ``logging.level`` is DEBUG or TRACE
  (:attr:`RuntimeLogging.order_detail`), because a log call costs about as much as an actor hop.

pykka's own records (an unexpected message, an exception returned to an asker, an unhandled
exception, a BaseException stopping every actor) are standard ``logging`` records of the
``pykka`` logger. :class:`PykkaBridge`, installed on that logger when this module is imported,
hands each of them to loguru as a record named ``pykka`` (level, message and exception kept), so
they reach the same sinks as flowroute's own records, under the same opt-in (they are flowroute's
kernel's records: silent until the host enables flowroute's logging; the JSON sink includes
them). pykka's logger is set to DEBUG only if nobody set its level (the sinks filter by level);
the host's own ``logging`` handlers still get only what its root level lets through.

Secrets: settings hold credentials as ``SecretStr`` and only ``Settings.redacted_dict()`` is ever
logged; reports and events carry no credentials; a redacting patcher masks any configured
secret value that still reaches a record (defence in depth).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:  # loguru's record type exists only for type checkers
    from loguru import Record

#: The loguru names of flowroute's records.
LOGGER_NAMES: tuple[str, ...] = ("actors", "protocols", "config", "flowroute")
_LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}

_lock = threading.Lock()
_json_runtimes = 0  # runtimes with a JSON sink: they keep flowroute's loggers enabled
_host_enabled = False  # the host opted in with enable_logging(): never disable behind its back


def enable_logging() -> None:
    """The host's opt-in: let flowroute's records reach its loguru sinks (see the module doc)."""
    global _host_enabled
    with _lock:
        _host_enabled = True
        for name in LOGGER_NAMES:
            logger.enable(name)


def disable_logging() -> None:
    """Silence flowroute's records again (the state on import), unless a runtime writes a JSON log."""
    global _host_enabled
    with _lock:
        _host_enabled = False
        if _json_runtimes == 0:
            for name in LOGGER_NAMES:
                logger.disable(name)


#: the loguru name of pykka's records handed over by :class:`PykkaBridge`
PYKKA_NAME = "pykka"


def _is_flowroute(record: Record) -> bool:
    name = record["name"] or ""
    return name.split(".", 1)[0] in LOGGER_NAMES or name == PYKKA_NAME


class PykkaBridge(logging.Handler):
    """A ``logging`` handler on pykka's logger that hands every record to loguru (the
    InterceptHandler of loguru's documentation): level name, message, exception and the
    origin (pykka's module, function and line) kept; the loguru record is named ``pykka``.

    With ``relay`` (set when the bridge lowered pykka's level to DEBUG and stopped its
    propagation), a record is also handed to the root logger's handlers when the root logger
    is enabled for its level: the host's ``logging`` setup sees what it saw before the bridge.
    """

    def __init__(self, level: int = logging.DEBUG, *, relay: bool = False) -> None:
        super().__init__(level)
        self.relay = relay

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        origin: Any = {"name": PYKKA_NAME, "function": record.funcName, "line": record.lineno, "module": record.module}
        try:
            logger.patch(lambda r: r.update(origin)).opt(exception=record.exc_info or None).log(level, record.getMessage())
        except Exception:  # noqa: BLE001 - a log record must never break an actor
            self.handleError(record)
        if self.relay:
            root = logging.getLogger()
            if root.handlers and root.isEnabledFor(record.levelno):
                root.handle(record)


def install_pykka_bridge() -> PykkaBridge:
    """Install :class:`PykkaBridge` on pykka's logger once (idempotent; returns the one installed).

    When nobody set pykka's level, it is lowered to DEBUG (so every record reaches the bridge)
    and the bridge relays to the root logger what the root logger's level lets through, in
    place of propagation (which would hand DEBUG records to the host's handlers)."""
    pykka_logger = logging.getLogger(PYKKA_NAME)
    with _lock:
        for handler in pykka_logger.handlers:
            if isinstance(handler, PykkaBridge):
                return handler
        own_level = pykka_logger.level == logging.NOTSET and pykka_logger.propagate
        bridge = PykkaBridge(logging.DEBUG, relay=own_level)
        pykka_logger.addHandler(bridge)
        if own_level:
            pykka_logger.setLevel(logging.DEBUG)
            pykka_logger.propagate = False
        return bridge


class RuntimeLogging:
    """This runtime's loguru sinks and level; :meth:`close` removes what it added."""

    def __init__(self, logging_settings: Any, secrets: tuple[str, ...] = ()) -> None:
        global _json_runtimes
        self.level = logging_settings.level
        self.order_detail = self.level in ("DEBUG", "TRACE")
        self._handler_ids: list[int] = []
        self._enabled = False
        self._secrets = tuple(s for s in secrets if s)
        if logging_settings.json_path is not None:
            self._handler_ids.append(
                logger.add(str(logging_settings.json_path), level=self.level, serialize=True, enqueue=False,
                           filter=self._redact_own)
            )
            with _lock:
                _json_runtimes += 1
                self._enabled = True
                for name in LOGGER_NAMES:
                    logger.enable(name)

    def allows(self, level: str) -> bool:
        """True when a record at ``level`` passes ``logging.level`` (for the runtime's own lines)."""
        return _LEVELS.get(level, 0) >= _LEVELS.get(self.level, 0)

    def _redact_own(self, record: Record) -> bool:
        if not _is_flowroute(record):
            return False
        return self._redact(record) if self._secrets else True

    def _redact(self, record: Record) -> bool:
        message = record["message"]
        for secret in self._secrets:
            if secret in message:
                record["message"] = message.replace(secret, "**********")
        return True

    def close(self) -> None:
        """Remove the sinks this runtime added; the last JSON-logging runtime to stop silences
        flowroute's loggers again unless the host enabled them (idempotent)."""
        global _json_runtimes
        for handler_id in self._handler_ids:
            try:
                logger.remove(handler_id)
            except ValueError:
                pass
        self._handler_ids.clear()
        if self._enabled:
            self._enabled = False
            with _lock:
                _json_runtimes -= 1
                if _json_runtimes == 0 and not _host_enabled:
                    for name in LOGGER_NAMES:
                        logger.disable(name)


install_pykka_bridge()
