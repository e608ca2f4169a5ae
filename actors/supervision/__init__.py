"""The supervisor's room: it watches every child, restarts it with backoff, and reports health (docs/DESIGN.md "Failure handling")."""
