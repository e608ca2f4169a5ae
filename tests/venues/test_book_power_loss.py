"""A durable paper book that may have lost its last commits (protocols/venues/paper/book.py,
docs/DESIGN.md "Durability").

The book is WAL with ``synchronous=NORMAL``: a killed process loses nothing, an OS crash or a power
cut may lose the last commits. The book records each session as open (fsynced) and closed, with
the boot id; a session left open in an earlier boot means the tail may be gone. From then on the
venue's "not found" proves nothing (``lookup_covers_closed`` False): start-up recovery leaves such
an order UNKNOWN instead of taking it as never sent (FAILED).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import ctx, market, quote

from actors.journal.sqlite import Claim, SQLiteJournal
from protocols import OrderStatus, classify_lookup
from protocols.venues import PaperVenue
from protocols.venues.paper import book as _book


@pytest.fixture
def boot(monkeypatch):
    """Set this machine's boot id: ``boot["id"] = "B"`` is a reboot."""
    state = {"id": "boot-A"}
    monkeypatch.setattr(_book, "_boot_id", lambda: state["id"])
    return state


def die(venue: PaperVenue) -> None:
    """The process ends without closing the book (SIGKILL or a power cut: the session stays open)."""
    conn = venue._book._conn
    venue._book._conn = None
    conn.close()  # the file handle only: no "closed" mark is written


def session(path: Path) -> str:
    """The book's session mark without its token: ``"<boot id> open|closed"``."""
    conn = sqlite3.connect(path)
    try:
        boot, _token, state = conn.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()[0].split(" ")
        return f"{boot} {state}"
    finally:
        conn.close()


def test_a_killed_process_loses_nothing_and_not_found_still_proves_absence(tmp_path: Path, boot) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(book_path=path)
    assert session(path) == "boot-A open"
    die(v)
    w = PaperVenue(book_path=path)  # same boot: the WAL survived the process
    assert w.capabilities.lookup_covers_closed
    assert classify_lookup("x", None, w.capabilities, 0.0).absent
    w.close()
    assert session(path) == "boot-A closed"


def test_a_rebuilt_instance_keeps_the_session_open_when_the_old_one_closes(tmp_path: Path, boot) -> None:
    path = tmp_path / "b.sqlite"
    old = PaperVenue(book_path=path)
    new = PaperVenue(book_path=path)  # the supervisor's fresh instance, before the old one is closed
    old.close()
    assert session(path) == "boot-A open"  # the running instance's mark: a power cut now is still seen
    die(new)
    boot["id"] = "boot-B"
    w = PaperVenue(book_path=path)
    assert not w.capabilities.lookup_covers_closed
    w.close()


def test_a_clean_stop_then_a_reboot_loses_nothing(tmp_path: Path, boot) -> None:
    path = tmp_path / "b.sqlite"
    PaperVenue(book_path=path).close()
    boot["id"] = "boot-B"
    w = PaperVenue(book_path=path)
    assert w.capabilities.lookup_covers_closed
    w.close()


def test_an_open_session_from_an_earlier_boot_makes_not_found_prove_nothing_for_good(tmp_path: Path, boot) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(book_path=path)
    die(v)
    boot["id"] = "boot-B"  # the machine went down with the session open: the tail may be gone
    w = PaperVenue(book_path=path)
    caps = w.capabilities
    assert not caps.lookup_covers_closed and caps.group_commit and caps.blocking
    assert not classify_lookup("x", None, caps, 0.0).absent
    w.close()
    x = PaperVenue(book_path=path)  # a clean stop since does not bring back what was lost
    assert not x.capabilities.lookup_covers_closed
    x.close()


def _state_with_a_claim_in_doubt(make_runtime, settings) -> Path:
    """A durable runtime's state dir whose journal holds an order claimed (IN_PROGRESS) that its
    paper book does not hold, as after a crash right after the claim, or a lost book tail."""
    rt = make_runtime(settings)
    rt.on_market(quote())
    assert rt.submit(market("pl-ok"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    rt.stop()
    state = Path(settings.state_dir)
    journal = SQLiteJournal(state / "journal.sqlite")
    intent, context = market("pl-doubt"), ctx()
    journal.claim_batch([Claim(context.account_id, intent.client_order_id, intent.fingerprint(), intent.model_dump_json(),
                               context.model_dump_json(), "paper", 1_000.0)], ttl_s=3600.0)
    journal.close()
    conn = sqlite3.connect(state / "paper_book.sqlite")  # the process died with the book open
    conn.execute("UPDATE meta SET value = replace(value, ' closed', ' open') WHERE key = 'session'")
    assert conn.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()[0].endswith(" open")
    conn.commit()
    conn.close()
    return state


@pytest.mark.parametrize("rebooted", [False, True])
def test_recovery_does_not_take_a_lost_tails_not_found_as_never_sent(make_runtime, settings_factory, boot, rebooted) -> None:
    settings = settings_factory(durable=True)
    _state_with_a_claim_in_doubt(make_runtime, settings)
    if rebooted:
        boot["id"] = "boot-B"
    rt = make_runtime(settings)
    rec = rt.order("pl-doubt")
    assert rec is not None
    if rebooted:  # the venue may have had it: in doubt, for an operator (never FAILED, never re-sent)
        assert rec.status is OrderStatus.UNKNOWN
    else:  # a killed process: the book is whole, "not found" proves it never reached the venue
        assert rec.status is OrderStatus.FAILED
    assert rt.venue("paper").submission_counts() == {"pl-ok": 1}
    assert rt.order("pl-ok").status is OrderStatus.FILLED
