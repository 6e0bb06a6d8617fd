"""Processes: ``up`` (everything, supervised), ``api``, ``worker``, ``scheduler``."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dispatcher.cli.common import broker_shown, masked_url, session, settings
from dispatcher.errors import ConfigError
from dispatcher.logs import route_uvicorn_logs, setup_logging
from dispatcher.settings import Settings

out = Console(highlight=False, soft_wrap=True, markup=False)

#: Org file loaded by ``up`` when none is loaded yet and ``DISPATCH_ORG_FILE`` is unset.
EXAMPLE_ORG = Path("examples/org.yaml")


def api(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    access_log: Annotated[
        bool,
        typer.Option("--access-log", help="one log line per request (JSON when DISPATCH_LOG_FORMAT=json)"),
    ] = False,
) -> None:
    """The HTTP API (one process)."""
    import uvicorn

    from dispatcher.http.app import create_app
    from dispatcher.http.state import build_services

    cfg = settings()
    setup_logging(cfg)
    route_uvicorn_logs(access_log=access_log)  # uvicorn's lines in our format (log_config=None below)
    services = build_services(cfg)  # a bad policy file is one line here, not a failed startup
    # X-Forwarded-For / -Proto are believed only from the proxies named in TRUSTED_PROXIES (none by
    # default): otherwise anyone could pick the address the login throttle counts.
    trusted = ",".join(services.settings.proxies)
    uvicorn.run(
        create_app(services=services, watch_alerts=True), host=host, port=port,
        log_config=None, log_level=None, access_log=access_log,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
    )  # fmt: skip


def worker(
    processes: Annotated[int, typer.Option("--processes", "-p", help="worker processes")] = 1,
    threads: Annotated[int, typer.Option("--threads", "-t", help="threads per process")] = 4,
    nice: Annotated[
        int,
        typer.Option(
            help="CPU niceness 0..19: on a machine shared with the API, intake goes first", min=0, max=19
        ),
    ] = 0,
) -> None:
    """dramatiq workers consuming the routing, notify and supervision queues (replaces this process)."""
    from dispatcher.bootstrap import policy_for
    from workers.broker import prometheus_env
    from workers.names import ALL_QUEUES

    cfg = settings()
    policy_for(cfg)  # refuse a bad policy file here, in one line, before dramatiq starts
    if cfg.embedded_redis and not cfg.redis_socket.exists():
        raise ConfigError(
            f"the embedded Redis is not running (no socket at {cfg.redis_socket}): "
            "start everything with `dispatcher up`, or set DISPATCH_REDIS_URL"
        )
    env = dict(os.environ)
    if cfg.worker_metrics_port:
        env.update(prometheus_env(cfg))
    # JSON logs: dramatiq's supervising process formats its own lines too (workers.run)
    cli = "workers.run" if cfg.log_format == "json" else "dramatiq"
    argv = [sys.executable, "-m", cli, "workers.main", "--processes", str(processes),
            "--threads", str(threads), "--queues", *ALL_QUEUES]  # fmt: skip
    if nice:
        lower_priority(nice)
    os.execve(sys.executable, argv, env)


def lower_priority(nice: int) -> None:
    """Yield the CPU to the API when both want it (issue 13): routing is asynchronous by design,
    intake answers upstream systems. Sets this process's niceness (its workers inherit it) and,
    where the kernel groups processes by session (autogroup), the session's, without which a
    niceness counts only against processes of the same session."""
    os.nice(nice)
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(nice))


def scheduler() -> None:
    """Periodic jobs: outbox relay, deadline sweep, webhook relay, feedback expiry."""
    from schedules.main import run

    cfg = settings()
    setup_logging(cfg)
    run(cfg)


def prepare(cfg: Settings, *, org_file: Path | None) -> None:
    """Migrate, and load an org on first start so the system routes out of the box."""
    from dispatcher.migrate import upgrade
    from dispatcher.org.loader import load_org_file
    from dispatcher.org.store import org_in_force, save_org
    from dispatcher.wallclock import utcnow

    upgrade(cfg.resolved_database_url, secret_key=cfg.resolved_secret_key)
    with session(cfg) as s:
        if org_in_force(s) is None and org_file is not None and org_file.exists():
            org = load_org_file(org_file)
            text = org_file.read_text(encoding="utf-8")
            save_org(
                s, org, source_name=str(org_file), text=text, now=utcnow(), secret_key=cfg.resolved_secret_key
            )
            out.print(f"loaded org from {org_file}")


def first_admin(cfg: Settings) -> tuple[str, str, str] | None:
    """On a system with no users, create ``admin`` and return (login, password, token) once."""
    from sqlmodel import select

    from dispatcher.accounts.registry import add_user
    from dispatcher.models import User
    from dispatcher.org.store import org_in_force
    from dispatcher.wallclock import utcnow

    with session(cfg) as s:
        if s.exec(select(User.id)).first() is not None:
            return None
        org = org_in_force(s)
        if org is None:
            return None
        admins = [st for st in org.staff if "admin" in st.roles]
        unit = admins[0].unit if admins else org.commission.clue_verifier
        user, token, password = add_user(s, login="admin", unit=unit, role="admin", org=org, now=utcnow())
        return user.login, password, token


def up(
    host: Annotated[str, typer.Option(help="API bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    worker_nice: Annotated[
        int,
        typer.Option(
            help="the workers' CPU niceness (0..19): when both are busy, the API goes first", min=0, max=19
        ),
    ] = 0,
) -> None:
    """Everything on one machine: migrations, embedded Redis, API, workers, scheduler."""
    from dispatcher.bootstrap import policy_for
    from dispatcher.cli.launcher import Child, Launcher, python_child, redis_server_argv, wait_for_redis
    from dispatcher.supervision.policy import calendar_warning
    from dispatcher.wallclock import utcnow

    cfg = settings()
    setup_logging(cfg)
    policy = policy_for(cfg)  # a bad policy file stops here, before any child starts
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    data = cfg.data_dir.resolve()
    env = dict(os.environ, DISPATCH_DATA_DIR=str(data))
    _ = cfg.resolved_secret_key  # generate it once, before the children race for it
    prepare(cfg, org_file=cfg.org_file or (EXAMPLE_ORG if EXAMPLE_ORG.exists() else None))
    admin = first_admin(cfg)

    logs = data / "logs"
    logs.mkdir(exist_ok=True)
    children = []
    if cfg.embedded_redis:
        if cfg.redis_socket.exists():
            cfg.redis_socket.unlink()
        children.append(
            Child(
                name="redis",
                argv=redis_server_argv(cfg),
                env=env,
                log_file=logs / "redis.log",
                wait_ready=lambda: wait_for_redis(cfg.resolved_redis_url),
            )
        )
    children += [
        python_child("api", ["api", "--host", host, "--port", str(port)], env, log_file=logs / "api.log"),
        python_child(
            "worker",
            ["worker", "--processes", str(workers), "--nice", str(worker_nice)],
            env,
            log_file=logs / "worker.log",
            stop_timeout=20.0,
        ),
        python_child("scheduler", ["scheduler"], env, log_file=logs / "scheduler.log"),
    ]

    def ready() -> None:
        base = f"http://{host}:{port}"
        out.print(f"\nZone Dispatch is up (data in {data}, logs in {logs})", style="bold")
        out.print(f"  staff inbox: {base}/  (log in at {base}/login)")
        out.print(f"  API docs:   {base}/docs")
        out.print(f"  health:     {base}/healthz   readiness: {base}/readyz")
        out.print(f"  database:   {masked_url(cfg.resolved_database_url)}\n  broker:     {broker_shown(cfg)}")
        if admin:
            login, password, token = admin
            out.print(f"  first login: user {login}, password {password} (shown once)", style="bold")
            out.print(f"  admin API token: {token}")
        else:
            out.print("  log in with a user made by `dispatcher user add LOGIN --unit CODE --role ROLE`")
        out.print(f"  try:        .venv/bin/dispatcher demo --events 200 --url {base}")
        out.print("  stop:       Ctrl-C\n")
        warning = calendar_warning(policy, utcnow().astimezone(policy.tz).date())
        if warning:
            out.print(f"  ⚠ {warning}\n", style="bold red")

    raise typer.Exit(Launcher(children, on_ready=ready).run())


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(api)
    app.command()(worker)
    app.command()(scheduler)
