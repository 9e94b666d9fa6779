"""Delivery reads what the services write: their use-case fixtures, shared."""

from tests.services.conftest import change_by
from tests.services.conftest import database
from tests.services.conftest import key_result_id

__all__ = ["change_by", "database", "key_result_id"]
