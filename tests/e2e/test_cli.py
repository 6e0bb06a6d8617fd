"""The ``dispatcher`` command line as users script it: output shapes and exit codes (DESIGN §9).

Commands that touch the database run on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from dispatcher.db import unit_of_work
from dispatcher.models import Event, OrgVersion, Source, User
from tests import factories
from tests.conftest import EXAMPLE_ORG
from tests.e2e.conftest import e2e_env, last_line, run_cli

pytestmark = pytest.mark.e2e

PROBLEM = re.compile(r"^(?P<file>\S+):(?P<line>\d+): (?P<field>\S+): (?P<message>.+)$")


def broken_org(directory: Path, name: str = "broken.yaml") -> tuple[Path, list[int]]:
    """examples/org.yaml with two units of an unknown kind; returns the file and those lines."""
    lines = EXAMPLE_ORG.read_text(encoding="utf-8").split("\n")
    rooms = [i for i, line in enumerate(lines) if line.strip() == "kind: room"][:2]
    for i, bad in zip(rooms, ("castle", "palace"), strict=True):
        lines[i] = lines[i].replace("room", bad)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, [i + 1 for i in rooms]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """For commands that need no database (they would otherwise default to DATA_DIR's SQLite)."""
    return e2e_env(tmp_path / "data")


@pytest.fixture
def db_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return e2e_env(tmp_path / "data", DISPATCH_DATABASE_URL=database_url)


def test_org_check_prints_file_line_field_message_and_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    path, bad_lines = broken_org(tmp_path)
    r = run_cli("org", "check", str(path), env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    problems = [PROBLEM.match(line) for line in r.stdout.splitlines() if line.strip()]
    assert problems and all(problems), r.stdout
    assert [(m["file"], int(m["line"])) for m in problems] == [(str(path), n) for n in bad_lines]  # type: ignore[index]
    assert [m["field"] for m in problems] == ["units[4].kind", "units[5].kind"]  # type: ignore[index]
    assert "nothing was changed" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stdout + r.stderr

    ok = run_cli("org", "check", str(EXAMPLE_ORG), env=env)
    assert ok.returncode == 0 and ": ok (" in ok.stdout, ok.stdout + ok.stderr


def test_org_check_names_a_file_whose_path_has_brackets(tmp_path: Path, env: dict[str, str]) -> None:
    path, _ = broken_org(tmp_path / "[red]")
    r = run_cli("org", "check", str(path), env=env)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith(f"{path}:"), r.stdout
    assert str(path) in r.stderr, r.stderr


def test_org_load_of_a_broken_file_changes_nothing(
    tmp_path: Path, db_env: dict[str, str], engine: sa.Engine
) -> None:
    r = run_cli("org", "load", str(EXAMPLE_ORG), env=db_env)
    assert r.returncode == 0 and "as org version" in r.stdout, r.stdout + r.stderr

    def snapshot() -> list[tuple[int, str, str]]:
        with unit_of_work(engine) as s:
            return [(v.id, v.sha256, v.source_name) for v in s.exec(select(OrgVersion)).all()]  # type: ignore[misc]

    before = snapshot()
    assert len(before) == 1
    path, _ = broken_org(tmp_path)
    r = run_cli("org", "load", str(path), env=db_env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert all(PROBLEM.match(line) for line in r.stdout.splitlines() if line.strip()), r.stdout
    assert "nothing was changed" in r.stderr and "Traceback" not in r.stderr
    assert snapshot() == before


def test_source_and_user_add_print_the_token_alone_on_the_last_line(
    db_env: dict[str, str], engine: sa.Engine, loaded_org: object
) -> None:
    r = run_cli("source", "add", "hotline-12345", "--kinds", "complaint", env=db_env)
    assert r.returncode == 0, r.stdout + r.stderr
    token = last_line(r.stdout)
    assert re.fullmatch(r"\S{20,}", token), r.stdout
    assert r.stdout.count(token) == 1
    with unit_of_work(engine) as s:
        source = s.exec(select(Source).where(Source.name == "hotline-12345")).one()
        row = json.dumps(source.model_dump(mode="json"))
    assert source.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert source.kinds == "complaint"
    assert token not in row  # only the hash is stored

    again = run_cli("source", "add", "hotline-12345", "--kinds", "complaint", env=db_env)
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr

    r = run_cli("user", "add", "li.ming", "--unit", "DXZ-JW", "--role", "handler", env=db_env)
    assert r.returncode == 0, r.stdout + r.stderr
    token = last_line(r.stdout)
    assert re.fullmatch(r"\S{20,}", token) and "password" not in token, r.stdout
    with unit_of_work(engine) as s:
        user = s.exec(select(User).where(User.login == "li.ming")).one()
    assert user.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (user.unit_code, user.role) == ("DXZ-JW", "handler")


def test_user_list_role_password_disable_and_the_orgs_staff_at_once(
    db_env: dict[str, str], engine: sa.Engine, loaded_org: object
) -> None:
    made = run_cli("user", "add-org-staff", env=dict(db_env, COLUMNS="200"))
    assert made.returncode == 0 and "61 user(s) created" in made.stdout, made.stdout + made.stderr
    again = run_cli("user", "add-org-staff", env=db_env)
    assert "0 user(s) created" in again.stdout
    role = run_cli("user", "role", "fang.liqun", "zone_leader,verifier", env=db_env)
    assert role.returncode == 0 and "zone_leader, verifier" in role.stdout
    listed = run_cli("user", "list", env=dict(db_env, COLUMNS="200"))
    row = r"fang\.liqun\s+方立群\s+SHI1\s+zone_leader,verifier\s+yes"
    assert re.search(row, listed.stdout), listed.stdout
    password = run_cli("user", "password", "fang.liqun", env=db_env)
    assert password.returncode == 0 and len(last_line(password.stdout)) >= 12
    assert run_cli("user", "disable", "fang.liqun", env=db_env).returncode == 0
    assert re.search(r"fang\.liqun.*\bno\b", run_cli("user", "list", env=dict(db_env, COLUMNS="200")).stdout)
    unknown = run_cli("user", "role", "nobody", "handler", env=db_env)
    assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr
    bad = run_cli("user", "role", "fang.liqun", "emperor", env=db_env)
    assert bad.returncode == 1 and "roles must be" in bad.stderr


def test_user_add_with_an_unknown_unit_is_one_line_exit_1(
    db_env: dict[str, str], engine: sa.Engine, loaded_org: object
) -> None:
    r = run_cli("user", "add", "nobody", "--unit", "NO-SUCH-UNIT", "--role", "handler", env=db_env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "NO-SUCH-UNIT" in lines[0] and lines[0].startswith("error:"), r.stderr
    with unit_of_work(engine) as s:
        assert s.exec(select(func.count()).select_from(User)).one() == 0


@pytest.mark.parametrize(
    "args",
    [
        ("tasks", "--no-such-option"),
        ("source", "add", "x"),  # --kinds is required
        ("publish",),  # FILE is required
        ("demo", "--events", "0"),  # below the minimum
        ("no-such-command",),
    ],
    ids=["unknown-option", "missing-option", "missing-argument", "out-of-range", "unknown-command"],
)
def test_bad_usage_exits_2_without_a_traceback(env: dict[str, str], args: tuple[str, ...]) -> None:
    r = run_cli(*args, env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr


def test_publish_imports_a_jsonl_file_and_names_bad_lines(
    tmp_path: Path,
    database_url: str,
    db_env: dict[str, str],
    engine: sa.Engine,
    loaded_org: object,
    redis_url: str,
    broker_namespace: str,
    make_stack,
) -> None:
    stack = make_stack(dict(db_env, DISPATCH_REDIS_URL=redis_url, DISPATCH_BROKER_NAMESPACE=broker_namespace))
    stack.api()
    r = run_cli("source", "add", "importer", "--kinds", "complaint,enterprise_request", env=db_env)
    assert r.returncode == 0, r.stderr
    token = last_line(r.stdout)

    tag = uuid.uuid4().hex[:8]
    bad_schema = factories.complaint(f"{tag}-bad")
    del bad_schema["payload"]["summary"]
    lines = [
        json.dumps(factories.complaint(f"{tag}-1"), ensure_ascii=False),  # 1
        json.dumps(factories.enterprise_request(f"{tag}-2"), ensure_ascii=False),  # 2
        '{"kind": "complaint", "external_id": ',  # 3: malformed JSON
        "",  # 4: blank lines are skipped
        json.dumps(factories.complaint(f"{tag}-5"), ensure_ascii=False),  # 5
        json.dumps(bad_schema, ensure_ascii=False),  # 6: refused by the API (invalid)
        json.dumps(factories.clue(f"{tag}-7"), ensure_ascii=False),  # 7: refused (kind not allowed)
        json.dumps(factories.complaint(f"{tag}-8"), ensure_ascii=False),  # 8
    ]
    file = tmp_path / "events.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    r = run_cli("publish", str(file), "--url", stack.url, "--token", token, env=db_env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    reported = {int(m[1]) for m in re.finditer(rf"^{re.escape(str(file))}:(\d+): ", r.stdout, re.M)}
    assert reported == {3, 6, 7}, r.stdout
    assert re.search(rf"^{re.escape(str(file))}:3: malformed JSON", r.stdout, re.M), r.stdout
    assert "4 new, 0 duplicate, 3 refused" in r.stdout, r.stdout
    with unit_of_work(engine) as s:
        stored = set(s.exec(select(Event.external_id)).all())
    assert stored == {f"{tag}-1", f"{tag}-2", f"{tag}-5", f"{tag}-8"}

    # Retrying the same file is safe: the good lines are duplicates, nothing is stored twice.
    r = run_cli("publish", str(file), "--url", stack.url, "--token", token, env=db_env)
    assert r.returncode == 1 and "0 new, 4 duplicate, 3 refused" in r.stdout, r.stdout
    with unit_of_work(engine) as s:
        assert s.exec(select(func.count()).select_from(Event)).one() == 4

    # A clean file exits 0.
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps(factories.complaint(f"{tag}-9"), ensure_ascii=False) + "\n", encoding="utf-8")
    r = run_cli("publish", str(clean), "--url", stack.url, "--token", token, env=db_env)
    assert r.returncode == 0 and "1 new, 0 duplicate, 0 refused" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(
    "setting",
    [{}, {"DISPATCH_DATABASE_URL": "nonsense://x"}],
    ids=["database-not-migrated", "unsupported-database-url"],
)
def test_database_problems_are_one_line_exit_1(env: dict[str, str], setting: dict[str, str]) -> None:
    r = run_cli("tasks", env=dict(env, **setting))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
