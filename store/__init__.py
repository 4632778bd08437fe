"""Persistence adapters beyond the event store itself: projections (read models) and the log follower."""
