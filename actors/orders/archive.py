"""A terminal order's whole ledger record as one JSON text: what the ledger keeps of an order it
moved out of memory (the ``order_archive`` table of the ledger journal, ``actors/journal/sqlite.py``).

Bounded memory (docs/DESIGN.md "Durability"): the ledger keeps open orders and a bounded cache
of recent terminal ones; older terminal orders are archived and read back on demand —
``rt.order(id)`` gets the archived report as it was (exact: the report is stored, not
recomputed), and a late venue event for an archived order rehydrates the record
(:func:`restore_record`) so it is applied, never dropped.

The JSON holds ``report`` (``ExecutionReport.model_dump(mode="json")`` of the record's
snapshot) and what a report does not carry: order type, quantity, limit price, time in force,
adapter id, arrival price, the exact fill notional, a capped limit's original price, the
synthetic fills not yet covered by per-trade ones, the creation time and every transition
``[seq, ts, from, to, cause]``.

Example::

    text = archive_json(rec)
    archived_report(text) == rec.snapshot()      # True
    restore_record(text).transitions == rec.transitions
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from protocols import ExecutionReport, Fill, LifecycleState, OrderStatus

from .books import OrderRecord, Transition


def archive_json(rec: OrderRecord) -> str:
    """The record ``rec`` as one JSON text (see the module docstring).

    The report is pydantic's own JSON of it (``model_dump_json``: the values
    ``model_dump(mode="json")`` gives, written by pydantic-core) and the rest is written by orjson,
    spliced into one object: ~17 µs per order instead of ~40 with ``json.dumps`` of the whole dict.
    Times in UTC (the runtime's clocks) go to orjson as they are: it writes a UTC time exactly as
    ``isoformat()`` does, without a call per time (~1 µs each, five or more per order); a time in
    another zone is written by ``isoformat()`` (orjson drops an offset's seconds). json.dumps
    writes what orjson or pydantic-core refuse (a lone surrogate in a cause, a datetime subclass).
    Not hashed or compared as text anywhere: only parsed back (:func:`archived_report`,
    :func:`restore_record`).
    """
    created = rec.created_ts
    transitions: list[list[Any]] | None = None
    if created.tzinfo is UTC:
        transitions = []
        for t in rec.transitions:  # [seq, ts, from, to, cause]: orjson writes an enum as its value
            if t[1].tzinfo is not UTC:
                transitions = None
                break
            transitions.append(list(t))
    report = rec.snapshot()
    try:
        if transitions is None:
            return '{"report":' + report.model_dump_json() + "," + orjson.dumps(_rest(rec, created.isoformat(), _iso(rec)))[1:].decode()
        return '{"report":' + report.model_dump_json() + "," + orjson.dumps(_rest(rec, created, transitions))[1:].decode()
    except (TypeError, ValueError):  # orjson and pydantic-core refuse a lone surrogate; json.dumps escapes it
        return json.dumps({"report": report.model_dump(mode="json"), **_rest(rec, created.isoformat(), _iso(rec))},
                          separators=(",", ":"))


def _iso(rec: OrderRecord) -> list[list[Any]]:
    """The record's transitions ``[seq, ts, from, to, cause]`` as plain JSON values (times by ``isoformat``)."""
    return [[t.seq, t.ts.isoformat(), t.from_status._value_, t.to_status._value_, t.cause] for t in rec.transitions]


def _rest(rec: OrderRecord, created: Any, transitions: list[list[Any]]) -> dict[str, Any]:
    """What the archived record holds besides its report (``created`` and ``transitions`` as given)."""
    return {
        "order_type": rec.order_type._value_,  # enum ``_value_``: what ``.value`` returns, without the property call
        "quantity": str(rec.quantity),
        "limit_price": None if rec.limit_price is None else str(rec.limit_price),
        "time_in_force": rec.time_in_force,
        "adapter_id": rec.adapter_id,
        "arrival_px": None if rec.arrival_px is None else str(rec.arrival_px),
        "notional": str(rec.notional),
        "price_capped_from": None if rec.price_capped_from is None else str(rec.price_capped_from),
        "synthetic": None if rec.synthetic is None else [f.model_dump(mode="json") for f in rec.synthetic],
        "created_ts": created,
        "prior": None if rec.lifecycle.prior is None else rec.lifecycle.prior._value_,
        "transitions": transitions,
    }


def archived_report(text: str) -> ExecutionReport:
    """The report the archived record had when it was archived. Raises ``ValueError`` if unreadable."""
    return ExecutionReport.model_validate(json.loads(text)["report"])


def archived_transitions(text: str) -> list[tuple[int, float, str, str, str]]:
    """``(seq, ts epoch s, from, to, cause)`` of every archived transition (recovery merges them with
    the journaled rows, which compaction deletes)."""
    return [(seq, datetime.fromisoformat(ts).timestamp(), a, b, cause) for seq, ts, a, b, cause in json.loads(text)["transitions"]]


def restore_record(text: str) -> OrderRecord:
    """The ledger record back from :func:`archive_json` (overfill and anomaly notes are not kept).
    Raises ``ValueError``/``KeyError`` if the text is not an archived record."""
    d = json.loads(text)
    report = ExecutionReport.model_validate(d["report"])
    if report.side is None:
        raise ValueError(f"archived order {report.client_order_id} has no side")
    rec = OrderRecord(
        report.client_order_id, report.account_id, report.symbol, report.side, d["order_type"], Decimal(d["quantity"]),
        None if d["limit_price"] is None else Decimal(d["limit_price"]), d["time_in_force"], d["adapter_id"], report.route,
        venue_order_id=report.venue_order_id,
        arrival_px=None if d["arrival_px"] is None else Decimal(d["arrival_px"]),
        created_ts=datetime.fromisoformat(d["created_ts"]),
    )
    rec.lifecycle = LifecycleState(report.status, None if d.get("prior") is None else OrderStatus(d["prior"]))
    rec.fills = list(report.fills)
    rec.trade_ids = {f.trade_id for f in report.fills}
    rec.cum_qty = report.cum_qty
    rec.avg_px = report.avg_px
    rec.fees = report.fees
    rec.error = report.error
    rec.attempts = report.attempts
    # its attribution (the report holds it): a late fill books to the order's strategy, a re-archive keeps it
    rec.strategy_id, rec.session_id, rec.correlation_id = report.strategy_id, report.session_id, report.correlation_id
    rec.updated_ts = report.ts
    rec.notional = Decimal(d["notional"])
    rec.price_capped_from = None if d.get("price_capped_from") is None else Decimal(d["price_capped_from"])
    rec.synthetic = None if d.get("synthetic") is None else [Fill.model_validate(f) for f in d["synthetic"]]
    rec.transitions = [Transition(seq, datetime.fromisoformat(ts), OrderStatus(a), OrderStatus(b), cause)
                       for seq, ts, a, b, cause in d["transitions"]]
    return rec
