"""Retiring a FIX venue instance (``BrokerAdapter.release_hangs``, README "Write an adapter").

The runtime retires an adapter instance with ``release_hangs()`` then ``close()``: a call still
waiting for the venue's answer must come back at once as ambiguous, not wait out
``request_timeout_s``.
"""

from __future__ import annotations

import threading

from protocols import AmbiguousError, VenueOrder
from protocols.venues.fix import FixVenue, FixVenueConfig
from protocols.venues.fix._driver import tcp_connect
from tests.conftest import wait_until

from ._relay import Relay
from .conftest import incoming, limit, live, needs_peers

pytestmark = needs_peers


def test_release_hangs_fails_a_waiting_submit_as_ambiguous(peer, tmp_path) -> None:
    executor = peer("executor")
    relay = Relay(executor.connector(), executor.port)
    config = FixVenueConfig(host="127.0.0.1", port=relay.port, begin_string="FIX.4.4", sender_comp_id="CLIENT1",
                            target_comp_id="EXECUTOR", store_dir=tmp_path / "store", heartbeat_s=30,
                            request_timeout_s=60, reconnect_initial_s=0.05, reconnect_max_s=0.5)
    venue = FixVenue("fix", config, connector=tcp_connect)
    try:
        venue.start()
        wait_until(lambda: venue.health()["state"] == "ACTIVE", 10, "logon")
        relay.mode = "hold"  # the executor fills at once; its ExecutionReport never arrives
        intent = limit("BUY", "0.5", "100")
        outcome: dict[str, BaseException] = {}

        def submit() -> None:
            try:
                venue.submit_order(VenueOrder.from_intent(intent, live()))
            except BaseException as exc:  # noqa: BLE001 - what the worker thread would see, asserted by the test
                outcome["error"] = exc

        worker = threading.Thread(target=submit, daemon=True)
        worker.start()
        # the request is registered before it is sent: once the acceptor has it, the call waits
        wait_until(lambda: incoming(executor, "D", intent.client_order_id) == 1, 10, "the NewOrderSingle at the acceptor")
        assert worker.is_alive(), "the submit should still be waiting for its answer"
        venue.release_hangs()
        worker.join(timeout=10)  # far below request_timeout_s (60 s): only release_hangs ends the wait
        assert not worker.is_alive()
        assert isinstance(outcome.get("error"), AmbiguousError)
        assert "retired" in str(outcome["error"])
    finally:
        venue.close()
        relay.close()
