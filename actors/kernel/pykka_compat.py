"""pykka's internals, in one place: what the kernel needs to run actors exactly as pykka's own loop does.

The kernel's dispatcher (``dispatcher.py``) runs the messages of several actors on two shared
threads, and its inbox (``inbox.py``) puts messages without ``ActorRef.tell``'s extra calls
(docs/DESIGN.md "House plan": threads live in ``actors/kernel/``). Both must do exactly what
pykka's ``ThreadingActor`` loop and ``ActorRef.tell`` do, and pykka has no public API for running
one message of an actor. So this module, and nothing else in the project, uses pykka's private
names:

==================================  =================================================================
pykka's private name                what it is used for here
==================================  =================================================================
``pykka._envelope.Envelope``        the inbox item ``ActorRef.tell``/``ask`` put: :data:`Envelope`
``Actor._actor_loop_setup``         ``on_start`` with pykka's failure handling: :func:`start_actor`
``Actor._handle_receive``           one message (stop, proxy calls, ``on_receive``): :func:`run_envelope`
                                    (a message of any other class goes to ``on_receive`` directly,
                                    as ``_handle_receive`` would pass it, unless an actor class
                                    overrides ``_handle_receive``)
``Actor._handle_failure``           pykka's "Unhandled exception" record, unregister, mark stopped
``Actor._stop``                     unregister, mark stopped, ``on_stop`` (a BaseException's path)
``pykka.messages._ActorStop``       the message ``ActorRef.stop`` sends: :data:`ActorStop`
==================================  =================================================================

(``FlowActor`` also overrides ``_create_actor_inbox`` and ``_start_actor_loop``: those are the
hooks pykka's own ``ThreadingActor`` overrides to plug in its inbox and thread, the documented way
to give pykka another runtime.)

Pinned: :data:`TESTED_PYKKA` lists the pykka ``major.minor`` versions these functions were proven
equal to pykka's public path with (``tests/kernel/test_pykka_compat.py``: the same actor on
pykka's own loop and through this module gives the same replies, failures, stops and log
records). Importing this module with any other pykka raises ``ImportError`` saying so; to move
to a new pykka, run those tests against it, then add it here and to ``pyproject.toml``.

Log records: where pykka's loop logs (an exception returned to the asker, a BaseException that
stops every actor), :func:`run_envelope` logs the same record to pykka's own ``logging`` logger
(:data:`PYKKA_LOGGER`), so a host sees one kind of record whichever thread ran the actor;
``actors/observability/logs.py`` bridges that logger to the project's loguru sinks.
"""

from __future__ import annotations

import logging
import sys
from importlib import metadata

import pykka
from pykka import messages as _pykka_messages

#: pykka ``(major, minor)`` versions this module is proven equal to pykka's public path with
TESTED_PYKKA: tuple[tuple[int, int], ...] = ((4, 5),)


def check_pykka_version(version: str, tested: tuple[tuple[int, int], ...] = TESTED_PYKKA) -> None:
    """Raise ``ImportError`` unless pykka ``version`` (e.g. ``"4.5.0"``) has a tested ``major.minor``.

    The message names the installed version, the tested ones and how to move on.
    """
    parts = version.split(".")
    try:
        major_minor = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        major_minor = None
    if major_minor not in tested:
        tested_text = ", ".join(f"{a}.{b}" for a, b in tested)
        raise ImportError(
            f"flowroute's actor kernel uses pykka internals proven only with pykka {tested_text}, "
            f"but pykka {version} is installed. Install a tested pykka (see pyproject.toml), or run "
            f"tests/kernel/test_pykka_compat.py against pykka {version} and add it to TESTED_PYKKA in "
            f"actors/kernel/pykka_compat.py."
        )


check_pykka_version(metadata.version("pykka"))

from pykka._envelope import Envelope  # noqa: E402 - only after the version check above

#: the message ``ActorRef.stop`` sends (pykka's ``messages._ActorStop``)
ActorStop: type = _pykka_messages._ActorStop

#: the message classes pykka's ``Actor._handle_receive`` acts on itself (stop, proxy calls); it
#: hands every other message to ``on_receive`` unchanged
_PYKKA_OWN: tuple[type, ...] = (ActorStop, _pykka_messages.ProxyCall, _pykka_messages.ProxyGetAttr,
                                _pykka_messages.ProxySetAttr)
#: pykka's own ``Actor._handle_receive``: an actor class that keeps it gets the shortcut below
_HANDLE_RECEIVE = pykka.Actor._handle_receive
#: message class -> True when ``_handle_receive`` would only pass it on to ``on_receive`` (not a
#: subclass of one of pykka's own message classes); filled as classes are met (a few dozen)
_PLAIN: dict[type, bool] = {}


def _passed_on(cls: type) -> bool:
    """True when pykka's ``_handle_receive`` passes a message of class ``cls`` to ``on_receive``
    (kept in :data:`_PLAIN`)."""
    plain = _PLAIN[cls] = not issubclass(cls, _PYKKA_OWN)
    return plain


#: pykka's ``logging`` logger: the records pykka's loop writes are written here the same way
PYKKA_LOGGER = logging.getLogger("pykka")

__all__ = [
    "PYKKA_LOGGER",
    "TESTED_PYKKA",
    "ActorStop",
    "Envelope",
    "check_pykka_version",
    "dead_letter",
    "run_envelope",
    "start_actor",
]


def start_actor(actor: pykka.Actor) -> None:
    """Run ``actor``'s ``on_start`` as pykka's loop does first (a failure is logged and stops it)."""
    actor._actor_loop_setup()


def run_envelope(actor: pykka.Actor, envelope: Envelope) -> None:
    """Handle one ``envelope`` of ``actor`` exactly as one turn of pykka's actor loop does
    (``Actor._actor_loop_running``): the reply (or the exception) to an asker; a told message
    that raises stops the actor (``on_failure`` runs); a ``BaseException`` stops this actor and
    then every actor. Same log records, on pykka's logger. One difference, on purpose: every
    actor is stopped without waiting (``stop_all(block=False)``), since the caller is a thread
    shared with actors that must run to stop. Never raises.

    A message of the runtime's own classes (neither a stop nor a proxy call) goes straight to
    ``on_receive``, which is all ``_handle_receive`` does with it: one call and four ``isinstance``
    checks fewer per message (tests/kernel/test_pykka_compat.py holds both paths to pykka's)."""
    try:
        message = envelope.message
        plain = _PLAIN.get(message.__class__)
        if plain is None:
            plain = _passed_on(message.__class__)
        if plain and type(actor)._handle_receive is _HANDLE_RECEIVE:
            response = actor.on_receive(message)
        else:
            response = actor._handle_receive(message)
        if envelope.reply_to is not None:
            envelope.reply_to.set(response)
    except Exception:
        if envelope.reply_to is not None:
            PYKKA_LOGGER.info(f"Exception returned from {actor} to caller:", exc_info=sys.exc_info())
            envelope.reply_to.set_exception()
        else:
            actor._handle_failure(*sys.exc_info())
            try:
                actor.on_failure(*sys.exc_info())
            except Exception:  # noqa: BLE001 - pykka's own loop: on_failure's error is a failure too
                actor._handle_failure(*sys.exc_info())
    except BaseException:  # noqa: BLE001 - what pykka's own loop does: stop every actor
        PYKKA_LOGGER.debug(f"{sys.exc_info()[1]!r} in {actor}. Stopping all actors.")
        actor._stop()
        pykka.ActorRegistry.stop_all(block=False)


def dead_letter(actor: pykka.Actor, envelope: Envelope) -> None:
    """An envelope that reached ``actor`` after it stopped: what pykka's loop teardown does
    (``Actor._actor_loop_teardown``): a stop is answered None, an ask ``ActorDeadError``, a
    tell dropped."""
    reply_to = envelope.reply_to
    if reply_to is None:
        return
    if isinstance(envelope.message, ActorStop):
        reply_to.set(None)
    else:
        reply_to.set_exception(exc_info=(pykka.ActorDeadError, pykka.ActorDeadError(
            f"{actor.actor_ref} stopped before handling the message"), None))
