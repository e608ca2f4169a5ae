"""The ``flowroute`` command line as users meet it: choices checked before anything starts (exit 2,
one line, no traceback), ``-h``/``--version``, the profile from ``FLOWROUTE_PROFILE``, market
data problems, ``--strict``, state never deleted without ``--fresh``, Ctrl-C, normalized JSON,
``stress`` naming why orders were denied, ``recover`` listing changes first, ``audit verify``'s
error cases, a quiet library, ``metrics.port = 0`` and the installed entry points.

Everything runs on small synthetic market-data files, so nothing here needs ``../shared/data``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "run.py"
T0 = datetime(2021, 1, 8, tzinfo=UTC)
QUOTES_HEADER = "ts_utc,symbol,bid,bid_size,ask,ask_size"
TRADES_HEADER = "ts_utc,trade_id,price,qty,aggressor_side,buyer_maker"


def cli(*args: str, env: dict | None = None, stdin: str | None = None, cwd: Path = ROOT,
        timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN), *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def market_files(tmp_path: Path, n: int = 120, symbol: str = "BTC/USDT") -> tuple[Path, Path]:
    """``n`` quotes wandering around 39433 (a crossover or two for ma_cross) and a trade each second."""
    quotes = [QUOTES_HEADER]
    trades = [TRADES_HEADER]
    for i in range(n):
        mid = Decimal("39433.00") + Decimal((i // 15) % 2 * 2 - 1) * Decimal(i % 15) * Decimal("0.50")
        quotes.append(f"{iso(i)},{symbol},{mid - Decimal('0.01')},1.5,{mid + Decimal('0.01')},2")
        trades.append(f"{iso(i + 0.5)},t{i},{mid},0.01,{'BUY' if i % 2 else 'SELL'},{'False' if i % 2 else 'True'}")
    q, t = tmp_path / "quotes.csv", tmp_path / "trades.csv"
    q.write_text("\n".join(quotes) + "\n")
    t.write_text("\n".join(trades) + "\n")
    return q, t


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def one_json(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, (proc.stdout[-2000:], proc.stderr[-2000:])
    return json.loads(lines[0])


# --------------------------------------------------------------------------------------
# choices, help, version
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, names", [
    (("--log-level", "LOUD"), ("--log-level", "LOUD", "WARNING")),
    (("--mode", "warp"), ("--mode", "warp", "paper")),
    (("--mode", "live"), ("--mode", "live", "dry_run")),
    (("--strategy", "martingale"), ("--strategy", "martingale", "ma_cross")),
    (("--profile", "nope"), ("--profile", "nope", "paper")),
    (("stress", "--senders", "0"), ("--senders", "0")),
    (("stress", "--budget", "lots"), ("--budget", "lots")),
    (("stress", "--faults", "explode=0.5"), ("--faults", "explode")),
    (("frobnicate",), ("frobnicate", "replay")),
])
def test_a_bad_choice_is_one_line_exit_2_before_anything_starts(tmp_path: Path, args: tuple, names: tuple) -> None:
    line = one_line_error(cli(*args, "--state-dir", str(tmp_path / "s")))
    for name in names:
        assert name in line, (name, line)
    assert not (tmp_path / "s").exists()


def test_flowroute_profile_from_the_environment_is_used_and_checked(tmp_path: Path) -> None:
    q, t = market_files(tmp_path)
    env = {**os.environ, "FLOWROUTE_PROFILE": "nope"}
    line = one_line_error(cli("--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "s"), env=env))
    assert "FLOWROUTE_PROFILE='nope'" in line and "paper" in line
    env["FLOWROUTE_PROFILE"] = "test"
    proc = cli("--json", "--strategy", "none", "--quotes", str(q), "--trades", str(t), "--state-dir",
               str(tmp_path / "s"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "profile test" in proc.stderr  # the start-up line names the profile in use


def test_help_lists_choices_without_bool_placeholders_or_spec_references() -> None:
    top = cli("-h")
    assert top.returncode == 0
    for command in ("replay", "stress", "repl", "recover", "audit"):
        assert command in top.stdout
    texts = [top.stdout]
    for command in (("replay",), ("stress",), ("repl",), ("recover",), ("audit",), ("audit", "verify")):
        proc = cli(*command, "--help")
        assert proc.returncode == 0, proc.stderr
        texts.append(proc.stdout)
    replay = texts[1]
    for choice in ("paper", "dry_run", "ma_cross", "none", "--json, --no-json", "--fresh", "--strict", "TRACE"):
        assert choice in replay, choice
    for text in texts + every_help_text():
        assert "<bool>" not in text and "SPEC" not in text
    assert "--python" in texts[3]


def every_help_text() -> list[str]:
    """The help of every command and sub-command the parser knows (new ones included)."""
    import argparse

    from flowroute.cli import build_parser

    out, todo = [], [build_parser()]
    while todo:
        parser = todo.pop()
        out.append(parser.format_help())
        for action in parser._actions:  # argparse keeps sub-parsers only here
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return out


def test_version() -> None:
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("flowroute ")


def test_json_and_no_json_flags(tmp_path: Path) -> None:
    q, t = market_files(tmp_path)
    base = ("--strategy", "none", "--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "s"))
    assert cli(*base, "--json", "--no-json").stdout.lstrip().startswith("─")  # the last one wins: text
    one_json(cli(*base, "--no-json", "--json"))


# --------------------------------------------------------------------------------------
# market data
# --------------------------------------------------------------------------------------
def test_market_data_problems_are_grouped_and_one_bad_timestamp_costs_one_row(tmp_path: Path) -> None:
    q, t = market_files(tmp_path)
    lines = q.read_text().splitlines()
    lines[10] = lines[10].replace("2021-01-08", "2021-01-09", 1)  # a wrong date: jumps a day ahead
    for k in (20, 30, 40):
        lines[k] = lines[k].replace(",1.5,", ",lots,")
    q.write_text("\n".join(lines) + "\n")
    proc = cli("--json", "--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    s = one_json(proc)
    assert s["events"]["quotes"] == 120 - 4
    assert s["malformed_rows"]["count"] == 4
    assert s["malformed_by_cause"] == [
        {"file": "quotes.csv", "cause": "column 'bid_size' is not a decimal", "count": 3, "first_lines": [21, 31, 41]},
        {"file": "quotes.csv", "cause": "column 'ts_utc' jumps forward", "count": 1, "first_lines": [11]},
    ]
    text = cli("--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "s2"))
    assert "quotes.csv: 3 row(s): column 'bid_size' is not a decimal (lines 21, 31, 41)" in text.stdout
    strict = cli("--strict", "--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "s3"))
    line = one_line_error(strict, code=1)
    assert "--strict" in line and "4 market-data row(s)" in line and "jumps forward" in line
    assert not (tmp_path / "s3").exists()


def test_a_file_without_usable_rows_is_an_error(tmp_path: Path) -> None:
    _q, t = market_files(tmp_path)
    header_only = tmp_path / "empty.csv"
    header_only.write_text(QUOTES_HEADER + "\n")
    line = one_line_error(cli("--quotes", str(header_only), "--trades", str(t), "--state-dir", str(tmp_path / "s")))
    assert "--quotes" in line and "no usable row" in line
    other = tmp_path / "other"
    other.mkdir()
    q_eth, _ = market_files(other, symbol="ETH/USDT")
    line = one_line_error(cli("--quotes", str(q_eth), "--trades", str(t), "--state-dir", str(tmp_path / "s")))
    assert "'ETH/USDT', not a configured instrument" in line and "BTC/USDT" in line
    line = one_line_error(cli("--quotes", str(tmp_path), "--trades", str(t), "--state-dir", str(tmp_path / "s")))
    assert "is a directory" in line
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
def test_text_never_prints_none_and_json_decimals_are_normalized(tmp_path: Path) -> None:
    q, t = market_files(tmp_path)
    proc = cli("--strategy", "none", "--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr
    assert "None" not in proc.stdout and "submit latency (µs): no samples" in proc.stdout
    s = one_json(cli("--json", "--quotes", str(q), "--trades", str(t), "--state-dir", str(tmp_path / "b")))
    decimals = [s["realized_pnl"], s["unrealized_pnl"], s["fees"], s["net_pnl"]]
    decimals += [v for p in s["positions"] for k, v in p.items() if k not in ("account_id", "symbol") and v is not None]
    assert s["fills_total"] > 0 and decimals
    for text in decimals:
        assert text == "0" or (text.rstrip("0") == text if "." in text else True), text
        assert "E" not in text and text != "-0" and len(text.partition(".")[2]) <= 12, text


def test_json_decimal_rule() -> None:
    from flowroute.cli._common import json_decimal, to_jsonable

    assert json_decimal(Decimal("-0.13885263000000000000000001")) == "-0.13885263"
    assert json_decimal(Decimal("39433.6200")) == "39433.62"
    assert json_decimal(Decimal("-0E-8")) == "0" and json_decimal(Decimal("1E+2")) == "100"
    assert to_jsonable({"a": [Decimal("0.10")]}) == {"a": ["0.1"]}


# --------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------
def test_state_is_never_deleted_without_fresh_and_fresh_says_what_it_removed(tmp_path: Path) -> None:
    q, t = market_files(tmp_path)
    state = tmp_path / "state"
    base = ("--json", "--quotes", str(q), "--trades", str(t), "--state-dir", str(state))
    first = cli(*base)
    assert first.returncode == 0, first.stderr
    assert f"state dir {state.resolve()}" in first.stderr  # the start-up line names the directory
    (state / "notes.txt").write_text("mine")
    audit_before = (state / "audit.jsonl").read_text()
    again = cli(*base)
    assert again.returncode == 0, again.stderr
    assert "holds an earlier run" in again.stderr and "--fresh" in again.stderr
    assert (state / "audit.jsonl").read_text().startswith(audit_before)  # continued, not replaced
    fresh = cli(*base, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    removed = next(line for line in fresh.stderr.splitlines() if "--fresh: removed" in line)
    assert "journal.sqlite" in removed and "audit.jsonl" in removed and "notes.txt" not in removed
    assert (state / "notes.txt").read_text() == "mine"
    assert one_json(fresh)["state_files_removed"]


def test_fresh_removes_every_file_the_runtime_writes_in_the_state_dir(tmp_path: Path) -> None:
    """The venue receipts and the refused rows kept for health() name orders of the journal
    ``--fresh`` removes: a fresh run must not start with an earlier run's refused rows (health()
    unhealthy for orders it never saw) or append to its receipts."""
    from flowroute.cli._common import clean_state

    state = tmp_path / "state"
    state.mkdir()
    written = ["journal.sqlite", "journal.sqlite-wal", "ledger.sqlite", "audit.jsonl", "audit.jsonl.head",
               "paper_book.sqlite", "receipts.jsonl", "refused.json"]
    for name in [*written, "notes.txt"]:
        (state / name).write_text("x")
    (state / "archive").mkdir()
    removed = {p.name for p in clean_state(state)}
    assert removed == set(written)
    assert sorted(p.name for p in state.iterdir()) == ["archive", "notes.txt"]


def test_fresh_refuses_a_state_dir_another_session_uses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    repl = subprocess.Popen([sys.executable, str(RUN), "repl", "--state-dir", str(state)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (state / "audit.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (state / "audit.jsonl").exists()
        q, t = market_files(tmp_path)
        line = one_line_error(cli("--fresh", "--quotes", str(q), "--trades", str(t), "--state-dir", str(state)))
        assert "in use" in line and "nothing was removed" in line
        assert (state / "journal.sqlite").exists() and (state / "audit.jsonl").exists()
    finally:
        repl.communicate("exit\n", timeout=60)
    assert repl.returncode == 0


# --------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------
def _journaled(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("as_json", [True, False])
def test_ctrl_c_prints_interrupted_and_a_partial_summary(tmp_path: Path, as_json: bool) -> None:
    state = tmp_path / "stress"
    args = [sys.executable, str(RUN), "stress", "--senders", "2", "--orders", "200000", "--state-dir", str(state)]
    # a shell that started the test run in the background without job control set SIGINT to "ignore",
    # which every child inherits (Python then never raises KeyboardInterrupt): the stress run gets the
    # default disposition, as at a terminal
    proc = subprocess.Popen(args + (["--json"] if as_json else []), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while _journaled(state / "journal.sqlite") < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    if as_json:
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, out[-2000:]
        s = json.loads(lines[0])
        assert s["interrupted"] is True and 0 < s["intents"] < s["requested"] == 200000
        assert s["final_reports"] == s["intents"]  # everything sent got its answer
    else:
        assert "interrupted" in out and "partial summary" in out and "invariants" in out


# --------------------------------------------------------------------------------------
# stress, recover, audit verify
# --------------------------------------------------------------------------------------
def test_stress_says_why_orders_were_denied(tmp_path: Path) -> None:
    proc = cli("stress", "--senders", "2", "--orders", "300", "--budget", "200", "--state-dir", str(tmp_path / "j"), "--json")
    s = one_json(proc)
    denied = s["denied"]
    assert denied["total"] > 100 and denied["reasons"][0]["code"] == "E_EXEC_RISK_DENIED"
    assert "risk rule" in denied["reasons"][0]["why"] and denied["unexpected"] >= denied["reasons"][0]["count"]
    assert sum(r["count"] for r in denied["reasons"]) == denied["total"]
    text = cli("stress", "--senders", "2", "--orders", "300", "--budget", "200", "--state-dir", str(tmp_path / "t"))
    assert re.search(r"denied: \d+ of 300 \(\d+ not sent as bad input on purpose\)", text.stdout), text.stdout
    assert "E_EXEC_RISK_DENIED: a risk rule" in text.stdout


def test_recover_lists_the_orders_it_changed_first(capsys: pytest.CaptureFixture[str]) -> None:
    from flowroute.cli.recover import order_changed, render_recover_summary

    assert order_changed("reconciled", "ACCEPTED", "ACCEPTED") is False
    assert order_changed("reconciled", "ACCEPTED", "FILLED") is True
    assert order_changed("unresolved", "UNKNOWN", None) is True
    same = [{"client_order_id": f"same-{i}", "outcome": "reconciled", "previous_status": "ACCEPTED",
             "venue_status": "ACCEPTED", "note": "", "changed": False} for i in range(60)]
    changed = {"client_order_id": "moved-1", "outcome": "never_delivered", "previous_status": "UNKNOWN",
               "venue_status": None, "note": "the venue has no record of it", "changed": True}
    summary = {"state_dir": "var", "journaled_orders": 61, "marked_unknown_at_start": 61, "outcomes": {},
               "resolved": [changed] + same, "confirmed_unchanged": 60, "orders_by_status": {}, "checks": {"x": True}}
    render_recover_summary(summary)
    out = capsys.readouterr().out
    assert "changed by recovery: 1" in out and "moved-1: UNKNOWN -> never_delivered" in out
    assert "same-" not in out and "confirmed unchanged at the venue: 60 order(s)" in out


def test_audit_verify_error_cases(tmp_path: Path) -> None:
    from actors.audit.log import AuditLog

    missing = cli("audit", "verify", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 1
    assert "does not exist: nothing to verify" in missing.stdout and "line 0" not in missing.stdout
    not_json = tmp_path / "notes.txt"
    not_json.write_text("".join(f"just some text {i}\n" for i in range(123)))
    proc = cli("audit", "verify", str(not_json))
    assert proc.returncode == 1
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not a flowroute audit log" in lines[0] and "123 line(s)" in lines[0]
    log_path = tmp_path / "audit.jsonl"
    log = AuditLog(log_path)
    log.append("transition", {"client_order_id": "c1", "to": "ACCEPTED"})
    log.close()
    Path(str(log_path) + ".head").unlink(missing_ok=True)
    no_anchor = cli("audit", "verify", str(log_path))
    assert no_anchor.returncode == 0 and "no anchor file audit.jsonl.head" in no_anchor.stdout
    as_json = one_json(cli("audit", "verify", "--json", str(log_path)))
    assert as_json["ok"] is True and as_json["anchor_seq"] is None and as_json["warnings"][0]["kind"] == "no_anchor"
    line = one_line_error(cli("audit", "verify", str(tmp_path)))
    assert "is a directory" in line


# --------------------------------------------------------------------------------------
# the library: quiet by default, honours logging settings, metrics port 0, entry points
# --------------------------------------------------------------------------------------
EMBED = """
import sys
from decimal import Decimal
import flowroute as fr
settings = fr.load_settings("test", state_dir=sys.argv[1], logging=LOGGING, metrics=METRICS)
with fr.Runtime.start(settings) as rt:
    rt.on_market(fr.Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("39432.99"),
                          bid_size=Decimal("1"), ask=Decimal("39433.62"), ask_size=Decimal("1")))
    report = rt.submit(fr.OrderIntent(client_order_id="embed-1", symbol="BTC/USDT", side="BUY",
                                      order_type="MARKET", quantity=Decimal("0.001")),
                       fr.ExecutionContext(mode="paper", account_id="a")).result(timeout=10)
    rt.halt()  # a WARNING of the ledger
    print(report.status.value, rt.metrics_port)
"""


def embed(tmp_path: Path, logging: dict, metrics: dict | None = None, state: str = "state") -> subprocess.CompletedProcess:
    """Run the embedding script once on the state directory ``tmp_path / state`` (a second run on
    the same directory replays its journaled order instead of sending it again)."""
    code = EMBED.replace("LOGGING", repr(logging)).replace("METRICS", repr(metrics or {}))
    return subprocess.run([sys.executable, "-c", code, str(tmp_path / state)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_an_embedded_runtime_is_quiet_by_default(tmp_path: Path) -> None:
    proc = embed(tmp_path, {"level": "DEBUG"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["FILLED", "None"]
    assert proc.stderr == ""  # not one line from the library, whatever the level


def test_a_json_log_honours_the_level(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    proc = embed(tmp_path, {"level": "WARNING", "json_path": str(log)})
    assert proc.returncode == 0, proc.stderr
    levels = [json.loads(line)["record"]["level"]["name"] for line in log.read_text().splitlines()]
    assert levels and set(levels) <= {"WARNING", "ERROR", "CRITICAL"}  # the HALTED warning, nothing below
    assert "settings" not in log.read_text()
    debug = tmp_path / "debug.jsonl"
    proc = embed(tmp_path, {"level": "DEBUG", "json_path": str(debug)}, state="state-debug")
    assert proc.returncode == 0, proc.stderr
    text = debug.read_text()
    assert "started" in text and "settings" in text and "embed-1" in text


def test_metrics_port_zero_is_any_free_port(tmp_path: Path) -> None:
    import urllib.request

    proc = embed(tmp_path, {"level": "WARNING"}, {"port": 0})
    assert proc.returncode == 0, proc.stderr
    status, port = proc.stdout.split()
    assert status == "FILLED" and 0 < int(port) < 65536
    from actors import Runtime
    from config import load_settings

    with Runtime.start(load_settings("test", state_dir=str(tmp_path / "s2"), metrics={"port": 0})) as rt:
        assert rt.metrics_port and rt.metrics_port > 0
        body = urllib.request.urlopen(f"http://127.0.0.1:{rt.metrics_port}/metrics", timeout=5).read().decode()
        assert "exec_" in body


def test_entry_points_and_no_top_level_run_module(tmp_path: Path) -> None:
    module = subprocess.run([sys.executable, "-m", "flowroute", "--version"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert module.returncode == 0 and module.stdout.startswith("flowroute ")
    script = Path(sys.executable).parent / "flowroute"
    assert script.is_file(), "pip install -e . installs the flowroute console script"
    proc = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: flowroute" in proc.stdout
    found = subprocess.run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('run'))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "None", "run.py is a launcher in the checkout, never an installed module"


def test_public_api_in_one_import() -> None:
    import flowroute as fr

    for name in ("Runtime", "load_settings", "OrderIntent", "ExecutionContext", "Quote", "Trade", "ExecutionReport",
                 "ExecError", "ErrorCode", "AdapterError", "AmbiguousError", "ConfigError", "new_client_order_id",
                 "BrokerAdapter", "OrderFilled", "enable_logging", "__version__"):
        assert hasattr(fr, name) and name in fr.__all__, name


def test_benchmarks_share_the_cli_style(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"meta": {"python": "3.11"}, "runs": {}}))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--show", str(results), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"meta": {"python": "3.11"}, "runs": {}}  # --json: one object on stdout
    bad = subprocess.run([sys.executable, "-m", "benchmarks.run", "--pin", "x"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    line = one_line_error(bad)
    assert "--pin" in line and "'x'" in line


def test_fresh_respects_the_runtime_state_dir_lock(tmp_path: Path) -> None:
    import fcntl

    from flowroute.cli._common import CliError, prepare_state, state_in_use

    (tmp_path / "journal.sqlite").write_text("x")
    lock = tmp_path / "flowroute.lock"
    lock.write_text("4242\n")
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running runtime holds it
        assert state_in_use(tmp_path) == f"state dir {tmp_path} is in use by pid 4242"
        with pytest.raises(CliError, match="in use by pid 4242; nothing was removed"):
            prepare_state(tmp_path, fresh=True)
        assert (tmp_path / "journal.sqlite").exists()
    finally:
        os.close(fd)
    assert state_in_use(tmp_path) is None
    assert [p.name for p in prepare_state(tmp_path, fresh=True)] == ["journal.sqlite"]
    assert lock.exists()  # the lock file is the runtime's: never removed


def test_repl_completion_and_history(tmp_path: Path) -> None:
    import io

    from actors import Runtime
    from config import load_settings
    from flowroute.cli.shell import FlowrouteShell

    out = io.StringIO()
    with Runtime.start(load_settings("test", state_dir=str(tmp_path / "s"))) as rt:
        shell = FlowrouteShell(rt, stdin=io.StringIO(""), stdout=out, history=tmp_path / "repl_history")
        shell.onecmd("quote 39432.99 39433.62")
        shell.onecmd("buy 0.001 @39000")
        open_id = next(r.client_order_id for r in rt.orders() if r.status.is_open)
        assert shell.completenames("b") == ["breaker", "buy"]
        assert shell.complete_cancel(open_id[:6], f"cancel {open_id[:6]}", 7, 13) == [open_id]
        assert shell.complete_buy("i", "buy 0.001 i", 10, 11) == ["ioc"]
        assert shell.complete_breaker("pa", "breaker pa", 8, 10) == ["paper"]
        readline = pytest.importorskip("readline")
        shell.use_rawinput = True  # as with a terminal
        shell.preloop()
        readline.add_history("buy 0.001 @39000")
        shell.postloop()
    assert "buy 0.001 @39000" in (tmp_path / "repl_history").read_text()


def test_replay_driver_stops_at_ctrl_c_with_the_counts_so_far(tmp_path: Path) -> None:
    from actors import Runtime
    from config import load_settings
    from flowroute.cli.replay import ReplayDriver, build_replay_summary
    from flowroute.cli.strategy import NoStrategy
    from protocols import read_quotes

    q, _ = market_files(tmp_path, n=30)

    def events():
        for n, quote in enumerate(read_quotes(q), start=1):
            if n == 11:
                raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
            yield quote

    with Runtime.start(load_settings("test", state_dir=str(tmp_path / "s"))) as rt:
        driver = ReplayDriver(rt, NoStrategy(), mode="paper", probe_after=5)
        stats = driver.run(events())
        summary = build_replay_summary(rt, stats, strategy=driver.strategy, mode="paper", state_dir=tmp_path,
                                       quotes=q, trades=q)
    assert stats.interrupted and stats.quotes == 10
    assert summary["interrupted"] is True and summary["events"] == {"quotes": 10, "trades": 0}


def test_replay_reorder_ms_puts_late_rows_back(tmp_path: Path) -> None:
    q, t = market_files(tmp_path)
    lines = q.read_text().splitlines()
    lines[20], lines[21] = lines[21], lines[20]  # two rows 1 s apart, swapped
    q.write_text("\n".join(lines) + "\n")
    base = ("--json", "--strategy", "none", "--quotes", str(q), "--trades", str(t))
    skipped = one_json(cli(*base, "--state-dir", str(tmp_path / "a")))
    assert skipped["malformed_rows"]["count"] == 1 and skipped["events"]["quotes"] == 119
    kept = one_json(cli(*base, "--reorder-ms", "1000", "--state-dir", str(tmp_path / "b")))
    assert kept["malformed_rows"]["count"] == 0 and kept["events"]["quotes"] == 120
    line = one_line_error(cli(*base, "--reorder-ms", "-5", "--state-dir", str(tmp_path / "c")))
    assert "--reorder-ms" in line
