"""The sequence-number store: two slots in a mapped file, a torn write never loses the numbers
(protocols/venues/fix/_store.py), the older one-line format migrated at open, and the numbers a
process wrote before a SIGKILL found by the next open."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.venues.fix import _store
from protocols.venues.fix._store import SeqStore

SESSION = ("FIX.4.4", "CLIENT1", "EXEC")


def _path(tmp_path: Path) -> Path:
    return tmp_path / "FIX.4.4-CLIENT1-EXEC.seqnums"


def test_the_numbers_survive_a_reopen_across_many_writes(tmp_path: Path) -> None:
    store = SeqStore.open(tmp_path, *SESSION)
    for n in range(2, 40):
        store.set_sender(n)
        store.set_target(n + 100)
    store.close()
    store.set(999, 999)  # after close: nothing written (as before)
    again = SeqStore.open(tmp_path, *SESSION)
    assert (again.next_sender, again.next_target) == (39, 139)
    again.close()


def test_the_one_line_format_is_read_and_migrated_at_open(tmp_path: Path) -> None:
    _path(tmp_path).write_bytes(b"%020d %020d\n" % (41, 17))  # what the store wrote before the slotted file
    store = SeqStore.open(tmp_path, *SESSION)
    assert (store.next_sender, store.next_target) == (41, 17)
    assert _path(tmp_path).read_bytes().startswith(_store._MAGIC)  # migrated: now slotted
    store.set_sender(42)
    store.close()
    again = SeqStore.open(tmp_path, *SESSION)
    assert (again.next_sender, again.next_target) == (42, 17)
    again.close()
    assert [p.name for p in tmp_path.iterdir()] == [_path(tmp_path).name]  # no temporary file left


@pytest.mark.parametrize("content", [b"hello world\n", b"12 x\n", _store._MAGIC[:8] + b"short"])
def test_a_file_that_is_no_sequence_number_record_is_refused(tmp_path: Path, content: bytes) -> None:
    _path(tmp_path).write_bytes(content)
    with pytest.raises(ValueError, match="not a FIX sequence-number file"):
        SeqStore.open(tmp_path, *SESSION)
    assert _path(tmp_path).read_bytes() == content  # left as it was


def test_a_write_torn_at_any_byte_leaves_the_numbers_of_the_write_before(tmp_path: Path) -> None:
    """A process killed mid-write: the first k bytes of the new record are in the file, the rest
    is the slot's older record. Every such file opens with the old numbers or (whole) the new."""
    store = SeqStore.open(tmp_path, *SESSION)
    store.set(7, 3)
    store.set(8, 3)
    before = _path(tmp_path).read_bytes()
    store.set(9, 4)
    after = _path(tmp_path).read_bytes()
    store.close()
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    assert changed and max(changed) - min(changed) < _store._SLOT.size  # one slot written
    start, end = min(changed), max(changed) + 1
    for k in range(start, end + 1):
        _path(tmp_path).write_bytes(after[:k] + before[k:])
        torn = SeqStore.open(tmp_path, *SESSION)
        assert (torn.next_sender, torn.next_target) == ((9, 4) if k == end else (8, 3)), k
        torn.close()
    # both slots damaged: no numbers to trust, refused rather than restarted at 1
    damaged = bytearray(after)
    for at in _store._SLOT_AT:
        damaged[at + 10] ^= 0xFF
    _path(tmp_path).write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="neither slot"):
        SeqStore.open(tmp_path, *SESSION)


_WRITER = """
import sys
from protocols.venues.fix._store import SeqStore
store = SeqStore.open(sys.argv[1], "FIX.4.4", "CLIENT1", "EXEC")
n = 1
while True:
    n += 1
    store.set_sender(n)
    store.set_target(n)
    if n % 500 == 0:
        print(n, flush=True)
"""


def test_the_numbers_written_before_a_sigkill_are_read_by_the_next_open(tmp_path: Path) -> None:
    """A real process writes the numbers without end and is SIGKILLed mid-stream: the next open
    finds numbers at least as far as the last ones it reported, and whole (both equal)."""
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        reported = [int(child.stdout.readline()) for _ in range(20)]
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    store = SeqStore.open(tmp_path, *SESSION)
    assert store.next_sender >= reported[-1] and store.next_target in (store.next_sender, store.next_sender - 1)
    store.close()
