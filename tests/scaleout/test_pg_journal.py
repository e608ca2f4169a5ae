"""The PostgreSQL journal across processes: exactly-once claims, migrations, start errors, takeover.

Every test gets a fresh database in a throwaway cluster (``pg_url``, ``tests/_pgcluster.py``).
The backend-independent contract (replay, conflict, in-flight, TTL, fail closed) runs over both
backends in ``tests/journal/test_journal.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from actors.journal.postgres import PostgresBackend, known_schema_version, redact_url
from actors.journal.sqlite import Claim, JournalError

REPO = Path(__file__).resolve().parents[2]
TTL = 3600.0


def claim(coid: str, fp: str = "fp-a", now: float = 1000.0) -> Claim:
    return Claim("acc-1", coid, fp, "{}", "{}", "paper", now)


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


_CLAIMER = textwrap.dedent("""
    import json, random, sys
    sys.path.insert(0, {repo!r})
    from actors.journal.sqlite import Claim
    from actors.journal.postgres import PostgresBackend
    url, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    account = sys.argv[4] if len(sys.argv) > 4 else "acc-1"
    backend = PostgresBackend.open(url)
    j = backend.journal()
    keys = [f"k-{{i}}" for i in range(n)]
    random.Random(seed).shuffle(keys)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    won, outcomes = [], {{}}
    for start in range(0, n, 37):
        batch = [Claim(account, k, "fp", "{{}}", "{{}}", "paper", 1000.0) for k in keys[start:start + 37]]
        for r in j.claim_batch(batch, 3600.0):
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
            if r.outcome == "CLAIMED":
                won.append(r.record.client_order_id)
    print(json.dumps({{"won": won, "outcomes": outcomes, "max_batch": j.stats().max_batch}}))
    backend.close()
""")


def test_claims_are_exactly_once_across_processes(pg_url: str, tmp_path: Path) -> None:
    PostgresBackend.open(pg_url).close()  # migrate once, so the racers only claim
    script = tmp_path / "claimer.py"
    script.write_text(_CLAIMER.format(repo=str(REPO)))
    n = 1500
    procs = [subprocess.Popen([sys.executable, str(script), pg_url, str(seed), str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    results = []
    for p in procs:
        out, err = p.communicate("go\n", timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    won = [k for r in results for k in r["won"]]
    assert len(won) == n and len(set(won)) == n  # every key claimed, and by exactly one process
    # every process tried every key: the other 3n attempts were refused as in flight, never claimed twice
    assert sum(r["outcomes"].get("IN_FLIGHT", 0) for r in results) == 3 * n
    assert all(r["max_batch"] == 37 for r in results)  # claims were group-committed
    assert rows(pg_url, "SELECT count(*) FROM flowroute.idempotency") == [(n,)]


def test_one_id_under_two_accounts_is_claimed_once_across_processes(pg_url: str, tmp_path: Path) -> None:
    """Four processes, each for its own account, claim the same ids at once, in their own orders:
    every id is claimed by exactly one of them (the one-account index: a venue sees the id, not the
    account); the others are refused OTHER_ACCOUNT, never claimed beside it."""
    PostgresBackend.open(pg_url).close()
    script = tmp_path / "claimer.py"
    script.write_text(_CLAIMER.format(repo=str(REPO)))
    n = 600
    procs = [subprocess.Popen([sys.executable, str(script), pg_url, str(seed), str(n), f"acc-{seed}"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    results = []
    for p in procs:
        out, err = p.communicate("go\n", timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    won = [k for r in results for k in r["won"]]
    assert len(won) == n and len(set(won)) == n
    assert sum(r["outcomes"].get("OTHER_ACCOUNT", 0) for r in results) == 3 * n
    assert rows(pg_url, "SELECT count(*), count(DISTINCT client_order_id) FROM flowroute.idempotency") == [(n, n)]


def test_migration_5_keeps_an_id_two_accounts_already_hold(pg_url: str, monkeypatch) -> None:
    """A database from before the one-account rule may hold an id under two accounts: migration 5
    applies (it never fails on them), each record still answers its own key, and no third account
    (nor a reclaim after the TTL) claims the id beside them."""
    import actors.journal.postgres as pgj

    known = pgj.migrations()
    monkeypatch.setattr(pgj, "migrations", lambda: known[:4])
    old = PostgresBackend.open(pg_url)
    old_owner = old.owner_id
    old.close()
    with psycopg.connect(pg_url) as conn:
        for account in ("acc-1", "acc-2"):
            conn.execute("INSERT INTO flowroute.idempotency (account_id, client_order_id, fingerprint, status, report_json, "
                         "created_at, updated_at, intent_json, context_json, adapter_id, owner_id) VALUES "
                         "(%s, 'shared', 'fp-a', 'COMPLETED', '{}', 1000, 1000, '{}', '{}', 'paper', %s)", (account, old_owner))
    monkeypatch.undo()
    backend = PostgresBackend.open(pg_url)
    assert backend.schema_version == known_schema_version()
    j = backend.journal()
    c = [Claim("acc-1", "shared", "fp-a", "{}", "{}", "paper", 1001.0), Claim("acc-2", "shared", "fp-a", "{}", "{}", "paper", 1001.0),
         Claim("acc-3", "shared", "fp-a", "{}", "{}", "paper", 1001.0),
         Claim("acc-2", "shared", "fp-b", "{}", "{}", "paper", 1000.0 + TTL + 1)]
    assert [r.outcome for r in j.claim_batch(c, TTL)] == ["REPLAY", "REPLAY", "OTHER_ACCOUNT", "OTHER_ACCOUNT"]
    assert rows(pg_url, "SELECT account_id, fingerprint, legacy_account FROM flowroute.idempotency ORDER BY account_id") == [
        ("acc-1", "fp-a", "acc-1"), ("acc-2", "fp-a", "acc-2")]
    # a new id is one account's, enforced by the database itself
    j.claim_batch([Claim("acc-1", "fresh", "fp", "{}", "{}", "paper", 1001.0)], TTL)
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO flowroute.idempotency (account_id, client_order_id, fingerprint, status, created_at, "
                     "updated_at, intent_json, context_json, adapter_id, owner_id) VALUES "
                     "('acc-2', 'fresh', 'fp', 'IN_PROGRESS', 1, 1, '{}', '{}', 'paper', 'x')")
    backend.close()


def test_migrations_are_applied_once_and_recorded(pg_url: str) -> None:
    a = PostgresBackend.open(pg_url)
    b = PostgresBackend.open(pg_url)
    assert a.schema_version == b.schema_version == known_schema_version() >= 1
    assert rows(pg_url, "SELECT version, name FROM flowroute.schema_migrations ORDER BY version") == [
        (1, "0001_journal.sql"), (2, "0002_budget.sql"), (3, "0003_throttle.sql"), (4, "0004_reserved.sql"),
        (5, "0005_one_account_per_id.sql"), (6, "0006_order_report_fields.sql"),
        (7, "0007_retention_index.sql")]
    assert rows(pg_url, "SELECT count(*) FROM flowroute.owners") == [(2,)]
    a.close()
    b.close()


def test_a_newer_schema_is_refused_and_nothing_is_written(pg_url: str) -> None:
    PostgresBackend.open(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO flowroute.schema_migrations (version, name) VALUES (99, '0099_future.sql')")
    before = rows(pg_url, "SELECT count(*) FROM flowroute.owners")
    with pytest.raises(JournalError, match="schema is at version 99, newer than this build knows"):
        PostgresBackend.open(pg_url)
    assert rows(pg_url, "SELECT count(*) FROM flowroute.owners") == before


def test_a_failing_migration_leaves_nothing_half_written(pg_url: str, monkeypatch, tmp_path: Path) -> None:
    import actors.journal.postgres as pgj

    bad = tmp_path / "migrations"
    bad.mkdir()
    (bad / "0001_journal.sql").write_text((pgj.MIGRATIONS_DIR / "0001_journal.sql").read_text())
    (bad / "0002_broken.sql").write_text("CREATE TABLE flowroute.extra (x int); SELECT no_such_function();")
    monkeypatch.setattr(pgj, "MIGRATIONS_DIR", bad)
    with pytest.raises(JournalError, match="no_such_function"):
        PostgresBackend.open(pg_url)
    # neither migration stayed behind: the schema and its version table are absent
    assert rows(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'flowroute'") == [(0,)]


def test_start_errors_name_the_cause(pg_cluster, tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot reach the PostgreSQL server"):
        PostgresBackend.open(f"postgresql://postgres@/postgres?host={tmp_path}", connect_timeout_s=1)
    with pytest.raises(JournalError, match="wrong credentials"):
        PostgresBackend.open(pg_cluster.url(user="nobody"))
    with pytest.raises(JournalError, match="database does not exist"):
        PostgresBackend.open(pg_cluster.url(dbname="no_such_db"))
    # nothing was created anywhere
    assert rows(pg_cluster.url(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'flowroute'") == [(0,)]


def test_password_is_redacted() -> None:
    assert redact_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_survivor_takes_over_expired_leases_only(pg_url: str) -> None:
    dead = PostgresBackend.open(pg_url, lease_s=0.2)
    live = PostgresBackend.open(pg_url, lease_s=30)
    dj, lj = dead.journal(), live.journal()
    dj.claim_batch([claim("d-1"), claim("d-2"), claim("d-3")], ttl_s=TTL)
    dj.complete("acc-1", "d-2", "COMPLETED", "{}", now=1001.0)  # answered, still resting: adopted
    dj.complete("acc-1", "d-3", "COMPLETED", "{}", now=1001.0)  # over (FILLED): stays with the dead owner
    from actors.journal.sqlite import OrderEventRow

    dj.record_order_events([OrderEventRow(1, 1.0, "acc-1", "d-2", "SUBMITTING", "ACCEPTED"),
                            OrderEventRow(1, 1.0, "acc-1", "d-3", "SUBMITTING", "FILLED")])
    lj.claim_batch([claim("l-1")], ttl_s=TTL)
    dead._stop.set()  # the process "dies": nobody renews its lease; its rows stay
    dead._lease_thread.join()
    import time

    time.sleep(0.4)  # past the dead owner's lease, on the server's clock
    survivor = PostgresBackend.open(pg_url, lease_s=30)
    sj = survivor.journal()
    assert sj.mark_all_unknown(now=2000.0) == 1  # d-1 was in flight: now UNKNOWN, to be reconciled
    assert {r.client_order_id: r.status for r in sj.load_records()} == {"d-1": "UNKNOWN", "d-2": "COMPLETED"}
    assert sj.owner_of("acc-1", "l-1") == live.owner_id and lj.get("acc-1", "l-1").status == "IN_PROGRESS"
    assert sj.owner_of("acc-1", "d-3") == dead.owner_id
    # a second survivor finds nothing left to take over
    other = PostgresBackend.open(pg_url, lease_s=30)
    assert other.journal().take_over_expired(now=2001.0) == (0, [], [])
    assert dead.renew_lease() is False and dead.lease_lost  # the dead process, if it woke, knows it lost them
    for b in (other, survivor, live):
        b.close()
    dead.close(release=False)


def test_a_running_takeover_leaves_this_processes_in_flight_orders_alone(pg_url: str) -> None:
    """The takeover loop of a live process (every lease_s / 2) adopts dead owners' orders only: its
    own in-flight claims stay IN_PROGRESS (they used to become UNKNOWN each round, and the UPDATE
    of its own rows deadlocked with its claim batches: E_EXEC_PERSISTENCE under --kill-one)."""
    live = PostgresBackend.open(pg_url, lease_s=30)
    lj = live.journal()
    lj.claim_batch([claim("mine-1"), claim("mine-2")], ttl_s=TTL)
    assert lj.take_over_expired(now=2000.0) == (0, [], [])
    assert {r.client_order_id: r.status for r in lj.load_records()} == {"mine-1": "IN_PROGRESS", "mine-2": "IN_PROGRESS"}
    live.close()


def test_a_completion_batch_locks_keys_in_the_order_claim_batches_do(pg_url: str) -> None:
    """Another process's claim batch holds fleet-wide id k-2 and then asks for k-9 (key order);
    our completion batch lists k-9 before k-2. It must wait for k-2 without holding k-9 (it used
    to update k-9 first: a deadlock, and a whole claim batch failed with E_EXEC_PERSISTENCE)."""
    import threading
    import time

    backend = PostgresBackend.open(pg_url, lease_s=30)
    j = backend.journal()
    j.claim_batch([claim("k-2"), claim("k-9")], ttl_s=TTL)
    from actors.journal.sqlite import Completion

    other = psycopg.connect(pg_url)
    other.execute("SET lock_timeout = '5s'")
    other.execute("SELECT 1 FROM flowroute.idempotency WHERE client_order_id = 'k-2' FOR UPDATE")
    done: list = []
    t = threading.Thread(target=lambda: done.append(j.complete_batch(
        [Completion("acc-1", "k-9", "COMPLETED", "{}", 1001.0), Completion("acc-1", "k-2", "COMPLETED", "{}", 1001.0)])))
    t.start()
    with psycopg.connect(pg_url, autocommit=True) as watch:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()[0] == 0:
            time.sleep(0.02)  # our completion batch is now waiting for k-2
    other.execute("SELECT 1 FROM flowroute.idempotency WHERE client_order_id = 'k-9' FOR UPDATE")  # no deadlock
    other.commit()
    other.close()
    t.join(10)
    assert done == [2]
    assert {r.client_order_id: r.status for r in j.load_records()} == {"k-2": "COMPLETED", "k-9": "COMPLETED"}
    backend.close()


def test_closed_backend_is_a_journal_error(pg_url: str) -> None:
    backend = PostgresBackend.open(pg_url)
    j = backend.journal()
    backend.close()
    with pytest.raises(JournalError, match="closed"):
        j.claim_batch([claim("x")], ttl_s=TTL)


def test_a_survivor_sets_adopted_budget_values_again_without_counting_twice(pg_url: str) -> None:
    """The dead process reserved 100 and spent 40 of it (flushed); the survivor restores the order
    and replays the fill: the shared totals stay as they were. A fill the dead process had not
    flushed yet is repaired by the survivor's flush."""
    from decimal import Decimal as D

    from actors.journal.pg_budget import PgBudget

    dead, survivor = PostgresBackend.open(pg_url), PostgresBackend.open(pg_url)
    d = PgBudget(dead)
    assert d.reserve("acc-1", "o-1", D("100"), D("150")) is None
    assert d.reserve("acc-1", "o-2", D("60"), D("150")) is not None  # 160 > 150: denied
    d.on_fill("acc-1", "o-1", D("40"), D("40"))
    assert d.flush()
    assert d.totals("acc-1") == (D("60"), D("40"))
    d.on_fill("acc-1", "o-1", D("10"), D("10"))  # journaled, but the process died before this flush
    s = PgBudget(survivor)
    s.restored("acc-1", "o-1", D("100"))
    s.on_fill("acc-1", "o-1", D("40"), D("40"))
    s.on_fill("acc-1", "o-1", D("10"), D("10"))
    assert s.flush()
    assert s.totals("acc-1") == (D("50"), D("50"))
    assert s.flush() and s.totals("acc-1") == (D("50"), D("50"))  # nothing pending: nothing moves
    s.release("acc-1", "o-1", D("50"))
    assert s.flush() and s.totals("acc-1") == (D("0"), D("50"))
    dead.close()
    survivor.close()
