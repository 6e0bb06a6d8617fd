"""The configuration reference: generated from the settings class, kept in docs/OPERATIONS.md, and
``dispatcher config --check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.cli.common import masked_url
from dispatcher.cli.config import documented_table, reference_table
from dispatcher.settings import Settings
from tests.support import ROOT, child_env

DOC = ROOT / "docs" / "OPERATIONS.md"


def test_the_operations_doc_holds_the_reference_generated_from_the_settings() -> None:
    documented = documented_table(DOC.read_text(encoding="utf-8"))
    assert documented is not None, f"{DOC} lacks the config-reference:start / :end markers"
    assert documented == reference_table(), (
        "docs/OPERATIONS.md's configuration reference differs from the settings class: regenerate it "
        "with `.venv/bin/dispatcher config` and put its output between the "
        "<!-- config-reference:start --> and <!-- config-reference:end --> lines of docs/OPERATIONS.md"
    )


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"give these settings a Field(description=...): {missing}"


def test_the_reference_has_one_row_per_setting_with_its_variable_type_and_default() -> None:
    rows = reference_table().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [
        f"| `DISPATCH_{name.upper()}`" for name in Settings.model_fields
    ]
    by_variable = {row.split(" | ")[0][3:-1]: row.split(" | ") for row in rows}
    assert by_variable["DISPATCH_LOG_FORMAT"][1:3] == ["`text`, `json`", "`text`"]
    assert by_variable["DISPATCH_ENV"][1:3] == ["`development`, `production`", "`development`"]
    assert by_variable["DISPATCH_WEBHOOK_MAX_ATTEMPTS"][1:3] == ["integer (1 … 50)", "`6`"]
    assert by_variable["DISPATCH_RELAY_AFTER_SECONDS"][1] == "number (> 0)"
    assert by_variable["DISPATCH_DATABASE_URL"][1:3] == ["text, optional", "unset"]
    assert by_variable["DISPATCH_DATA_DIR"][2] == "`./var`"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://dispatch:s3cret@db:5432/dispatch", "postgresql://dispatch:***@db:5432/dispatch"),
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("sqlite:////srv/dispatch/var/dispatch.sqlite3", "sqlite:////srv/dispatch/var/dispatch.sqlite3"),
        # as the database driver reads them: not as urllib would (it finds no password in these)
        ("postgresql://u:pa/ss@db/dispatch", "postgresql://u:***@db/dispatch"),
        ("postgresql://u:p#ss@db/dispatch", "postgresql://u:***@db/dispatch"),
        (
            "postgresql://u@[::1]:5432/dispatch?password=s3cret",
            "postgresql://u@[::1]:5432/dispatch?password=***",
        ),
        ("not a url", "(not a URL; not shown)"),
    ],
)
def test_urls_are_shown_with_their_password_masked(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def _config_check(**env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dispatcher", "config", "--check"]
    return subprocess.run(argv, env=child_env(**env), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_config_check_prints_ok_with_the_database_and_redis_passwords_masked(tmp_path: Path) -> None:
    done = _config_check(
        DISPATCH_DATA_DIR=str(tmp_path),
        DISPATCH_DATABASE_URL="postgresql://dispatch:s3cret@db:5432/dispatch",
        DISPATCH_REDIS_URL="redis://:s3cret@redis:6379/0",
        DISPATCH_LOG_FORMAT="json",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok\n")
    assert "postgresql://dispatch:***@db:5432/dispatch" in done.stdout
    assert "redis://:***@redis:6379/0" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


def test_config_check_fails_with_one_readable_line_on_an_invalid_setting(tmp_path: Path) -> None:
    done = _config_check(DISPATCH_DATA_DIR=str(tmp_path), DISPATCH_ENV="production")
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "DISPATCH_SECRET_KEY" in line
