"""docker-compose.yml and .env.example against the code (issue 12): no Docker engine runs here, so
the file is read, not run.

Every ``dispatcher ...`` command (a service's or a health check's) must parse with the CLI's own
click commands; every ``DISPATCH_*`` variable, anchors and merge keys resolved, must be a field of
``Settings`` and the whole environment must validate in production; every health check that asks
HTTP must ask a real route on the port its service listens on; dependencies, the migration step,
volumes, restart policies and the reverse proxy in front of the API replicas must hold together.
The checks return readable problems, so the parametrized cases at the end feed them broken copies
of the real file and prove that each defect is caught.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shlex
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from starlette.routing import Match

from dispatcher.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

#: Tools a health check may run besides ``dispatcher`` (in our image: python; in the official
#: nginx, redis and postgres images: their own clients and busybox's wget).
STANDARD_TOOLS = frozenset({"python", "python3", "wget", "curl", "pg_isready", "redis-cli", "nc"})
#: App routes a health check may ask: real routes that need no token (``/metrics`` answers 401
#: without an oncall or admin token, so a check on it would always fail).
OPEN_HEALTH_ROUTES = frozenset({"/healthz", "/readyz"})
#: The worker's port serves dramatiq's Prometheus exposition server, not the app: that path only.
DRAMATIQ_METRICS_PATH = "/metrics"
LONG_RUNNING_RESTARTS = frozenset({"always", "unless-stopped", "on-failure"})
ONE_OFF_RESTARTS = frozenset({"no", "on-failure"})
DEPENDS_ON_CONDITIONS = frozenset({"service_started", "service_healthy", "service_completed_successfully"})
MIGRATION = ("dispatcher", "db", "upgrade")

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_URL = re.compile(r"https?://(?P<host>[^/:'\"\s]+)(?::(?P<port>\d+))?(?P<path>/[^'\"\s?#]*)?")


# --- reading ---------------------------------------------------------------------------------


def read_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of a Compose ``.env`` file (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose's ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` (and the
    forms without the colon)."""

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["named"]
        value, op, arg = values.get(name), m["op"] or "", m["arg"] or ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-") and unset:
            return arg
        if op.endswith("?") and unset:
            raise ValueError(f"{name} is required: {arg}")
        return value or ""

    return _INTERPOLATION.sub(one, text)


def interpolated_names(node: Any) -> set[str]:
    """Every variable the file takes from the environment (``$$`` is a literal dollar)."""
    return {
        m["braced"] or m["named"]
        for s in _strings(node)
        for m in _INTERPOLATION.finditer(s)
        if not m["escaped"]
    }


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def dispatch_names(node: Any) -> set[str]:
    """``DISPATCH_*`` variables set anywhere: mapping keys and ``KEY=VALUE`` list items."""
    found = set()
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("DISPATCH_"):
                found.add(key)
            found |= dispatch_names(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and re.match(r"DISPATCH_\w+=", item):
                found.add(item.split("=", 1)[0])
            found |= dispatch_names(item)
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def argv(command: Any) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def healthcheck_argv(service: Mapping[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test")
    if not test or test == ["NONE"]:
        return []
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    return [str(word) for word in (test[1:] if test[0] == "CMD" else test)]


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """Dependency → condition (the list form means ``service_started``)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


# --- what the code offers --------------------------------------------------------------------


@cache
def cli() -> Any:
    """The ``dispatcher`` command as click sees it (typer ships its own click: duck-typed here)."""
    from dispatcher.cli import _register, app

    _register()
    return typer.main.get_command(app)


@cache
def http_app() -> Any:
    from dispatcher.http.app import create_app

    return create_app()  # routes only: services are built at start, which never comes here


def is_route(path: str) -> bool:
    """The app's own matching, as for a GET request."""
    scope = {
        "type": "http",
        "path": path,
        "method": "GET",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return any(route.matches(scope)[0] == Match.FULL for route in http_app().routes)


def parse_cli(words: list[str], where: str) -> tuple[tuple[str, ...], dict[str, Any], list[str]]:
    """The command path (``("dispatcher", "db", "upgrade")``) and parsed options of a ``dispatcher``
    command line, parsed by click itself; or the problems."""
    command = cli()
    path, rest = [words[0]], words[1:]
    while isinstance(getattr(command, "commands", None), dict):  # a group
        if not rest or rest[0].startswith("-"):
            return tuple(path), {}, [f"{where}: `{' '.join(path)}` needs a subcommand"]
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            return tuple(path), {}, [f"{where}: `{' '.join(path)}` has no command {name!r}"]
        path.append(name)
        command = sub
    known = {o for p in command.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}
    unknown = [w.split("=", 1)[0] for w in rest if w.startswith("-") and w.split("=", 1)[0] not in known]
    if unknown:
        return tuple(path), {}, [f"{where}: `{' '.join(path)}` has no option {', '.join(unknown)}"]
    try:
        ctx = command.make_context(" ".join(path), list(rest))
    except (typer.TyperException, typer.Exit) as exc:  # click's usage errors, --help
        return tuple(path), {}, [f"{where}: `{' '.join(words)}`: {exc}"]
    return tuple(path), ctx.params, []


class _ComposeSettings(Settings):
    """``Settings`` from the given values only, never from the test's own environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_of(service: Mapping[str, Any], values: Mapping[str, str]) -> Settings:
    env = {key: interpolate(value, values) for key, value in environment(service).items()}
    fields: dict[str, Any] = {
        key.removeprefix("DISPATCH_").lower(): value
        for key, value in env.items()
        if key.startswith("DISPATCH_")
    }
    return _ComposeSettings(**fields)


# --- the checks ------------------------------------------------------------------------------


class Compose:
    """One parsed compose file and the ``.env`` values it is interpolated with."""

    def __init__(self, text: str, values: Mapping[str, str]) -> None:
        self.doc: dict[str, Any] = yaml.safe_load(text)  # resolves anchors and << merge keys
        self.values = values
        self.services: dict[str, dict[str, Any]] = self.doc.get("services") or {}

    def command(self, name: str) -> list[str]:
        return argv(self.services[name].get("command"))

    def app_services(self) -> list[str]:
        """Services running our program."""
        return [n for n in self.services if self.command(n)[:1] == ["dispatcher"]]

    def runs(self, name: str) -> tuple[tuple[str, ...], dict[str, Any]]:
        words = self.command(name)
        if words[:1] != ["dispatcher"]:
            return (), {}
        path, params, _ = parse_cli(words, name)
        return path, params

    def migrations(self) -> list[str]:
        return [n for n in self.app_services() if self.runs(n)[0] == MIGRATION]

    def proxies(self) -> list[str]:
        return [n for n, s in self.services.items() if str(s.get("image", "")).startswith("nginx")]

    def proxy_config(self, name: str) -> str:
        texts = []
        for ref in self.services[name].get("configs") or []:
            config = (self.doc.get("configs") or {}).get(ref if isinstance(ref, str) else ref["source"], {})
            if "content" in config:
                texts.append(interpolate(config["content"], self.values))
            elif "file" in config:
                texts.append((ROOT / config["file"]).read_text())
        return "\n".join(texts)

    def listeners(self, name: str) -> dict[int, str]:
        """Port → what answers there: ``app`` routes or dramatiq's ``metrics`` server."""
        path, params = self.runs(name)
        if path == ("dispatcher", "api"):
            return {int(params["port"]): "app"} if "port" in params else {}  # unparsable: reported
        if path == ("dispatcher", "worker"):
            try:
                port = settings_of(self.services[name], self.values).worker_metrics_port
            except (ValidationError, ValueError):
                return {}  # reported by the settings check
            return {port: "metrics"} if port else {}
        if name in self.proxies():
            return {int(p): "app" for p in re.findall(r"^\s*listen\s+(\d+)", self.proxy_config(name), re.M)}
        return {}

    def problems(self) -> list[str]:
        return [
            *self.command_problems(),
            *self.setting_name_problems(),
            *self.production_problems(),
            *self.healthcheck_problems(),
            *self.dependency_problems(),
            *self.volume_problems(),
            *self.restart_problems(),
            *self.proxy_problems(),
        ]

    def command_problems(self) -> list[str]:
        return [p for n in self.app_services() for p in parse_cli(self.command(n), n)[2]]

    def setting_name_problems(self) -> list[str]:
        names = dispatch_names(self.doc) | {
            n for n in interpolated_names(self.doc) if n.startswith("DISPATCH_")
        }
        return [
            f"{n} is not a setting (no Settings.{n.removeprefix('DISPATCH_').lower()})"
            for n in sorted(names - known_settings())
        ]

    def production_problems(self) -> list[str]:
        problems = []
        for name in self.app_services():
            try:
                settings = settings_of(self.services[name], self.values)
            except (ValidationError, ValueError) as exc:
                problems.append(f"{name}: its environment does not validate: {exc}")
                continue
            if settings.env != "production":
                problems.append(f"{name}: DISPATCH_ENV is {settings.env!r}, not production")
        return problems

    def healthcheck_problems(self) -> list[str]:
        problems = []
        for name, service in self.services.items():
            words = healthcheck_argv(service)
            if not words:
                continue
            tool = Path(words[0]).name
            if tool == "dispatcher":
                problems += parse_cli(words, f"{name} health check")[2]
            elif tool not in STANDARD_TOOLS:
                problems.append(
                    f"{name}: health check runs {tool!r}, neither `dispatcher` nor a standard tool"
                )
            listening = self.listeners(name)
            for url in _URL.finditer(" ".join(words)):
                host, port, path = url["host"], int(url["port"] or 80), url["path"] or "/"
                where = f"{name}: health check {url[0]}"
                if host not in ("127.0.0.1", "localhost"):
                    problems.append(f"{where} asks {host!r}; a health check runs inside its own container")
                kind = listening.get(port)
                if kind is None:
                    problems.append(
                        f"{where}: nothing listens on port {port} here (listening: {sorted(listening)})"
                    )
                elif kind == "metrics" and path != DRAMATIQ_METRICS_PATH:
                    problems.append(
                        f"{where}: dramatiq's exposition server serves {DRAMATIQ_METRICS_PATH}, not {path}"
                    )
                elif kind == "app" and not is_route(path):
                    problems.append(f"{where}: the app has no route {path}")
                elif kind == "app" and path not in OPEN_HEALTH_ROUTES:
                    problems.append(
                        f"{where}: {path} is not an open health route {sorted(OPEN_HEALTH_ROUTES)}"
                    )
        return problems

    def dependency_problems(self) -> list[str]:
        problems = []
        migrations = self.migrations()
        if len(migrations) != 1:
            problems.append(f"one service must run `{' '.join(MIGRATION)}`, found {migrations}")
        for name, service in self.services.items():
            for dep, condition in depends_on(service).items():
                if dep not in self.services:
                    problems.append(f"{name}: depends on {dep!r}, which is no service")
                if condition not in DEPENDS_ON_CONDITIONS:
                    problems.append(f"{name}: depends on {dep!r} with an unknown condition {condition!r}")
        for name in self.app_services():
            if name in migrations:
                continue
            deps = depends_on(self.services[name])
            for migration in migrations:
                if deps.get(migration) != "service_completed_successfully":
                    problems.append(
                        f"{name}: must wait for {migration!r} with condition service_completed_successfully, "
                        f"has {deps.get(migration)!r}"
                    )
        return problems

    def volume_problems(self) -> list[str]:
        declared = set(self.doc.get("volumes") or {})
        problems = []
        for name, service in self.services.items():
            for volume in service.get("volumes") or []:
                if isinstance(volume, str):
                    source = interpolate(volume, self.values).split(":", 1)[0]
                    named = ":" in volume and not source.startswith(("/", ".", "~"))
                else:
                    source, named = volume.get("source", ""), volume.get("type") == "volume"
                if named and source not in declared:
                    problems.append(f"{name}: volume {source!r} is not declared under the top-level volumes")
        return problems

    def restart_problems(self) -> list[str]:
        problems = []
        for name, service in self.services.items():
            restart = str(service.get("restart", "no"))
            if name in self.migrations():
                if restart not in ONE_OFF_RESTARTS:
                    problems.append(f"{name}: a one-off step must not restart {restart!r}")
            elif restart not in LONG_RUNNING_RESTARTS:
                problems.append(f"{name}: long-running, needs a restart policy, has {restart!r}")
        return problems

    def proxy_problems(self) -> list[str]:
        problems = []
        apis = [n for n in self.app_services() if self.runs(n)[0] == ("dispatcher", "api")]
        for name in self.proxies():
            config = self.proxy_config(name)
            if not re.search(r"resolver\s+127\.0\.0\.11\b", config):
                problems.append(
                    f"{name}: nginx must re-resolve the replicas with Docker's DNS (resolver 127.0.0.11)"
                )
            for upstream, port in re.findall(r"https?://([\w.-]+):(\d+)", config):
                if upstream not in apis:
                    problems.append(f"{name}: proxies to {upstream!r}, which runs no `dispatcher api`")
                elif int(port) not in self.listeners(upstream):
                    problems.append(
                        f"{name}: proxies to {upstream}:{port}, "
                        f"but {upstream} listens on {sorted(self.listeners(upstream))}"
                    )
            listening = self.listeners(name)
            for mapping in self.services[name].get("ports") or []:
                target = int(str(mapping).rsplit(":", 1)[-1].split("/")[0])
                if target not in listening:
                    problems.append(
                        f"{name}: publishes port {target}, but nginx listens on {sorted(listening)}"
                    )
            problems += self._trusted(name, apis)
        for api in apis:
            if self.proxies() and self.services[api].get("ports"):
                problems.append(f"{api}: publishes a port of its own; the proxy is the one way in")
        return problems

    def _trusted(self, proxy: str, apis: list[str]) -> list[str]:
        """The proxy's fixed address is trusted by every API and cannot be handed to another container."""
        problems = []
        networks = self.services[proxy].get("networks") or {}
        addresses = {
            net: spec["ipv4_address"] for net, spec in networks.items() if spec and "ipv4_address" in spec
        }
        if not addresses:
            return [f"{proxy}: needs a fixed ipv4_address so the APIs can trust its X-Forwarded-For"]
        for net, address in addresses.items():
            ip = ipaddress.ip_address(address)
            pools = ((self.doc.get("networks") or {}).get(net) or {}).get("ipam", {}).get("config", [])
            if not any(ip in ipaddress.ip_network(p["subnet"]) for p in pools):
                problems.append(f"{proxy}: {address} is in no declared subnet of network {net!r}")
            if any("ip_range" in p and ip in ipaddress.ip_network(p["ip_range"]) for p in pools):
                problems.append(
                    f"{proxy}: {address} lies in ip_range, where Docker may give it to another container"
                )
            for api in apis:
                try:
                    trusted = settings_of(self.services[api], self.values).proxies
                except (ValidationError, ValueError):
                    continue  # reported by the settings check
                if not any(ip in ipaddress.ip_network(t, strict=False) for t in trusted):
                    problems.append(
                        f"{api}: DISPATCH_TRUSTED_PROXIES {trusted} does not trust the proxy at {address}"
                    )
        return problems


def known_settings() -> set[str]:
    return {f"DISPATCH_{field.upper()}" for field in Settings.model_fields}


def env_example_problems(doc: Mapping[str, Any], text: str) -> list[str]:
    """.env.example lists what the compose file interpolates, knows its settings, and ships no secret
    that production mode would accept."""
    values = read_env_file(text)
    problems = [
        f"{n} is interpolated by the compose file but not in .env.example"
        for n in sorted(interpolated_names(doc) - set(values))
    ]
    problems += [
        f".env.example: {n} is not a setting"
        for n in sorted(n for n in values if n.startswith("DISPATCH_") and n not in known_settings())
    ]
    key = values.get("DISPATCH_SECRET_KEY")
    try:
        _ComposeSettings(
            env="production", secret_key=key, database_url="postgresql://x", redis_url="redis://x"
        )
    except ValidationError:
        pass
    else:
        problems.append(
            ".env.example: DISPATCH_SECRET_KEY must be a placeholder production mode refuses, not a real key"
        )
    return problems


def strong_values() -> dict[str, str]:
    """.env.example with its placeholder secrets replaced, as an operator would."""
    values = read_env_file(ENV_EXAMPLE.read_text())
    values.update(DISPATCH_SECRET_KEY=secrets.token_urlsafe(48), POSTGRES_PASSWORD=secrets.token_urlsafe(24))
    return values


# --- the real file ---------------------------------------------------------------------------


def test_the_compose_file_agrees_with_the_cli_settings_and_routes() -> None:
    problems = Compose(COMPOSE.read_text(), strong_values()).problems()
    assert problems == [], "\n".join(problems)


def test_env_example_lists_every_interpolated_variable_with_placeholder_secrets() -> None:
    problems = env_example_problems(yaml.safe_load(COMPOSE.read_text()), ENV_EXAMPLE.read_text())
    assert problems == [], "\n".join(problems)


def test_the_placeholder_secret_of_env_example_stops_every_app_service() -> None:
    compose = Compose(COMPOSE.read_text(), read_env_file(ENV_EXAMPLE.read_text()))
    for name in compose.app_services():
        with pytest.raises(ValidationError, match="DISPATCH_SECRET_KEY"):
            settings_of(compose.services[name], compose.values)


def test_two_api_replicas_behind_one_port_workers_and_a_standby_scheduler() -> None:
    compose = Compose(COMPOSE.read_text(), strong_values())
    by_command = {compose.runs(n)[0]: n for n in compose.app_services()}
    api, worker, scheduler = (by_command[("dispatcher", p)] for p in ("api", "worker", "scheduler"))
    replicas = {
        n: int(interpolate(str(compose.services[n]["deploy"]["replicas"]), compose.values))
        for n in (api, worker, scheduler)
    }
    assert replicas[api] == 2 and replicas[scheduler] == 2 and replicas[worker] >= 1, replicas
    published = [n for n, s in compose.services.items() if s.get("ports")]
    assert published == compose.proxies() and len(published) == 1, (
        f"only the proxy publishes a port: {published}"
    )
    assert "DISPATCH_SCHEDULER_LEASE_SECONDS" in environment(compose.services[scheduler])
    assert {"postgres", "redis"} <= set(compose.services)
    assert "--appendonly" in compose.command("redis"), "redis persists its queue (appendonly)"
    for name in compose.app_services():
        assert environment(compose.services[name]).get("DISPATCH_LOG_FORMAT") == "json", f"{name}: JSON logs"


# --- broken copies: each defect is caught ------------------------------------------------------

BROKEN = [
    (
        "unknown command",
        '"dispatcher", "worker", "--processes"',
        '"dispatcher", "wroker", "--processes"',
        "has no command 'wroker'",
    ),
    ("unknown option", '"--port", "8000"]', '"--prot", "8000"]', "has no option --prot"),
    (
        "bad option value",
        '"--threads", "8"]',
        '"--threads", "eight"]',
        "--threads eight`: Input should be a valid integer",
    ),
    (
        "group without subcommand",
        '["dispatcher", "db", "upgrade"]',
        '["dispatcher", "db"]',
        "`dispatcher db` needs a subcommand",
    ),
    (
        "unknown setting in a merged anchor",
        "DISPATCH_LOG_FORMAT: json",
        "DISPATCH_LOG_FROMAT: json",
        "DISPATCH_LOG_FROMAT is not a setting",
    ),
    (
        "invalid setting",
        "DISPATCH_TIMEZONE: Asia/Shanghai",
        "DISPATCH_TIMEZONE: Asia/Shanghia",
        "unknown time zone",
    ),
    (
        "invalid log format",
        "DISPATCH_LOG_FORMAT: json",
        "DISPATCH_LOG_FORMAT: xml",
        "its environment does not validate",
    ),
    ("development mode", "DISPATCH_ENV: production", "DISPATCH_ENV: development", "not production"),
    ("no such route", "127.0.0.1:8000/healthz", "127.0.0.1:8000/ready", "the app has no route /ready"),
    (
        "route that needs a token",
        "127.0.0.1:8000/healthz",
        "127.0.0.1:8000/metrics",
        "/metrics is not an open health route",
    ),
    ("wrong api port", "127.0.0.1:8000/healthz", "127.0.0.1:8080/readyz", "nothing listens on port 8080"),
    ("wrong worker port", "127.0.0.1:9191/metrics", "127.0.0.1:9192/metrics", "nothing listens on port 9192"),
    ("another container", "127.0.0.1:9191/metrics", "redis:9191/metrics", "asks 'redis'"),
    ("unknown tool", '"CMD", "redis-cli", "ping"', '"CMD", "redis-clie", "ping"', "'redis-clie', neither"),
    (
        "unknown CLI health check",
        '"CMD", "pg_isready", "-h", "127.0.0.1", "-U", "dispatch", "-d", "dispatch"',
        '"CMD", "dispatcher", "db", "check"',
        "has no command 'check'",
    ),
    (
        "not waiting for the migration",
        "migrate: {condition: service_completed_successfully}",
        "migrate: {condition: service_started}",
        "must wait for 'migrate'",
    ),
    (
        "unknown dependency",
        "api: {condition: service_healthy}",
        "apii: {condition: service_healthy}",
        "depends on 'apii', which is no service",
    ),
    (
        "undeclared volume",
        "volumes: [redis-data:/data]",
        "volumes: [redis-state:/data]",
        "volume 'redis-state' is not declared",
    ),
    (
        "no restart policy",
        "  restart: unless-stopped\n  environment: *dispatch-env",
        "  environment: *dispatch-env",
        "api: long-running, needs a restart policy",
    ),
    ("restarting one-off", 'restart: "no"', "restart: always", "a one-off step must not restart"),
    (
        "proxy not trusted",
        "DISPATCH_TRUSTED_PROXIES: 172.30.57.10",
        "DISPATCH_TRUSTED_PROXIES: 172.30.57.11",
        "does not trust the proxy",
    ),
    (
        "proxy address in the dynamic range",
        "ipv4_address: 172.30.57.10",
        "ipv4_address: 172.30.57.200",
        "lies in ip_range",
    ),
    ("proxy to the wrong port", "http://api:8000;", "http://api:8001;", "proxies to api:8001"),
    ("proxy listens elsewhere", "listen 8080;", "listen 80;", "nothing listens on port 8080"),
    ("proxy without Docker's DNS", "resolver 127.0.0.11", "resolver 8.8.8.8", "resolver 127.0.0.11"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_a_broken_compose_file_is_caught(old: str, new: str, expected: str) -> None:
    text = COMPOSE.read_text()
    assert old in text, f"the case no longer applies: {old!r} is not in docker-compose.yml"
    problems = Compose(text.replace(old, new, 1), strong_values()).problems()
    assert any(expected in p for p in problems), f"{expected!r} not among:\n" + "\n".join(problems)


BROKEN_ENV = [
    (
        "a real secret",
        "DISPATCH_SECRET_KEY=change-me",
        f"DISPATCH_SECRET_KEY={secrets.token_urlsafe(48)}",
        "must be a placeholder",
    ),
    (
        "a missing variable",
        "HTTP_PORT=8080",
        "",
        "HTTP_PORT is interpolated by the compose file but not in .env.example",
    ),
    (
        "an unknown setting",
        "CONFIG_DIR=./examples",
        "DISPATCH_CONFIG_DIR=./examples",
        ".env.example: DISPATCH_CONFIG_DIR is not a setting",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in BROKEN_ENV], ids=[c[0] for c in BROKEN_ENV]
)
def test_a_broken_env_example_is_caught(old: str, new: str, expected: str) -> None:
    text = ENV_EXAMPLE.read_text()
    assert old in text, f"the case no longer applies: {old!r} is not in .env.example"
    problems = env_example_problems(yaml.safe_load(COMPOSE.read_text()), text.replace(old, new, 1))
    assert any(expected in p for p in problems), f"{expected!r} not among:\n" + "\n".join(problems)


def test_an_unescaped_dollar_in_the_proxy_config_is_caught() -> None:
    """Compose would replace ``$remote_addr`` with an empty variable, silently."""
    doc = yaml.safe_load(COMPOSE.read_text().replace("$$remote_addr", "$remote_addr", 1))
    problems = env_example_problems(doc, ENV_EXAMPLE.read_text())
    assert any("remote_addr is interpolated" in p for p in problems), problems
