"""The circuit breaker's room: the actor per adapter and the pure state machine it owns (after resilience4j)."""
