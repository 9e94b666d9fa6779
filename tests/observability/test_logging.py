"""Log set-up: JSON lines with request context, text for development, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from flagsvc.observability import logging as observed
from flagsvc.services.credentials import SDK_KEY_PREFIX
from flagsvc.services.credentials import TOKEN_PREFIX


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, restored after the test."""
    logger = logging.getLogger()
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_configure__json__one_object_per_line_with_fields(root):
    stream = io.StringIO()
    observed.configure("json", "INFO", stream=stream)
    logging.getLogger("flagsvc.test").info("hello %s", "world", extra={"status": 201})
    line = json.loads(stream.getvalue())
    assert line["message"] == "hello world"
    assert (line["level"], line["logger"], line["status"]) == ("INFO", "flagsvc.test", 201)
    assert line["timestamp"].endswith("+00:00")


def test_configure__again__replaces_its_handler_only(root):
    observed.configure("text", "INFO", stream=io.StringIO())
    count = len(root.handlers)
    observed.configure("json", "DEBUG", stream=io.StringIO())
    assert len(root.handlers) == count
    assert root.level == logging.DEBUG


def test_configure__bad_format_or_level__error_names_variable(root):
    with pytest.raises(ValueError, match="FLAGSVC_LOG_FORMAT"):
        observed.configure("yaml")
    with pytest.raises(ValueError, match="FLAGSVC_LOG_LEVEL"):
        observed.configure("json", "LOUD")


@pytest.mark.parametrize(
    "secret",
    [
        "Bearer abc.def-ghi",
        TOKEN_PREFIX + "A1b2C3d4E5f6G7h8",
        SDK_KEY_PREFIX + "production_A1b2C3d4E5f6G7h8",
    ],
)
def test_redact__credential_shapes__masked(secret):
    assert secret.split()[-1] not in observed.redact(f"auth failed for {secret} here")


def test_filter__secret_named_field_and_message__redacted(root):
    stream = io.StringIO()
    observed.configure("json", "INFO", stream=stream)
    token = TOKEN_PREFIX + "SuperSecretValue123"
    logging.getLogger("t").warning("token %s", token, extra={"authorization": "Bearer x"})
    line = json.loads(stream.getvalue())
    assert token not in stream.getvalue()
    assert line["authorization"] == observed.REDACTED


def test_gunicorn_logconfig__text__gunicorn_defaults():
    assert observed.gunicorn_logconfig("text", None) == {}
    config = observed.gunicorn_logconfig(None, "WARNING")
    assert config["loggers"]["gunicorn.access"]["handlers"] == []  # the app logs access


def test_filter__bad_format_call__left_for_the_handler_to_report():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "two %s %s", ("one",), None)
    assert observed.ContextFilter().filter(record)  # no raise at the logging call site
