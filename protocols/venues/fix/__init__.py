"""A FIX 4.2 / 4.4 initiator venue: the simplefix codec plus the project's own session layer.

- ``_codec``: framing with BodyLength / CheckSum checks, secret masking (553, 554).
- ``_store``: per-session sequence numbers on disk.
- ``_session``: the session rules as a pure state machine (fake-clock testable).
- ``_dictionary``: QuickFIX-format data dictionaries: field validation of received messages.
- ``_driver``: the socket thread around it (TLS, reconnect with backoff, Logout at stop).
- ``_venue``: :class:`FixVenue`, the ``BrokerAdapter`` (NewOrderSingle, ExecutionReport,
  OrderCancelRequest / Reject, OrderStatusRequest).
- ``_peer``: the QuickFIX example acceptors from Debian, for trials and tests.

``build_fix_venue(settings)`` makes the adapter from ``[venues.fix]`` (README "A FIX venue").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._dictionary import DataDictionary, DictionaryError
from ._driver import Backoff, FixConnection, tcp_connect
from ._session import FixSession, SessionConfig
from ._store import SeqStore
from ._venue import FixVenue, FixVenueConfig


def venue_config(settings: Any) -> FixVenueConfig:
    """The :class:`FixVenueConfig` of ``settings.venues.fix`` (store under ``state_dir/fix`` by
    default; no inbox when the journal is off).

    Raises ``ValueError`` when the section is not set."""
    fix = settings.venues.fix
    if fix is None:
        raise ValueError("[venues.fix] is not set: the FIX venue needs host, port, sender_comp_id and target_comp_id")
    store = Path(fix.store_dir) if fix.store_dir is not None else Path(settings.state_dir) / "fix"
    secret = lambda value: value.get_secret_value() if value is not None else None  # noqa: E731
    return FixVenueConfig(
        host=fix.host, port=fix.port, begin_string=fix.begin_string, sender_comp_id=fix.sender_comp_id,
        target_comp_id=fix.target_comp_id, store_dir=store, heartbeat_s=fix.heartbeat_s,
        reset_on_logon=fix.reset_on_logon, username=secret(fix.username), password=secret(fix.password),
        symbols=dict(fix.symbols), reconnect_initial_s=fix.reconnect_initial_s, reconnect_max_s=fix.reconnect_max_s,
        request_timeout_s=fix.request_timeout_s, logon_wait_s=fix.logon_wait_s,
        order_status_request=fix.order_status_request, tls=fix.tls, tls_ca_file=fix.tls_ca_file,
        tls_server_name=fix.tls_server_name, store_fsync=fix.store_fsync, account=fix.account,
        max_finished_orders=fix.max_finished_orders,
        # without a journal a restart rebuilds no orders: nothing a replayed report could settle
        inbox_keep=fix.inbox_keep if settings.journal.enabled else 0,
        data_dictionary=fix.data_dictionary, validate_user_defined_fields=fix.validate_user_defined_fields,
        caller_reads=fix.caller_reads)


def live_routing(settings: Any) -> dict:
    """The ``routing`` section that sends mode ``live`` to ``fix`` (and unblocks it), for
    ``load_settings(routing=...)``: what ``replay --venue fix`` runs with. Raises ``ValueError``
    when ``[venues.fix]`` is not set."""
    if settings.venues.fix is None:
        raise ValueError("--venue fix needs a [venues.fix] section (host, port, sender_comp_id, target_comp_id), "
                         "e.g. FLOWROUTE_VENUES__FIX__PORT=… in the environment (README \"A FIX venue\")")
    policy = dict(settings.routing.policy)
    policy["live"] = "fix"
    return {"policy": policy, "blocked_modes": [m for m in settings.routing.blocked_modes if m != "live"]}


def build_fix_venue(settings: Any, *, connector=None, adapter_id: str = "fix") -> FixVenue:
    """The ``fix`` adapter for ``settings`` (see :func:`venue_config`); ``connector`` for tests."""
    return FixVenue(adapter_id, venue_config(settings), connector=connector)


__all__ = ["Backoff", "DataDictionary", "DictionaryError", "FixConnection", "FixSession", "FixVenue", "FixVenueConfig", "SeqStore", "SessionConfig",
           "build_fix_venue", "live_routing", "tcp_connect", "venue_config"]
