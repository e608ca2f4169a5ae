"""``actors/observability/prometheus_compat``: the order metrics' updates bound to prometheus_client's
values give the exposition the public ``observe``/``inc`` give, for any amounts."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from actors.observability import prometheus_compat
from actors.observability.metrics import Metrics
from actors.observability.prometheus_compat import TESTED_PROMETHEUS, adder, observer
from protocols import ErrorCode, ExecError, ExecutionReport, OrderStatus

_LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000)
_SLIPPAGE = (-50, -10, -5, -1, 0, 1, 5, 10, 50, 100)
_amounts = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([*_LATENCY, *_SLIPPAGE]),
                              st.integers(min_value=-60, max_value=6000)), max_size=20)


def _exposition(registry: CollectorRegistry) -> list[str]:
    # the _created series hold each registry's own creation time
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def _both(update) -> tuple[list[str], list[str]]:
    """``update(registry, fast)`` run once through the public API and once through prometheus_compat."""
    out = []
    for fast in (False, True):
        registry = CollectorRegistry()
        update(registry, fast)
        out.append(_exposition(registry))
    return out[0], out[1]


@given(_amounts, st.booleans())
@example([0.1, 0.05, 5000, 5000.5, math.inf, -math.inf, math.nan, 0.0, -0.0], True)
@example([-50, -50.5, 100, 100.1, math.nan], False)
def test_an_observer_gives_the_exposition_observe_gives(amounts: list, labelled: bool) -> None:
    def update(registry: CollectorRegistry, fast: bool) -> None:
        for name, buckets in (("lat", _LATENCY), ("slip", _SLIPPAGE)):
            metric = Histogram(name, "h", ["adapter"] if labelled else [], registry=registry, buckets=buckets)
            series = metric.labels("paper") if labelled else metric
            observe = observer(series) if fast else series.observe
            for amount in amounts:
                observe(amount)

    public, fast = _both(update)
    assert fast == public


@given(st.lists(st.one_of(st.integers(min_value=0, max_value=10), st.floats(min_value=0, max_value=1e6)), max_size=10))
def test_an_adder_gives_the_exposition_inc_gives(amounts: list) -> None:
    def update(registry: CollectorRegistry, fast: bool) -> None:
        series = Counter("orders", "c", ["status"], registry=registry).labels("FILLED")
        add = adder(series) if fast else series.inc
        for amount in amounts:
            add(amount)

    public, fast = _both(update)
    assert fast == public


def test_a_labelled_parent_is_refused() -> None:
    registry = CollectorRegistry()
    if not prometheus_compat.ENABLED:
        pytest.skip("this prometheus_client is not one the internals were tested with: the public methods are used")
    with pytest.raises(AttributeError):
        observer(Histogram("h", "h", ["adapter"], registry=registry))
    with pytest.raises(AttributeError):
        adder(Counter("c", "c", ["status"], registry=registry))


def test_the_installed_prometheus_client_is_a_tested_one_or_the_public_path_is_used() -> None:
    from importlib.metadata import version

    installed = tuple(int(x) for x in version("prometheus_client").split(".")[:2])
    assert (installed in TESTED_PROMETHEUS) == prometheus_compat.ENABLED
    if not prometheus_compat.ENABLED:
        series = Counter("c", "c", registry=CollectorRegistry())
        assert adder(series) == series.inc


def test_order_finished_counts_what_the_public_calls_count() -> None:
    """``Metrics.order_finished`` (bound updates) against the same series updated through the public API."""
    reports = [
        ExecutionReport(client_order_id="c-1", status=OrderStatus.FILLED, latency_us=120, slippage_bps="1.5"),
        ExecutionReport(client_order_id="c-2", status=OrderStatus.FILLED, latency_us=90_000_000),
        ExecutionReport(client_order_id="c-3", status=OrderStatus.REJECTED, latency_us=400,
                        error=ExecError.of(ErrorCode.E_EXEC_BROKER_REJECTED, "no")),
    ]
    metrics, reference = Metrics(), Metrics()
    for adapter in ("paper", "", "paper"):
        for report in reports:
            metrics.order_finished(adapter, report)
            name = adapter or "none"
            reference.orders.labels(report.status.value, name).inc()
            reference.latency.labels(name).observe(report.latency_us / 1000.0)
            if report.error is not None:
                reference.rejects.labels(report.error.code.value).inc()
            if report.slippage_bps is not None:
                reference.slippage.observe(float(report.slippage_bps))
    assert _exposition(metrics.registry) == _exposition(reference.registry)
