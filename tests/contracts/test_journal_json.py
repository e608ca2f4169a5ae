"""``OrderIntent.journal_json()`` / ``ExecutionContext.journal_json()`` (protocols/model/intents.py):
the claim's JSON, computed once per instance, cached, invisible to pydantic, and made by
``Runtime.submit`` in the sender's thread when the journal is durable (docs/DESIGN.md, Durability)."""

from __future__ import annotations

import copy
import pickle
import sqlite3
from decimal import Decimal as D

from conftest import ctx, market, quote

from protocols import ExecutionContext, OrderIntent
from protocols.model import intents as _intents


def limit(**kw) -> OrderIntent:
    args = dict(client_order_id="j-1", symbol="BTC/USDT", side="BUY", order_type="LIMIT", quantity=D("1.50"),
                limit_price=D("39400.00"), time_in_force="IOC", strategy_id="s1", metadata={"k": 1})
    args.update(kw)
    return OrderIntent(**args)


def test_journal_json_is_model_dump_json_cached() -> None:
    intent, context = limit(), ExecutionContext(mode="paper", account_id="a-1", strategy_id="s")
    text = intent.journal_json()
    assert text == intent.model_dump_json() and intent.journal_json() is text
    assert OrderIntent.model_validate_json(text) == intent
    ctext = context.journal_json()
    assert ctext == context.model_dump_json() and context.journal_json() is ctext
    assert ExecutionContext.model_validate_json(ctext) == context


def test_the_cache_is_invisible_to_pydantic_and_not_copied_into_other_values() -> None:
    a, b = limit(), limit()
    a.journal_json()
    assert a == b and a.model_dump() == b.model_dump() and repr(a) == repr(b)
    assert "_json" not in a.__dict__ and a.__pydantic_private__ is None
    capped = a.model_copy(update={"limit_price": D("39300")})  # what the ledger does on a slippage cap
    assert capped.journal_json() == capped.model_dump_json() != a.journal_json()
    plain = OrderIntent(client_order_id="p-1", symbol="BTC/USDT", side="SELL", order_type="MARKET",
                        quantity=D("0.25"))  # default metadata: picklable, deep-copyable
    plain.journal_json()
    for other in (copy.copy(a), a.model_copy(), copy.deepcopy(plain), pickle.loads(pickle.dumps(plain))):
        src = a if other.metadata else plain
        assert other == src and other.journal_json() == src.journal_json()
    assert b"_json" not in pickle.dumps(plain)  # the cache is not pickled
    context = ExecutionContext(mode="paper", account_id="a-1")
    context.journal_json()
    moved = context.model_copy(update={"account_id": "a-2"})
    assert moved.journal_json() == moved.model_dump_json() != context.journal_json()


def test_a_durable_runtime_makes_the_claim_json_in_the_senders_thread_and_journals_it(make_runtime) -> None:
    rt = make_runtime(durable=True)
    rt.on_market(quote())
    intent, context = market("jj-1"), ctx(account="acc-jj")
    future = rt.submit(intent, context)
    # made by submit itself (the caller's thread), before any actor ran the claim
    assert _intents._cached_json(intent) == intent.model_dump_json()
    assert _intents._cached_context_json(context) == context.model_dump_json()
    assert future.result(timeout=10).status.value == "FILLED"
    rt.flush()
    conn = sqlite3.connect(f"file:{rt.journal_path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT intent_json, context_json FROM idempotency WHERE client_order_id = 'jj-1'").fetchone()
    finally:
        conn.close()
    assert row == (intent.model_dump_json(), context.model_dump_json())
