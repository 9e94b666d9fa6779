"""The one JSON form every part is serialised in: ``encode_snapshot``'s."""

from __future__ import annotations

import json
from typing import Any


def json_text(value: Any) -> str:
    """``value`` as ``encode_snapshot`` serialises it (compact, keys sorted), so joined
    parts are byte for byte a full build's body."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
