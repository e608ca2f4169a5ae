"""The ``Runtime`` facade and its start-up: recovery from the journal, the adapter registry, the state-dir lock, broker-state sync."""
