"""Webhook signing and delivery state of ``dispatcher.notify.webhooks`` (no broker, no network)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from dispatcher.models import Notification, Task
from dispatcher.notify.webhooks import Delivery, prepare, record, sign
from dispatcher.org.loader import load_org_file
from dispatcher.org.model import Org
from tests.conftest import EXAMPLE_ORG

NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def test_sign_is_hmac_sha256_of_the_body_in_hex_with_the_sha256_prefix() -> None:
    # RFC 4231, test case 2.
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_sign_depends_on_every_byte_and_on_the_secret() -> None:
    body = json.dumps({"kind": "dispatched", "message": "已分办"}, ensure_ascii=False).encode()
    assert sign("k", body) != sign("k", body + b" ")
    assert sign("k", body) != sign("k2", body)
    assert sign("密钥", body) == "sha256=" + hmac.new("密钥".encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def session() -> Iterator[Session]:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture(scope="module")
def org() -> Org:
    return load_org_file(EXAMPLE_ORG)


def add_notification(session: Session, *, unit: str = "DXZ-JW", status: str = "pending") -> int:
    task = Task(
        kind="complaint", ledger_no="TS-2025-000001", status="dispatched", handler_unit=unit,
        rule="complaint_township", reason="属地办理",
        received_at=NOW, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    session.add(task)
    session.flush()
    assert task.id is not None
    n = Notification(
        unit_code=unit, task_id=task.id, kind="dispatched", message="TS-2025-000001 已分办", created_at=NOW,
        webhook_status=status,
    )  # fmt: skip
    session.add(n)
    session.flush()
    assert n.id is not None
    return n.id


def state(session: Session, notification_id: int) -> tuple[str, int, str | None]:
    n = session.get(Notification, notification_id)
    assert n is not None
    return n.webhook_status, n.webhook_attempts, n.webhook_error


def test_record_retries_until_the_last_attempt_then_gives_up_as_failed(session: Session) -> None:
    nid = add_notification(session)
    assert record(session, nid, error="HTTP 500", max_attempts=3, now=NOW) is True
    assert state(session, nid) == ("pending", 1, "HTTP 500")
    assert record(session, nid, error="ConnectError: refused", max_attempts=3, now=NOW) is True
    assert state(session, nid) == ("pending", 2, "ConnectError: refused")
    assert record(session, nid, error="HTTP 502", max_attempts=3, now=NOW) is False
    assert state(session, nid) == ("failed", 3, "HTTP 502")
    # A late duplicate message changes nothing once it is settled.
    assert record(session, nid, error=None, max_attempts=3, now=NOW) is False
    assert state(session, nid) == ("failed", 3, "HTTP 502")


def test_record_marks_a_success_delivered_clears_the_error_and_stops(session: Session) -> None:
    nid = add_notification(session)
    assert record(session, nid, error="HTTP 500", max_attempts=3, now=NOW) is True
    assert record(session, nid, error=None, max_attempts=3, now=NOW) is False
    assert state(session, nid) == ("delivered", 2, None)
    assert record(session, nid, error="HTTP 500", max_attempts=3, now=NOW) is False
    assert state(session, nid) == ("delivered", 2, None)


def test_record_ignores_notifications_without_a_webhook_or_unknown(session: Session) -> None:
    nid = add_notification(session, unit="HSZ-JW", status="none")
    assert record(session, nid, error=None, max_attempts=3, now=NOW) is False
    assert state(session, nid) == ("none", 0, None)
    assert record(session, 999_999, error=None, max_attempts=3, now=NOW) is False


def test_prepare_signs_the_exact_body_with_the_secret_from_the_environment(
    session: Session, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_DXZ", "s3cret")
    nid = add_notification(session)
    delivery = prepare(session, nid, org)
    assert isinstance(delivery, Delivery)
    assert delivery.url == "http://127.0.0.1:9/hooks/dxz"
    assert delivery.headers["X-Dispatch-Signature"] == sign("s3cret", delivery.body)
    assert delivery.headers["X-Dispatch-Delivery"] == str(nid)
    assert delivery.headers["X-Dispatch-Event"] == "dispatched"
    body = json.loads(delivery.body)
    assert body["notification_id"] == nid and body["unit"] == "DXZ-JW" and body["message"].endswith("已分办")
    assert set(body["task"]) == {"id", "ledger_no", "kind", "status"}


def test_prepare_refuses_to_send_unsigned_when_the_secret_is_missing(
    session: Session, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET_DXZ", raising=False)
    nid = add_notification(session)
    assert prepare(session, nid, org) == "webhook secret WEBHOOK_SECRET_DXZ is not set in the environment"


def test_prepare_has_nothing_to_do_once_settled_and_an_error_when_the_unit_lost_its_webhook(
    session: Session, org: Org
) -> None:
    assert prepare(session, add_notification(session, status="delivered"), org) is None
    assert prepare(session, add_notification(session, status="failed"), org) is None
    no_hook = add_notification(session, unit="HSZ-JW")
    assert prepare(session, no_hook, org) == "unit HSZ-JW has no webhook in the org in force"
    assert prepare(session, no_hook, None) == "unit HSZ-JW has no webhook in the org in force"
