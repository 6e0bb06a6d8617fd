"""Schema migrations (Alembic), callable from the CLI, ``dispatcher up`` and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from dispatcher.db import normalize_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", *, secret_key: str | None = None) -> None:
    """Migrate to ``revision``; with the secret key, also fill in what only the key can compute
    (the keyed subject hashes of events stored before revision 0004)."""
    command.upgrade(alembic_config(url), revision)
    if secret_key is not None:
        from dispatcher.db import get_engine, unit_of_work
        from dispatcher.intake.register import backfill_subject_keys

        with unit_of_work(get_engine(url)) as session:
            backfill_subject_keys(session, secret_key)
