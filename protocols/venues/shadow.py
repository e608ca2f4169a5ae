"""``ShadowVenue``: the paper fill model on a separate book and account (README.md, Write an adapter).

Shadow mode answers "what would have happened" without touching the primary venue's
positions: a ShadowVenue is a :class:`PaperVenue` with its own adapter id (``"shadow"``), its
own book (memory or its own SQLite file; a book file written by another adapter id is refused)
and its own account naming (``account_id_prefix="shadow:"``). Trade ids are ``shadow-<n>``.
"""

from __future__ import annotations

from pathlib import Path

from .paper.fill_model import FillModelConfig
from .paper.venue import PaperVenue


class ShadowVenue(PaperVenue):
    """``ShadowVenue(adapter_id="shadow", *, config=None, book_path=None, account_id_prefix="shadow:")``.

    Same model and API as :class:`PaperVenue`; only its identity, book and account differ.
    """

    def __init__(
        self,
        adapter_id: str = "shadow",
        *,
        config: FillModelConfig | None = None,
        book_path: Path | str | None = None,
        account_id_prefix: str = "shadow:",
    ) -> None:
        super().__init__(adapter_id, config=config, book_path=book_path, account_id_prefix=account_id_prefix)
