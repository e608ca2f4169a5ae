"""The hash-chained audit log, its segments, retention and archive."""
