"""Webhooks: notifications that lose nothing.

- ``outbox``: writes notifications in the transaction of the change that causes them;
- ``registry``: the webhooks themselves (admin-only, audited) and their delivery log;
- ``sender``: one signed HTTP attempt, behind the SSRF guard;
- ``worker``: claims due deliveries (``FOR UPDATE SKIP LOCKED``), sends, retries, gives up;
- ``notices``: events no change causes (stale flags, features safe to promise).
"""
