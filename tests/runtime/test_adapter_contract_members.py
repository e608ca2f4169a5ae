"""The optional members of the adapter contract are typed protocols (protocols/adapter.py:
``StartsUp``, ``ReleasesHangs``, ``HasSession``, ``ReportsHealth``): the runtime asks
``isinstance``, never reads a venue attribute by name."""

from __future__ import annotations

from collections.abc import Callable

from _adapters import TestAdapter
from conftest import EventLog, registry_of

from protocols import (
    HasSession,
    ReleasesHangs,
    ReportsHealth,
    StartsUp,
    VenueSessionChanged,
    retire_adapter,
    start_adapter,
)
from protocols.venues import PaperVenue


class SessionAdapter(TestAdapter):
    """A venue with a session and its own health facts."""

    def __init__(self) -> None:
        super().__init__("sess")
        self.session_state = "LOGON_SENT"
        self.listeners: list[Callable[[str, str, str], None]] = []

    def add_state_listener(self, listener: Callable[[str, str, str], None]) -> None:
        self.listeners.append(listener)

    def health(self) -> dict:
        return {"state": self.session_state, "seq": 7}


class Bare:
    """Only the required members (no start, no release_hangs, no session, no health)."""

    adapter_id = "bare"
    closed = False

    def close(self) -> None:
        self.closed = True


def test_the_optional_members_are_recognised_by_their_protocols() -> None:
    sess = SessionAdapter()
    assert isinstance(sess, HasSession) and isinstance(sess, ReportsHealth)
    paper = PaperVenue()
    assert isinstance(paper, StartsUp) and isinstance(paper, ReleasesHangs)
    assert not isinstance(paper, HasSession) and not isinstance(paper, ReportsHealth)
    bare = Bare()
    assert not any(isinstance(bare, p) for p in (StartsUp, ReleasesHangs, HasSession, ReportsHealth))
    start_adapter(bare)  # no start(): nothing to do
    retire_adapter(bare)  # type: ignore[arg-type]  # no release_hangs(): close() only
    assert bare.closed


def test_a_venue_session_reaches_metrics_events_and_health(make_runtime) -> None:
    venue = SessionAdapter()
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "sess"}})
    assert rt.health().venues["sess"] == {"state": "LOGON_SENT", "seq": 7}
    assert len(venue.listeners) >= 1
    log = EventLog()
    rt.subscribe(log, lambda e: isinstance(e, VenueSessionChanged))
    venue.session_state = "ACTIVE"
    for listener in venue.listeners:
        listener("sess", "ACTIVE", "logged on")
    log.wait_for(lambda events: any(e.state == "ACTIVE" for e in events), what="VenueSessionChanged")
    assert rt.health().venues["sess"]["state"] == "ACTIVE"
    assert rt.metrics.venue_session.labels("sess")._value.get() == 2  # ACTIVE
