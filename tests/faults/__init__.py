"""Fault tests: real servers stopped, restarted and killed under load (``pytest -m faults``).

Private PostgreSQL (port 5433) and Redis (6390) servers are started for the session
(``servers.py``; under xdist the worker's number is added to each port, so two workers
never race for one) so the shared ones are never touched; service processes are real
gunicorn instances (``tests/live.py``). Without the PostgreSQL binaries or
``redis-server`` the tests skip with the reason, unless ``FLAGSVC_REQUIRE_SERVICES=1``.
"""
