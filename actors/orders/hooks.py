"""Pre-trade hooks: the caller's own validation and risk rules, run in the ledger's risk step.

A hook is any callable ``hook(check: PreTradeCheck) -> HookDenial | None``, registered at
start (``Runtime.start(settings, hooks=[...])``). The ledger runs the hooks in registration
order after its built-in rules (trading state, reduce-only, slippage, notional, budget) have
approved the order, so a hook sees the intent exactly as it will be sent (a limit capped by the
slippage guard included). The first hook that returns a :class:`HookDenial` denies the order:
DENIED with ``E_EXEC_RISK_DENIED``, message ``"<code>: <reason>"`` (the same shape as the
built-in rules' ``"min_notional: ..."``), counted under ``risk:<code>`` in
``exec_reject_total{reason}`` and in ``stats()["errors_by_code"]``; its reservation is released.
A hook that raises, or returns anything but None or a ``HookDenial``, denies the order with
code ``hook_error`` (fail closed: a broken rule never lets an order through).

Hooks run on the ledger's thread, one order at a time: they must be quick and must not block
(no I/O, no asks of the runtime). With no hooks registered the risk step does not change.

Example::

    >>> from decimal import Decimal
    >>> def max_qty(check):
    ...     if check.intent.quantity > Decimal("5"):
    ...         return HookDenial("max_qty", f"quantity {check.intent.quantity} > 5")
    ...     return None
    >>> # Runtime.start(settings, hooks=[max_qty])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loguru import logger

from protocols import ExecutionContext, OrderIntent, Quote

__all__ = ["HookDenial", "PreTradeCheck", "PreTradeHook", "hook_name", "run_hooks", "validate_hooks"]

_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")


@dataclass(frozen=True, slots=True)
class PreTradeCheck:
    """What a pre-trade hook sees (frozen).

    ``intent`` as it will be sent (limit possibly capped by the slippage guard); ``context``
    (account, mode, strategy); ``position_qty`` the account's signed net position in the
    symbol (base units); ``touch`` the last sane quote of the symbol (None before any);
    ``trading_state`` ``"ACTIVE"``, ``"REDUCING"`` or ``"HALTED"``; ``reserved`` the notional
    the built-in rules reserved for this order (quote currency).
    """

    intent: OrderIntent
    context: ExecutionContext
    position_qty: Decimal
    touch: Quote | None
    trading_state: str
    reserved: Decimal


@dataclass(frozen=True, slots=True)
class HookDenial:
    """A hook's "no": ``code`` names the rule (``[a-z][a-z0-9_]*``, at most 48 characters,
    e.g. ``"max_position"``), ``reason`` says why for the report. Raises ``ValueError`` for a
    malformed code."""

    code: str
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise ValueError(f"hook denial code must match [a-z][a-z0-9_]* (at most 48 characters), got {self.code!r}")


PreTradeHook = Callable[[PreTradeCheck], "HookDenial | None"]


def hook_name(hook: Any) -> str:
    """A readable name of ``hook`` for logs (its ``__name__``, else its class name)."""
    return getattr(hook, "__name__", None) or type(hook).__name__


def validate_hooks(hooks: Iterable[Any] | None) -> tuple[PreTradeHook, ...]:
    """The hooks as a tuple; raises ``ValueError`` naming the first one that is not callable."""
    out = tuple(hooks or ())
    for index, hook in enumerate(out):
        if not callable(hook):
            raise ValueError(f"hooks[{index}] must be callable (check) -> HookDenial | None, got {type(hook).__name__}")
    return out


def run_hooks(hooks: tuple[PreTradeHook, ...], check: PreTradeCheck) -> HookDenial | None:
    """Run ``hooks`` in order on ``check``; the first denial, or None when every hook allows.

    Never raises: a hook that raises or answers something else is a ``hook_error`` denial.
    """
    for hook in hooks:
        try:
            verdict = hook(check)
        except Exception as exc:  # noqa: BLE001 - a user's hook that raises denies (fail closed)
            logger.opt(exception=exc).error("pre-trade hook {} raised for {}", hook_name(hook), check.intent.client_order_id)
            return HookDenial("hook_error", f"pre-trade hook {hook_name(hook)} raised {type(exc).__name__}: {exc}"[:300])
        if verdict is None:
            continue
        if isinstance(verdict, HookDenial):
            return verdict
        logger.error("pre-trade hook {} returned {!r}, not None or a HookDenial", hook_name(hook), verdict)
        return HookDenial("hook_error", f"pre-trade hook {hook_name(hook)} returned {type(verdict).__name__}, not None or a HookDenial")
    return None
