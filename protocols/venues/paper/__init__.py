"""The paper venue: a deterministic simulated venue over recorded data (venue, fill model, durable book)."""
