"""A blind ``except Exception`` / ``except BaseException`` says why it must catch everything
(ruff's BLE001 is enforced in pyproject.toml; its ``noqa`` carries the reason on the line)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_NOQA = re.compile(r"#\s*noqa:\s*BLE001(?P<why>.*)$")


def test_every_blind_except_says_why() -> None:
    bare = []
    for folder in ("actors", "protocols", "config", "flowroute", "benchmarks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                m = _NOQA.search(line)
                if m is not None and len(m.group("why").strip(" -–:")) < 10:
                    bare.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert bare == [], bare
