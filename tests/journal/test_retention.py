"""Retention (seed 001: orders/fills 365 days, raw venue receipts 30 days, both settings): old audit lines
are archived as compressed JSONL segments and pruned without breaking the hash chain (each segment
ends with the anchor the next one starts from; verify checks across segments); terminal orders and
their fills past the retention leave the ledger journal for an archive."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors.audit.log import AuditError, AuditLog, archive_audit, audit_segments, read_records, verify

T0 = datetime(2025, 1, 1, tzinfo=UTC)




class StepClock:
    """``now()`` returns the time the test sets: the audit log stamps each line with it."""

    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


def build(path: Path, days: list[int]) -> StepClock:
    clock = StepClock()
    log = AuditLog(path, clock=clock)
    for i, day in enumerate(days):
        clock.t = T0 + timedelta(days=day)
        log.append("transition", {"client_order_id": f"o-{i}", "day": day})
        log.flush()
    log.close()
    return clock


def test_archive_moves_old_lines_into_a_segment_and_the_chain_verifies_across(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    build(path, [0, 10, 20, 400, 401])
    res = archive_audit(path, before=T0 + timedelta(days=365))
    assert (res.lines, res.first_seq, res.last_seq, res.pruned) == (3, 1, 3, 3)
    assert res.segment == tmp_path / "archive" / "audit.jsonl.000000000001-000000000003.jsonl.gz"
    seg_lines = gzip.decompress(res.segment.read_bytes()).splitlines()
    anchor = json.loads(seg_lines[-1])["anchor"]
    live = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [x["seq"] for x in live] == [4, 5]
    assert live[0]["prev"] == anchor["hash"] and anchor["seq"] == 3 and anchor["lines"] == 3
    result = verify(path)
    assert result.ok, result
    assert result.lines == 5 and result.last_seq == 5
    # the reader sees every line, archived ones first
    assert [r.data["day"] for r in read_records(path)] == [0, 10, 20, 400, 401]
    assert [r.seq for r in read_records(path, client_order_id="o-1")] == [2]
    # the writer continues the chain
    log = AuditLog(path, clock=StepClock())
    assert log.append("fill", {"client_order_id": "o-9"}) == 6
    log.close()
    assert verify(path).ok


def test_repeated_archives_chain_segment_to_segment_and_everything_may_be_archived(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    clock = build(path, [0, 100, 200, 300])
    assert archive_audit(path, before=T0 + timedelta(days=150)).lines == 2
    assert archive_audit(path, before=T0 + timedelta(days=150)).segment is None  # nothing new is old enough
    assert archive_audit(path, before=T0 + timedelta(days=1000)).lines == 2
    assert [(first, last) for _, first, last in audit_segments(path)] == [(1, 2), (3, 4)]
    assert path.read_bytes() == b""
    assert verify(path).ok
    log = AuditLog(path, clock=clock)  # an empty live log continues from the last segment's anchor
    assert log.append("transition", {"client_order_id": "n"}) == 5
    log.close()
    result = verify(path)
    assert result.ok and result.lines == 5


@pytest.mark.parametrize("damage", ["edit_segment", "drop_segment", "edit_anchor", "live_not_chained"])
def test_verify_detects_damage_across_segments(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "audit.jsonl"
    build(path, [0, 1, 2, 400, 401, 402])
    archive_audit(path, before=T0 + timedelta(days=2))       # seq 1-2
    archive_audit(path, before=T0 + timedelta(days=365))     # seq 3
    segs = [s for s, _, _ in audit_segments(path)]
    if damage == "edit_segment":
        body = gzip.decompress(segs[0].read_bytes()).replace(b'"day":1', b'"day":7')
        segs[0].write_bytes(gzip.compress(body))
    elif damage == "drop_segment":
        segs[0].unlink()
    elif damage == "edit_anchor":
        lines = gzip.decompress(segs[1].read_bytes()).splitlines()
        lines[-1] = lines[-1].replace(b'"lines":1', b'"lines":2')
        segs[1].write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    else:
        lines = path.read_bytes().splitlines()
        path.write_bytes(b"\n".join(lines[1:]) + b"\n")
    assert not verify(path).ok


def test_an_archive_interrupted_before_pruning_is_accepted_and_finished_next_time(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    build(path, [0, 1, 400])
    original = path.read_bytes()
    archive_audit(path, before=T0 + timedelta(days=365))
    path.write_bytes(original)  # as if the process died after the segment, before the live log was replaced
    result = verify(path)
    assert result.ok and any("interrupted" in w.message for w in result.warnings)
    res = archive_audit(path, before=T0 + timedelta(days=365))
    assert (res.segment, res.pruned) == (None, 2)
    assert [json.loads(x)["seq"] for x in path.read_bytes().splitlines()] == [3]
    assert verify(path).ok and not verify(path).warnings


def test_archive_refuses_while_a_writer_holds_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    build(path, [0, 400])
    log = AuditLog(path, clock=StepClock())
    try:
        with pytest.raises(AuditError, match="writer"):
            archive_audit(path, before=T0 + timedelta(days=365))
    finally:
        log.close()
    assert archive_audit(path, before=T0 + timedelta(days=365)).lines == 1
    assert archive_audit(tmp_path / "missing.jsonl", before=T0).segment is None


# --------------------------------------------------------------------------- in the runtime


def test_a_restart_past_the_retention_archives_terminal_orders_and_keeps_open_ones(make_runtime, settings_factory) -> None:
    from conftest import ctx, limit, market, quote, settle

    from actors import FakeClock
    from actors.audit.log import read_records
    from protocols import OrderStatus

    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, retention={"orders_days": 30})
    rt = make_runtime(settings)
    rt.on_market(quote())
    assert rt.submit(market("ret-done"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert rt.submit(limit("ret-open", price="39000.00"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    settle(rt)
    rt.stop()
    state = Path(settings.state_dir)
    # 31 days later (the runtime's clock says so): the filled order is past the 30-day retention
    later = FakeClock(wall_start=datetime.now(UTC) + timedelta(days=31))
    rt2 = make_runtime(settings, clock=later)
    settle(rt2)
    res = rt2.retention
    assert (res.orders, res.fills) == (1, 1) and res.events >= 2 and res.audit.lines > 0
    assert rt2.order("ret-done") is None                      # pruned from the journals: not restored
    assert rt2.order("ret-open").status is OrderStatus.ACCEPTED  # open: never pruned
    rows = [json.loads(x) for x in gzip.decompress(res.orders_file.read_bytes()).splitlines()]
    assert {r["client_order_id"] for r in rows} == {"ret-done"}
    assert {r["table"] for r in rows} == {"order_events", "fills"}
    assert [r["to_status"] for r in rows if r["table"] == "order_events"][-1] == "FILLED"
    # the audit trail of the pruned order is still readable, from its archived segment
    assert [r.event for r in rt2.history("ret-done")][-1] == "FILLED"
    rt2.cancel("ret-open").result(timeout=5)
    settle(rt2)
    rt2.stop()
    result = verify(state / "audit.jsonl")
    assert result.ok, result
    assert audit_segments(state / "audit.jsonl") and res.audit.segment.parent == state / "archive"
    assert [r.event for r in read_records(state / "audit.jsonl", client_order_id="ret-open")][-1] == "CANCELED"
    # the command line verifies across the segments too, and notices a damaged one
    import subprocess
    import sys

    run = Path(__file__).resolve().parents[2] / "run.py"
    ok = subprocess.run([sys.executable, str(run), "audit", "verify", str(state / "audit.jsonl")], capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    segment = res.audit.segment
    body = gzip.decompress(segment.read_bytes()).replace(b'"to":"FILLED"', b'"to":"CANCELED"', 1)
    segment.write_bytes(gzip.compress(body))
    bad = subprocess.run([sys.executable, str(run), "audit", "verify", str(state / "audit.jsonl")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and segment.name in bad.stdout, bad.stdout + bad.stderr


def test_venue_receipts_are_recorded_when_asked_and_kept_receipts_days(make_runtime, settings_factory) -> None:
    from conftest import ctx, market, quote, settle

    from actors import FakeClock
    from protocols import OrderStatus

    start = datetime.now(UTC)  # records are stamped with the wall clock; the runtimes' clocks say how much later it is
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"},
                                retention={"keep_receipts": True, "receipts_days": 30})
    state = Path(settings.state_dir)
    rt = make_runtime(settings, clock=FakeClock(wall_start=start))
    rt.on_market(quote())
    assert rt.submit(market("rc-1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    settle(rt)
    rt.stop()
    receipts = [json.loads(x) for x in (state / "receipts.jsonl").read_bytes().splitlines()]
    assert receipts and receipts[0]["state"]["client_order_id"] == "rc-1" and receipts[0]["adapter_id"] == "paper"
    stamped = datetime.fromisoformat(receipts[0]["ts"].replace("Z", "+00:00"))
    assert abs(stamped - start) < timedelta(minutes=5) and receipts[0]["state"]["status"] == "FILLED"
    # 29 days later nothing moves; 31 days later the receipts are archived and pruned (orders stay: 365 days)
    rt2 = make_runtime(settings, clock=FakeClock(wall_start=start + timedelta(days=29)))
    assert rt2.retention.receipts == 0
    rt2.stop()
    rt3 = make_runtime(settings, clock=FakeClock(wall_start=start + timedelta(days=31)))
    res = rt3.retention
    assert res.receipts == len(receipts) and res.orders == 0
    assert [json.loads(x) for x in gzip.decompress(res.receipts_file.read_bytes()).splitlines()] == receipts
    assert (state / "receipts.jsonl").read_bytes() == b""
    import sqlite3

    with sqlite3.connect(state / "ledger.sqlite") as db:  # the order itself is kept 365 days
        assert db.execute("SELECT COUNT(*) FROM fills WHERE client_order_id = 'rc-1'").fetchone() == (1,)


def test_receipts_are_off_by_default(make_runtime, settings_factory) -> None:
    from conftest import ctx, market, quote, settle

    settings = settings_factory(durable=True)
    rt = make_runtime(settings)
    rt.on_market(quote())
    rt.submit(market("rc-off"), ctx()).result(timeout=5)
    settle(rt)
    assert not (Path(settings.state_dir) / "receipts.jsonl").exists()
