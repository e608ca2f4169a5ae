"""Messages the supervisor accepts (and the wiring every supervised child accepts).

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pykka


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """A child reports its own failure (from ``on_failure`` or a failed start-up)."""

    child: str
    generation: int
    error: str
    during_startup: bool = False
    details: dict = field(default_factory=dict)
    #: the message a contained failure happened in (the actor goes on), "" for a crash
    contained_in: str = ""


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Timer → supervisor: restart ``child`` (if it is still at ``generation``)."""

    child: str
    generation: int


@dataclass(frozen=True, slots=True)
class GetHealth:
    """Ask: the supervisor's health snapshot."""


@dataclass(frozen=True, slots=True)
class Wire:
    """Supervisor → child: the one typed wiring step. Each field that is set is the current
    reference of that peer (None: unchanged); a child takes the ones it holds in its own
    ``handle_Wire`` (never by attribute name). Sent at boot (the ledger's store and router, which
    it cannot have at construction) and after a restart, to every holder of the old reference."""

    bus: pykka.ActorRef | None = None
    ledger: pykka.ActorRef | None = None
    idempotency: pykka.ActorRef | None = None
    router: pykka.ActorRef | None = None
    breaker: pykka.ActorRef | None = None
    #: the router's new ``RouteTable`` (a breaker restarted)
    table: Any = None


@dataclass(frozen=True, slots=True)
class StartChildren:
    """Ask, once at boot: the supervisor builds, wires and watches every child from its
    blueprint and answers the :class:`~actors.supervision.topology.Peers`. ``restore``: the
    journaled orders recovery found (``RecoveredOrder``), restored in the ledger first."""

    restore: tuple = ()


@dataclass(frozen=True, slots=True)
class Supervise:
    """Supervisor → child: report your failures to ``supervisor`` as child ``name``, generation
    ``generation``."""

    supervisor: pykka.ActorRef
    generation: int
    name: str


@dataclass(frozen=True, slots=True)
class GetAdapterRefs:
    """Ask: current adapter actor refs by child name."""


@dataclass(frozen=True, slots=True)
class StopChildren:
    """Ask: mark every adapter child stopped (no more restarts) before shutdown."""
