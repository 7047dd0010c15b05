import pytest

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


def test_a_bad_setting_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "lots")
    with pytest.raises(SystemExit):
        load_settings()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("Configuration error: DB_POOL_SIZE:")


def test_cors_origins_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", "http://a.example, http://b.example/")
    monkeypatch.setenv("FRONTEND_HOST", "http://front.example")
    assert Settings().all_cors_origins == [
        "http://a.example",
        "http://b.example",
        "http://front.example",
    ]


def test_the_clean_up_schedule_must_be_a_cron_expression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANUP_SCHEDULE", "every hour")
    with pytest.raises(ValueError, match="CLEANUP_SCHEDULE"):
        Settings()
    monkeypatch.setenv("CLEANUP_SCHEDULE", "*/5 * * * *")
    assert Settings().CLEANUP_SCHEDULE == "*/5 * * * *"
