"""Python SDK for flagsvc.

The evaluation engine lives in :mod:`flagsvc_sdk.engine`; it is pure so the service can
import it too and both always agree. The HTTP client is added later.
"""

from __future__ import annotations

__all__: list[str] = []
