"""``flowroute stress --processes N --journal-url …``: real processes on one PostgreSQL journal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowroute", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_two_processes_keep_the_fleet_invariants(pg_url: str, tmp_path: Path) -> None:
    done = run_cli("stress", "--processes", "2", "--senders", "4", "--orders", "1200", "--journal-url", pg_url,
                   "--state-dir", str(tmp_path / "fleet"), "--budget", "6000", "--rate", "400/1",
                   "--shared-ids", "60", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    s = json.loads(done.stdout.strip().splitlines()[-1])
    assert s["processes"] == 2 and s["intents"] == 1200
    assert s["invariants"] == {"no_id_sent_twice_fleet": True, "shared_ids_executed_once": True,
                               "budget_never_overbooked_fleet": True, "rate_within_shared_throttle": True,
                               "positions_equal_venue_book_fleet": True, "every_process_ok": True}, s["invariant_details"]
    assert s["shared_book"] is True and s["killed"] is None
    assert "replayed" in s["invariant_details"]["shared_ids_executed_once"]
    assert s["claims_per_transaction"] >= 1
    # the budget bound: some orders were denied by the fleet-wide budget
    assert sum(c["errors_by_code"].get("risk:budget", 0) for c in s["children"]) > 0
    # a second run on the same journal is refused (its ids would replay), unless --fresh
    again = run_cli("stress", "--processes", "2", "--orders", "10", "--journal-url", pg_url,
                    "--state-dir", str(tmp_path / "fleet2"))
    assert again.returncode == 2 and "pass --fresh" in again.stderr


def test_kill_one_process_midway_survivors_take_over_and_resolve_everything(pg_url: str, tmp_path: Path) -> None:
    """Three processes on one journal and one paper book; the last is SIGKILLed when half its orders
    are claimed. The survivors take over its unfinished orders once its (2 s) lease expires and
    reconcile them with the shared book: every order resolved, none sent twice, and the book's
    fills and positions are the journal's and the ledgers'."""
    done = run_cli("stress", "--processes", "3", "--senders", "4", "--orders", "1800", "--journal-url", pg_url,
                   "--state-dir", str(tmp_path / "fleet"), "--budget", "none", "--shared-ids", "60", "--kill-one",
                   "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    s = json.loads(done.stdout.strip().splitlines()[-1])
    assert s["invariants"] == {"no_id_sent_twice_fleet": True, "shared_ids_executed_once": True,
                               "budget_never_overbooked_fleet": True, "positions_equal_venue_book_fleet": True,
                               "every_order_resolved_fleet": True, "every_process_ok": True}, s["invariant_details"]
    killed = s["killed"]
    assert killed["process"] == 2 and killed["killed_while_running"] and 300 <= killed["claims_at_kill"] < 600, killed
    assert killed["orders_taken_over"] > 0, killed  # its resting orders at least: adopted, not re-sent
    assert s["processes"] == 2 and all(c["intents"] == 600 for c in s["children"]), [c["intents"] for c in s["children"]]
    assert "records in flight or UNKNOWN: 0" in s["invariant_details"]["every_order_resolved_fleet"]


def test_kill_one_needs_several_processes(tmp_path: Path) -> None:
    done = run_cli("stress", "--kill-one", "--orders", "10", "--state-dir", str(tmp_path / "x"))
    assert done.returncode == 2 and "--kill-one needs --processes 2 or more" in done.stderr


def test_processes_without_a_journal_url_is_a_clear_error(tmp_path: Path) -> None:
    done = run_cli("stress", "--processes", "2", "--orders", "10", "--state-dir", str(tmp_path / "x"))
    assert done.returncode == 2
    assert "--processes needs --journal-url" in done.stderr and "Traceback" not in done.stderr


def test_one_process_on_a_journal_with_an_earlier_run_needs_fresh(pg_url: str, tmp_path: Path) -> None:
    args = ("stress", "--senders", "2", "--orders", "60", "--journal-url", pg_url, "--budget", "none", "--json")
    first = run_cli(*args, "--state-dir", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_cli(*args, "--state-dir", str(tmp_path / "b"))
    assert again.returncode == 2 and "pass --fresh" in again.stderr
    fresh = run_cli(*args, "--state-dir", str(tmp_path / "c"), "--fresh")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    s = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert all(s["invariants"].values()) and s["claims_per_transaction"] >= 1
