"""The sequence store's inbox: the last N received application messages, kept across a restart."""

from __future__ import annotations

from protocols.venues.fix._store import SeqStore


def test_the_inbox_keeps_the_last_messages_across_a_reopen_and_drops_a_torn_line(tmp_path) -> None:
    store = SeqStore.open(tmp_path, "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=3)
    frames = [f"8=FIX.4.2\x0135=8\x0117=e{i}\x0110=000\x01".encode() for i in range(8)]
    for raw in frames:
        store.keep(raw)
    store.close()
    inbox = next(tmp_path.glob("*.inbox"))
    assert len(inbox.read_bytes().splitlines()) <= 6  # rewritten: never more than twice the kept count
    with inbox.open("ab") as f:
        f.write(b"38=0zz")  # a torn last write: not hex, ignored
    again = SeqStore.open(tmp_path, "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=3)
    assert again.kept() == frames[-3:] and again.keeps
    again.close()
    assert SeqStore.open(tmp_path, "FIX.4.2", "CLIENT1", "ORDERMATCH").kept() == []  # inbox off: nothing read


def test_the_inbox_is_kept_only_when_the_journal_is(tmp_path) -> None:
    """Without a journal a restart rebuilds no orders, so replayed reports could settle nothing
    (each would be an unmatched venue event): no inbox then."""
    from config import load_settings
    from protocols.venues.fix import venue_config

    fix = {"port": 9876, "sender_comp_id": "CLIENT1", "target_comp_id": "ORDERMATCH"}
    durable = load_settings("test", state_dir=tmp_path, journal={"enabled": True}, venues={"fix": fix})
    memory = load_settings("test", state_dir=tmp_path, journal={"enabled": False}, venues={"fix": fix})
    assert venue_config(durable).inbox_keep == 1_000 and venue_config(memory).inbox_keep == 0


def test_the_inbox_is_trimmed_through_a_kept_message_and_stays_trimmed_after_a_reopen(tmp_path) -> None:
    store = SeqStore.open(tmp_path, "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=10)
    for i in range(5):
        store.keep(f"8=FIX.4.2|34={i}|".encode())
    assert store.trim_inbox(b"not kept") == 0 and len(store.kept()) == 5  # an unknown mark drops nothing
    assert store.trim_inbox(b"8=FIX.4.2|34=2|") == 3
    assert store.kept() == [b"8=FIX.4.2|34=3|", b"8=FIX.4.2|34=4|"]
    store.keep(b"8=FIX.4.2|34=5|")
    store.close()
    again = SeqStore.open(tmp_path, "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=10)
    assert again.kept() == [b"8=FIX.4.2|34=3|", b"8=FIX.4.2|34=4|", b"8=FIX.4.2|34=5|"]
    assert again.trim_inbox(b"8=FIX.4.2|34=5|") == 3 and again.kept() == []
    again.close()
    assert SeqStore.open(tmp_path, "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=10).kept() == []


def test_whole_file_rewrites_survive_short_writes_and_fsync_the_directory(tmp_path, monkeypatch) -> None:
    """The numbers file's creation and the inbox's rewrite go through one helper
    (``protocols._files.replace_file``): every byte written even when ``os.write`` writes less than
    it is given (before: one ``os.write``, a short write left a short file), and with ``fsync=True``
    the directory fsynced after the rename (before: the rename itself could be lost to a power cut)."""
    import os

    frames = [f"8=FIX.4.2\x0135=8\x0117=e{i}\x0110=000\x01".encode() for i in range(4)]
    store = SeqStore.open(tmp_path / "a", "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=10)
    for raw in frames:
        store.keep(raw)
    store.close()
    real_write, real_fsync = os.write, os.fsync
    synced: list[str] = []

    def short_write(fd: int, data) -> int:  # what a file system may do: write fewer bytes than asked
        return real_write(fd, bytes(data[:5]))

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "write", short_write)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    fresh = SeqStore.open(tmp_path / "b", "FIX.4.2", "CLIENT1", "ORDERMATCH", fsync=True)  # creates the numbers file
    fresh.close()
    reopened = SeqStore.open(tmp_path / "a", "FIX.4.2", "CLIENT1", "ORDERMATCH", fsync=True, inbox=10)  # rewrites the inbox
    more = [f"8=FIX.4.2\x0135=8\x0117=m{i}\x0110=000\x01".encode() for i in range(2)]
    for raw in more:  # appended line by line: a short write must not tear a line either
        reopened.keep(raw)
    reopened.close()
    monkeypatch.undo()
    assert str(tmp_path / "b") in synced and str(tmp_path / "a") in synced, synced  # the directories, after the renames
    again = SeqStore.open(tmp_path / "b", "FIX.4.2", "CLIENT1", "ORDERMATCH")
    assert (again.next_sender, again.next_target) == (1, 1)
    again.close()
    assert SeqStore.open(tmp_path / "a", "FIX.4.2", "CLIENT1", "ORDERMATCH", inbox=10).kept() == frames + more
