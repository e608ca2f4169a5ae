"""The audit log's fast encoder writes the canonical bytes the verifier recomputes.

``actors/audit/log.py`` encodes plain ``data`` (str/int/bool/None values and dicts of them) with
orjson and splices it into the line; everything else takes ``json.dumps``. The hash chain is
only as good as the bytes being canonical, so these tests prove, for any data hypothesis finds,
that the line is byte for byte what the module docstring's definition gives:
``canonical_json`` of the line without its hash, then ``,"hash":"<sha256>"`` — the same bytes
a log written before the fast encoder has, so old and new logs verify alike.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.audit.log import GENESIS_HASH, AuditLog, _data_json, _normalise, canonical_json, verify

TS = datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return TS


class _Side(str, enum.Enum):
    BUY = "BUY"


def _reference(data: object) -> str:
    """What the data field was before the fast path: normalise, then ``json.dumps`` canonical."""
    return canonical_json(_normalise(data))


def _reference_line(kind: str, data: object, seq: int, prev: str) -> bytes:
    body = canonical_json({"data": _normalise(data), "kind": kind, "prev": prev, "seq": seq,
                           "ts": "2026-12-07T11:00:00.123456Z"})
    digest = hashlib.sha256(body.encode("ascii")).hexdigest()
    return f'{body[:-1]},"hash":"{digest}"}}\n'.encode("ascii")


# every code point, lone surrogates and control characters included
_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)
_scalars = st.one_of(
    _text,
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond orjson's 64 bits too
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=8),
    st.sampled_from([_Side.BUY]),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(st.dictionaries(_text, inner, max_size=4),
                                                           st.lists(inner, max_size=3)), max_leaves=12)
_data = st.dictionaries(_text, _values, max_size=8)
_plain_data = st.dictionaries(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
    st.recursive(st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
                           st.integers(min_value=-(2**63), max_value=2**64 - 1), st.booleans(), st.none()),
                 lambda inner: st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=10),
    max_size=10)


@settings(max_examples=200)
@given(_data)
@example({"cause": "del \x7f", "x": 1})
@example({"reason": "caf\u00e9 \U0001f600", "seq": 2})
@example({"big": 2**64, "small": -(2**63) - 1})
@example({"bad": "\ud800"})
@example({"f": 1e16, "g": 1e-7, "h": 0.1})
@example({"nested": {"b": 1, "a": {"d": None, "c": True}}, "enum": _Side.BUY})
@example({"ctl": "".join(chr(c) for c in range(32))})
def test_data_json_is_canonical_json_of_normalised_data(data: dict) -> None:
    assert _data_json(data) == _reference(data)


@settings(max_examples=200)
@given(_plain_data)
def test_plain_ascii_data_is_encoded_the_same(data: dict) -> None:
    # the shapes the ledger writes (str/int/bool/None, nested dicts): the fast path's domain
    assert _data_json(data) == _reference(data)


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(["transition", "fill", "caf\u00e9", "k\x7f"]), _data), min_size=1, max_size=5))
def test_lines_are_the_canonical_bytes_and_verify(tmp_path_factory, entries: list) -> None:
    path = Path(tmp_path_factory.mktemp("audit")) / "audit.jsonl"
    log = AuditLog(path, fsync="never", clock=_Clock())
    log.append_many(entries)
    log.close()
    expected, prev = [], GENESIS_HASH
    for seq, (kind, data) in enumerate(entries, start=1):
        line = _reference_line(kind, data, seq, prev)
        expected.append(line)
        prev = line.rsplit(b'"hash":"', 1)[1][:64].decode()
    assert path.read_bytes() == b"".join(expected)
    assert verify(path).ok


def test_a_log_written_by_the_reference_encoder_continues_and_verifies(tmp_path: Path) -> None:
    """A log written before the fast encoder (reference bytes) is extended by the new one."""
    path = tmp_path / "audit.jsonl"
    old = [("transition", {"client_order_id": "a-1", "seq": 1, "to": "RESERVED", "limit_price": None}),
           ("attempt_failed", {"client_order_id": "a-1", "retry_in_s": 0.25, "qty": Decimal("0.001")})]
    prev, blob = GENESIS_HASH, b""
    for seq, (kind, data) in enumerate(old, start=1):
        line = _reference_line(kind, data, seq, prev)
        blob += line
        prev = line.rsplit(b'"hash":"', 1)[1][:64].decode()
    path.write_bytes(blob)
    log = AuditLog(path, clock=_Clock())
    assert log.seq == 2 and log.last_hash == prev
    log.append("fill", {"client_order_id": "a-1", "trade_id": "t-1", "qty": "0.001", "side": "BUY"})
    log.close()
    assert path.read_bytes() == blob + _reference_line(
        "fill", {"client_order_id": "a-1", "trade_id": "t-1", "qty": "0.001", "side": "BUY"}, 3, prev)
    assert verify(path).ok
