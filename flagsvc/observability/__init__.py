"""Metrics and logs: what an operator sees of a running flagsvc.

``metrics`` defines every Prometheus metric in one place (services count into it);
``logging`` sets up JSON or text logs with the request id and actor of the request a
line was written in. This package is a leaf: it imports no other flagsvc package and
no Flask, so every layer may use it (import-linter checks both).
"""
