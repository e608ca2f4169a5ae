"""Prometheus metrics of one runtime (docs/DESIGN.md), on a registry of its own.

Each ``Runtime`` has its own ``CollectorRegistry`` so two runtimes in one process never
share or clash on series. Names follow docs/DESIGN.md: ``exec_orders_total{status,adapter}``,
``exec_latency_ms{adapter}`` (histogram), ``exec_reject_total{reason}``,
``exec_slippage_bps`` (histogram), ``exec_circuit_state{adapter}`` (0 closed, 1 open,
2 half-open, 3 forced open, 4 disabled), plus ``exec_restarts_total{child}``,
``exec_replays_total``, ``exec_journal_batch_size`` (histogram), ``exec_inline_overruns_total{adapter}``,
``exec_durable_write_failures_total{store}`` and ``exec_durable_write_pending{store}``.
prometheus_client metrics are thread-safe, so actors update them directly.
"""

from __future__ import annotations

from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from protocols import ExecutionReport

from .prometheus_compat import adder, observer

_BREAKER_VALUE = {"CLOSED": 0, "OPEN": 1, "HALF_OPEN": 2, "FORCED_OPEN": 3, "DISABLED": 4}


class Metrics:
    """The runtime's metric series; methods are called from actor threads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders = Counter("exec_orders", "Orders finished by status and adapter", ["status", "adapter"], registry=r)
        self.latency = Histogram(
            "exec_latency_ms", "Submit-to-report latency in ms", ["adapter"], registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000),
        )
        self.rejects = Counter("exec_reject", "Orders refused by reason (error code or risk rule)", ["reason"], registry=r)
        self.slippage = Histogram("exec_slippage_bps", "Slippage of filled orders vs arrival touch, bps", registry=r,
                                  buckets=(-50, -10, -5, -1, 0, 1, 5, 10, 50, 100))
        self.circuit = Gauge("exec_circuit_state", "Breaker state (0 closed,1 open,2 half-open,3 forced,4 disabled)", ["adapter"], registry=r)
        self.restarts = Counter("exec_restarts", "Supervised restarts by child", ["child"], registry=r)
        self.venue_session = Gauge("exec_venue_session_state",
                                   "Venue session state (0 disconnected, 1 logon sent, 2 active, 3 logout sent)", ["adapter"], registry=r)
        self.replays = Counter("exec_replays", "Idempotent replays served from the journal", registry=r)
        self.batch = Histogram("exec_journal_batch_size",
                               "Claims per journal transaction (group commit; SQLite journal only, an in-memory store has none)", registry=r,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.inline_overruns = Counter("exec_inline_overruns", "Inline (non-blocking) adapter calls that overran the adapter's inline budget",
                                       ["adapter"], registry=r)
        self.durable_write_failures = Counter("exec_durable_write_failures",
                                              "Failed durable writes by store (audit, ledger_journal); each halts trading until retried",
                                              ["store"], registry=r)
        self.durable_write_pending = Gauge("exec_durable_write_pending",
                                           "Records waiting for a durable write that failed (0 when every write went through)", ["store"], registry=r)
        self._server: WSGIServer | None = None
        self._children: dict[tuple, object] = {}
        # the per-order updates, bound once per series (prometheus_compat: no per-call checks)
        self._order_adds: dict[tuple, Any] = {}
        self._latency_observers: dict[str, Any] = {}
        self._slippage_observe = observer(self.slippage)

    def _child(self, metric, *labels: str):
        """The labelled child of ``metric`` (cached: ``labels()`` takes a lock and builds a key)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def order_finished(self, adapter_id: str, report: ExecutionReport) -> None:
        """Count a finished submit (status, adapter), its latency, slippage and error code."""
        adapter = adapter_id or "none"
        status = report.status
        add = self._order_adds.get((status, adapter))
        if add is None:
            add = self._order_adds[(status, adapter)] = adder(self._child(self.orders, status.value, adapter))
        add(1)
        observe = self._latency_observers.get(adapter)
        if observe is None:
            observe = self._latency_observers[adapter] = observer(self._child(self.latency, adapter))
        observe(report.latency_us / 1000.0)
        if report.error is not None:
            self._child(self.rejects, report.error.code.value).inc()
        if report.slippage_bps is not None:
            self._slippage_observe(float(report.slippage_bps))

    def rejected(self, reason: str) -> None:
        """Count a refusal under ``reason``."""
        self._child(self.rejects, reason).inc()

    def replay(self) -> None:
        self.replays.inc()

    def journal_batch(self, size: int) -> None:
        self.batch.observe(size)

    def set_breaker_state(self, adapter_id: str, state: str) -> None:
        self.circuit.labels(adapter_id).set(_BREAKER_VALUE.get(state, -1))

    def set_venue_session(self, adapter_id: str, state: str) -> None:
        """The session state of a venue with a session (FIX)."""
        value = {"DISCONNECTED": 0, "LOGON_SENT": 1, "ACTIVE": 2, "LOGOUT_SENT": 3}.get(state, -1)
        self.venue_session.labels(adapter_id).set(value)

    def inline_overrun(self, adapter_id: str) -> None:
        """Count an inline adapter call that overran its budget."""
        self._child(self.inline_overruns, adapter_id).inc()

    def durable_write_failed(self, store: str, pending: int) -> None:
        """Count a failed durable write of ``store``; ``pending`` records wait for the retry."""
        self._child(self.durable_write_failures, store).inc()
        self._child(self.durable_write_pending, store).set(pending)

    def durable_write_pending_set(self, store: str, pending: int) -> None:
        """Records of ``store`` still waiting for a durable write (0 once written)."""
        self._child(self.durable_write_pending, store).set(pending)

    def restart(self, child: str) -> None:
        self.restarts.labels(child).inc()

    def exposition(self) -> bytes:
        """The text exposition format of every series (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` (0 = any free port) from a daemon thread; return the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return server.server_address[1]

    def close(self) -> None:
        """Stop the HTTP server, if any."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
