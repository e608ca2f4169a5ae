"""What every ``flowroute`` command shares: errors and exit codes, logging, state directories,
settings, the runtime's start, JSON output, percentiles, fill digests, consoles."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from loguru import logger
from rich.console import Console

#: The repository (or source tree) the data defaults are relative to; ``main(root=...)`` sets it
#: (``run.py`` passes its own directory). Default: the tree this package was loaded from.
REPO_ROOT: Path = Path(__file__).resolve().parents[2]

#: flowroute's own files directly in a state directory, the only ones ``--fresh`` removes: the journals, the
#: audit log, the venue books, the venue receipts and the refused rows kept for health()
#: (``refused.json``: they name orders of the journal removed with it).
OWN_STATE_PATTERNS: tuple[str, ...] = ("journal.sqlite*", "ledger.sqlite*", "audit.jsonl*", "*_book.sqlite*",
                                       "receipts.jsonl*", "refused.json")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
#: Ctrl-C: the conventional 128 + SIGINT.
EXIT_INTERRUPTED = 130
FUTURE_TIMEOUT_S = 10.0
SYMBOL = "BTC/USDT"
LOG_LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR")
QUOTES_FILE = "binance_btcusdt_quotes_20210108.csv"
TRADES_FILE = "binance_btcusdt_trades_20210108.csv"
#: JSON decimals carry at most this many decimal places (a price or a PnL is never longer).
JSON_DECIMAL_PLACES = 12


def data_dir() -> Path:
    """The recorded market data: ``../shared/data`` beside the repository (:data:`REPO_ROOT`)."""
    return REPO_ROOT.parent / "shared" / "data"


def default_quotes() -> Path:
    """The recorded BTC/USDT quotes file in :func:`data_dir`."""
    return data_dir() / QUOTES_FILE


def default_trades() -> Path:
    """The recorded BTC/USDT trades file in :func:`data_dir`."""
    return data_dir() / TRADES_FILE


class CliError(Exception):
    """A user-facing error: printed as one clear line, exit code ``code`` (default 2)."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def configure_logging(level: str) -> None:
    """The command line's own sink: loguru to stderr at ``level`` (TRACE … ERROR), every
    other sink dropped, flowroute's loggers enabled (a library is silent until its host opts in)."""
    from flowroute import enable_logging

    logger.remove()
    logger.add(sys.stderr, level=level.upper())
    enable_logging()


def log_level_for(explicit: str | None, as_json: bool, settings: Any) -> str:
    """``explicit`` if given; WARNING for ``--json``; else the profile's ``logging.level``."""
    if explicit:
        return explicit
    if as_json:
        return "WARNING"
    return str(getattr(getattr(settings, "logging", None), "level", "WARNING"))


def clean_state(state_dir: Path) -> list[Path]:
    """Delete flowroute's own files (:data:`OWN_STATE_PATTERNS`) directly in ``state_dir``.

    Returns the removed paths. Nothing else is touched: other files and sub-directories stay
    (``./var/stress`` survives a replay cleaning ``./var``). A missing directory is fine.
    """
    removed: list[Path] = []
    if not state_dir.is_dir():
        return removed
    for pattern in OWN_STATE_PATTERNS:
        for path in sorted(state_dir.glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def own_state_files(state_dir: Path) -> list[Path]:
    """flowroute's own files (:data:`OWN_STATE_PATTERNS`) directly in ``state_dir``, sorted."""
    if not state_dir.is_dir():
        return []
    found = {p for pattern in OWN_STATE_PATTERNS for p in state_dir.glob(pattern) if p.is_file() or p.is_symlink()}
    return sorted(found)


#: The runtime's exclusive lock file in a state directory (it writes its pid there).
LOCK_FILE = "flowroute.lock"


def state_in_use(state_dir: Path) -> str | None:
    """``state dir X is in use by pid N`` when another process holds ``state_dir``, else None.

    A running runtime holds an exclusive ``flock`` on ``flowroute.lock`` (its pid inside) and
    on its audit log; both are probed without waiting. Checked before ``--fresh`` deletes.
    """
    try:
        import fcntl
    except ImportError:  # no flock on this platform: nothing to probe
        return None
    for name in (LOCK_FILE, "audit.jsonl"):
        path = state_dir / name
        if not path.is_file():
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = "another process"
            try:
                text = (state_dir / LOCK_FILE).read_text().strip()
                if text.isdigit():
                    holder = f"pid {text}"
            except OSError:
                pass
            return f"state dir {state_dir} is in use by {holder}"
        finally:
            os.close(fd)  # closing also releases a lock we took
    return None


def prepare_state(state_dir: Path, fresh: bool) -> list[Path]:
    """Start from a clean state only when asked.

    With ``fresh``: refuse (``CliError``) when another process uses ``state_dir``, else delete
    flowroute's own files there (:func:`clean_state`) and say on stderr which. Without it touch
    nothing; when an earlier run's files are there, say so on stderr (the command continues on
    them: its journal, audit log and venue books). Returns the removed paths.
    """
    if not fresh:
        existing = own_state_files(state_dir)
        if existing:
            sys.stderr.write(f"flowroute: state dir {state_dir} holds an earlier run ({', '.join(p.name for p in existing[:4])}"
                             f"{', …' if len(existing) > 4 else ''}): continuing on it; --fresh starts over\n")
        return []
    busy = state_in_use(state_dir)
    if busy:
        raise CliError(f"--fresh: {busy}; nothing was removed")
    removed = clean_state(state_dir)
    if removed:
        sys.stderr.write(f"flowroute: --fresh: removed {len(removed)} file(s) from {state_dir}: "
                         f"{', '.join(p.name for p in removed)}\n")
    else:
        sys.stderr.write(f"flowroute: --fresh: nothing to remove in {state_dir}\n")
    return removed


def load_cli_settings(profile: str | None, state_dir: Path | None, **overrides: Any) -> Any:
    """``load_settings(profile, state_dir=..., **overrides)``; a ``CliError`` naming the problem.

    ``profile`` None takes ``FLOWROUTE_PROFILE`` when set (an unknown name is an error), else
    the command's default is passed by the caller. ``state_dir`` None keeps the profile's.
    """
    from flowroute import load_settings

    if state_dir is not None:
        overrides["state_dir"] = state_dir
    try:
        return load_settings(profile, **overrides)
    except Exception as exc:  # ConfigError (a ValueError) or an unknown profile
        first = str(exc).strip().splitlines()
        raise CliError(f"cannot load settings for profile {profile!r}: {'; '.join(s.strip() for s in first)}") from exc


def start_runtime(settings: Any, *, registry: Any = None, seed: int = 0) -> Any:
    """``Runtime.start`` with a ``CliError`` (exit 2, one line) when the runtime refuses to start;
    a state directory another runtime holds reads ``state dir X is in use by pid N``.
    ``[dispatch] gc_threshold`` unset: ``gctune.CLI_THRESHOLD`` (the process is the command's; an
    embedded ``Runtime`` leaves the process-wide threshold alone, docs/DESIGN.md "The garbage collector")."""
    from actors.kernel import gctune
    from flowroute import Runtime

    if settings.dispatch.gc_threshold is None:
        dispatch = settings.dispatch.model_copy(update={"gc_threshold": gctune.CLI_THRESHOLD})
        settings = settings.model_copy(update={"dispatch": dispatch})
    try:
        return Runtime.start(settings, registry=registry, seed=seed)
    except Exception as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if type(exc).__name__ == "StateDirInUse":  # the runtime's exclusive state-dir lock
            raise CliError(text) from exc
        raise CliError(f"the runtime refused to start: {text}") from exc


def startup_line(command: str, rt: Any, settings: Any, profile: str | None = None) -> str:
    """``flowroute <command>: profile P, state dir /abs/DIR[, metrics on HOST:PORT]``."""
    parts = [f"flowroute {command}: profile {profile or '-'}, state dir {Path(settings.state_dir).resolve()}"]
    port = getattr(rt, "metrics_port", None)
    if port is not None:
        parts.append(f"metrics on {settings.metrics.host}:{port}")
    return ", ".join(parts)


def announce(command: str, rt: Any, settings: Any, profile: str | None = None) -> None:
    """Write the :func:`startup_line` to stderr (stdout stays the command's output)."""
    sys.stderr.write(startup_line(command, rt, settings, profile) + "\n")
    sys.stderr.flush()


def percentile(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile (``pct`` in (0, 100]) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values: Sequence[int]) -> dict[str, int | None]:
    """``{"p50", "p99", "max", "n"}`` in microseconds (nearest rank) of ``values``."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values) if values else None, "n": len(values)}


def latency_text(lat: dict[str, Any]) -> str:
    """``p50 X  p99 Y  max Z (n=N)`` in µs, or ``no samples`` (never ``p50 None``)."""
    if not lat.get("n"):
        return "no samples"
    return f"p50 {lat['p50']}  p99 {lat['p99']}  max {lat['max']} (n={lat['n']})"


def json_decimal(value: Decimal) -> str:
    """A Decimal as JSON text: exact up to :data:`JSON_DECIMAL_PLACES` places (half-even beyond:
    a division's ``0.13885263000000000000000001`` is ``0.13885263``), no trailing zeros, no
    exponent, never ``-0``."""
    d = value
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -JSON_DECIMAL_PLACES:
        d = d.quantize(Decimal(1).scaleb(-JSON_DECIMAL_PLACES), rounding=ROUND_HALF_EVEN)
    if d.is_zero():
        return "0"
    text = format(d.normalize(), "f")
    return text


def to_jsonable(value: Any) -> Any:
    """Recursively turn Decimals into normalized strings (:func:`json_decimal`), datetimes into
    ISO text, enums into values, dataclasses/pydantic models into dicts, tuples/sets into lists."""
    if isinstance(value, Decimal):
        return json_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    return value


def print_json(obj: dict) -> None:
    """Write ``obj`` as exactly one JSON line on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), sort_keys=False) + "\n")
    sys.stdout.flush()


def fill_line(client_order_id: str, side: Any, fill: Any) -> str:
    """The canonical text of one fill for :func:`fills_digest`:
    ``trade_id|client_order_id|side|qty|price|fee|liquidity|ts`` (Decimals as ``str``,
    ``ts`` as ``datetime.isoformat()``)."""
    side_text = getattr(side, "value", side) or ""
    liquidity = getattr(fill.liquidity, "value", fill.liquidity)
    return "|".join((fill.trade_id, client_order_id, str(side_text), str(fill.qty), str(fill.price),
                     str(fill.fee), str(liquidity), fill.ts.isoformat()))


def fills_digest(reports: Iterable[Any]) -> tuple[int, str]:
    """``(count, sha256 hex)`` of every fill in ``reports`` (ExecutionReports).

    Fills are sorted by ``(ts, trade_id)`` and hashed as one canonical line each
    (:func:`fill_line`) followed by ``\\n``. Same fills, same digest, whatever the order of
    the reports.
    """
    rows = [(f.ts, f.trade_id, fill_line(r.client_order_id, r.side, f)) for r in reports for f in r.fills]
    rows.sort(key=lambda row: (row[0], row[1]))
    digest = hashlib.sha256()
    for _, _, line in rows:
        digest.update(line.encode() + b"\n")
    return len(rows), digest.hexdigest()


def position_dict(p: Any) -> dict[str, Any]:
    """A ``Position`` as a JSON-ready dict (decimals as normalized strings, ``None`` kept)."""
    def s(v: Decimal | None) -> str | None:
        return None if v is None else json_decimal(v)

    return {"account_id": p.account_id, "symbol": p.symbol, "net_qty": s(p.net_qty),
            "avg_entry_px": s(p.avg_entry_px), "realized_pnl": s(p.realized_pnl),
            "unrealized_pnl": s(p.unrealized_pnl), "fees": s(p.fees), "net_pnl": s(p.net_pnl),
            "last_px": s(p.last_px), "buy_qty": s(p.buy_qty), "sell_qty": s(p.sell_qty)}


def short_decimal(text: str | None, places: int = 8) -> str:
    """A decimal string for humans: at most ``places`` decimals (half-even), ``-`` for None.
    JSON output keeps the exact values; only the tables round."""
    if text is None:
        return "-"
    d = Decimal(text)
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        d = d.quantize(Decimal(1).scaleb(-places))
    return format(d, "f")


def make_console(*, stderr: bool = False) -> Console:
    """A rich console; 120 columns when the output is not a terminal (pipes, CI logs)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=120)
    return console


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout_s`` wall seconds pass (False).
    Only the CLI polls; the runtime itself never sleeps."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def to_decimal_input(value: Any) -> Any:
    """A user number for an intent field: floats go through ``repr`` (``0.1`` → ``Decimal('0.1')``,
    never binary noise); everything else is passed on for the runtime to validate."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value
