"""Form input → the API's marshmallow schemas, and their errors → plain words per field.

A browser sends strings; the API's schemas expect JSON types (``strict`` integers,
lists, booleans). The helpers here turn form text into those types without guessing
beyond what the form says, then ``validate`` runs the very schema the API runs, so a
value the API refuses is refused here with the same rule. Errors are keyed by form
field name (nested paths joined by ``-``: ``rules-0-values``) so each one is shown
next to its field, and the submitted text is kept for the re-render.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any

import marshmallow as ma

from flagsvc.domain.errors import StaleVersionError
from flagsvc.services.context import Precondition
from flagsvc.web.schemas import KEY_RULE

PAGE = "_page"
"""Error key for problems that belong to the whole form, not one field."""

_PLAIN_WORDS: tuple[tuple[str, str], ...] = (
    (r"^Missing data for required field\.$", "This is required."),
    (r"^Not a valid integer\.$", "Enter a whole number."),
    (r"^Not a valid number\.$", "Enter a number."),
    (r"^Not a valid boolean\.$", "Choose yes or no."),
    (r"^Must be one of: .*\.$", "Choose one of the listed options."),
    (r"^Shorter than minimum length 1\.$", "This is required."),
    (r"^Length must be between 1 and (\d+)\.$", r"Enter 1 to \1 characters."),
    (r"^Longer than maximum length (\d+)\.$", r"Enter at most \1 characters."),
    (r"^Not a valid datetime\.$", "Enter a date and time as 2026-12-02 19:32 (UTC)."),
    (r"^Unknown field\.$", "This field is not accepted here."),
    (r"^filters only together with stage$", "Choose a stage too: an environment narrows it."),
    (
        f"^{re.escape(KEY_RULE)}$",
        "Use 1-100 lowercase letters, digits, dots, underscores or dashes, "
        "starting with a letter or digit (no spaces or capitals).",
    ),
)


@dataclass(frozen=True, slots=True)
class FormState:
    """What one form on a page shows: the values sent and the errors found.

    ``name`` says which form on the page the values belong to, so a page with many
    forms (one per environment) re-fills and annotates only the one that was sent.
    """

    name: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, list[str]] = field(default_factory=dict)

    def value(self, form: str, name: str, default: Any = "") -> Any:
        """The submitted value of ``name`` if ``form`` was sent, else ``default``."""
        return self.values.get(name, default) if form == self.name else default

    def error(self, form: str, name: str) -> list[str]:
        """The reasons ``name`` of ``form`` was refused (empty when it was not)."""
        return list(self.errors.get(name, [])) if form == self.name else []

    def values_of(self, form: str, name: str, default: list[str]) -> list[str]:
        """Every submitted value of a multi-valued field (checkboxes), else ``default``."""
        if form != self.name:
            return default
        getlist = getattr(self.values, "getlist", None)
        return list(getlist(name)) if getlist else list(self.values.get(name, []))

    @property
    def page_errors(self) -> list[str]:
        """Reasons that concern the whole form (shown at its top)."""
        return list(self.errors.get(PAGE, []))


class FormInvalidError(Exception):
    """The form's values break a rule; ``errors`` maps field names to plain reasons."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = dict(errors)


def validate(schema: ma.Schema, data: Mapping[str, Any], problems: Mapping[str, list[str]]) -> Any:
    """Load ``data`` with the API's ``schema``; raise with its errors and ``problems``.

    ``problems`` are what the form-to-JSON conversion already found (bad JSON, a
    number that is not one); they are reported together with the schema's.

    :raise FormInvalidError: anything is wrong.
    """
    errors = dict(problems)
    try:
        loaded = schema.load(data)
    except ma.ValidationError as error:
        errors = {**flatten(error.messages), **errors}
    if errors:
        raise FormInvalidError(errors)
    return loaded


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into ``{"rules-0-values": [reason, ...]}``."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = PAGE if key == "_schema" else str(key)
            flat.update(flatten(value, f"{prefix}-{name}" if prefix else name))
        return flat
    reasons = messages if isinstance(messages, list) else [messages]
    texts = [plain(str(r)) for r in reasons if not isinstance(r, Mapping | list)]
    nested = [flatten(r, prefix) for r in reasons if isinstance(r, Mapping | list)]
    flat = {prefix or PAGE: texts} if texts else {}
    for extra in nested:
        flat.update(extra)
    return flat


def plain(message: str) -> str:
    """Say a schema's reason in plain words (the API's own messages are already plain)."""
    for pattern, words in _PLAIN_WORDS:
        if re.match(pattern, message):
            return re.sub(pattern, words, message)
    return message[:1].upper() + message[1:]


def text(form: Mapping[str, str], name: str) -> str:
    """A single-line field without the spaces people paste around values."""
    return form.get(name, "").strip()


def optional(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty optional fields, so the schema applies its defaults."""
    return {key: value for key, value in values.items() if value not in ("", None)}


def whole_number(raw: str) -> int | str:
    """``"42"`` → 42; anything else stays text for the schema to refuse in its words."""
    return int(raw) if re.fullmatch(r"[0-9]{1,12}", raw) else raw


def bounded(raw: str | None, maximum: int) -> int | None:
    """A whole number from 0 to ``maximum`` typed in a field; None for anything else.

    ``str.isdigit`` is not enough: ``"²"`` passes it and ``int`` refuses it, and 5,000
    digits pass it and ``int`` refuses them too (or the database, past its columns).
    """
    if raw is None or not re.fullmatch(r"[0-9]{1,19}", raw):
        return None
    value = int(raw)
    return value if value <= maximum else None


def number(raw: str) -> float | int | str:
    """A decimal number as JSON would carry it; anything else stays text."""
    try:
        value = float(raw)
    except ValueError:
        return raw
    if not math.isfinite(value):
        return raw
    return int(value) if re.fullmatch(r"-?[0-9]+", raw) else value


def json_value(raw: str, name: str, problems: dict[str, list[str]]) -> Any:
    """Parse a JSON textarea (empty: null), noting a parse error under ``name``."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        problems[name] = [f"This is not valid JSON ({error.msg} at line {error.lineno})."]
        return None
    except ValueError as error:  # an integer past Python's 4,300 digits
        problems[name] = [f"This JSON cannot be read ({str(error).split(';')[0]})."]
        return None


def lines(raw: str) -> list[str]:
    """Values one per line, without blanks (user keys may hold commas, never newlines)."""
    return [part.strip() for part in raw.splitlines() if part.strip()]


def dedupe(values: Iterable[str]) -> list[str]:
    """``values`` in order without repeats (pasted lists often repeat a key)."""
    return list(dict.fromkeys(values))


def version_guard(entity: str, posted: str | None) -> Precondition:
    """Refuse the save when the row changed since the form was shown (the UI's If-Match).

    The form carries the version it was rendered from; the service calls this with the
    row's ETag data after locking the row, so the check and the write are atomic.
    """

    def check(etag_data: Mapping[str, object]) -> None:
        if str(etag_data.get("version")) != (posted or "").strip():
            raise StaleVersionError(entity)

    return check


def collapse(errors: Mapping[str, list[str]], name: str, items: list[str]) -> dict[str, list[str]]:
    """Move errors about list items (``users-3``) onto the list's own field, naming the item.

    A textarea of user keys is one field on the page; its fourth key's problem belongs
    next to it, saying which key.
    """
    merged: dict[str, list[str]] = {}
    for key, reasons in errors.items():
        head, _, index = key.partition("-")
        if head == name and index.isdigit() and int(index) < len(items):
            item = items[int(index)]
            shown = item if len(item) <= 40 else item[:40] + "…"
            reasons = [f"{shown!r}: {reason}" for reason in reasons]
            key = name
        merged.setdefault(key, []).extend(reasons)
    return merged


def utc_text(raw: str) -> str:
    """A ``datetime-local`` value (no offset) as ISO 8601 in UTC, as the pages say.

    Text that is not a time at all stays as typed, for the schema to refuse in words.
    """
    cleaned = raw.strip()
    if cleaned.upper().endswith(" UTC"):  # as the pages show times: "2026-12-02 19:32 UTC"
        cleaned = cleaned[:-4].rstrip()
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return raw
    return cleaned if parsed.tzinfo else parsed.replace(tzinfo=UTC).isoformat()
