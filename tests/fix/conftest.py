"""Fixtures for tests against the real QuickFIX acceptors (executor, ordermatch).

``peer(kind)`` starts the Debian example acceptor in ``tmp_path`` (inside a private network
namespace where one can be made, else on a free 127.0.0.1 port) and stops it at teardown.
``fix_runtime(peer, sender, target, begin="FIX.4.4", **fix)`` starts a runtime whose ``live``
mode routes to the ``fix`` adapter connected to that acceptor (stopped at teardown).
Every test here is skipped when the acceptors are not installed (``.ci/run`` installs them).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors import Runtime, default_registry
from config import load_settings
from protocols import ExecutionContext, OrderIntent
from protocols.venues.fix import build_fix_venue
from protocols.venues.fix._peer import INSTALL_HINT, Peer, available

needs_peers = pytest.mark.skipif(not available(), reason=f"QuickFIX example acceptors not installed ({INSTALL_HINT})")
SYM = "BTC/USDT"
_ids = itertools.count(1)


def cid(prefix: str = "fx") -> str:
    """A client order id unique within the test session."""
    return f"{prefix}-{next(_ids)}"


def limit(side: str, qty: str, price: str, *, cl: str | None = None, tif: str = "DAY") -> OrderIntent:
    """A limit intent (Day: ordermatch takes Day orders only)."""
    return OrderIntent(client_order_id=cl or cid(), symbol=SYM, side=side, order_type="LIMIT",
                       quantity=Decimal(qty), limit_price=Decimal(price), time_in_force=tif)


def live(account: str = "acc-1") -> ExecutionContext:
    """The execution context routed to the FIX venue."""
    return ExecutionContext(mode="live", account_id=account)


def fix_settings(state_dir: Path, port: int, sender: str, target: str, begin: str = "FIX.4.4", *,
                 durable: bool = False, **fix: Any):
    """Test-profile settings with ``[venues.fix]`` and ``live`` routed to ``fix``."""
    section = {"port": port, "sender_comp_id": sender, "target_comp_id": target, "begin_string": begin,
               "heartbeat_s": 5, "request_timeout_s": 1.5, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.5}
    section.update(fix)
    policy = {"paper": "paper", "live": "fix"}
    return load_settings(
        "test", state_dir=state_dir, journal={"enabled": durable, "synchronous": "NORMAL" if durable else "OFF"},
        venues={"fix": section}, routing={"policy": policy, "blocked_modes": ["live_blocked"]},
        timeouts={"attempt_s": 3.0, "deadline_s": 10.0})


def fix_registry(settings, peer: Peer):
    """The default registry with ``fix`` built to connect into the acceptor's namespace."""
    registry = default_registry(settings=settings)
    registry.register("fix", lambda s: build_fix_venue(s, connector=peer.connector()))
    return registry


@pytest.fixture
def peer(tmp_path: Path):
    """``start(kind)`` → a running :class:`Peer`; every one is stopped at teardown."""
    started: list[Peer] = []

    def start(kind: str, name: str | None = None) -> Peer:
        p = Peer.start(kind, tmp_path / (name or kind))
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def fix_runtime(tmp_path: Path):
    """``make(peer, sender, target, begin="FIX.4.4", *, durable=False, name=None, **fix)`` → a started Runtime."""
    started: list[Runtime] = []
    counter = itertools.count(1)

    def make(p: Peer | None, sender: str, target: str, begin: str = "FIX.4.4", *, durable: bool = False,
             name: str | None = None, port: int | None = None, connector=None, **fix: Any) -> Runtime:
        """``port`` / ``connector`` override the peer's (e.g. a relay in between)."""
        state = tmp_path / (name or f"rt{next(counter)}")
        settings = fix_settings(state, port or p.port, sender, target, begin, durable=durable, **fix)
        registry = default_registry(settings=settings)
        connect = connector or p.connector()
        registry.register("fix", lambda s: build_fix_venue(s, connector=connect))
        rt = Runtime.start(settings, registry=registry)
        started.append(rt)
        return rt

    yield make
    for rt in reversed(started):
        rt.stop(timeout=5.0)


def incoming(peer: Peer, msg_type: str, client_order_id: str) -> int:
    """How many messages of ``msg_type`` with ClOrdID ``client_order_id`` the acceptor logged as incoming."""
    text = peer.log_path.read_text(errors="replace")
    count = 0
    blocks = text.split("<")
    for block in blocks:
        if ", incoming>" not in block.split("\n", 1)[0]:
            continue
        if f"\x0135={msg_type}\x01" in block and f"\x0111={client_order_id}\x01" in block:
            count += 1
    return count
