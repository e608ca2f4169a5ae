"""Frozen values of the domain: intents, reports, fills, events, errors, enums and the order lifecycle table."""
