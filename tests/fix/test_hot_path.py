"""The FIX venue's per-order shortcuts give exactly what the plain, obviously-right code gives.

Each order sends one NewOrderSingle and reads one ExecutionReport; the code on that path takes
shortcuts (a timestamp prefix formatted once per second, the session's constant header bytes
encoded once, the field checks skipped when one scan of the raw bytes proves them clean, the
venue state built without re-validation, pending requests expired oldest first). Each test here
holds one shortcut to the slow construction it replaces, including the inputs where the
shortcut must step aside.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from actors import FakeClock
from protocols import AmbiguousError, OrderStatus, Side, VenueOrder, VenueOrderState
from protocols.model.reports import Fill
from protocols.venues.fix import _codec
from protocols.venues.fix import _venue as _venue_mod
from protocols.venues.fix._codec import Framer, checksum, encode, encode_fields, fix_decimal, utc_timestamp
from protocols.venues.fix._session import _GROUP_COUNTERS, _MAX_STD_TAG, ACTIVE, FixSession, SessionConfig
from protocols.venues.fix._store import SeqStore
from protocols.venues.fix._venue import FixVenue, FixVenueConfig
from protocols.venues.paper import trusted

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


# ---------------------------------------------------------------------- timestamps

@given(st.lists(st.tuples(st.integers(0, 10**9), st.sampled_from([0, 60, -300, 330])), min_size=1, max_size=20))
def test_utc_timestamp_is_strftime_with_milliseconds(steps) -> None:
    """Across second boundaries and zones (the per-second prefix is reused only within its second)."""
    for micros, offset_min in steps:
        when = (T0 + timedelta(microseconds=micros)).astimezone(timezone(timedelta(minutes=offset_min)))
        utc = when.astimezone(UTC)
        assert utc_timestamp(when) == utc.strftime("%Y%m%d-%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


# ---------------------------------------------------------------------- sending

def test_a_sent_message_is_what_encode_makes_of_the_same_fields() -> None:
    clock = FakeClock(wall_start=T0 + timedelta(milliseconds=7))
    session = FixSession(SessionConfig("FIX.4.4", "CLIENT1", "EXEC"), SeqStore.memory(), clock)
    session.state = ACTIVE
    session.store.set(41, 1)
    body = [(11, "o-1"), (38, D("0.5")), (44, "100"), (58, "café")]
    send = session.send_app("D", body)
    assert send.seq == 41 and session.store.next_sender == 42
    assert send.raw == encode("FIX.4.4", "D", [(34, 41), (49, "CLIENT1"), (52, "20260105-12:00:00.007"), (56, "EXEC"), *body])


# ---------------------------------------------------------------------- the field checks

def _field_problem_reference(session: FixSession, frame) -> tuple | None:
    """The checks as plain loops over every field (what the session did on every message)."""
    if frame.bad_tag is not None:
        return ("Invalid tag number", 0, None)
    for tag, value in frame.pairs:
        if value == "":
            return ("Tag specified without a value", 4, tag)
    max_tag = _MAX_STD_TAG[session.config.begin_string]
    seen: set[int] = set()
    grouped = any(tag in _GROUP_COUNTERS for tag, _ in frame.pairs)
    for tag, _value in frame.pairs:
        if tag <= 0 or max_tag < tag < 5000:
            return ("Invalid tag number", 0, tag)
        if tag in seen and not grouped and tag != 10:
            return ("Tag appears more than once", 13, tag)
        seen.add(tag)
    return None


_tags = st.one_of(st.sampled_from([11, 14, 17, 31, 32, 37, 38, 39, 54, 55, 58, 73, 150, 151, 446, 447, 956, 957,
                                   4999, 5000, 9999]), st.integers(1, 12000))
_values = st.one_of(st.just(""), st.text("abc=9.", min_size=1, max_size=6))


@settings(max_examples=300)
@given(st.sampled_from(["FIX.4.2", "FIX.4.4"]), st.lists(st.tuples(_tags, _values), max_size=10))
def test_the_field_checks_shortcut_finds_what_the_loops_find(begin: str, body) -> None:
    session = FixSession(SessionConfig(begin, "CLIENT1", "EXEC"), SeqStore.memory(), FakeClock())
    header = [(34, 2), (49, "EXEC"), (52, "20260105-12:00:00.000"), (56, "CLIENT1")]
    (frame,) = Framer().feed(encode(begin, "8", [*header, *body]))
    assert session._field_problem(frame) == _field_problem_reference(session, frame)


# ---------------------------------------------------------------------- the venue state

_FILL = Fill(trade_id="e-1", qty=D("0.5"), price=D("100"), ts=T0)
_STATE = dict(client_order_id="c-1", venue_order_id="v-1", symbol="BTC/USDT", side=Side.BUY, status=OrderStatus.FILLED,
              quantity=D("0.5"), cum_qty=D("0.5"), leaves_qty=D("0"), avg_px=D("100"), fills=(_FILL,),
              reject_reason=None, ts=T0)


def _same(fast: VenueOrderState, slow: VenueOrderState) -> bool:
    return (type(fast) is type(slow) and fast == slow and repr(fast) == repr(slow)
            and list(fast.__dict__) == list(slow.__dict__) and fast.model_dump_json() == slow.model_dump_json())


@pytest.mark.parametrize("change", [
    {},
    {"status": OrderStatus.ACCEPTED, "cum_qty": D("0"), "leaves_qty": D("0.5"), "avg_px": None, "fills": ()},
    {"status": OrderStatus.REJECTED, "reject_reason": "why", "avg_px": None, "fills": ()},
    {"quantity": D("1E+1"), "cum_qty": D("0E-8"), "leaves_qty": D("10.000")},
    {"ts": T0.astimezone(timezone(timedelta(hours=1)))},  # not UTC: validation normalises it
])
def test_make_venue_state_is_the_validated_state(change) -> None:
    fields = {**_STATE, **change}
    assert trusted._ENABLED
    assert _same(trusted.make_venue_state(**fields), VenueOrderState(**fields))


@pytest.mark.parametrize("change", [
    {"quantity": D(0)}, {"cum_qty": D("-1")}, {"leaves_qty": D("-0.1")}, {"avg_px": D("Infinity")},
    {"quantity": D("NaN")},
])
def test_make_venue_state_outside_the_constraints_raises_like_validation(change) -> None:
    fields = {**_STATE, **change}
    with pytest.raises(ValidationError) as fast:
        trusted.make_venue_state(**fields)
    with pytest.raises(ValidationError) as slow:
        VenueOrderState(**fields)
    assert str(fast.value) == str(slow.value)


# ---------------------------------------------------------------------- requests past their time

def _venue(tmp_path: Path, clock: FakeClock) -> FixVenue:
    return FixVenue("fix", FixVenueConfig(host="127.0.0.1", port=1, begin_string="FIX.4.4", sender_comp_id="CLIENT1",
                                          target_comp_id="EXEC", store_dir=tmp_path, request_timeout_s=1.5), clock=clock)


def _order(cid: str) -> VenueOrder:
    return VenueOrder(client_order_id=cid, account_id="a", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                      quantity=D("1"), limit_price=D("100"), ts=T0)


def test_unanswered_orders_expire_oldest_first_and_one_taken_back_unsent_never_answers(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=T0)
    v = _venue(tmp_path, clock)
    answers: dict[str, list] = {}

    def done_for(cid: str):
        return lambda result, error: answers.setdefault(cid, []).append(error)

    v.session.state = ACTIVE  # logged on as far as the session knows, but no socket: the write is refused
    assert v.send_order(_order("unsent"), done_for("unsent")) is False  # nothing sent, done never called
    for k, cid in enumerate(["a", "b", "c"]):
        clock.advance(0.5 * (k > 0))
        waiter = v._submit_waiter(_order(cid), done_for(cid))  # registered as a send would (deadline = now + 1.5 s)
        assert waiter.deadline == pytest.approx(clock.monotonic() + 1.5)
    v._submits["b"].answer(error=None)  # b answered (by its ExecutionReport) before its time
    answers.pop("b")
    clock.advance(1.2)  # a is due (1.5 s old), c is not (1.2 s)
    v._expire_waiters()
    assert list(answers) == ["a"] and isinstance(answers["a"][0], AmbiguousError)
    clock.advance(0.5)
    v._expire_waiters()
    v._expire_waiters()
    assert sorted(answers) == ["a", "c"] and [len(e) for e in answers.values()] == [1, 1]  # each answered once
    assert "unsent" not in answers and not v._pending
    v.close()


# ---------------------------------------------------------------------- framing

class _BufferOnly(Framer):
    """The framer without its whole-frames shortcut: every byte goes through the buffer."""

    def _whole_frames(self, data: bytes, frames: list) -> int:
        return 0


_frames = st.lists(st.tuples(st.sampled_from(["0", "8", "D"]), st.integers(1, 99), st.text("ab=1", max_size=5)),
                   min_size=1, max_size=5).map(
    lambda items: [encode("FIX.4.4", t, [(34, seq), (58, text or "x")]) for t, seq, text in items])
_damage = st.sampled_from(["none", "garbage", "checksum", "length", "cut"])


@settings(max_examples=300)
@given(_frames, st.lists(_damage, min_size=5, max_size=5), st.lists(st.integers(1, 400), max_size=6))
def test_the_whole_frames_shortcut_cuts_what_the_buffer_cuts(raws, damage, cuts) -> None:
    stream = b""
    for raw, how in zip(raws, damage, strict=False):
        if how == "garbage":
            raw = b"xx8=FI" + raw
        elif how == "checksum":
            raw = raw[:-4] + b"%03d\x01" % ((int(raw[-4:-1]) + 1) % 256)
        elif how == "length":
            raw = raw.replace(b"\x019=", b"\x019=9", 1)
        elif how == "cut":
            raw = raw[: len(raw) // 2]
        stream += raw
    chunks, at = [], 0
    for cut in sorted(cuts):
        chunks.append(stream[at:cut])
        at = max(at, cut)
    chunks.append(stream[at:])
    fast, slow = Framer(), _BufferOnly()
    got = [f for chunk in chunks for f in fast.feed(chunk)]
    want = [f for chunk in chunks for f in slow.feed(chunk)]
    assert got == want and [f.pairs for f in got] == [f.pairs for f in want]
    assert fast.garbled == slow.garbled and bytes(fast._buf) == bytes(slow._buf)


# ---------------------------------------------------------------------- checksum, splitting

@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_checksum_is_the_byte_sum_modulo_256(data: bytes) -> None:
    assert checksum(data) == sum(data) % 256
    assert checksum(bytearray(data)) == checksum(memoryview(data)) == sum(data) % 256


def _split_reference(raw: bytes):
    """Splitting as it was: one regex match per field (what every received message went through)."""
    text = raw.decode("latin-1")
    if _codec._WELL_FORMED.fullmatch(text) is None:
        return None
    pairs = tuple((int(tag), value) for tag, value in _codec._PAIR.findall(text))
    first: dict[int, str] = {}
    for tag, value in pairs:
        first.setdefault(tag, value)
    return pairs, first


_field_values = st.one_of(st.just(""), st.text(st.sampled_from("ab=9.\xe9 "), min_size=1, max_size=6))


@settings(max_examples=400)
@given(st.lists(st.tuples(st.one_of(st.integers(1, 1200), st.sampled_from([11, 58, 5001, 9999, 20000])), _field_values),
                max_size=12))
def test_splitting_by_two_c_level_splits_finds_the_fields_one_regex_match_each_finds(body) -> None:
    """Values with "=" in them, empty values, repeated tags, tags past the lookup table."""
    raw = encode("FIX.4.4", "8", [(34, 2), (49, "EXEC"), *body])
    (frame,) = Framer().feed(raw)
    want = _split_reference(raw)
    assert want is not None and (frame.pairs, frame.first) == want and frame.bad_tag is None
    assert frame == _codec._split(raw)


def test_a_frame_with_a_field_that_is_not_tag_value_is_split_field_by_field() -> None:
    """A field without "=" next to one with two: as many "=" as fields, but not one each."""
    raw = b"8=FIX.4.4\x019=20\x0135=8\x015\x0158=1=2\x01"
    raw += b"10=%03d\x01" % (sum(raw) % 256)
    frame = _codec._split(raw)
    assert frame.bad_tag == "5" and frame.pairs == ((8, "FIX.4.4"), (9, "20"), (35, "8"), (58, "1=2"), (10, frame.pairs[-1][1]))


#: pieces of a field as the wire may carry them: standard, padded, signed, empty and user-defined
#: tags; values with "=", empty ones, non-ASCII bytes; fields without "=" or with a stray SOH
_tag_texts = st.one_of(st.integers(1, 999).map(str), st.sampled_from(["0", "034", "-5", "", "5001", "99999", "1a", " 35"]))
_value_bytes = st.one_of(st.just(b""), st.binary(max_size=6).filter(lambda b: b"\x01" not in b),
                         st.text(st.sampled_from("ab=9.\xe9 "), max_size=6).map(lambda t: t.encode("utf-8")))
_wire_fields = st.one_of(
    st.tuples(_tag_texts, _value_bytes).map(lambda f: f[0].encode() + b"=" + f[1] + b"\x01"),
    st.sampled_from([b"5\x01", b"=x\x01", b"58=a\x01b\x01", b"\x01", b"==\x01"]),
)


@settings(max_examples=1000)
@given(st.sampled_from(["FIX.4.2", "FIX.4.4"]), st.lists(_wire_fields, max_size=12), st.booleans(),
       st.sampled_from([b"", b"xy", b"=", b"10=1"]), st.booleans())
def test_splitting_by_the_separators_alone_is_the_general_split(begin, fields, poss_dup, tail, as_bytearray) -> None:
    """The separator-only recognition (``_split``) against the general split it stands before:
    FIX 4.2 and 4.4 ExecutionReports with PossDup (43, 122), repeated and missing tags, values
    with "=", padded, signed, empty and user-defined tags, fields that are not ``tag=value`` and
    a tail after the last SOH; pairs, first values and the bad tag must all agree."""
    header = b"8=" + begin.encode() + b"\x019=0\x0135=8\x0134=7\x01"
    if poss_dup:
        header += b"43=Y\x01122=20260105-11:59:59.000\x01"
    raw = header + b"".join(fields) + b"10=000\x01" + tail
    if as_bytearray:
        raw = bytearray(raw)  # type: ignore[assignment]
    fast, general = _codec._split(raw), _codec._split_general(raw)
    assert (fast.raw, fast.pairs, fast.first, fast.bad_tag) == (general.raw, general.pairs, general.first, general.bad_tag)
    assert list(fast.first) == list(general.first)  # the same tag order too


def test_the_separator_recognition_steps_aside_for_what_the_tag_table_cannot_vouch_for() -> None:
    """A padded tag (034), an empty tag and a tail after the last SOH would each be misread by the
    two splits alone; each goes through the general split (a bad tag named, a padded tag read as
    its number, the tail cut off as before)."""
    padded = _codec._split(b"8=FIX.4.4\x01034=2\x01")
    assert padded.pairs == ((8, "FIX.4.4"), (34, "2")) and padded.bad_tag is None
    empty_tag = _codec._split(b"8=FIX.4.4\x01=2\x01")
    assert empty_tag.bad_tag == "" and empty_tag.pairs == ((8, "FIX.4.4"),)
    tail = _codec._split(b"8=FIX.4.4\x0135=8\x01xy")
    assert tail == _codec._split_general(b"8=FIX.4.4\x0135=8\x01xy")


# ---------------------------------------------------------------------- the NewOrderSingle template

def _order_body_reference(venue: FixVenue, order: VenueOrder, transact_time: str) -> list[tuple[int, object]]:
    """The NewOrderSingle's fields as pairs (what the venue built and encoded for every order)."""
    body: list[tuple[int, object]] = [(11, order.client_order_id)]
    if venue.config.account:
        body.append((1, venue.config.account))
    body += [(21, "1"), (55, venue.config.symbols.get(order.symbol, order.symbol)), (54, {"BUY": "1", "SELL": "2"}[order.side.value]),
             (60, transact_time), (38, fix_decimal(order.quantity)), (40, {"MARKET": "1", "LIMIT": "2"}[order.order_type.value])]
    if order.order_type.value == "LIMIT" and order.limit_price is not None:
        body.append((44, fix_decimal(order.limit_price)))
    body.append((59, {"DAY": "0", "GTC": "1", "IOC": "3", "FOK": "4"}[order.time_in_force.value]))
    return body


_decimals = st.decimals(min_value=D("0.00000001"), max_value=D("1e9"), places=8, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("ab-%.\xe9Z9"), min_size=1, max_size=12), st.sampled_from(["BTC/USDT", "ETH/USDT", "X%s"]),
       st.sampled_from(["BUY", "SELL"]), st.sampled_from(["LIMIT", "MARKET"]), _decimals, _decimals,
       st.sampled_from(["DAY", "GTC", "IOC", "FOK"]), st.sampled_from([None, "acc%1", "ACC-2"]))
def test_the_new_order_single_template_encodes_what_the_pairs_encode(tmp_path_factory, cid, symbol, side, order_type, qty, px,
                                                                      tif, account) -> None:
    venue = FixVenue("fix", FixVenueConfig(host="127.0.0.1", port=1, begin_string="FIX.4.4", sender_comp_id="CLIENT1",
                                           target_comp_id="EXEC", store_dir=tmp_path_factory.mktemp("s"), account=account,
                                           symbols={"BTC/USDT": "BTCUSDT", "X%s": "X%d"}), clock=FakeClock(wall_start=T0))
    order = VenueOrder(client_order_id=cid, account_id="a", symbol=symbol, side=side, order_type=order_type, quantity=qty,
                       limit_price=px if order_type == "LIMIT" else None, time_in_force=tif, ts=T0)
    for _ in range(2):  # the symbol encoded at the first order, reused at the next
        assert venue._order_body(order, b"20260105-12:00:00.000") == encode_fields(
            _order_body_reference(venue, order, "20260105-12:00:00.000"))
    venue.close()


@settings(max_examples=300, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False), st.integers(0, 12), st.booleans())
def test_a_cached_decimal_field_is_fix_decimal_of_the_value_whatever_its_exponent(value, zeros, first_padded) -> None:
    """Equal Decimals written with other exponents (0.5, 0.50, 5E-1) share one cache entry: each
    reads back as ``fix_decimal`` of itself, whichever was cached first; zero (signed) is never cached."""
    plain = format(value, "f")
    padded = D(plain + ("" if "." in plain else ".") + "0" * zeros) if zeros else value  # the same value, other exponent
    assert padded == value
    _venue_mod._DECIMAL_FIELDS.clear()
    for each in ((padded, value) if first_padded else (value, padded)):
        assert _venue_mod._decimal_field(each) == fix_decimal(each).encode()
        assert _venue_mod._decimal_field(each) == fix_decimal(each).encode()  # the cached answer
    assert not any(not key for key in _venue_mod._DECIMAL_FIELDS)
    _venue_mod._DECIMAL_FIELDS.clear()


def test_a_message_sent_from_encoded_fields_with_its_sending_time_is_what_encode_makes() -> None:
    clock = FakeClock(wall_start=T0 + timedelta(milliseconds=7))
    session = FixSession(SessionConfig("FIX.4.4", "CLI%d", "EXEC"), SeqStore.memory(), clock)
    session.state = ACTIVE
    body = [(11, "o-1"), (38, D("0.5")), (44, "100"), (58, "café")]
    send = session.send_app("D", encode_fields(body), b"20260105-12:00:01.250")
    assert send.raw == encode("FIX.4.4", "D", [(34, 1), (49, "CLI%d"), (52, "20260105-12:00:01.250"), (56, "EXEC"), *body])
    again = session.send_app("D", body)  # the header format is kept per MsgType
    assert again.raw == encode("FIX.4.4", "D", [(34, 2), (49, "CLI%d"), (52, "20260105-12:00:00.007"), (56, "EXEC"), *body])


# ---------------------------------------------------------------------- Decimal fields of a report

@given(st.lists(st.one_of(st.sampled_from(["", "0", "-0", "0.50", "0.5", "100", "1e5", "1E+2", "NaN", "sNaN", "Infinity",
                                           "-Infinity", "abc", "1.2.3", " 1"]),
                          st.decimals(allow_nan=False, allow_infinity=False).map(str)), max_size=20))
def test_a_decimal_field_read_again_is_what_parsing_it_gives(texts) -> None:
    """The parse cache answers, for a text seen before, exactly what parsing it again gives
    (representation included: "0.50" and "0.5" are different texts)."""
    for text in texts * 2:
        got, want = _venue_mod._dec(text), _venue_mod._dec_parse(text)
        assert (got is None and want is None) or (str(got) == str(want) and got == want), text
    assert _venue_mod._dec(None) is None


# ---------------------------------------------------------------------- the session's reading of a frame

class _FrameMethodsSession(FixSession):
    """The session reading each received frame through ``Frame.get`` / ``msg_type`` / ``seq()``
    (what ``_on_frame`` did before it read the frame's first-value dict directly)."""

    def _on_frame(self, frame):
        cfg = self.config
        msg_type = frame.msg_type
        seq = frame.seq()
        if frame.get(8) != cfg.begin_string:
            return self._logout_error(f"BeginString {frame.get(8)!r} is not {cfg.begin_string}")
        if seq is None:
            return self._logout_error("MsgSeqNum missing or not a number")
        if self.state == "LOGON_SENT":
            if msg_type != "A":
                return self._logout_error(f"first message is {msg_type!r}, not Logon")
            return self._on_logon(frame, seq)
        missing = 49 if frame.get(49) is None else 56 if frame.get(56) is None else None
        if missing is not None:
            if seq == self.store.next_target:
                self._advance(seq)
            return [self._reject(seq, msg_type, "Required tag missing", 1, missing)]
        if (frame.get(49) != cfg.target_comp_id or frame.get(56) != cfg.sender_comp_id) and self._empty_tag(frame) is None:
            reject = self._reject(seq, msg_type, "CompID problem", 9, None)
            self._advance(seq)
            return [reject, *self._logout_error("CompID problem")]
        poss_dup = frame.get(43) == "Y"
        expected = self.store.next_target
        if msg_type == "4" and frame.get(123) != "Y":
            return self._on_reset(frame, seq)
        if msg_type == "5":
            return self._on_logout(frame, seq)
        if msg_type == "2" and seq <= expected and not (poss_dup and seq < expected):
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
        actions.extend(self._drain_queue())
        return actions


_US, _PEER = "CLIENT1", "EXEC"
_inbound = st.tuples(
    st.sampled_from(["8", "8", "8", "0", "1", "2", "3", "4", "j", "9"]),
    st.integers(-2, 3),  # MsgSeqNum relative to the next expected one
    st.booleans(),  # PossDupFlag (43=Y) with OrigSendingTime (122), or missing 122
    st.sampled_from(["ok", "ok", "ok", "no-34", "no-49", "no-56", "wrong-comp", "other-begin", "empty-value",
                     "repeated", "bad-checksum", "garbled", "bad-tag", "gap-fill", "no-122"]),
    st.lists(st.sampled_from([(6, "101.25"), (14, "10"), (31, "101.25"), (32, "10"), (37, "V-1"), (39, "2"),
                              (150, "F"), (151, "0"), (20, "0"), (58, "a=b"), (17, "E-1"), (11, "c1")]), max_size=6),
)


def _inbound_bytes(begin: str, expected: int, item) -> bytes:
    msg_type, delta, poss_dup, how, body = item
    seq = max(1, expected + delta)
    header: list[tuple[int, object]] = [] if how == "no-34" else [(34, seq)]
    if poss_dup:
        header.append((43, "Y"))
    if how != "no-49":
        header.append((49, "OTHER" if how == "wrong-comp" else _PEER))
    header.append((52, "20260105-12:00:00.000"))
    if how != "no-56":
        header.append((56, _US))
    if poss_dup and how != "no-122":
        header.append((122, "20260105-11:59:59.000"))
    fields = list(body)
    if msg_type == "4":
        fields = [(36, seq + 2), *([(123, "Y")] if how == "gap-fill" else [])]
    elif msg_type == "2":
        fields = [(7, max(1, seq - 1)), (16, 0)]
    if how == "empty-value":
        fields.append((58, ""))
    if how == "repeated":
        fields += [(55, "A"), (55, "B")]
    raw = encode("FIX.4.2" if (how == "other-begin") == (begin == "FIX.4.4") else "FIX.4.4", msg_type, [*header, *fields])
    if how == "bad-checksum":
        raw = raw[:-4] + b"%03d\x01" % ((int(raw[-4:-1]) + 1) % 256)
    elif how == "garbled":
        raw = b"xx8=FI" + raw[: len(raw) // 2]
    elif how == "bad-tag":
        raw = encode(begin, msg_type, [*header, (0, "x"), *fields])
    return raw


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["FIX.4.2", "FIX.4.4"]), st.lists(_inbound, min_size=1, max_size=12))
def test_the_session_reading_the_first_values_acts_as_reading_through_the_frame_methods(begin, stream) -> None:
    """FIX 4.2 and 4.4 streams of ExecutionReports and session messages, with PossDup (and
    OrigSendingTime missing), gaps and repeats, missing MsgSeqNum / CompIDs, wrong CompIDs or
    BeginString, empty values, repeated and bad tags, bad checksums and garbled frames: the
    session's actions, counters and sequence numbers are those of the frame-method reading."""
    sessions = []
    for cls in (FixSession, _FrameMethodsSession):
        clock = FakeClock()
        session = cls(SessionConfig(begin, _US, _PEER, heartbeat_s=10), SeqStore.memory(), clock)
        session.connected()
        session.receive(encode(begin, "A", [(34, 1), (49, _PEER), (52, "20260105-12:00:00.000"), (56, _US), (98, 0), (108, 10)]))
        assert session.state == ACTIVE
        sessions.append(session)
    fast, slow = sessions
    for item in stream:
        raw = _inbound_bytes(begin, slow.store.next_target, item)
        got, want = fast.receive(raw), slow.receive(raw)
        assert got == want
        assert (fast.state, fast.counters, fast.store.next_target, fast.store.next_sender, sorted(fast._queue)) == (
            slow.state, slow.counters, slow.store.next_target, slow.store.next_sender, sorted(slow._queue))
        if fast.state != ACTIVE:
            break


# ---------------------------------------------------------------------- the next deadline

@given(st.floats(0, 1e6), st.floats(0, 1e6), st.one_of(st.none(), st.floats(0, 1e6)), st.sampled_from([1, 5, 30]))
def test_the_next_deadline_is_the_earliest_of_the_heartbeat_and_the_silence_check(last_sent, last_received, test_request_at,
                                                                                    heartbeat_s) -> None:
    """The heartbeat due, or the TestRequest on silence (or its answer's timeout): the earlier one
    (what ``min`` over the two candidates gave)."""
    session = FixSession(SessionConfig("FIX.4.4", "CLIENT1", "EXEC", heartbeat_s=heartbeat_s), SeqStore.memory(), FakeClock())
    session.state = ACTIVE
    session._last_sent, session._last_received, session._test_request_at = last_sent, last_received, test_request_at
    other = last_received + 1.2 * heartbeat_s if test_request_at is None else test_request_at + heartbeat_s
    assert session.next_deadline() == min([last_sent + heartbeat_s, other])
