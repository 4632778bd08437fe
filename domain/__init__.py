"""Hookline's domain: aggregates, pure rules and the event-sourced application; no I/O of its own."""
