"""Registering sources and users. Tokens are returned once and stored only as hashes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatcher.enums import EVENT_KINDS, Role
from dispatcher.errors import Conflict, NotFound, ValidationFailed
from dispatcher.models import Source, User, WebSession
from dispatcher.org.model import Org
from dispatcher.security import hash_password, hash_token, new_password, new_token
from dispatcher.wallclock import utcnow


def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    valid = {k.value for k in EVENT_KINDS}
    bad = [k for k in kinds if k not in valid]
    if not kinds or bad:
        raise ValidationFailed(
            f"kinds must be a comma-separated subset of {', '.join(sorted(valid))}; got {text!r}"
        )
    return sorted(set(kinds))


def add_source(
    session: Session, *, name: str, kinds: list[str], rate: float, burst: int, now: datetime
) -> tuple[Source, str]:
    token = new_token("src")
    source = Source(
        name=name,
        kinds=",".join(kinds),
        token_hash=hash_token(token),
        rate_per_second=rate,
        burst=burst,
        created_at=now,
    )
    session.add(source)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a source named {name!r} already exists") from None
    return source, token


def rotate_source_token(session: Session, source: Source) -> str:
    token = new_token("src")
    source.token_hash = hash_token(token)
    session.add(source)
    return token


def parse_roles(roles: str | list[str] | tuple[str, ...]) -> list[str]:
    """``handler,verifier`` (or a list) → the roles, in the order given, each known, none twice."""
    items = [r.strip() for r in (roles.split(",") if isinstance(roles, str) else roles) if r.strip()]
    unknown = [r for r in items if r not in set(Role)]
    if not items or unknown:
        raise ValidationFailed(
            f"roles must be one or more of {', '.join(Role)}; got {', '.join(unknown) or 'none'}",
            details=[{"path": "roles", "message": "unknown role" if unknown else "required"}],
        )
    return list(dict.fromkeys(items))


def add_user(
    session: Session,
    *,
    login: str,
    unit: str,
    org: Org | None,
    now: datetime,
    role: str | None = None,
    roles: str | list[str] | None = None,
) -> tuple[User, str, str]:
    """Create a user; returns it with its API token and first web password."""
    held = parse_roles(roles if roles is not None else role or "")
    if org is None:
        raise ValidationFailed("no org is loaded yet: run `dispatcher org load FILE` first")
    if unit not in org.units_by_code:
        raise ValidationFailed(f"unknown unit {unit!r} (see `dispatcher org check`)")
    if session.exec(select(User.id).where(User.login == login)).first() is not None:
        raise Conflict(f"a user with login {login!r} already exists")
    token, password = new_token("usr"), new_password()
    user = User(
        login=login,
        unit_code=unit,
        role=held[0],
        roles=held,
        token_hash=hash_token(token),
        password_hash=hash_password(password),
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a user with login {login!r} already exists") from None
    return user, token, password


def user_named(session: Session, login: str) -> User:
    user = session.exec(select(User).where(User.login == login)).first()
    if user is None:
        raise NotFound(f"no user {login!r} (see `dispatcher user list`)")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.unit_code), col(User.login))).all())


def set_roles(session: Session, login: str, roles: str | list[str]) -> User:
    """Give ``login`` exactly these roles (one person may hold several, DESIGN §8)."""
    user = user_named(session, login)
    held = parse_roles(roles)
    user.roles, user.role = held, held[0]
    session.add(user)
    return user


def reset_password(session: Session, login: str) -> str:
    """A new first password for ``login`` (shown once); every web session of theirs ends with it."""
    user = user_named(session, login)
    password = new_password()
    user.password_hash = hash_password(password)
    session.add(user)
    end_sessions(session, user)
    return password


def set_active(session: Session, login: str, active: bool) -> User:
    """Disable (or enable again) a user: a disabled user's token, sessions and login stop working."""
    user = user_named(session, login)
    user.active = active
    session.add(user)
    if not active:
        end_sessions(session, user)
    return user


def end_sessions(session: Session, user: User) -> None:
    session.execute(
        sa.update(WebSession)
        .where(col(WebSession.user_id) == user.id, col(WebSession.ended_at).is_(None))
        .values(ended_at=utcnow())
    )


def staff_without_login(session: Session, org: Org) -> list[tuple[str, str, list[str]]]:
    """The org's staff who have no user yet: (login, unit, roles)."""
    have = set(session.exec(select(User.login)).all())
    return [(s.login, s.unit, [r.value for r in s.roles]) for s in org.staff if s.login not in have]
