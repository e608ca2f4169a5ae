"""The ``flowroute`` command line: one module per command.

- ``replay`` (``replay.py``, its strategies in ``strategy.py``): recorded market data through the
  paper venue; the default command.
- ``stress`` (``stress.py``, invariants in ``stress_invariants.py``): many concurrent senders,
  duplicates, bad input and injected faults.
- ``repl`` (``repl.py``, the command shell in ``shell.py``): an interactive session.
- ``recover`` (``recover.py``): reconcile a crashed run's orders in doubt.
- ``audit verify`` / ``audit show`` (``audit.py``): check a hash-chained audit log; show its lines
  by order, time or event.
- ``fix-peer executor|ordermatch --port N`` (``fix_peer.py``): a local QuickFIX acceptor for trials.

A command module exposes ``add_parser(subparsers, parents)`` (registers its ``argparse``
sub-parser with ``set_defaults(handler=run)``) and ``run(args) -> exit code``; a user error is
a :class:`~flowroute.cli._common.CliError` (one line on stderr, exit 2).

Exit codes: 0 success; 1 an invariant, a check or an audit verification failed (``--strict``:
a market-data row was skipped); 2 bad input (an unknown choice, a missing or unusable file, a
settings error, the runtime refused to start); 130 interrupted (Ctrl-C, after a partial summary).

**State.** Every command runs against a state directory (``--state-dir``; default: the
profile's ``state_dir``, which is ``./var`` — relative to the current directory — for ``paper``,
``./var/stress`` for ``stress``; the REPL uses ``./var/repl``). The start-up line on stderr names
it. A command never deletes state unless ``--fresh`` is given; then it removes only flowroute's
own files there (``journal.sqlite*``, ``ledger.sqlite*``, ``audit.jsonl*``, ``*_book.sqlite*``,
``receipts.jsonl*``, ``refused.json``) and says which.

**Logging.** loguru goes to stderr: at ``--log-level`` when given, else at WARNING with
``--json``, else at the profile's ``logging.level``. With ``--json`` stdout carries exactly one
JSON object and nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from . import _common
from ._common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, LOG_LEVELS, CliError

COMMANDS: tuple[str, ...] = ("replay", "stress", "repl", "recover", "audit", "fix-peer")
DEFAULT_COMMAND = "replay"


class CliParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``PROG: error: MESSAGE (PROG --help lists the choices)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_BAD_INPUT)


@dataclass(frozen=True)
class Parents:
    """The option groups commands share (``argparse`` parent parsers).

    ``json``: ``--json/--no-json``; ``log``: ``--log-level``; ``settings``: ``--profile``,
    ``--state-dir``; ``fresh``: ``--fresh``."""

    json: argparse.ArgumentParser
    log: argparse.ArgumentParser
    settings: argparse.ArgumentParser
    fresh: argparse.ArgumentParser


def _parents() -> Parents:
    from flowroute import known_profiles

    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action=argparse.BooleanOptionalAction, default=False,
                        help="print one JSON object on stdout and nothing else (default: a human summary)")
    log = argparse.ArgumentParser(add_help=False)
    log.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
                        help=f"loguru level on stderr: {', '.join(LOG_LEVELS)} (default: WARNING with --json, "
                             "else the profile's logging.level)")
    settings = argparse.ArgumentParser(add_help=False)
    settings.add_argument("--profile", choices=known_profiles(),
                          help="settings profile (default: $FLOWROUTE_PROFILE, else the command's own)")
    settings.add_argument("--state-dir", type=Path, metavar="DIR",
                          help="journal, audit log and venue books (default: the profile's state_dir, "
                               "relative to the current directory)")
    fresh = argparse.ArgumentParser(add_help=False)
    fresh.add_argument("--fresh", action="store_true",
                       help="delete flowroute's own files in the state dir first and say which "
                            "(without it nothing is ever deleted)")
    return Parents(as_json, log, settings, fresh)


def build_parser(prog: str = "flowroute") -> argparse.ArgumentParser:
    """The whole command line as one ``argparse`` parser (sub-commands in :data:`COMMANDS`)."""
    from flowroute import __version__

    from . import audit, fix_peer, recover, repl, replay, stress

    parser = CliParser(prog=prog, description="flowroute: an actor-based order routing and execution runtime. "
                     "Without a command, replay runs (README: first steps).",
                     epilog="Exit codes: 0 ok; 1 a check or invariant failed; 2 bad input; 130 interrupted. "
                            f"'{prog} COMMAND -h' shows a command's options.")
    parser.add_argument("--version", action="version", version=f"flowroute {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    parents = _parents()
    for module in (replay, stress, repl, recover, audit, fix_peer):
        module.add_parser(commands, parents)
    return parser


def _resolve(args: argparse.Namespace) -> None:
    """Fill the defaults that depend on the environment: the profile (``--profile``, else
    ``FLOWROUTE_PROFILE``, else the command's) and the REPL's state directory."""
    from flowroute import known_profiles

    if hasattr(args, "profile"):
        if args.profile is None:
            env = os.environ.get("FLOWROUTE_PROFILE")
            if env is not None:
                if env not in known_profiles():
                    raise CliError(f"FLOWROUTE_PROFILE={env!r} is not a profile (known: {', '.join(known_profiles())})")
                args.profile = env
            else:
                args.profile = getattr(args, "default_profile", "default")
        if getattr(args, "state_dir", None) is None and getattr(args, "default_state_dir", None) is not None:
            args.state_dir = args.default_state_dir
    for name, default in (("json", False), ("log_level", None), ("fresh", False), ("state_dir", None)):
        if not hasattr(args, name):
            setattr(args, name, default)


def main(argv: Sequence[str] | None = None, *, root: Path | None = None, prog: str = "flowroute") -> int:
    """Run the command line; the exit code.

    ``argv``: the arguments (default ``sys.argv[1:]``); without a command, or when the first
    argument is an option other than ``-h``/``--help``/``--version``, ``replay`` runs.
    ``root``: the directory the data defaults are relative to (``../shared/data`` beside it);
    ``run.py`` passes its own. ``prog``: the name in usage and error lines.
    """
    if root is not None:
        _common.REPO_ROOT = Path(root).resolve()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, DEFAULT_COMMAND)
    parser = build_parser(prog)
    args = parser.parse_args(args_list)
    try:
        _resolve(args)
        return int(args.handler(args))
    except CliError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED


def console_main() -> None:
    """The ``flowroute`` console script."""
    sys.exit(main())


__all__ = ["COMMANDS", "CliParser", "build_parser", "console_main", "main"]
