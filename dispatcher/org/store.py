"""The org in force lives in the database (``org_versions``); every process reads the newest."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime

from sqlmodel import Session, col, select

from dispatcher.errors import ConfigError
from dispatcher.models import OrgVersion
from dispatcher.org.model import Org
from dispatcher.security import person_key

#: (version id, sha256 of the file) → parsed org. The hash keeps two databases (tests, a
#: recreated database) that both have a version 1 from sharing a stale org.
_cache: dict[tuple[int, str], Org] = {}
_cache_lock = threading.Lock()


def save_org(
    session: Session, org: Org, *, source_name: str, text: str, now: datetime, secret_key: str | None
) -> OrgVersion:
    """Store a validated org as the one in force (atomic with the caller's transaction).

    Recusals that name a reporter are stored as keyed hashes of the name (``secret_key``), never
    as the name; an org with such recusals cannot be stored without the key.
    """
    if secret_key is None:
        if any(r.reporter for s in org.staff for r in s.recusals):
            raise ConfigError("recusals naming a reporter need the secret key to be stored (hashed)")
    else:
        org = org.with_hashed_reporters(lambda name: person_key(secret_key, name))
    version = OrgVersion(
        loaded_at=now,
        source_name=source_name,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        document=org.model_dump(mode="json", exclude_none=True),
    )
    session.add(version)
    session.flush()
    return version


def current_org(session: Session) -> tuple[int, Org] | None:
    """The newest loaded org, parsed once per process per version."""
    newest = session.exec(
        select(OrgVersion.id, OrgVersion.sha256).order_by(col(OrgVersion.id).desc()).limit(1)
    ).first()
    if newest is None or newest[0] is None:
        return None
    key = (newest[0], newest[1])
    with _cache_lock:
        org = _cache.get(key)
    if org is None:
        row = session.get(OrgVersion, key[0])
        assert row is not None
        org = Org.model_validate(row.document)
        with _cache_lock:
            if len(_cache) > 8:
                _cache.clear()
            _cache[key] = org
    return key[0], org


def org_in_force(session: Session) -> Org | None:
    """The org in force, or ``None`` before any was loaded."""
    loaded = current_org(session)
    return loaded[1] if loaded is not None else None
