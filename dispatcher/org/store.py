"""The org in force lives in the database (``org_versions``); every process reads the newest."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime

from sqlmodel import Session, select

from dispatcher.models import OrgVersion
from dispatcher.org.model import Org

_cache: dict[int, Org] = {}
_cache_lock = threading.Lock()


def save_org(session: Session, org: Org, *, source_name: str, text: str, now: datetime) -> OrgVersion:
    """Store a validated org as the one in force (atomic with the caller's transaction)."""
    version = OrgVersion(
        loaded_at=now,
        source_name=source_name,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        document=org.model_dump(mode="json"),
    )
    session.add(version)
    session.flush()
    return version


def current_org(session: Session) -> tuple[int, Org] | None:
    """The newest loaded org, parsed once per process per version."""
    newest = session.exec(select(OrgVersion.id).order_by(OrgVersion.id.desc()).limit(1)).first()  # type: ignore[union-attr]
    if newest is None:
        return None
    with _cache_lock:
        org = _cache.get(newest)
    if org is None:
        row = session.get(OrgVersion, newest)
        assert row is not None
        org = Org.model_validate(row.document)
        with _cache_lock:
            _cache.clear()
            _cache[newest] = org
    return newest, org
