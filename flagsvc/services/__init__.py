"""Use cases: load, apply the domain rules, save, and audit, in one transaction.

A lighter shape than ports-and-adapters: services take a SQLAlchemy ``Session``
(opened by the caller as one unit of work) and are tested against real databases.
They never import Flask; the API layer is the only HTTP-aware code.
"""
