import re
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from app.core.config import Settings, load_settings, normalise_database_url


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@h:5432/db",
        "postgresql://u:p@h:5432/db",
        "postgresql+psycopg://u:p@h:5432/db",
        "postgresql+asyncpg://u:p@h:5432/db",
    ],
)
def test_database_url_is_driven_through_asyncpg(url: str) -> None:
    assert normalise_database_url(url) == "postgresql+asyncpg://u:p@h:5432/db"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_other_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_database_url(url)


def test_placeholder_secrets_are_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "changethis")
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings()
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-of-enough-length-000000")
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "changethis")
    with pytest.raises(ValueError, match="FIRST_SUPERUSER_PASSWORD"):
        Settings()
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "another-real-secret")
    assert Settings().ENVIRONMENT == "production"


@pytest.mark.parametrize(
    "origins",
    ["http://a.example, http://b.example/", '["http://a.example", "http://b.example/"]'],
)
def test_cors_origins_accept_a_comma_separated_or_json_list(
    monkeypatch: pytest.MonkeyPatch, origins: str
) -> None:
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", origins)
    monkeypatch.setenv("FRONTEND_HOST", "http://front.example")
    assert Settings().all_cors_origins == [
        "http://a.example",
        "http://b.example",
        "http://front.example",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_POOL_SIZE", "lots"),
        ("DATABASE_URL", "postgresql://u@h:notaport/app"),
        ("DATABASE_URL", "postgresql://u@h:70000/app"),
        ("DATABASE_URL", "mysql://u@h/app"),
        ("BACKEND_CORS_ORIGINS", "[http://x"),
        ("BACKEND_CORS_ORIGINS", '{"a": 1}'),
        ("BACKEND_CORS_ORIGINS", "not a url"),
        ("FRONTEND_HOST", "localhost:5173"),
        ("SMTP_PORT", "0"),
        ("SMTP_PORT", "smtp"),
        ("SMTP_TLS", "maybe"),
        ("DB_POOL_PRE_PING", "2"),
        ("API_DOCS", "sometimes"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
        ("SENTRY_DSN", "not a dsn"),
        ("ENVIRONMENT", "prod"),
    ],
)
def test_each_bad_value_stops_start_up_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        load_settings()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.match(rf"Configuration error: {name}(\[\d+\])?: ", err[0]), err[0]
    assert "Traceback" not in err[0]


def test_a_short_secret_key_is_refused_outside_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "a-real-password")
    monkeypatch.setenv("SECRET_KEY", "x" * 31)
    with pytest.raises(SystemExit):
        load_settings()
    [line] = capsys.readouterr().err.strip().splitlines()
    assert (
        line == "Configuration error: SECRET_KEY must be at least 32 bytes when ENVIRONMENT=staging"
    )
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    assert Settings().SECRET_KEY == "x" * 32
    monkeypatch.setenv("ENVIRONMENT", "local")
    monkeypatch.setenv("SECRET_KEY", "short-but-local")
    assert Settings().SECRET_KEY == "short-but-local"


@pytest.mark.parametrize(
    ("environment", "api_docs", "log_format", "docs", "fmt"),
    [
        ("local", None, None, True, "console"),
        ("staging", None, None, True, "json"),
        ("production", None, None, False, "json"),
        ("production", "true", "console", True, "console"),
        ("local", "false", "json", False, "json"),
    ],
)
def test_docs_and_log_format_follow_the_environment_unless_set(
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    api_docs: str | None,
    log_format: str | None,
    docs: bool,
    fmt: str,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "a-real-password")
    for name, value in (("API_DOCS", api_docs), ("LOG_FORMAT", log_format)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.docs_enabled is docs
    assert settings.log_format == fmt


def test_sentry_is_off_when_no_dsn_is_set() -> None:
    import sentry_sdk

    from app.core.config import settings

    assert settings.SENTRY_DSN is None
    assert not sentry_sdk.get_client().is_active()


ROOT_DIR = Path(__file__).resolve().parents[2]
# Values the root .env sets differently from the defaults, on purpose, for local work.
LOCAL_OVERRIDES = {"BACKEND_CORS_ORIGINS"}


def documented_defaults() -> dict[str, str]:
    """`| `NAME` | default | meaning |` rows of the table in docs/configuration.md."""
    defaults: dict[str, str] = {}
    for line in (ROOT_DIR / "docs" / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
                defaults[name] = cells[1]
    return defaults


def rendered(default: Any) -> str:
    if default is None:
        return "unset"
    if default == []:
        return "empty"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def test_the_configuration_table_and_the_env_file_agree_with_the_settings() -> None:
    table = documented_defaults()
    env_text = (ROOT_DIR / ".env").read_text()
    env = dotenv_values(ROOT_DIR / ".env")
    for name, field in Settings.model_fields.items():
        assert name in table, f"docs/configuration.md has no row for {name}"
        assert table[name].startswith(rendered(field.default)), (name, table[name])
        assert re.search(rf"^(# )?{name}=", env_text, re.MULTILINE), f".env does not name {name}"
        value = env.get(name)
        if value and name not in LOCAL_OVERRIDES:
            assert f"`{value}`" == rendered(field.default), (name, value)


def test_the_clean_up_schedule_must_be_a_cron_expression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANUP_SCHEDULE", "every hour")
    with pytest.raises(ValueError, match="CLEANUP_SCHEDULE"):
        Settings()
    monkeypatch.setenv("CLEANUP_SCHEDULE", "*/5 * * * *")
    assert Settings().CLEANUP_SCHEDULE == "*/5 * * * *"
