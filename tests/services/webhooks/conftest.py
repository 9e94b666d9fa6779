"""The app with private receivers allowed (the test receiver is on 127.0.0.1), a
real receiver, and a worker's sender."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flagsvc.services.webhooks.sender import Sender
from flagsvc.state import AppState
from tests.webhook_receiver import Receiver
from tests.webhook_receiver import receiving


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def sender() -> Iterator[Sender]:
    made = Sender(timeout=0.5, allow_private=True)
    yield made
    made.close()


@pytest.fixture
def state(app: Flask) -> AppState:
    found: AppState = app.extensions["flagsvc"]
    return found
