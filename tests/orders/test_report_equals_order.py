"""The reply a caller gets equals ``rt.order()`` for every terminal path (docs/DESIGN.md "House
plan": one ExecutionReport builder): what the reply says is what the books say, except the
per-request fields (``latency_us``, ``ts``, ``replay``)."""

from __future__ import annotations

import pytest
from _adapters import TestAdapter
from conftest import ctx, limit, market, quote, registry_of, settle

from protocols import OrderStatus

PER_REQUEST = {"latency_us", "ts", "replay"}


def same(reply, stored) -> dict:
    a = reply.model_dump(exclude=PER_REQUEST)
    b = stored.model_dump(exclude=PER_REQUEST)
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


@pytest.mark.parametrize("action,intent,status", [
    ("fill", market, OrderStatus.FILLED),
    ("fill", limit, OrderStatus.FILLED),
    ("reject", market, OrderStatus.REJECTED),
    ("ambiguous", market, OrderStatus.UNKNOWN),
    ("fatal", market, None),
    ("partial_cum", limit, None),
    ("not_delivered", market, None),
    ("partial", limit, None),
    ("accept", limit, OrderStatus.ACCEPTED),
])
def test_the_reply_is_what_rt_order_says(make_runtime, action, intent, status) -> None:
    venue = TestAdapter(default=action)
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}})
    rt.on_market(quote())
    reply = rt.submit(intent(f"eq-{action}"), ctx()).result(timeout=10)
    settle(rt)
    if status is not None:
        assert reply.status is status
    assert same(reply, rt.order(reply.client_order_id)) == {}


def test_a_risk_denial_reply_is_what_rt_order_says(make_runtime) -> None:
    from actors.orders.hooks import HookDenial

    rt = make_runtime(registry=registry_of(TestAdapter()), routing={"policy": {"paper": "test"}},
                      hooks=[lambda check: HookDenial("max_qty", "too much")])
    rt.on_market(quote())
    reply = rt.submit(market("eq-denied"), ctx()).result(timeout=10)
    settle(rt)
    assert reply.status is OrderStatus.DENIED
    assert same(reply, rt.order("eq-denied")) == {}


def test_a_cancel_reply_is_what_rt_order_says(make_runtime) -> None:
    rt = make_runtime(registry=registry_of(TestAdapter(default="accept")), routing={"policy": {"paper": "test"}})
    rt.on_market(quote())
    assert rt.submit(limit("eq-cancel"), ctx()).result(timeout=10).status is OrderStatus.ACCEPTED
    reply = rt.cancel("eq-cancel", "acc-1").result(timeout=10)
    settle(rt)
    assert reply.status is OrderStatus.CANCELED
    assert same(reply, rt.order("eq-cancel")) == {}
