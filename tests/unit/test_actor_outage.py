"""A database outage in an actor is one log line and a retry, not a traceback (issue 12)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from workers.actors import DatabaseUnavailable, quiet_outage


def test_an_unreachable_database_is_one_warning_and_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    def route_events(ids: list[str]) -> None:
        raise OperationalError("SELECT 1", {}, Exception('connection to server at "127.0.0.1" failed\nmore'))

    with caplog.at_level(logging.WARNING), pytest.raises(DatabaseUnavailable) as raised:
        quiet_outage(route_events)(["e1"])
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    (record,) = caplog.records
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert record.getMessage().startswith("route_events: the database does not answer, will retry")


def test_other_errors_pass_through_unchanged() -> None:
    def route_events(ids: list[str]) -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        quiet_outage(route_events)(["e1"])
