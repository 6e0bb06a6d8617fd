"""Templates and what every page shows: the signed-in user, the navigation, flash messages, labels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dispatcher.http.sessions import csrf_token, session_of
from dispatcher.models import User
from dispatcher.org.model import Org
from dispatcher.tasks.access import roles_of
from dispatcher.web import labels

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"

#: Pages set a strict policy: scripts and styles only from this server (htmx is vendored in static/).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.globals.update(
    KINDS=labels.KINDS,
    STATES=labels.STATES,
    MOVES=labels.MOVES,
    DISPOSITIONS=labels.DISPOSITIONS,
    RATINGS=labels.RATINGS,
    CLOSE_REASONS=labels.CLOSE_REASONS,
    ROLES=labels.ROLES,
    NOTIFICATION_KINDS=labels.NOTIFICATION_KINDS,
    EXTENSION_STATES=labels.EXTENSION_STATES,
    NOTIFIED=labels.NOTIFIED,
    DEADLINE_STATES=labels.DEADLINE_STATES,
    step_label=labels.step_label,
    deadline_text=labels.deadline_text,
    STAGES=labels.STAGES,
    STAGE_RESULTS=labels.STAGE_RESULTS,
    FINDINGS=labels.FINDINGS,
    FOUR_FORMS=labels.FOUR_FORMS,
    SANCTIONS=labels.SANCTIONS,
    RULES=labels.RULES,
    AGENDA=labels.AGENDA,
    SORTS=labels.SORTS,
    PROPOSALS=labels.PROPOSALS,
    JOBS=labels.JOBS,
    RUN_STATES=labels.RUN_STATES,
)


@jinja2.pass_context
def _localtime(context: Any, value: datetime | str | None) -> str:
    """A UTC time (or its ISO text) in the policy's timezone, to the minute."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    tz: ZoneInfo = context["tz"]
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


templates.env.filters["localtime"] = _localtime


def age(seconds: float | None) -> str:
    """A waiting time as a person says it: ``45 秒``, ``12 分钟``, ``3 小时 5 分``, ``2 天 4 小时``."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} 秒"
    if whole < 3600:
        return f"{whole // 60} 分钟"
    if whole < 86400:
        return f"{whole // 3600} 小时 {whole % 3600 // 60} 分"
    return f"{whole // 86400} 天 {whole % 86400 // 3600} 小时"


templates.env.filters["age"] = age


def flash(request: Request, level: str, text: str) -> None:
    """A message shown once on the next page (``ok`` or ``error``)."""
    session = session_of(request)
    session["flash"] = [*session.get("flash", []), {"level": level, "text": text}]


def unit_names(org: Org | None) -> dict[str, str]:
    return {u.code: u.name for u in org.units} if org is not None else {}


def staff_names(org: Org | None) -> dict[str, str]:
    return {s.login: s.name for s in org.staff} if org is not None else {}


#: Pages that show the calendar-gap banner: the on-call console and the admin's (issue 9); a handler
#: cannot act on it, so their screens stay quiet.
CALENDAR_PAGES = ("/queue", "/dead-letters", "/alerts", "/admin")


def _calendar_warning(request: Request) -> str | None:
    if not request.url.path.startswith(CALENDAR_PAGES):
        return None
    services: Any = getattr(request.app.state, "services", None)
    if not hasattr(services, "calendar_warning"):  # tests may serve a placeholder
        return None
    warning: str | None = services.calendar_warning()
    return warning


def render(
    request: Request,
    name: str,
    *,
    user: User | None,
    tz: ZoneInfo,
    org: Org | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    session = session_of(request)
    flashes = session.pop("flash", []) if "flash" in session else []
    response = templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "roles": sorted(roles_of(user)) if user is not None else [],
            "tz": tz,
            "csrf": csrf_token(request),
            "flashes": flashes,
            "units": unit_names(org),
            "people": staff_names(org),
            "path": request.url.path,
            "calendar_warning": _calendar_warning(request),
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@jinja2.pass_context
def _who(context: Any, actor: str) -> str:
    return who(actor, context["people"])


def who(actor: str, people: dict[str, str]) -> str:
    """A history entry's actor as a reader knows them: a name, the system, or the requester's platform."""
    if actor.startswith("system:"):
        return "系统"
    if actor.startswith("source:"):
        return f"来源系统 {actor.removeprefix('source:')}"
    return f"{people[actor]}（{actor}）" if actor in people else actor


templates.env.filters["who"] = _who


def _text(key: str, value: Any) -> str:
    if isinstance(value, dict):
        names = {**labels.SUBFIELDS, "name": "名称"} if key == "enterprise" else labels.SUBFIELDS
        return "；".join(f"{names.get(k, k)}：{_text(k, v)}" for k, v in value.items() if v is not None)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_text(key, v) for v in value)
    return labels.VALUES.get(key, {}).get(str(value), str(value))


def payload_rows(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's content as (label, text) rows, known fields first (identity is never in the payload)."""
    known = [k for k in labels.PAYLOAD_FIELDS if k in payload]
    rest = sorted(k for k in payload if k not in labels.PAYLOAD_FIELDS)
    keys = [k for k in [*known, *rest] if payload[k] is not None]
    return [(labels.PAYLOAD_FIELDS.get(k, k), _text(k, payload[k])) for k in keys]


def identity_rows(identity: dict[str, Any]) -> list[tuple[str, str]]:
    return [(labels.IDENTITY_ROLES.get(role, role), _text(role, person)) for role, person in identity.items()]


def outcome_rows(outcome: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not outcome:
        return []
    worded: dict[str, dict[str, str]] = {
        "disposition": labels.DISPOSITIONS, "result": labels.FINDINGS, "sanctions": labels.SANCTIONS,
        "four_forms": labels.FOUR_FORMS,
    }  # fmt: skip
    rows = []
    for key, value in outcome.items():
        label = labels.FIELDS.get(f"outcome.{key}", key)
        words = worded.get(key, {})
        if isinstance(value, dict):
            text = "；".join(f"{words.get(k, k)} {v}" for k, v in value.items() if v) or "无"
        elif key in worded:
            text = words.get(str(value), str(value))
        else:
            text = _text(key, value)
        rows.append((label, str(text)))
    return rows
