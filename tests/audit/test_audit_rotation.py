"""Rotation of the live audit log (``AuditLog.rotate``: the ledger's periodic retention run).

Before, the run moved the old lines with ``archive_audit`` inside one ledger message: the whole
live file read, compressed and rewritten, its cost growing with the log. Now the live file, once
its first line is past the keep time, becomes a segment by a hard link and an empty file renamed
over it: the lines are never copied, the chain continues across the files and ``verify`` checks
it whole; a SIGKILL in the middle (a real subprocess) leaves a state that verifies and that the
next open, or the next ``archive_audit`` at start, completes. The segment is then compressed on a
thread of its own while the writer goes on (before: only at the next start), and a SIGKILL in the
middle of that leaves the plain segment or the whole compressed one, which ``verify`` and
``read_records`` read alike.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import actors.audit.log as audit
from actors.audit.log import AuditLog, archive_audit, audit_segments, read_records, verify

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


class StepClock:
    """``now()`` returns the time the test sets: the audit log stamps each line with it."""

    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


def write(log: AuditLog, clock: StepClock, days: list[int], start: int = 0) -> None:
    for i, day in enumerate(days, start):
        clock.t = T0 + timedelta(days=day)
        log.append("transition", {"client_order_id": f"o-{i}", "day": day})
    log.flush()


def test_rotation_moves_the_live_file_whole_without_copying_and_the_chain_continues(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    clock = StepClock()
    log = AuditLog(path, clock=clock, compress_rotated=False)  # the plain segment stays until the next start
    write(log, clock, [0, 10, 20])
    assert log.rotate(T0).segment is None  # its first line is not past the keep time: nothing moves
    assert audit_segments(path) == []
    inode = path.stat().st_ino
    res = log.rotate(T0 + timedelta(days=5))
    assert (res.lines, res.first_seq, res.last_seq) == (3, 1, 3)
    assert res.segment == tmp_path / "archive" / "audit.jsonl.000000000001-000000000003.jsonl"
    assert res.segment.stat().st_ino == inode  # the live file itself, not a copy of its lines
    assert path.stat().st_size == 0 and path.stat().st_ino != inode
    write(log, clock, [30, 31], start=3)  # the writer goes on: the chain continues from the segment
    assert log.rotate(T0 + timedelta(days=5)).segment is None  # the new first line is younger
    log.close()
    lines = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [x["seq"] for x in lines] == [4, 5]
    assert lines[0]["prev"] == json.loads(res.segment.read_bytes().splitlines()[-1])["hash"]
    result = verify(path)
    assert result.ok and result.lines == 5 and result.last_seq == 5 and not result.warnings, result
    assert [r.data["day"] for r in read_records(path)] == [0, 10, 20, 30, 31]
    # a reopened writer continues from the live log; one whose live log is empty, from the segment
    with AuditLog(path, clock=clock) as again:
        assert again.seq == 5
    # the next archive_audit (at start) compresses the rotated segment into the archived form
    archive_audit(path, before=T0)
    assert [s.name for s, _, _ in audit_segments(path)] == ["audit.jsonl.000000000001-000000000003.jsonl.gz"]
    anchor = json.loads(gzip.decompress(audit_segments(path)[0][0].read_bytes()).splitlines()[-1])["anchor"]
    assert anchor == {"hash": lines[0]["prev"], "lines": 3, "seq": 3}
    assert verify(path).ok and [r.seq for r in read_records(path)] == [1, 2, 3, 4, 5]


def test_a_rotation_of_everything_leaves_an_empty_live_log_that_verifies_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    clock = StepClock()
    log = AuditLog(path, clock=clock)
    write(log, clock, [0, 1])
    log.rotate(T0 + timedelta(days=400))
    log.close()
    assert log.wait_compressed(30)
    result = verify(path)
    assert result.ok and result.lines == 2 and result.last_seq == 2 and result.head_seq == 2, result
    with AuditLog(path, clock=clock) as again:  # chains from the rotated segment's last line
        assert again.seq == 2
        write(again, clock, [2], start=2)
    assert verify(path).ok and verify(path).lines == 3


def test_a_cut_segment_end_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    clock = StepClock()
    log = AuditLog(path, clock=clock, compress_rotated=False)
    write(log, clock, [0, 1, 2])
    segment = log.rotate(T0 + timedelta(days=400)).segment
    write(log, clock, [3], start=3)
    log.close()
    assert segment is not None
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:2]))  # its last line cut
    result = verify(path)
    assert not result.ok and {p.kind for p in result.problems} >= {"edited", "broken_chain"}, result


CHILD = """
import os, signal, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
sys.path.insert(0, {root!r})
import actors.audit.log as audit

calls = [0]
real = {target}

def die(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {n}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

class Clock:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    def now(self):
        return self.t

clock = Clock()
log = audit.AuditLog({path!r}, clock=clock)
for i in range(3):
    clock.t += timedelta(days=1)
    log.append("transition", {{"client_order_id": f"o-{{i}}"}})
log.flush()
{target} = die  # SIGKILL at the n-th call of it
log.rotate(clock.t + timedelta(days=1))
log.wait_compressed()
sys.exit(3)  # not reached
"""


def run_child(path: Path, target: str, n: int = 1) -> None:
    """A real subprocess writes three lines, rotates (compressing in the background) and is
    SIGKILLed at the ``n``-th call of ``target`` (see :data:`CHILD`)."""
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path), target=target, n=n)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("then", ["reopen", "archive_at_start"])
def test_a_sigkill_mid_rotation_leaves_a_verifiable_log_that_the_next_start_completes(tmp_path: Path, then: str) -> None:
    """Killed after the hard link, before the empty live log is in place: the live log and the
    segment are one file. verify accepts it (a warning), and the next open (or archive_audit, which
    a start runs first) puts the empty live log in place, so no line is ever written into the segment."""
    path = tmp_path / "audit.jsonl"
    run_child(path, "audit.replace_file")
    (segment, first, last), = audit_segments(path)
    assert (first, last) == (1, 3) and os.path.samestat(segment.stat(), path.stat())
    result = verify(path)
    assert result.ok and result.lines == 3 and result.last_seq == 3, result
    assert any("archived line(s) are still at the start" in w.message for w in result.warnings), result
    if then == "archive_at_start":
        archive_audit(path, before=T0)
        assert path.stat().st_size == 0
    clock = StepClock()
    clock.t = T0 + timedelta(days=10)
    with AuditLog(path, clock=clock) as log:
        assert log.seq == 3
        log.append("transition", {"client_order_id": "after"})
    assert path.stat().st_nlink == 1 and [json.loads(x)["seq"] for x in path.read_bytes().splitlines()] == [4]
    result = verify(path)
    assert result.ok and result.lines == 4 and not result.warnings, result
    assert [r.seq for r in read_records(path)] == [1, 2, 3, 4]


def test_a_sigkill_before_the_link_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run_child(path, "os.link")
    assert audit_segments(path) == [] and len(path.read_bytes().splitlines()) == 3
    result = verify(path)
    assert result.ok and result.lines == 3 and not result.warnings, result


def test_an_archive_on_another_file_system_falls_back_to_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No hard link reaches another file system (EXDEV): the lines past the keep time are copied
    into a compressed segment as at start (archive_audit), and the writer goes on."""
    import errno

    import actors.audit.log as audit

    def cross_device(src, dst) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(audit.os, "link", cross_device)
    path = tmp_path / "audit.jsonl"
    clock = StepClock()
    log = AuditLog(path, clock=clock)
    write(log, clock, [0, 10, 20])
    res = log.rotate(T0 + timedelta(days=15))
    assert (res.lines, res.first_seq, res.last_seq) == (2, 1, 2)
    assert res.segment is not None and res.segment.name.endswith(".jsonl.gz")
    write(log, clock, [30], start=3)
    log.close()
    result = verify(path)
    assert result.ok and result.lines == 4, result
    assert [r.data["day"] for r in read_records(path)] == [0, 10, 20, 30]


def test_a_rotated_segment_is_compressed_off_the_writers_thread_while_it_goes_on(tmp_path: Path) -> None:
    """The rotation returns with the plain segment in place; a thread of its own compresses it into
    the archived form (its anchor line added) while the writer appends. Before, it stayed plain
    until the next start's ``archive_audit``."""
    path = tmp_path / "audit.jsonl"
    clock = StepClock()
    log = AuditLog(path, clock=clock)
    write(log, clock, [0, 10, 20])
    inode = path.stat().st_ino
    with audit._COMPRESSING:  # the compressor waits for this; the rotation and the writer do not
        res = log.rotate(T0 + timedelta(days=5))
        assert res.segment is not None and res.segment.stat().st_ino == inode
        write(log, clock, [30], start=3)
        assert not log.wait_compressed(0.05)
    assert log.wait_compressed(30)
    (segment, first, last), = audit_segments(path)
    assert segment.name == "audit.jsonl.000000000001-000000000003.jsonl.gz" and (first, last) == (1, 3)
    assert not res.segment.exists() and not list(tmp_path.glob("archive/*.tmp"))
    lines = gzip.decompress(segment.read_bytes()).splitlines()
    assert [json.loads(x)["seq"] for x in lines[:-1]] == [1, 2, 3]
    assert json.loads(lines[-1])["anchor"] == {"hash": json.loads(lines[2])["hash"], "lines": 3, "seq": 3}
    log.close()
    result = verify(path)
    assert result.ok and result.lines == 4 and not result.warnings, result
    assert [r.data["day"] for r in read_records(path)] == [0, 10, 20, 30]


def test_a_reader_that_listed_a_plain_segment_compressed_meanwhile_reads_the_compressed_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """verify and read_records list the segments, then read them: a plain one compressed in between
    (the compressor runs while they read) is read in its compressed form, not reported missing."""
    path = tmp_path / "audit.jsonl"
    clock = StepClock()
    log = AuditLog(path, clock=clock, compress_rotated=False)
    write(log, clock, [0, 1])
    log.rotate(T0 + timedelta(days=5))
    write(log, clock, [6], start=2)
    log.close()
    listed = audit_segments(path)
    assert [s.name[-6:] for s, _, _ in listed] == [".jsonl"]
    archive_audit(path, before=T0)  # compresses it: the plain file is gone
    assert not listed[0][0].exists()
    monkeypatch.setattr(audit, "audit_segments", lambda *a, **k: listed)  # what the reader listed before
    result = verify(path)
    assert result.ok and result.lines == 3 and not result.warnings, result
    assert [r.data["day"] for r in read_records(path)] == [0, 1, 6]


@pytest.mark.parametrize("cut", ["before_rename", "before_unlink"])
def test_a_sigkill_mid_compression_leaves_the_plain_segment_or_the_whole_compressed_one(tmp_path: Path, cut: str) -> None:
    """A real subprocess SIGKILLed by its compressor thread: after the compressed file was written
    but before it was renamed into place (the plain segment is the segment; a ``.tmp`` is left), or
    after the rename but before the plain one was removed (both: the compressed one is read).
    Either way verify and read_records read every line, and the next start finishes the job."""
    path = tmp_path / "audit.jsonl"
    # os.replace: the 1st call is the rotation's (the empty live log), the 2nd the compressed segment's
    target, n = ("os.replace", 2) if cut == "before_rename" else ("Path.unlink", 1)
    run_child(path, target, n)
    archive = tmp_path / "archive"
    plain, gz = archive / "audit.jsonl.000000000001-000000000003.jsonl", archive / "audit.jsonl.000000000001-000000000003.jsonl.gz"
    assert plain.exists() and gz.exists() is (cut == "before_unlink")
    assert (archive / (gz.name + ".tmp")).exists() is (cut == "before_rename")
    assert [s for s, _, _ in audit_segments(path)] == [gz if cut == "before_unlink" else plain]
    result = verify(path)
    assert result.ok and result.lines == 3 and result.last_seq == 3 and not result.problems, result
    assert [r.data["client_order_id"] for r in read_records(path)] == ["o-0", "o-1", "o-2"]
    archive_audit(path, before=T0)  # the next start completes the compression
    assert sorted(p.name for p in archive.iterdir()) == [gz.name]
    result = verify(path)
    assert result.ok and result.lines == 3 and not result.warnings, result
