"""inbox: covering indexes for its counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 23:30:00

Additive: three btree indexes the inbox's counts read without touching the table (each way a
person sees tasks — their zones, their unit as handler, as verifier — counted apart, see
``tasks.queries.state_tally``), and on PostgreSQL two trigram indexes for the JSON lists of
assisting units and people, which ``access.visibility`` matches with ``LIKE '%"code"%'``, and
for searches by a word of one or two characters (which have no trigram) an immutable function
``zd_short_grams(text)`` — the distinct characters and pairs of characters of a text — with a GIN
index on ``zd_short_grams(lower(summary))``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = {
    "ix_tasks_zone_count": ["zone_code", "status", "handler_unit"],
    "ix_tasks_handler_count": ["handler_unit", "status", "zone_code"],
    "ix_tasks_verifier_count": ["verifier_unit", "status", "handler_unit", "zone_code"],
}
#: PostgreSQL only (pg_trgm came with 0006): the text of a JSON list, as ``CAST(... AS VARCHAR)``.
ASSISTING = {
    "ix_tasks_assisting_units_trgm": "assisting_units",
    "ix_tasks_assisting_logins_trgm": "assisting_logins",
}


SHORT_GRAMS = """
CREATE OR REPLACE FUNCTION zd_short_grams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT COALESCE(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr($1, i, 1) AS g FROM generate_series(1, char_length($1)) AS i
    UNION ALL
    SELECT substr($1, i, 2) FROM generate_series(1, char_length($1) - 1) AS i
  ) AS grams
$$
"""


def upgrade() -> None:
    for name, columns in COUNTS.items():
        op.create_index(name, "tasks", columns)
    if op.get_bind().dialect.name == "postgresql":
        for name, column in ASSISTING.items():
            op.execute(f"CREATE INDEX {name} ON tasks USING gin ((CAST({column} AS VARCHAR)) gin_trgm_ops)")
        op.execute(SHORT_GRAMS)
        op.execute("CREATE INDEX ix_tasks_summary_grams ON tasks USING gin (zd_short_grams(lower(summary)))")


def downgrade() -> None:
    for name in ("ix_tasks_summary_grams", *ASSISTING, *COUNTS):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS zd_short_grams(text)")
