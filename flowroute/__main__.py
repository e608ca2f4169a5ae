"""``python -m flowroute``: the command line (same as the ``flowroute`` console script)."""

from flowroute.cli import console_main

console_main()
