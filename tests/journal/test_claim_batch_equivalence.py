"""A claim batch decides every claim as if the claims came one at a time (actors/journal/sqlite.py
``claim_batch``: one SELECT per chunk of ids and one executemany per kind of write when the batch's
ids are distinct, claim by claim when one id comes twice), and the in-memory journal decides what
the SQLite journal decides."""

from __future__ import annotations

import random
from pathlib import Path

from actors.journal.sqlite import Claim, Completion, MemoryJournal, SQLiteJournal


def _claims(rng: random.Random, n: int, now: float) -> list[Claim]:
    out = []
    for _ in range(n):
        account = rng.choice(["a", "b"])
        oid = f"id-{rng.randrange(40)}"
        fingerprint = rng.choice(["f" * 64, "e" * 64])
        out.append(Claim(account, oid, fingerprint, "{}", "{}", "paper", now))
    return out


def test_a_batch_decides_what_the_same_claims_one_at_a_time_decide(tmp_path: Path) -> None:
    rng = random.Random(7)
    batched = SQLiteJournal(tmp_path / "batched.sqlite", synchronous="OFF")
    single = SQLiteJournal(tmp_path / "single.sqlite", synchronous="OFF")
    now = 1_000.0
    outcomes: set[str] = set()
    for round_ in range(60):
        now += rng.choice([1.0, 5.0, 4_000.0])  # some rounds past the TTL: reclaims
        claims = _claims(rng, rng.randrange(1, 30), now)
        if round_ % 3 == 0:  # distinct ids: the batched path
            seen: set[str] = set()
            claims = [c for c in claims if not (c.client_order_id in seen or seen.add(c.client_order_id))]  # type: ignore[func-returns-value]
        got = batched.claim_batch(claims, ttl_s=3_600.0)
        want = [single.claim_batch([c], ttl_s=3_600.0)[0] for c in claims]
        assert [(r.outcome, r.record) for r in got] == [(r.outcome, r.record) for r in want], f"round {round_}"
        outcomes.update(r.outcome for r in got)
        done = [Completion(c.account_id, c.client_order_id, "COMPLETED", "{}", now)
                for c, r in zip(claims, got, strict=True) if r.outcome in ("CLAIMED", "EXPIRED_RECLAIMED") and rng.random() < 0.7]
        batched.complete_batch(done)
        single.complete_batch(done)
    assert batched.load_records() == single.load_records()
    # the comparison covered every outcome of the table
    assert outcomes >= {"CLAIMED", "EXPIRED_RECLAIMED", "REPLAY", "IN_FLIGHT", "CONFLICT", "OTHER_ACCOUNT"}, outcomes
    batched.close()
    single.close()


def test_the_memory_journal_decides_every_claim_as_the_sqlite_journal_does() -> None:
    """``MemoryJournal.claim_batch`` decides an id no account holds inline (the journal-off order
    path) and every other claim by ``_decide_claim``: the same outcomes and records as the SQLite
    journal over claims, completions and releases, every outcome of the table covered."""
    rng = random.Random(11)
    memory = MemoryJournal()
    sqlite = SQLiteJournal(None, synchronous="OFF")
    now = 1_000.0
    outcomes: set[str] = set()
    for round_ in range(80):
        now += rng.choice([1.0, 5.0, 4_000.0])
        claims = _claims(rng, rng.randrange(1, 20), now)
        got = memory.claim_batch(tuple(claims) if round_ % 2 else claims, ttl_s=3_600.0)
        want = [sqlite.claim_batch([c], ttl_s=3_600.0)[0] for c in claims]
        assert [(r.outcome, r.record, r.previous) for r in got] == [(r.outcome, r.record, r.previous) for r in want], f"round {round_}"
        outcomes.update(r.outcome for r in got)
        claimed = [c for c, r in zip(claims, got, strict=True) if r.outcome in ("CLAIMED", "EXPIRED_RECLAIMED")]
        done = [Completion(c.account_id, c.client_order_id, "COMPLETED", "{}", now) for c in claimed if rng.random() < 0.6]
        assert memory.complete_batch(done) == sqlite.complete_batch(done)
        released = [(c.account_id, c.client_order_id) for c in claimed if rng.random() < 0.2]
        assert memory.release_batch(released) == sqlite.release_batch(released)
    assert memory.load_records() == sqlite.load_records()
    assert outcomes >= {"CLAIMED", "EXPIRED_RECLAIMED", "REPLAY", "IN_FLIGHT", "CONFLICT", "OTHER_ACCOUNT"}, outcomes
    sqlite.close()
