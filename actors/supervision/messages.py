"""Messages the supervisor accepts (and the wiring every supervised child accepts).

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations
from dataclasses import dataclass, field
from typing import Callable
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
    """Wiring at boot: set the actor's reference named ``name`` (e.g. ``router``) to ``ref``."""

    name: str
    ref: pykka.ActorRef


@dataclass(frozen=True, slots=True)
class RegisterCore:
    """Boot: the supervisor takes ``ref`` as a core child named ``name``.

    With a ``factory`` the child is watched and restarted: the supervisor tells it
    :class:`Supervise` (so a crash reaches the supervisor through pykka's ``on_failure``), and
    after a crash calls ``factory(generation, inherited)`` for a fresh actor (``inherited``: what
    the crashed actor handed over in ``failure_details()["inherited"]``), then ``rewire(new_ref)``
    so every holder of the old reference gets the new one. Without a factory the child is only
    recorded (it contains its own handler failures)."""

    name: str
    ref: pykka.ActorRef
    factory: Callable[[int, tuple], pykka.ActorRef] | None = None
    rewire: Callable[[pykka.ActorRef], None] | None = None


@dataclass(frozen=True, slots=True)
class Supervise:
    """Supervisor → child: report your failures to ``supervisor`` as child ``name``, generation
    ``generation``."""

    supervisor: pykka.ActorRef
    generation: int
    name: str


@dataclass(frozen=True, slots=True)
class RegisterAdapter:
    """Boot: the supervisor starts and supervises an adapter actor built by ``factory(generation, inherited)``.

    ``inherited``: orders in doubt found by recovery, reconciled by the first generation."""

    name: str
    factory: Callable[[int, tuple], pykka.ActorRef]
    gate: pykka.ActorRef
    inherited: tuple = ()


@dataclass(frozen=True, slots=True)
class GetAdapterRefs:
    """Ask: current adapter actor refs by child name."""


@dataclass(frozen=True, slots=True)
class StopChildren:
    """Ask: mark every adapter child stopped (no more restarts) before shutdown."""
