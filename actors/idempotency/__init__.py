"""The idempotency store's room: persist-before-submit claims with group commit, duplicate detection, TTL."""
