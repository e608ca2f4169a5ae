"""The FIX inbox while a durable runtime runs: what was applied and journaled leaves it, so a
long session keeps a bounded inbox (protocols/venues/fix/_store.py, actors/runtime/inbox_trim.py),
not the last ``inbox_keep`` messages until the next start or stop."""

from __future__ import annotations

from pathlib import Path

from actors.runtime.inbox_trim import WAKE_AT, InboxTrimmer
from protocols.venues.fix._store import SeqStore
from tests.conftest import wait_until

from .conftest import limit, live, needs_peers

ORDERS = 400


@needs_peers
def test_the_inbox_is_trimmed_while_running_and_stays_bounded(peer, fix_runtime) -> None:
    executor = peer("executor")
    rt = fix_runtime(executor, "CLIENT1", "EXECUTOR", "FIX.4.4", durable=True)
    venue = rt.venue("fix")
    assert venue.config.inbox_keep == 1_000  # the bound that held before: the last 1,000 kept until a stop
    kept = []
    for _ in range(ORDERS):
        report = rt.submit(limit("BUY", "1", "100", tif="GTC"), live()).result(timeout=10)
        assert report.status.value == "FILLED"
        kept.append(venue.kept_count())
    # woken at WAKE_AT kept messages, the trimmer drops what was journaled: never near ORDERS kept
    # (how far past WAKE_AT it gets depends on how soon its thread runs on a loaded machine: about
    # 66 on a quiet one; without the trimmer all ORDERS are kept)
    assert max(kept) < ORDERS * 3 // 4, kept
    assert rt._trimmer.trims >= 1
    # and within a second or so of the last message, what is left was journaled and goes too
    wait_until(lambda: venue.kept_count() == 0, 10, "the inbox trimmed once idle")
    inbox = next((Path(venue.config.store_dir)).glob("*.inbox"))
    assert inbox.read_bytes() == b""  # the file too (rewritten at each trim)
    assert rt.health().venues["fix"]["execution_reports"] >= ORDERS


def test_the_trimmer_trims_when_woken_or_every_interval_and_stops(tmp_path: Path) -> None:
    calls: list[int] = []
    kept = [0]
    trimmer = InboxTrimmer(lambda: calls.append(kept[0]), lambda: kept[0], every_s=60.0)
    trimmer.start()
    try:
        trimmer.listener(WAKE_AT - 1)  # below the mark: no wake-up
        kept[0] = 3
        trimmer.listener(WAKE_AT)
        wait_until(lambda: calls == [3], 5, "a trim once woken")
        kept[0] = 0
        trimmer.listener(WAKE_AT)  # woken with nothing kept: no trim
        wait_until(lambda: not trimmer._wanted.is_set(), 5, "the wake-up taken")
    finally:
        trimmer.stop(5.0)
    assert calls == [3] and trimmer._thread is None
    ticking = InboxTrimmer(lambda: calls.append(-1), lambda: 1, every_s=0.01)  # every interval while any is kept
    ticking.start()
    wait_until(lambda: calls.count(-1) >= 2, 5, "trims at the interval")
    ticking.stop(5.0)


def test_an_inbox_full_of_untrimmed_messages_drops_the_oldest_with_a_warning(tmp_path: Path) -> None:
    from loguru import logger

    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING")
    try:
        store = SeqStore.open(tmp_path, "FIX.4.4", "CLIENT1", "EXEC", inbox=3)
        counts: list[int] = []
        store.set_inbox_listener(counts.append)
        for i in range(6):
            store.keep(b"8=FIX.4.4|34=%d|" % i)
    finally:
        logger.remove(sink)
    assert counts == [1, 2, 3, 3, 3, 3] and store.kept_count() == 3
    assert len([m for m in seen if "the oldest are dropped" in m]) == 1  # once, until a trim
    store.close()
