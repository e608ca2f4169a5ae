"""The adapter actor's room: one per venue; throttle, venue worker thread, timeouts, reconciliation."""
