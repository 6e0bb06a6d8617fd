"""Health, readiness, metrics and the API documentation over real HTTP."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from dispatcher.accounts.registry import add_user
from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.conftest import assert_error, auth, post_event


def user_token(engine: sa.Engine, org: Org, *, login: str, unit: str, role: str) -> str:
    with unit_of_work(engine) as s:
        _, token, _ = add_user(s, login=login, unit=unit, role=role, org=org, now=utcnow())
    return token


def test_healthz_answers_200_without_auth(api_url: str) -> None:
    r = httpx.get(f"{api_url}/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_healthz_answers_200_even_when_the_database_is_down(offline_database_api_url: str) -> None:
    assert httpx.get(f"{offline_database_api_url}/healthz").status_code == 200


def test_readyz_answers_200_when_database_and_broker_are_reachable(api_url: str) -> None:
    r = httpx.get(f"{api_url}/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["checks"]) == ("ok", {"database": "ok", "broker": "ok"})
    assert isinstance(body["warnings"], list)  # calendar gaps warn without making the API unready


def test_readyz_answers_503_when_the_broker_is_unreachable(offline_broker_api_url: str) -> None:
    r = httpx.get(f"{offline_broker_api_url}/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")


def test_readyz_answers_503_when_the_database_is_unreachable(offline_database_api_url: str) -> None:
    r = httpx.get(f"{offline_database_api_url}/readyz", timeout=15)
    assert r.status_code == 503, r.text
    checks = r.json()["checks"]
    assert checks["database"].startswith("unreachable")
    assert checks["broker"] == "ok"


def test_metrics_needs_a_user_token(engine: sa.Engine, api_url: str) -> None:
    assert_error(httpx.get(f"{api_url}/metrics"), 401, "unauthorized")
    assert_error(httpx.get(f"{api_url}/metrics", headers=auth("usr_unknown")), 401, "unauthorized")
    source = factories.source_token(engine)  # a source token is not a user token
    assert_error(httpx.get(f"{api_url}/metrics", headers=auth(source)), 401, "unauthorized")


def test_metrics_is_forbidden_to_a_handler(engine: sa.Engine, loaded_org: Org, api_url: str) -> None:
    token = user_token(engine, loaded_org, login="h1", unit="DXZ-JW", role="handler")
    assert_error(httpx.get(f"{api_url}/metrics", headers=auth(token)), 403, "forbidden")


def test_metrics_is_served_to_oncall_and_admin_and_counts_intake(
    engine: sa.Engine, loaded_org: Org, api_url: str, token: str
) -> None:
    assert post_event(api_url, token, factories.complaint()).status_code == 202
    for role, unit in (("oncall", "XFS"), ("admin", "BGS")):
        user = user_token(engine, loaded_org, login=f"u-{role}", unit=unit, role=role)
        r = httpx.get(f"{api_url}/metrics", headers=auth(user))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in r.text
        assert "complaint" in r.text


def test_the_docs_page_loads(api_url: str) -> None:
    r = httpx.get(f"{api_url}/docs")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    assert "swagger" in r.text.lower()


def test_the_openapi_document_describes_the_event_envelope(api_url: str) -> None:
    r = httpx.get(f"{api_url}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    schemas = doc["components"]["schemas"]
    assert "EventEnvelope" in schemas
    envelope = schemas["EventEnvelope"]
    assert set(envelope["discriminator"]["mapping"]) == {"clue", "complaint", "enterprise_request"}
    for ref in envelope["discriminator"]["mapping"].values():  # every $ref resolves
        assert ref.removeprefix("#/components/schemas/") in schemas
    body = doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EventEnvelope"}
    assert "/api/v1/events:batch" in doc["paths"]
    assert "/api/v1/events/{event_id}" in doc["paths"]


def test_unknown_paths_answer_json_404(api_url: str) -> None:
    assert_error(httpx.get(f"{api_url}/api/v1/nothing-here"), 404, "not_found")
