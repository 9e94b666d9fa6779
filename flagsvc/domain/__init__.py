"""Release rules of flagsvc: pure Python, no I/O, no framework imports.

The rules live here so the service, the CLI and the tests share one definition of
what a stage transition, a readiness gate or an audit hash is.
"""
