"""Our FIX session layer against QuickFIX's own session acceptance scripts, mirrored.

The scripts (../shared/fix-acceptance, README there) assume the engine under test is the
acceptor ISLD and the harness the initiator TW44. Our session is an initiator, so the runner
mirrors them: our session plays ISLD, sends its Logon first (matched against the script's
expected Logon), and is then fed the harness's messages. The direction-symmetric cases apply
(README list); a case passes when every expected message comes out, in order, with the same
fields (BodyLength, CheckSum and timestamps not compared), and the expected disconnect happens.
Time runs on a fake clock in 1 s steps while an expected message is awaited.

Every case runs twice: with the session's own checks only, and with QuickFIX's data
dictionary of the version (``spec/FIX4x.xml`` there; ``[venues.fix] data_dictionary``), as
the scripts were written for an engine that validates against it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors import FakeClock
from protocols.venues.fix._dictionary import DataDictionary
from protocols.venues.fix._session import Deliver, Disconnect, FixSession, Send, SessionConfig
from protocols.venues.fix._store import SeqStore

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [ROOT.parent / "shared" / "fix-acceptance", ROOT.parent.parent / "shared" / "fix-acceptance"]
SCRIPTS = next((p for p in CANDIDATES if p.exists()), CANDIDATES[0])

#: the direction-symmetric cases (the README's list); every other script is acceptor-only
APPLICABLE = re.compile(r"^(2b|2c|2d|2e|2f|2g|3b|3c|4b|6|7|8|10|11a|11b|11c|14[a-i]|20)_")
#: cases that apply but that our session deliberately does differently (strict xfail: a pass is news)
DIFFERENT = {
    "14a_BadField": "without a dictionary tags 5000+ are user-defined and accepted (brokers add custom tags); "
                    "QuickFIX rejects 5000 from its dictionary",
    "14b_RequiredFieldMissing": "without a data dictionary required body fields are not checked",
    "14c_TagNotDefinedForMsgType": "without a data dictionary tag-per-message-type is not checked",
    "14e_IncorrectEnumValue": "without a data dictionary enum values are not checked",
    "14f_IncorrectDataFormat": "without a data dictionary data formats are not checked",
    "14g_HeaderBodyTrailerFieldsOutOfOrder": "without a data dictionary field order is not checked",
    "14i_RepeatingGroupCountNotEqual": "without a data dictionary group counts are not checked",
    "8_OnlyApplicationMessages": "application messages are gap-filled, never re-sent (a stale NewOrderSingle must not reach the venue)",
    "8_AdminAndApplicationMessages": "application messages are gap-filled, never re-sent (a stale NewOrderSingle must not reach the venue)",
    "20_SimultaneousResendRequest": "application messages are gap-filled, never re-sent (a stale NewOrderSingle must not reach the venue)",
}
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
IGNORED_VALUES = {9, 10, 52, 122, 60}
ECHO_SKIP = {8, 9, 35, 34, 49, 52, 56, 43, 97, 122, 10}


#: the cases the dictionary decides (they pass with it)
DICTIONARY_CASES = re.compile(r"^14[a-i]_")
_DICTIONARIES: dict[str, DataDictionary] = {}


def dictionary(version: str) -> DataDictionary:
    """QuickFIX's data dictionary of ``version`` ("fix42" / "fix44"), loaded once."""
    if version not in _DICTIONARIES:
        _DICTIONARIES[version] = DataDictionary.load(SCRIPTS / "spec" / f"FIX{version[3:]}.xml")
    return _DICTIONARIES[version]


def cases() -> list:
    out = []
    for version in ("fix42", "fix44"):
        folder = SCRIPTS / version
        if not folder.exists():
            continue
        for path in sorted(folder.glob("*.def")):
            if not APPLICABLE.match(path.name):
                continue
            for with_dictionary in (False, True):
                marks = []
                if path.stem in DIFFERENT and not (with_dictionary and DICTIONARY_CASES.match(path.name)):
                    marks.append(pytest.mark.xfail(strict=True, reason=DIFFERENT[path.stem]))
                label = f"{version}+dictionary" if with_dictionary else version
                out.append(pytest.param(path, with_dictionary, id=f"{label}/{path.stem}", marks=marks))
    return out


def _time(match: re.Match, now: datetime) -> str:
    shift = int(match.group(1) or 0)
    when = now + timedelta(seconds=shift)
    return when.strftime("%Y%m%d-%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def _fill(line: str, clock: FakeClock) -> bytes:
    """The harness's message: <TIME> filled in; BodyLength and CheckSum computed where the line has none."""
    now = clock.now()
    text = re.sub(r"<TIME([+-]\d+)?>", lambda m: _time(m, now), line)
    fields = [f for f in text.split("\x01") if f]
    trailer = [f for f in fields if f.startswith("10=")]
    fields = [f for f in fields if not f.startswith("10=")]
    if not any(f.startswith("9=") for f in fields[1:2]):
        body = "".join(f + "\x01" for f in fields[1:])
        fields = [fields[0], f"9={len(body)}", *fields[1:]]
    raw = "".join(f + "\x01" for f in fields).encode("latin-1")
    if trailer:
        return raw + (trailer[0] + "\x01").encode("latin-1")
    return raw + f"10={sum(raw) % 256:03d}\x01".encode()


def _pairs(raw: bytes) -> list[tuple[int, str]]:
    out = []
    for field in raw.decode("latin-1").split("\x01"):
        if not field:
            continue
        tag, _, value = field.partition("=")
        tag_no = int(tag)
        if tag_no in (9, 10):  # computed by the framing; some expected lines omit them
            continue
        out.append((tag_no, "*" if tag_no in IGNORED_VALUES else value))
    return out


class Mirror:
    """Drives a FixSession through one script."""

    def __init__(self, begin: str, heartbeat: int, harness: str, dictionary: DataDictionary | None = None) -> None:
        self.clock = FakeClock(wall_start=T0)
        config = SessionConfig(begin, "ISLD", harness, heartbeat_s=heartbeat, dictionary=dictionary)
        self.session = FixSession(config, SeqStore.memory(), self.clock)
        self.sent: list[Send] = []
        self.disconnected = False
        self.delivered: list[Deliver] = []
        self._take(self.session.connected())

    def _take(self, actions) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.sent.append(action)
            elif isinstance(action, Disconnect):
                self.disconnected = True
                self._take(self.session.disconnected(action.reason))
            elif isinstance(action, Deliver):
                self.delivered.append(action)
                frame = action.frame
                if frame.msg_type != "3":  # the scripts' application echoes what it gets (QuickFIX: body in tag order)
                    body = sorted(((t, v) for t, v in frame.pairs if t not in ECHO_SKIP), key=lambda pair: pair[0])
                    self.sent.append(self.session.send_app(frame.msg_type, body))

    def feed(self, raw: bytes) -> None:
        if not self.disconnected:
            self._take(self.session.receive(raw))

    def next_sent(self) -> Send | None:
        for _ in range(120):
            if self.sent:
                return self.sent.pop(0)
            if self.disconnected:
                return None
            self.clock.advance(1.0)
            self._take(self.session.tick())
        return None

    def await_disconnect(self) -> bool:
        for _ in range(120):
            if self.disconnected:
                return True
            self.clock.advance(1.0)
            self._take(self.session.tick())
        return self.disconnected


def run_script(path: Path, with_dictionary: bool = False) -> None:
    lines = [line.rstrip("\n") for line in path.read_text(encoding="latin-1").splitlines()]
    steps = [line for line in lines if line and not line.startswith("#")]
    begin = "FIX.4.2" if "fix42" in str(path.parent) else "FIX.4.4"
    first_logon = next(line for line in steps if line.startswith("I") and "\x0135=A\x01" in line)
    heartbeat = int(re.search(r"\x01108=(\d+)", first_logon).group(1))
    harness = re.search(r"\x0149=([^\x01]+)", first_logon).group(1)
    mirror: Mirror | None = None
    for number, step in enumerate(steps, 1):
        kind, body = step[0], step[1:]
        if body == "CONNECT" and kind == "i":
            mirror = Mirror(begin, heartbeat, harness, dictionary(path.parent.name) if with_dictionary else None)
            pending_logon = mirror.sent.pop(0)
            continue
        assert mirror is not None, f"step {number}: no connection"
        if kind == "I":
            if pending_logon is not None and "\x0135=A\x01" in body:
                logon_in = _fill(body, mirror.clock)
                expected_logon = next(s for s in steps[number:] if s.startswith("E"))
                assert _pairs(pending_logon.raw) == _pairs(expected_logon[1:].encode("latin-1")), "our Logon"
                steps[number] = "#consumed"
                mirror.feed(logon_in)
                pending_logon = None
                continue
            mirror.feed(_fill(body, mirror.clock))
        elif kind == "E":
            if step == "#consumed":
                continue
            got = mirror.next_sent()
            want = _pairs(body.encode("latin-1"))
            assert got is not None, f"step {number}: expected {body!r}, got nothing (disconnected={mirror.disconnected})"
            assert _pairs(got.raw) == want, f"step {number}: expected {want}, got {_pairs(got.raw)}"
        elif kind == "e" and body == "DISCONNECT":
            assert mirror.await_disconnect(), f"step {number}: expected a disconnect"
            assert not mirror.sent, f"step {number}: unexpected messages before disconnect: {[s.raw for s in mirror.sent]}"
        elif kind == "#":
            continue


@pytest.mark.skipif(not SCRIPTS.exists(), reason=f"QuickFIX acceptance scripts not found at {SCRIPTS}")
@pytest.mark.parametrize(("path", "with_dictionary"), cases())
def test_acceptance_script(path: Path, with_dictionary: bool) -> None:
    run_script(path, with_dictionary)
