"""The FIX 4.2 / 4.4 session layer of an initiator, as a pure state machine.

:class:`FixSession` is fed events — ``connected()``, ``receive(bytes)``, ``tick()`` — and
returns actions: bytes to :class:`Send`, application messages to :class:`Deliver`, a
:class:`Disconnect`, :class:`StateChanged` notes. It never touches a socket, a thread or the
system clock (time comes from an injected clock with ``monotonic()`` and ``now()``), so every
rule below is tested with a fake clock (tests/fix/test_session.py) and against QuickFIX's own
acceptance scripts (tests/fix/test_acceptance.py). The socket driver (``_driver.py``) is a
thin loop around it.

Rules (FIX 4.4 Vol 2 "Session Protocol"; the QuickFIX engine's behaviour where the spec leaves
a choice, so the acceptance scripts' expected texts match):

- Logon (A) with HeartBtInt (108); ResetSeqNumFlag (141=Y) only when configured; Username
  (553) / Password (554) when given (masked in every log line: ``_codec.redact``).
- Heartbeat (0) after ``heartbeat_s`` without sending; TestRequest (1, 112=TEST) after
  1.2 × ``heartbeat_s`` without receiving; disconnect when it stays unanswered for another
  ``heartbeat_s``. A TestRequest from the peer is answered with a Heartbeat echoing 112.
- MsgSeqNum (34) too high: the message is queued and one ResendRequest (2, 7=expected,
  16=0) is sent; queued messages are processed once the gap is filled. Too low without
  PossDupFlag (43=Y): Logout "MsgSeqNum too low, expecting X but received Y" and an error.
  Too low with PossDupFlag: ignored (a repeat), after checking OrigSendingTime (122): missing
  → Reject 373=1; later than SendingTime → Reject 373=10 and Logout.
- ResendRequest from the peer: answered with one SequenceReset-GapFill (4, 123=Y) from
  BeginSeqNo to our next MsgSeqNum. Application messages are never re-sent: a stale
  NewOrderSingle must not reach the venue again; the app is told (:class:`GapFilled`) and
  reconciles those orders instead.
- SequenceReset: GapFill obeys the sequence checks; Reset ignores them; a NewSeqNo (36) below
  the expected number is refused with Reject 373=5.
- Garbled frames (bad BodyLength / CheckSum) are dropped by the framer and never counted.
- Field checks → Reject (3): SenderCompID / TargetCompID missing (373=1), tag without a value
  (373=4), invalid tag number (373=0), tag repeated outside a repeating group (373=13), wrong
  CompIDs (373=9, then Logout). With a data dictionary (``SessionConfig.dictionary``,
  ``_dictionary.py``) every received message is also checked against it as QuickFIX does:
  field order (14), required fields (1), data formats (6), enumerations (5), tags undefined
  (0) or not defined for the message type (2), NumInGroup counts (16).
- Reject (3) and BusinessMessageReject (j) are delivered to the application, which maps them
  to errors of the request they refer to (RefSeqNum 45).

Sequence numbers live in a :class:`~._store.SeqStore` (persisted per session).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ...model.dataclass_compat import builder
from ._codec import Frame, Framer, encode, encode_fields, frame_body, parse_timestamp, utc_timestamp
from ._dictionary import DataDictionary
from ._store import SeqStore, keeps_message

DISCONNECTED = "DISCONNECTED"
LOGON_SENT = "LOGON_SENT"
ACTIVE = "ACTIVE"
LOGOUT_SENT = "LOGOUT_SENT"

#: the largest standard tag number of each version (tags up to it, and user-defined ones from
#: 5000, are accepted; 0, negatives and the undefined range in between are invalid)
_MAX_STD_TAG = {"FIX.4.2": 446, "FIX.4.4": 956}
#: NumInGroup tags: a message carrying one may repeat its group members
_GROUP_COUNTERS = frozenset({
    73, 78, 124, 136, 146, 199, 215, 232, 267, 268, 295, 296, 382, 384, 386, 398, 420, 428, 453, 454,
    518, 534, 539, 555, 576, 580, 604, 627, 683, 702, 711, 733, 735, 753, 768, 802, 864, 870, 897, 936, 957,
})
_ADMIN = frozenset({"0", "1", "2", "3", "4", "5", "A"})


class Clock(Protocol):
    """What the session needs of a clock (``actors.RealClock`` / ``actors.FakeClock`` fit)."""

    def monotonic(self) -> float: ...

    def now(self): ...


@dataclass(frozen=True)
class SessionConfig:
    """One initiator session: BeginString (8), SenderCompID (49), TargetCompID (56), HeartBtInt
    (108, seconds), ResetSeqNumFlag (141) on logon, Username (553) / Password (554)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    heartbeat_s: int = 30
    reset_on_logon: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    logon_timeout_s: float = 10.0
    logout_timeout_s: float = 2.0
    #: received messages are also checked against this data dictionary (None: session checks only)
    dictionary: DataDictionary | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.begin_string not in _MAX_STD_TAG:
            raise ValueError(f"begin_string must be FIX.4.2 or FIX.4.4 (got {self.begin_string!r})")
        if self.dictionary is not None and self.dictionary.begin_string != self.begin_string:
            raise ValueError(f"the data dictionary {self.dictionary.source or ''} is for {self.dictionary.begin_string}, "
                             f"not {self.begin_string}")
        if self.heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be > 0 (got {self.heartbeat_s})")
        if not self.sender_comp_id or not self.target_comp_id:
            raise ValueError("sender_comp_id and target_comp_id must be non-empty")


@dataclass(frozen=True)
class Send:
    """Write ``raw`` to the peer (``msg_type`` and ``seq`` for logs and correlation)."""

    raw: bytes
    msg_type: str
    seq: int


@dataclass(frozen=True)
class Deliver:
    """An application message (or a Reject 3) for the application; ``poss_dup``: 43=Y."""

    frame: Frame
    poss_dup: bool


#: ``Send(...)`` / ``Deliver(...)`` without the frozen dataclass ``__init__`` (one of each per order;
#: protocols/model/dataclass_compat.py)
_new_send = builder(Send)
_new_deliver = builder(Deliver)


@dataclass(frozen=True)
class Disconnect:
    """Close the connection. ``error`` is True when the session broke a rule or was broken."""

    reason: str
    error: bool


@dataclass(frozen=True)
class StateChanged:
    """The session moved to ``state`` (DISCONNECTED, LOGON_SENT, ACTIVE, LOGOUT_SENT)."""

    state: str
    detail: str = ""


@dataclass(frozen=True)
class GapFilled:
    """We answered the peer's ResendRequest for ``begin``..``end`` (0 = up to now) with a gap fill."""

    begin: int
    end: int


Action = Send | Deliver | Disconnect | StateChanged | GapFilled


class NotLoggedOn(RuntimeError):
    """An application message was offered while the session is not ACTIVE (nothing was sent)."""


class FixSession:
    """The session state machine (see the module docstring for the rules).

    Not thread-safe: the driver serialises calls. Every method returns the actions to carry
    out, in order.
    """

    def __init__(self, config: SessionConfig, store: SeqStore, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.state = DISCONNECTED
        self._framer = Framer()
        self._queue: dict[int, Frame] = {}
        self._resend_until = 0  # a ResendRequest of ours is open until next_target passes this
        self._test_request_at: float | None = None
        self._last_sent = 0.0
        self._last_received = 0.0
        self._state_since = 0.0
        self._test_requests = 0
        self.counters = {"sent": 0, "received": 0, "garbled": 0, "resend_requests_sent": 0,
                         "gap_fills_sent": 0, "rejects_sent": 0, "poss_dup_ignored": 0, "test_requests_sent": 0}
        self.last_error: str | None = None
        # the constant parts of every message we send: 8=<BeginString>|9=, 49=<Sender>|, 56=<Target>|
        self._max_tag = _MAX_STD_TAG[config.begin_string]
        self._begin = b"8=" + config.begin_string.encode() + b"\x019="
        self._sender_field = b"49=" + config.sender_comp_id.encode() + b"\x01"
        self._target_field = b"56=" + config.target_comp_id.encode() + b"\x01"
        self._headers: dict[str, bytes] = {}  # per MsgType: the header up to the body (``_header``)

    # ------------------------------------------------------------------ events in

    def connected(self) -> list[Action]:
        """The transport is up: send Logon."""
        now = self.clock.monotonic()
        self._framer = Framer()
        self._queue.clear()
        self._resend_until = 0
        self._test_request_at = None
        self._last_received = now
        if self.config.reset_on_logon:
            self.store.set(1, 1)
        body: list[tuple[int, object]] = [(98, 0), (108, self.config.heartbeat_s)]
        if self.config.reset_on_logon:
            body.append((141, "Y"))
        if self.config.username:
            body.append((553, self.config.username))
        if self.config.password:
            body.append((554, self.config.password))
        actions: list[Action] = [self._send("A", body)]
        actions.append(self._set_state(LOGON_SENT))
        return actions

    def disconnected(self, reason: str = "connection closed") -> list[Action]:
        """The transport is gone (by either side)."""
        if self.state == DISCONNECTED:
            return []
        return [self._set_state(DISCONNECTED, reason)]

    def logout(self, text: str = "") -> list[Action]:
        """Start an orderly Logout (at stop); the driver disconnects on the answer or the timeout."""
        if self.state not in (ACTIVE, LOGON_SENT):
            return [Disconnect("stopped", False)] if self.state != DISCONNECTED else []
        body: list[tuple[int, object]] = [(58, text)] if text else []
        return [self._send("5", body), self._set_state(LOGOUT_SENT, text)]

    def send_app(self, msg_type: str, body: Iterable[tuple[int, object]] | bytes, sending_time: bytes | None = None) -> Send:
        """Frame an application message with the next MsgSeqNum (persisted first).

        ``body``: ``(tag, value)`` pairs, or their encoding already made (``tag=value<SOH>``
        each: a venue's per-order template); ``sending_time``: SendingTime (52) already
        formatted (``utc_timestamp``), else the clock's now. Raises :class:`NotLoggedOn` when
        the session is not ACTIVE (nothing consumed)."""
        if self.state != ACTIVE:
            raise NotLoggedOn(f"FIX session is {self.state}")
        return self._send(msg_type, body if body.__class__ is bytes else list(body), sending_time)  # type: ignore[arg-type]

    def tick(self) -> list[Action]:
        """Time passed: heartbeats, TestRequest on silence, timeouts."""
        now = self.clock.monotonic()
        hb = self.config.heartbeat_s
        if self.state == LOGON_SENT and now - self._state_since >= self.config.logon_timeout_s:
            return self._fail(f"no Logon answer within {self.config.logon_timeout_s:g} s")
        if self.state == LOGOUT_SENT and now - self._state_since >= self.config.logout_timeout_s:
            return [Disconnect("logout not answered", False)]
        if self.state != ACTIVE:
            return []
        actions: list[Action] = []
        if self._test_request_at is not None and now - self._test_request_at >= hb:
            return self._fail(f"TestRequest not answered within {hb} s")
        if self._test_request_at is None and now - self._last_received >= 1.2 * hb:
            self._test_request_at = now
            self.counters["test_requests_sent"] += 1
            actions.append(self._send("1", [(112, "TEST")]))
        elif now - self._last_sent >= hb:
            actions.append(self._send("0", []))
        return actions

    def next_deadline(self) -> float:
        """The monotonic time at which ``tick`` may next have something to do."""
        hb = self.config.heartbeat_s
        if self.state == LOGON_SENT:
            return self._state_since + self.config.logon_timeout_s
        if self.state == LOGOUT_SENT:
            return self._state_since + self.config.logout_timeout_s
        if self.state != ACTIVE:
            return self.clock.monotonic() + hb
        # the next heartbeat due, or the TestRequest on silence / its answer's timeout
        heartbeat = self._last_sent + hb
        other = self._last_received + 1.2 * hb if self._test_request_at is None else self._test_request_at + hb
        return heartbeat if heartbeat <= other else other

    def receive(self, data: bytes) -> list[Action]:
        """Bytes arrived from the peer."""
        actions: list[Action] = []
        before = self._framer.garbled
        frames = self._framer.feed(data)
        self.counters["garbled"] += self._framer.garbled - before
        for frame in frames:
            if self.state == DISCONNECTED:
                break
            self._last_received = self.clock.monotonic()
            self._test_request_at = None
            self.counters["received"] += 1
            done = self._on_frame(frame)
            actions.extend(done)
            if _disconnects(done):
                break
        return actions

    # ------------------------------------------------------------------ one frame

    def _on_frame(self, frame: Frame) -> list[Action]:
        cfg = self.config
        get = frame.first.get  # Frame.get / msg_type / seq() read this dict: one lookup each, no method call
        msg_type = get(35) or ""
        seq_text = get(34)
        seq = int(seq_text) if seq_text is not None and seq_text.isdigit() else None
        if get(8) != cfg.begin_string:
            return self._logout_error(f"BeginString {get(8)!r} is not {cfg.begin_string}")
        if seq is None:
            return self._logout_error("MsgSeqNum missing or not a number")
        if self.state == LOGON_SENT:
            if msg_type != "A":
                return self._logout_error(f"first message is {msg_type!r}, not Logon")
            return self._on_logon(frame, seq)
        sender, target = get(49), get(56)
        missing = 49 if sender is None else 56 if target is None else None
        if missing is not None:  # QuickFIX: Required tag missing, before the CompIDs are compared
            if seq == self.store.next_target:
                self._advance(seq)
            return [self._reject(seq, msg_type, "Required tag missing", 1, missing)]
        if (sender != cfg.target_comp_id or target != cfg.sender_comp_id) and self._empty_tag(frame) is None:
            reject = self._reject(seq, msg_type, "CompID problem", 9, None)
            self._advance(seq)
            return [reject, *self._logout_error("CompID problem")]
        poss_dup = get(43) == "Y"
        expected = self.store.next_target
        if msg_type == "4" and get(123) != "Y":
            return self._on_reset(frame, seq)
        if msg_type == "5":  # a Logout is honoured whatever its MsgSeqNum (QuickFIX: no sequence check)
            return self._on_logout(frame, seq)
        if msg_type == "2" and seq <= expected and not (poss_dup and seq < expected):
            # a ResendRequest is answered whatever its MsgSeqNum (QuickFIX: no sequence check)
            actions = self._answer_resend(frame)
            if seq == expected:
                self._advance(seq)
                actions.extend(self._drain_queue())
            return actions
        if poss_dup and seq < expected:
            return self._on_poss_dup_repeat(frame, seq)
        if seq > expected:
            return self._on_gap(frame, seq)
        if seq < expected:
            return self._logout_error(f"MsgSeqNum too low, expecting {expected} but received {seq}")
        actions = self._process(frame, seq, poss_dup)
        if self._queue:  # frames held for a gap this one may have closed (none: the common case)
            actions.extend(self._drain_queue())
        return actions

    def _on_logon(self, frame: Frame, seq: int) -> list[Action]:
        if frame.get(141) == "Y":
            self.store.set_target(1)
        expected = self.store.next_target
        if seq < expected:
            return self._logout_error(f"MsgSeqNum too low, expecting {expected} but received {seq}")
        actions: list[Action] = [self._set_state(ACTIVE, "logged on")]
        if seq > expected:
            self._queue[seq] = frame  # the Logon itself is a no-op once the gap is filled
            actions.append(self._resend_request(expected, seq))
        else:
            self.store.set_target(seq + 1)
        return actions

    def _on_gap(self, frame: Frame, seq: int) -> list[Action]:
        actions: list[Action] = []
        if frame.msg_type == "2":  # the peer's ResendRequest is answered at once (both may be in a gap)
            actions.extend(self._answer_resend(frame))
        elif frame.msg_type == "5":
            actions.append(self._send("5", []))
            actions.append(Disconnect("peer logged out", False))
            return actions
        self._queue[seq] = frame
        if self.store.next_target > self._resend_until:
            actions.append(self._resend_request(self.store.next_target, seq))
        return actions

    def _resend_request(self, begin: int, trigger: int) -> Send:
        self._resend_until = trigger
        self.counters["resend_requests_sent"] += 1
        return self._send("2", [(7, begin), (16, 0)])

    def _on_poss_dup_repeat(self, frame: Frame, seq: int) -> list[Action]:
        orig = frame.get(122)
        if orig is None:
            return [self._reject(seq, frame.msg_type, "Required tag missing", 1, 122)]
        sent = parse_timestamp(frame.get(52) or "")
        orig_ts = parse_timestamp(orig)
        if sent is not None and orig_ts is not None and orig_ts > sent:
            reject = self._reject(seq, frame.msg_type, "SendingTime accuracy problem", 10, None)
            return [reject, *self._logout_error("SendingTime accuracy problem", text="")]
        self.counters["poss_dup_ignored"] += 1
        return []

    def _on_reset(self, frame: Frame, seq: int) -> list[Action]:
        new_seq = _int(frame.get(36))
        expected = self.store.next_target
        if new_seq is None or new_seq < expected:
            return [self._reject(seq, "4", "Value is incorrect (out of range) for this tag", 5, None)]
        self.store.set_target(new_seq)
        self._queue = {s: f for s, f in self._queue.items() if s >= new_seq}
        return self._drain_queue()

    def _process(self, frame: Frame, seq: int, poss_dup: bool) -> list[Action]:
        """Handle the message carrying the expected MsgSeqNum, then expect the next one."""
        msg_type = frame.first.get(35) or ""  # Frame.msg_type
        problem = self._field_problem(frame)
        if problem is not None:
            text, reason, tag = problem
            self._advance(seq)
            return [self._reject(seq, msg_type, text, reason, tag)]
        actions: list[Action] = []
        if msg_type == "4":  # GapFill (a Reset never gets here)
            new_seq = _int(frame.get(36))
            if new_seq is None or new_seq <= seq:
                self._advance(seq)
                return [self._reject(seq, "4", "Value is incorrect (out of range) for this tag", 5, None)]
            self.store.set_target(new_seq)
            self._queue = {s: f for s, f in self._queue.items() if s >= new_seq}
            return actions
        if msg_type == "0":
            pass
        elif msg_type == "1":
            actions.append(self._send("0", [(112, frame.get(112) or "")]))
        elif msg_type == "2":
            actions.extend(self._answer_resend(frame))
        elif msg_type == "5":
            return self._on_logout(frame, seq)
        elif msg_type == "A":
            pass  # a second Logon while active: nothing to do (QuickFIX logs it)
        else:
            if self.store.keeps and keeps_message(msg_type):
                self.store.keep(frame.raw)  # durable before its MsgSeqNum is passed (_store.py, inbox)
            actions.append(_new_deliver(frame, poss_dup))  # application messages, Reject (3)
        self._advance(seq)
        return actions

    def _on_logout(self, frame: Frame, seq: int) -> list[Action]:
        self._advance(seq) if seq == self.store.next_target else None
        text = frame.get(58) or ""
        if self.state == LOGOUT_SENT:
            return [Disconnect("logged out", False)]
        if "too low" in text:
            self.last_error = f"peer logged out: {text}"
        return [self._send("5", []), Disconnect(f"peer logged out{': ' + text if text else ''}", "too low" in text)]

    def _advance(self, seq: int) -> None:
        if seq >= self.store.next_target:
            self.store.set_target(seq + 1)

    def _drain_queue(self) -> list[Action]:
        actions: list[Action] = []
        while self._queue and self.state != DISCONNECTED:
            expected = self.store.next_target
            frame = self._queue.pop(expected, None)
            for stale in [s for s in self._queue if s < expected]:
                del self._queue[stale]
            if frame is None:
                break
            if frame.msg_type in ("A", "2"):  # Logon / ResendRequest were handled on arrival
                self._advance(expected)
                continue
            actions.extend(self._process(frame, expected, frame.get(43) == "Y"))
            if any(isinstance(a, Disconnect) for a in actions):
                break
        return actions

    def _answer_resend(self, frame: Frame) -> list[Action]:
        begin = _int(frame.get(7)) or 1
        end = _int(frame.get(16)) or 0
        next_out = self.store.next_sender
        if begin >= next_out:
            return []
        new_seq = next_out if end == 0 else min(end + 1, next_out)
        self.counters["gap_fills_sent"] += 1
        now = utc_timestamp(self.clock.now())
        raw = encode(self.config.begin_string, "4", [
            (34, begin), (43, "Y"), (49, self.config.sender_comp_id), (52, now),
            (56, self.config.target_comp_id), (122, now), (36, new_seq), (123, "Y")])
        self._last_sent = self.clock.monotonic()
        self.counters["sent"] += 1
        return [Send(raw, "4", begin), GapFilled(begin, end)]

    # ------------------------------------------------------------------ checks

    def _empty_tag(self, frame: Frame) -> int | None:
        for tag, value in frame.pairs:
            if value == "":
                return tag
        return None

    def _field_problem(self, frame: Frame) -> tuple[str, int, int | None] | None:
        """(text, SessionRejectReason 373, RefTagID 371) of the first field error, or None."""
        if frame.bad_tag is not None:
            return ("Invalid tag number", 0, None)
        max_tag = self._max_tag
        first = frame.first
        if (first and b"=\x01" not in frame.raw and len(first) == len(frame.pairs) and min(first) > 0
                and max(first) <= max_tag):
            # no empty value (it would show as "=<SOH>"), no tag twice, every tag standard: the
            # loops below would find nothing (they name the first problem when there is one)
            return self.config.dictionary.validate(frame) if self.config.dictionary is not None else None
        empty = self._empty_tag(frame)
        if empty is not None:
            return ("Tag specified without a value", 4, empty)
        seen: set[int] = set()
        grouped = any(tag in _GROUP_COUNTERS for tag, _ in frame.pairs)
        for tag, _value in frame.pairs:
            if tag <= 0 or max_tag < tag < 5000:
                return ("Invalid tag number", 0, tag)
            if tag in seen and not grouped and tag != 10:
                return ("Tag appears more than once", 13, tag)
            seen.add(tag)
        if self.config.dictionary is not None:
            return self.config.dictionary.validate(frame)
        return None

    # ------------------------------------------------------------------ sending

    def _send(self, msg_type: str, body: list[tuple[int, object]] | bytes, sending_time: bytes | None = None) -> Send:
        seq = self.store.next_sender
        self.store.set_sender(seq + 1)  # persisted before the bytes exist
        header = self._headers.get(msg_type)
        if header is None:
            header = self._headers[msg_type] = self._header(msg_type)
        # what encode() makes of 34, 49, 52, 56 and the body, with the session's constant parts
        # encoded once per message type (tests/fix/test_hot_path.py compares the two)
        raw = frame_body(self._begin, header % (seq, sending_time or utc_timestamp(self.clock.now()).encode())
                         + (body if body.__class__ is bytes else encode_fields(body)))  # type: ignore[arg-type]
        self._last_sent = self.clock.monotonic()
        self.counters["sent"] += 1
        return _new_send(raw, msg_type, seq)

    def _header(self, msg_type: str) -> bytes:
        """``35=<msg_type>|34=%d|49=<Sender>|52=%b|56=<Target>|``: a format for MsgSeqNum and SendingTime."""
        return (b"35=" + msg_type.encode().replace(b"%", b"%%") + b"\x0134=%d\x01" + self._sender_field.replace(b"%", b"%%")
                + b"52=%b\x01" + self._target_field.replace(b"%", b"%%"))

    def _reject(self, ref_seq: int, ref_msg_type: str, text: str, reason: int, tag: int | None) -> Send:
        self.counters["rejects_sent"] += 1
        body: list[tuple[int, object]] = [(45, ref_seq), (58, text)]
        if tag is not None:
            body.append((371, tag))
        body.append((372, ref_msg_type))
        if self.config.begin_string != "FIX.4.2" or reason <= 11:  # FIX 4.2 defines reasons 0-11 only
            body.append((373, reason))
        return self._send("3", body)

    def _logout_error(self, reason: str, text: str | None = None) -> list[Action]:
        self.last_error = reason
        text = reason if text is None else text
        actions: list[Action] = []
        if self.state in (ACTIVE, LOGON_SENT):
            actions.append(self._send("5", [(58, text)] if text else []))
        actions.append(Disconnect(text, True))
        return actions

    def _fail(self, text: str) -> list[Action]:
        self.last_error = text
        return [Disconnect(text, True)]

    def _set_state(self, state: str, detail: str = "") -> StateChanged:
        self.state = state
        self._state_since = self.clock.monotonic()
        return StateChanged(state, detail)


def _disconnects(actions: list[Action]) -> bool:
    """True when ``actions`` holds a :class:`Disconnect` (in C: no generator per received message)."""
    return Disconnect in map(type, actions)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


class SystemClock:
    """The system clock in the shape the session needs (monotonic seconds, aware UTC now)."""

    #: ``time.monotonic`` itself (no Python frame per call: the session reads it ~5 times per order)
    monotonic = staticmethod(time.monotonic)

    #: ``datetime.now(UTC)`` with no Python frame per call (twice per order); an aware UTC datetime
    now = staticmethod(functools.partial(datetime.now, UTC))
