"""Registering sources and users. Tokens are returned once and stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dispatcher.enums import EVENT_KINDS, Role
from dispatcher.errors import Conflict, ValidationFailed
from dispatcher.models import Source, User
from dispatcher.org.model import Org
from dispatcher.security import hash_password, hash_token, new_password, new_token


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


def add_user(
    session: Session, *, login: str, unit: str, role: str, org: Org | None, now: datetime
) -> tuple[User, str, str]:
    """Create a user; returns it with its API token and first web password."""
    if role not in set(Role):
        raise ValidationFailed(f"role must be one of {', '.join(Role)}; got {role!r}")
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
        role=role,
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
