"""The event bus's room: sequence-stamped fan-out to subscribers, and the alert rules over finished orders."""
