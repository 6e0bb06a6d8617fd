"""Settings: defaults for one machine, refusals in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.errors import ConfigError
from dispatcher.settings import Settings, load_settings


def test_defaults_are_embedded_sqlite_and_redis(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'dispatch.sqlite3'}"
    assert s.embedded_redis
    assert s.resolved_redis_url == f"unix://{tmp_path.resolve() / 'redis.sock'}"


def test_development_generates_one_secret_key_and_keeps_it(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_secret_key
    second = Settings(data_dir=tmp_path).resolved_secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "change-me",
        "short",
        " " * 32,
        "k" * 40,
        "ab" * 20,
        "0123456789" * 4,
        " " + "x7Gq2Lp9Zr4Tb8Wm1Nc6Yd3Vh5Jf0Ks" + " ",
    ],
)
def test_production_refuses_default_or_short_secrets(secret: str | None) -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(env="production", secret_key=secret, database_url="postgresql://x/y", redis_url="redis://x")


def test_production_refuses_embedded_services() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        Settings(env="production", secret_key=STRONG, redis_url="redis://x")
    with pytest.raises(ValueError, match="REDIS_URL"):
        Settings(env="production", secret_key=STRONG, database_url="postgresql://x/y")


STRONG = "x7Gq2Lp9Zr4Tb8Wm1Nc6Yd3Vh5Jf0Ks_aQe"  # 35 characters, 35 different


def test_production_takes_a_key_with_real_entropy_and_trusted_proxies_must_be_addresses() -> None:
    import secrets

    Settings(env="production", secret_key=secrets.token_urlsafe(32), database_url="postgresql://x/y",
             redis_url="redis://x")  # fmt: skip
    assert Settings(trusted_proxies="10.0.0.1, 192.168.0.0/16").proxies == ["10.0.0.1", "192.168.0.0/16"]
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies="proxy.example")


def test_environment_is_read_with_the_dispatch_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("DISPATCH_SOURCE_RATE", "7")
    s = load_settings()
    assert s.timezone == "Asia/Urumqi" and s.source_rate == 7


def test_bad_environment_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_ENV", "staging")
    with pytest.raises(ConfigError, match="env"):
        load_settings()
