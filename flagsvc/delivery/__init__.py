"""Change delivery: how a committed change reaches every SDK.

``wiring.start_delivery`` puts the pieces together for one process and hangs them on
the database's public commit hook (``Database.on_write_commit``):

- ``heads``: the audit head this process knows (own commits, broker), so an SDK poll
  answers 304 without a database round trip;
- ``broker``: "the head is now N", fanned out to this process's streams, and to the
  other instances through Redis pub/sub;
- ``snapshots``: an environment's snapshot built and encoded once per content version;
  ``store``: shared between instances through Redis; ``cache``: kept per process,
  compiled for the engine and compressed once;
- ``watch``: one SSE stream's logic; ``stream_slots``: the fair share of streams;
- ``spec1``: the same snapshot for SDKs that read only spec 1.

The package sits between the API (which serves it) and the services (whose audit
hook announces each commit); the services never import it. Redis connections and
their circuit are ``flagsvc.storage.redis``, shared with rate limits and revocations.
"""
