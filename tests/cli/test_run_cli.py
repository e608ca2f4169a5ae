"""run.py (the launcher of ``flowroute.cli``): the command line (replay, stress, repl, audit verify), driven as real subprocesses,
plus in-process checks of its pure helpers (digest, percentile, state cleaning, strategy).

The replay tests need the recorded BTC/USDT data in ../shared/data beside the repository and
are skipped (with the reason) where it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "run.py"
DATA = ROOT.parent / "shared" / "data"
QUOTES = DATA / "binance_btcusdt_quotes_20210108.csv"
TRADES = DATA / "binance_btcusdt_trades_20210108.csv"
needs_data = pytest.mark.skipif(
    not (QUOTES.is_file() and TRADES.is_file()),
    reason=f"recorded BTC/USDT market data not found at {DATA} (../shared/data beside the repository)",
)
FAULTS = "crash=0.005,hang=0.002,ambiguous=0.01,transient=0.05,reject=0.02"


def cli(*args: str, stdin: str | None = None, script: Path = RUN, env: dict | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` from the repository root."""
    return subprocess.run([sys.executable, str(script), *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_json(proc: subprocess.CompletedProcess) -> dict:
    """stdout must be exactly one JSON object (logs go to stderr)."""
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got {len(lines)}; stderr:\n{proc.stderr[-3000:]}"
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def load_cli_modules() -> SimpleNamespace:
    """The command line's helpers (``flowroute.cli``: ``_common`` and ``strategy``) in one namespace."""
    from flowroute.cli import _common, strategy

    names = {**vars(_common), **vars(strategy)}
    return SimpleNamespace(**{k: v for k, v in names.items() if not k.startswith("_")})


R = load_cli_modules()


# --------------------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------------------
@needs_data
def test_replay_json_routes_orders_counts_bad_input_and_is_deterministic(tmp_path: Path) -> None:
    first = cli("--json", "--state-dir", str(tmp_path / "a"))  # no command: replay is the default
    assert first.returncode == 0, first.stderr[-3000:]
    a = one_json(first)
    assert a["command"] == "replay" and a["strategy"] == "ma_cross" and a["mode"] == "paper"
    assert a["events"] == {"quotes": 451, "trades": 2001}
    assert a["routed_to_paper"] >= 20
    assert a["orders_total"] >= 20
    assert a["fills_total"] > 0
    for code in ("E_EXEC_VALIDATION", "E_EXEC_POLICY_BLOCKED", "E_EXEC_ROUTE_CONFIG_INVALID"):
        assert a["errors_by_code"].get(code, 0) >= 1, a["errors_by_code"]
    assert [p["ok"] for p in a["probes"]] == [True] * 4
    assert a["malformed_rows"] == {"count": 0, "first": []}
    assert a["timeouts"] == [] and a["unknown_open"] == 0
    assert a["book_invariants"] == [] and a["risk_invariants"] == []
    assert a["latency_us"]["n"] > 0 and a["latency_us"]["p50"] <= a["latency_us"]["p99"]
    assert set(a["breaker_states"]) >= {"paper"} and a["restarts"] == 0
    assert len(a["fills_sha256"]) == 64
    pos = a["positions"][0]
    assert pos["account_id"] == "replay" and pos["symbol"] == "BTC/USDT"
    Decimal(a["realized_pnl"]), Decimal(a["unrealized_pnl"]), Decimal(pos["net_qty"])  # strings of decimals
    assert a["audit_ok"] is True
    assert Path(a["journal_path"]).parent == tmp_path / "a" and Path(a["audit_path"]).is_file()

    second = cli("replay", "--json", "--state-dir", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr[-3000:]
    b = one_json(second)
    assert b["fills_sha256"] == a["fills_sha256"]
    readme = (ROOT / "README.md").read_text()
    assert f"fills_sha256 = {a['fills_sha256']}" in readme, (
        "the replay's fills changed: put the new fills_sha256 in README.md (and say why in the commit)"
    )
    assert b["orders_by_status"] == a["orders_by_status"]
    assert b["positions"] == a["positions"]


@needs_data
def test_replay_reports_malformed_rows_and_continues(tmp_path: Path) -> None:
    lines = QUOTES.read_text().splitlines(keepends=True)
    bad = ["2021-01-08T00:00:06.000000Z,BTC/USDT,abc,1,39433,1\n",
           "2021-01-08T00:00:06.100000Z,BTC/USDT,39430\n",
           "not-a-date,BTC/USDT,39430,1,39431,1\n"]
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("".join(lines[:50] + bad + lines[50:]))
    proc = cli("--json", "--quotes", str(quotes), "--trades", str(TRADES), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = one_json(proc)
    assert s["malformed_rows"]["count"] == 3
    first = s["malformed_rows"]["first"]
    assert first[0] == "quotes.csv:51: column 'bid': 'abc' is not a decimal"
    assert first[1].startswith("quotes.csv:52: expected 6 columns")
    assert "quotes.csv:53: column 'ts_utc'" in first[2]
    assert s["events"]["quotes"] == 451 and s["fills_total"] > 0


@needs_data
def test_replay_human_summary(tmp_path: Path) -> None:
    proc = cli("--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for text in ("orders by status", "FILLED", "positions", "errors by code", "E_EXEC_POLICY_BLOCKED",
                 "latency", "breakers", "fills sha256", "verified: ok"):
        assert text in out, text


def test_replay_missing_quotes_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    proc = cli("--json", "--quotes", str(missing), "--trades", str(missing), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--quotes" in proc.stderr and "nope.csv" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()  # nothing started, nothing written


def test_replay_without_shared_data_dir_says_so(tmp_path: Path) -> None:
    # a copy of run.py whose ../shared/data does not exist (the project is importable via PYTHONPATH)
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(RUN, repo / "run.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = cli("--json", "--state-dir", str(tmp_path / "s"), script=repo / "run.py", env=env)
    assert proc.returncode == 2
    assert "../shared/data" in proc.stderr and "is missing" in proc.stderr
    assert "--quotes" in proc.stderr and "--trades" in proc.stderr


def test_replay_unknown_strategy_is_a_clear_error(tmp_path: Path) -> None:
    proc = cli("--strategy", "martingale", "--quotes", str(RUN), "--trades", str(RUN), "--state-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "martingale" in proc.stderr and "ma_cross" in proc.stderr


# --------------------------------------------------------------------------------------
# stress
# --------------------------------------------------------------------------------------
def test_stress_small_all_invariants_hold(tmp_path: Path) -> None:
    proc = cli("stress", "--senders", "4", "--orders", "400", "--json", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = one_json(proc)
    assert s["intents"] == 400 and s["final_reports"] == 400
    assert s["invariants"] == {
        "every_intent_one_final_report": True,
        "no_duplicate_venue_submission": True,
        "duplicates_replayed_or_conflict": True,
        "invalid_rejected": True,
        "positions_equal_fills": True,
        "budget_never_overbooked": True,
    }
    assert s["venue_duplicate_submissions"] == 0
    assert s["mix"]["new"] > 300 and s["mix"].get("dup", 0) > 0 and s["mix"].get("invalid", 0) + s["mix"].get("live", 0) > 0
    assert s["errors_by_code"].get("E_EXEC_IDEMPOTENCY_CONFLICT", 0) == s["mix"].get("conflict", 0)
    assert s["latency_us"]["n"] > 0 and s["throughput_per_s"] > 0
    assert s["cpu_us_per_op"] > 0  # the process's CPU over the timed window, per operation
    by_thread = s["cpu_us_per_op_by_thread"]  # the same window's CPU by thread, the largest first
    assert by_thread["stress-senders"] > 0 and any(name.endswith("-ledger") for name in by_thread), by_thread
    assert list(by_thread.values()) == sorted(by_thread.values(), reverse=True) or "other" in by_thread
    assert sum(by_thread.values()) <= 1.2 * s["cpu_us_per_op"] + 50, by_thread  # clock ticks: 10 ms each
    assert isinstance(s["affinity"], list) and s["affinity"]
    assert (tmp_path / "journal.sqlite").is_file()


def test_stress_with_faults_all_invariants_hold(tmp_path: Path) -> None:
    proc = cli("stress", "--senders", "4", "--orders", "600", "--faults", FAULTS, "--seed", "7", "--json",
               "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = one_json(proc)
    assert s["intents"] == 600 and s["final_reports"] == 600
    assert set(s["invariants"]) == {
        "every_intent_one_final_report", "no_duplicate_venue_submission", "duplicates_replayed_or_conflict",
        "invalid_rejected", "positions_equal_fills", "budget_never_overbooked", "all_unknown_resolved",
        "adapters_healthy_at_end", "restarts_happened",
    }
    assert all(s["invariants"].values()), s["invariant_details"]
    assert s["restarts"] > 0 and s["fault_stats"]["crash"] > 0
    assert s["venue_duplicate_submissions"] == 0


def test_stress_budget_binds_and_is_never_overbooked(tmp_path: Path) -> None:
    proc = cli("stress", "--senders", "8", "--orders", "800", "--budget", "8000", "--json", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = one_json(proc)
    assert s["invariants"]["budget_never_overbooked"] is True
    assert s["errors_by_code"].get("risk:budget", 0) > 0, "the budget must bind for this test to mean anything"


def test_stress_bad_fault_spec_is_a_clear_error(tmp_path: Path) -> None:
    proc = cli("stress", "--orders", "10", "--faults", "explode=0.5", "--state-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "--faults" in proc.stderr and "explode" in proc.stderr


# --------------------------------------------------------------------------------------
# repl
# --------------------------------------------------------------------------------------
def test_repl_python_console_driven_through_a_pipe(tmp_path: Path) -> None:
    commands = "quote(39432.99, 39433.62)\nbuy(0.001)\norders()\npositions()\nsell('-1')\n"
    proc = cli("repl", "--python", "--state-dir", str(tmp_path), stdin=commands, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FILLED" in proc.stdout
    assert "39433.62" in proc.stdout
    assert "E_EXEC_VALIDATION" in proc.stdout  # the bad sell is answered, the session goes on
    assert "buy(qty" in proc.stderr and "runtime stopped" in proc.stderr
    assert (tmp_path / "audit.jsonl").is_file()


def test_repl_command_shell_driven_through_stdin(tmp_path: Path) -> None:
    commands = "\n".join([
        "help", "help cancel", "quote 39432.99 39433.62", "buy 0.001", "buy abc", "sell 0.002 @40000 gtc",
        "orders open", "cancel nope", "positions", "health", "breaker paper", "breaker nope", "halt", "buy 0.001",
        "resume", "frobnicate", "sell 0.001 @39433.00",
    ]) + "\n"
    proc = cli("repl", "--state-dir", str(tmp_path), stdin=commands, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Traceback" not in out + proc.stderr
    for command in ("buy", "sell", "cancel", "orders", "positions", "health", "breaker", "halt", "resume",
                    "quote", "help", "exit"):
        assert f"  {command}" in out, f"help lists {command}"
    assert "cancel ID:" in out  # help COMMAND
    assert "FILLED" in out and "39433.62" in out  # the market buy
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, errors  # each mistake is exactly one line
    assert any("'abc' is not a number" in e for e in errors)
    assert any("no order 'nope'" in e for e in errors)  # unknown id: its own error, not status UNKNOWN
    assert any("no adapter 'nope'" in e for e in errors)
    assert any("unknown command 'frobnicate'" in e for e in errors)
    assert "ACCEPTED" in out and "leaves 0.002" in out  # the resting limit, listed by orders open
    assert "trading HALTED" in out and "E_EXEC_RISK_DENIED" in out and "trading ACTIVE" in out
    assert "breaker paper: CLOSED" in out
    assert "* filled" in out  # fills are printed as they happen
    assert "runtime stopped" in proc.stderr


def test_repl_prints_a_resting_order_filling_later(tmp_path: Path) -> None:
    # the limit rests; the next quote crosses it and the fill is printed without any command asking
    commands = "quote 39432.99 39433.62\nbuy 0.001 @39400\nquote 39390.00 39399.00\nquote\n"
    proc = cli("repl", "--state-dir", str(tmp_path), stdin=commands, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ACCEPTED" in proc.stdout
    assert "* filled" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------------------
# audit verify
# --------------------------------------------------------------------------------------
def test_audit_verify_ok_then_edited(tmp_path: Path) -> None:
    from actors.audit.log import AuditLog

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for n in range(1, 4):
        log.append("transition", {"client_order_id": f"c{n}", "to": "ACCEPTED"})
    log.close()
    ok = cli("audit", "verify", str(path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout and "3 line(s)" in ok.stdout

    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"c2"', '"c9"')
    path.write_text("".join(lines))
    bad = cli("audit", "verify", str(path))
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout and "line 2" in bad.stdout and "edited" in bad.stdout


def test_audit_verify_missing_file_fails(tmp_path: Path) -> None:
    proc = cli("audit", "verify", str(tmp_path / "none.jsonl"))
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout


# --------------------------------------------------------------------------------------
# helpers, in process
# --------------------------------------------------------------------------------------
def test_clean_state_removes_only_flowroute_files(tmp_path: Path) -> None:
    own = ["journal.sqlite", "journal.sqlite-wal", "audit.jsonl", "audit.jsonl.head", "paper_book.sqlite",
           "shadow_book.sqlite-shm"]
    other = ["notes.txt", "journal.txt", "book.sqlite"]
    for name in own + other:
        (tmp_path / name).write_text("x")
    (tmp_path / "stress").mkdir()
    (tmp_path / "stress" / "journal.sqlite").write_text("x")
    removed = R.clean_state(tmp_path)
    assert sorted(p.name for p in removed) == sorted(own)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(other + ["stress"])
    assert (tmp_path / "stress" / "journal.sqlite").exists()
    assert R.clean_state(tmp_path / "absent") == []


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=200))
def test_percentile_is_nearest_rank(values: list[int]) -> None:
    ordered = sorted(values)
    assert R.percentile(values, 50) == ordered[max(1, -(-len(values) * 50 // 100)) - 1]
    assert R.percentile(values, 100) == ordered[-1]
    assert min(values) <= R.percentile(values, 99) <= max(values)


def test_percentile_of_nothing() -> None:
    assert R.percentile([], 50) is None
    assert R.latency_summary([]) == {"p50": None, "p99": None, "max": None, "n": 0}


def _report(coid: str, side: str, fills: list[tuple[str, str, str, int]]):
    from protocols import ExecutionReport, Fill

    t0 = datetime(2021, 1, 8, tzinfo=UTC)
    return ExecutionReport(client_order_id=coid, side=side, symbol="BTC/USDT", status="FILLED", fills=tuple(
        Fill(trade_id=tid, qty=Decimal(q), price=Decimal(p), fee=Decimal("0.01"), fee_currency="USDT", ts=t0 + timedelta(seconds=s))
        for tid, q, p, s in fills))


@settings(max_examples=30)
@given(st.permutations([0, 1, 2]))
def test_fills_digest_ignores_report_order_but_not_content(order: list[int]) -> None:
    reports = [_report("a", "BUY", [("p-1", "0.001", "100", 1), ("p-3", "0.002", "101", 3)]),
               _report("b", "SELL", [("p-2", "0.001", "102", 2)]),
               _report("c", "BUY", [])]
    base = R.fills_digest(reports)
    assert R.fills_digest([reports[i] for i in order]) == base
    assert base[0] == 3
    changed = [reports[0], _report("b", "SELL", [("p-2", "0.001", "102.5", 2)]), reports[2]]
    assert R.fills_digest(changed)[1] != base[1]


def test_fill_line_is_canonical() -> None:
    r = _report("ma_cross-00001", "BUY", [("paper-1", "0.001", "39433.62", 1)])
    assert R.fill_line(r.client_order_id, r.side, r.fills[0]) == (
        "paper-1|ma_cross-00001|BUY|0.001|39433.62|0.01|TAKER|2021-01-08T00:00:01+00:00")


class _View:
    def __init__(self, statuses: dict) -> None:
        self.statuses = statuses

    def status(self, coid: str):
        return self.statuses.get(coid)


def _quotes(mids: list[str]):
    from protocols import Quote

    t0 = datetime(2021, 1, 8, tzinfo=UTC)
    half = Decimal("0.005")
    return [Quote(ts=t0 + timedelta(milliseconds=100 * i), symbol="BTC/USDT", bid=Decimal(m) - half, bid_size=Decimal(1),
                  ask=Decimal(m) + half, ask_size=Decimal(1)) for i, m in enumerate(mids)]


def test_ma_cross_buys_on_an_upward_cross_and_sells_on_a_downward_one() -> None:
    from protocols import OrderStatus

    strat = R.MaCrossStrategy(fast=2, slow=4, limit_every=1000, cancel_after=1000)
    clock = R.ReplayClock()
    mids = ["100"] * 3 + ["99", "98", "97", "99", "102", "104", "101", "98", "95"]
    actions = []
    for q in _quotes(mids):
        clock.advance(q.ts)
        actions += strat.on_quote(q, clock, _View({}))
    markets = [a.intent for a in actions if isinstance(a, R.SubmitAction)]
    assert [(i.side.value, i.order_type.value) for i in markets] == [("BUY", "MARKET"), ("SELL", "MARKET")]
    assert [i.client_order_id for i in markets] == ["ma_cross-00001", "ma_cross-00002"]
    assert all(i.quantity == Decimal("0.001") for i in markets)
    assert OrderStatus.ACCEPTED.is_open  # the view protocol relies on it


def test_ma_cross_limits_rest_behind_the_touch_and_stale_ones_are_canceled() -> None:
    from protocols import OrderStatus

    strat = R.MaCrossStrategy(fast=2, slow=4, limit_every=2, cancel_after=3, offsets=(1, 3))
    clock = R.ReplayClock()
    quotes = _quotes(["100"] * 8)
    placed, canceled = [], []
    statuses: dict = {}
    for q in quotes:
        clock.advance(q.ts)
        for action in strat.on_quote(q, clock, _View(statuses)):
            if isinstance(action, R.SubmitAction):
                placed.append(action.intent)
                statuses[action.intent.client_order_id] = OrderStatus.ACCEPTED
                strat.on_report(_report(action.intent.client_order_id, action.intent.side.value, []).model_copy(
                    update={"status": OrderStatus.ACCEPTED}))
            else:
                canceled.append(action.client_order_id)
    assert [(i.side.value, i.limit_price) for i in placed] == [
        ("BUY", Decimal("99.985")), ("SELL", Decimal("100.035")), ("BUY", Decimal("99.985")), ("SELL", Decimal("100.035"))]
    assert canceled == [placed[0].client_order_id, placed[1].client_order_id]
    statuses[placed[2].client_order_id] = OrderStatus.FILLED  # filled meanwhile: not canceled at the end
    end = strat.on_end(clock, _View(statuses))
    assert [a.client_order_id for a in end] == [placed[3].client_order_id]


def test_crossed_quotes_are_skipped_by_the_strategy() -> None:
    from protocols import Quote

    strat = R.MaCrossStrategy()
    q = Quote(ts=datetime(2021, 1, 8, tzinfo=UTC), symbol="BTC/USDT", bid=Decimal("101"), bid_size=Decimal(1),
              ask=Decimal("100"), ask_size=Decimal(1))
    clock = R.ReplayClock()
    clock.advance(q.ts)
    assert strat.on_quote(q, clock, _View({})) == []
    assert strat.stats()["skipped_quotes"] == 1 and strat.stats()["good_quotes"] == 0
