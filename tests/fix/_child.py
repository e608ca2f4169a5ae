"""A runtime in its own process for the SIGKILL test: CLIENT1 on ordermatch, one resting bid.

argv: state_dir port peer_pid client_order_id [die_on_fill]. Prints ``SENT <status>`` once the
bid is acknowledged, then waits to be killed; with ``die_on_fill`` it SIGKILLs itself when the
first fill's ExecutionReport reaches the adapter: the session has already written its MsgSeqNum
as handled, the runtime has not booked it yet.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from actors import Runtime, default_registry
from protocols.venues.fix import build_fix_venue
from protocols.venues.fix._driver import tcp_connect
from protocols.venues.fix._peer import _connect_in_netns
from tests.fix.conftest import fix_settings, limit, live


def main() -> None:
    state_dir, port, pid, cid = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if sys.argv[5:] == ["die_on_fill"]:
        from protocols.venues.fix._venue import FixVenue

        handle = FixVenue._on_execution_report

        def die_on_fill(self, frame, poss_dup):
            if frame.get(150) in ("1", "2", "F"):
                os.kill(os.getpid(), signal.SIGKILL)
            handle(self, frame, poss_dup)

        FixVenue._on_execution_report = die_on_fill
    settings = fix_settings(state_dir, port, "CLIENT1", "ORDERMATCH", "FIX.4.2", durable=True)
    connect = (lambda h, p, t: _connect_in_netns(pid, h, p, t)) if pid else tcp_connect
    registry = default_registry(settings=settings)
    registry.register("fix", lambda s: build_fix_venue(s, connector=connect))
    rt = Runtime.start(settings, registry=registry)
    report = rt.submit(limit("BUY", "10", "101", cl=cid), live("buyer")).result(timeout=10)
    rt.flush()
    print(f"SENT {report.status.value}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
