"""Administration: ``db``, ``org``, ``source``, ``user``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dispatcher.accounts import registry as accounts
from dispatcher.cli.common import session, settings
from dispatcher.enums import Role
from dispatcher.errors import ConfigError, ValidationFailed
from dispatcher.org.loader import check_org_text
from dispatcher.org.store import org_in_force, save_org
from dispatcher.wallclock import utcnow
from dispatcher.yamlfile import read_checked

out = Console(highlight=False, soft_wrap=True, markup=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
org_app = typer.Typer(help="Org directory (zones, units, townships, staff).", no_args_is_help=True)
policy_app = typer.Typer(help="Time-limit policy (clocks, escalation, calendar).", no_args_is_help=True)
source_app = typer.Typer(help="Upstream systems that publish events.", no_args_is_help=True)
user_app = typer.Typer(help="Staff users.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (creates the database on first run)."""
    from dispatcher.migrate import upgrade

    cfg = settings()
    upgrade(cfg.resolved_database_url, secret_key=cfg.resolved_secret_key)
    out.print("database is up to date")


_SECRET_NOTE = (
    " The backup holds personal data encrypted with DISPATCH_SECRET_KEY: a restored database cannot be read"
    " without that key, so keep the key safe and apart from the backups (docs/BACKUP-AND-UPGRADE.md)."
)
_BACKUP_HELP = (
    "Back up the database to FILE while the system runs: SQLite's online backup API (one consistent file,"
    " WAL included) or `pg_dump --format=custom` (client tools on PATH; connection settings passed in the"
    " environment)." + _SECRET_NOTE
)
_RESTORE_HELP = (
    "Replace the database by the backup in FILE (stop the API, workers and schedulers first). Refuses a"
    " database that holds rows unless --force; a damaged file changes nothing." + _SECRET_NOTE
)
_FORCE = typer.Option("--force", help="overwrite the file / replace a non-empty database")


@db_app.command("backup", help=_BACKUP_HELP)
def db_backup(
    file: Annotated[Path, typer.Argument(help="the backup file to write")],
    force: Annotated[bool, _FORCE] = False,
) -> None:
    from dispatcher.backup import backup

    summary = backup(settings().resolved_database_url, file, force=force)
    out.print(f"backed up to {file}: {summary.describe()}")
    out.print("keep DISPATCH_SECRET_KEY apart from this file: the backup cannot be read without it")


@db_app.command("restore", help=_RESTORE_HELP)
def db_restore(
    file: Annotated[Path, typer.Argument(help="a file written by `dispatcher db backup`")],
    force: Annotated[bool, _FORCE] = False,
) -> None:
    from dispatcher.backup import restore

    summary = restore(settings().resolved_database_url, file, force=force)
    out.print(f"restored {file}: {summary.describe()}")
    if summary.behind:
        out.print("the backup's schema is older than the code's: run `dispatcher db upgrade` before starting")
    elif not summary.known:
        out.print(f"revision {summary.revision} is unknown to this code: use the release that wrote it")


def _read_org(file: Path) -> tuple[Any, str]:
    return read_checked(file, check_org_text)


@org_app.command("check")
def org_check(file: Annotated[Path, typer.Argument(help="org YAML file")]) -> None:
    """Validate an org file; every problem is printed with file, line and field."""
    org, _ = _read_org(file)
    out.print(f"{file}: ok ({_summary(org)})")


@org_app.command("load")
def org_load(file: Annotated[Path, typer.Argument(help="org YAML file")]) -> None:
    """Validate and apply an org file atomically; an invalid file changes nothing."""
    org, text = _read_org(file)
    cfg = settings()
    with session(cfg) as s:
        version = save_org(
            s, org, source_name=str(file), text=text, now=utcnow(), secret_key=cfg.resolved_secret_key
        )
    out.print(f"loaded {file} as org version {version.id} ({_summary(org)})")


def _summary(org: object) -> str:
    return ", ".join(f"{len(getattr(org, k))} {k}" for k in ("zones", "units", "townships", "staff"))


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="policy YAML file")],
    today: Annotated[
        str | None, typer.Option(help="check the calendar as of this day (YYYY-MM-DD); default: today")
    ] = None,
) -> None:
    """Validate a policy file (file, line, field); warn of years its deadlines reach without a calendar."""
    from datetime import date

    from dispatcher.supervision.policy import calendar_warning, check_policy_text

    policy, _ = read_checked(file, check_policy_text)
    try:
        day = date.fromisoformat(today) if today else utcnow().astimezone(policy.tz).date()
    except ValueError:
        raise ConfigError(f"--today must be a date like 2026-12-01, not {today!r}") from None
    out.print(f"{file}: ok")
    warning = calendar_warning(policy, day)
    if warning:
        out.print(f"warning: {warning}")


@source_app.command("add")
def source_add(
    name: Annotated[str, typer.Argument(help="a short name, e.g. 12345-hotline")],
    kinds: Annotated[str, typer.Option(help="comma-separated: clue,complaint,enterprise_request")],
    rate: Annotated[float | None, typer.Option(help="requests per second (default from settings)")] = None,
    burst: Annotated[int | None, typer.Option(help="burst size (default from settings)")] = None,
) -> None:
    """Register an upstream system; its token is printed once, on the last line."""
    cfg = settings()
    with session(cfg) as s:
        source, token = accounts.add_source(
            s,
            name=name,
            kinds=accounts.parse_kinds(kinds),
            rate=rate or cfg.source_rate,
            burst=burst or cfg.source_burst,
            now=utcnow(),
        )
    out.print(f"source {source.name!r} may publish: {source.kinds}. Its token (shown once, stored hashed):")
    print(token)


@user_app.command("add")
def user_add(
    login: Annotated[str, typer.Argument()],
    unit: Annotated[str, typer.Option(help="unit code from the org file")],
    role: Annotated[str, typer.Option("--role", "--roles", help="one or more of " + ",".join(Role))],
) -> None:
    """Create a staff user (one or more roles, comma separated); its first web password and API
    token are printed once (token last)."""
    with session() as s:
        user, token, password = accounts.add_user(s, login=login, unit=unit, roles=role, org=org_in_force(s),
                                                  now=utcnow())  # fmt: skip
    out.print(f"user {user.login!r} ({', '.join(user.roles)} of {user.unit_code}) created.")
    out.print(f"first web password (shown once): {password}")
    out.print("API token (shown once, stored hashed):")
    print(token)


@user_app.command("list")
def user_list() -> None:
    """Every user: login, name in the org, unit, roles, active."""
    with session() as s:
        users = accounts.list_users(s)
        org = org_in_force(s)
    names = {p.login: p.name for p in org.staff} if org is not None else {}
    table = Table(box=None, pad_edge=False)
    for column in ("login", "name", "unit", "roles", "active"):
        table.add_column(column, no_wrap=column != "roles", overflow="fold")
    for u in users:
        roles = ",".join(u.roles or [u.role])
        table.add_row(u.login, names.get(u.login, ""), u.unit_code, roles, "yes" if u.active else "no")
    out.print(table)
    out.print(f"{len(users)} user(s)")


@user_app.command("role")
def user_role(
    login: Annotated[str, typer.Argument()],
    roles: Annotated[
        str, typer.Argument(help="the roles the person holds, comma separated: " + ",".join(Role))
    ],
) -> None:
    """Give a user exactly these roles (a zone leader who also verifies: zone_leader,verifier)."""
    with session() as s:
        user = accounts.set_roles(s, login, roles)
    out.print(f"user {login!r} now holds: {', '.join(user.roles)}")


@user_app.command("password")
def user_password(login: Annotated[str, typer.Argument()]) -> None:
    """A new web password for a user, printed once; their open web sessions end."""
    with session() as s:
        password = accounts.reset_password(s, login)
    out.print(f"new web password for {login!r} (shown once; their web sessions have ended):")
    print(password)


@user_app.command("disable")
def user_disable(
    login: Annotated[str, typer.Argument()],
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
) -> None:
    """Disable a user (token, sessions and login stop working at once), or enable them again."""
    with session() as s:
        accounts.set_active(s, login, enable)
    out.print(f"user {login!r} {'enabled' if enable else 'disabled'}")


@user_app.command("add-org-staff")
def user_add_org_staff() -> None:
    """Create a user for every staff member of the org in force who has none yet, with the roles
    the org gives them; prints each first password once (the table is the only copy)."""
    with session() as s:
        org = org_in_force(s)
        if org is None:
            raise ValidationFailed("no org is loaded yet: run `dispatcher org load FILE` first")
        made = []
        for login, unit, roles in accounts.staff_without_login(s, org):
            _, _, password = accounts.add_user(s, login=login, unit=unit, roles=roles, org=org, now=utcnow())
            made.append((login, unit, ",".join(roles), password))
    table = Table(box=None, pad_edge=False)
    for column in ("login", "unit", "roles", "first password (shown once)"):
        table.add_column(column, no_wrap=True)
    for row in made:
        table.add_row(*row)
    out.print(table)
    out.print(
        f"{len(made)} user(s) created; give each their password in person. API tokens: `dispatcher user add`."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(org_app, name="org")
    app.add_typer(policy_app, name="policy")
    app.add_typer(source_app, name="source")
    app.add_typer(user_app, name="user")
