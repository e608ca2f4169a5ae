"""Tests for actors.audit.log: the hash-chained JSONL audit log and its verifier."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.audit.log import GENESIS_HASH, HEAD_SIZE, AuditError, AuditLog, verify
from protocols import OrderStatus


class StepClock:
    """Deterministic wall clock: each now() is 1 ms after the previous one."""

    def __init__(self) -> None:
        self.t = datetime(2024, 1, 8, tzinfo=UTC)

    def now(self) -> datetime:
        self.t += timedelta(milliseconds=1)
        return self.t


def make_log(path: Path, n: int, **kw) -> None:
    with AuditLog(path, clock=StepClock(), **kw) as log:
        for i in range(n):
            log.append("transition", {"client_order_id": f"c-{i}", "to": "ACCEPTED", "i": i})


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def kinds(result) -> list[tuple[int, str]]:
    return [(p.line_no, p.kind) for p in result.problems]


# ---------------------------------------------------------------------------
# format
# ---------------------------------------------------------------------------


def test_clean_log_verifies_and_matches_the_documented_format(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    res = verify(path)
    assert res.ok and res.lines == 5 and res.last_seq == 5 and res.problems == () and res.warnings == ()
    assert res.head_seq == 5
    prev = GENESIS_HASH
    for i, raw in enumerate(lines_of(path), start=1):
        assert raw.endswith(b"\n")
        obj = json.loads(raw)
        assert obj["seq"] == i and obj["prev"] == prev and obj["kind"] == "transition"
        assert obj["ts"].endswith("Z") and datetime.fromisoformat(obj["ts"].replace("Z", "+00:00"))
        # an independent recomputation of the documented hash rule
        rest = {k: v for k, v in obj.items() if k != "hash"}
        canon = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        assert obj["hash"] == hashlib.sha256(canon.encode()).hexdigest()
        prev = obj["hash"]
    assert res.last_hash == prev


def test_values_are_serialised_and_non_ascii_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("fill", {"qty": Decimal("0.00100"), "status": OrderStatus.FILLED,
                            "ts": datetime(2024, 1, 1, tzinfo=UTC), "note": "é", 3: "int key"})
    raw = path.read_bytes()
    assert raw.isascii()
    data = json.loads(raw)["data"]
    assert data == {"qty": "0.00100", "status": "FILLED", "ts": "2024-01-01T00:00:00+00:00", "note": "é",
                    "3": "int key"}
    assert verify(path).ok


@pytest.mark.parametrize("data", [{"x": float("nan")}, {"x": object()}, {"x": b"bytes"}, ["not", "a", "mapping"]])
def test_bad_data_is_refused_and_consumes_no_seq(tmp_path: Path, data: object) -> None:
    with AuditLog(tmp_path / "a.jsonl") as log:
        log.append("ok", {})
        with pytest.raises((ValueError, TypeError)):
            log.append("bad", data)  # type: ignore[arg-type]
        with pytest.raises((ValueError, TypeError)):
            log.append_many([("ok", {}), ("bad", data)])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="kind"):
            log.append("", {})
        assert log.append("ok", {}) == 2
    assert verify(tmp_path / "a.jsonl").lines == 2


def test_append_many_returns_consecutive_seqs(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.jsonl") as log:
        assert log.append_many([("a", {}), ("b", {"x": 1})]) == [1, 2]
        assert log.append("c", {}) == 3
    assert verify(tmp_path / "a.jsonl").ok


# ---------------------------------------------------------------------------
# tamper detection
# ---------------------------------------------------------------------------


def test_edited_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b'"to":"ACCEPTED"', b'"to":"REJECTED"')
    write_lines(path, lines)
    res = verify(path)
    assert not res.ok
    assert kinds(res) == [(3, "edited")]
    assert "seq=3" in res.problems[0].message


def test_edited_and_rehashed_line_breaks_the_chain_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    lines = lines_of(path)
    obj = json.loads(lines[2])
    obj["data"]["to"] = "REJECTED"
    del obj["hash"]
    body = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    lines[2] = (body[:-1] + f',"hash":"{digest}"}}\n').encode()
    write_lines(path, lines)
    res = verify(path)
    assert kinds(res) == [(4, "broken_chain")]


def test_non_canonical_bytes_are_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("k", {"note": "é"})  # written as \u00e9
    write_lines(path, [lines_of(path)[0].replace(b"\\u00e9", b"\\u00E9")])  # same parsed content
    assert kinds(verify(path)) == [(1, "edited")]


def test_deleted_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    lines = lines_of(path)
    del lines[2]
    write_lines(path, lines)
    res = verify(path)
    assert kinds(res) == [(3, "broken_chain"), (3, "sequence")]
    assert "seq=4" in res.problems[1].message and "expected seq=3" in res.problems[1].message


def test_swapped_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(path, lines)
    res = verify(path)
    assert not res.ok
    assert {ln for ln, _ in kinds(res)} == {2, 3, 4}
    assert (2, "broken_chain") in kinds(res) and (2, "sequence") in kinds(res)
    assert (3, "broken_chain") in kinds(res)


def test_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    lines = lines_of(path)
    lines.insert(1, b"{not json\n")
    write_lines(path, lines)
    res = verify(path)
    assert (2, "malformed") in kinds(res)
    assert not res.ok


def test_truncated_tail_is_detected_by_the_head_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    write_lines(path, lines_of(path)[:3])
    res = verify(path)
    assert kinds(res) == [(4, "truncated")]
    assert "seq=5" in res.problems[0].message and "2 line(s) missing" in res.problems[0].message
    # documented limitation: without the anchor a shorter chain is still a valid chain
    os.remove(f"{path}.head")
    assert verify(path).ok


def test_rewritten_log_is_detected_by_the_head_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    head = Path(f"{path}.head").read_bytes()
    os.remove(path)
    os.remove(f"{path}.head")
    with AuditLog(path) as log:  # a forger rebuilds a valid chain with other content
        for i in range(3):
            log.append("transition", {"forged": i})
    Path(f"{path}.head").write_bytes(head)
    assert kinds(verify(path)) == [(3, "edited")]


def test_missing_log_with_anchor_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 2)
    os.remove(path)
    res = verify(path)
    assert not res.ok and res.problems[0].kind == "truncated"
    assert not verify(tmp_path / "never.jsonl").ok


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_detected(offset: int, byte: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "audit.jsonl"
        make_log(path, 4)
        raw = bytearray(path.read_bytes())
        i = offset % len(raw)
        if raw[i] == byte:
            byte = (byte + 1) % 256
        raw[i] = byte
        path.write_bytes(bytes(raw))
        assert not verify(path).ok


# ---------------------------------------------------------------------------
# torn last line and reopen
# ---------------------------------------------------------------------------


def test_torn_last_line_is_a_warning_then_moved_aside_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    fragment = b'{"data":{"client_order_id":"c-3","to":"FIL'
    with open(path, "ab") as fh:  # a crash in the middle of writing line 4
        fh.write(fragment)
    res = verify(path)
    assert res.ok and res.lines == 3
    assert [(w.line_no, w.kind) for w in res.warnings] == [(4, "truncated")]

    log = AuditLog(path, clock=StepClock())
    assert log.seq == 3 and log.torn_bytes_moved == len(fragment)
    assert Path(f"{path}.torn").read_bytes() == fragment + b"\n"
    assert log.append("transition", {"after": "crash"}) == 4
    log.close()
    res = verify(path)
    assert res.ok and res.lines == 4 and res.last_seq == 4
    assert [w.kind for w in res.warnings] == ["truncated"] and ".torn" in res.warnings[0].message
    assert stat.S_IMODE(os.stat(f"{path}.torn").st_mode) == 0o600


def test_a_line_without_newline_that_is_not_last_cannot_exist_but_a_bad_middle_line_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    lines = lines_of(path)
    lines[1] = lines[1][: len(lines[1]) // 2] + b"\n"  # a torn line followed by more lines
    write_lines(path, lines)
    res = verify(path)
    assert not res.ok and (2, "malformed") in kinds(res)


def test_seq_and_chain_continue_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    with AuditLog(path, clock=StepClock()) as log:
        assert log.seq == 3
        assert log.append("transition", {"x": 1}) == 4
    objs = [json.loads(raw) for raw in lines_of(path)]
    assert [o["seq"] for o in objs] == [1, 2, 3, 4]
    assert objs[3]["prev"] == objs[2]["hash"]
    assert verify(path).ok


def test_reopen_refuses_a_corrupt_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b"ACCEPTED", b"REJECTED")
    write_lines(path, lines)
    with pytest.raises(AuditError, match="corrupt"):
        AuditLog(path)


def test_reopen_refuses_a_log_shorter_than_its_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    write_lines(path, lines_of(path)[:2])
    with pytest.raises(AuditError, match="missing"):
        AuditLog(path)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path), pytest.raises(AuditError, match="another writer"):
        AuditLog(path)
    AuditLog(path).close()  # the lock is released on close


# ---------------------------------------------------------------------------
# fsync policies, anchor, permissions
# ---------------------------------------------------------------------------


def test_always_writes_each_append_immediately(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, fsync="always")
    log.append("k", {})
    assert len(lines_of(path)) == 1 and log.pending == 0
    log.close()


@pytest.mark.parametrize("policy", ["batch", "never"])
def test_batch_and_never_write_on_flush(tmp_path: Path, policy: str) -> None:
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, fsync=policy)  # type: ignore[arg-type]
    log.append("k", {})
    log.append("k", {})
    assert path.read_bytes() == b"" and log.pending == 2
    log.flush()
    assert len(lines_of(path)) == 2 and log.pending == 0
    head = Path(f"{path}.head").read_bytes()
    assert len(head) == HEAD_SIZE and json.loads(head)["seq"] == 2
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditError, match="closed"):
        log.append("k", {})


def test_bad_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        AuditLog(tmp_path / "a.jsonl", fsync="sometimes")  # type: ignore[arg-type]


def test_files_are_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "logs" / "audit.jsonl"
        make_log(path, 2)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(f"{path}.head").st_mode) == 0o600
    finally:
        os.umask(old)


def test_flush_failure_keeps_lines_pending_and_leaves_no_partial_line(tmp_path: Path, monkeypatch) -> None:
    import actors.audit.log as audit_mod

    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.append("k", {"n": 1})
    log.flush()
    log.append("k", {"n": 2})
    log.append("k", {"n": 3})
    real_write = os.write
    calls = {"n": 0}

    def half_then_fail(fd: int, data) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:10]))  # a partial write...
        raise OSError(28, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(audit_mod.os, "write", half_then_fail)
    with pytest.raises(AuditError, match="kept pending"):
        log.flush()
    monkeypatch.setattr(audit_mod.os, "write", real_write)
    assert len(lines_of(path)) == 1 and path.read_bytes().endswith(b"\n")  # cut back, no torn bytes
    assert log.pending == 2
    log.close()
    res = verify(path)
    assert res.ok and res.lines == 3
