"""pykka's internals live in one module (actors/kernel/pykka_compat.py), pinned to the tested pykka
versions, and equal pykka's public path: the same actor body run by pykka's own ThreadingActor loop
and through the compat functions (on a kernel dispatcher) gives the same replies, failures, stops
and ``logging`` records. pykka's records reach the project's loguru sinks (PykkaBridge).

Nothing else in the project may use pykka's private names (checked over the source tree).
"""

from __future__ import annotations

import logging
import re
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import pykka
import pytest
from loguru import logger

from actors.kernel.dispatcher import Dispatcher
from actors.kernel.inbox import Inbox, tell
from actors.kernel.pykka_compat import TESTED_PYKKA, Envelope, check_pykka_version
from actors.observability.logs import PYKKA_NAME, PykkaBridge, install_pykka_bridge

ROOT = Path(__file__).resolve().parents[2]


# -- the pin --------------------------------------------------------------------------------------


def test_the_installed_pykka_is_a_tested_one() -> None:
    major, minor = (int(p) for p in metadata.version("pykka").split(".")[:2])
    assert (major, minor) in TESTED_PYKKA


@pytest.mark.parametrize("version", ["5.0.0", "4.6.0", "3.1.1", "4", "dev"])
def test_an_untested_pykka_fails_loudly_at_import_naming_what_to_do(version: str) -> None:
    with pytest.raises(ImportError) as info:
        check_pykka_version(version)
    message = str(info.value)
    assert f"pykka {version} is installed" in message
    assert "4.5" in message and "TESTED_PYKKA" in message and "test_pykka_compat.py" in message


def test_a_tested_patch_release_passes() -> None:
    check_pykka_version("4.5.0")
    check_pykka_version("4.5.7", tested=((4, 5),))


def test_only_the_compat_module_uses_pykka_private_names() -> None:
    private = re.compile(r"_handle_receive|_handle_failure|_actor_loop_(setup|running|teardown)|\._actor_loop\(|\._stop\("
                         r"|_ActorStop|pykka\._|from pykka\._")
    offenders = []
    for folder in ("actors", "protocols", "config", "flowroute"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "pykka_compat.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if private.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    for path in (ROOT / "run.py",):
        if path.exists() and private.search(path.read_text()):
            offenders.append(str(path))
    assert offenders == []


# -- the same actor body on pykka's loop and through the compat module ---------------------------


class Boom(BaseException):
    """A BaseException (not an Exception) raised by a handler."""


class Body:
    """The actor body both paths run: answers, raises, records its hooks."""

    last: Body

    def __init__(self) -> None:
        self.hooks: list[str] = []
        type(self).last = self  # the test reads the hooks of the actor it just started

    def on_start(self) -> None:
        self.hooks.append("start")

    def on_stop(self) -> None:
        self.hooks.append("stop")

    def on_failure(self, *exc_info: Any) -> None:
        self.hooks.append(f"failure:{type(exc_info[1]).__name__}")

    def double(self, x: int) -> int:
        return 2 * x

    def on_receive(self, message: Any) -> Any:
        if message == "hooks":
            return list(self.hooks)
        if message == "raise":
            raise ValueError("bad message")
        if message == "boom":
            raise Boom()
        if message == "unexpected":
            return pykka.ThreadingActor.on_receive(self, message)  # type: ignore[arg-type]  # pykka's warning
        return ("echo", message)


class OwnLoop(Body, pykka.ThreadingActor):
    """pykka's public path: a plain ThreadingActor on its own thread and loop."""

    use_daemon_thread = True

    def __init__(self) -> None:
        Body.__init__(self)
        pykka.ThreadingActor.__init__(self)


class Dispatched(Body, pykka.ThreadingActor):
    """The same body, its messages run by a kernel Dispatcher through pykka_compat."""

    use_daemon_thread = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        Body.__init__(self)
        pykka.ThreadingActor.__init__(self)

    def _create_actor_inbox(self) -> Inbox:  # type: ignore[override]
        return self.dispatcher.inbox(self)

    def _start_actor_loop(self) -> None:
        self.dispatcher.start(self)


class PykkaRecords(logging.Handler):
    """Captures pykka's ``logging`` records (what a host's stdlib handler would see)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def shape(self, actor: pykka.Actor) -> list[tuple[str, str, str | None]]:
        """(level, message with the actor's name generalised, exception type) of each record
        about ``actor``, leaving out the lifecycle DEBUG lines whose wording has no counterpart."""
        out = []
        for r in self.records:
            message = r.getMessage()
            if str(actor) not in message and str(actor.actor_ref) not in message:
                continue
            if message.startswith(("Starting", "Registered", "Unregistered", "Stopped")):
                continue
            message = message.replace(str(actor), "<actor>").replace(str(actor.actor_ref), "<ref>")
            out.append((r.levelname, message, r.exc_info[0].__name__ if r.exc_info else None))
        return out


@pytest.fixture()
def pykka_records():
    handler = PykkaRecords()
    pykka_logger = logging.getLogger("pykka")
    pykka_logger.addHandler(handler)
    yield handler
    pykka_logger.removeHandler(handler)


@pytest.fixture()
def no_stop_all(monkeypatch):
    """pykka stops every actor of the process after a BaseException: record the call instead of
    stopping the other tests' actors (the record and this actor's own stop are what is compared)."""
    calls: list[dict] = []
    monkeypatch.setattr(pykka.ActorRegistry, "stop_all", classmethod(lambda cls, *a, **k: calls.append(k) or []))
    return calls


class Message:
    """A message of the caller's own class (what the runtime's actors receive)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.n == self.n

    def __repr__(self) -> str:
        return f"Message({self.n})"


SCRIPTS = {
    "an ask answered": [("ask", "hi")],
    "an ask that raises: the asker gets the exception, the actor lives": [("ask", "raise"), ("ask", "after")],
    "an unexpected message": [("ask", "unexpected"), ("ask", "after")],
    "a tell that raises: the actor fails and stops": [("tell", "raise"), ("ask", "after")],
    "a BaseException: this actor stops, then every actor": [("tell", "boom"), ("ask", "after")],
    "a stop, then an ask": [("stop", None), ("ask", "after")],
    "proxy calls, attribute reads and writes (pykka's own messages)": [
        ("proxy_call", 21), ("proxy_set", 5), ("proxy_get", None), ("ask", "after")],
    "a message of the caller's own class (an object, not a string)": [("ask", Message(7)), ("ask", "after")],
}


def _play(ref: pykka.ActorRef, actor: Body, script: list) -> list:
    """Run ``script`` against ``ref``; return what a caller can observe."""
    seen: list = []
    for kind, message in script:
        if kind == "ask":
            try:
                seen.append(("answer", ref.ask(message, timeout=5)))
            except pykka.ActorDeadError:
                seen.append(("dead",))
            except ValueError as exc:  # the one exception the body raises to an asker
                seen.append(("raised", type(exc).__name__, str(exc)))
        elif kind == "proxy_call":
            seen.append(("proxy", ref.proxy().double(message).get(timeout=5)))
        elif kind == "proxy_set":
            ref.proxy().value = message
        elif kind == "proxy_get":
            seen.append(("proxy", ref.proxy().value.get(timeout=5)))
        elif kind == "tell":
            ref.tell(message)
            # the actor is marked stopped before its on_failure / on_stop hook runs: wait for the hook
            _wait(lambda: len(actor.hooks) >= 2, "the failure hooks")
        else:
            ref.stop(timeout=5)
    seen.append(("alive", ref.is_alive()))
    seen.append(("hooks", list(actor.hooks)))
    return seen


@pytest.mark.parametrize("script", list(SCRIPTS), ids=list(SCRIPTS))
def test_the_compat_path_equals_pykkas_own_loop(script: str, pykka_records: PykkaRecords, no_stop_all: list) -> None:
    own_ref = OwnLoop.start()
    own = OwnLoop.last
    own_seen = _play(own_ref, own, SCRIPTS[script])
    own_ref.stop(timeout=5) if own_ref.is_alive() else None
    own_stop_all = list(no_stop_all)
    no_stop_all.clear()

    dispatcher = Dispatcher("compat")
    try:
        dis_ref = Dispatched.start(dispatcher)
        dis = Dispatched.last
        dis_seen = _play(dis_ref, dis, SCRIPTS[script])
    finally:
        dispatcher.close()

    assert dis_seen == own_seen
    assert pykka_records.shape(dis) == pykka_records.shape(own)
    # pykka blocks in stop_all on its own thread; a dispatcher thread must not (its members run there)
    assert len(no_stop_all) == len(own_stop_all)
    if script.startswith("a BaseException"):
        assert own_stop_all == [{}] and no_stop_all == [{"block": False}]


class OwnHandleReceive(Dispatched):
    """A body whose class overrides ``_handle_receive``: the compat path must call it."""

    seen: list

    def _handle_receive(self, message: Any) -> Any:
        type(self).seen.append(message)
        return super()._handle_receive(message)


def test_an_actor_class_that_overrides_handle_receive_gets_every_message_through_it() -> None:
    OwnHandleReceive.seen = []
    dispatcher = Dispatcher("compat-override")
    try:
        ref = OwnHandleReceive.start(dispatcher)
        assert ref.ask(Message(3), timeout=5) == ("echo", Message(3))
        assert ref.ask("x", timeout=5) == ("echo", "x")
        assert ref.proxy().double(4).get(timeout=5) == 8
        ref.stop(timeout=5)
    finally:
        dispatcher.close()
    assert OwnHandleReceive.seen[:2] == [Message(3), "x"] and len(OwnHandleReceive.seen) == 4


def test_a_kernel_tell_puts_what_actorref_tell_puts() -> None:
    """``actors.kernel.inbox.tell`` puts pykka's own Envelope, as ``ActorRef.tell`` does."""

    class Holder(pykka.ThreadingActor):
        def _create_actor_inbox(self) -> Inbox:  # type: ignore[override]
            return Inbox()

        def _start_actor_loop(self) -> None:  # never runs: the test reads the inbox
            pass

    actor = Holder()
    ref = actor.actor_ref
    actor.actor_stopped.clear()
    ref.tell("public")
    assert tell(ref, "kernel")
    public, kernel = ref.actor_inbox.get(block=False), ref.actor_inbox.get(block=False)
    assert type(public) is type(kernel) is Envelope
    assert (public.message, public.reply_to) == ("public", None)
    assert (kernel.message, kernel.reply_to) == ("kernel", None)


# -- pykka's records reach the project's loguru sinks ---------------------------------------------


@pytest.fixture()
def loguru_records():
    seen: list[dict] = []
    sink = logger.add(lambda m: seen.append(m.record), level="DEBUG", filter=lambda r: r["name"] == PYKKA_NAME)
    yield seen
    logger.remove(sink)


def _wait(pred, what: str) -> None:
    done = threading.Event()
    for _ in range(500):
        if pred():
            return
        done.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_bridge_is_installed_once_with_the_projects_logging() -> None:
    bridges = [h for h in logging.getLogger("pykka").handlers if isinstance(h, PykkaBridge)]
    assert len(bridges) == 1 and install_pykka_bridge() is bridges[0]


def test_pykkas_own_records_reach_the_loguru_sinks(loguru_records: list[dict], no_stop_all: list) -> None:
    """pykka's real log paths (its own ThreadingActor loop): an unexpected message (WARNING), an
    exception returned to the asker (INFO, with the exception), an unhandled exception in a
    tell (ERROR, with the exception), a BaseException (DEBUG, stopping every actor)."""
    ref = OwnLoop.start()
    ref.ask("unexpected", timeout=5)
    with pytest.raises(ValueError):
        ref.ask("raise", timeout=5)
    ref.tell("raise")
    ref.actor_stopped.wait(5)
    boom = OwnLoop.start()
    boom.tell("boom")
    boom.actor_stopped.wait(5)

    def by(level: str, text: str) -> list[dict]:
        return [r for r in loguru_records if r["level"].name == level and text in r["message"]]

    _wait(lambda: by("DEBUG", "Stopping all actors"), "the BaseException record")
    # pykka's loop logs, stops the actor, and only then calls stop_all: wait for that call, or
    # it runs after this test has put the real stop_all back and stops the next test's actors
    _wait(lambda: no_stop_all, "pykka's stop_all after the BaseException")
    unexpected = by("WARNING", "Unexpected message received by OwnLoop")
    returned = by("INFO", "Exception returned from OwnLoop")
    unhandled = by("ERROR", "Unhandled exception in OwnLoop")
    stopping = by("DEBUG", "Stopping all actors")
    assert len(unexpected) == 1 and "unexpected" in unexpected[0]["message"]
    assert len(returned) == 1 and returned[0]["exception"].type is ValueError
    assert len(unhandled) == 1 and unhandled[0]["exception"].type is ValueError
    assert len(stopping) == 1 and "Boom()" in stopping[0]["message"]
    assert all(r["name"] == "pykka" and r["module"] == "_actor" for r in unexpected + returned + unhandled + stopping)


def test_pykkas_records_follow_the_projects_opt_in(loguru_records: list[dict]) -> None:
    """A library is silent until its host opts in: with flowroute's logging disabled, pykka's
    records bridged by flowroute stay silent too (and come back once enabled)."""
    from actors.observability.logs import disable_logging, enable_logging

    disable_logging()
    try:
        ref = OwnLoop.start()
        ref.ask("unexpected", timeout=5)
        ref.stop(timeout=5)
        assert not [r for r in loguru_records if "Unexpected message" in r["message"]]
    finally:
        enable_logging()
    ref = OwnLoop.start()
    ref.ask("unexpected", timeout=5)
    ref.stop(timeout=5)
    assert [r for r in loguru_records if "Unexpected message" in r["message"]]


def test_the_hosts_logging_sees_what_its_root_level_lets_through(monkeypatch) -> None:
    """The bridge lowers pykka's level to DEBUG for loguru, but a host's own ``logging`` root
    handler still gets only the records its root level allows (as before the bridge)."""
    root = logging.getLogger()
    host = PykkaRecords()
    monkeypatch.setattr(root, "level", logging.WARNING)
    root.addHandler(host)
    try:
        ref = OwnLoop.start()  # pykka logs DEBUG "Starting ..." and "Registered ..."
        ref.ask("unexpected", timeout=5)  # pykka logs WARNING "Unexpected message received by ..."
        ref.stop(timeout=5)
    finally:
        root.removeHandler(host)
    mine = [r for r in host.records if r.name == "pykka" and "OwnLoop" in r.getMessage()]
    assert [r.levelname for r in mine] == ["WARNING"]
    assert "Unexpected message received by OwnLoop" in mine[0].getMessage()
