"""FIX tag=value encoding and framing (FIX 4.2 / 4.4 session layer, FIXT-free).

``encode`` writes what simplefix would (BodyLength 9 and CheckSum 10 computed) in one pass;
this module adds what a session layer needs and simplefix does not check: it cuts a byte stream into frames,
verifies BodyLength and CheckSum (a garbled frame is skipped, never parsed; FIX 4.4 Vol 2
"Message Recovery": a garbled message is ignored and the sequence gap recovered by resend), and
splits a good frame into ``(tag, value)`` pairs without dropping empty values or repeats, so the
session can reject them (SessionRejectReason 4 and 13).

Example::

    >>> raw = encode("FIX.4.4", "0", [(34, 2), (49, "A"), (56, "B"), (52, "20260101-00:00:00.000")])
    >>> framer = Framer(); frames = framer.feed(raw)
    >>> frames[0].msg_type, frames[0].get(34)
    ('0', '2')
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

SOH = b"\x01"
#: tags whose value is masked in every log line and dump: Username 553, Password 554,
#: RawData 96 (logon secrets of some venues), NewPassword 925
SECRET_TAGS = frozenset({553, 554, 96, 925})
_MASK = b"***"
_START = re.compile(rb"8=FIX")
_HEADER_TAGS = frozenset({8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 115, 128, 50, 57, 142, 143, 144, 145, 116, 129, 90, 91, 212, 213, 347, 369, 627})


#: the last whole second formatted by ``utc_timestamp``: (its datetime, ``YYYYMMDD-HH:MM:SS.``)
_last_second: tuple[datetime | None, str] = (None, "")


def utc_timestamp(when: datetime) -> str:
    """FIX UTCTimestamp (tag 52 / 122 / 60) with milliseconds: ``YYYYMMDD-HH:MM:SS.sss``.

    Two per order (SendingTime, TransactTime): the date and time of day are formatted once per
    second (``strftime`` costs ~2 µs), only the milliseconds per call."""
    global _last_second
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    second = when.replace(microsecond=0)
    last, prefix = _last_second
    if second != last:
        prefix = second.strftime("%Y%m%d-%H:%M:%S.")
        _last_second = (second, prefix)
    return f"{prefix}{when.microsecond // 1000:03d}"


def parse_timestamp(value: str) -> datetime | None:
    """Parse a FIX UTCTimestamp (with or without fraction); None when it is not one."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def fix_decimal(value: Decimal) -> str:
    """A Decimal as a FIX float field: plain notation, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def encode(begin_string: str, msg_type: str, fields: Iterable[tuple[int, object]]) -> bytes:
    """Encode one message: header order 8, 9, 35, then ``fields`` as given, BodyLength (9) and
    CheckSum (10) computed (FIX 4.4 Vol 2 "Message Format"). Byte for byte what
    ``simplefix.FixMessage.encode`` makes of the same pairs (str values UTF-8, others ``str()``),
    built in one pass: it is on every order's path (tests/fix/test_codec.py compares the two)."""
    return frame_body(b"8=" + begin_string.encode() + b"\x019=", b"35=" + msg_type.encode() + SOH + encode_fields(fields))


def encode_fields(fields: Iterable[tuple[int, object]]) -> bytes:
    """``tag=value<SOH>`` for each pair, in order (str values UTF-8, bytes as they are, others ``str()``)."""
    return b"".join([b"%d=%s\x01" % (tag, value if value.__class__ is bytes else str(value).encode()) for tag, value in fields])


def frame_body(begin: bytes, body: bytes) -> bytes:
    """The message around ``body`` (from MsgType 35 on): ``begin`` is ``8=<BeginString><SOH>9=``;
    BodyLength (9) and CheckSum (10) are computed here."""
    out = b"%b%d\x01%b" % (begin, len(body), body)
    return out + b"10=%03d\x01" % checksum(out)


_adler32 = zlib.adler32


def checksum(data: bytes | bytearray | memoryview) -> int:
    """FIX CheckSum (10): the sum of the bytes modulo 256 (FIX 4.4 Vol 2 "CheckSum calculation").

    Computed in C by ``zlib.adler32``, whose low 16 bits are 1 + the sum of the bytes modulo
    65,521: exact for up to 256 bytes (at most 65,280), so longer data is taken 256 bytes at a
    time. ``sum(data) % 256`` loops over the bytes as ints (~1 µs per frame, twice per order);
    tests/fix/test_hot_path.py holds the two equal."""
    n = len(data)
    if n <= 256:
        return (_adler32(data) - 1) & 0xFF
    view = memoryview(data)
    total = 0
    for at in range(0, n, 256):
        total += (_adler32(view[at: at + 256]) & 0xFFFF) - 1
    return total & 0xFF


def redact(raw: bytes) -> bytes:
    """``raw`` with the value of every secret tag (553, 554, 96, 925) replaced by ``***``; SOH shown as ``|``."""
    out = []
    for item in raw.split(SOH):
        tag, sep, _value = item.partition(b"=")
        if sep and tag.isdigit() and int(tag) in SECRET_TAGS:
            item = tag + b"=" + _MASK
        out.append(item)
    return b"|".join(out)


class Frame:
    """One framed, checksum-verified message: its raw bytes and its ordered ``(tag, value)`` pairs.

    ``bad_tag`` is the first field that is not ``int=value`` (its raw tag text), if any;
    ``first`` maps each tag to its first value (``get`` without a scan). Read-only: a plain
    slotted class rather than a frozen dataclass, because one is built per received message
    (equality and hash by the raw bytes, which determine the rest).
    """

    __slots__ = ("raw", "pairs", "bad_tag", "first")

    raw: bytes
    pairs: tuple[tuple[int, str], ...]
    bad_tag: str | None
    first: dict[int, str]

    def __init__(self, raw: bytes, pairs: tuple[tuple[int, str], ...], bad_tag: str | None = None,
                 first: dict[int, str] | None = None) -> None:
        if first is None:
            first = {}
            for tag, value in pairs:
                if tag not in first:
                    first[tag] = value
        _set = object.__setattr__
        _set(self, "raw", raw)
        _set(self, "pairs", pairs)
        _set(self, "bad_tag", bad_tag)
        _set(self, "first", first)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Frame is read-only (cannot set {name!r})")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Frame:
            return NotImplemented
        return self.raw == other.raw and self.pairs == other.pairs and self.bad_tag == other.bad_tag

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"Frame({self.redacted()!r})"

    @property
    def msg_type(self) -> str:
        """MsgType (35), '' when missing."""
        return self.first.get(35) or ""

    def get(self, tag: int, default: str | None = None) -> str | None:
        """The first value of ``tag``."""
        return self.first.get(tag, default)

    def seq(self) -> int | None:
        """MsgSeqNum (34) as an int, None when missing or not a number."""
        value = self.first.get(34)
        return int(value) if value is not None and value.isdigit() else None

    def redacted(self) -> str:
        """The frame for a log line: secrets masked, SOH as ``|``."""
        return redact(self.raw).decode("ascii", "replace")


class Framer:
    """Cuts a byte stream into checksum-verified frames; garbage and bad frames are dropped.

    ``feed(data)`` returns the frames completed by ``data``; ``garbled`` counts the frames
    dropped (bad BodyLength, bad CheckSum, not starting with ``8=FIX``).
    """

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self._buf = bytearray()
        self.garbled = 0
        self._max = max_frame

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return every complete good frame, in order."""
        frames: list[Frame] = []
        if not self._buf:
            # the common case: nothing held back and ``data`` starts with whole good frames (one
            # read, one ExecutionReport): cut them from ``data`` itself; at the first byte this
            # cannot vouch for, the rest goes through the buffer below (the same frames either way)
            start = self._whole_frames(data, frames)
            if start == len(data):
                return frames
            data = data[start:]
        self._buf += data
        while True:
            frame = self._next()
            if frame is None:
                return frames
            if frame is not _SKIP:
                frames.append(frame)

    def _whole_frames(self, data: bytes, frames: list[Frame]) -> int:
        """Append the good frames ``data`` starts with; return where the first one it cannot
        take whole begins (``len(data)`` when it took everything)."""
        start, end, find, size = 0, len(data), data.find, self._max
        while start < end:
            if not data.startswith(b"8=FIX", start):
                return start
            first = find(SOH, start)
            second_end = find(SOH, first + 1)
            if first < 0 or second_end < 0 or not data.startswith(b"9=", first + 1):
                return start
            length = data[first + 3: second_end]
            if not length.isdigit() or int(length) > size:
                return start
            end_of_body = second_end + 1 + int(length)
            trailer = data[end_of_body: end_of_body + 7]
            if (len(trailer) < 7 or not trailer.startswith(b"10=") or trailer[6] != 1 or not trailer[3:6].isdigit()
                    or checksum(memoryview(data)[start:end_of_body]) != int(trailer[3:6])):
                return start
            frames.append(_split(data[start: end_of_body + 7]))
            start = end_of_body + 7
        return start

    def _next(self):
        buf = self._buf
        m = _START.search(buf)
        if m is None:
            keep = max(0, len(buf) - 4)  # a partial "8=FI" may start at the end
            if keep:
                del buf[:keep]
            return None
        if m.start():
            self.garbled += 1
            del buf[: m.start()]
        first = buf.find(SOH)
        if first < 0:
            return None
        # 9=<len> must be the second field
        second_end = buf.find(SOH, first + 1)
        if second_end < 0:
            return None if len(buf) < 64 else self._drop()
        second = bytes(buf[first + 1: second_end])
        if not second.startswith(b"9=") or not second[2:].isdigit():
            return self._drop()
        body_len = int(second[2:])
        body_start = second_end + 1
        end_of_body = body_start + body_len
        if body_len > self._max:
            return self._drop()
        # trailer "10=xxx\x01" is 7 bytes
        if len(buf) < end_of_body + 7:
            # a following frame that starts early means this one's length is wrong
            nxt = buf.find(b"\x018=FIX", body_start)
            if nxt >= 0 and nxt + 1 < end_of_body:
                return self._drop()
            return None
        trailer = bytes(buf[end_of_body: end_of_body + 7])
        if not (trailer.startswith(b"10=") and trailer.endswith(SOH) and trailer[3:6].isdigit()):
            return self._drop()
        if checksum(buf[:end_of_body]) != int(trailer[3:6]):
            return self._drop()
        raw = bytes(buf[: end_of_body + 7])
        del buf[: end_of_body + 7]
        return _split(raw)

    def _drop(self):
        """Drop the bad frame's start so the search resumes at the next ``8=FIX``."""
        self.garbled += 1
        del self._buf[:2]
        return _SKIP


_SKIP = object()


#: a frame whose every field is ``<digits>=<value><SOH>``
_WELL_FORMED = re.compile(r"(?:[0-9]+=[^\x01]*\x01)*")
#: one field of such a frame (each match starts where the one before ended)
_PAIR = re.compile(r"([0-9]+)=([^\x01]*)\x01")


#: tag text -> number for the standard tags (``int()`` per field costs more than the lookup)
_TAG_NUMBERS = {str(tag): tag for tag in range(1, 1000)}


#: every byte but "=" and SOH: ``raw.translate(None, _NOT_SEPARATORS)`` keeps a frame's separators only
_NOT_SEPARATORS = bytes(b for b in range(256) if b not in b"=\x01")


def _split(raw: bytes) -> Frame:
    """The frame of ``raw``: its ``(tag, value)`` pairs and first values (``_split_general``'s answer).

    The common frame (every field ``<tag>=<value><SOH>`` with a standard tag 1..999 and no "=" in
    a value) is recognised by its separators alone: with every other byte deleted in C they read
    ``=<SOH>`` once per field, so two C-level splits cut the fields and the tag table vouches
    for every tag (no regex match over the whole frame, no count per separator). Anything else
    goes through ``_split_general`` (tests/fix/test_hot_path.py holds the two equal)."""
    seps = raw.translate(None, _NOT_SEPARATORS)
    if raw[-1:] == SOH and seps == b"=\x01" * (len(seps) >> 1):
        text = raw.decode("latin-1")
        flat = text.replace("\x01", "=").split("=")
        tags = list(map(_TAG_NUMBERS.get, flat[0:-1:2]))
        if None not in tags:  # every tag a standard number (no empty, signed, padded or user-defined one)
            pairs: tuple[tuple[int, str], ...] = tuple(zip(tags, flat[1::2], strict=True))  # type: ignore[arg-type]
            return Frame(raw, pairs, None, _first_values(pairs))
    return _split_general(raw)


def _first_values(pairs: tuple[tuple[int, str], ...]) -> dict[int, str]:
    """Each tag's first value in ``pairs`` (a repeated tag keeps its first, as ``Frame.get`` reads)."""
    first = dict(pairs)  # one C-level build; it keeps the last value of a repeated tag, so then:
    if len(first) != len(pairs):
        first = {}
        for tag, value in pairs:
            if tag not in first:
                first[tag] = value
    return first


def _split_general(raw: bytes) -> Frame:
    """Any frame: well-formed ones by regex, others field by field (naming the first bad tag)."""
    text = raw.decode("latin-1")  # one byte, one character: values read as before, in one call
    if _WELL_FORMED.fullmatch(text) is not None:  # every field int=value: the common case
        if text.count("=") == text.count("\x01"):
            # one "=" per field (none in a value): the fields alternate tag, value once every SOH
            # is an "=", so two C-level splits cut them all (no per-field Python step)
            flat = text.replace("\x01", "=").split("=")
            tags: list[int | None] = list(map(_TAG_NUMBERS.get, flat[0:-1:2]))
            if None in tags:  # a tag past the table (user-defined, 5000+)
                tags = [int(tag) for tag in flat[0:-1:2]]
            pairs: tuple[tuple[int, str], ...] = tuple(zip(tags, flat[1::2], strict=True))  # type: ignore[arg-type]
        else:
            number = _TAG_NUMBERS.get
            pairs = tuple([(number(tag) or int(tag), value) for tag, value in _PAIR.findall(text)])
        return Frame(raw, pairs, None, _first_values(pairs))
    pairs_ = []
    bad: str | None = None
    for item in raw[:-1].split(SOH):
        raw_tag, sep, raw_value = item.partition(b"=")
        if not sep or not (raw_tag.isdigit() or (raw_tag.startswith(b"-") and raw_tag[1:].isdigit())):
            bad = bad or raw_tag.decode("ascii", "replace")
            continue
        pairs_.append((int(raw_tag), raw_value.decode("latin-1")))
    return Frame(raw, tuple(pairs_), bad)


def is_header_tag(tag: int) -> bool:
    """True for the standard header tags of FIX 4.2/4.4 (order checks, SessionRejectReason 14)."""
    return tag in _HEADER_TAGS
