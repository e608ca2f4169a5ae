"""The conformance suite (``conformance/suite.py``) over every built-in adapter, a scripted venue
that behaves like real ones, and the minimal adapter of README "Write an adapter"."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from _adapters import TestAdapter

from conformance.suite import *  # noqa: F403 - the suite's test functions
from conformance.suite import Harness
from protocols import AdapterCapabilities, Quote, Side, VenueOrder, VenueOrderState
from protocols.venues import DryRunVenue, PaperVenue, ShadowVenue


class _BookHarness(Harness):
    """Paper-family venues on a durable book: every ``build`` reopens the same SQLite file."""

    venue_class = PaperVenue

    def __init__(self, name: str, venue_class, path: Path, fills: bool = True) -> None:
        self.name, self.venue_class, self.path, self.fills = name, venue_class, path, fills

    def build(self):
        return self.venue_class(self.name, book_path=self.path)


class ScriptedVenue(TestAdapter):
    """A scripted venue that behaves like a real one: a BUY LIMIT at or above the ask executes
    at once, anything else rests until a quote's ask crosses it (then the fill is pushed as an
    event); refuses duplicate ids; its lookup covers every order it ever took."""

    def __init__(self) -> None:
        super().__init__("scripted", default="accept",
                         capabilities=AdapterCapabilities(lookup_covers_closed=True, absence_window_s=0))
        self._ask: Decimal | None = None
        self._limits: dict[str, Decimal] = {}

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        marketable = self._ask is not None and order.limit_price is not None and order.limit_price >= self._ask
        self.push("fill" if marketable else "accept")
        return super().submit_order(order)

    def _book_order(self, order: VenueOrder, status):
        state = super()._book_order(order, status)
        self._limits[order.client_order_id] = order.limit_price or Decimal(0)
        return state

    def on_market(self, data) -> None:
        if isinstance(data, Quote):
            self._ask = data.ask
            for state in self.fetch_open_orders():
                limit = self._limits.get(state.client_order_id, Decimal(0))
                if state.side is Side.BUY and limit >= data.ask:
                    self.fill(state.client_order_id, price=limit)


class _ScriptedHarness(Harness):
    name = "scripted"
    rebuild = False

    def __init__(self) -> None:
        self.venue = ScriptedVenue()

    def build(self):
        return self.venue  # its state is the instance: the same one after a restart


def _readme_adapter_class():
    """The adapter of README "Write an adapter", executed from the README itself."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"<!-- write-an-adapter:begin -->\s*```python\n(.*?)```\s*<!-- write-an-adapter:end -->", readme, re.S)
    assert match, 'README "Write an adapter" lost its marked code block'
    namespace: dict = {}
    exec(compile(match.group(1), "README.md (Write an adapter)", "exec"), namespace)
    return namespace["MiniVenue"]


class _ReadmeHarness(Harness):
    name = "mini"
    rebuild = False

    def __init__(self) -> None:
        self.venue = _readme_adapter_class()("mini")

    def build(self):
        return self.venue  # in memory: kept across restarts (register it with rebuild=False)


@pytest.fixture(params=["paper", "shadow", "dry_run", "scripted", "readme"])
def harness(request, tmp_path):
    kind = request.param
    if kind == "paper":
        return _BookHarness("paper", PaperVenue, tmp_path / "paper_book.sqlite")
    if kind == "shadow":
        return _BookHarness("shadow", ShadowVenue, tmp_path / "shadow_book.sqlite")
    if kind == "dry_run":
        return _BookHarness("dry_run", DryRunVenue, tmp_path / "dry_run_book.sqlite", fills=False)
    if kind == "scripted":
        return _ScriptedHarness()
    return _ReadmeHarness()
