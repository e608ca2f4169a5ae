"""A FIX 4.2 / 4.4 initiator venue (simplefix codec + the project's own session layer)."""
