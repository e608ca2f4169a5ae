"""``flowroute fix-peer executor|ordermatch --port N``: a local QuickFIX acceptor for trials
(the Debian example acceptors; ``protocols/venues/fix/_peer.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any, parents: Any) -> argparse.ArgumentParser:
    """Register ``fix-peer``."""
    p = subparsers.add_parser(
        "fix-peer", help="run a local QuickFIX acceptor (executor or ordermatch) for trials",
        description="Start QuickFIX's example acceptor with a generated settings file and keep it running "
                    "until Ctrl-C. executor fills every limit order at its limit price (FIX 4.2 and 4.4, "
                    "CompID EXECUTOR); ordermatch matches CLIENT1 and CLIENT2 (FIX 4.2, CompID ORDERMATCH). "
                    "Needs: apt-get install -y libquickfix17 libquickfix-doc. README \"A FIX venue\".")
    p.add_argument("kind", choices=("executor", "ordermatch"), help="which acceptor")
    p.add_argument("--port", type=int, required=True, help="TCP port to accept on (QuickFIX binds every interface)")
    p.add_argument("--dir", type=Path, default=None, metavar="DIR",
                   help="settings, message store and log (default: a new temporary directory)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the acceptor in the foreground; the exit code."""
    from protocols.venues.fix._peer import run_peer

    from ._common import CliError

    if not 1 <= args.port <= 65535:
        raise CliError(f"--port must be 1-65535 (got {args.port})")
    return run_peer(args.kind, args.port, args.dir)
