"""Schemathesis against the app's own OpenAPI document (issue 11): no 5xx, answers match the schema.

The schema is the one ``create_app`` publishes at ``/openapi.json`` (read once at import time; it
does not depend on the services). Every operation is called over real HTTP (the shared uvicorn)
on a database that holds a few real tasks, so generated ids sometimes hit one:

- ``/api/v1/events*`` as an upstream **source** (a bearer source token);
- every other ``/api/v1`` route as **staff**: on SQLite the zone leader of zone 1 (sees his
  zone: the scoped and recusal paths), on PostgreSQL the commission's admin (sees everything:
  the unscoped paths, and the database that refuses what SQLite lets through, such as NUL
  characters). One identity a backend keeps the file near a minute a backend;
- the operational routes (``/healthz``, ``/readyz``, ``/metrics``) as staff too (they ignore it).

Every check of schemathesis runs (no server error, status codes, content types and headers
documented, bodies matching their schemas, input that breaks the schema refused with a 4xx,
auth not ignored), with a fixed budget of examples per operation, except two that test more
than the schema can say:

- ``positive_data_acceptance`` wants every schema-valid request answered 2xx; but a valid body
  may still be refused by the domain: the task is in another state (``409``), the unit does not
  exist or this move needs a reason (``422``), the file is empty (``422``). Those answers are
  documented and carry the error body, which ``response_schema_conformance`` checks.
- ``negative_data_rejection`` for ``POST /events:batch`` only: the contract answers a batch per
  item (DESIGN §4), so ``{"events": [null]}`` is ``200`` with that item refused ``422``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from schemathesis import checks

from dispatcher.http.app import create_app
from tests import factories
from tests.integration.tasking import Desk, Headers, open_desk

#: Examples per operation: enough to reach every branch of a body's schema.
EXAMPLES = 25

schema = schemathesis.openapi.from_dict(create_app(services=object()).openapi())  # type: ignore[arg-type]


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Any) -> Iterator[Desk]:
    with open_desk(api_url, engine) as desk:
        desk.tasks([factories.complaint(), factories.clue(), factories.enterprise_request()])
        yield desk


def _headers(desk: Desk, path: str) -> Headers:
    if path.startswith("/api/v1/events"):
        return desk.source
    return desk.who("han.zhiyuan" if desk.engine.dialect.name == "sqlite" else "tang.wenbo")


@pytest.mark.redis
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_within_its_schema_and_never_with_a_5xx(
    case: schemathesis.Case, desk: Desk
) -> None:
    excluded = [checks.positive_data_acceptance]
    if case.path == "/api/v1/events:batch":
        excluded.append(checks.negative_data_rejection)
    case.call_and_validate(base_url=desk.api, headers=_headers(desk, case.path), excluded_checks=excluded)
