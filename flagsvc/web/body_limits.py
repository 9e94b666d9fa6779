"""Request bodies limited before they are parsed: forms by size and by field count.

``FLAGSVC_MAX_BODY_BYTES`` (16 MiB) bounds every body, but werkzeug parses an
``application/x-www-form-urlencoded`` body in one go with no field limit (its
``max_form_parts`` and ``max_form_memory_size`` apply to multipart only): one 16 MiB
``a=&a=&…`` to ``POST /ui/sign-in`` made eight million fields, 5.5 s of CPU and
340 MiB before CSRF or the token were looked at. So:

- a form may have at most ``MAX_FORM_PARTS`` fields, multipart and url-encoded alike
  (Flask's 1,000; no form of ours has more than a few dozen); the separators are
  counted in the raw bytes first, which costs milliseconds, and more is a 413;
- endpoints anyone may post to without signing in take a small body
  (``SMALL_BODIES``: sign-in, 16 KiB: a token, a CSRF token and a ``next`` address);
  a larger ``Content-Length`` is refused before a byte is read.
"""

from __future__ import annotations

import io
import typing as t

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

SMALL_BODIES: dict[str, int] = {"ui.sign_in": 16 * 2**10}
"""Endpoint -> the most bytes a body to it may have (public forms)."""


class TooManyFormFields(RequestEntityTooLarge):
    """More fields than ``MAX_FORM_PARTS`` in a form (a 413 like any body too large)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a form may have at most {limit} fields")
        self.limit = limit


class _CountingParser(FormDataParser):
    """Werkzeug's parser, with ``max_form_parts`` applied to url-encoded forms too."""

    def _parse_urlencoded(
        self,
        stream: t.IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> tuple[t.IO[bytes], MultiDict[str, t.Any], MultiDict[str, t.Any]]:
        body = stream.read()  # limited to max_content_length by the request's stream
        limit = self.max_form_parts
        if limit is not None and body.count(b"&") >= limit:
            raise TooManyFormFields(limit)
        return super()._parse_urlencoded(io.BytesIO(body), mimetype, content_length, options)


class LimitedRequest(Request):
    """Flask's request with the limits above (``app.request_class``)."""

    form_data_parser_class = _CountingParser

    @property
    def max_content_length(self) -> int | None:
        """The body limit, lower for the public forms in ``SMALL_BODIES``."""
        limit = super().max_content_length
        small = SMALL_BODIES.get(self.endpoint or "")
        if small is None:
            return limit
        return small if limit is None else min(limit, small)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def body_limit(request: Request) -> int | None:
    """The limit a 413 should name: this request's (a public form's is smaller)."""
    return request.max_content_length
