"""Unit tests of the event envelope and payload schemas (DESIGN §4)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from events.schemas import (
    IDENTITY_FIELDS,
    ClueEvent,
    ComplaintEvent,
    EnterpriseRequestEvent,
    EventKind,
    parse_envelope,
)

CLUE: dict[str, Any] = {
    "kind": "clue",
    "external_id": "x-1",
    "received_at": "2026-03-01T09:30:00+08:00",
    "payload": {
        "township": "大兴镇",
        "village": "庙湾村",
        "subject": {"name": "赵德明", "position": "村党支部书记", "unit": "大兴村委会", "rank": "village"},
        "category": "优亲厚友",
        "summary": "反映村党支部书记在低保评定中优亲厚友。",
        "severity": "serious",
        "reporter": {"name": "王建国", "phone": "13987654321", "anonymous": False},
    },
}
COMPLAINT: dict[str, Any] = {
    "kind": "complaint",
    "external_id": "c-1",
    "payload": {
        "township": "大兴镇",
        "category": "惠民资金",
        "summary": "村民反映惠民补贴迟迟未发放到位。",
        "channel": "hotline",
        "complainant": {"name": "李秀英", "phone": "13812345678"},
        "about_unit": "大兴镇纪委",
        "about_rank": "township",
        "severity": "major",
    },
}
ENTERPRISE: dict[str, Any] = {
    "kind": "enterprise_request",
    "external_id": "q-1",
    "payload": {
        "enterprise": {"name": "青禾食品有限公司", "credit_code": "91330000123456789X"},
        "category": "劳动用工",
        "summary": "企业反映用工备案办理周期过长。",
        "park": "青岚工业园",
        "contact": {"name": "陈经理", "phone": "15011112222"},
    },
}


def changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the dotted ``path`` set to ``value`` (or removed when value is ...)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def error_locations(body: dict[str, Any]) -> set[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as raised:
        parse_envelope(body)
    return {tuple(e["loc"]) for e in raised.value.errors()}


@pytest.mark.parametrize(
    ("body", "model", "kind"),
    [
        (CLUE, ClueEvent, EventKind.clue),
        (COMPLAINT, ComplaintEvent, EventKind.complaint),
        (ENTERPRISE, EnterpriseRequestEvent, EventKind.enterprise_request),
    ],
)
def test_a_valid_body_of_each_kind_parses_to_its_model(
    body: dict[str, Any], model: type, kind: EventKind
) -> None:
    event = parse_envelope(body)

    assert isinstance(event, model)
    assert event.kind is kind
    assert event.external_id == body["external_id"]
    assert event.payload.model_dump(exclude_none=True) == body["payload"]


def test_only_the_required_fields_are_needed_and_defaults_fill_the_rest() -> None:
    clue = parse_envelope(
        {
            "kind": "clue",
            "external_id": "x",
            "payload": {
                "township": "T",
                "subject": {"name": "N", "rank": "county"},
                "category": "C",
                "summary": "S",
            },
        }
    )
    complaint = parse_envelope(
        {
            "kind": "complaint",
            "external_id": "c",
            "payload": {"township": "T", "category": "C", "summary": "S"},
        }
    )

    assert isinstance(clue, ClueEvent) and isinstance(complaint, ComplaintEvent)
    assert (clue.received_at, clue.payload.severity, clue.payload.reporter) == (None, "normal", None)
    assert (complaint.payload.severity, complaint.payload.about_rank) == ("normal", None)


@pytest.mark.parametrize(
    ("received_at", "expected"),
    [
        ("2026-03-01T09:30:00+08:00", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01T01:30:00Z", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        (
            datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))),
            datetime(2026, 3, 1, 1, 30, tzinfo=UTC),
        ),
    ],
)
def test_received_at_with_an_offset_is_accepted(received_at: Any, expected: datetime) -> None:
    event = parse_envelope(changed(COMPLAINT, "received_at", received_at))

    assert event.received_at == expected


@pytest.mark.parametrize("received_at", ["2026-03-01T09:30:00", datetime(2026, 3, 1, 9, 30)])
def test_a_naive_received_at_is_rejected(received_at: Any) -> None:
    with pytest.raises(ValidationError, match="must carry a UTC offset"):
        parse_envelope(changed(CLUE, "received_at", received_at))


@pytest.mark.parametrize(
    ("body", "path", "loc"),
    [
        (CLUE, "external_id", ("clue", "external_id")),
        (CLUE, "payload", ("clue", "payload")),
        (CLUE, "payload.township", ("clue", "payload", "township")),
        (CLUE, "payload.subject", ("clue", "payload", "subject")),
        (CLUE, "payload.subject.name", ("clue", "payload", "subject", "name")),
        (CLUE, "payload.subject.rank", ("clue", "payload", "subject", "rank")),
        (CLUE, "payload.category", ("clue", "payload", "category")),
        (CLUE, "payload.summary", ("clue", "payload", "summary")),
        (COMPLAINT, "payload.township", ("complaint", "payload", "township")),
        (COMPLAINT, "payload.category", ("complaint", "payload", "category")),
        (COMPLAINT, "payload.summary", ("complaint", "payload", "summary")),
        (ENTERPRISE, "payload.enterprise", ("enterprise_request", "payload", "enterprise")),
        (ENTERPRISE, "payload.enterprise.name", ("enterprise_request", "payload", "enterprise", "name")),
        (ENTERPRISE, "payload.category", ("enterprise_request", "payload", "category")),
        (ENTERPRISE, "payload.summary", ("enterprise_request", "payload", "summary")),
    ],
)
def test_a_missing_required_field_is_rejected_naming_it(
    body: dict[str, Any], path: str, loc: tuple[str, ...]
) -> None:
    assert error_locations(changed(body, path, ...)) == {loc}


def test_a_missing_kind_is_rejected() -> None:
    with pytest.raises(ValidationError, match="discriminator"):
        parse_envelope(changed(CLUE, "kind", ...))


@pytest.mark.parametrize(
    ("body", "path", "value"),
    [
        (CLUE, "kind", "petition"),
        (CLUE, "payload.severity", "major"),  # major is a complaint's word
        (CLUE, "payload.subject.rank", "province"),
        (COMPLAINT, "payload.severity", "serious"),  # serious is a clue's word
        (COMPLAINT, "payload.channel", "email"),
        (COMPLAINT, "payload.about_rank", "provincial"),
        (CLUE, "payload.reporter.anonymous", "maybe"),
    ],
)
def test_a_wrong_enum_value_is_rejected(body: dict[str, Any], path: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        parse_envelope(changed(body, path, value))


@pytest.mark.parametrize(
    ("body", "path", "value"),
    [
        (CLUE, "external_id", ""),
        (CLUE, "external_id", "x" * 129),
        (CLUE, "payload.township", "   "),  # blank after stripping
        (CLUE, "payload.subject.name", "张" * 201),
        (COMPLAINT, "payload.summary", ""),
        (COMPLAINT, "payload.complainant.phone", "12"),
        (ENTERPRISE, "payload.enterprise.credit_code", "9" * 33),
    ],
)
def test_out_of_range_text_is_rejected(body: dict[str, Any], path: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        parse_envelope(changed(body, path, value))


@pytest.mark.parametrize("body", [CLUE, COMPLAINT, ENTERPRISE])
@pytest.mark.parametrize("field", ["source", "id", "payload_version", "township"])
def test_an_extra_envelope_field_is_rejected(body: dict[str, Any], field: str) -> None:
    locations = error_locations(changed(body, field, "x"))

    assert locations == {(body["kind"], field)}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (CLUE, "payload.platform_ref"),
        (CLUE, "payload.subject.gender"),
        (CLUE, "payload.reporter.email"),
        (COMPLAINT, "payload.attachments"),
        (ENTERPRISE, "payload.enterprise.scale"),
    ],
)
def test_extra_payload_fields_are_kept(body: dict[str, Any], path: str) -> None:
    event = parse_envelope(changed(body, path, "kept"))

    dumped = event.model_dump(mode="json")
    node: Any = dumped
    for key in path.split("."):
        node = node[key]
    assert node == "kept"


def test_text_fields_are_stripped() -> None:
    event = parse_envelope(changed(COMPLAINT, "payload.township", "  大兴镇 "))

    assert isinstance(event, ComplaintEvent)
    assert event.payload.township == "大兴镇"


def test_a_body_that_is_not_an_object_is_rejected() -> None:
    bodies: tuple[Any, ...] = (None, [], "clue", 1)
    for body in bodies:
        with pytest.raises(ValidationError):
            parse_envelope(body)


def test_every_kind_names_its_identity_fields_and_they_exist_on_its_payload() -> None:
    payloads = {
        EventKind.clue: ClueEvent,
        EventKind.complaint: ComplaintEvent,
        EventKind.enterprise_request: EnterpriseRequestEvent,
    }

    assert set(IDENTITY_FIELDS) == set(EventKind)
    for kind, fields in IDENTITY_FIELDS.items():
        payload_model = payloads[kind].model_fields["payload"].annotation
        assert payload_model is not None
        assert set(fields) <= set(payload_model.model_fields)
