"""One version: the app (and so the OpenAPI schema), pyproject.toml, uv.lock and the
changelog's latest entry say the same."""

import re
import tomllib
from pathlib import Path

from app import __version__
from app.main import app

ROOT_DIR = Path(__file__).resolve().parents[2]


def test_the_app_pyproject_lock_and_changelog_agree_on_the_version() -> None:
    pyproject = tomllib.loads((ROOT_DIR / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__
    lock = tomllib.loads((ROOT_DIR / "uv.lock").read_text())
    [locked] = [p for p in lock["package"] if p["name"] == pyproject["project"]["name"]]
    assert locked["version"] == __version__, "run `uv lock` after changing the version"
    changelog = (ROOT_DIR / "CHANGELOG.md").read_text()
    latest = re.search(r"^## \[?(\d+\.\d+\.\d+)", changelog, re.MULTILINE)
    assert latest is not None, "CHANGELOG.md has no `## x.y.z` entry"
    assert latest.group(1) == __version__
    assert app.openapi()["info"]["version"] == __version__
