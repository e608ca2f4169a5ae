"""Launcher of the flowroute command line from a source checkout: ``python run.py [COMMAND] …``.

The command line itself lives in ``flowroute/cli/`` (installed as the ``flowroute`` console
script); this file is not installed. Without a command ``replay`` runs, reading the recorded
market data in ``../shared/data`` beside this directory. ``python run.py --help`` lists the
commands.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    from flowroute.cli import main

    sys.exit(main(root=Path(__file__).resolve().parent, prog="run.py"))
