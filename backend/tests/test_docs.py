"""The docs stay true: every relative link and `#anchor` in README.md, CHANGELOG.md and
docs/*.md resolves (anchors as GitHub makes them from headings), the README stays short,
and every setting has its row in docs/configuration.md."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from app.core.config import Settings

ROOT_DIR = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [ROOT_DIR / "README.md", ROOT_DIR / "CHANGELOG.md", *(ROOT_DIR / "docs").glob("*.md")]
)
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# [text](target) and [text](target "title"); images too. Not inside inline code.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def prose_lines(path: Path) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lowercased, without punctuation other
    than hyphens and underscores, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    targets = []
    for line in prose_lines(path):
        targets += LINK.findall(INLINE_CODE.sub("", line))
    return targets


def test_the_slugs_are_githubs() -> None:
    assert github_slug("Outages, shutdown and run.sh") == "outages-shutdown-and-runsh"
    assert github_slug("CI (GitHub Actions)") == "ci-github-actions"
    assert github_slug("Users — `/users`") == "users--users"
    assert github_slug("The `TaskPublic` model") == "the-taskpublic-model"


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT_DIR)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading makes #{anchor}")
    assert not broken, broken


def test_every_doc_is_reachable_from_the_readme() -> None:
    readme_links = {
        (ROOT_DIR / target.partition("#")[0]).resolve()
        for target in links(ROOT_DIR / "README.md")
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    }
    unlinked = [
        str(path.relative_to(ROOT_DIR))
        for path in DOCS
        if path.name != "README.md" and path.resolve() not in readme_links
    ]
    assert not unlinked, unlinked


def test_the_readme_stays_short() -> None:
    assert len((ROOT_DIR / "README.md").read_text().splitlines()) < 200


def test_every_setting_is_in_the_configuration_doc() -> None:
    text = (ROOT_DIR / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert not missing, f"docs/configuration.md does not name {missing}"
