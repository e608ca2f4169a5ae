"""prometheus_client's internals, in one place: the per-order updates of the order metrics without
the checks prometheus_client repeats on every call.

Every finished order counts in ``exec_orders_total`` and observes ``exec_latency_ms`` and
``exec_slippage_bps`` (``actors/observability/metrics.py`` ``Metrics.order_finished``). Through the
public API each update re-checks that the series is observable, validates the amount, and a
histogram walks its buckets in Python: about 270 bytecodes and eight Python calls per order, on
the ledger's thread. A series that was observable when its child was made stays observable, and
the amounts are the runtime's own, so this module binds, once per series, what those calls come
down to: the value's own ``inc`` (prometheus_client's ``MutexValue`` or, in multiprocess mode, its
``MultiProcessValue``) and, for a histogram, its bucket found by ``bisect`` over its sorted upper
bounds (the first bound >= the amount: the bucket ``observe``'s loop picks; a NaN is in none).

==================================  =================================================================
prometheus_client's private name    what it is used for here
==================================  =================================================================
``Histogram._upper_bounds``         the sorted bucket bounds, ``+Inf`` last
``Histogram._buckets``              one value per bound: :func:`observer` increments the one found
``Histogram._sum``                  the sum of observations: :func:`observer` adds the amount
``Counter._value``                  the counter's value: :func:`adder` adds the amount
==================================  =================================================================

Pinned: :data:`TESTED_PROMETHEUS` lists the prometheus_client ``major.minor`` versions
``tests/observability/test_prometheus_compat.py`` proved these functions equal to the public
``observe``/``inc`` with (the same exposition text for the same updates). With any other version
both functions return the public bound methods, so nothing here depends on internals it was not
tested with.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

#: prometheus_client ``(major, minor)`` versions the equivalence tests ran on
TESTED_PROMETHEUS: tuple[tuple[int, int], ...] = ((0, 26),)


def _installed() -> tuple[int, int]:
    try:
        major, minor = version("prometheus_client").split(".")[:2]
        return int(major), int(minor)
    except (ValueError, ImportError):  # no metadata or an odd version string: the public path
        return (0, 0)


#: True when the installed prometheus_client is one of :data:`TESTED_PROMETHEUS`
ENABLED = _installed() in TESTED_PROMETHEUS


def observer(histogram: Any) -> Callable[[float], None]:
    """``histogram.observe`` for an observable histogram series (a child from ``labels()``, or a
    histogram without labels), as a function of the amount; the public method when not
    :data:`ENABLED`. Raises ``AttributeError`` for a labelled parent (it has no values)."""
    if not ENABLED:
        return histogram.observe
    bounds = tuple(histogram._upper_bounds)
    incs = tuple(bucket.inc for bucket in histogram._buckets)
    add_to_sum = histogram._sum.inc
    n = len(bounds)
    if len(incs) != n:
        raise AttributeError("a histogram series with one value per bucket bound is needed")

    def observe(amount: float) -> None:
        add_to_sum(amount)
        if amount == amount:  # a NaN is in no bucket: every comparison of observe's loop is false
            i = bisect_left(bounds, amount)
            if i < n:
                incs[i](1)

    return observe


def adder(counter: Any) -> Callable[[float], None]:
    """``counter.inc`` for an observable counter series, taking the amount (>= 0: the caller's
    own; the public method refuses a negative one); the public method when not :data:`ENABLED`."""
    if not ENABLED:
        return counter.inc
    return counter._value.inc
