"""The codec's one-pass encoder writes exactly what simplefix writes for the same pairs."""

from __future__ import annotations

from decimal import Decimal

import simplefix
from hypothesis import given
from hypothesis import strategies as st

from protocols.venues.fix._codec import Framer, encode


def _simplefix(begin: str, msg_type: str, fields) -> bytes:
    msg = simplefix.FixMessage()
    msg.append_pair(8, begin, header=True)
    msg.append_pair(35, msg_type, header=True)
    for tag, value in fields:
        msg.append_pair(tag, value)
    return msg.encode()


#: BeginString, BodyLength, MsgType, CheckSum: written by the encoder itself, never passed as fields
_FRAMING = frozenset({8, 9, 10, 35})
_values = st.one_of(
    st.text(st.characters(blacklist_characters="\x01", blacklist_categories=("Cs",)), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=10**12),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=0, max_value=10**6),
    st.binary(min_size=1, max_size=8).filter(lambda b: b"\x01" not in b),
)


@given(st.sampled_from(["FIX.4.2", "FIX.4.4"]), st.sampled_from(["D", "8", "A", "3", "F"]),
       st.lists(st.tuples(st.integers(min_value=1, max_value=9999).filter(lambda t: t not in _FRAMING), _values), max_size=12))
def test_encode_matches_simplefix(begin: str, msg_type: str, fields) -> None:
    assert encode(begin, msg_type, fields) == _simplefix(begin, msg_type, fields)


def test_encoded_order_frames_back() -> None:
    raw = encode("FIX.4.4", "D", [(34, 7), (49, "CLIENT1"), (56, "EXECUTOR"), (11, "o-1"), (38, Decimal("0.5")), (58, "café")])
    frames = Framer().feed(raw)
    assert len(frames) == 1 and frames[0].get(11) == "o-1" and frames[0].get(38) == "0.5" and frames[0].get(34) == "7"


_raw_fields = st.lists(st.one_of(
    st.tuples(st.integers(min_value=0, max_value=99999).map(str), st.text("ab=1é", max_size=4)).map(lambda t: f"{t[0]}={t[1]}"),
    st.text("x-=19", min_size=0, max_size=5),  # not int=value: a bad tag, a missing '=', an empty field
), min_size=1, max_size=10)


@given(_raw_fields)
def test_split_fast_path_equals_field_by_field(fields) -> None:
    """Frames split with the one-pass regex read exactly as the field-by-field reading."""
    from protocols.venues.fix._codec import _split

    raw = ("\x01".join(fields) + "\x01").encode("utf-8")
    frame = _split(raw)
    pairs, bad = [], None
    for item in raw[:-1].split(b"\x01"):
        tag, sep, value = item.partition(b"=")
        if not sep or not (tag.isdigit() or (tag.startswith(b"-") and tag[1:].isdigit())):
            bad = bad or tag.decode("ascii", "replace")
            continue
        pairs.append((int(tag), value.decode("latin-1")))
    assert frame.pairs == tuple(pairs) and frame.bad_tag == bad
    assert all(frame.get(tag) == next(v for t, v in pairs if t == tag) for tag, _ in pairs)
