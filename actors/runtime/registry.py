"""The adapter factory: ``register(adapter_id, builder)``, validated at start (README.md, Topology).

A builder is ``Callable[[Settings], BrokerAdapter]``. Adapter lifetime across restarts: the
runtime builds each adapter at start; every time the supervisor restarts the adapter's actor it
calls the builder again and runs the new generation on the *fresh* instance (with a fresh worker
thread), so a crashed generation's broken state (a wedged connection, a half-read socket) is
never reused; the old instance is retired (``release_hangs()``, then ``close()``). Whatever must
survive a restart lives outside the instance: the paper venue's durable book reopens its SQLite
file. An adapter whose state *is* the instance (an in-memory simulator) is registered with
``rebuild=False`` and kept for the runtime's life. Each generation calls ``start()`` (optional),
where a failure — or a builder that raises — is a start-up crash, restarted with backoff. The
runtime refuses to start when the routing policy names an adapter id nobody registered.

Example::

    >>> registry = AdapterRegistry()
    >>> registry.register("nop", lambda settings: DryRunVenue("nop"))
    >>> registry.ids()
    ('nop',)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocols import BrokerAdapter, adapter_capabilities
from protocols.venues import FILL_MODEL_VERSION, DryRunVenue, FaultInjectingAdapter, FaultPlan, FillModelConfig, PaperVenue, ShadowVenue
from protocols.venues.paper.pg_book import PgBook

Builder = Callable[[Any], BrokerAdapter]


class AdapterRegistry:
    """Builders of venue adapters by adapter id."""

    def __init__(self) -> None:
        self._builders: dict[str, Builder] = {}
        self._rebuild: dict[str, bool | Callable[[Any], bool]] = {}

    def register(self, adapter_id: str, builder: Builder, *, rebuild: bool | Callable[[Any], bool] = True) -> None:
        """Register ``builder`` for ``adapter_id`` (replaces an earlier one).

        ``rebuild`` (default True): build a fresh instance for every restart of the adapter's
        actor; False keeps the first instance for the runtime's life (its state is the instance);
        or a ``Callable[[Settings], bool]`` deciding per settings. Raises ``ValueError`` for an
        empty id or a non-callable builder."""
        if not adapter_id or not isinstance(adapter_id, str):
            raise ValueError("adapter_id must be a non-empty string")
        if not callable(builder):
            raise ValueError(f"builder for '{adapter_id}' must be callable")
        self._builders[adapter_id] = builder
        self._rebuild[adapter_id] = rebuild

    def rebuilds(self, adapter_id: str, settings: Any) -> bool:
        """Whether a restart of ``adapter_id`` gets a fresh instance (see :meth:`register`)."""
        rebuild = self._rebuild.get(adapter_id, True)
        return bool(rebuild(settings)) if callable(rebuild) else bool(rebuild)

    def wrap(self, adapter_id: str, wrapper: Callable[[BrokerAdapter], BrokerAdapter]) -> None:
        """Wrap the adapter built for ``adapter_id`` (e.g. with fault injection). Raises ``KeyError``."""
        inner = self._builders[adapter_id]
        self._builders[adapter_id] = lambda settings: wrapper(inner(settings))

    def ids(self) -> tuple[str, ...]:
        """Registered adapter ids, sorted."""
        return tuple(sorted(self._builders))

    def validate(self, policy: dict[str, str]) -> None:
        """Raise ``ValueError`` naming every mode whose adapter is not registered."""
        missing = sorted({f"{mode} -> {adapter}" for mode, adapter in policy.items() if adapter not in self._builders})
        if missing:
            raise ValueError(
                "routing.policy names adapters that are not registered: " + ", ".join(missing)
                + f" (registered: {', '.join(self.ids()) or 'none'})"
            )

    def build(self, adapter_id: str, settings: Any) -> BrokerAdapter:
        """Build the adapter for ``adapter_id`` (raises what the builder raises)."""
        adapter = self._builders[adapter_id](settings)
        if getattr(adapter, "adapter_id", None) != adapter_id:
            raise ValueError(f"builder for '{adapter_id}' returned an adapter with adapter_id {getattr(adapter, 'adapter_id', None)!r}")
        adapter_capabilities(adapter)  # a wrong declaration fails here, with the adapter's name
        return adapter


def default_registry(*, faults: FaultPlan | None = None, fault_adapters: tuple[str, ...] = ("paper",),
                     settings: Any = None) -> AdapterRegistry:
    """The embedded venues: ``paper``, ``shadow`` and ``dry_run`` (books under ``settings.state_dir``
    when the journal is durable; the paper book in the PostgreSQL journal's database, shared by every
    process, when ``journal.url`` is set and ``paper.shared_book`` is on), optionally wrapped in fault injection for ``fault_adapters``;
    plus ``fix`` (a FIX initiator, ``protocols.venues.fix``) when ``settings.venues.fix`` is set."""
    registry = AdapterRegistry()

    def book_path(settings: Any, name: str) -> Path | None:
        if not settings.journal.enabled:
            return None
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        return Path(settings.state_dir) / f"{name}_book.sqlite"

    def model(settings: Any) -> FillModelConfig:
        return FillModelConfig.from_settings(settings.paper)

    def durable(settings: Any) -> bool:  # an in-memory book is the instance itself: kept across restarts
        return bool(settings.journal.enabled)

    def shared_url(settings: Any) -> str | None:  # README "Scale-out": N processes, one paper book
        journal = settings.journal
        if journal.enabled and journal.url and getattr(settings.paper, "shared_book", True):
            return str(journal.url)
        return None

    def paper(settings: Any) -> PaperVenue:
        url = shared_url(settings)
        if url is not None:
            return PaperVenue("paper", config=model(settings),
                              book=PgBook(url, adapter_id="paper", fill_model_version=FILL_MODEL_VERSION))
        return PaperVenue("paper", config=model(settings), book_path=book_path(settings, "paper"))

    registry.register("paper", paper, rebuild=durable)
    registry.register("shadow", lambda s: ShadowVenue("shadow", config=model(s), book_path=book_path(s, "shadow")), rebuild=durable)
    registry.register("dry_run", lambda s: DryRunVenue("dry_run", config=model(s), book_path=book_path(s, "dry_run")),
                      rebuild=durable)
    venues = getattr(settings, "venues", None)
    if venues is not None and getattr(venues, "fix", None) is not None:
        from protocols.venues.fix import build_fix_venue

        registry.register("fix", build_fix_venue)
    if faults is not None:
        for adapter_id in fault_adapters:
            registry.wrap(adapter_id, _fault_injector(faults))
    return registry


def _fault_injector(faults: FaultPlan) -> Callable[[BrokerAdapter], BrokerAdapter]:
    """A wrapper injecting ``faults``; each adapter it wraps (a rebuilt one after a restart)
    continues the fault sequence (and counts) of the one it replaces."""
    last: list[FaultInjectingAdapter] = []

    def inject(adapter: BrokerAdapter) -> BrokerAdapter:
        wrapped = FaultInjectingAdapter(adapter, faults, continue_from=last[-1] if last else None)
        last[:] = [wrapped]
        return wrapped

    return inject
