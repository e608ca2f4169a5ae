"""Prometheus metrics and loguru logging of one runtime."""
