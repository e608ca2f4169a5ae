"""Logging with loguru (SPEC §12): lifecycle at INFO, per-order detail at DEBUG, errors with full detail.

``RuntimeLogging(settings.logging)`` adds this runtime's sinks and removes them at stop
(loguru's logger is process-wide; each runtime only touches the handlers it added):

- an optional JSON-lines sink (``logging.json_path``), structured (loguru ``serialize=True``),
  at ``logging.level``;
- per-order DEBUG lines are only built when ``logging.level`` is DEBUG or TRACE
  (:attr:`RuntimeLogging.order_detail`), because a log call costs about as much as an actor hop.

Secrets: settings hold credentials as ``SecretStr`` and only ``Settings.redacted_dict()`` is ever
logged; reports and events carry no credentials; a redacting patcher masks any configured
secret value that still reaches a record (defence in depth).
"""

from __future__ import annotations

from typing import Any

from loguru import logger


class RuntimeLogging:
    """This runtime's loguru sinks; :meth:`close` removes them."""

    def __init__(self, logging_settings: Any, secrets: tuple[str, ...] = ()) -> None:
        self.level = logging_settings.level
        self.order_detail = self.level in ("DEBUG", "TRACE")
        self._handler_ids: list[int] = []
        self._secrets = tuple(s for s in secrets if s)
        if logging_settings.json_path is not None:
            self._handler_ids.append(
                logger.add(str(logging_settings.json_path), level=self.level, serialize=True, enqueue=False,
                           filter=self._redact if self._secrets else None)
            )

    def _redact(self, record: dict) -> bool:
        message = record["message"]
        for secret in self._secrets:
            if secret in message:
                record["message"] = message.replace(secret, "**********")
        return True

    def close(self) -> None:
        """Remove the sinks this runtime added (idempotent)."""
        for handler_id in self._handler_ids:
            try:
                logger.remove(handler_id)
            except ValueError:
                pass
        self._handler_ids.clear()
