"""Real components to test and measure Hookline with, shared by tests/ and bench/: a `hookline serve`
subprocess (`server`), a receiver on loopback (`receiver`), PostgreSQL and Redis of one's own (`services`).

Kept beside tests/ and bench/ rather than shipped in the `hookline` package (as structlog ships
`structlog.testing`): Hookline is run, not imported, and these helpers assume the developer's machine
(PostgreSQL's trust user on 127.0.0.1, `redis-server` on the PATH).
"""
